"""Argument parsing that keeps the bad-input contract: one line on stderr, exit code 2.

``Parser`` reports a usage error as one line ``toyformer: error: ...`` (argparse prints the
whole usage first); ``number`` makes an argparse type that refuses NaN, infinity and values
outside a range with the range in the message, so a bad number never reaches the API.

>>> number(float, greater_than(0))("nan")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: nan is not a finite number; allowed: > 0
"""

from __future__ import annotations

import argparse
import math
import sys

from toyformer.config.ranges import SEED_MAX, Range, at_least, between, greater_than

__all__ = ["Parser", "SEED", "at_least", "between", "greater_than", "number"]


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (exit code 2)."""

    def error(self, message: str):
        print(f"toyformer: error: {' '.join(message.split())}", file=sys.stderr)
        raise SystemExit(2)


def number(kind: type, allowed: dict):
    """An argparse ``type`` converting to ``kind`` (int or float) within ``allowed`` (from
    ``config.ranges``: ``at_least(1)``, ``greater_than(0)``, ``between(0, 1)``)."""
    rng: Range = allowed["range"]
    name = "an integer" if kind is int else "a number"

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {name}; allowed: {rng.text()}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number; allowed: {rng.text()}")
        if not rng.contains(value):
            raise argparse.ArgumentTypeError(f"{text} is out of range; allowed: {rng.text()}")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in its messages
    return convert


SEED = number(int, between(0, SEED_MAX))
