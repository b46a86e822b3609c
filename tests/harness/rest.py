"""Raw Cosmos DB REST requests, signed as the service specifies, without the client's code: for what the client
cannot send (headers it does not know, bodies it builds otherwise) and for checking the wire format itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from email.utils import formatdate
from typing import Any

from cosmigrate.config import EMULATOR_KEY

API_VERSION = "2020-07-15"


def master_token(verb: str, resource_type: str, link: str, date: str, key: str = EMULATOR_KEY) -> str:
    """The master-key token: HMAC-SHA256 over "verb\\ntype\\nlink\\ndate\\n\\n" (verb, type and date lower-cased; a
    link by name as it is, a link by resource id lower-cased, and one offer's link is its rid alone)."""
    payload = f"{verb.lower()}\n{resource_type.lower()}\n{link}\n{date.lower()}\n\n"
    digest = hmac.new(base64.b64decode(key), payload.encode(), hashlib.sha256).digest()
    return urllib.parse.quote(f"type=master&ver=1.0&sig={base64.b64encode(digest).decode()}", safe="")


def send(
    method: str, url: str, headers: dict[str, str], body: Any = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """(status, response headers lower-cased, JSON body) of one HTTPS request to the local endpoint."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, context=context) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, json.load(error)


def signed(
    method: str,
    endpoint: str,
    path: str,
    resource_type: str,
    link: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """``send`` with the headers every request needs (date, version, token for ``resource_type`` and ``link``)."""
    date = formatdate(usegmt=True)
    every = {
        "x-ms-date": date,
        "x-ms-version": API_VERSION,
        "authorization": master_token(method, resource_type, link, date),
    }
    if body is not None:
        every["content-type"] = "application/json"
    return send(method, f"{endpoint}{path}", {**every, **(headers or {})}, body)
