"""``toyformer bench explain-truth [--quick] [--seeds N]``: the circuits ``toyformer explain``
finds, scored against circuits known by construction, with the published figures beside them.

**Compiled.** Five programs (``explain.truth.programs``: reverse, sort, hist, frac_prevs, dyck)
compiled to toyformer taggers; the program's graph is the truth. **Planted.** Three tasks
trained with strict interchange-intervention training (``explain.truth.planted``: reverse,
induction, neighbours) so that a chosen circuit carries the computation; its edges and its head
roles are the truth.

For each model and ablation (zero, mean, resample): the ROC AUC of the edges (the found circuit
first, then EAP-IG; and EAP-IG alone), of the nodes (heads and MLPs), whether the circuit found
is exactly the truth, and the cost in passes and seconds. For the planted models also the head
roles: each planted head's label (its role, or what its attention describes) against the planted
one, with its 95% interval.
"""

from __future__ import annotations

import json
import os
import time
from importlib import resources

import torch

from toyformer.explain.ablation import METHODS
from toyformer.explain.circuit import circuit
from toyformer.explain.roles import head_roles
from toyformer.explain.truth.planted import STEPS, train_plant
from toyformer.explain.truth.plants import PLANTS
from toyformer.explain.truth.programs import PROGRAMS, compiled
from toyformer.explain.truth.score import label, scored
from toyformer.inspect.capture import Subject
from toyformer.stats import proportion_ci

N = 512
LEARNED = 0.95  # a planted model whose exact match is below this did not learn its task


def published() -> dict:
    return json.loads(resources.files("toyformer.bench").joinpath("explain_truth_published.json").read_text())


def _sets(task, n: int, seed: int):
    g = torch.Generator().manual_seed(1000 + seed)
    return task.sample(n, g), task.sample(n, g)


def _compiled(n: int) -> list[dict]:
    rows = []
    for name in PROGRAMS:
        model, task, truth = compiled(name)
        test, ref = _sets(task, n, 0)
        t0 = time.perf_counter()
        c = circuit(model, task=task, layout="tagger", inputs=test, reference=ref)
        wall = time.perf_counter() - t0
        rows.append({"program": name, "edges": len(c["edges"]), "truth_edges": len(truth),
                     "exact_match": c["baseline"]["exact_match"], "n": c["n"], "seconds": wall,
                     "by_method": scored(c, truth)})
        print(f"compiled {name}: {wall:.1f} s", flush=True)
    return rows


def _planted(seeds: int, steps: int, n: int) -> list[dict]:
    rows = []
    for name in PLANTS:
        for seed in range(seeds):
            t0 = time.perf_counter()
            model, plant, info = train_plant(name, seed=seed, steps=steps)
            trained = time.perf_counter() - t0
            test, ref = _sets(plant.task, n, seed)
            s = Subject(model, plant.task, plant.layout, plant.sep)
            t0 = time.perf_counter()
            c = circuit(s, inputs=test, reference=ref)
            wall = time.perf_counter() - t0
            roles = {f"{r['module']} head {r['head']}": r for r in head_roles(s, inputs=test)}
            labels = {head: {"planted": want, "found": label(roles[head])} for head, want in plant.heads.items()}
            rows.append({"plant": name, "seed": seed, "steps": steps, "train_seconds": trained, "seconds": wall,
                         "edges": len(c["edges"]), "truth_edges": len(plant.edges), "n": c["n"], **info,
                         "by_method": scored(c, set(plant.edges)), "roles": labels})
            print(f"planted {name} seed {seed}: trained {trained:.0f} s, circuits {wall:.1f} s", flush=True)
    return rows


def _summary(rows: list[dict]) -> dict:
    out = {}
    for method in METHODS:
        aucs = [r["by_method"][method]["edge_auc"] for r in rows if r["by_method"][method]["edge_auc"] is not None]
        nodes = [r["by_method"][method]["node_auc"] for r in rows if r["by_method"][method]["node_auc"] is not None]
        attr = [r["by_method"][method]["attribution_auc"] for r in rows
                if r["by_method"][method]["attribution_auc"] is not None]
        out[method] = {"edge_auc_mean": sum(aucs) / len(aucs), "edge_auc_min": min(aucs),
                       "node_auc_mean": sum(nodes) / len(nodes), "attribution_auc_mean": sum(attr) / len(attr),
                       "exact": sum(r["by_method"][method]["exact"] for r in rows), "models": len(rows)}
    return out


def run(args) -> dict:
    quick = args.quick
    seeds = args.seeds or (1 if quick else 2)
    steps = 60 if quick else STEPS
    n = 64 if quick else N
    load_before = os.getloadavg()[0]
    comp = _compiled(n)
    plant = _planted(seeds, steps, n)
    right = sum(v["planted"] == v["found"] for r in plant for v in r["roles"].values())
    total = sum(len(r["roles"]) for r in plant)
    return {"quick": quick, "n": n, "compiled": comp, "planted": plant,
            "summary": {"compiled": _summary(comp), "planted": _summary(plant)},
            "roles": {"right": right, "n": total, "accuracy": right / max(total, 1), "ci": proportion_ci(right, total)},
            "published": published(), "load_average": [load_before, os.getloadavg()[0]]}


