"""Path patching on a model's graph (``graph``): a forward pass in which chosen edges carry another
value of their writer (its ablation, or its value on another input), and edge attribution
patching with integrated gradients (EAP-IG) that ranks every edge at the cost of a few forward
and backward passes.

An edge ``u -> r`` is ablated by giving reader ``r`` the input ``x_r - m (a_u - a'_u)``: ``a_u``
is what ``u`` writes in this very pass, ``a'_u`` its ablated value, ``m`` the edge's weight
(1: ablated, 0: kept, in between: the path EAP-IG integrates along). Writers that come earlier
are computed first, so one pass serves every edge. Without separable edges (post-norm) a node is
ablated where it writes (``node_masks``).

The ablated values (``ablated``), one per writer part, as ``ablation`` defines them: ``zero``,
``mean`` (per position over the reference inputs) and ``resample`` (a reference input of the same
length, row by row; or any given source rows: interchange interventions).

>>> runner = Runner(model, graph, scored)                         # doctest: +SKIP
>>> values = runner.ablated("resample", reference, seed=0)        # doctest: +SKIP
>>> runner.run(values, edge_mask)                                 # logits  # doctest: +SKIP
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from toyformer.data import IGNORE
from toyformer.explain.ablation import position_mean, resample_rows
from toyformer.explain.data import Inputs
from toyformer.explain.graph import Graph
from toyformer.models.hookpoints import hooks


def logprob(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean log-probability of the counted ``labels`` (a differentiable metric)."""
    if labels.dim() == 1:
        logits, labels = logits[:, None], labels[:, None]
    keep = labels != IGNORE
    logp = F.log_softmax(logits.float(), -1)
    return logp[keep].gather(1, labels[keep][:, None]).mean()


