"""What the run page shows of ``explain.json`` (written by ``toyformer explain RUN_DIR``): the
account in sentences, each head's role (written on the attention viewer), the ablations sorted
by effect, the probe and logit-lens curves by layer, the phases (marked on the learning curves)
and, when the explanation has one, the circuit as a graph of nodes and edges.

A circuit is read from ``explain.json["circuit"]`` (of ``toyformer explain --circuit``: its union
over the ablations, ``found``), or any circuit with ``nodes`` (names, or objects with ``name``
and optionally ``kind``, ``layer``, ``score``, ``role``, ``description``) and ``edges`` (objects
with ``source`` and ``target``, or ``[source, target, score]``; optionally ``score``); its
other plain values (faithfulness, completeness, costs) are shown as they are. A node's place in
the drawing is its layer (its ``layer``, else the ``blocks.<i>`` of its name; embeddings before
the first block, the output after the last) and, within a block, attention before the MLP.

>>> layer_of({"name": "decoder.blocks.1.ff"})
1.5
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from toyformer.explain import read_explain
from toyformer.explain.ablation import effect, worst

BLOCK = re.compile(r"blocks\.(\d+)")
INPUT_WORDS, OUTPUT_WORDS = ("embed", "input", "tokens"), ("logits", "unembed", "output", "answer")


def explanation(run_dir: Path, current_step: int | None) -> dict:
    """The run page's view of ``run_dir/explain.json``; without one, the command that writes it."""
    command = f"toyformer explain {run_dir}"
    data = read_explain(run_dir)
    if data is None:
        return {"explained": False, "command": command}
    ablation = data.get("ablation") or {}
    rows = sorted(ablation.get("rows") or [], key=effect, reverse=True)
    return {
        "explained": True, "command": command, "step": data.get("step"), "preset": data.get("preset"),
        "current_step": current_step, "stale": current_step is not None and current_step != data.get("step"),
        "input": data.get("input"), "sentences": data.get("sentences") or [],
        "roles": [_role(r, rows) for r in data.get("roles") or []],
        "ablation": {"baseline": ablation.get("baseline"), "n": ablation.get("n"),
                     "n_reference": ablation.get("n_reference"),
                     "rows": [{**r, "effect": effect(r)[0]} for r in rows]} if ablation else None,
        "probes": probe_curves(data.get("probes") or []),
        "lens": lens_curves(data.get("lens") or []),
        "phases": data.get("phases"),
        "circuit": circuit(found(data["circuit"])) if isinstance(data.get("circuit"), dict) else None,
    }


def _role(r: dict, ablation_rows: list[dict]) -> dict:
    w = worst(ablation_rows, f"{r['module']} head {r['head']}")
    out = {k: r.get(k) for k in ("module", "head", "role", "score", "best", "description")}
    out["ablation"] = None if w is None else {"method": w["method"], "exact_match": w["exact_match"],
                                              "d_exact_match": w["d_exact_match"], "d_token_acc": w["d_token_acc"]}
    return out


def probe_curves(probes: list[dict]) -> list[dict]:
    """One curve per (stream, probed quantity): held-out probe accuracy by layer, and chance."""
    curves: dict[tuple, dict] = {}
    for r in sorted(probes, key=lambda r: r["layer"]):
        c = curves.setdefault((r["stream"], r["target"]), {"stream": r["stream"], "target": r["target"],
                                                          "chance": r.get("chance"), "layer": [], "accuracy": [],
                                                          "n_test": r.get("n_test")})
        c["layer"].append(r["layer"])
        c["accuracy"].append(r["accuracy"])
    return list(curves.values())


def lens_curves(lens: list[dict]) -> list[dict]:
    """One curve per stream: the logit lens's exact match, token accuracy and loss by layer."""
    curves: dict[str, dict] = {}
    for r in sorted(lens, key=lambda r: r["layer"]):
        c = curves.setdefault(r["stream"], {"stream": r["stream"], "layer": [], "exact_match": [], "token_acc": [],
                                            "loss": []})
        for k in ("layer", "exact_match", "token_acc", "loss"):
            c[k].append(r.get(k))
    return list(curves.values())


