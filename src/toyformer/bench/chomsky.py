"""``toyformer bench chomsky``: the Chomsky-hierarchy suite (Deletang et al. 2023, Ruoss et al.
2023) in one command, beside the papers' numbers.

``toyformer bench chomsky [--tasks a,b] [--models lstm,transformer] [--schemes none,rope,...]
[--seeds K] [--budget quick|cpu|long|full] [--max-test-length N] [--workers N | --cluster ADDR]``

Every (task, column) cell is one job for the sweep executors (``experiments.chomsky.cells``):
in this process, in ``--workers`` local processes or on a Dask cluster (``--cluster``). Each run
is a run directory under ``--runs-dir`` and a row of the results store (``--store``; source
``bench``, sweep ``chomsky-<budget>``, point ``<task>/<column>``, with the columns
``chomsky_score`` and ``chomsky_train_score``). The table gives, per cell, the maximum score over
seeds and learning rates (the papers' rule), the mean ± 95% CI over seeds, the verdict (solved
>= 90%, chance < chance + 5 points, else between) and the published counterpart; then the goals;
a figure (measured and published heat maps) is written next to the markdown or JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from importlib import resources
from pathlib import Path

from toyformer.errors import ConfigError
from toyformer.experiments.chomsky.cells import run_cell
from toyformer.experiments.chomsky.protocol import (BUDGETS, DEFAULT_MODELS, MODELS, DEFAULT_SCHEMES, RECURRENT,
                                                    SCHEMES,
                                                   SCRATCHPAD_TASKS, SOLVED, TRAIN_LENGTHS, verdict)
from toyformer.experiments.chomsky.table import compare, figure, summarise
from toyformer.experiments.store import as_store, default_store_path, warn_not_recorded
from toyformer.experiments.sweeps.executors import make_executor
from toyformer.tasks.chomsky import LEVELS, SUITE

RUNS_DIR = "runs/bench/chomsky"


def published() -> dict:
    """The papers' numbers (``chomsky_published.json``, shipped in the package)."""
    return json.loads(resources.files("toyformer.bench").joinpath("chomsky_published.json").read_text())


def _choose(text: str | None, allowed, option: str, default) -> list[str]:
    if text is None:
        return list(default)
    chosen = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in chosen if t not in allowed]
    if bad or not chosen:
        raise ConfigError(f"{option}: unknown value {(bad or [text])[0]!r}; allowed: {', '.join(allowed)}")
    return list(dict.fromkeys(chosen))


def _positive(text, option: str, low: int = 1) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{option} {text!r} is not an integer; allowed: >= {low}") from None
    if value < low:
        raise ConfigError(f"{option} {value} is out of range; allowed: >= {low}")
    return value


def plan(args) -> dict:
    """Every choice of the invocation, checked before anything runs or is written."""
    name = "quick" if args.quick else (args.budget or "cpu")
    if name not in BUDGETS:
        raise ConfigError(f"--budget {name!r}: allowed: {', '.join(BUDGETS)}")
    budget = BUDGETS[name]
    tasks = _choose(args.tasks, list(SUITE), "--tasks", SUITE)
    models = _choose(args.models, MODELS, "--models", DEFAULT_MODELS)
    schemes = _choose(args.schemes, list(SCHEMES), "--schemes", DEFAULT_SCHEMES)
    top = _positive(args.max_test_length, "--max-test-length", TRAIN_LENGTHS[1] + 1) or budget.max_test_length
    seeds = _positive(args.seeds, "--seeds") or budget.seeds
    workers = _positive(args.workers, "--workers") or 1
    if args.seeds_as not in ("replicas", "runs"):
        raise ConfigError(f"--seeds-as {args.seeds_as!r}: allowed: replicas, runs")
    if "scratchpad" in schemes and "transformer" in models:
        other = [t for t in tasks if t not in SCRATCHPAD_TASKS]
        if other:
            raise ConfigError(f"--schemes scratchpad applies to the regular tasks with an automaton; --tasks has "
                              f"{', '.join(other)}; allowed: {', '.join(SCRATCHPAD_TASKS)}")
    columns = [m for m in RECURRENT if m in models] + (
        [f"transformer/{s}" for s in schemes] if "transformer" in models else [])
    return {"budget": budget, "tasks": tasks, "columns": columns, "max_test_length": top, "seeds": seeds,
            "workers": workers, "cluster": args.cluster, "batched": args.seeds_as == "replicas",
            "runs_dir": Path(args.runs_dir or RUNS_DIR) / name}


def _shown(path: str) -> str:
    """``path`` relative to the working directory when it lies under it, so a committed result
    names no machine's folders."""
    here, p = Path.cwd().resolve(), Path(path).resolve()
    return str(p.relative_to(here)) if p.is_relative_to(here) else str(p)