class Runner:
    """Forward passes of ``model`` over ``inp`` with edges or nodes of ``graph`` ablated, counting
    the passes (``forward``, ``backward``)."""

    def __init__(self, model, graph: Graph, inp: Inputs):
        self.model, self.graph, self.inp = model, graph, inp
        self.forward = self.backward = 0
        self.parts = sorted({p for w in graph.writers for p in w.parts}, key=str)
        self.part_hooks = sorted({h for h, _ in self.parts})

    # -- ablated values ----------------------------------------------------------------------
    def record(self, inp: Inputs) -> dict:
        """Every writer part's activation on ``inp`` (one forward pass, no gradients)."""
        got: dict = {}

        def keep(x, name):
            got[name] = x.detach()

        self._pass(inp, {h: keep for h in self.part_hooks}, grad=False)
        return {(h, head): got[h] if head is None else got[h][:, :, head] for h, head in self.parts}

    def ablated(self, method: str, reference: Inputs | None = None, seed: int = 0, rows=None,
                acts: dict | None = None) -> dict:
        """The ablated value of every writer part: ``[1 or B, T, d]`` (zero: ``0.0``); ``rows``:
        the reference row of each scored row (default: a random one of the same length); ``acts``:
        the reference's ``record``, if already made."""
        if method == "zero":
            return {p: 0.0 for p in self.parts}
        acts = self.record(reference) if acts is None else acts
        if method == "mean":
            return {p: position_mean(a, reference.frames[_frame_of(p[0])].valid) for p, a in acts.items()}
        idx = resample_rows(self.inp, reference, seed) if rows is None else torch.as_tensor(rows)
        return {p: a[idx.to(a.device)] for p, a in acts.items()}

    # -- patched passes ----------------------------------------------------------------------
    def run(self, values: dict, edge_mask: torch.Tensor | None = None, node_mask: torch.Tensor | None = None,
            grad: bool = False, train: bool = False):
        """Logits with edge ``e`` ablated by weight ``edge_mask[e]`` and writer ``w`` by
        ``node_mask[w]`` (None: none); with ``grad`` also every reader's patched input (their
        ``.grad`` after a backward pass), ``{hook: tensor}``; ``train``: with gradients to the
        weights (interchange-intervention training)."""
        g = self.graph
        cur: dict = {}
        diffs: dict = {}
        inputs: dict = {}

        def diff(w: int) -> torch.Tensor:  # what ablating writer w changes: a_w - a'_w
            if w not in diffs:
                diffs[w] = sum(cur[p] - values[p] for p in g.writers[w].parts)
            return diffs[w]

        table: dict = {}
        node_w = {} if node_mask is None else {w: float(m) for w, m in enumerate(node_mask.tolist()) if m}
        edge_mask = None if edge_mask is None else [float(m) for m in edge_mask.tolist()]
        for hook in self.part_hooks:
            table[hook] = self._writer_hook(node_w, values, cur)
        if edge_mask is not None:
            by_hook: dict = {}
            for r, rd in enumerate(g.readers):
                by_hook.setdefault(rd.hook, []).append(r)
            for hook, rs in by_hook.items():
                table.setdefault(hook, [])
                table[hook] = ([table[hook]] if callable(table[hook]) else table[hook]) + [
                    self._reader_hook(rs, edge_mask, diff, inputs, grad)]
        logits = self._pass(self.inp, table, grad or train)
        return (logits, inputs) if grad else logits

    def _writer_hook(self, node_w: dict, values: dict, cur: dict):
        g = self.graph
        owners = {p: w for w, wr in enumerate(g.writers) for p in wr.parts}

        def hook(x, name):
            heads = [p for p in self.parts if p[0] == name]
            out = x
            for p in heads:
                m = node_w.get(owners[p], 0.0)
                if p[1] is None:
                    cur[p] = x
                    if m:
                        out = x - m * (x - values[p])
                else:
                    cur[p] = x[:, :, p[1]]
                    if m:
                        out = out.clone() if out is x else out
                        out[:, :, p[1]] = x[:, :, p[1]] - m * (x[:, :, p[1]] - values[p])
            return None if out is x else out
        return hook

    def _reader_hook(self, readers: list[int], mask: list[float], diff, inputs: dict, grad: bool):
        """Subtract, at one hook, each ablated edge's change from its reader's input: one
        ``[readers, writers]`` weight matrix over the stacked changes of the writers."""
        g = self.graph
        writers = sorted({g.edges[e][0] for r in readers for e in g.by_reader.get(r, [])})
        col = {w: i for i, w in enumerate(writers)}
        weights = torch.zeros(len(readers), len(writers))
        for i, r in enumerate(readers):
            for e in g.by_reader.get(r, []):
                weights[i, col[g.edges[e][0]]] = mask[e]
        used = weights.abs().sum(0) > 0
        heads = [g.readers[r].head for r in readers]

        def hook(x, name):
            if not bool(used.any()):
                if not grad:
                    return None
                out = x.clone()
            else:
                w = weights[:, used].to(x.dtype)
                d = torch.stack([diff(u) for u, keep in zip(writers, used.tolist()) if keep])  # [U, B, T, d]
                if heads[0] is None:  # one reader: [B, T, d]
                    out = x - torch.einsum("u,ubtd->btd", w[0], d)
                else:  # a reader per head: [B, T, H, d]
                    delta = torch.einsum("hu,ubtd->bthd", w, d)
                    order = torch.tensor(heads)
                    out = x.clone()
                    out[:, :, order] = x[:, :, order] - delta
            if grad:
                out.retain_grad()
                inputs[name] = out
            return out
        return hook

    def without(self, values: dict, edges=(), writers=()):
        """Logits with ``edges`` and every edge out of ``writers`` ablated (where the graph has no
        separable edges, the writers themselves)."""
        g = self.graph
        if not g.separable or not list(edges):  # nodes alone: ablated where they write
            mask = torch.zeros(len(g.writers))
            mask[list(writers)] = 1.0
            return self.run(values, node_mask=mask)
        mask = torch.zeros(len(g.edges))
        mask[list(edges)] = 1.0
        out = set(writers)
        mask[[e for e, (w, _) in enumerate(g.edges) if w in out]] = 1.0
        return self.run(values, edge_mask=mask)

    def _pass(self, inp: Inputs, table: dict, grad: bool):
        model = self.model
        was = model.training
        model.eval()
        try:
            with torch.set_grad_enabled(grad), hooks(model, table):
                out = model(inp.batch)
        finally:
            model.train(was)
        self.forward += 1
        return out

    # -- attribution -------------------------------------------------------------------------
    def attribution(self, values: dict, steps: int = 5) -> torch.Tensor:
        """EAP-IG: each edge's ``(a'_u - a_u) . dM/dx_r`` summed over positions and averaged over
        the examples, with the gradient of the metric ``M`` (mean log-probability of the answer)
        averaged at ``steps`` points on the path from the intact model (every edge weight 0) to
        the one with every edge ablated (weight 1). ``[E]``, one per edge of the graph."""
        g = self.graph
        e_count = len(g.edges)
        labels = self.inp.batch.labels
        clean = self.record(self.inp)
        delta = {w: sum(values[p] - clean[p] for p in wr.parts) for w, wr in enumerate(g.writers)}  # a' - a
        grads: dict = {}
        for k in range(steps):
            alpha = (k + 0.5) / steps
            logits, inputs = self.run(values, torch.full((e_count,), alpha), grad=True)
            logprob(logits, labels).backward()
            self.backward += 1
            for hook, t in inputs.items():
                grads[hook] = grads.get(hook, 0) + t.grad.detach() / steps
        scores = torch.zeros(e_count)
        n = labels.shape[0]
        for e, (w, r) in enumerate(g.edges):
            rd = g.readers[r]
            gr = grads[rd.hook] if rd.head is None else grads[rd.hook][:, :, rd.head]
            d = delta[w]
            d = torch.zeros_like(gr) if isinstance(d, float) else d
            scores[e] = float((d.expand_as(gr) * gr).sum()) / n
        return scores


def _frame_of(hook: str) -> str:
    return "decoder" if hook.startswith("decoder") else "encoder"


__all__ = ["Runner", "logprob"]
