"""What one change measured on its seeds, and its verdict from effect sizes against the run's own
config (the *baseline*) measured on the same seeds under the same cap.

Verdicts:

- ``fixes it``: every seed solved (as the training loop decides it: ``eval/solved.py``);
- ``partly``: a clear gain: more seeds solved than the baseline, or the change's 95% interval of
  the final test metric lies wholly above the baseline's;
- ``makes it worse``: the same, the other way round;
- ``does not``: neither.

The final metric's interval is ``stats.seeds_interval`` (inside [0, 1]); seconds to solve are a
mean ± 95% t-interval over the seeds that solved only, with how many did.

>>> base = {"seeds": 3, "solved": 0, "final": {"mean": 0.31, "low": 0.29, "high": 0.33}}
>>> verdict({"seeds": 3, "solved": 0, "final": {"mean": 0.95, "low": 0.93, "high": 0.97}}, base)
'partly'
"""

from __future__ import annotations

from toyformer.stats import mean_ci, seeds_interval

VERDICTS = ("fixes it", "partly", "does not", "makes it worse")


def _solved(summary: dict) -> bool:
    return bool(summary.get("solved", summary.get("solved_at_step") is not None))


def finished(run) -> bool:
    """Whether a run ended for a reason no longer cap would change: solved, diverged, or at its
    ``train.steps`` (a deterministic run trained again under a longer cap ends the same)."""
    s = run.summary
    return _solved(s) or "diverged" in s or s["steps"] >= run.config.train.steps


def measure(runs, metric: str, cap: float) -> dict:
    """The numbers of one change (or the baseline) from its seeds' runs (``Run`` objects)."""
    summaries = [r.summary for r in runs]
    finals = [s[f"test_{metric}"] for s in summaries]
    sizes = [s.get("test_n") for s in summaries]
    known = all(sizes)
    mean, low, high = seeds_interval(finals, sizes if known else None)
    vals = [s.get(f"val_{metric}") or 0.0 for s in summaries]
    solved = [s for s in summaries if _solved(s)]
    row = {"seeds": len(runs), "seed_values": [r.config.seed for r in runs], "solved": len(solved),
           "final": {"mean": mean, "low": low, "high": high, "n": sum(sizes) if known else None},
           "per_seed": [round(v, 4) for v in finals], "val": sum(vals) / len(vals), "cap_s": cap,
           "finished": all(finished(r) for r in runs), "diverged": sum("diverged" in s for s in summaries),
           "wall_s": max(s["wall_s"] for s in summaries)}
    times = [s["solved_at_s"] for s in solved if s.get("solved_at_s") is not None]
    if times:
        m, ci = mean_ci(times)
        row["solved_at_s"] = {"mean": m, "ci95": ci, "slowest": max(times), "solved": len(times), "of": len(runs)}
    return row


def verdict(row: dict, base: dict | None) -> str:
    """The verdict of ``row`` against the baseline ``base`` (same seeds, same cap); see the module doc."""
    if row["solved"] == row["seeds"]:
        return VERDICTS[0]
    if base is None:
        return VERDICTS[1] if row["solved"] else VERDICTS[2]
    gain = row["solved"] > base["solved"] or row["final"]["low"] > base["final"]["high"]
    loss = row["solved"] < base["solved"] or row["final"]["high"] < base["final"]["low"]
    if gain and not loss:
        return VERDICTS[1]
    if loss and not gain:
        return VERDICTS[3]
    return VERDICTS[2]


def as_fast(a: dict, b: dict) -> bool:
    """Whether two fixes' seconds to solve cannot be told apart: their 95% intervals overlap."""
    ta, tb = a["solved_at_s"], b["solved_at_s"]
    return abs(ta["mean"] - tb["mean"]) <= ta["ci95"] + tb["ci95"]


def simplest_first(fixes: list[tuple]) -> list[tuple]:
    """Fixes (``(candidate, row)``, every seed solved) in the order to recommend them: of those as
    fast as the fastest (``as_fast``), the one with the fewest overrides first; then the rest by
    ``rank``. Three seeds cannot tell a second apart, and an override that did not make the fix
    measurably faster is one more way for it to fail on seeds it has not seen."""
    by_rank = sorted(fixes, key=lambda cr: rank(cr[1]))
    if not by_rank or "solved_at_s" not in by_rank[0][1]:
        return by_rank
    tied = [cr for cr in by_rank if "solved_at_s" in cr[1] and as_fast(cr[1], by_rank[0][1])]
    first = min(tied, key=lambda cr: len(cr[0].overrides))  # min keeps the faster of equally simple ones
    return [first] + [cr for cr in by_rank if cr is not first]


def rank(row: dict) -> tuple:
    """Better first: more seeds solved, faster (mean seconds to solve), higher validation metric.
    Validation, not test, picks the changes: the test numbers stay for the verdicts."""
    t = row.get("solved_at_s", {}).get("mean", float("inf"))
    return (-row["solved"], t if row["solved"] == row["seeds"] else 0.0, -row["val"])
