"""``where`` (``ResultsStore.query(where=...)``, the CLI's ``--where``): a small, safe filter
language turned into parameterised SQL.

Grammar (case-insensitive keywords)::

    expr   := term ("or" term)*
    term   := factor ("and" factor)*
    factor := "not" factor | "(" expr ")" | FIELD OP VALUE | FIELD "in" "(" VALUE ("," VALUE)* ")"
              | FIELD "is" ["not"] "null"
    OP     := = == != <> < <= > >= like
    VALUE  := a number, a 'quoted' or "quoted" string, true, false, null

Fields are checked against the store's columns (dotted, or a unique leaf name: ``length`` for
``task.length``) and quoted; values are bound as parameters. User text never reaches SQL as code.

>>> parse_where("task.length >= 200 and model.norm = 'pre'", ["task.length", "model.norm"])
('("task.length" >= ?) AND ("model.norm" = ?)', [200, 'pre'])
>>> parse_where("length in (10, 20) or not solved", ["task.length", "solved"])
Traceback (most recent call last):
...
toyformer.errors.ConfigError: where='length in (10, 20) or not solved': expected an operator after 'solved' ...
"""

from __future__ import annotations

import re
from typing import Any, cast

from toyformer.errors import ConfigError

_TOKEN = re.compile(r"""\s*(?:(?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|-?\.\d+(?:[eE][-+]?\d+)?)
                          |(?P<str>'(?:[^']|'')*'|"(?:[^"]|"")*")
                          |(?P<op><=|>=|!=|<>|==|=|<|>|\(|\)|,)
                          |(?P<word>[A-Za-z_][A-Za-z0-9_.]*))""", re.VERBOSE)
OPS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "like": "LIKE"}
LITERALS = {"true": 1, "false": 0, "null": None, "none": None}


def resolve_field(name: str, known: list[str], what: str = "field") -> str:
    """``name`` as a known column: exact, or the unique column ending in ``.name``; else a one-line error."""
    if name in known:
        return name
    matches = [k for k in known if k.endswith("." + name)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConfigError(f"{what} {name!r} is ambiguous; use one of: {', '.join(matches)}")
    hidden = ("config_json", "summary_json")
    raise ConfigError(f"unknown {what} {name!r}; known: "
                      f"{', '.join(k for k in known if k not in hidden) or '(empty store)'}")


def _tokenize(expr: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    expr = expr.rstrip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise ConfigError(f"cannot read {expr[pos:].strip()[:20]!r}; "
                              "write e.g. \"task.length >= 200 and model.norm = 'pre'\"")
        kind = cast(str, m.lastgroup)  # every alternative of _TOKEN is a named group: one of them matched
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


MAX_DEPTH = 50  # nested parentheses and "not"s; deeper expressions are refused, not recursed into


class _Parser:
    def __init__(self, expr: str, known: list[str]):
        self.tokens, self.i, self.known = _tokenize(expr), 0, known
        self.params: list[Any] = []
        self.depth = 0

    def nested(self, inner):
        """``inner()`` one level deeper; past ``MAX_DEPTH`` a ConfigError."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConfigError(f"more than {MAX_DEPTH} nested parentheses or 'not's; allowed: up to "
                              f"{MAX_DEPTH}")
        try:
            return inner()
        finally:
            self.depth -= 1

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise ConfigError("the expression ends too early")
        self.i += 1
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "word" and tok[1].lower() == word:
            self.i += 1
            return True
        return False

    def expect(self, op: str) -> None:
        tok = self.take()
        if tok != ("op", op):
            raise ConfigError(f"expected {op!r}, found {tok[1]!r}")

    def expr(self) -> str:
        parts = [self.term()]
        while self.keyword("or"):
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else " OR ".join(parts)

    def term(self) -> str:
        parts = [self.factor()]
        while self.keyword("and"):
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else " AND ".join(parts)

    def factor(self) -> str:
        if self.keyword("not"):
            return f"NOT ({self.nested(self.factor)})"
        if self.peek() == ("op", "("):
            self.take()
            inner = self.nested(self.expr)
            self.expect(")")
            return f"({inner})"
        kind, name = self.take()
        if kind != "word" or name.lower() in ("and", "or", "not", "in", "is", "like"):
            raise ConfigError(f"expected a field name, found {name!r}")
        column = '"' + resolve_field(name, self.known).replace('"', '""') + '"'
        if self.keyword("is"):
            negate = self.keyword("not")
            if not self.keyword("null"):
                raise ConfigError(f"expected null after '{name} is'")
            return f"({column} IS {'NOT ' if negate else ''}NULL)"
        if self.keyword("in"):
            self.expect("(")
            values = [self.value()]
            while self.peek() == ("op", ","):
                self.take()
                values.append(self.value())
            self.expect(")")
            self.params.extend(values)
            return f"({column} IN ({', '.join('?' * len(values))}))"
        tok = self.peek()
        op = tok[1].lower() if tok else None
        if op not in OPS:
            raise ConfigError(f"expected an operator after {name!r} ({', '.join(OPS)}, in, is null)")
        self.take()
        value = self.value()
        if value is None and OPS[op] in ("=", "!="):
            return f"({column} IS {'NOT ' if OPS[op] == '!=' else ''}NULL)"
        self.params.append(value)
        return f"({column} {OPS[op]} ?)"

    def value(self):
        kind, text = self.take()
        if kind == "num":
            number = float(text)
            return int(number) if re.fullmatch(r"-?\d+", text) else number
        if kind == "str":
            return text[1:-1].replace(text[0] * 2, text[0])
        if kind == "word" and text.lower() in LITERALS:
            return LITERALS[text.lower()]
        raise ConfigError(f"expected a value (number, 'string', true, false, null), found {text!r}")


def parse_where(expr: str, known: list[str]) -> tuple[str, list]:
    """``expr`` as an SQL condition with ``?`` placeholders and its parameters; what it cannot
    read is one ConfigError naming the argument (``where='...': ...``)."""
    try:
        parser = _Parser(expr, known)
        if not parser.tokens:
            return "1", []
        sql = parser.expr()
        extra = parser.peek()
        if extra is not None:
            raise ConfigError(f"unexpected {extra[1]!r}; join conditions with and/or")
    except ConfigError as exc:
        raise ConfigError(f"where={expr!r}: {exc}") from None
    return sql, parser.params
