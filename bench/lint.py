"""Offline lint of 1,000 migration scripts: whole-process wall time (``python -m bench.lint``, also in ``make bench``).

Each run is a fresh interpreter that imports ``cosmigrate.scripts.lint`` and lints the folder, sum file
included, as a CI step would; the figure is its wall time from spawn to exit, so interpreter start-up and
imports count. Two cases, each the median of several runs: without bytecode (``PYTHONDONTWRITEBYTECODE=1``: a
fresh checkout, every script compiled on every run) and with the ``__pycache__`` a first run wrote (a second run
on one machine). The bare interpreter's start-up is shown for scale. Figures, not assertions: the budget is 1 s.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cosmigrate.scripts import sumfile

SCRIPTS = 1000
RUNS = 7
# Shaped like this project's migrations: a docstring, constants, a definition and both functions.
SCRIPT = '''"""Create container c{n}, partitioned by tenant, with the paths listing needs.

Generated for the lint benchmark.
"""

revision = "{rev}"
down_revision = {down}

CONTAINER = "c{n}"
INDEXING_POLICY = {{
    "indexingMode": "consistent",
    "automatic": True,
    "includedPaths": [{{"path": "/tenantId/?"}}, {{"path": "/createdAt/?"}}],
    "excludedPaths": [{{"path": "/*"}}],
}}


def upgrade(op):
    op.create_container(CONTAINER, partition_key="/tenantId", indexing_policy=INDEXING_POLICY)


def downgrade(op):
    op.delete_container(CONTAINER)
'''
CHILD = (
    "import sys; from pathlib import Path; from cosmigrate.scripts.lint import lint; "
    "report = lint(Path(sys.argv[1])); print(len(report.problems), len(report.order or ()))"
)


def write_scripts(folder: Path, count: int) -> None:
    for n in range(1, count + 1):
        rev, down = f"{n:03d}", repr(f"{n - 1:03d}") if n > 1 else "None"
        (folder / f"{rev}_create_c{n}.py").write_text(SCRIPT.format(n=n, rev=rev, down=down))
    sumfile.write(folder)


def wall_time(args: list[str], bytecode: bool) -> tuple[float, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True, env=env)
    return time.perf_counter() - started, done.stdout.strip()


def measure(count: int = SCRIPTS, runs: int = RUNS) -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_scripts(folder, count)
        args = ["-c", CHILD, str(folder)]
        compiled = [wall_time(args, bytecode=False)[0] for _ in range(runs)]
        assert not (folder / "__pycache__").exists()
        _, output = wall_time(args, bytecode=True)  # writes __pycache__
        cached = [wall_time(args, bytecode=True)[0] for _ in range(runs)]
    problems, ordered = (int(part) for part in output.split())
    figures[f"lint of {count} scripts, no bytecode, median of {runs} (s)"] = round(statistics.median(compiled), 3)
    figures[f"lint of {count} scripts, no bytecode, slowest of {runs} (s)"] = round(max(compiled), 3)
    figures[f"lint of {count} scripts, bytecode cached, median of {runs} (s)"] = round(statistics.median(cached), 3)
    figures["python -c pass, median (s)"] = round(
        statistics.median(wall_time(["-c", "pass"], False)[0] for _ in range(runs)), 3
    )
    figures["problems found (expected 0)"] = problems
    figures["scripts in the chain"] = ordered
    return figures


def main() -> None:
    print(f"== offline lint ({SCRIPTS} scripts, whole process, budget 1 s)")
    for name, value in measure().items():
        print(f"{name:<60} {value:g}")


if __name__ == "__main__":
    main()
