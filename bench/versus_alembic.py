"""``cosmigrate up`` over 100 no-op revisions against ``alembic upgrade head`` over 100 no-op revisions on SQLite.

Both are whole processes, timed from spawn to exit (interpreter start-up and imports count), run in turn A B A B
… on a fresh database each time (a new Cosmos DB database on the local endpoint, a new SQLite file), and the
figure is the median of the ratios pair by pair, so a machine that drifts affects both alike. Alembic is
installed for the benchmark only, in ``.bench/alembic`` (not a dependency of cosmigrate).

Alone: ``python -m bench.versus_alembic``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import NOOP_SCRIPT, ROOT, endpoint_for_bench, quiet_env

REVISIONS = 100
PAIRS = 7
ALEMBIC_VENV = ROOT / ".bench" / "alembic"

ALEMBIC_SCRIPT = '''"""No-op revision {n}."""

revision = "{rev}"
down_revision = {down}
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
'''
ALEMBIC_ENV = """from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
section = config.get_section(config.config_ini_section)
connectable = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
"""


def alembic_bin() -> Path:
    binary = ALEMBIC_VENV / "bin" / "alembic"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(ALEMBIC_VENV)], check=True)
        subprocess.run(
            [str(ALEMBIC_VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "alembic"],
            check=True,
        )
    return binary


def write_projects(base: Path) -> tuple[Path, Path]:
    migrations = base / "cosmigrate" / "migrations"
    versions = base / "alembic" / "migrations" / "versions"
    migrations.mkdir(parents=True)
    versions.mkdir(parents=True)
    for n in range(1, REVISIONS + 1):
        rev, down = f"{n:03d}", repr(f"{n - 1:03d}") if n > 1 else "None"
        (migrations / f"{rev}_noop.py").write_text(NOOP_SCRIPT.format(n=n, rev=rev, down=down))
        (versions / f"{rev}_noop.py").write_text(ALEMBIC_SCRIPT.format(n=n, rev=rev, down=down))
    (base / "alembic" / "migrations" / "env.py").write_text(ALEMBIC_ENV)
    (base / "alembic" / "alembic.ini").write_text(
        "[alembic]\nscript_location = migrations\nsqlalchemy.url = sqlite:///PLACEHOLDER\n"
    )
    return migrations, base / "alembic"


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-1500:]}")
    return took


def measure() -> dict[str, float]:
    alembic = alembic_bin()
    with endpoint_for_bench() as url, tempfile.TemporaryDirectory() as tmp:
        migrations, alembic_project = write_projects(Path(tmp))
        env = quiet_env()
        cosmigrate_times, alembic_times, ratios = [], [], []
        for round_number in range(PAIRS + 1):  # the first pair warms both up and is not counted
            database = f"noop{uuid.uuid4().hex[:8]}"
            ours = timed(
                [sys.executable, "-m", "cosmigrate", "up", "--endpoint", url, "--database", database,
                 "--create-database", "--migrations", str(migrations)],
                ROOT, env,
            )  # fmt: skip
            sqlite = Path(tmp) / f"db{round_number}.sqlite"
            ini = alembic_project / "alembic.ini"
            ini.write_text(ini.read_text().split("sqlalchemy.url")[0] + f"sqlalchemy.url = sqlite:///{sqlite}\n")
            theirs = timed([str(alembic), "upgrade", "head"], alembic_project, env)
            if round_number:
                cosmigrate_times.append(ours)
                alembic_times.append(theirs)
                ratios.append(ours / theirs)
    return {
        "cosmigrate up, 100 no-op revisions (s, median)": round(statistics.median(cosmigrate_times), 3),
        "alembic upgrade head, 100 no-op revisions on SQLite (s, median)": round(statistics.median(alembic_times), 3),
        "ratio cosmigrate / alembic (median of pairs)": round(statistics.median(ratios), 2),
    }


def main() -> None:
    for name, value in measure().items():
        print(f"{name:<66} {value:g}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
