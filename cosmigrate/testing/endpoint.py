"""The local Cosmos DB endpoint, shipped with cosmigrate so that any project can test its migrations.

``local_endpoint/server.js`` runs the npm package ``@vercel/cosmosdb-server`` (a real Cosmos DB REST server
over HTTPS) corrected where it differs from Azure in ways a migration tool depends on: see the comments at
its top (throughput offers and container properties are in ``offers.js`` and ``properties.js`` beside it).
Its npm dependencies are installed once per lockfile into a cache folder (``COSMIGRATE_CACHE_DIR``, else
``$XDG_CACHE_HOME/cosmigrate``, else ``~/.cache/cosmigrate``), so a fresh checkout needs Node.js >= 18 and npm,
nothing else.

From Python: ``with start() as endpoint: endpoint.url``. From a shell (``make migrate``)::

    python -m cosmigrate.testing.endpoint start [--port 8081]   # in the background, state in ./.local-endpoint
    python -m cosmigrate.testing.endpoint stop
    python -m cosmigrate.testing.endpoint status

The endpoint keeps everything in memory and checks every request's key signature against
``COSMOS_LOCAL_KEY`` (default: the emulator's public well-known key, which cosmigrate uses for loopback).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cosmigrate.config import EMULATOR_KEY

SOURCE = Path(__file__).resolve().parent / "local_endpoint"
# The launcher and the modules it requires; copied together into the cache folder (see ``install``).
SCRIPTS = ("server.js", "offers.js", "properties.js", "entra.js", "arm.js", "orderby.js")
FILES = (*SCRIPTS, "package.json", "package-lock.json")
SCRIPTS_KEPT_SECONDS = 24 * 3600


class EndpointError(RuntimeError):
    """The local endpoint could not be installed or started; the message says what to do."""


def cache_dir() -> Path:
    if os.environ.get("COSMIGRATE_CACHE_DIR"):
        return Path(os.environ["COSMIGRATE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cosmigrate"


def install() -> Path:
    """The folder holding the endpoint's ``node_modules``, installed (``npm ci``) when missing.

    One folder per lockfile, guarded by a file lock so that concurrent test runs do not install on top of
    each other. The scripts (``SCRIPTS``) are copied in on every call, so editing them needs no reinstall:
    see :func:`server_script`.
    """
    lock_digest = hashlib.sha256((SOURCE / "package-lock.json").read_bytes()).hexdigest()[:12]
    target = cache_dir() / f"local-endpoint-{lock_digest}"
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not (target / "node_modules" / "@vercel" / "cosmosdb-server").is_dir():
            npm = shutil.which("npm")
            if npm is None or shutil.which("node") is None:
                raise EndpointError(
                    "the local Cosmos DB endpoint needs Node.js >= 18 and npm: install them, or point "
                    "COSMOS_ENDPOINT at an endpoint of your own"
                )
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(SOURCE / name, target / name)
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise EndpointError(f"npm ci for the local endpoint failed in {target}: {done.stderr.strip()[-500:]}")
        _copy_scripts(target)
    return target


def _scripts_folder(target: Path) -> Path:
    contents = hashlib.sha256()
    for name in SCRIPTS:
        contents.update(name.encode() + b"\0" + (SOURCE / name).read_bytes() + b"\0")
    return target / f"scripts-{contents.hexdigest()[:12]}"


def _copy_scripts(target: Path) -> None:
    """The scripts go into a folder named after their contents, below the one holding ``node_modules`` (Node
    finds the package from there): every version of them is complete and never changes once written, so
    checkouts with different scripts that share the cache folder (git worktrees, a release and a checkout) never
    start one another's, nor a mix of old and new modules. Written under a temporary name, then renamed."""
    folder = _scripts_folder(target)
    if folder.is_dir():
        os.utime(folder)  # still in use: see the pruning below
        return
    temporary = Path(tempfile.mkdtemp(dir=target, prefix=".scripts-"))
    temporary.chmod(0o755)  # as a folder made by mkdir (mkdtemp's is private)
    for name in SCRIPTS:
        shutil.copyfile(SOURCE / name, temporary / name)
    os.rename(temporary, folder)  # callers hold the folder's lock: no other process writes it meanwhile
    # Versions nobody installed for a day go (a running endpoint read its scripts when it started).
    for old in target.glob("scripts-*"):
        with contextlib.suppress(OSError):
            if old != folder and time.time() - old.stat().st_mtime > SCRIPTS_KEPT_SECONDS:
                shutil.rmtree(old)


def server_script() -> Path:
    """``server.js`` as installed, with the modules it requires beside it."""
    return _scripts_folder(install()) / "server.js"


