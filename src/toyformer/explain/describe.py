"""What a head does, from measurements, when no named pattern fits it: its attention by relative
offset ("attends 3 positions back, mass 0.97"), by absolute position ("attends to position 0")
and by token ("attends to the token '+'"), and which of these its effect depends on.

``attention_stats`` measures, for every head, the mean attention mass on the key at each offset
(key position minus query position), at each position and holding each token, over the queries
that can see such a key and have at least two keys to choose from (and only where at least a
quarter of those queries can see one), and keeps the largest of each. The description is the
largest of the three when its mass is at least ``DESCRIBES``.

``depends_on`` tests each description causally: the head's attention is replaced by exactly
that rule (all its weight on the key at the offset, at the position, or spread over the keys
holding the token; a query with no such key keeps its own weights) and the model is scored
again. The rule under which the answers come back, against the head ablated, is what its effect
depends on.

>>> stats = head_roles("runs/copy")[0]["attention"]        # doctest: +SKIP
>>> stats["offset"], stats["describes"]                    # doctest: +SKIP
({'offset': -3, 'mass': 0.97}, 'offset')
"""

from __future__ import annotations

import torch

from toyformer.explain.data import Inputs, forward, score

DESCRIBES = 0.5  # the mass at which a statistic describes the head
COVERAGE = 0.25  # the share of choosing queries that must see such a key
KINDS = ("offset", "position", "token")


def _grouped(w, visible, chooses, index, size):
    """Mean mass per group (``index [B, Tq, Tk]`` in ``0..size-1``) over the queries that see one:
    ``mass [H, size]`` and the share of choosing queries that see one ``[size]``."""
    b, h, tq, tk = w.shape
    idx = index.clamp(0, size - 1)[:, None].expand(b, h, tq, tk)
    vis = visible.to(w.dtype)
    mass = torch.zeros(b, h, tq, size, dtype=w.dtype, device=w.device).scatter_add_(3, idx, w * vis[:, None])
    seen = torch.zeros(b, tq, size, dtype=w.dtype, device=w.device).scatter_add_(2, idx[:, 0], vis) > 0  # [B, Tq, S]
    keep = (seen & chooses[..., None]).to(w.dtype)  # [B, Tq, S]
    count = keep.sum((0, 1))  # [S]
    total = (mass * keep[:, None]).sum((0, 2))  # [H, S]
    return total / count.clamp(min=1), count / chooses.sum().clamp(min=1)


def _best(mass, share, labels):
    """Per head the label with the largest mass among those seen by enough queries."""
    ok = share >= COVERAGE
    out = []
    for row in mass:
        masked = torch.where(ok, row, torch.full_like(row, -1.0))
        i = int(masked.argmax())
        out.append(None if masked[i] < 0 else (labels[i], float(row[i])))
    return out


def attention_stats(weights: torch.Tensor, ctx, vocab) -> list[dict]:
    """``weights [B, H, Tq, Tk]`` of one module with its ``PatternContext``: per head the best
    ``offset``, ``position`` and ``token`` with their mass, and which one ``describes`` it."""
    w = weights.float()
    visible = ctx.visible() | (w > 0).any(1)  # [B, Tq, Tk]
    n_vis = visible.sum(-1)
    chooses = ctx.q.valid & (n_vis >= 2) & (ctx.q.col >= 0)  # [B, Tq]
    real = visible & (ctx.k.col >= 0)[:, None, :]
    tk = w.shape[-1]
    offset = ctx.k.col[:, None, :] - ctx.q.col[:, :, None]  # [B, Tq, Tk]
    found = {
        "offset": _best(*_grouped(w, real, chooses, offset + tk - 1, 2 * tk - 1), list(range(1 - tk, tk))),
        "position": _best(*_grouped(w, real, chooses, ctx.k.col[:, None, :].expand_as(offset), tk), list(range(tk))),
        "token": _best(*_grouped(w, real, chooses, ctx.k.tokens[:, None, :].expand_as(offset), len(vocab.tokens)),
                       list(range(len(vocab.tokens)))),
    }
    rows = []
    for h in range(w.shape[1]):
        row = {kind: None if found[kind][h] is None else {kind: found[kind][h][0], "mass": found[kind][h][1]}
               for kind in KINDS}
        if row["token"] is not None:
            row["token"]["token_id"] = row["token"]["token"]
            row["token"]["token"] = vocab.tokens[row["token"]["token_id"]]
        best = max((k for k in KINDS if row[k] is not None), key=lambda k: row[k]["mass"], default=None)
        row["describes"] = best if best is not None and row[best]["mass"] >= DESCRIBES else None
        rows.append(row)
    return rows


def phrase(kind: str, stat: dict) -> str:
    """``attends 3 positions back``, ``attends to position 0``, ``attends to the token '+'``."""
    if kind == "offset":
        d = stat["offset"]
        if d == 0:
            return "attends to its own position"
        unit = "position" if abs(d) == 1 else "positions"
        return f"attends {abs(d)} {unit} {'back' if d < 0 else 'forward'}"
    if kind == "position":
        return f"attends to position {stat['position']}"
    return f"attends to the token {stat['token']!r}"


def ideal(ctx, kind: str, stat: dict) -> torch.Tensor:
    """``[B, Tq, Tk]``: the keys the rule ``kind`` names, among those each query can see."""
    visible = ctx.visible() & (ctx.k.col >= 0)[:, None, :]
    if kind == "offset":
        keys = (ctx.k.col[:, None, :] - ctx.q.col[:, :, None]) == stat["offset"]
    elif kind == "position":
        keys = (ctx.k.col == stat["position"])[:, None, :].expand_as(visible)
    else:
        keys = (ctx.k.tokens == stat["token_id"])[:, None, :].expand_as(visible)
    return keys & visible


def depends_on(model, inp: Inputs, module: str, head: int, ctx, stats: dict) -> dict:
    """The measures (exact match, token accuracy) with the head's attention replaced by each of
    its described rules: ``{kind: scores}``."""
    out = {}
    for kind in KINDS:
        stat = stats.get(kind)
        if stat is None:
            continue
        keys = ideal(ctx, kind, stat).to(torch.float32)  # [B, Tq, Tk]
        has = keys.sum(-1, keepdim=True) > 0

        def swap(w, name, keys=keys, has=has):
            w = w.clone()
            rule = keys / keys.sum(-1, keepdim=True).clamp(min=1)
            w[:, head] = torch.where(has, rule.to(w.dtype), w[:, head])
            return w

        out[kind] = score(forward(model, inp, {f"{module}.pattern": swap}), inp.batch.labels)
    return out
