"""Learning curves for the compare view: a run's metrics as columns, and the runs grouped (by a
config field, or by every setting but the seed) into one mean curve per group with its 95% band.

>>> settings_key({"model.d_model": 64, "seed": 3, "eval.seed": 0})
'{"eval.seed": 0, "model.d_model": 64}'
"""

from __future__ import annotations

import json

from toyformer.stats import mean_ci

CURVE_METRICS = ("train_loss", "val_loss", "train_token_acc", "val_token_acc", "train_exact_match",
                 "val_exact_match", "lr")
SETTINGS = "*settings"  # the group that means "every setting but the seed"
NOT_SETTINGS = ("seed", "device", "train.tensorboard")  # the seed, and where a run ran or logged: not what it is


def is_setting(field: str) -> bool:
    """A config field (``model.d_model``, ``layout``), not a result, and not the seed."""
    return ("." in field or field == "layout") and field not in NOT_SETTINGS


def columns_of(records: list[dict]) -> dict[str, list]:
    """Metric records as columns: ``{"step": [...], "wall_s": [...], "train_loss": [...], ...}``."""
    names = ["step", "wall_s", *[m for m in CURVE_METRICS if any(m in r for r in records)]]
    return {n: [r.get(n) for r in records] for n in names}


def settings_key(config: dict) -> str:
    """A run's flattened config without the seed (and where it ran), as one comparable string."""
    return json.dumps({k: v for k, v in sorted(config.items()) if k not in NOT_SETTINGS}, default=str)


def group_curves(runs: list[dict], group: str) -> list[dict]:
    """Per value of ``group`` (a config field, or ``SETTINGS``): at each step, the mean of every
    curve over the runs of that value and its 95% confidence band (``lo``, ``hi``), and how many
    runs had the step (``n_at_step``). With ``SETTINGS`` a group's ``value`` is the settings in
    which the groups differ."""
    by_value: dict[str, list[dict]] = {}
    for r in runs:
        key = settings_key(r["config"]) if group == SETTINGS else json.dumps(r["config"].get(group))
        by_value.setdefault(key, []).append(r)
    varying = differing([r["config"] for r in runs], NOT_SETTINGS) if group == SETTINGS else []
    out = []
    for value, members in by_value.items():
        steps = sorted({s for r in members for s in r["curves"]["step"] if s is not None})
        curves: dict = {"step": steps}
        for metric in CURVE_METRICS:
            if not any(metric in r["curves"] for r in members):
                continue
            at = [dict(zip(r["curves"]["step"], r["curves"].get(metric, []))) for r in members]
            mean, lo, hi = [], [], []
            for s in steps:
                vals = [a[s] for a in at if a.get(s) is not None]
                m, ci = mean_ci(vals) if vals else (None, 0.0)
                mean.append(m)
                lo.append(None if m is None else m - ci)
                hi.append(None if m is None else m + ci)
            curves[metric] = {"mean": mean, "lo": lo, "hi": hi}
        n_at = [sum(s in r["curves"]["step"] for r in members) for s in steps]
        shown = ({k: members[0]["config"].get(k) for k in varying} if group == SETTINGS else json.loads(value))
        out.append({"value": shown, "n": len(members), "keys": [r["key"] for r in members], "curves": curves,
                    "n_at_step": n_at})
    return out


def differing(configs: list[dict], leave_out=()) -> list[str]:
    """The fields whose value is not the same in every config (in first-seen order)."""
    names = list(dict.fromkeys(k for c in configs for k in c))
    return [k for k in names if k not in leave_out and len({json.dumps(c.get(k), default=str) for c in configs}) > 1]
