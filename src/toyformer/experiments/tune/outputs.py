"""What a tune reports: the best trial, its time-to-solve re-measured on fresh seeds (mean and
95% CI), the defaults on the same seeds and the gain (``gain``), the top trials, and Optuna's
parameter importances; ``tune.json`` and ``summary.md``. Every sentence is built from these
numbers."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from toyformer.files import write_json, write_text
from toyformer.stats import accuracy_text, mean_ci, seeds_interval

TOP = 5


def best_trial(study):
    """The complete trial with the lowest objective value (None before any finished)."""
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    return min(done, key=lambda t: (t.value, t.number)) if done else None


def remeasure_summary(summaries: Sequence[Mapping[str, Any]]) -> dict:
    """Seeds solved (as each run's summary decided), mean ± 95% CI of seconds to solve over those
    that solved, and each test accuracy's mean with its interval (``stats.seeds_interval``, pooled
    over the seeds' ``test_n``): ``{"mean", "low", "high", "n"}``."""
    solved = [s for s in summaries if s.get("solved", s.get("solved_at_s") is not None)]
    out = {"seeds": [s["seed"] for s in summaries], "solved": len(solved), "n": len(summaries),
           "runs": [{k: s.get(k) for k in ("seed", "solved", "solved_at_step", "solved_at_s", "steps", "wall_s",
                                           "test_exact_match", "test_n", "test_token_acc")} for s in summaries]}
    times = [s["solved_at_s"] for s in solved if s.get("solved_at_s") is not None]
    if times:
        mean, ci = mean_ci(times)
        out["solved_at_s"] = {"mean": mean, "ci95": ci, "slowest": max(times)}
    for key in ("test_exact_match", "test_token_acc"):
        rows = [s for s in summaries if s.get(key) is not None]
        if rows:
            sizes: list[Any] = [s.get("test_n") for s in rows]  # each run's test_n, None where unknown
            known = all(sizes)
            mean, lo, hi = seeds_interval([s[key] for s in rows], sizes if known else None)
            out[key] = {"mean": mean, "low": lo, "high": hi, "n": sum(sizes) if known else None}
    return out


def gain(best: dict, defaults: dict, cap: float) -> dict:
    """The best configuration against the defaults, re-measured on the same fresh seeds: how many
    seeds each solved, and ``ratio``, the defaults' mean seconds to solve over the best's. A seed
    that did not solve counts as ``cap`` seconds, less than its true time, so when only the
    defaults miss some the ratio is a lower bound (``ratio_is`` "at least"); when the best misses
    one there is no ratio."""
    out = {"seeds": best["seeds"], "best_solved": best["solved"], "defaults_solved": defaults["solved"],
           "n": best["n"], "cap_s": cap, "ratio": None, "ratio_is": None}
    if best["solved"] < best["n"]:
        return out

    def mean_time(m):
        times = [r["solved_at_s"] if r.get("solved", r.get("solved_at_s") is not None) else cap for r in m["runs"]]
        return sum(times) / len(times)

    out["best_s"], out["defaults_s"] = mean_time(best), mean_time(defaults)
    out["ratio"] = out["defaults_s"] / max(out["best_s"], 1e-9)
    out["ratio_is"] = "exact" if defaults["solved"] == defaults["n"] else "at least"
    return out


def _importances(study) -> dict:
    import optuna

    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(done) < 2 or len({tuple(sorted(t.params.items())) for t in done}) < 2:
        return {}
    try:
        with warnings.catch_warnings():  # "importances will be equal" on a few trials: the numbers say so
            warnings.simplefilter("ignore", UserWarning)
            return dict(optuna.importance.get_param_importances(study))
    except (ValueError, RuntimeError):  # too few distinct values for the evaluator
        return {}


def _trial_row(t) -> dict:
    a = t.user_attrs
    return {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
            **{k: a.get(k) for k in ("solved_at_s", "solved_at_step", "best_val", "test_exact_match", "run_dir",
                                     "error")}}


def result(study, best, remeasured, base, space, objective: str, cap: float, trials: int, run: dict,
           defaults: dict | None = None) -> dict:
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
        "remeasured": remeasured, "defaults": defaults,
        "gain": gain(remeasured, defaults, cap) if remeasured and defaults else None,
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
        out.append(f"The best trial (#{best['number']}) reached validation {target} in {_num(best['solved_at_s'], 1)} "
                   f"s (step {best['solved_at_step']}).")
    else:
        out.append(f"No trial reached validation {target}; the best (#{best['number']}) got to "
                   f"{_num(best['best_val'])}.")
    m = r["remeasured"]
    if m:
        out.append(f"Re-trained on {m['n']} fresh seeds ({', '.join(map(str, m['seeds']))}), the best configuration "
                   f"{_measured(m)}.")
    if r.get("gain"):
        out.append(_gain_sentence(r))
    if r["importances"]:
        key, value = max(r["importances"].items(), key=lambda kv: kv[1])
        out.append(f"The most important parameter was {key} (importance {value:.2f}).")
    return out


def _measured(m: dict) -> str:
    """"solved 3 of 3 seeds in 4.1 ± 0.9 s (...); test exact match 1.0000 (mean of 3 seeds, n=..., 95% CI ...)"."""
    timing = (f" in {_num(m['solved_at_s']['mean'], 1)} ± {_num(m['solved_at_s']['ci95'], 1)} s (95% CI over the "
              f"seeds that solved; slowest {_num(m['solved_at_s']['slowest'], 1)} s)" if "solved_at_s" in m else "")
    em, of = m.get("test_exact_match"), f"{m['n']} seeds"
    test = f"; test exact match {accuracy_text(em['mean'], (em['low'], em['high']), em['n'], of)}" if em else ""
    return f"solved {m['solved']} of {m['n']} seeds{timing}{test}"


def _gain_sentence(r: dict) -> str:
    g, d = r["gain"], r["defaults"]
    text = f"The defaults (the base config, without the searched values) on the same seeds {_measured(d)}"
    if g["ratio"] is None:
        return text + (f"; the best configuration solved {g['best_solved']} of {g['n']}, so there is no ratio of "
                       "times to solve.")
    bound = "at least " if g["ratio_is"] == "at least" else ""
    capped = (f", counting each seed the defaults did not solve as the {g['cap_s']:g} s cap"
              if g["ratio_is"] == "at least" else "")
    return (text + f": the best configuration solves {bound}{g['ratio']:.1f}x as fast ({_num(g['best_s'], 1)} s "
            f"against {_num(g['defaults_s'], 1)} s, mean over the {g['n']} seeds{capped}).")


def markdown(r: dict) -> str:
    lines = [f"# Tune {r['name']}", "", f"Objective: {r['objective']}; target: validation {r['target']['metric']} "
             f">= {r['target']['value']}.", ""] + [f"- {f}" for f in findings(r)] + [""]
    if r["best"] is not None:
        lines += ["## Best configuration", "", "| key | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in r["best"]["params"].items()]
        lines += ["", "Written to `best.yaml`: train it with `toyformer train --config best.yaml`.", ""]
    if r.get("gain"):
        lines += ["## Gain over the defaults", "", f"Both on the same {r['gain']['n']} fresh seeds "
                  f"({', '.join(map(str, r['gain']['seeds']))}), each run capped at {r['trial_cap_s']:g} s.", "",
                  "| configuration | seeds solved | seconds to solve (mean ± 95% CI, solved seeds) | slowest s | "
                  "test exact match (mean, n, 95% CI) |", "|---|---|---|---|---|"]
        for label, m in (("best", r["remeasured"]), ("defaults", r["defaults"])):
            t, em = m.get("solved_at_s"), m.get("test_exact_match")
            when = f"{t['mean']:.1f} ± {t['ci95']:.1f}" if t else "-"
            test = accuracy_text(em["mean"], (em["low"], em["high"]), em["n"]) if em else "-"
            lines.append(f"| {label} | {m['solved']}/{m['n']} | {when} | {_num(t['slowest'], 1) if t else '-'} | "
                         f"{test} |")
        lines += ["", _gain_sentence(r), ""]
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
