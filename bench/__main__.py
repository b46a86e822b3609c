"""Benchmarks: ``make bench`` (or ``python -m bench``). Every figure is a count, or a ratio measured side by side
in the same run; none is an assertion. The table at the end is what ``docs/benchmarks.md`` records.

Sections (each also runs alone: ``python -m bench.<module>``):

1. requests: requests per command to /dbs/…, counted by the fault proxy (all fault rates 0) in front of the local
   endpoint, without the client's own account reads: ``status`` with 5 and 500 revisions applied, ``up`` with
   nothing to do, ``up`` per revision that changes nothing and per revision that creates a container.
2. versus_alembic: ``cosmigrate up`` vs ``alembic upgrade head``, 100 no-op revisions each, whole processes.
3. startup and lint: ``cosmigrate --help`` and ``cosmigrate check`` of 1,000 scripts, whole processes.
4. faults: up/down cycles through the fault proxy (10% 429, 5% 503, 2% cut connections) vs straight.
5. keep-alive: point reads per second through the launcher vs the npm package's own CLI.
6. data: transform_items vs a plain read-modify-write script, and peak memory at 10,000 vs 100,000 documents
   (``bench/data.py``; ``COSMIGRATE_BENCH_DATA=0`` skips it, it takes minutes).
7. outage: how long ``up`` takes to end after the database stops answering mid-transform, against the documented
   bound (``bench/outage.py``; ``COSMIGRATE_BENCH_OUTAGE=0`` skips it, it takes about four minutes).
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

import structlog
import urllib3

from bench import common, keepalive, startup, versus_alembic
from bench import lint as lint_bench
from cosmigrate import logs
from cosmigrate.app import commands as command
from cosmigrate.config import Config, load_config
from tests.harness.local_endpoint import database_requests, fault_counts, start_fault_proxy

urllib3.disable_warnings()
Row = tuple[str, ...]  # figure, value[, goal, command]


def count(proxy: str, action: object) -> int:
    before = database_requests(proxy)
    action()  # type: ignore[operator]
    return database_requests(proxy) - before


def bench_config(url: str, migrations: Path | None = None) -> Config:
    flags = {"endpoint": url, "database": f"bench{uuid.uuid4().hex[:8]}", "create_database": True}
    if migrations is not None:
        flags["migrations"] = str(migrations)
    return load_config(flags, environ={}, cwd=common.ROOT)


def measure_requests(proxy: str) -> dict[str, float]:
    figures: dict[str, float] = {}
    with TemporaryDirectory() as tmp:
        for revisions in (5, 500):
            folder = Path(tmp) / f"noop{revisions}"
            common.write_revisions(folder, revisions, common.NOOP_SCRIPT)
            config = load_config(
                {
                    "endpoint": proxy,
                    "database": f"b{uuid.uuid4().hex[:8]}",
                    "migrations": str(folder),
                    "create_database": True,
                },
                environ={},
            )
            up = count(proxy, lambda c=config: command.up(c))
            figures[f"up requests, {revisions} no-op revisions"] = up
            figures[f"status requests, {revisions} revisions applied"] = count(
                proxy, lambda c=config: command.status(c)
            )
            figures[f"up requests, nothing to do, {revisions} revisions applied"] = count(
                proxy, lambda c=config: command.up(c)
            )
        figures["up requests per no-op revision (5 -> 500)"] = round(
            (figures["up requests, 500 no-op revisions"] - figures["up requests, 5 no-op revisions"]) / 495, 3
        )
        creating = {}
        for revisions in (4, 40):
            folder = Path(tmp) / f"create{revisions}"
            common.write_revisions(folder, revisions)
            config = load_config(
                {
                    "endpoint": proxy,
                    "database": f"b{uuid.uuid4().hex[:8]}",
                    "migrations": str(folder),
                    "create_database": True,
                },
                environ={},
            )
            creating[revisions] = count(proxy, lambda c=config: command.up(c))
        figures["up requests per revision creating a container (4 -> 40)"] = (creating[40] - creating[4]) / 36
    return figures


def cycle_seconds(url: str, cycles: int) -> float:
    import time

    config = load_config(
        {"endpoint": url, "database": f"bench{uuid.uuid4().hex[:8]}", "create_database": True},
        environ={},
        cwd=common.ROOT,
    )
    started = time.monotonic()
    for _ in range(cycles):
        command.up(config)
        command.down(config, target="base", confirm=lambda _q: True)
    return time.monotonic() - started


def measure_faults(endpoint: str, cycles: int = 5) -> dict[str, float]:
    faulty = start_fault_proxy(endpoint, 0.10, 0.05, 0.02, seed=7)
    try:
        direct = cycle_seconds(endpoint, cycles)
        through = cycle_seconds(faulty.url, cycles)
        injected = fault_counts(faulty.url)
    finally:
        faulty.stop()
    return {
        f"{cycles} up/down cycles, straight (s)": round(direct, 1),
        f"{cycles} up/down cycles, through faults (s)": round(through, 1),
        "faults: time ratio": round(through / direct, 2),
        "injected 429": injected["429"],
        "injected 503": injected["503"],
        "connections cut after the upstream executed": injected["reset"],
    }


def section(title: str, figures: dict[str, float]) -> None:
    print(f"== {title}")
    for name, value in figures.items():
        print(f"{name:<66} {value:g}")


def main() -> None:
    logs.configure(debug=False)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    rows: list[Row] = []
    with common.endpoint_for_bench() as url:
        with common.counting_proxy(url) as proxy:
            requests = measure_requests(proxy)
        section("requests per command (counted at the proxy)", requests)
        status_counts = (
            requests["status requests, 5 revisions applied"],
            requests["status requests, 500 revisions applied"],
        )
        rows += [
            (
                "`status` requests, 5 vs 500 revisions applied",
                f"{status_counts[0]:g} vs {status_counts[1]:g}",
                "equal",
                "python -m bench",
            ),
            ("`up` requests with nothing to do", f"{requests['up requests, nothing to do, 500 revisions applied']:g}"),
            ("`up` requests per no-op revision", f"{requests['up requests per no-op revision (5 -> 500)']:g}"),
            (
                "`up` requests per revision creating a container",
                f"{requests['up requests per revision creating a container (4 -> 40)']:g}",
            ),
        ]
        faults = measure_faults(url)
        section("faults (same run, same endpoint)", faults)
        rows.append(("5 up/down cycles through faults vs straight", f"{faults['faults: time ratio']:g}x"))
        reads = keepalive.measure(url)
        section("keep-alive (point reads per second, same run)", reads)
        rows.append(
            ("launcher vs the package's CLI, point reads/s", f"{reads['ratio']:g}x", "-", "python -m bench.keepalive")
        )
    versus = versus_alembic.measure()
    section("cosmigrate up vs alembic upgrade head (100 no-op revisions)", versus)
    ratio = versus["ratio cosmigrate / alembic (median of pairs)"]
    rows.append(
        (
            "`cosmigrate up` / `alembic upgrade head`, 100 no-op revisions",
            f"{ratio:g}",
            "<= 1.0",
            "python -m bench.versus_alembic",
        )
    )
    started = startup.measure()
    section("start-up", started)
    rows.append(
        ("`cosmigrate --help` (s)", f"{started['cosmigrate --help (s, median)']:g}", "< 0.1", "python -m bench.startup")
    )
    check_seconds = started["cosmigrate check, 1000 scripts (s, median)"]
    rows.append(("`cosmigrate check`, 1,000 scripts (s)", f"{check_seconds:g}", "< 1", "python -m bench.startup"))
    lint_bench.main()
    if os.environ.get("COSMIGRATE_BENCH_DATA", "1") != "0":
        from bench import data

        rows += data.main()
    if os.environ.get("COSMIGRATE_BENCH_OUTAGE", "1") != "0":
        from bench import outage

        rows += outage.main()
    print("\n| figure | value | goal | command |\n| --- | --- | --- | --- |")
    for row in rows:
        figure, value, goal, made_by = (*row, "-", "python -m bench")[:4] if len(row) == 2 else row
        print(f"| {figure} | {value} | {goal} | `{made_by}` |")


if __name__ == "__main__":
    sys.exit(main())