def rerender(path: str, figure_next_to: str | None = None) -> dict:
    """A finished bench's result (its ``--out`` JSON) set beside the current published numbers and
    their provenance, without training or scoring anything again (``--from FILE``)."""
    try:
        saved = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--from {path!r}: not a readable bench JSON ({exc.__class__.__name__}); allowed: the --out "
                          "file of an earlier `toyformer bench chomsky`") from None
    if "chomsky" not in saved or "cells" not in saved["chomsky"]:
        raise ConfigError(f"--from {path!r}: holds no chomsky result; allowed: the --out file of an earlier "
                          "`toyformer bench chomsky`")
    result = dict(saved["chomsky"])
    pub = published()
    result.update(comparison=compare(result["cells"], pub), published_provenance=pub["provenance"],
                  measured={k: saved.get(k) for k in ("command", "machine", "started")})
    result.pop("wall_s", None)
    if result["cells"]:
        png = Path(figure_next_to or path).with_suffix(".png")
        figure(result["cells"], pub, png, f"Chomsky suite, budget {result['budget']['name']}: score at lengths "
                                          f"41..{result['max_test_length']}")
        result["figure"] = png.name
    return result


def run(args) -> dict:
    if getattr(args, "from_file", None):
        return rerender(args.from_file, args.markdown or args.out)
    p = plan(args)
    budget = p["budget"]
    store = as_store(args.store or default_store_path())
    executor = make_executor(p["workers"], p["cluster"], args.threads)
    jobs = [{"task": t, "column": c, "budget": budget, "out": str(p["runs_dir"].resolve()), "seeds": p["seeds"],
             "max_test_length": p["max_test_length"], "batched": p["batched"], "threads": args.threads}
            for t in p["tasks"] for c in p["columns"]]
    print(f"chomsky: {len(jobs)} cells, budget {budget.name} ({executor.description})", file=sys.stderr, flush=True)
    results, failed = [], []
    t0, load = time.perf_counter(), [os.getloadavg()[0]]
    try:
        for i, res, error in executor.run(run_cell, jobs):
            job = jobs[i]
            if error is not None:
                failed.append({"task": job["task"], "column": job["column"], "error": error})
                print(f"chomsky {job['task']} {job['column']}: failed: {error}", file=sys.stderr, flush=True)
                continue
            results.append(res)
            _record(store, budget.name, res, p["max_test_length"])
            best = max(r["score"] for r in res["runs"])
            print(f"chomsky [{len(results) + len(failed)}/{len(jobs)}] {res['task']} {res['column']}: max score "
                  f"{best:.3f} ({len(res['runs'])} runs, {res['wall_s']:.0f} s)", file=sys.stderr, flush=True)
    finally:
        executor.close()
    load.append(os.getloadavg()[0])
    cells = [summarise(r["task"], r["column"], r["runs"], SUITE[r["task"]].chance) for r in results]
    order = {(t, c): i for i, (t, c) in enumerate((j["task"], j["column"]) for j in jobs)}
    cells.sort(key=lambda c: order[(c["task"], c["column"])])
    pub = published()
    result = {"budget": vars(budget), "tasks": p["tasks"], "columns": p["columns"], "seeds": p["seeds"],
              "max_test_length": p["max_test_length"], "n_per_length": budget.n_per_length,
              "seeds_as": "replicas" if p["batched"] else "runs", "runs_dir": str(p["runs_dir"]),
              "store": str(store.path) if store else None, "cells": cells, "failed": failed,
              "comparison": compare(cells, pub), "published_provenance": pub["provenance"],
              "cells_wall_s": round(time.perf_counter() - t0, 1), "load_average_1min": load, "cores": os.cpu_count(),
              "train_s": round(sum(x["summary"]["wall_s"] for r in results for x in r["runs"]), 1),
              "trained_now": sum(x["status"] != "done" for r in results for x in r["runs"]),
              "score_s": round(sum(x["score_s"] for r in results for x in r["runs"]), 1),
              "runs": [{k: r[k] for k in ("task", "column", "wall_s")} | {"scores": [
                  {k: x[k] for k in ("seed", "lr", "score", "train_score")} | {"run_dir": _shown(x["run_dir"])}
                  for x in r["runs"]]}
                  for r in results]}
    if cells:
        where = Path(args.markdown or args.out or f"runs/benchmarks/chomsky{'-quick' if args.quick else ''}.json")
        png = where.with_suffix(".png")
        png.parent.mkdir(parents=True, exist_ok=True)
        figure(cells, pub, png, f"Chomsky suite, budget {budget.name}: score at lengths 41..{p['max_test_length']}")
        result["figure"] = png.name
    return result


