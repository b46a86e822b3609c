"""Helper modules are part of a migration (issue 14, point 4): a migration's checksum and the sum file cover the
files of the migrations folder it imports, so an edited helper is a changed revision in ``status``,
``check --online`` and ``repair`` (with the helper's diff), and a stale sum file offline.

The loader and the sum file are tested on files alone; the history on the suite's local endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.cosmos import CosmosClient

from cosmigrate.app import commands as command
from cosmigrate.config import Config
from cosmigrate.errors import HistoryConflict
from cosmigrate.scripts import sumfile
from cosmigrate.scripts.lint import lint
from cosmigrate.scripts.loader import load
from cosmigrate.store.history import HistoryStore
from cosmigrate.store.records import SCOPE, source_id
from tests.conftest import MIGRATIONS, CliResult


def YES(_question: str) -> bool:
    return True


def old_checksum(content: bytes) -> str:
    """The checksum every cosmigrate before helpers were covered recorded: the script's file alone, LF, no BOM."""
    content = content.removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return "sha256:" + hashlib.sha256(content).hexdigest()


def script(revision: str, down: str | None, upgrade: str, top: str = "") -> str:
    return (
        f'"""Revision {revision}."""\n\n{top}revision = "{revision}"\ndown_revision = {down!r}\nidempotent = True\n\n\n'
        f"def upgrade(op):\n{upgrade}\n\n\ndef downgrade(op):\n    pass\n"
    )


POLICY = (
    'POLICY = {"indexingMode": "consistent", "includedPaths": [{"path": "/tenantId/?"}], '
    '"excludedPaths": [{"path": "/*"}]}\n'
)
EDITED_POLICY = POLICY.replace("/tenantId/?", "/createdAt/?")


def two_users_of_a_helper(folder: Path) -> Path:
    """001 and 002 each create a container with ``POLICY`` from ``_helpers.py``; 003 imports nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "_helpers.py").write_text(POLICY)
    top = "from _helpers import POLICY\n\n"
    (folder / "001_a.py").write_text(
        script("001", None, "    op.create_container('a', partition_key='/tenantId', indexing_policy=POLICY)", top)
    )
    (folder / "002_b.py").write_text(
        script("002", "001", "    op.create_container('b', partition_key='/tenantId', indexing_policy=POLICY)", top)
    )
    (folder / "003_c.py").write_text(script("003", "002", "    op.create_container('c', partition_key='/id')"))
    sumfile.write(folder)
    return folder


def history_container(cosmos: CosmosClient, config: Config) -> Any:
    return cosmos.get_database_client(config.database).get_container_client(config.history_container)


# -- the loader: what a checksum covers (no database) ----------------------------------------------------------


def test_a_script_importing_no_helper_keeps_exactly_the_checksum_of_its_file(tmp_path: Path) -> None:
    plain = tmp_path / "001_a.py"
    plain.write_bytes(script("001", None, "    import json\n    op.create_container('a', '/id')").encode())
    (tmp_path / "_unused.py").write_text("X = 1\n")  # beside it, not imported: not covered
    loaded = load(plain)
    assert loaded.checksum == loaded.script_checksum == old_checksum(plain.read_bytes())
    assert loaded.helpers == ()
    for path in sorted(MIGRATIONS.glob("[0-9]*.py")):  # this project's own: existing databases see no change
        assert load(path).checksum == old_checksum(path.read_bytes()), path.name
    assert sumfile.compute(MIGRATIONS) == (MIGRATIONS / sumfile.SUM_FILE).read_text()


def test_a_helper_and_the_helper_it_imports_are_covered(tmp_path: Path) -> None:
    (tmp_path / "_base.py").write_text("PATH = '/tenantId/?'\n")
    (tmp_path / "_helpers.py").write_text("from _base import PATH\n\nPOLICY = {'includedPaths': [{'path': PATH}]}\n")
    path = tmp_path / "001_a.py"
    path.write_text(script("001", None, "    pass", top="import json\nfrom _helpers import POLICY\n\n"))
    before = load(path)
    assert [h.name for h in before.helpers] == ["_base.py", "_helpers.py"]  # json is not the folder's
    assert before.script_checksum == old_checksum(path.read_bytes()) != before.checksum

    (tmp_path / "_base.py").write_text("PATH = '/createdAt/?'\n")  # two imports away from the script
    after = load(path)
    assert after.checksum != before.checksum and after.script_checksum == before.script_checksum
    assert after.helper_checksums["_helpers.py"] == before.helper_checksums["_helpers.py"]
    assert after.helper_checksums["_base.py"] != before.helper_checksums["_base.py"]

    (tmp_path / "_base.py").write_bytes(b"\xef\xbb\xbfPATH = '/tenantId/?'\r\n")  # CRLF and a BOM: no change
    assert load(path).checksum == before.checksum


@pytest.mark.parametrize(
    "imports",
    ["import _pkg.sub", "from _pkg import sub", "from _pkg.sub import VALUE"],
)
def test_a_helper_package_is_covered_with_its_init_and_relative_imports(tmp_path: Path, imports: str) -> None:
    package = tmp_path / "_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "sub.py").write_text("from .inner import BASE\n\nVALUE = BASE + 1\n")
    (package / "inner.py").write_text("BASE = 1\n")
    (package / "unused.py").write_text("NOTHING = 0\n")
    path = tmp_path / "001_a.py"
    path.write_text(script("001", None, "    pass", top=f"{imports}\n\n"))
    before = load(path)
    assert [h.name for h in before.helpers] == ["_pkg/__init__.py", "_pkg/inner.py", "_pkg/sub.py"]
    (package / "inner.py").write_text("BASE = 2\n")
    assert load(path).checksum != before.checksum
    (package / "unused.py").write_text("NOTHING = 1\n")
    (package / "inner.py").write_text("BASE = 1\n")
    assert load(path).checksum == before.checksum


def test_an_edited_helper_package_is_imported_again_as_its_checksum_is_taken(tmp_path: Path) -> None:
    """The loader drops a package's modules from sys.modules too, so what runs is the text checksummed."""
    package = tmp_path / "_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "sub.py").write_text("VALUE = 'first'\n")
    path = tmp_path / "001_a.py"
    path.write_text(script("001", None, "    op.append(VALUE)", top="from _pkg.sub import VALUE\n\n"))
    ran: list[str] = []
    load(path).upgrade(ran)
    (package / "sub.py").write_text("VALUE = 'second'\n")
    load(path).upgrade(ran)
    assert ran == ["first", "second"]
    assert not [name for name in sys.modules if name.startswith("_pkg")]


