"""Summary statistics over repeated runs (seeds, replicas): the mean and a 95% confidence interval.

>>> mean, half = mean_ci([0.9, 1.0, 0.95])
>>> round(mean, 3), round(half, 3)
(0.95, 0.124)
"""

from __future__ import annotations

import math

# two-sided 95% quantiles of Student's t for 1..30 degrees of freedom
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t95(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (normal's 1.96 beyond 30)."""
    return _T95[df - 1] if df <= len(_T95) else 1.96


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of a 95% t-interval (0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, t95(n - 1) * sd / math.sqrt(n)
