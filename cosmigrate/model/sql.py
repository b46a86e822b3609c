"""A parser for the Cosmos DB NoSQL query language, as much as judging a query against an indexing policy needs.

Pure. It reads ``SELECT [DISTINCT] [TOP n] [VALUE] … FROM c [JOIN x IN c.path]… [WHERE …] [ORDER BY …]
[OFFSET n LIMIT m]`` with the expression grammar (``AND``/``OR``/``NOT``, comparisons, ``IN``, ``BETWEEN``,
``LIKE``, arithmetic, ``??``, ``?:``, function calls such as ``IS_DEFINED(c.a)`` or ``udf.f(…)``, parameters
``@p``, literals, arrays and objects, ``c.a.b`` and ``c["a"]`` paths) and keeps what an index decides: the
document paths each filter reads and how (equality, range, or inside a function), and the ORDER BY items with
their directions. A query it cannot read is a :class:`QueryError` naming where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KEYWORDS = {
    "select", "distinct", "top", "value", "from", "join", "in", "where", "order", "by", "asc", "desc", "offset",
    "limit", "and", "or", "not", "between", "like", "escape", "as", "true", "false", "null", "undefined", "exists",
}  # fmt: skip
TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<string>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<param>@[A-Za-z_][A-Za-z0-9_]*)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>!=|<>|<=|>=|\?\?|\|\||[=<>+\-*/%&|^~?:.,()\[\]{}]))"
)
COMPARISONS = {"=", "!=", "<>", "<", "<=", ">", ">="}


class QueryError(ValueError):
    """The query cannot be read: what and where."""


@dataclass(frozen=True)
class Filter:
    path: str  # /a/b (a JOIN alias's paths go below its array: /tags/[]/name)
    kind: str  # "equality", "range" or "other" (a function's argument, IN, LIKE, …)


@dataclass
class Query:
    text: str
    alias: str = "c"
    filters: list[Filter] = field(default_factory=list)
    order_by: list[tuple[str, str]] = field(default_factory=list)  # (path, "ascending" | "descending")

    @property
    def equality_paths(self) -> list[str]:
        return list(dict.fromkeys(f.path for f in self.filters if f.kind == "equality"))


@dataclass
class _Path:
    path: str


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        at = 0
        text = "\n".join(line.split("--", 1)[0] if "'" not in line else line for line in text.splitlines())
        while at < len(text):
            if text[at:].strip() == "":
                break
            match = TOKEN.match(text, at)
            if not match or match.end() == at:
                raise QueryError(f"cannot read the query at {text[at : at + 20].strip()!r}")
            kind = match.lastgroup or "op"
            value = match.group(kind)
            self.tokens.append(("keyword" if kind == "name" and value.lower() in KEYWORDS else kind, value, at))
            at = match.end()
        self.position = 0
        self.aliases: dict[str, str] = {}  # alias -> its path prefix ("" for the root)
        self.query = Query(text)

    # -- tokens ---------------------------------------------------------------------------------------------

    def peek(self, *values: str) -> bool:
        if self.position >= len(self.tokens):
            return False
        kind, value, _ = self.tokens[self.position]
        return value.lower() in values if kind in ("keyword", "op") else False

    def take(self, *values: str) -> str:
        if not self.peek(*values):
            found = self.tokens[self.position][1] if self.position < len(self.tokens) else "the end"
            raise QueryError(f"expected {' or '.join(values).upper()} but found {found!r}")
        self.position += 1
        return self.tokens[self.position - 1][1].lower()

    def maybe(self, *values: str) -> bool:
        if self.peek(*values):
            self.position += 1
            return True
        return False

    def next(self) -> tuple[str, str, int]:
        if self.position >= len(self.tokens):
            raise QueryError("the query ends too soon")
        self.position += 1
        return self.tokens[self.position - 1]

    # -- clauses --------------------------------------------------------------------------------------------

    def parse(self) -> Query:
        self.take("select")
        self.maybe("distinct")
        if self.maybe("top"):
            self.next()
        self.maybe("value")
        if not self.maybe("*"):
            self._select_list()
        self.take("from")
        self._from()
        while self.maybe("join"):
            self._join()
        if self.maybe("where"):
            self._expression("top")
        if self.maybe("order"):
            self.take("by")
            self._order_by()
        if self.maybe("offset"):
            self.next()
            self.take("limit")
            self.next()
        if self.position != len(self.tokens):
            raise QueryError(f"unexpected {self.tokens[self.position][1]!r} after the query")
        return self.query

    def _select_list(self) -> None:
        saved = dict(self.aliases)
        self.aliases = {}  # the FROM alias is not known yet: projections do not filter
        while True:
            self._expression("select")
            if self.maybe("as") or (self.position < len(self.tokens) and self.tokens[self.position][0] == "name"):
                self.next()
            if not self.maybe(","):
                break
        self.aliases = saved

    def _from(self) -> None:
        kind, name, _ = self.next()
        if kind != "name":
            raise QueryError(f"expected a container alias after FROM, not {name!r}")
        if self.maybe("in"):  # FROM x IN c.arr
            self.aliases[name] = ""
            return
        self.aliases[name] = ""
        self.query.alias = name
        if self.maybe("as") or (self.position < len(self.tokens) and self.tokens[self.position][0] == "name"):
            alias = self.next()[1]  # FROM orders o: paths go through o; the container's name is not an alias
            self.aliases = {alias: ""}
            self.query.alias = alias

    def _join(self) -> None:
        _, name, _ = self.next()
        self.take("in")
        source = self._primary("join")
        base = source.path if isinstance(source, _Path) else ""
        self.aliases[name] = f"{base}/[]"

    def _order_by(self) -> None:
        while True:
            item = self._expression("order")
            direction = "descending" if self.maybe("desc") else "ascending"
            if direction == "ascending":
                self.maybe("asc")
            if not isinstance(item, _Path):
                raise QueryError("ORDER BY takes document paths (c.name), not expressions")
            self.query.order_by.append((item.path, direction))
            if not self.maybe(","):
                break

    # -- expressions ----------------------------------------------------------------------------------------

    def _note(self, value: object, kind: str, where: str) -> None:
        if where in ("top", "and") and isinstance(value, _Path):
            self.query.filters.append(Filter(value.path, kind))
        elif isinstance(value, _Path) and where not in ("select", "order", "join"):
            self.query.filters.append(Filter(value.path, "other"))

    def _expression(self, where: str) -> object:
        value = self._or(where)
        if self.maybe("?"):
            self._expression("other")
            self.take(":")
            self._expression("other")
            return None
        return value

    def _or(self, where: str) -> object:
        start = len(self.query.filters)
        value = self._and(where)
        while self.maybe("or", "??"):
            self._and(where)
            value = None
            # one side of an OR filters nothing on its own: an index serves it as a scan of either side
            self.query.filters[start:] = [Filter(f.path, "other") for f in self.query.filters[start:]]
        return value

    def _and(self, where: str) -> object:
        inner = "and" if where in ("top", "and") else where
        value = self._not(inner)
        while self.maybe("and"):
            self._not(inner)
            value = None
        return value

    def _not(self, where: str) -> object:
        if self.maybe("not"):
            self._not("other")
            return None
        return self._comparison(where)

    def _comparison(self, where: str) -> object:
        left = self._additive(where)
        if self.peek(*COMPARISONS):
            op = self.take(*COMPARISONS)
            right = self._additive(where)
            kind = "equality" if op == "=" else "range" if op in ("<", "<=", ">", ">=") else "other"
            for side, other in ((left, right), (right, left)):
                if isinstance(side, _Path) and not isinstance(other, _Path):
                    self._note(side, kind, where)
                elif isinstance(side, _Path):
                    self._note(side, "other", where)
            return None
        negated = self.maybe("not")
        if self.maybe("in"):
            self.take("(")
            while not self.maybe(")"):
                self._expression("other")
                self.maybe(",")
            self._note(left, "other" if negated else "equality", where)
            return None
        if self.maybe("between"):
            self._additive("other")
            self.take("and")
            self._additive("other")
            self._note(left, "range", where)
            return None
        if self.maybe("like"):
            self._additive("other")
            if self.maybe("escape"):
                self.next()
            self._note(left, "other", where)
            return None
        if negated:
            raise QueryError("NOT must be followed by IN, BETWEEN or LIKE here")
        if isinstance(left, _Path) and where in ("top", "and"):
            self._note(left, "other", where)  # a boolean property as the whole filter
        return left

    def _additive(self, where: str) -> object:
        value = self._unary(where)
        while self.peek("+", "-", "*", "/", "%", "||", "&", "|", "^"):
            self.next()
            other = self._unary("other")
            for side in (value, other):
                self._note(side, "other", "other" if where != "select" else "select")
            value = None
        return value

    def _unary(self, where: str) -> object:
        if self.maybe("-", "+", "~"):
            self._unary("other")
            return None
        return self._primary(where)

    def _primary(self, where: str) -> object:
        kind, value, _ = self.next()
        if kind in ("number", "string", "param") or (kind == "keyword" and value.lower() in (
            "true", "false", "null", "undefined")):  # fmt: skip
            return value
        if value == "(":
            if self.peek("select"):
                raise QueryError("subqueries are not read by the query lint")
            inner = self._expression(where)
            self.take(")")
            return inner
        if value == "[":
            while not self.maybe("]"):
                self._expression("other")
                self.maybe(",")
            return None
        if value == "{":
            while not self.maybe("}"):
                self.next()
                self.take(":")
                self._expression("other")
                self.maybe(",")
            return None
        if kind == "keyword" and value.lower() == "exists":
            raise QueryError("subqueries (EXISTS) are not read by the query lint")
        if kind != "name":
            raise QueryError(f"unexpected {value!r}")
        if self.peek("(") or (value.lower() == "udf" and self.peek(".")):
            if self.maybe("."):
                self.next()
            self.take("(")
            while not self.maybe(")"):
                argument = self._expression("other")
                self._note(argument, "other", where if where in ("top", "and") else "other")
                self.maybe(",")
            return None
        return self._member(value, where)

    def _member(self, root: str, where: str) -> object:
        if root not in self.aliases:
            if not self.aliases and where == "select":
                while self.maybe("."):
                    self.next()
                return None
            raise QueryError(f"{root} is not the container's alias (FROM … names it)")
        path = self.aliases[root]
        while True:
            if self.maybe("."):
                path += "/" + self.next()[1]
            elif self.peek("["):
                self.take("[")
                kind, key, _ = self.next()
                path += "/" + (key[1:-1] if kind == "string" else "[]")
                self.take("]")
            else:
                break
        return _Path(path or "/")


def parse(text: str) -> Query:
    """The filters and ORDER BY of one query; :class:`QueryError` when it cannot be read."""
    return _Parser(text).parse()
