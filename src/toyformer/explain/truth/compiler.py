"""Compile a program of ``rasp`` to the weights of an ordinary toyformer tagger (pre-norm blocks,
learned positions, ReLU feed-forward blocks): its graph of heads and MLPs is then known.

Every variable gets its own dimensions of the residual stream (one per value of a categorical,
one per number of a numeric one); the token embedding writes the tokens, the position embedding
the positions. An ``Aggregate`` is one head: its queries pick the query's value, its keys score
``BETA`` where the predicate holds (0 elsewhere: softmax puts ``exp(-BETA)`` on the rest), its
values carry the value (or ``f`` of it) and its output writes the result. A ``Lookup`` is part of
a feed-forward block: a sum of steps ``relu(K(u - t) + 1) - relu(K(u - t))`` (0 below ``t``, 1
from ``t`` on) of ``u = z + B * (gates that match)``, one per change of the output between the
values of ``z`` the program meets, so each gate combination gets its own piecewise-constant map.
Ops are placed in layers by their longest path (heads read earlier layers; an MLP also its own
layer's heads); unused heads are all zero.

LayerNorm: the position embedding also writes ``+BALLAST`` and ``-BALLAST`` in two dimensions
nothing else touches, so every residual has the same norm up to a few parts in a million and each
norm is a fixed scale ``s``, which the reading weights undo; a spare dimension that is always 0
takes weights that make every reading row sum to zero, so the mean the norm subtracts changes
nothing.

Why not Tracr (Lindner et al. 2023): its models have no LayerNorm, read a BOS token and live in
JAX and Haiku; toyformer's blocks always normalise, so Tracr's weights would need a model no run
trains. These programs compile into the same model class every run uses.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from toyformer.config import ModelConfig
from toyformer.explain.truth.rasp import INDICES, TOKENS, Aggregate, Program, lookup_table, run
from toyformer.models import build_model

BALLAST = 1000.0
BETA = 40.0  # attention score of a selected key
LOGIT = 10.0  # the answer's logit


def layers(program: Program) -> dict[str, tuple[int, str]]:
    """``{variable: (layer, kind)}``: where each op's output is computed (kind head or mlp)."""
    at = {TOKENS: (-1, "input"), INDICES: (-1, "input")}
    for op in program.ops:
        reads = [v for r in op.reads().values() for v in (r if isinstance(r, tuple) else (r,)) if v is not None]
        if op.kind == "head":
            layer = max([0] + [at[v.name][0] + 1 for v in reads])
        else:
            layer = max([0] + [at[v.name][0] + (0 if at[v.name][1] == "head" else 1) for v in reads])
        at[op.out.name] = (layer, op.kind)
    return at


class Layout:
    """The residual dimensions of every variable."""

    def __init__(self, program: Program):
        self.dims: dict[str, list[int]] = {}
        self.size = 3  # ballast +, ballast -, spare (always 0)
        for var in [program.indices, program.tokens] + [op.out for op in program.ops]:
            self.dims[var.name] = list(range(self.size, self.size + var.width))
            self.size += var.width

    def __call__(self, var, index: int = 0) -> int:
        return self.dims[var.name][index]


def compile_program(program: Program, task, samples: list[list]) -> nn.Module:
    """A tagger whose weights compute ``program``; ``samples`` (rows of token values) give the
    values of ``z`` each lookup must tell apart."""
    env = run(program, samples)
    where = layers(program)
    lay = Layout(program)
    length = len(program.indices.values)
    heads = [op for op in program.ops if op.kind == "head"]
    n_layers = 1 + max(layer for layer, _ in where.values())
    per_layer = [sum(1 for op in heads if where[op.out.name][0] == i) for i in range(n_layers)]
    n_heads = max(2, *per_layer)
    d_head = max([op.value.width if op.how == "copy" or op.f is None else 1 for op in heads]
                 + [op.query.width for op in heads if op.query is not None] + [1])
    d_model = max(lay.size, n_heads * d_head)
    d_model += (-d_model) % n_heads
    steps = {i: [] for i in range(n_layers)}
    biases = {i: torch.zeros(d_model) for i in range(n_layers)}
    for op in program.ops:
        if op.kind == "mlp":
            steps[where[op.out.name][0]] += _steps(op, env, lay, biases[where[op.out.name][0]])
    d_ff = max(2, 2 * max(len(v) for v in steps.values()))
    cfg = ModelConfig(d_model=d_model, n_heads=n_heads, n_layers=n_layers, d_ff=d_ff, norm="pre",
                      positional="learned", activation="relu", dropout=0.0, max_len=2 * length + 8)
    model = build_model(cfg, "tagger", task, (length, length))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.zero_()
                if getattr(m, "bias", None) is not None:
                    m.bias.zero_()
        scale = BALLAST * math.sqrt(2.0 / d_model)  # what each LayerNorm divides by
        _embed(model.encoder.embed, program, task, lay)
        slot = {i: 0 for i in range(n_layers)}
        for op in heads:
            layer = where[op.out.name][0]
            _head(model.encoder.stack.blocks[layer].attn, slot[layer], op, lay, scale)
            slot[layer] += 1
        for i, block in enumerate(model.encoder.stack.blocks):
            _mlp(block.ff, steps[i], biases[i], scale)
        head = model.head[0]
        for j, y in enumerate(program.output.values):
            head.weight[task.vocab.id(y), lay(program.output, j)] = LOGIT * scale
        for linear in [head] + [m for b in model.encoder.stack.blocks for m in (b.attn.q, b.attn.kv, b.ff.up)]:
            linear.weight[:, 2] -= linear.weight.sum(1)  # rows sum to zero: the norm's mean changes nothing
    return model.eval()


