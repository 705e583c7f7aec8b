"""``toyformer diagnose RUN_DIR --try``: measure which setting fixes a run instead of guessing.

The diagnosis (``eval.diagnosis``) names settings known to cause a symptom and marks the ones
whose values often do ("suspect"); those rules can point the wrong way. ``try_fixes`` trains the
run's config with each suspect setting changed one at a time (to the value in ``FIXES``), plus
the levers that matter most in the default search space (the learning rate down and up, twice
the steps), each on ``seeds`` seeds as one batched replica run, within ``budget_s`` seconds in
all; then it records, per change, how many seeds reached the target, how fast, and the final
metric, and writes the verdict into the diagnosis of ``summary.json``: ``measured: fixes it``
(every seed reached the target), ``measured: partly`` or ``measured: does not``.

::

    RUN_DIR/try/<change>/      each change's replica run (replicas/<i> are its seeds)
    RUN_DIR/try.json           every change's numbers

>>> result = toyformer.try_fixes("runs/count-original", budget_s=600)   # doctest: +SKIP
>>> [(c["change"], c["verdict"]) for c in result["changes"]]            # doctest: +SKIP
[('model.norm=pre', 'fixes it'), ('model.pooling=mean', 'does not'), ...]
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from toyformer.config import SECTIONS, RunConfig
from toyformer.errors import ConfigError
from toyformer.files import read_json, write_json
from toyformer.run import directory
from toyformer.stats import mean_ci

# a suspect setting -> the value that undoes what makes it suspect (given the run's config)
FIXES = {
    "model.norm": lambda c: "pre" if c.model.norm == "post" else None,
    "model.n_layers": lambda c: 2 if c.model.n_layers > 2 else None,
    "train.warmup_steps": lambda c: 100 if c.train.warmup_steps == 0 else None,
    "train.lr": lambda c: 3e-3 if not 1e-4 <= c.train.lr <= 1e-2 else None,
    "train.steps": lambda c: 4 * c.train.steps,
    "model.pooling": lambda c: "mean" if c.model.pooling != "mean" else None,
    "model.positional": lambda c: "learned" if c.model.positional == "none" else None,
    "model.causal_encoder": lambda c: False if c.model.causal_encoder else None,
    "train.grad_clip": lambda c: 1.0 if c.train.grad_clip is None else None,
    "train.weight_decay": lambda c: 0.1 if c.train.weight_decay == 0 else None,
    "model.dropout": lambda c: 0.1 if c.model.dropout == 0 else None,
    "train.max_time_s": lambda c: None,  # every change trains under the try's own time cap
}
VERDICTS = ("fixes it", "partly", "does not")


def _default(key: str):
    section, leaf = key.split(".", 1)
    field = {f.name: f for f in dataclasses.fields(SECTIONS[section])}[leaf]
    return field.default if field.default is not dataclasses.MISSING else field.default_factory()


def candidates(config: RunConfig, diagnosis: list[dict]) -> dict[str, dict]:
    """``{label: overrides}``: each suspect setting changed alone, then the learning-rate and
    step levers of the default search space."""
    out: dict[str, dict] = {}
    for finding in diagnosis:
        for s in finding.get("settings", []):
            if not s["suspect"] or s["key"] in (k for o in out.values() for k in o):
                continue
            value = FIXES[s["key"]](config) if s["key"] in FIXES else _default(s["key"])
            if s["key"] == "data.train_size" and config.data.train_size is not None:  # a stream instead of a pool
                out[f"{s['key']}=none"] = {s["key"]: None}
            elif value is not None and value != s["value"]:
                out[f"{s['key']}={value}"] = {s["key"]: value}
    lr, suspects = config.train.lr, {k for o in out.values() for k in o}
    for label, overrides in ((f"train.lr={lr / 3:.3g}", {"train.lr": lr / 3}), (f"train.lr={lr * 3:.3g}", {"train.lr": lr * 3}),
                             (f"train.steps={2 * config.train.steps}", {"train.steps": 2 * config.train.steps})):
        if not suspects & set(overrides):  # a suspect setting of the key was tried already
            out.setdefault(label, overrides)
    return out


def try_fixes(run_dir: str | Path, budget_s: float = 600.0, seeds: int = 3, quiet: bool = True, log=None) -> dict:
    """Measure each candidate change of a run that missed its target (see the module docstring)."""
    from toyformer.training import train_replicas_into

    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise ConfigError(f"{str(run_dir)!r} has not finished (no summary.json); diagnose a finished run")
    if not budget_s > 0 or seeds < 1:
        raise ConfigError(f"--budget-s {budget_s} and --seeds {seeds}: allowed: > 0 and >= 1")
    summary = read_json(summary_path)
    config = directory.run_config(run_dir)
    if not summary.get("diagnosis"):
        raise ConfigError(f"{str(run_dir)!r} reached its target: there is nothing to fix")
    changes = candidates(config, summary["diagnosis"])
    target = config.eval.target if config.eval.target is not None else 1.0
    cap = budget_s / len(changes)
    log = log or (lambda line: None)
    rows = []
    for label, overrides in changes.items():
        trial = config.with_overrides({**overrides, "eval.target": target, "train.max_time_s": cap})
        folder = run_dir / "try" / label.replace("/", "_")
        rep, status = train_replicas_into(folder, trial, seeds, quiet=quiet)
        rows.append(_row(label, overrides, rep.runs, target, config.eval.target_metric))
        log(f"{label}: {rows[-1]['solved']}/{seeds} seeds reached {config.eval.target_metric} {target:g} "
            f"({rows[-1]['verdict']})")
    rows.sort(key=lambda r: (VERDICTS.index(r["verdict"]), -r["final"]["mean"]))
    result = {"run_dir": str(run_dir), "budget_s": budget_s, "seeds": seeds, "target": target,
              "metric": config.eval.target_metric, "cap_s": cap, "changes": rows}
    write_json(run_dir / "try.json", result)
    summary["diagnosis"] = mark(summary["diagnosis"], rows)
    write_json(summary_path, summary)
    return result


def _row(label: str, overrides: dict, runs, target: float, metric: str) -> dict:
    finals = [r.summary[f"test_{metric}"] for r in runs]
    solved = [r.summary for r in runs if r.summary.get("solved_at_s") is not None]
    n = sum(1 for s in solved if s[f"test_{metric}"] >= target)
    row = {"change": label, "overrides": overrides, "solved": n, "seeds": len(runs),
           "verdict": VERDICTS[0] if n == len(runs) else VERDICTS[1] if n else VERDICTS[2],
           "final": dict(zip(("mean", "ci95"), mean_ci(finals))), "per_seed": finals}
    if solved:
        row["solved_at_s"] = dict(zip(("mean", "ci95"), mean_ci([s["solved_at_s"] for s in solved])))
    return row


def mark(diagnosis: list[dict], rows: list[dict]) -> list[dict]:
    """The diagnosis with each tried setting's measurement: ``measured`` holds the change, the
    verdict and the numbers; settings not tried keep ``suspect`` as it was."""
    by_key = {}
    for r in rows:
        for key in r["overrides"]:
            by_key.setdefault(key, r)
    out = []
    for f in diagnosis:
        settings = []
        for s in f.get("settings", []):
            r = by_key.get(s["key"])
            measured = None if r is None else {k: r[k] for k in ("change", "verdict", "solved", "seeds", "final")} | (
                {"solved_at_s": r["solved_at_s"]} if "solved_at_s" in r else {})
            settings.append({**s, **({"measured": measured} if measured else {})})
        settings.sort(key=lambda s: (VERDICTS.index(s["measured"]["verdict"]) if "measured" in s else 1.5,
                                     not s["suspect"]))
        out.append({**f, "settings": settings})
    return out


def format_table(result: dict) -> str:
    lines = [f"{'change':<32} {'seeds solved':>12} {'seconds to solve':>18} {'final ' + result['metric']:>22}  verdict"]
    for r in result["changes"]:
        t = r.get("solved_at_s")
        when = f"{t['mean']:.1f} ± {t['ci95']:.1f}" if t else "-"
        lines.append(f"{r['change']:<32} {r['solved']:>7}/{r['seeds']:<4} {when:>18} "
                     f"{r['final']['mean']:>14.3f} ± {r['final']['ci95']:.3f}  measured: {r['verdict']}")
    return "\n".join(lines)
