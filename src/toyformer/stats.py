"""Summary statistics over seeds and replicas: the mean and a 95% confidence interval.

>>> mean, ci = mean_ci([0.9, 1.0, 0.95])
>>> round(mean, 4), round(ci, 4)
(0.95, 0.1242)
"""

from __future__ import annotations

import math

# two-sided 95% quantiles of Student's t by degrees of freedom; beyond 30 the normal's 1.96 is close enough
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
        20: 2.086, 25: 2.060, 30: 2.042}


def t95(dof: int) -> float:
    """The 97.5% quantile of Student's t with ``dof`` degrees of freedom (from a table)."""
    if dof in _T95:
        return _T95[dof]
    return _T95[max(d for d in _T95 if d <= dof)] if dof < 30 else 1.96


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of a 95% t-interval (0 for a single value).

    >>> mean_ci([1.0, 1.0])
    (1.0, 0.0)
    """
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, t95(n - 1) * sd / math.sqrt(n)