def _embed(embed, program: Program, task, lay: Layout) -> None:
    for j, t in enumerate(program.tokens.values):
        embed.tok.weight[task.vocab.id(t), lay(program.tokens, j)] = 1.0
    embed.pos.weight[:, 0], embed.pos.weight[:, 1] = BALLAST, -BALLAST
    for p in range(len(program.indices.values)):
        embed.pos.weight[p, lay(program.indices, p)] = 1.0


def _head(attn, h: int, op: Aggregate, lay: Layout, scale: float) -> None:
    dh, d = attn.d_head, attn.q.weight.shape[1]
    rows = slice(h * dh, (h + 1) * dh)
    wq, wk, wv = torch.zeros(dh, d), torch.zeros(dh, d), torch.zeros(dh, d)
    if op.query is not None:
        for qi, qv in enumerate(op.query.values):
            wq[qi, lay(op.query, qi)] = scale * math.sqrt(dh)
            for ki, kv in enumerate(op.key.values):
                if op.predicate(kv, qv):
                    wk[qi, lay(op.key, ki)] = scale * BETA
    if op.value.numeric:
        for j in range(op.value.width):
            wv[j, lay(op.value, j)] = scale
    elif op.how == "mean" and op.f is not None:
        for j, v in enumerate(op.value.values):
            wv[0, lay(op.value, j)] = scale * float(op.f(v))
    else:
        for j in range(op.value.width):
            wv[j, lay(op.value, j)] = scale
    attn.q.weight[rows] = wq
    attn.kv.weight[rows] = wk
    attn.kv.weight[d + h * dh: d + (h + 1) * dh] = wv
    for j in range(op.out.width):
        attn.out.weight[lay(op.out, j), h * dh + j] = 1.0


def _vector(op, y, lay: Layout) -> dict[int, float]:
    if op.out.numeric:
        return {lay(op.out, 0): float(y)}
    return {lay(op.out, op.out.values.index(y)): 1.0}


def _steps(op, env: dict, lay: Layout, bias: torch.Tensor) -> list:
    """The steps ``(weights {dim: w}, threshold, sharpness, out {dim: v})`` of one lookup."""
    rows, outs, _ = lookup_table(op, env)
    n_gates = len(op.gates)
    combos = (rows[:, :-1].unique(dim=0) if n_gates else rows[:1, :0]).tolist()
    bound = 0.0  # the largest |z| any combination's weights give at any position
    for combo in combos:
        values = tuple(g.values[int(c)] for g, c in zip(op.gates, combo))
        weights = op.numeric(values) if op.numeric is not None else {}
        bound = max(bound, sum(abs(w) * float(env[var.name][..., i].abs().max()) for (var, i), w in weights.items()))
    gate_weight = 2 * bound + 1.0  # B: a wrong gate keeps u below every threshold
    out = []
    for combo in combos:
        mine = (rows[:, :-1] == torch.tensor(combo, dtype=rows.dtype)).all(-1) if n_gates else \
            torch.ones(len(rows), dtype=torch.bool)
        zs = rows[mine, -1].tolist()
        ys = [outs[i] for i in mine.nonzero().flatten().tolist()]
        gates = {lay(g, int(c)): gate_weight for g, c in zip(op.gates, combo)}
        weights = dict(gates)
        values = tuple(g.values[int(c)] for g, c in zip(op.gates, combo))
        for (var, index), w in (op.numeric(values) if op.numeric is not None else {}).items():
            weights[lay(var, index)] = weights.get(lay(var, index), 0.0) + w
        first = _vector(op, ys[0], lay)
        if n_gates:
            out.append((gates, gate_weight * n_gates - 0.5, 2.0, first))
        else:
            for dim, v in first.items():
                bias[dim] += v
        for (z0, y0), (z1, y1) in zip(zip(zs, ys), zip(zs[1:], ys[1:])):
            if y1 == y0:
                continue
            change = {k: _vector(op, y1, lay).get(k, 0.0) - _vector(op, y0, lay).get(k, 0.0)
                      for k in set(_vector(op, y1, lay)) | set(_vector(op, y0, lay))}
            out.append((weights, (z0 + z1) / 2 + gate_weight * n_gates, 4.0 / (z1 - z0), change))
    return out


def _mlp(ff, steps: list, bias: torch.Tensor, scale: float) -> None:
    for j, (weights, t, sharp, change) in enumerate(steps):
        for unit, lift in ((2 * j, 1.0), (2 * j + 1, 0.0)):
            for dim, w in weights.items():
                ff.up.weight[unit, dim] = sharp * scale * w
            ff.up.bias[unit] = -sharp * t + lift
        for dim, v in change.items():
            ff.down.weight[dim, 2 * j] = v
            ff.down.weight[dim, 2 * j + 1] = -v
    ff.down.bias.copy_(bias)