def _record(store, budget: str, res: dict, top: int) -> None:
    """One results-store row per run, with its scores as columns (written by this process only)."""
    if store is None:
        return
    try:
        for r in res["runs"]:
            run_dir = Path(r["run_dir"])
            batched = run_dir.parent.name == "replicas"  # replica i of a batched run, else a run of its own
            replica = int(run_dir.name) if batched else 0
            n_replicas = sum(Path(x["run_dir"]).parent == run_dir.parent for x in res["runs"]) if batched else 1
            summary = {**r["summary"], "chomsky_score": r["score"], "chomsky_train_score": r["train_score"],
                       "chomsky_max_test_length": top}
            store.record_summary(r["config"], summary, run_dir, source="bench", sweep=f"chomsky-{budget}",
                                 point=f"{res['task']}/{res['column']}", replica=replica, n_replicas=n_replicas,
                                 machine=res["machine"], git_rev=res["git_rev"])
    except Exception as exc:  # noqa: BLE001 - a store failure must not lose the bench's results
        warn_not_recorded(store, exc)


def _invocation(result: dict) -> str:
    load = " -> ".join(f"{x:.1f}" for x in result["load_average_1min"])
    if result["trained_now"] == 0:
        return (f"This invocation trained nothing: it read every finished run and its score back and wrote the table "
                f"({result['cells_wall_s'] / 60:.1f} min).")
    return (f"This invocation trained or continued {result['trained_now']} runs in {result['cells_wall_s'] / 60:.1f} "
            f"min of wall time; 1-minute load average {load} (start -> end) on {result['cores']} cores.")


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _mean(r: dict) -> str:
    """A cell's mean score over seeds with its 95% interval (inside [0, 1]; one seed has none)."""
    if r["n"] < 2 or r.get("low") is None:
        return f"{_pct(r['mean'])} ({r['n']} seed{'s' if r['n'] != 1 else ''})"
    return f"{_pct(r['mean'])} ({_pct(r['low'])}-{_pct(r['high'])}, {r['n']} seeds)"