# -- the sum file (no database) --------------------------------------------------------------------------------


def test_the_sum_file_lists_each_helper_once_after_the_migrations(tmp_path: Path) -> None:
    folder = two_users_of_a_helper(tmp_path)
    names = [line.split(" ")[0] for line in sumfile.compute(folder).splitlines()[1:]]
    assert names == ["001_a.py", "002_b.py", "003_c.py", "_helpers.py"]
    assert sumfile.verify(folder) == []


def test_an_edited_helper_makes_the_sum_file_stale_naming_it_and_the_revisions_using_it(
    tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    folder = two_users_of_a_helper(tmp_path)
    (folder / "_helpers.py").write_text(EDITED_POLICY)
    problems = sumfile.verify(folder)
    assert [(p.code, p.file) for p in problems] == [("sum-mismatch", "_helpers.py")]
    message = problems[0].message
    assert "helper used by revisions 001 (001_a.py) and 002 (002_b.py), changed since cosmigrate.sum" in message
    assert "cosmigrate hash" in message and "003" not in message

    offline = run_cli("check", "--migrations", str(folder))
    assert offline.code == 1 and "_helpers.py: helper used by revisions 001 (001_a.py) and 002" in offline.stdout
    assert run_cli("hash", "--migrations", str(folder)).code == 0
    assert run_cli("check", "--migrations", str(folder)).code == 0


def test_a_transitively_imported_helper_edited_makes_the_sum_file_stale(tmp_path: Path) -> None:
    (tmp_path / "_base.py").write_text("PATH = '/a/?'\n")
    (tmp_path / "_helpers.py").write_text("from _base import PATH\n")
    (tmp_path / "001_a.py").write_text(script("001", None, "    pass", top="from _helpers import PATH\n\n"))
    sumfile.write(tmp_path)
    (tmp_path / "_base.py").write_text("PATH = '/b/?'\n")
    problems = lint(tmp_path).problems
    assert [(p.code, p.file, p.revision) for p in problems] == [("sum-mismatch", "_base.py", "001")]
    assert "helper used by revision 001 (001_a.py), changed since" in problems[0].message


def test_a_sum_file_without_the_helpers_and_a_helper_no_longer_imported_are_stale(tmp_path: Path) -> None:
    folder = two_users_of_a_helper(tmp_path)
    written = sumfile.compute(folder)
    lines = [line for line in written.splitlines()[1:] if not line.startswith("_")]  # as an older cosmigrate wrote
    body = "".join(line + "\n" for line in lines)
    total = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    (folder / sumfile.SUM_FILE).write_text(f"h1:{total}\n{body}")
    [missing] = sumfile.verify(folder)
    assert missing.file == "_helpers.py" and "not in cosmigrate.sum" in missing.message
    assert "revisions 001 (001_a.py) and 002 (002_b.py)" in missing.message

    sumfile.write(folder)
    for name in ("001_a.py", "002_b.py"):
        path = folder / name
        path.write_text(path.read_text().replace("from _helpers import POLICY\n", "POLICY = {}\n"))
    unused = [p for p in sumfile.verify(folder) if p.file == "_helpers.py"]
    assert len(unused) == 1 and "as a helper, but no migration imports it now" in unused[0].message


# -- the history, on a real endpoint ---------------------------------------------------------------------------


def test_an_edited_helper_is_a_changed_revision_for_status_check_online_and_up(
    tmp_path: Path, make_config: Callable[..., Config], run_cli: Callable[..., CliResult]
) -> None:
    """The issue's case: editing POLICY in _helpers.py passed check, check --online and status, and up said
    there was nothing to do."""
    folder = two_users_of_a_helper(tmp_path / "migrations")
    config = make_config(migrations=folder)
    command.up(config)
    assert command.status(config).refusal is None

    (folder / "_helpers.py").write_text(EDITED_POLICY)
    status = command.status(config)
    assert [v.revision for v in status.changed] == ["001", "002"]
    for view in status.changed:
        assert "the helper _helpers.py it imports changed since it was applied" in str(view.error)
        assert "_helpers.py is used by revisions 001 and 002" in str(view.error)
    assert status.refusal is not None and "_helpers.py" in status.refusal

    env = {"COSMIGRATE_MIGRATIONS": str(folder)}
    shown = run_cli("status", env=env)
    assert shown.code == 1 and "002       changed" in shown.stdout and "003       applied" in shown.stdout
    assert "up would refuse: revision 002 (002_b.py): the helper _helpers.py it imports changed" in shown.stdout

    with pytest.raises(HistoryConflict) as refused:
        command.up(config)
    assert str(refused.value) == status.refusal  # up says what status says
    up = run_cli("up", env=env)
    assert up.code == 1 and "nothing to do" not in up.stdout + up.stderr and status.refusal in up.stderr

    sumfile.write(folder)  # offline, everything is in order again: only the database knows what ran
    assert run_cli("check", env=env).code == 0
    online = run_cli("check", "--online", "--json", env=env)
    assert online.code == 1
    problems = json.loads(online.stdout)["problems"]
    assert {(p["file"], p["code"]) for p in problems} == {("001_a.py", "changed"), ("002_b.py", "changed")}
    assert all("_helpers.py is used by revisions 001 and 002" in p["message"] for p in problems)


def test_repair_shows_the_helpers_diff_then_records_it(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    folder = two_users_of_a_helper(tmp_path / "migrations")
    config = make_config(migrations=folder)
    command.up(config)
    (folder / "_helpers.py").write_text(EDITED_POLICY)

    asked: list[str] = []
    result = command.repair(config, lambda question: asked.append(question) or True)
    assert result.accepted == ["001", "002"]
    for revision in ("001", "002"):
        diff = result.diffs[revision]
        assert "--- _helpers.py (as applied)" in diff and "+++ _helpers.py (now)" in diff
        assert f"-{POLICY.strip()}" in diff and f"+{EDITED_POLICY.strip()}" in diff
        assert f"{revision}_" not in diff  # the script itself did not change: no diff of it
    assert "-" + POLICY.strip() in asked[0]
    assert result.sum_hint is not None and "_helpers.py" in result.sum_hint
    status = command.status(config)
    assert status.changed == [] and status.refusal is None

    # the history kept the helper's text that ran: a second edit is shown against the accepted one
    records = HistoryStore(cosmos.get_database_client(config.database), config.history_container).snapshot()
    kept = history_container(cosmos, config).read_item(records.records["001"].source, partition_key=SCOPE)
    assert kept["helpers"] == {"_helpers.py": EDITED_POLICY}
    (folder / "_helpers.py").write_text(EDITED_POLICY.replace("/createdAt/?", "/updatedAt/?"))
    again = command.repair(config, YES)
    assert "-" + EDITED_POLICY.strip() in again.diffs["001"]


def test_a_revision_run_with_a_transitive_helper_is_changed_when_that_helper_is(
    tmp_path: Path, make_config: Callable[..., Config]
) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "_base.py").write_text("KEY = '/tenantId'\n")
    (folder / "_helpers.py").write_text("from _base import KEY\n")
    (folder / "001_a.py").write_text(
        script("001", None, "    op.create_container('a', partition_key=KEY)", top="from _helpers import KEY\n\n")
    )
    config = make_config(migrations=folder)
    command.up(config)
    (folder / "_base.py").write_text("KEY = '/tenantId'  # the tenant\n")
    [changed] = command.status(config).changed
    assert "the helper _base.py it imports changed" in str(changed.error)
    assert "_base.py is used by revision 001" in str(changed.error)
    result = command.repair(config, YES)
    assert "+KEY = '/tenantId'  # the tenant" in result.diffs["001"]
    assert command.status(config).changed == []


def as_written_by_an_older_cosmigrate(cosmos: CosmosClient, config: Config, revision: str, path: Path) -> None:
    """Rewrite a revision's record and source as a cosmigrate before helpers were covered wrote them: the
    checksum of the script alone, no ``script_checksum`` nor ``helpers``, a source without helpers."""
    container = history_container(cosmos, config)
    record = container.read_item(f"rev-{revision}", partition_key=SCOPE)
    own = old_checksum(path.read_bytes())
    for key in ("script_checksum", "helpers"):
        record.pop(key)
    record.update(checksum=own, source=source_id(revision, own))
    container.upsert_item({k: v for k, v in record.items() if not k.startswith("_")})
    text = path.read_bytes().decode()
    digest = hashlib.sha256(text.encode()).hexdigest()
    container.upsert_item(
        {"id": source_id(revision, own), "scope": SCOPE, "kind": "source", "revision": revision, "checksum": own,
         "text": text, "sha256": digest}
    )  # fmt: skip


def test_a_record_of_an_older_cosmigrate_compares_the_script_and_repair_records_its_helpers(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient, run_cli: Callable[..., CliResult]
) -> None:
    folder = two_users_of_a_helper(tmp_path / "migrations")
    config = make_config(migrations=folder)
    command.up(config)
    as_written_by_an_older_cosmigrate(cosmos, config, "001", folder / "001_a.py")

    status = command.status(config)  # not changed: the checksum scheme grew, the revision did not
    assert status.changed == [] and status.refusal is None
    view = next(v for v in status.revisions if v.revision == "001")
    assert view.state == "applied" and view.unverified_helpers == ["_helpers.py"]
    assert "did not record helpers: _helpers.py, which it imports, is not verified" in str(view.note)
    assert next(v for v in status.revisions if v.revision == "002").note is None
    env = {"COSMIGRATE_MIGRATIONS": str(folder)}
    shown = run_cli("status", env=env)
    assert shown.code == 0 and "001: note: applied by a cosmigrate that did not record helpers" in shown.stdout
    assert command.up(config).steps == []
    assert run_cli("check", "--online", env=env).code == 0

    script = folder / "001_a.py"  # the script part is still compared
    original = script.read_text()
    script.write_text(original.replace("'a'", "'a2'"))
    [changed] = command.status(config).changed
    assert "001_a.py changed since it was applied" in str(changed.error)
    script.write_text(original)

    asked: list[str] = []
    repaired = command.repair(config, lambda question: asked.append(question) or True)
    assert repaired.recorded == ["001"] and repaired.accepted == []
    assert "001: record the helpers it imports (_helpers.py) as they are now" in asked[0]
    after = command.status(config)
    assert after.changed == [] and all(v.note is None for v in after.revisions)
    record = HistoryStore(cosmos.get_database_client(config.database), config.history_container).snapshot()
    assert record.records["001"].helpers is not None and "_helpers.py" in record.records["001"].helpers
    assert command.repair(config, YES).nothing

    (folder / "_helpers.py").write_text(EDITED_POLICY)  # recorded now: an edit is a change
    assert [v.revision for v in command.status(config).changed] == ["001", "002"]


def test_an_older_record_whose_script_changed_is_repaired_with_the_script_diff_and_its_helpers_recorded(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    folder = two_users_of_a_helper(tmp_path / "migrations")
    config = make_config(migrations=folder)
    command.up(config)
    as_written_by_an_older_cosmigrate(cosmos, config, "001", folder / "001_a.py")
    script = folder / "001_a.py"
    script.write_text(script.read_text().replace("'/tenantId', ", "'/tenantId',  "))
    result = command.repair(config, YES)
    assert result.accepted == ["001"]
    diff = result.diffs["001"]
    assert "--- 001_a.py (as applied)" in diff and "+++ 001_a.py (now)" in diff
    assert "its helper _helpers.py was not recorded by the cosmigrate that applied it: accepted as" in diff
    (folder / "_helpers.py").write_text(EDITED_POLICY)
    assert "001" in [v.revision for v in command.status(config).changed]
