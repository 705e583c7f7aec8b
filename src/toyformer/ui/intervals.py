"""The test exact match as the browser shows it: with its n and its 95% interval.

A run's summary carries ``test_n`` and ``test_exact_match_ci95`` (Wilson's interval of the
correct rows, ``toyformer.stats.proportion_ci``). A store may also have them as the columns
``test_exact_match_lo`` / ``_hi``; where it has not, they are read from the row's
``summary_json`` (``mirror``), and where a summary predates the interval but has ``test_n``,
the interval is computed from the count of correct rows it implies.

>>> add_interval({"test_exact_match": 0.5}, {"test_n": 4, "test_exact_match_ci95": [0.15, 0.85]})
{'test_exact_match': 0.5, 'test_n': 4, 'test_exact_match_lo': 0.15, 'test_exact_match_hi': 0.85}
"""

from __future__ import annotations

import functools

from toyformer.stats import proportion_ci

METRIC, N, LO, HI = "test_exact_match", "test_n", "test_exact_match_lo", "test_exact_match_hi"
EXTRA = (N, LO, HI)  # the columns that travel with a shown test exact match


def add_interval(row: dict, summary: dict) -> dict:
    """``row`` with ``test_n``, ``test_exact_match_lo`` and ``_hi`` from ``summary``."""
    ci = summary.get("test_exact_match_ci95")
    row[N] = summary.get(N)
    row[LO], row[HI] = (ci[0], ci[1]) if isinstance(ci, (list, tuple)) and len(ci) == 2 else (None, None)
    return complete(row)


def complete(row: dict) -> dict:
    """Fill ``_lo``/``_hi`` from ``test_exact_match`` and ``test_n`` where only those are known."""
    acc, n = row.get(METRIC), row.get(N)
    if row.get(LO) is None and isinstance(acc, (int, float)) and isinstance(n, int) and n > 0:
        row[LO], row[HI] = _wilson(round(acc * n), n)
    return row


@functools.lru_cache(maxsize=4096)
def _wilson(k: int, n: int) -> tuple[float, float]:
    return proportion_ci(k, n)
