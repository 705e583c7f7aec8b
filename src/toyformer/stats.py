"""The statistics behind every number toyformer shows: a mean over seeds with its 95% interval, a
proportion (an accuracy over n examples) with its 95% interval, and the one-sided bound on an
error rate that decides whether a run counts as solved. scipy computes them.

>>> mean, half = mean_ci([0.9, 1.0, 0.95])
>>> round(mean, 3), round(half, 3)
(0.95, 0.124)
>>> [round(v, 4) for v in proportion_ci(1998, 2000)]   # 99.9% right of 2,000: Wilson's 95% interval
[0.9964, 0.9997]
>>> round(error_bound(0, 2995), 5)   # no error in 2,995 examples: the error is below 0.1% (95%)
0.001
>>> needed(0.999)   # examples that must all be right to bound the error at 0.1%
2995
"""

from __future__ import annotations

import math

from scipy import stats as _scipy

CONFIDENCE = 0.95


def t95(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    return float(_scipy.t.ppf(0.975, df))


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of a 95% t-interval (0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, t95(n - 1) * sd / math.sqrt(n)


def proportion_ci(k: int, n: int) -> tuple[float, float]:
    """Wilson's 95% interval of a proportion of ``k`` successes in ``n`` trials (inside [0, 1])."""
    if n <= 0:
        return 0.0, 1.0
    ci = _scipy.binomtest(int(k), int(n)).proportion_ci(CONFIDENCE, method="wilson")
    return max(0.0, float(ci.low)), min(1.0, float(ci.high))


def error_bound(errors: int, n: int, confidence: float = CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound of an error rate, from ``errors`` in ``n`` draws."""
    if errors >= n:
        return 1.0
    return float(_scipy.beta.ppf(confidence, errors + 1, n - errors))


def needed(target: float, confidence: float = CONFIDENCE) -> int:
    """How many examples, all right, bound the error at ``1 - target`` (``target`` < 1)."""
    return math.ceil(math.log(1 - confidence) / math.log(target))


def allowed_errors(n: int, target: float, exhaustive: bool, confidence: float = CONFIDENCE) -> int:
    """The most errors in ``n`` examples that still show an error rate at or below ``1 - target``:
    counted (``exhaustive``: the examples are every input there is) or bounded at ``confidence``
    (a sample of a larger domain); -1 when even none is not enough."""
    if exhaustive:
        return math.floor(round((1 - target) * n, 9))
    if error_bound(0, n, confidence) > 1 - target:
        return -1
    lo, hi = 0, n  # the largest e with error_bound(e, n) <= 1 - target: bounds grow with e
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if error_bound(mid, n, confidence) <= 1 - target else (lo, mid - 1)
    return lo


def seeds_interval(values: list[float], n: int | list[int] | None = None) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of per-seed accuracies ``values`` and its 95% interval, which
    stays inside [0, 1]. The interval is the hull of two: a percentile bootstrap over the seeds
    (``scipy.stats.bootstrap``, seeded: the same values give the same interval), which measures
    how much seeds differ, and, given ``n`` (each seed's number of test examples, or one number
    for all), Wilson's interval on the pooled examples, which measures the test sets' sampling.
    Either alone misleads: three seeds at 1.0 bootstrap to [1, 1], and seeds at 0.31, 0.95 and
    0.96 pool to an interval far narrower than their spread. Both are means of values in [0, 1]
    (or proportions), so the hull is inside [0, 1] too.

    >>> [round(v, 3) for v in seeds_interval([0.31, 0.95, 0.96], 2000)]
    [0.74, 0.31, 0.96]
    >>> [round(v, 4) for v in seeds_interval([1.0, 1.0, 1.0], 51)]   # 153 of 153 pooled test inputs right
    [1.0, 0.9755, 1.0]
    """
    import warnings

    import numpy as np

    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    lo, hi = min(values), max(values)
    if len(set(values)) > 1:
        with warnings.catch_warnings():  # few seeds: scipy warns that the distribution is coarse
            warnings.simplefilter("ignore")
            ci = _scipy.bootstrap((np.array(values),), np.mean, confidence_level=CONFIDENCE, method="percentile",
                                  n_resamples=9999, rng=np.random.default_rng(0)).confidence_interval
        lo, hi = max(lo, float(ci.low)), min(hi, float(ci.high))  # a resample's mean is within the range (float)
    if n is not None:
        sizes = [int(n)] * len(values) if isinstance(n, (int, float)) else [int(k) for k in n]
        right = sum(round(v * k) for v, k in zip(values, sizes))
        pooled = proportion_ci(right, sum(sizes))
        lo, hi = min(lo, pooled[0]), max(hi, pooled[1])
    return mean, max(0.0, min(lo, mean)), min(1.0, max(hi, mean))


def accuracy_text(value: float | None, interval=None, n: int | None = None, mean_of: str | None = None,
                  digits: int = 4) -> str:
    """An accuracy as toyformer prints it: with its test size ``n`` and its 95% ``interval``, and for
    a mean what it is the mean of (``n``: the examples of all of them together).

    >>> accuracy_text(0.999, (0.9964, 0.9997), 2000)
    '0.9990 (n=2,000, 95% CI 0.9964-0.9997)'
    >>> accuracy_text(0.74, (0.31, 0.96), 6000, mean_of="3 seeds")
    '0.7400 (mean of 3 seeds, n=6,000, 95% CI 0.3100-0.9600)'
    """
    if value is None:
        return "-"
    parts = ([f"mean of {mean_of}"] if mean_of else []) + ([f"n={n:,}"] if n is not None else [])
    if interval is not None:
        parts.append(f"95% CI {interval[0]:.{digits}f}-{interval[1]:.{digits}f}")
    return f"{value:.{digits}f}" + (f" ({', '.join(parts)})" if parts else "")
