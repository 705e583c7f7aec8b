"""When a run counts as solved: on evidence strong enough to bet on.

An evaluation *confirms* the target (``eval.target`` on ``eval.target_metric``) when the errors
on the confirmation set (validation plus ``Splits.confirm``) are few enough:

- on a stream, the set is a sample, so the one-sided 95% Clopper-Pearson bound of the error
  must be at or below ``1 - target``: for 99.9%, no error in 2,995 rows (``stats.needed``);
- on a finite domain, the set is every held-out input (or, without holdout, the whole domain),
  so the errors are counted, not bounded: at most ``(1 - target) * n`` of them.

A run is *solved* at the evaluation that ends ``eval.hold`` confirming evaluations in a row.
Validation (``eval.val_size`` rows) is measured at every evaluation for the curves; the rest of
the confirmation set only when validation's own errors leave the target within reach, so an
evaluation far from the target costs no more than before, and only chunk by chunk until the set
holds more errors than the target allows. Neither shortcut changes a verdict: errors only add
up, so a set that would pass is always measured whole.

>>> allowed(Evidence(n=2995, errors=0, exhaustive=False), 0.999)
True
>>> allowed(Evidence(n=76, errors=1, exhaustive=True), 0.999)     # parity: one held-out string wrong
False
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from toyformer.stats import allowed_errors, error_bound, needed


@dataclass(frozen=True)
class Evidence:
    """Errors in ``n`` confirmation examples (or answer tokens, for ``token_acc``)."""

    n: int
    errors: int
    exhaustive: bool

    def bound(self) -> float:
        """The error rate: counted when exhaustive, else its one-sided 95% upper bound."""
        return self.errors / self.n if self.exhaustive else error_bound(self.errors, self.n)

    def to_dict(self) -> dict:
        return {**asdict(self), "error_bound": self.bound()}


def allowed(evidence: Evidence, target: float) -> bool:
    return evidence.errors <= allowed_errors(evidence.n, bounded(target, evidence.exhaustive), evidence.exhaustive)


def bounded(target: float, exhaustive: bool) -> float:
    """The target a sample is held to: no sample bounds an error at 0, so on a stream a target
    of 1 is held as 99.9% (the confirmation rows all right); counted sets keep theirs."""
    return target if exhaustive else min(target, 0.999)


def errors_of(result: dict, metric: str) -> tuple[int, int]:
    """``(n, errors)`` of an ``evaluate_examples`` result, in rows or in answer tokens."""
    if metric == "exact_match":
        return result["n"], result["n"] - int(result["row_correct"].sum())
    count = int(result["row_count"].sum())
    return count, count - int(result["row_hits"].sum())


def confirm(val: dict, splits, cfg, evaluate) -> Evidence | None:
    """The evidence of this evaluation, given validation's result ``val``: None when validation
    alone already shows the target missed; ``evaluate(examples)`` measures the rest of the set."""
    metric, target = cfg.eval.target_metric, cfg.eval.target
    n, errors = errors_of(val, metric)
    rest = splits.confirm
    more_n = 0  # at most this many more rows (tokens): the screen never misses a set that would pass
    if rest is not None:
        more_n = len(rest) * (1 if metric == "exact_match" else rest.target.shape[-1])
    limit = allowed_errors(n + more_n, bounded(target, splits.exhaustive), splits.exhaustive)
    if errors > limit:
        return None
    chunk = cfg.eval.batch_size
    for start in range(0, 0 if rest is None else len(rest), chunk):  # stop once the set can no longer pass
        extra_n, extra_errors = errors_of(evaluate(rest[start : start + chunk]), metric)
        n, errors = n + extra_n, errors + extra_errors
        if errors > limit:
            break
    return Evidence(n, errors, splits.exhaustive)


def note(splits, target: float | None) -> str | None:
    """A sentence when the held-out part of a finite domain is too small for its 100% to bound
    the error at ``1 - target`` as a sample would (so *solved* there means every input counted)."""
    sizes = splits.sizes()
    if target is None or not sizes["exhaustive"] or target >= 1 or sizes["confirm"] >= needed(target):
        return None
    if sizes["domain"] is None:
        return (f"the task has too few inputs outside training to draw the {needed(target):,} validation rows whose "
                f"100% would bound the error at {1 - target:.1%}; solved here means at most "
                f"{allowed_errors(sizes['confirm'], target, True)} of the {sizes['confirm']:,} it has wrong, counted")
    part = "held-out part" if sizes["train"] is not None else "domain"
    of = f" of the domain's {sizes['domain']:,}" if sizes["train"] is not None else ""
    return (f"the {part} is {sizes['confirm']:,} inputs{of}: too few for a sample's 100% to bound the error at "
            f"{1 - target:.1%} (that takes {needed(target):,}), so solved here means at most "
            f"{allowed_errors(sizes['confirm'], target, True)} of all {sizes['confirm']:,} wrong, counted")
