"""A project outside this repository, as a new user starts one: pip install cosmigrate, init, new, check, up, and
the plugin's built-in tests under pytest, all in a temporary folder.

cosmigrate is installed from a copy of this repository's package into a fresh virtual environment (not
editable), so what is tested is what a wheel carries: the CLI, the plugin's entry point and the local
endpoint's files, which the plugin starts on its own in the project's pytest run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with cosmigrate (and pytest) installed from a copy of this package."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "cosmigrate", source / "cosmigrate", ignore=shutil.ignore_patterns("__pycache__"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(source), "pytest"],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return venv / "bin"


def run(bin_dir: Path, project: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


def test_a_new_project_from_init_to_its_own_migration_tests(installed: Path, tmp_path: Path, endpoint: str) -> None:
    project = tmp_path / "shop"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COSMOS_", "COSMIGRATE_"))}
    env["PATH"] = f"{installed}:{env.get('PATH', '')}"

    init = run(installed, project, "cosmigrate", "init", "--database", "shop", env=env)
    assert init.returncode == 0, init.stderr
    assert (project / "migrations" / "cosmigrate.sum").is_file() and (project / "tests" / "conftest.py").is_file()
    assert 'database = "shop"' in (project / "pyproject.toml").read_text()

    new = run(installed, project, "cosmigrate", "new", "create orders", env=env)
    assert new.returncode == 0, new.stderr
    script = project / "migrations" / "001_create_orders.py"
    untouched = run(installed, project, "cosmigrate", "check", env=env)
    assert untouched.returncode == 1 and "001_create_orders.py" in untouched.stdout  # write the template first

    text = script.read_text()
    text = text.replace("idempotent = False", "idempotent = True")
    text = text.replace(
        'raise NotImplementedError("write the upgrade of revision 001")',
        'op.create_container("orders", partition_key="/customerId", indexing_policy={"includedPaths": '
        '[{"path": "/*"}]})',
    )
    text = text.replace(
        'raise NotImplementedError("write the downgrade of revision 001")', 'op.delete_container("orders")'
    )
    script.write_text(text)
    edited = run(installed, project, "cosmigrate", "check", env=env)
    assert edited.returncode == 1 and "cosmigrate hash" in edited.stdout  # the sum file saw the edit
    assert run(installed, project, "cosmigrate", "hash", env=env).returncode == 0
    check = run(installed, project, "cosmigrate", "check", env=env)
    assert check.returncode == 0 and "ok: 1 revision in one chain" in check.stdout, check.stdout + check.stderr

    online = {**env, "COSMOS_ENDPOINT": endpoint}
    up = run(installed, project, "cosmigrate", "up", "--create-database", env=online)
    assert up.returncode == 0 and "applied 001" in up.stdout, up.stderr
    status = run(installed, project, "cosmigrate", "status", env=online)
    assert status.returncode == 0 and "current 001" in status.stdout

    # the project's own migration tests: the plugin starts a local endpoint from the installed package. Its
    # self-signed certificate warns in no test on that endpoint (the client's threads request it at any time:
    # test_on_the_plugin_endpoint does so deterministically), while a test of the project's own still warns.
    (project / "tests" / "test_own.py").write_text(
        "import os\n\nimport urllib3\n\n\n"
        "def test_on_the_plugin_endpoint(cosmigrate_endpoint):\n"
        "    urllib3.PoolManager(cert_reqs='CERT_NONE').request('GET', cosmigrate_endpoint, retries=False)\n\n\n"
        "def test_an_unverified_request_of_its_own():\n"
        "    urllib3.PoolManager(cert_reqs='CERT_NONE').request('GET', os.environ['OWN_URL'], retries=False)\n"
    )
    tests = run(
        installed, project, "pytest", "--cosmigrate", "-q", "-p", "no:cacheprovider", env={**env, "OWN_URL": endpoint}
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "9 passed" in tests.stdout, tests.stdout[-3000:]
    warned = [line for line in tests.stdout.split("warnings summary")[1].splitlines() if "::" in line]
    assert warned == ["tests/test_own.py::test_an_unverified_request_of_its_own"], tests.stdout[-3000:]