def _auc(x) -> str:
    return "—" if x is None else f"{x:.3f}"


def render(res: dict) -> str:
    lines = ["**Compiled programs**: the program's graph is the truth.\n",
             "| program | edges (true) | ablation | edge AUC | EAP-IG alone | node AUC | found = truth "
             "| passes f/b | s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in res["compiled"]:
        for m, s in r["by_method"].items():
            lines.append(f"| {r['program']} | {r['edges']} ({r['truth_edges']}) | {m} | {_auc(s['edge_auc'])} | "
                         f"{_auc(s['attribution_auc'])} | {_auc(s['node_auc'])} | {'yes' if s['exact'] else 'no'} | "
                         f"{s['cost']['forward']}/{s['cost']['backward']} | {s['cost']['seconds']:.1f} |")
    lines += ["\n**Planted circuits** (SIIT): the planted edges and head roles are the truth.\n",
              "| plant | seed | exact match (95% CI) | interchange | circuit alone z/m/r | ablation | edge AUC | "
              "EAP-IG alone | node AUC | found = truth | roles (planted: found) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["planted"]:
        k = round(r["exact_match"] * r["n"])
        lo, hi = proportion_ci(k, r["n"])
        roles = "; ".join(f"{v['planted']}: {v['found']}" for v in r["roles"].values())
        alone = "/".join(f"{r[f'circuit_only_{m}']:.2f}" for m in ("zero", "mean", "resample"))
        for m, s in r["by_method"].items():
            lines.append(f"| {r['plant']} | {r['seed']} | {r['exact_match']:.3f} (n {r['n']}, {lo:.3f}-{hi:.3f}) | "
                         f"{r['interchange']:.3f} | {alone} | {m} | {_auc(s['edge_auc'])} | "
                         f"{_auc(s['attribution_auc'])} | {_auc(s['node_auc'])} | {'yes' if s['exact'] else 'no'} | "
                         f"{roles} |")
    learned = [r for r in res["planted"] if r["exact_match"] >= LEARNED]
    if len(learned) < len(res["planted"]):
        steps = sorted({r["steps"] for r in res["planted"]})
        lines.append(f"\nOnly {len(learned)} of {len(res['planted'])} planted models learned their task (exact match "
                     f">= {LEARNED} after {', '.join(map(str, steps))} steps): the scores and role labels of the "
                     "others say nothing of the method.")
    ro = res["roles"]
    lines += ["\n**Summary beside the published figures** (edge ROC AUC; toyformer: mean over the models, minimum in "
              "brackets)\n", "| truth | ablation | toyformer | published |", "|---|---|---|---|"]
    pub = res["published"]["rows"]
    for kind, label_ in (("compiled", "compiled programs"), ("planted", "planted circuits")):
        for m, s in res["summary"][kind].items():
            lines.append(f"| {label_} | {m} | {s['edge_auc_mean']:.3f} ({s['edge_auc_min']:.3f}); exactly the truth "
                         f"in {s['exact']} of {s['models']} | {_published(pub, kind, m)} |")
    lines.append(f"\nHead roles of the planted heads right: {ro['right']} of {ro['n']} ({ro['accuracy']:.3f}, 95% CI "
                 f"{ro['ci'][0]:.3f}-{ro['ci'][1]:.3f}).")
    lines.append("\nPublished figures: " + "; ".join(
        f"{p['method']} on {p['truth']} ({p['ablation']}): "
        f"{p['note'] if p.get('edge_auc') is None else format(p['edge_auc'], '.3f')} [{p['paper']}]" for p in pub)
        + f". {res['published']['provenance']}")
    before, after = res["load_average"]
    lines.append(f"\nLoad average of the machine (1 minute) at the start and the end: {before:.2f}, {after:.2f} "
                 "(above the benchmark's own 1.0, other processes shared the cores and the times are upper bounds).")
    return "\n".join(lines)


def _published(rows: list[dict], kind: str, method: str) -> str:
    if kind == "compiled":
        want = {"zero": "zero", "resample": "random (resample)"}.get(method)
        got = [f"ACDC {r['truth'].split(' ')[1]}: {r['edge_auc']:.3f}" for r in rows
               if r["method"] == "ACDC" and r["ablation"] == want]
        extra = "; Edge Pruning: both exactly" if method == "zero" else ""
        return ("; ".join(got) + extra) if got else "—"
    got = [f"{r['method']}: {r['edge_auc']:.2f}" for r in rows if "InterpBench" in r["truth"] and r["edge_auc"]]
    return "; ".join(got) + " (InterpBench, any ablation)"