def render(result: dict) -> str:
    b = result["budget"]
    cmp = result["comparison"]
    measured = result.get("measured")
    again = ([f"Re-rendered from the JSON of `{measured['command']}` (run {measured['started']} on "
              f"{measured['machine']['cpu']}, {measured['machine']['cores']} cores): the scores are that run's, set "
              "beside the current published numbers and their provenance.", ""] if measured else [])
    lines = [f"### The Chomsky-hierarchy suite: budget `{b['name']}`", "", *again,
             f"Budget `{b['name']}`: {b['note']}. Seeds per cell and learning rate: {result['seeds']}"
             f"{' (transformer seeds as ' + result['seeds_as'] + ')' if result['seeds'] > 1 else ''}; learning rates: "
             f"transformer {', '.join(f'{x:g}' for x in b['lrs']['transformer'])}, recurrent "
             f"{', '.join(f'{x:g}' for x in b['lrs']['lstm'])}. Score: the reference code's accuracy (answer tokens up "
             f"to the end mark), averaged over every length 41..{result['max_test_length']} ({result['n_per_length']} "
             "examples each); trained-range: the same at lengths 1..40.",
             f"Training time of the runs (their own wall clocks): {result['train_s'] / 60:.1f} min; scoring: "
             f"{result['score_s'] / 60:.1f} min. " + _invocation(result), ""]
    sources = _sources(cmp)
    per_seed = any(r["n"] > 1 and "seed_scores" in r for r in cmp["rows"])
    head = ["task", "level", "column", "score (max)", "mean (95% CI, seeds)", *(["per seed"] if per_seed else []),
            "trained-range", "verdict", "published", "provenance", "published verdict", "same verdict",
            "in seed spread"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in cmp["rows"]:
        mark = "≈" if r["borderline"] or r.get("published_borderline") else ""
        same = "-" if r["reproduced"] is None else ("yes" if r["reproduced"] else "**no**") + mark
        spread = "-" if r["within_spread"] is None else ("yes" if r["within_spread"] else "no")
        lines.append(f"| {r['task']} | {SUITE[r['task']].level} | {r['column']} | {_pct(r['max'])} | "
                     f"{_mean(r)} | "
                     + (f"{', '.join(_pct(x) for x in r.get('seed_scores', []))} | " if per_seed else "")
                     + f"{_pct(r['train_max'])} | {r['verdict']} | "
                     f"{_published(r)} | {_provenance(r, sources)} | {r['published_verdict'] or '-'} | {same} | "
                     f"{spread} |")
    v, s, bt = cmp["verdicts"], cmp["spread"], cmp["beats"]
    lines += ["", f"Levels: {', '.join(f'{k} = {v}' for k, v in LEVELS.items())}. Verdicts: solved >= 90%, chance < "
                  f"chance + 5 points (chance: 50% for binary answers, 20% for the mod-5 tasks, cycle navigation "
                  f"and bucket sort), else between; ≈ marks a score within 2 points of a verdict's boundary.", ""]
    lines += [_source_list(sources), ""] if sources else []
    if per_seed:
        lines += ["Seeds of the best learning rate reaching 99% and 90% (solved):", ""]
        lines += [f"- {r['task']} {r['column']}: {sum(x >= 0.99 for x in r['seed_scores'])} of {r['n']} seeds >= 99%, "
                  f"{sum(x >= SOLVED for x in r['seed_scores'])} >= 90%" for r in cmp["rows"] if r["n"] > 1]
        lines.append("")
    lines += ["#### The goals", "",
              f"- Published verdict reproduced: {v['reproduced']} of {v['cells']} cells with a published counterpart; "
              f"on the cells whose published value is confirmed: {v.get('confirmed_reproduced', 0)} of "
              f"{v.get('confirmed_cells', 0)} (the others compare with unverified numbers).",
              "- Published number within the seed spread (min..max over seeds): "
              + (f"{s['within']} of {s['cells']} cells." if s["cells"] else "not measured (one seed per cell)."),
              f"- Best toyformer transformer above the best published transformer: {bt['tasks']} of {bt['of']} tasks "
              f"(above Deletang et al.'s transformer alone: {bt['beats_deletang']} of {bt['of']}; a score at chance "
              f"never counts as above).", ""]
    lines += findings(cmp["rows"])
    if cmp["best"]:
        lines += ["| task | best toyformer transformer | score | best published transformer | published | provenance | "
                  "above |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {x['task']} | {x['column']} | {_pct(x['score'])} | {x['source']} | {_published(x)} | "
                  f"{_provenance(x, sources)} | {'yes' if x['beats'] else 'no'} |" for x in cmp["best"]]
        lines.append("")
    if result.get("failed"):
        lines += ["Failed cells: " + "; ".join(f"{f['task']} {f['column']}: {f['error']}" for f in result["failed"]),
                  ""]
    lines += [f"Published numbers: `toyformer/bench/chomsky_published.json`. {result['published_provenance']}"]
    if result.get("figure"):
        lines += ["", f"![measured and published scores]({result['figure']})"]
    return "\n".join(lines)


def _published(row: dict) -> str:
    """A published value, marked where no printed source confirms it."""
    if row.get("published") is None:
        return "-"
    return _pct(row["published"]) + ("" if row.get("check") else " (?)")


def _sources(cmp: dict) -> dict[str, int]:
    """The sources confirming the published cells of a comparison, numbered in order of appearance."""
    checks = [r.get("check") for r in [*cmp["rows"], *cmp["best"]]]
    return {c: i + 1 for i, c in enumerate(dict.fromkeys(c for c in checks if c))}


def _provenance(row: dict, sources: dict[str, int]) -> str:
    if row.get("published") is None:
        return "-"
    return f"confirmed [{sources[row['check']]}]" if row.get("check") else "**unverified**"


def _source_list(sources: dict[str, int]) -> str:
    return ("Provenance of the published numbers: *confirmed [k]* cells are printed in source k below; "
            "**unverified** cells, marked (?), were typed in without the papers' tables and no printed copy was found "
            "(none was contradicted). Sources: " + "; ".join(f"[{k}] {text}" for text, k in sources.items()) + ".")


def findings(rows: list[dict]) -> list[str]:
    """The cells whose verdict differs from the published one, sorted by what the trained-range
    score says: the model did not learn the training lengths, or learned them and did not carry
    the rule to longer inputs, or did better than published."""
    missed = [r for r in rows if r["reproduced"] is False]
    if not missed:
        return []
    rank = {"chance": 0, "between": 1, "solved": 2}
    below = [r for r in missed if rank[r["verdict"]] < rank[r["published_verdict"]]]
    above = [r for r in missed if rank[r["verdict"]] > rank[r["published_verdict"]]]
    untrained = [r for r in below if verdict(r["train_max"], r["chance"]) != "solved"]
    unextended = [r for r in below if r not in untrained]

    def names(group):
        return ", ".join(f"{r['task']} {r['column']} ({_pct(r['max'])} vs {_pct(r['published'])}; trained-range "
                         f"{_pct(r['train_max'])})" for r in group)

    out = ["#### The cells whose verdict differs", ""]
    if untrained:
        out.append(f"- Below the published verdict, not even solving the training lengths (trained-range below 90%) "
                   f"within the budget: {names(untrained)}.")
    if unextended:
        out.append(f"- Below the published verdict although the training lengths are solved: {names(unextended)}.")
    if above:
        out.append(f"- Above the published verdict: {names(above)}.")
    return out + [""]
