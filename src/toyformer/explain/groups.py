"""Heads that share a job, and what the heads without a named role depend on.

**Groups.** Ablating one component at a time misses heads that back each other up: each can be
removed alone with the answers intact, but not all of them. A *role group* is every head of one
attention module with the same role (``roles``), or, for heads with no named role, the same
description (``describe``: the same offset, position or token). Each group is ablated jointly
(every head at once, each ablation method) beside each head alone. A group is *redundant* when
its joint ablation changes the measure by at least ``JOINT`` and by at least twice the sum of its
heads' changes alone: they do one job together. Where some of its heads change nothing alone and
others do, the others are also ablated without them: when adding them changes the measure by
``JOINT`` more, they back the others up (``backed_up``). The circuits' backups (``circuit``) are such
helpers too.

**Descriptions.** For each used head with no named role (ablating it changes the answers by
``USED`` or more) its attention is replaced by each described rule (``describe.depends_on``).

>>> [g["heads"] for g in groups(run, head_roles(run)) if g["redundant"]]   # doctest: +SKIP
[[0, 1, 2, 3]]
"""

from __future__ import annotations

from toyformer.explain.ablation import worst
from toyformer.explain.data import score
from toyformer.explain.describe import depends_on
from toyformer.explain.graph import build_graph
from toyformer.explain.paths import Runner
from toyformer.explain.roles import context
from toyformer.inspect.capture import subject

JOINT = 0.1  # a redundant group's joint ablation changes the measure by at least this much
USED = 0.01


def role_groups(roles: list[dict]) -> list[dict]:
    """Heads of one module with the same role, or with no role and the same description."""
    found: dict = {}
    for r in roles:
        if r["role"] != "mixed":
            key, label = ("role", r["role"]), r["role"]
        else:
            kind = (r.get("attention") or {}).get("describes")
            if kind is None:
                continue
            stat = r["attention"][kind]
            key, label = (kind, stat[kind]), kind
        found.setdefault((r["module"], key), {"module": r["module"], "kind": key[0], "label": label,
                                              "value": key[1], "heads": []})["heads"].append(r["head"])
    return [g for g in found.values() if len(g["heads"]) >= 2]


def groups(source, roles: list[dict], ablation: dict, inp, reference, seed: int = 0, task=None,
           layout: str | None = None) -> list[dict]:
    """Every role group of ``roles`` (``role_groups``) ablated jointly, by each method of
    ``ablation`` (``ablate``'s table, which has each head alone), on ``inp`` (means and resamples
    from ``reference``; both prepared ``Inputs`` of one width, as ``ablate`` used)."""
    found = role_groups(roles)
    if not found:
        return []
    s = subject(source, task, layout)
    graph = build_graph(s.model, s.layout)
    runner = Runner(s.model, graph, inp)
    index = {(w.module, w.head): i for i, w in enumerate(graph.writers) if w.kind == "head"}
    labels = inp.batch.labels
    base = ablation["baseline"]
    measure = "exact_match" if base["exact_match"] >= 0.1 else "token_acc"
    methods = ablation["methods"]
    acts = runner.record(reference) if set(methods) - {"zero"} else None
    ablated = {method: runner.ablated(method, reference, seed, acts=acts) for method in methods}
    rows = {(r["component"], r["method"]): r for r in ablation["rows"]}
    for g in found:
        g["by_method"] = {}
        for method, values in ablated.items():
            writers = [index[(g["module"], h)] for h in g["heads"]]
            joint = score(runner.without(values, writers=writers), labels)
            alone = [rows[(f"{g['module']} head {h}", method)] for h in g["heads"]]
            g["by_method"][method] = {"joint": joint, "alone": [{k: r[k] for k in joint} for r in alone]}
            used = [w for w, r in zip(writers, alone) if base[measure] - r[measure] >= USED]
            if 0 < len(used) < len(writers):  # the heads used alone, ablated without the others
                g["by_method"][method]["used_only"] = score(runner.without(values, writers=used), labels)
        g["measure"], g["baseline"] = measure, base
        _judge(g, measure, base)
    return found


def _judge(g: dict, measure: str, base: dict) -> None:
    """The method whose joint ablation changes most (on a tie: resample, then mean, then zero);
    redundant or not under it."""
    drop = lambda r: base[measure] - r[measure]  # noqa: E731
    prefer = {"resample": 2, "mean": 1, "zero": 0}
    method = max(g["by_method"], key=lambda m: (round(drop(g["by_method"][m]["joint"]), 9), prefer.get(m, -1)))
    m = g["by_method"][method]
    joint, alone = drop(m["joint"]), [drop(r) for r in m["alone"]]
    g["method"] = method
    g["joint_drop"], g["max_alone_drop"], g["sum_alone_drop"] = joint, max(alone), sum(max(a, 0.0) for a in alone)
    g["redundant"] = joint >= JOINT and joint >= 2 * g["sum_alone_drop"]
    g["used"] = joint >= USED
    # heads no ablation alone changes, that back the others up: ablating them as well adds JOINT or more
    idle = [h for h, a in zip(g["heads"], alone) if a < USED] if "used_only" in m else []
    if idle and not g["redundant"] and joint - drop(m["used_only"]) >= JOINT:
        g["backed_up"] = {"backups": idle, "heads": [h for h in g["heads"] if h not in idle], "joint": m["used_only"]}


def check_descriptions(source, roles: list[dict], ablation: dict, inp, task=None, layout: str | None = None
                       ) -> list[str]:
    """Add ``depends_on`` (the scores with the attention replaced by each described rule) and
    ``ablated`` (the head's largest ablation) to each used head of ``roles`` without a named
    role, in place; returns the heads tested."""
    s = subject(source, task, layout)
    contexts: dict = {}
    tested = []
    for r in roles:
        name = f"{r['module']} head {r['head']}"
        w = worst(ablation["rows"], name)
        stats = r.get("attention") or {}
        if r["role"] != "mixed" or w is None or max(abs(w["d_exact_match"]), abs(w["d_token_acc"])) < USED:
            continue
        if not any(stats.get(k) for k in ("offset", "position", "token")):
            continue
        if r["module"] not in contexts:
            contexts[r["module"]] = context(s, inp, r["module"])
        r["depends_on"] = depends_on(s.model, inp, r["module"], r["head"], contexts[r["module"]], stats)
        r["ablated"] = {k: w[k] for k in ("method", "exact_match", "token_acc")}
        tested.append(name)
    return tested
