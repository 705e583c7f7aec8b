"""Scoring a found circuit against a known one: ROC AUC of the edge and node scores, and the
accuracy of head role labels.

The ROC AUC of a score against a truth set is the probability that a random true edge scores
higher than a random false one (ties count half; Mann-Whitney). The scores ``circuit`` gives
put every edge of the found circuit above every other edge and order each side by EAP-IG, so the
AUC rewards the circuit first and the ranking second; the attribution alone is scored too.

>>> roc_auc([0.9, 0.8, 0.1, 0.2], [True, True, False, False])
1.0
"""

from __future__ import annotations

from scipy.stats import rankdata

from toyformer.explain.describe import phrase


def roc_auc(scores, truth) -> float | None:
    """ROC AUC of ``scores`` for the boolean ``truth`` (None without both classes)."""
    truth = [bool(t) for t in truth]
    pos = sum(truth)
    neg = len(truth) - pos
    if pos == 0 or neg == 0:
        return None
    ranks = rankdata([float(s) for s in scores])
    return float((sum(r for r, t in zip(ranks, truth) if t) - pos * (pos + 1) / 2) / (pos * neg))


def edge_truth(c: dict, truth: set[tuple[str, str]]) -> list[bool]:
    """For each edge of a ``circuit`` result: is ``(writer, reader)`` in ``truth``."""
    return [(e["from"], e["reader"]) in truth for e in c["edges"]]


def node_scores(c: dict, method: str) -> dict[str, float]:
    """A node's score: the largest score of the edges into or out of it (heads and MLPs)."""
    found = c["by_method"][method]
    out: dict = {}
    for e, score in zip(c["edges"], found["score"]):
        for name in (e["from"], e["to"]):
            out[name] = max(out.get(name, 0.0), score)
    for name in found["backups"]:
        out[name] = max(out.get(name, 0.0), 1.0)
    return {n["name"]: out.get(n["name"], 0.0) for n in c["nodes"] if n["kind"] in ("head", "mlp")}


def truth_nodes(truth: set[tuple[str, str]]) -> set[str]:
    """The heads and MLPs of a truth edge set (reader names cut to their node)."""
    names = set()
    for w, r in truth:
        names.add(w)
        names.add(r.rsplit(" ", 1)[0] if r.endswith(("queries", "keys", "values")) else r)
    return names - {"input", "output"}


def scored(c: dict, truth: set[tuple[str, str]]) -> dict:
    """Per method: edge ROC AUC of the circuit's scores and of the attribution alone, node ROC AUC,
    whether the circuit is exactly the truth, and its cost."""
    labels = edge_truth(c, truth)
    nodes = truth_nodes(truth)
    out = {}
    for method, found in c["by_method"].items():
        ns = node_scores(c, method)
        kept = {(c["edges"][e]["from"], c["edges"][e]["reader"]) for e in found["kept"]}
        out[method] = {"edge_auc": roc_auc(found["score"], labels),
                       "attribution_auc": roc_auc([abs(a) for a in found["attribution"]], labels),
                       "node_auc": roc_auc(list(ns.values()), [n in nodes for n in ns]),
                       "exact": kept == truth, "found": len(kept), "true": len(truth),
                       "true_found": len(kept & truth), "faithful": found["faithful"], "complete": found["complete"],
                       "cost": found["cost"]}
    return out


def label(row: dict) -> str:
    """A head's label: its role, or for a head without one what its attention describes
    (``offset -1``, ``position 0``, ``token '+'``), or ``mixed``."""
    if row["role"] != "mixed":
        return row["role"]
    stats = row.get("attention") or {}
    kind = stats.get("describes")
    if kind is None:
        return "mixed"
    if kind == "offset":
        return f"offset {stats[kind]['offset']:+d}"
    return f"position {stats[kind]['position']}" if kind == "position" else f"token {stats[kind]['token']!r}"


def said(row: dict) -> str:
    """The label in words (``previous``, ``attends 1 position forward``)."""
    stats = row.get("attention") or {}
    kind = stats.get("describes")
    return row["role"] if row["role"] != "mixed" or kind is None else phrase(kind, stats[kind])
