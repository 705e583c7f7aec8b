"""Allowed ranges of numeric config values, declared beside each field and checked in one place.

A field declares its range in its metadata, e.g.
``lr: float = field(default=3e-3, metadata=greater_than(0))``; ``check(section, "train")``
then refuses NaN, infinity and any value outside the range with one line naming the key, the
value and what is allowed. A tuple field (``model.head_hidden``) has the range checked for each
of its items; ``None`` (where the type allows it) is never checked.

>>> Range(lo=0, hi=1, hi_open=True).text()
'0 <= x < 1'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from toyformer.errors import ConfigError

SEED_MAX = 2**32 - 1  # seeds are combined with offsets and epoch numbers before they reach torch


@dataclass(frozen=True)
class Range:
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # lo itself excluded
    hi_open: bool = False

    def contains(self, x) -> bool:
        if self.lo is not None and (x < self.lo or (self.lo_open and x == self.lo)):
            return False
        return self.hi is None or not (x > self.hi or (self.hi_open and x == self.hi))

    def text(self) -> str:
        lo, hi = _num(self.lo), _num(self.hi)
        if self.hi is None:
            return f"{'>' if self.lo_open else '>='} {lo}"
        if self.lo is None:
            return f"{'<' if self.hi_open else '<='} {hi}"
        if not self.lo_open and not self.hi_open:
            return f"{lo}..{hi}"
        return f"{lo} {'<' if self.lo_open else '<='} x {'<' if self.hi_open else '<='} {hi}"


def _num(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def at_least(lo: float) -> dict:
    return {"range": Range(lo=lo)}


def greater_than(lo: float) -> dict:
    return {"range": Range(lo=lo, lo_open=True)}


def between(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> dict:
    return {"range": Range(lo, hi, lo_open, hi_open)}


SEEDS = between(0, SEED_MAX)


def check(obj, section: str | None) -> None:
    """Raise ConfigError for the first value of ``obj`` (a config dataclass) outside its range."""
    for f in fields(obj):
        allowed = f.metadata.get("range")
        value = getattr(obj, f.name)
        if allowed is None or value is None:
            continue
        key = f"{section}.{f.name}" if section else f.name
        for x in value if isinstance(value, tuple) else (value,):
            if isinstance(x, float) and not math.isfinite(x):
                raise ConfigError(f"{key}={x!r} is not a finite number; allowed: {allowed.text()}")
            if not allowed.contains(x):
                raise ConfigError(f"{key}={value!r} is out of range; allowed: {allowed.text()}")
