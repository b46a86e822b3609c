"""Migration lint (``plan/analyzers.py``): each rule finds what it is for, stays quiet on the safe variant, and is
silenced by ``lint_ignore`` with a reason. Pure: the scripts are replayed on a simulated database."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosmigrate.app.offline import lint_findings
from cosmigrate.errors import ScriptError
from cosmigrate.scripts.loader import load_all

POLICY = "{'includedPaths': [{'path': '/*'}], 'compositeIndexes': [[{'path': '/a'}, {'path': '/b'}]]}"
OTHER = "{'includedPaths': [{'path': '/*'}], 'compositeIndexes': [[{'path': '/a'}, {'path': '/c'}]]}"
BOTH = (
    "{'includedPaths': [{'path': '/*'}], "
    "'compositeIndexes': [[{'path': '/a'}, {'path': '/b'}], [{'path': '/a'}, {'path': '/c'}]]}"
)
NARROW = (
    "{'includedPaths': [{'path': '/a/*'}], 'excludedPaths': [{'path': '/*'}], "
    "'compositeIndexes': [[{'path': '/a'}, {'path': '/b'}]]}"
)


def write(folder: Path, revision: str, body: str, top: str = "") -> None:
    down = None if revision == "001" else f"{int(revision) - 1:03d}"
    (folder / f"{revision}_r.py").write_text(
        f'"""Revision {revision}."""\nrevision = "{revision}"\ndown_revision = {down!r}\n{top}\n\n'
        f"def upgrade(op):\n{body}\n\n\ndef downgrade(op):\n    pass\n"
    )


def codes(folder: Path) -> list[tuple[str, str]]:
    return [(f.code, f.revision) for f in lint_findings(load_all(folder).ordered)]


BASE = f"    op.create_container('t', '/pk', indexing_policy={POLICY})"
CASES = {
    "CM101": (
        [BASE, "    op.delete_container('t')"],
        [BASE, "    op.alter_container('t', default_ttl=60)"],
    ),
    "CM102": (
        [BASE, "    op.delete_container('t')\n    op.create_container('t', '/other')"],
        [BASE, "    op.create_container('t2', '/other')"],
    ),
    "CM201": (
        [BASE, f"    op.replace_indexing_policy('t', {NARROW})"],
        [BASE, f"    op.replace_indexing_policy('t', {BOTH})"],
    ),
    "CM202": (
        [BASE, f"    op.replace_indexing_policy('t', {OTHER})"],
        [BASE, f"    op.replace_indexing_policy('t', {BOTH})"],
    ),
    "CM301": (
        [BASE + "\n    op.create_container('u', '/pk', unique_keys=[['/email']])", "    op.copy_container('t', 'u')"],
        [BASE + "\n    op.create_container('u', '/pk')", "    op.copy_container('t', 'u')"],
    ),
    "CM401": (
        [BASE, "    op.alter_container('t', analytical_storage_ttl=0)"],
        [BASE, "    op.alter_container('t', analytical_storage_ttl=-1)"],
    ),
    "CM501": (
        [BASE, "    op.transform_items('t', lambda d: None)"],
        [BASE, "    op.transform_items('t', lambda d: None)\nidempotent = True"],
    ),
}


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_rule_finds_its_case_and_not_the_safe_one(code: str, tmp_path: Path) -> None:
    risky, safe = CASES[code]
    for name, bodies in (("risky", risky), ("safe", safe)):
        folder = tmp_path / name
        folder.mkdir()
        for number, body in enumerate(bodies, start=1):
            script, _, top = body.partition("\nidempotent")
            write(folder, f"{number:03d}", script, f"idempotent{top}" if top else "")
        found = [c for c, _ in codes(folder)]
        if name == "risky":
            assert code in found, (code, found)
            assert ("002" in [r for c, r in codes(folder) if c == code]) or code == "CM301"
        else:
            assert code not in found, (code, found)


def test_a_finding_is_silenced_with_a_reason_in_the_script(tmp_path: Path) -> None:
    write(tmp_path, "001", BASE)
    write(tmp_path, "002", "    op.delete_container('t')")
    assert codes(tmp_path) == [("CM101", "002")]
    write(tmp_path, "002", "    op.delete_container('t')", "lint_ignore = {'CM101': 't was a scratch container'}")
    assert codes(tmp_path) == []
    write(tmp_path, "002", "    op.delete_container('t')", "lint_ignore = {'CM101': ''}")
    with pytest.raises(ScriptError, match="lint_ignore must map each lint code to a reason that is not empty"):
        load_all(tmp_path)
    write(tmp_path, "002", "    op.delete_container('t')", "lint_ignore = {'CM999': 'no such rule'}")
    with pytest.raises(ScriptError, match="lint_ignore names 'CM999', which is no lint code"):
        load_all(tmp_path)
