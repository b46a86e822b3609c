"""The revision graph: ordering, validation and targets. Pure: no Cosmos DB, no files, tested on its own.

Revisions form one straight chain through ``down_revision``. A branch, a gap, a cycle or a dangling parent
is refused up front, naming the file, so a deploy never guesses an order (golang-migrate#179 silently skipped
out-of-order scripts; Alembic users add a CI check for two heads).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cosmigrate.errors import GraphError, HistoryConflict

BASE = "base"
HEAD = "head"


@dataclass(frozen=True)
class Node:
    """What the graph needs to know of a script: its revision, its parent and where it came from."""

    revision: str
    down_revision: str | None
    source: str


class RevisionGraph:
    """Revisions ordered from base to head; ``order[i]`` is the parent of ``order[i + 1]``."""

    def __init__(self, nodes: Iterable[Node]) -> None:
        self.order: tuple[Node, ...] = tuple(_chain(list(nodes)))
        self._position = {node.revision: i for i, node in enumerate(self.order)}

    @property
    def head(self) -> str | None:
        return self.order[-1].revision if self.order else None

    def __contains__(self, revision: object) -> bool:
        return revision in self._position

    def resolve(self, target: str, current: int | None = None) -> int:
        """A target → the number of revisions applied once it is reached (``base`` is 0, ``head`` all; ``+N`` and
        ``-N`` are relative to ``current``, the number applied now, as in Alembic). Without ``current`` a relative
        target is only checked for its form (the answer is ``current`` itself, 0)."""
        step = relative(target)
        if step is not None:
            if current is None:
                return 0
            goal = current + step
            if not 0 <= goal <= len(self.order):
                at = self.order[current - 1].revision if current else BASE
                raise GraphError(
                    f"target {target} goes {'below base' if goal < 0 else 'past head'} from {at} "
                    f"({current} of {len(self.order)} revisions applied)"
                )
            return goal
        if target == BASE:
            return 0
        if target == HEAD:
            return len(self.order)
        if target in self._position:
            return self._position[target] + 1
        known = ", ".join(node.revision for node in self.order) or "none"
        raise GraphError(f"unknown revision {target!r}: use base, head or one of: {known}")

    def applied_count(self, applied: Iterable[str]) -> int:
        """How many revisions are applied, checking they are a prefix of the chain.

        A pending revision below an applied one means a script was added or renumbered under revisions
        already run; running it now would apply changes out of order, so this is refused.
        """
        applied_set = set(applied)
        count = 0
        while count < len(self.order) and self.order[count].revision in applied_set:
            count += 1
        beyond = [node.revision for node in self.order[count:] if node.revision in applied_set]
        if beyond:
            missing = self.order[count]
            below = self.order[count - 1].revision if count else None
            last = next(node for node in reversed(self.order) if node.revision in applied_set)
            raise HistoryConflict(
                f"revision {missing.revision} is pending but {beyond[0]} after it is applied: {missing.source} has "
                f"down_revision = {below!r}, which places it below revisions already applied (a branch cut before "
                f"{beyond[0]} landed?); chain it after the last applied one: down_revision = {last.revision!r}, and "
                f"rechain the script that followed {last.revision} after it"
            )
        return count

    def upgrade_plan(self, applied: Iterable[str], target: str = HEAD) -> list[Node]:
        current = self.applied_count(applied)
        goal = self.resolve(target, current)
        if goal < current:
            raise GraphError(
                f"target {target!r} is below the current revision {self.order[current - 1].revision}: "
                "use 'cosmigrate down --to' to go back"
            )
        return list(self.order[current:goal])

    def downgrade_plan(self, applied: Iterable[str], target: str | None = None, steps: int | None = None) -> list[Node]:
        """Revisions to undo, newest first. With neither ``target`` nor ``steps``, one revision."""
        self.check_downgrade(target, steps)
        current = self.applied_count(applied)
        if target is not None:
            goal = self.resolve(target, current)
            if goal > current:
                raise GraphError(
                    f"target {target!r} is not applied yet: use 'cosmigrate up --to {target}' to go forward"
                )
        else:
            goal = max(0, current - (1 if steps is None else steps))
        return list(reversed(self.order[goal:current]))

    def check_downgrade(self, target: str | None, steps: int | None) -> None:
        """Refuse bad ``down`` arguments without knowing what is applied (before any database access)."""
        if target is not None and steps is not None:
            raise GraphError("give either --to or --steps, not both")
        if target is not None:
            step = relative(target)
            if step is not None and step > 0:
                raise GraphError(f"down goes back: --to {target} goes forward; use -{step} (or up --to {target})")
            self.resolve(target)
        if steps is not None and steps < 1:
            raise GraphError(f"--steps must be 1 or more, not {steps}")


def relative(target: str) -> int | None:
    """``+2`` → 2, ``-1`` → -1; None for a target that is not relative."""
    text = target.strip()
    if len(text) > 1 and text[0] in "+-" and text[1:].isdigit():
        return int(text)
    return None


def _chain(nodes: Sequence[Node]) -> list[Node]:
    by_revision: dict[str, Node] = {}
    for node in nodes:
        if node.revision in by_revision:
            raise GraphError(
                f"{node.source}: revision {node.revision!r} is also declared by "
                f"{by_revision[node.revision].source}; give each script its own revision"
            )
        by_revision[node.revision] = node
    children: dict[str | None, Node] = {}
    for node in nodes:
        parent = node.down_revision
        if parent is not None and parent not in by_revision:
            raise GraphError(
                f"{node.source}: down_revision {parent!r} names no script; "
                "set it to the revision this one follows (None for the first)"
            )
        if parent in children:
            other = children[parent].source
            if parent is None:
                raise GraphError(
                    f"{node.source}: down_revision None, but {other} is already the first revision; "
                    "chain one after the other"
                )
            raise GraphError(
                f"{node.source}: down_revision {parent!r} is also the parent of {other}; "
                "two heads: chain one after the other"
            )
        children[parent] = node
    ordered: list[Node] = []
    cursor = children.get(None)
    while cursor is not None:
        ordered.append(cursor)
        cursor = children.get(cursor.revision)
    if len(ordered) != len(nodes):
        stray = sorted((n for n in nodes if n not in ordered), key=lambda n: n.source)[0]
        raise GraphError(f"{stray.source}: its down_revision chain loops and never reaches a first revision")
    return ordered
