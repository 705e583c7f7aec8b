"""Ablation: remove one component at a time and measure what the model loses.

Components: every attention head (its slice of ``attn.z``), every attention module (``attn.out``,
``cross_attn.out``) and every feed-forward block (``ff.out``). Three ways to remove one:

- ``zero``: its output set to 0;
- ``mean``: its output replaced by its mean over held-out inputs (the validation set), position
  by position, so the component says the same thing to every input;
- ``resample``: its output replaced by its output on another held-out input of the same length
  (Chan et al.'s resampling ablation), so it says something typical but unrelated.

Each ablation is one forward pass over the scored examples (the test set), scored as the change
in exact match, per-token accuracy and loss against the intact model.

>>> table = ablate("runs/rev")                          # doctest: +SKIP
>>> table["rows"][0]["component"], table["rows"][0]["exact_match"]   # doctest: +SKIP
('encoder.blocks.0.attn head 1', 0.004)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from toyformer.errors import ConfigError
from toyformer.explain.data import Inputs, cached, forward, held_out, prepare, score
from toyformer.inspect.capture import subject
from toyformer.models.attention import Attention
from toyformer.models.blocks import FeedForward
from toyformer.tasks.base import Examples

METHODS = ("zero", "mean", "resample")


@dataclass(frozen=True)
class Component:
    """A part of the model that can be removed: ``kind`` head, attn or ff; ``hook`` the hook
    name whose activation it is; ``head`` the head index (heads only)."""

    name: str
    kind: str
    hook: str
    head: int | None = None


def components(model: nn.Module) -> list[Component]:
    """Every head, attention module and feed-forward block of ``model``, in forward order."""
    out = []
    for m in model.modules():
        if isinstance(m, Attention):
            out += [Component(f"{m.name} head {h}", "head", f"{m.name}.z", h) for h in range(m.n_heads)]
            out.append(Component(m.name, "attn", f"{m.name}.out"))
        elif isinstance(m, FeedForward):
            out.append(Component(m.hook_name, "ff", f"{m.hook_name}.out"))
    return out


def _replace(value: torch.Tensor, head: int | None):
    """A hook that writes ``value`` (broadcast over rows) into the activation, or into one head's slice."""
    def hook(x, name):
        v = value.to(x.dtype).expand_as(x)
        if head is None:
            return v
        x = x.clone()
        x[:, :, head] = v[:, :, head]
        return x
    return hook


def position_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``x [B, T, ...]`` per position, over the rows where ``valid [B, T]``
    (all rows at a position no row has): ``[1, T, ...]``."""
    w = valid.to(x.dtype)
    w = torch.where(w.sum(0, keepdim=True) > 0, w, torch.ones_like(w))
    w = w.view(*w.shape, *([1] * (x.dim() - 2)))
    return (x * w).sum(0, keepdim=True) / w.sum(0, keepdim=True)


def resample_rows(scored: Inputs, reference: Inputs, seed: int) -> torch.Tensor:
    """For each scored row a random reference row with the same input length (any row where no
    reference row has that length): ``[B]`` indices."""
    g = torch.Generator().manual_seed(seed)
    ref_len, out = reference.input_len.cpu(), []
    for length in scored.input_len.cpu().tolist():
        pool = (ref_len == length).nonzero().flatten()
        pool = pool if len(pool) else torch.arange(len(ref_len))
        out.append(int(pool[torch.randint(len(pool), (1,), generator=g)]))
    return torch.tensor(out)


def ablation_values(model, scored: Inputs, reference: Inputs, comps: list[Component], method: str, seed: int
                    ) -> dict[str, torch.Tensor]:
    """The replacement of each hooked activation: ``[1 or B, T, ...]`` per hook name."""
    names = sorted({c.hook for c in comps})
    if method == "zero":
        _, acts = cached(model, scored.rows(slice(0, 1)), names)
        return {n: torch.zeros_like(a) for n, a in acts.items()}
    _, acts = cached(model, reference, names)
    if method == "mean":
        out = {}
        for n, a in acts.items():
            stream = "decoder" if n.startswith("decoder") else "encoder"
            out[n] = position_mean(a, reference.frames[stream].valid)
        return out
    idx = resample_rows(scored, reference, seed).to(next(iter(acts.values())).device)
    return {n: a[idx] for n, a in acts.items()}


def ablate(source, methods=METHODS, n: int = 512, seed: int = 0, inputs=None, reference=None) -> dict:
    """Ablate every component of the model of ``source`` (a Run or a run directory) by each of
    ``methods``, on ``n`` test examples (means and resamples from ``n`` validation examples).

    Returns ``{"baseline": {exact_match, token_acc, loss}, "n": ..., "rows": [...]}``; each row
    has the component, its kind, the method, the three scores and their changes (``d_*``),
    sorted by effect (the largest loss of exact match or token accuracy first, then loss).
    """
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ConfigError(f"unknown ablation method {bad[0]!r}; valid: {', '.join(METHODS)}")
    s = subject(source)
    test = held_out(s, n) if inputs is None else inputs
    ref = held_out(s, n, "val") if reference is None else reference
    both = prepare(s, Examples.cat([test, ref]))
    scored, refs = both.rows(slice(0, len(test))), both.rows(slice(len(test), None))
    comps = components(s.model)
    base = score(forward(s.model, scored), scored.batch.labels)
    rows = []
    for method in methods:
        values = ablation_values(s.model, scored, refs, comps, method, seed)
        for c in comps:
            got = score(forward(s.model, scored, {c.hook: _replace(values[c.hook], c.head)}), scored.batch.labels)
            rows.append({"component": c.name, "kind": c.kind, "method": method, **got,
                         **{f"d_{k}": got[k] - base[k] for k in base}})
    rows.sort(key=effect, reverse=True)
    return {"baseline": base, "n": len(test), "n_reference": len(ref), "methods": list(methods), "rows": rows}


def effect(row: dict) -> tuple[float, float]:
    """How much an ablation row changes the answers: the larger change of exact match and token
    accuracy, then the change of loss."""
    return max(abs(row["d_exact_match"]), abs(row["d_token_acc"])), row["d_loss"]


def worst(rows: list[dict], component: str) -> dict | None:
    """The ablation of ``component`` (any method) with the largest effect."""
    mine = [r for r in rows if r["component"] == component]
    return max(mine, key=effect) if mine else None
