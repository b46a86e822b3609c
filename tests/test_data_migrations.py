"""Data work through migrations and the command line: backups before a drop (and their restore), export and
import, op.transform_items killed half-way and resumed after repair + up, op.copy_container to a new partition
key. The engine itself is tested in test_data_*.py; here, how the runner wires it to the lock and the history."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.cosmos import CosmosClient, PartitionKey

from cosmigrate.app import commands as command
from cosmigrate.config import Config
from cosmigrate.data.deadletter import read_dead_letters
from cosmigrate.errors import ScriptError
from tests.conftest import ROOT, CliResult
from tests.harness.data import all_documents
from tests.harness.seed import seed


def revision(name: str, number: str, down: str | None, upgrade: str, downgrade: str = "    pass", top: str = "") -> str:
    return (
        f'"""{name}."""\n\n{top}revision = "{number}"\ndown_revision = {down!r}\n\n\n'
        f"def upgrade(op):\n{upgrade}\n\n\ndef downgrade(op):\n{downgrade}\n"
    )


def test_up_backs_up_a_legacy_container_before_dropping_it_and_import_restores_it(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str, tmp_path: Path
) -> None:
    database = cosmos.create_database(database_name)
    legacy = database.create_container("tenant-integrations", partition_key=PartitionKey("/tenantId"))
    for n in range(50):
        legacy.create_item({"id": f"t{n}", "tenantId": f"tenant{n % 5}", "status": "disabled", "n": n})
    before = all_documents(legacy)

    up = run_cli("up", "--backup-dir", str(tmp_path / "backups"))
    assert up.code == 0, up.stderr
    assert "backup:" in up.stdout and "(50 documents)" in up.stdout
    assert "tenant-integrations" not in {c["id"] for c in database.list_containers()}
    folders = list((tmp_path / "backups" / database_name).iterdir())
    assert len(folders) == 1 and folders[0].name.endswith("-004")
    manifest = json.loads((folders[0] / "manifest.json").read_text())
    assert manifest["containers"]["tenant-integrations"]["count"] == 50

    events = json.loads(run_cli("history", "--json").stdout)["events"]
    applied = next(e for e in events if e["event"] == "applied" and e["revision"] == "004")
    assert applied["detail"]["backups"] == [
        {"container": "tenant-integrations", "documents": 50, "path": str(folders[0])}
    ]
    assert f"backup={folders[0]}" in run_cli("history").stdout

    restored = f"{database_name}r"
    try:
        done = run_cli("import", str(folders[0]), "--database", restored, "--create-database")
        assert done.code == 0, done.stderr
        assert "imported tenant-integrations: 50 documents (container created)" in done.stdout
        assert "has no applied migrations" in done.stdout and "cosmigrate stamp REV" in done.stdout
        copy = cosmos.get_database_client(restored).get_container_client("tenant-integrations")
        assert all_documents(copy) == before
        assert copy.read()["partitionKey"]["paths"] == ["/tenantId"]
    finally:
        cosmos.delete_database(restored)


def test_no_backup_is_said_loudly_and_recorded(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str, tmp_path: Path
) -> None:
    database = cosmos.create_database(database_name)
    legacy = database.create_container("tenant-integrations", partition_key=PartitionKey("/tenantId"))
    legacy.create_item({"id": "a", "tenantId": "t", "status": "disabled"})
    up = run_cli("up", "--no-backup", "--backup-dir", str(tmp_path / "backups"))
    assert up.code == 0 and "dropping without a backup" in up.stderr
    assert not (tmp_path / "backups").exists()
    events = json.loads(run_cli("history", "--json").stdout)["events"]
    applied = next(e for e in events if e["event"] == "applied" and e["revision"] == "004")
    assert applied["detail"]["backups"][0]["skipped"] is True
    history = run_cli("history").stdout
    assert "backup=none (--no-backup)" in history and "None" not in history


def test_export_and_import_through_the_cli(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str, tmp_path: Path
) -> None:
    assert run_cli("up").code == 0
    exported = run_cli("export", "--out", str(tmp_path / "dump"), "--json")
    assert exported.code == 0, exported.stderr
    body = json.loads(exported.stdout)
    assert body["documents"] == {"integration-connections": 0, "integration_providers": 8, "integrations": 0}
    assert "cosmigrate_history" not in body["documents"]
    providers = cosmos.get_database_client(database_name).get_container_client("integration_providers")
    providers.delete_item("slack-provider", partition_key="communication")
    again = run_cli("import", str(tmp_path / "dump"), "--container", "integration_providers")
    assert again.code == 0 and "imported integration_providers: 8 documents" in again.stdout
    assert "next:" not in again.stdout  # into a migrated database: nothing more to do
    assert len(all_documents(providers)) == 8
    tampered = tmp_path / "dump" / "integration_providers" / "documents.jsonl"
    tampered.write_text(tampered.read_text().replace("Slack", "Slock"))
    refused = run_cli("import", str(tmp_path / "dump"))
    assert refused.code == 1 and "integration_providers" in refused.stderr
    fresh = f"{database_name}-restored"
    not_created = run_cli("import", str(tmp_path / "dump"), "--create-database", "--database", fresh)
    assert not_created.code == 1 and "integration_providers" in not_created.stderr
    assert fresh not in {d["id"] for d in cosmos.list_databases()}  # a bad backup creates no database


TRANSFORM = """    def add_points(doc):
        with open({calls!r}, "a") as calls:
            calls.write(doc["id"] + "\\n")
        time.sleep(0.002)
        if "points" in doc:  # idempotent, as transform_items asks: a page read again changes nothing
            return None
        doc["points"] = 100
        return doc

    op.transform_items("customers", add_points, page_size=50, concurrency=4, checkpoint_every=1)"""


def points_under_way(
    tmp_path: Path,
    make_config: Callable[..., Config],
    cli_env: dict[str, str],
    endpoint: str,
    transform: str,
    count: int,
    done: int,
) -> tuple[Config, subprocess.Popen[bytes], Path]:
    """001 creates customers (``count`` of them seeded), 002 runs ``transform`` over them, its fn logging each
    call to a file; ``cosmigrate up`` runs in a process of its own, returned once fn ran ``done`` times."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    calls = tmp_path / "calls.txt"
    (folder / "001_customers.py").write_text(
        revision("Customers", "001", None, "    op.create_container('customers', partition_key='/pk')",
                 "    op.delete_container('customers')", top="idempotent = True\n")
    )  # fmt: skip
    (folder / "002_points.py").write_text(
        revision("Welcome points", "002", "001", transform.format(calls=str(calls)), top="import time\n\n")
    )
    config = make_config(migrations=folder)
    command.up(config, target="001")
    seed(endpoint, config.database, "customers", count)
    with (tmp_path / "up.stderr").open("w") as stderr:  # a file, never a pipe nobody reads while it runs
        process = subprocess.Popen(
            [sys.executable, "-m", "cosmigrate", "up"],
            env={**cli_env, "COSMIGRATE_MIGRATIONS": str(folder), "COSMIGRATE_LOCK_TTL": "2"},
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while (len(calls.read_text().split()) if calls.exists() else 0) < done:
        assert time.monotonic() < deadline and process.poll() is None, f"fn did not run {done} times"
        time.sleep(0.05)
    return config, process, calls


def test_a_transform_killed_half_way_resumes_after_repair_and_up_from_its_checkpoint(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient, cli_env: dict[str, str], endpoint: str
) -> None:
    """The revision is not declared idempotent, so the kill needs a repair; then up resumes where the checkpoint
    says, reading again no more than the pages that were in flight, and no customer gets points twice."""
    count = 3000
    config, process, calls = points_under_way(tmp_path, make_config, cli_env, endpoint, TRANSFORM, count, count // 2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    first = Counter(calls.read_text().split())
    assert count // 2 <= sum(first.values()) < count

    time.sleep(3.5)  # the killed run's 2 s lease expires by the database's clock
    assert [v.revision for v in command.status(config).interrupted] == ["002"]
    assert command.repair(config, lambda _q: True).to_pending == ["002"]
    assert [s.revision for s in command.up(config).steps] == ["002"]
    both = Counter(calls.read_text().split())
    again = {d for d, n in both.items() if n > 1}
    assert len(again) <= (2 + 4 + 1 + 2) * 50, f"{len(again)} documents read again"
    documents = all_documents(cosmos.get_database_client(config.database).get_container_client("customers"))
    assert len(documents) == count
    assert {d.get("points") for d in documents.values()} == {100}  # resumed pages were ETag-checked: nobody at 200

    history = command.history(config)
    applied = next(e for e in history.events if e["event"] == "applied" and e["revision"] == "002")
    totals = applied["detail"]["totals"][0]
    assert totals["kind"] == "transform_items" and totals["container"] == "customers" and totals["written"] > 0


def orders_folder(tmp_path: Path) -> Path:
    """A migrations folder whose 001 creates ``orders`` (partition key ``/pk``)."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_orders.py").write_text(
        revision("Orders", "001", None, "    op.create_container('orders', partition_key='/pk')",
                 "    op.delete_container('orders')")
    )  # fmt: skip
    return folder


def test_a_copy_to_a_new_partition_key_through_a_migration(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient, endpoint: str
) -> None:
    folder = orders_folder(tmp_path)
    (folder / "002_by_customer.py").write_text(
        revision(
            "Orders by customer",
            "002",
            "001",
            "    op.create_container('orders_by_customer', partition_key='/customer')\n"
            "    op.copy_container('orders', 'orders_by_customer', lambda d: {**d, 'customer': d['pk']},\n"
            "                      load_with_indexing_off=True)",
            "    op.delete_container('orders_by_customer')",
        )
    )
    config = make_config(migrations=folder)
    command.up(config, target="001")
    seed(endpoint, config.database, "orders", 2000)
    plan = command.plan(config)
    assert [o["kind"] for o in plan.revisions[0]["operations"]] == ["create_container", "copy_container"]
    result = command.up(config)
    assert [s.revision for s in result.steps] == ["002"]
    target = cosmos.get_database_client(config.database).get_container_client("orders_by_customer")
    copied = all_documents(target)
    assert len(copied) == 2000 and all(d["customer"] == d["pk"] for d in copied.values())
    assert target.read()["indexingPolicy"]["indexingMode"].lower() == "consistent"  # indexing back on


DEAD_LETTERING = """    def label(doc):
        if doc["n"] in (3, 7):
            raise ValueError("no label for " + doc["id"])
        doc["label"] = "v2"
        return doc

    def by_customer(doc):
        if doc["n"] == 5:
            raise ValueError("no customer")
        return {**doc, "customer": doc["pk"]}

    op.transform_items("orders", label, max_failures=5)
    op.create_container("orders_v2", partition_key="/customer")
    op.copy_container("orders", "orders_v2", by_customer, max_failures=1)"""


def test_up_and_history_name_the_dead_letters_of_a_revision_that_passed_with_some(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient, run_cli: Callable[..., CliResult]
) -> None:
    folder = orders_folder(tmp_path)
    (folder / "002_label.py").write_text(revision("Label v2", "002", "001", DEAD_LETTERING))
    config = make_config(migrations=folder)
    command.up(config, target="001")
    orders = cosmos.get_database_client(config.database).get_container_client("orders")
    for n in range(20):
        orders.create_item({"id": f"o{n:05d}", "pk": f"t{n % 2}", "n": n})

    env = {"COSMIGRATE_MIGRATIONS": str(folder)}
    up = run_cli("up", "--backup-dir", str(tmp_path / "backups"), env=env)
    assert up.code == 0, up.stderr
    folders = tmp_path / "backups" / config.database  # the two steps may start in different seconds: two folders
    [transform_file] = folders.glob("*-002-dead-letters/orders.jsonl")
    [copy_file] = folders.glob("*-002-dead-letters/orders-to-orders_v2.jsonl")
    assert len(read_dead_letters(transform_file)) == 2 and len(read_dead_letters(copy_file)) == 1
    applied = next(e for e in command.history(config).events if e["event"] == "applied" and e["revision"] == "002")
    ru = [f"{totals['ru']:,.0f} RU" for totals in applied["detail"]["totals"]]  # as recorded, the RU each spent
    assert all(r != "0 RU" for r in ru)
    assert f"transform orders: 20 read, 18 written, {ru[0]}, 2 dead-lettered → {transform_file}" in up.stdout
    assert f"copy orders → orders_v2: 20 read, 19 written, {ru[1]}, 1 dead-lettered → {copy_file}" in up.stdout
    [done] = [line for line in up.stderr.splitlines() if "transform done" in line]
    assert "dead_lettered=2" in done and "done=20" in done

    history = run_cli("history", env=env).stdout
    line = next(line for line in history.splitlines() if "applied" in line and " 002 " in line)
    assert f"dead_lettered=2 → {transform_file}" in line and f"dead_lettered=1 → {copy_file}" in line


def test_options_of_data_steps_are_checked_before_anything_runs(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_x.py").write_text(
        revision("X", "001", None, "    op.create_container('x', partition_key='/pk')\n"
                 "    op.transform_items('x', lambda d: d, pagesize=10)")
    )  # fmt: skip
    config = make_config(migrations=folder)
    with pytest.raises(ScriptError, match=r"001_x.py:\d+: transform_items: unknown option 'pagesize'"):
        command.up(config)
    assert config.database not in {d["id"] for d in cosmos.list_databases()}  # nothing was created


TWO_TRANSFORMS = """    def first(doc):
        if doc["n"] == 3:
            raise ValueError("first step: no " + doc["id"])
        return {**doc, "a": 1}

    def second(doc):
        if doc["n"] == 8:
            raise ValueError("second step: no " + doc["id"])
        return {**doc, "b": 1}

    op.transform_items("orders", first, max_failures=1)
    op.transform_items("orders", second, max_failures=1)"""


def test_two_data_steps_over_one_container_keep_their_dead_letters_apart(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    """Both usually run within one second, the resolution of the run's dead-letter folder."""
    folder = orders_folder(tmp_path)
    (folder / "002_two.py").write_text(revision("Two steps", "002", "001", TWO_TRANSFORMS))
    config = make_config(migrations=folder, backup_dir=str(tmp_path / "backups"))
    command.up(config, target="001")
    orders = cosmos.get_database_client(config.database).get_container_client("orders")
    for n in range(10):
        orders.create_item({"id": f"o{n:05d}", "pk": f"t{n % 2}", "n": n})
    command.up(config)
    applied = next(e for e in command.history(config).events if e["event"] == "applied" and e["revision"] == "002")
    files = [Path(step["dead_letter"]) for step in applied["detail"]["totals"]]
    assert len(set(files)) == 2
    assert [[line["id"] for line in read_dead_letters(f)] for f in files] == [["o00003"], ["o00008"]]


NOT_IDEMPOTENT = """    def add_points(doc):
        with open({calls!r}, "a") as calls:
            calls.write(doc["id"] + "\\n")
        time.sleep(0.002)
        doc["points"] = doc.get("points", 0) + 100  # run twice, a customer gets 200
        return doc

    op.transform_items("customers", add_points, page_size=50, concurrency=4)"""


def test_a_transform_stopped_by_sigterm_resumes_without_doing_any_document_twice(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient, cli_env: dict[str, str], endpoint: str
) -> None:
    """A clean stop saves the documents it handled in the pages in flight: after repair and up, fn has run once
    per document, even though it is not idempotent."""
    count = 2000
    config, process, calls = points_under_way(
        tmp_path, make_config, cli_env, endpoint, NOT_IDEMPOTENT, count, count // 3
    )
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 1, (tmp_path / "up.stderr").read_text()[-2000:]
    assert sum(Counter(calls.read_text().split()).values()) < count
    assert [v.revision for v in command.status(config).interrupted] == ["002"]

    assert command.repair(config, lambda _q: True).to_pending == ["002"]
    assert [s.revision for s in command.up(config).steps] == ["002"]
    assert Counter(calls.read_text().split()) == Counter({d: 1 for d in all_documents_ids(cosmos, config)})
    customers = cosmos.get_database_client(config.database).get_container_client("customers")
    assert {d.get("points") for d in all_documents(customers).values()} == {100}


def all_documents_ids(cosmos: CosmosClient, config: Config) -> list[str]:
    return list(all_documents(cosmos.get_database_client(config.database).get_container_client("customers")))