@dataclass
class NodeServer:
    """A Node process that printed ``listening HOST:PORT``."""

    process: subprocess.Popen[str]
    url: str
    log: Path

    @classmethod
    def start(cls, script: Path, *args: str, env: dict[str, str] | None = None, detach: bool = False) -> NodeServer:
        # stderr goes to a file: a pipe nobody drains would block the server once full
        log = tempfile.NamedTemporaryFile("w+", prefix=f"{script.stem}-", suffix=".log", delete=False)  # noqa: SIM115
        process = subprocess.Popen(
            ["node", str(script), *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=detach,
        )
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("listening "):
            process.kill()
            log.seek(0)
            raise EndpointError(f"{script.name} did not start: {line!r} {log.read()[-2000:]}")
        return cls(process, "https://" + line.split(" ", 1)[1], Path(log.name))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self.log.unlink(missing_ok=True)

    def __enter__(self) -> NodeServer:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


def start(
    index_seconds: float = 1.0,
    port: int = 0,
    host: str = "127.0.0.1",
    key: str = EMULATOR_KEY,
    entra: Mapping[str, Sequence[str]] | None = None,
    entra_secret: str = "",
) -> NodeServer:
    """Start a local endpoint on a free loopback port (or ``port``); index transformations take
    ``index_seconds`` to reach 100%. ``entra``: Entra ID mode (``entra.js``), with these role assignments
    (principal -> roles: "data" is Cosmos DB Built-in Data Contributor), tokens signed with ``entra_secret``."""
    env = {"COSMOS_LOCAL_INDEX_SECONDS": str(index_seconds), "COSMOS_LOCAL_KEY": key}
    if entra is not None:
        env.update(
            COSMOS_LOCAL_AUTH="entra",
            COSMOS_LOCAL_ENTRA_ROLES=json.dumps({k: list(v) for k, v in entra.items()}),
            COSMOS_LOCAL_ENTRA_SECRET=entra_secret,
        )
    return NodeServer.start(server_script(), "--port", str(port), "--host", host, env=env)


# -- the command line, for make migrate --------------------------------------------------------------------


def answers(port: int) -> bool:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        urllib.request.urlopen(f"https://127.0.0.1:{port}/", context=context, timeout=2)
    except urllib.error.HTTPError:
        return True  # it answered (401 without a signature)
    except (urllib.error.URLError, OSError):
        return False
    return True


USAGE = """usage: python -m cosmigrate.testing.endpoint start|stop|status|install [--port N]

  start    start the local Cosmos DB endpoint in the background, unless one answers (state in ./.local-endpoint)
  stop     stop the endpoint started from this folder (its data is gone: it keeps everything in memory)
  status   exit 0 when an endpoint answers on the port, 1 when nothing does
  install  install its npm dependencies (Node.js >= 18 and npm) into the cache folder

  --port N   the port, default 8081
  It checks every request's key against COSMOS_LOCAL_KEY (default: the emulator's well-known key)."""


def _port(args: list[str]) -> int | None:
    if "--port" not in args:
        return 8081
    given = args[args.index("--port") + 1 :][:1]
    if not given or not given[0].isdigit() or not 0 < int(given[0]) < 65536:
        return None
    return int(given[0])


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["help"] or {"-h", "--help"} & set(args):
        print(USAGE)
        return 0
    verb = args.pop(0) if args else ""
    port = _port(args)
    if port is None:
        print("error: --port takes a port number from 1 to 65535 (see --help)", file=sys.stderr)
        return 2
    state = Path.cwd() / ".local-endpoint"
    pid_file = state / "pid"
    if verb == "install":
        print(f"local endpoint installed in {install()}")
        return 0
    if verb == "status":
        if answers(port):
            print(f"local endpoint answers at https://localhost:{port}")
            return 0
        print(f"nothing answers at port {port}")
        return 1
    if verb == "start":
        if answers(port):
            print(f"local endpoint already answers at https://localhost:{port}")
            return 0
        script = server_script()
        state.mkdir(exist_ok=True)
        with open(state / "server.log", "w") as log:
            process = subprocess.Popen(
                ["node", str(script), "--port", str(port)],
                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
                env={**os.environ, "COSMOS_LOCAL_KEY": os.environ.get("COSMOS_LOCAL_KEY", EMULATOR_KEY)},
            )  # fmt: skip
        pid_file.write_text(str(process.pid))
        for _ in range(100):
            if answers(port):
                print(f"local endpoint started at https://localhost:{port} (pid {process.pid}, log {state}/server.log)")
                return 0
            time.sleep(0.1)
        print(f"error: the local endpoint did not start; see {state}/server.log", file=sys.stderr)
        return 1
    if verb == "stop":
        stopped = False
        if pid_file.is_file():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
                stopped = True
            pid_file.unlink()
        print(
            "local endpoint stopped (its data is gone: it keeps everything in memory)"
            if stopped
            else "no local endpoint started from this folder is running"
        )
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
