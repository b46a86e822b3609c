"""A test token provider for the local endpoint's Entra ID mode (``local_endpoint/entra.js``).

cosmigrate signs in with azure-identity's ``DefaultAzureCredential``, whose chain includes the Azure CLI
credential: it runs ``az account get-access-token --output json --resource …`` and reads the token from its
output. :func:`install_az` writes an ``az`` executable that answers that command with a token the local endpoint
accepts (HS256 over the endpoint's secret, the principal as ``oid``), so the real credential chain runs
unchanged in tests: put the folder first on ``PATH`` and set ``AZURE_TOKEN_CREDENTIALS=AzureCliCredential`` (the
chain then skips the managed identity probe). Nothing here talks to Microsoft Entra ID.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from pathlib import Path

SECRET = "cosmigrate-local-entra"  # the endpoint's default token secret
AUDIENCE = "https://cosmos.azure.com"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(principal: str, secret: str = SECRET, audience: str = AUDIENCE, lifetime: int = 3600) -> str:
    """A token for ``principal`` (its object id) that the local endpoint in Entra mode accepts."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    now = int(time.time())
    claims = {"oid": principal, "aud": audience, "iat": now, "nbf": now, "exp": now + lifetime, "tid": "local"}
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


AZ_SCRIPT = '''#!{python}
"""A stand-in for the Azure CLI's get-access-token, for tests (cosmigrate.testing.entra)."""
import json, sys, time
sys.path.insert(0, {path!r})
from cosmigrate.testing.entra import mint
args = sys.argv[1:]
if args[:2] != ["account", "get-access-token"]:
    sys.exit("this az only answers account get-access-token")
principal = {principal!r}
if not principal:
    sys.exit("Please run 'az login' to set up an account.")
token = mint(principal, {secret!r})
print(json.dumps({{"accessToken": token, "expires_on": int(time.time()) + 3600, "tokenType": "Bearer",
                  "subscription": "00000000-0000-0000-0000-000000000000", "tenant": "local"}}))
'''


def install_az(folder: Path, principal: str, secret: str = SECRET) -> Path:
    """Write ``folder/az`` answering get-access-token for ``principal`` ("" behaves as not logged in); returns
    the folder, to put first on ``PATH``."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "az"
    package_root = str(Path(__file__).resolve().parents[2])
    script.write_text(AZ_SCRIPT.format(python=sys.executable, path=package_root, principal=principal, secret=secret))
    script.chmod(0o755)
    return folder


def environment(folder: Path) -> dict[str, str]:
    """The environment that makes ``DefaultAzureCredential`` use the ``az`` in ``folder`` only."""
    return {
        "PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}",
        "AZURE_TOKEN_CREDENTIALS": "AzureCliCredential",
    }