def found(raw: dict) -> dict:
    """The circuit to draw: of ``toyformer explain --circuit``'s result (the model's whole graph
    with ``by_method`` and the union ``circuit``), the union's nodes and edges, and per ablation
    one line of what it kept and cost; any other circuit as it is."""
    union = raw.get("circuit")
    if not isinstance(union, dict) or not isinstance(raw.get("by_method"), dict):
        return raw
    facts = {"measure": raw.get("measure"), "examples": raw.get("n")}
    for method, f in raw["by_method"].items():
        facts[method] = (f"{len(f['kept'])} {f['units']}, {f['measure'].replace('_', ' ')} {f['faithful']:.3f} kept "
                         f"(target {f['target']:.3f}), {f['ablated']:.3f} with the circuit ablated "
                         f"({'complete' if f['complete'] else 'not complete'}), backups: "
                         f"{', '.join(f['backups']) or 'none'}; {f['cost']['forward']} forward and "
                         f"{f['cost']['backward']} backward passes")
    return {"nodes": union.get("nodes") or [], "edges": union.get("edges") or [], **facts}


def circuit(raw: dict) -> dict:
    """The circuit's nodes (each with ``x``, its layer, and ``y``, its place in the layer) and
    edges, and its plain values (``facts``)."""
    nodes: dict[str, dict] = {}
    for n in raw.get("nodes") or []:
        node: dict[str, Any] = {"name": str(n)} if not isinstance(n, dict) else {
            **{k: v for k, v in n.items() if isinstance(v, (str, int, float, bool)) or v is None},
            "name": str(n.get("name") or n.get("id") or n.get("component"))}
        nodes[node["name"]] = node
    edges = []
    for e in raw.get("edges") or []:
        if isinstance(e, dict):
            src, dst, score = e.get("source", e.get("from")), e.get("target", e.get("to")), e.get("score")
        else:
            src, dst, score = (list(e) + [None])[:3]
        if src is None or dst is None:
            continue
        src, dst = _name(src), _name(dst)
        for name in (src, dst):
            nodes.setdefault(name, {"name": name})
        edges.append({"source": src, "target": dst, "score": score if isinstance(score, (int, float)) else None})
    inner = [x for x in map(layer_of, nodes.values()) if x is not None]
    last = max(inner, default=0)
    columns: dict[float, list[dict]] = {}
    for n in nodes.values():
        x = layer_of(n)
        n["x"] = x if x is not None else (-1 if any(w in n["name"].lower() for w in INPUT_WORDS) else last + 1)
        columns.setdefault(n["x"], []).append(n)
    for column in columns.values():
        for i, n in enumerate(sorted(column, key=lambda n: n["name"])):
            n["y"] = i - (len(column) - 1) / 2
    facts = {k: v for k, v in raw.items() if k not in ("nodes", "edges") and isinstance(v, (str, int, float, bool))}
    return {"nodes": list(nodes.values()), "edges": edges, "facts": facts}


def _name(x) -> str:
    """An edge end: a node name, or InterpBench's ``[hook name, head index]``."""
    if isinstance(x, (list, tuple)):
        return " head ".join(str(p) for p in x if p is not None)
    if isinstance(x, dict):
        return str(x.get("name") or x.get("id"))
    return str(x)


def layer_of(node: dict) -> float | None:
    """The node's column: its ``layer``, else its block (``.5`` for a block's MLP); None for the
    embeddings and the output, which go before and after the blocks."""
    if isinstance(node.get("layer"), (int, float)):
        return node["layer"]
    name = node["name"].lower()
    m = BLOCK.search(name)
    if m is None:
        return None
    return int(m.group(1)) + (0.5 if any(w in name for w in (".ff", "mlp", "hook_mlp")) else 0.0)
