"""Start-up of the commands that need no database: ``cosmigrate --help`` and ``cosmigrate check`` of 1,000
scripts (lint and the replay of every upgrade and downgrade), whole processes from spawn to exit, median of
several runs, without bytecode caches (a fresh checkout). ``python -m bench.startup``."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import quiet_env
from bench.lint import SCRIPTS, write_scripts

RUNS = 7


def median_seconds(command: list[str]) -> float:
    env = {**quiet_env(), "PYTHONDONTWRITEBYTECODE": "1"}
    times = []
    for _ in range(RUNS + 1):
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"{command} failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    return round(statistics.median(times[1:]), 3)


def measure() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_scripts(folder, SCRIPTS)
        return {
            "python -c pass (s, median)": median_seconds([sys.executable, "-c", "pass"]),
            "cosmigrate --help (s, median)": median_seconds([sys.executable, "-m", "cosmigrate", "--help"]),
            f"cosmigrate check, {SCRIPTS} scripts (s, median)": median_seconds(
                [sys.executable, "-m", "cosmigrate", "check", "--migrations", str(folder)]
            ),
        }


if __name__ == "__main__":
    for name, value in measure().items():
        print(f"{name:<66} {value:g}")
