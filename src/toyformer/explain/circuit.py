"""Circuits: the smallest set of edges (heads, feed-forward blocks and the residual paths between
them, ``graph``) that keeps the model's behaviour, under each ablation.

For each ablation (``zero``, ``mean``, ``resample``, as ``ablation`` defines them):

1. **Rank** every edge by EAP-IG (``paths.Runner.attribution``: a few forward and backward
   passes score all edges at once).
2. **Search**: the fewest top-ranked edges that, with every other edge ablated, keep the measure
   (exact match; token accuracy where the model gets no answer wholly right) at ``threshold``
   (0.99) of the model's: *faithful*. Edges into a node whose output no kept edge reads are
   dropped (they cannot matter).
3. **Confirm** by path patching: the kept edges, weakest first (in blocks, halved where a block
   cannot go), are ablated as well wherever the circuit stays faithful without them.
4. **Complete**: ablating only the circuit's edges must destroy the answer: bring the measure
   down to within a tenth of the way from what the model gets with every edge ablated (its
   floor) to what it gets intact. Where it does not, other components do the same job: each
   node outside the circuit is ablated together with it once, and in the order of what that
   leaves they are added (*backups*), until the answer is destroyed or the next one lowers the
   measure by less than ``USED``.

Every step counts its forward and backward passes (each over all the examples). Models without
separable edges (post-norm) get the same search over nodes, ranked by ablating each one.

>>> c = circuit("runs/rev", methods=["resample"])                # doctest: +SKIP
>>> c["by_method"]["resample"]["nodes"], c["by_method"]["resample"]["faithful"]   # doctest: +SKIP
(['input', 'encoder.blocks.0.attn head 1'], 1.0)
"""

from __future__ import annotations

import time

import torch

from toyformer.errors import ConfigError
from toyformer.explain.ablation import METHODS
from toyformer.explain.data import paired, score
from toyformer.explain.graph import Graph, build_graph
from toyformer.explain.paths import Runner
from toyformer.inspect.capture import subject

THRESHOLD = 0.99  # faithful: the measure stays at this share of the model's
DESTROYED = 0.1  # complete: at most this share of the way from the floor to the model
USED = 0.01  # a backup must lower the measure by at least this much
STEPS = 5  # EAP-IG integration steps


def circuit(source, methods=METHODS, n: int = 512, steps: int = STEPS, threshold: float = THRESHOLD, seed: int = 0,
            inputs=None, reference=None, task=None, layout: str | None = None) -> dict:
    """The circuit of ``source`` (a Run, a run directory, or a model with ``task`` and ``layout``)
    under each of ``methods``, on ``n`` test examples (means and resamples from ``n`` validation
    examples; or ``inputs`` and ``reference``, Examples).

    Returns the graph (``nodes``, ``edges`` with their TransformerLens names), ``by_method``
    (per ablation: the kept ``edges`` and ``nodes``, the measure kept (``faithful``) and left when
    the circuit is ablated (``ablated``), ``complete``, ``backups``, every edge's ``attribution``
    and final ``score``, and the ``cost`` in passes), the union ``circuit`` over the methods and
    its ``interpbench`` edge list.
    """
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ConfigError(f"unknown ablation method {bad[0]!r}; valid: {', '.join(METHODS)}")
    if not 0 < threshold <= 1:
        raise ConfigError(f"circuit threshold={threshold!r} is out of range; allowed: 0 < threshold <= 1")
    s = subject(source, task, layout)
    graph = build_graph(s.model, s.layout)
    scored, refs = paired(s, n, inputs, reference)
    runner = Runner(s.model, graph, scored)
    labels = scored.batch.labels
    base = score(runner.run({p: 0.0 for p in runner.parts}), labels)
    measure = "exact_match" if base["exact_match"] >= 0.1 else "token_acc"
    out = {"n": len(scored), "n_reference": len(refs), "measure": measure, "baseline": base, "threshold": threshold,
           "separable": graph.separable, "steps": steps, "nodes": _nodes(graph), "edges": _edges(graph),
           "by_method": {}}
    acts = runner.record(refs) if set(methods) - {"zero"} else None
    for method in methods:
        t0 = time.perf_counter()
        f0, b0 = runner.forward, runner.backward
        values = runner.ablated(method, refs, seed, acts=acts)
        found = Search(runner, values, measure, base[measure] * threshold).find(steps)
        found["cost"] = {"forward": runner.forward - f0, "backward": runner.backward - b0,
                         "seconds": time.perf_counter() - t0}
        out["by_method"][method] = found
    out["circuit"] = union(graph, out["by_method"])
    out["cost"] = {"forward": runner.forward, "backward": runner.backward, "examples": len(scored)}
    return out


