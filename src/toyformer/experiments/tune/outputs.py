"""What a tune reports: the best trial, its time-to-solve re-measured on fresh seeds (mean and
95% CI), the top trials, and Optuna's parameter importances; ``tune.json`` and ``summary.md``.
Every sentence is built from these numbers."""

from __future__ import annotations

from pathlib import Path

from toyformer.files import write_json, write_text
from toyformer.stats import mean_ci

TOP = 5


def best_trial(study):
    """The complete trial with the lowest objective value (None before any finished)."""
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    return min(done, key=lambda t: (t.value, t.number)) if done else None


def remeasure_summary(summaries: list[dict]) -> dict:
    """Seeds solved, and mean ± 95% CI of seconds to solve (over those that solved) and test metrics."""
    solved = [s for s in summaries if s.get("solved_at_s") is not None]
    out = {"seeds": [s["seed"] for s in summaries], "solved": len(solved), "n": len(summaries),
           "runs": [{k: s.get(k) for k in ("seed", "solved_at_step", "solved_at_s", "steps", "test_exact_match",
                                           "test_token_acc")} for s in summaries]}
    for key, rows in (("solved_at_s", solved), ("test_exact_match", summaries), ("test_token_acc", summaries)):
        values = [s[key] for s in rows if s.get(key) is not None]
        if values:
            mean, ci = mean_ci(values)
            out[key] = {"mean": mean, "ci95": ci}
    return out


def _importances(study) -> dict:
    import optuna

    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(done) < 2 or len({tuple(sorted(t.params.items())) for t in done}) < 2:
        return {}
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (ValueError, RuntimeError):  # too few distinct values for the evaluator
        return {}


def _trial_row(t) -> dict:
    a = t.user_attrs
    return {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
            **{k: a.get(k) for k in ("solved_at_s", "solved_at_step", "best_val", "test_exact_match", "run_dir",
                                     "error")}}


def result(study, best, remeasured, base, space, objective: str, cap: float, trials: int, run: dict) -> dict:
    all_trials = study.get_trials(deepcopy=False)
    counted = [t for t in all_trials if t.state.name in ("COMPLETE", "PRUNED")]
    ranked = sorted((t for t in all_trials if t.state.name == "COMPLETE"), key=lambda t: (t.value, t.number))
    return {
        "name": study.study_name, "task": base.task.name, "layout": base.layout, "objective": objective,
        "target": {"metric": base.eval.target_metric, "value": base.eval.target}, "trial_cap_s": cap,
        "trials_asked": trials, "trials_finished": len(counted),
        "states": {s: sum(t.state.name == s for t in all_trials) for s in ("COMPLETE", "PRUNED", "FAIL")},
        "space": space.to_dict(), "search": run,
        "best": _trial_row(best) if best is not None else None,
        "remeasured": remeasured,
        "top": [_trial_row(t) for t in ranked[:TOP]],
        "importances": _importances(study),
    }


def _num(v, digits: int = 3) -> str:
    return "n/a" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))


def findings(r: dict) -> list[str]:
    """Sentences from the numbers of a tune result."""
    out = [f"{r['trials_finished']} of {r['trials_asked']} trials finished ({r['states']['COMPLETE']} complete, "
           f"{r['states']['PRUNED']} pruned), each capped at {r['trial_cap_s']:g} s."]
    best = r["best"]
    if best is None:
        return out + ["No trial completed, so there is no best configuration."]
    target = f"{r['target']['metric']} {r['target']['value']}"
    if best.get("solved_at_s") is not None:
        out.append(f"The best trial (#{best['number']}) reached validation {target} in {_num(best['solved_at_s'], 1)} s "
                   f"(step {best['solved_at_step']}).")
    else:
        out.append(f"No trial reached validation {target}; the best (#{best['number']}) got to "
                   f"{_num(best['best_val'])}.")
    m = r["remeasured"]
    if m:
        timing = (f", in {_num(m['solved_at_s']['mean'], 1)} ± {_num(m['solved_at_s']['ci95'], 1)} s (95% CI over "
                  f"the seeds that solved)" if "solved_at_s" in m else "")
        out.append(f"Re-trained on {m['n']} fresh seeds ({', '.join(map(str, m['seeds']))}), {m['solved']} of {m['n']} "
                   f"reached the target{timing}; test {r['target']['metric']} "
                   f"{_num(m['test_exact_match']['mean'])} ± {_num(m['test_exact_match']['ci95'])}.")
    if r["importances"]:
        key, value = max(r["importances"].items(), key=lambda kv: kv[1])
        out.append(f"The most important parameter was {key} (importance {value:.2f}).")
    return out


def markdown(r: dict) -> str:
    lines = [f"# Tune {r['name']}", "", f"Objective: {r['objective']}; target: validation {r['target']['metric']} "
             f">= {r['target']['value']}.", ""] + [f"- {f}" for f in findings(r)] + [""]
    if r["best"] is not None:
        lines += ["## Best configuration", "", "| key | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in r["best"]["params"].items()]
        lines += ["", "Written to `best.yaml`: train it with `toyformer train --config best.yaml`.", ""]
    lines += ["## Top trials", "", "| trial | value | seconds to target | best validation | params |",
              "|---|---|---|---|---|"]
    for t in r["top"]:
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items())
        lines.append(f"| {t['number']} | {_num(t['value'])} | {_num(t['solved_at_s'], 1)} | {_num(t['best_val'])} | "
                     f"{params} |")
    if r["importances"]:
        lines += ["", "## Parameter importances (Optuna)", "", "| parameter | importance |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in r["importances"].items()]
    return "\n".join(lines) + "\n"


def write(out: Path, r: dict) -> None:
    write_json(Path(out) / "tune.json", r)
    write_text(Path(out) / "summary.md", markdown(r))