class Search:
    """The search of one ablation: ``find`` returns its part of ``circuit``'s result."""

    def __init__(self, runner: Runner, values: dict, measure: str, target: float):
        self.runner, self.values, self.measure, self.target = runner, values, measure, target
        g = runner.graph
        self.g = g
        self.units = len(g.edges) if g.separable else len(g.writers)
        self.labels = runner.inp.batch.labels

    def measured(self, removed) -> float:
        """The measure with the units ``removed`` ablated."""
        removed = list(removed)
        if self.g.separable:
            logits = self.runner.without(self.values, edges=removed)
        else:
            logits = self.runner.without(self.values, writers=removed)
        return score(logits, self.labels)[self.measure]

    def without_circuit(self, kept: set[int]) -> float:
        return self.measured(set(range(self.units)) - kept)

    def ranking(self, steps: int) -> torch.Tensor:
        if self.g.separable:
            return self.runner.attribution(self.values, steps)
        intact = self.measured([])
        return torch.tensor([intact - self.measured([w]) for w in range(self.units)])

    def find(self, steps: int) -> dict:
        attr = self.ranking(steps)
        order = sorted(range(self.units), key=lambda u: -abs(float(attr[u])))
        kept = set(order[: self._smallest(order)])
        kept = self._live(kept)
        kept = self._prune(kept, sorted(kept, key=lambda u: abs(float(attr[u]))))
        faithful = self.without_circuit(kept)
        floor = self.without_circuit(set())
        intact = self.measured([])
        left = self.measured(kept)
        backups, left = self._backups(kept, left, floor, intact)
        nodes = self._nodes(kept) + [self.g.writers[w].name for w in backups]
        top = max(float(attr.abs().max()), 1e-12)
        return {"measure": self.measure, "target": self.target, "intact": intact, "floor": floor,
                "units": "edges" if self.g.separable else "nodes", "kept": sorted(kept),
                "nodes": list(dict.fromkeys(nodes)), "backups": [self.g.writers[w].name for w in backups],
                "faithful": faithful, "is_faithful": faithful >= self.target, "ablated": left,
                "complete": left <= floor + DESTROYED * (intact - floor),
                "attribution": [float(a) for a in attr],
                "score": [(1.0 if u in kept else 0.0) + abs(float(attr[u])) / (1.0001 * top)
                          for u in range(self.units)]}

    def _smallest(self, order: list[int]) -> int:
        """The fewest top-ranked units that are faithful (binary search; all of them are)."""
        keep = lambda k: self.without_circuit(set(order[:k])) >= self.target  # noqa: E731
        if keep(0):
            return 0
        lo, hi = 0, len(order)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if keep(mid) else (mid, hi)
        return hi

    def _live(self, kept: set[int]) -> set[int]:
        """Drop edges into nodes whose output no kept edge reads (and so on, backwards)."""
        if not self.g.separable:
            return kept
        g = self.g
        kept = set(kept)
        while True:
            read = {g.writers[w].name for w, _ in (g.edges[e] for e in kept)}
            dead = {e for e in kept if g.readers[g.edges[e][1]].node not in read | {"output"}}
            if not dead:
                return kept
            kept -= dead

    def _prune(self, kept: set[int], weakest: list[int]) -> set[int]:
        """Path patching: ablate the weakest kept units too, a block at a time, where the circuit
        stays faithful without them; a block that cannot go is halved."""
        blocks = [weakest]
        while blocks:
            block = blocks.pop(0)
            trial = kept - set(block)
            if block and self.without_circuit(trial) >= self.target:
                kept = self._live(trial)
            elif len(block) > 1:
                blocks[:0] = [block[: len(block) // 2], block[len(block) // 2:]]
        return kept

    def _backups(self, kept: set[int], left: float, floor: float, intact: float) -> tuple[list[int], float]:
        """Nodes that do the circuit's job when it is ablated, added until the answer is destroyed."""
        g, backups = self.g, []
        in_circuit = set(self._nodes(kept))
        candidates = [w for w, wr in enumerate(g.writers) if wr.kind in ("head", "mlp") and wr.name not in in_circuit]
        if left <= floor + DESTROYED * (intact - floor) or not candidates:
            return backups, left
        trials = {w: self._ablated_with(kept, [w]) for w in candidates}  # each candidate with the circuit
        for w in sorted(candidates, key=trials.get):
            now = self._ablated_with(kept, backups + [w]) if backups else trials[w]
            if left - now < USED:
                break
            backups.append(w)
            left = now
            if left <= floor + DESTROYED * (intact - floor):
                break
        return backups, left

    def _ablated_with(self, kept: set[int], writers: list[int]) -> float:
        if self.g.separable:
            logits = self.runner.without(self.values, edges=kept, writers=writers)
        else:
            logits = self.runner.without(self.values, writers=list(kept) + writers)
        return score(logits, self.labels)[self.measure]

    def _nodes(self, kept: set[int]) -> list[str]:
        g = self.g
        if not g.separable:
            return [g.writers[w].name for w in sorted(kept)]
        names = []
        for e in sorted(kept):
            w, r = g.edges[e]
            names += [g.writers[w].name, g.readers[r].node]
        order = {w.name: i for i, w in enumerate(g.writers)}
        return sorted({x for x in names if x in order}, key=order.get)


def _nodes(g: Graph) -> list[dict]:
    return [{"name": w.name, "kind": w.kind, "stream": w.stream, "order": w.order, "module": w.module, "head": w.head,
             "tl": w.tl} for w in g.writers]


def _edges(g: Graph) -> list[dict]:
    return [{"from": g.writers[w].name, "to": g.readers[r].node, "channel": g.readers[r].kind,
             "reader": g.readers[r].name, "tl": [g.writers[w].tl, g.readers[r].tl]} for w, r in g.edges]


def union(g: Graph, by_method: dict) -> dict:
    """The circuit over every method: its edges (each with the methods that kept it) or, without
    separable edges, its nodes; and the InterpBench edge list."""
    if not g.separable:
        nodes = {}
        for m, found in by_method.items():
            for name in found["nodes"]:
                nodes.setdefault(name, []).append(m)
        return {"nodes": [{"name": k, "methods": v} for k, v in nodes.items()], "edges": [], "interpbench": []}
    edges: dict = {}
    for m, found in by_method.items():
        for e in found["kept"]:
            edges.setdefault(e, []).append(m)
    rows = [{"edge": e, "from": g.writers[g.edges[e][0]].name, "to": g.readers[g.edges[e][1]].node,
             "channel": g.readers[g.edges[e][1]].kind, "methods": ms} for e, ms in sorted(edges.items())]
    nodes: dict = {}
    for r in rows:
        for name in (r["from"], r["to"]):
            nodes.setdefault(name, set()).update(r["methods"])
    for m, found in by_method.items():
        for name in found["backups"]:
            nodes.setdefault(name, set()).add(m)
    order = {w.name: i for i, w in enumerate(g.writers)} | {"output": len(g.writers)}
    node_rows = [{"name": k, "methods": sorted(v), "backup_in": [m for m, f in by_method.items() if k in f["backups"]]}
                 for k, v in sorted(nodes.items(), key=lambda kv: order.get(kv[0], 0))]
    ib = [[g.writers[g.edges[e][0]].tl, g.readers[g.edges[e][1]].tl] for e in sorted(edges)]
    return {"nodes": node_rows, "edges": rows, "interpbench": ib}
