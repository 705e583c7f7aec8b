"""Head roles: every attention head scored against named attention patterns.

A pattern names, for each query, the keys it would read (a boolean ``[B, Tq, Tk]``); a head's
score is the mean attention mass it puts on those keys, over the queries that can see such a key
and at least two keys to choose from (a causal query sees no later key), in ``[0, 1]``. ``uniform`` is scored by the
entropy of the weights over the visible keys, divided by its maximum. A head's role is its best-scoring
pattern at or above the threshold (``uniform``: 0.9), else ``mixed``.

========== ===================================================================================
pattern    the keys
========== ===================================================================================
self       the query's own position
previous   the position before
first      the first real token (an attention sink)
mirror     the input token ``L-1-j`` for the query producing answer token ``j`` (reversal, R2)
same_token earlier or later positions holding the query's token
induction  the position after an earlier occurrence of the query's token
same_place digits of the same significance as the answer digit the query produces (numeric tasks)
alignment  cross-attention: source position ``j`` for the query producing answer token ``j``
uniform    (entropy near its maximum)
========== ===================================================================================

Add your own with ``register_pattern(name, fn)``: ``fn(ctx)`` gets a ``PatternContext`` (the
query and key ``Frame``s, whether the module is cross-attention) and returns the boolean mask,
or ``None`` where the pattern does not apply.

>>> register_pattern("last", lambda ctx: ctx.k.col[:, None, :] == ctx.k_len[:, None, None] - 1)  # doctest: +SKIP
>>> [r["role"] for r in head_roles("runs/rev")]                                                  # doctest: +SKIP
['mirror', 'mixed']
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import torch

from toyformer.errors import ConfigError
from toyformer.explain.data import Frame, Inputs, cached, held_out, prepare
from toyformer.explain.describe import attention_stats
from toyformer.inspect.capture import subject
from toyformer.models.attention import Attention

THRESHOLD = 0.5


@dataclass
class PatternContext:
    """What a pattern sees for one attention module: query frame ``q``, key frame ``k``,
    ``cross`` (cross-attention), ``k_len [B]`` real keys per row, ``input_len [B]``, ``causal``
    (queries see no later keys)."""

    q: Frame
    k: Frame
    cross: bool
    k_len: torch.Tensor
    input_len: torch.Tensor
    causal: bool = False

    def visible(self) -> torch.Tensor:
        """``[B, Tq, Tk]``: the real keys each query may see."""
        vis = self.k.valid[:, None, :].expand(-1, self.q.tokens.shape[1], -1)
        if self.causal:
            qi, ki = self.pairs()
            vis = vis & (ki <= qi)
        return vis

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Query and key columns broadcast to ``[1, Tq, 1]`` and ``[1, 1, Tk]``."""
        tq, tk = self.q.tokens.shape[1], self.k.tokens.shape[1]
        dev = self.q.tokens.device
        return torch.arange(tq, device=dev)[None, :, None], torch.arange(tk, device=dev)[None, None, :]


@dataclass(frozen=True)
class Pattern:
    name: str
    fn: Callable[[PatternContext], torch.Tensor | None] | None
    description: str = ""
    threshold: float | None = None  # None: the threshold of head_roles


def _self(ctx):
    if ctx.cross:
        return None
    qi, ki = ctx.pairs()
    return (qi == ki).expand(ctx.q.tokens.shape[0], -1, -1)


def _previous(ctx):
    if ctx.cross:
        return None
    return ctx.q.col[:, :, None] - 1 == ctx.k.col[:, None, :]


def _first(ctx):
    return (ctx.k.col == 0)[:, None, :].expand(-1, ctx.q.tokens.shape[1], -1)


def _mirror(ctx):
    j = ctx.q.answer_index[:, :, None]
    target = ctx.input_len[:, None, None] - 1 - j
    return (j >= 0) & (ctx.k.input_index[:, None, :] == target)


def _same_token(ctx):
    same = (ctx.q.tokens[:, :, None] == ctx.k.tokens[:, None, :]) & ctx.k.valid[:, None, :] & (ctx.k.col[:, None,
                                                                                                         :] >= 0)
    if not ctx.cross:
        qi, ki = ctx.pairs()
        same = same & (qi != ki)
    return same


def _induction(ctx):
    if ctx.cross:
        return None
    qi, ki = ctx.pairs()
    before = torch.cat([torch.full_like(ctx.k.tokens[:, :1], -1), ctx.k.tokens[:, :-1]], 1)  # token at k - 1
    real_before = torch.cat([torch.zeros_like(ctx.k.valid[:, :1]), ctx.k.col[:, :-1] >= 0], 1)
    return (before[:, None, :] == ctx.q.tokens[:, :, None]) & real_before[:, None, :] & (ki - 1 < qi)


def _same_place(ctx):
    if ctx.q.answer_places is None:
        return None
    own = ctx.q.places if ctx.q.places is not None else torch.zeros_like(ctx.q.answer_places)
    place = torch.where(ctx.q.answer_places > 0, ctx.q.answer_places, own)
    match = (place[:, :, None] == ctx.k.places[:, None, :]) & (place[:, :, None] > 0)
    if not ctx.cross:
        qi, ki = ctx.pairs()
        match = match & (qi != ki)
    return match


def _alignment(ctx):
    if not ctx.cross:
        return None
    j = ctx.q.answer_index[:, :, None]
    return (j >= 0) & (ctx.k.input_index[:, None, :] == j)


_REGISTRY: dict[str, Pattern] = {}


def register_pattern(name: str, fn, description: str = "", threshold: float | None = None) -> None:
    """Add (or replace) a pattern: ``fn(ctx: PatternContext) -> bool [B, Tq, Tk] | None``."""
    _REGISTRY[name] = Pattern(name, fn, description, threshold)


for _name, _fn, _doc in [
    ("self", _self, "the query's own position"), ("previous", _previous, "the position before"),
    ("first", _first, "the first real token (sink)"), ("mirror", _mirror, "input token L-1-j for answer token j"),
    ("same_token", _same_token, "other positions with the query's token"),
    ("induction", _induction, "the position after an earlier occurrence of the query's token"),
    ("same_place", _same_place, "digits of the significance of the answer digit produced"),
    ("alignment", _alignment, "cross-attention: source position j for answer token j"),
]:
    register_pattern(_name, _fn, _doc)
register_pattern("uniform", None, "entropy near its maximum", threshold=0.9)


def patterns() -> dict[str, Pattern]:
    return dict(_REGISTRY)


def check_patterns(names) -> list[str]:
    names = list(_REGISTRY) if names is None else ([names] if isinstance(names, str) else list(names))
    for name in names:
        if name not in _REGISTRY:
            raise ConfigError(f"unknown pattern {name!r}; valid: {', '.join(_REGISTRY)}")
    return names


def _frames(inp: Inputs, name: str) -> tuple[Frame, Frame, bool]:
    stream = name.split(".", 1)[0]
    cross = name.endswith("cross_attn")
    q = inp.frames[stream]
    return q, inp.frames["encoder"] if cross else q, cross


def pattern_scores(weights: torch.Tensor, ctx: PatternContext, names: list[str]) -> dict[str, list[float | None]]:
    """Per pattern, each head's score (None where no query has the pattern's keys):
    ``weights [B, H, Tq, Tk]``."""
    w = weights.float()
    visible = ctx.visible()[:, None] | (w > 0)  # [B, H, Tq, Tk] (w > 0: also a key a mask adds, as the slot's own)
    n_visible = visible.sum(-1)  # [B, H, Tq]
    chooses = ctx.q.valid[:, None, :] & (n_visible >= 2)  # queries with a choice to make
    out = {}
    for name in names:
        p = _REGISTRY[name]
        if p.fn is None:  # uniform: entropy / its maximum
            ent = -(w * w.clamp_min(1e-30).log()).sum(-1) / n_visible.clamp(min=2).float().log()
            mass, keep = ent, chooses
        else:
            mask = p.fn(ctx)
            if mask is None:
                out[name] = [None] * w.shape[1]
                continue
            mask = mask.to(w.device)[:, None] & visible  # [B, H, Tq, Tk]: keys the query can see
            mass = (w * mask).sum(-1)
            keep = chooses & mask.any(-1)
        count = keep.sum((0, 2))  # [H]
        total = (mass * keep).sum((0, 2))
        out[name] = [None if c == 0 else float(t / c) for t, c in zip(total.tolist(), count.tolist())]
    return out


def _limit(name: str, threshold: float) -> float:
    p = _REGISTRY.get(name)
    return threshold if p is None or p.threshold is None else p.threshold


def _best(pairs: list[tuple[float, str]]) -> tuple[float, str] | None:
    """The highest score; on a tie (patterns that coincide on short inputs) the first in the table."""
    order = {name: i for i, name in enumerate(_REGISTRY)}
    return max(pairs, key=lambda t: (t[0], -order.get(t[1], len(order))), default=None)


def role_of(scores: dict[str, float | None], threshold: float = THRESHOLD) -> tuple[str, float | None, str | None]:
    """``(role, score, best)``: the best pattern at or above its threshold, its score and its name;
    else ``("mixed", s, name)`` with the best of the patterns judged by ``threshold`` (attention
    mass: not ``uniform``)."""
    passed = _best([(sc, name) for name, sc in scores.items() if sc is not None and sc >= _limit(name, threshold)])
    if passed is not None:
        return passed[1], passed[0], passed[1]
    mass = _best([(sc, name) for name, sc in scores.items()
                  if sc is not None and not (name in _REGISTRY and _REGISTRY[name].threshold)])
    return ("mixed", None, None) if mass is None else ("mixed", mass[0], mass[1])


def head_roles(source, inputs=None, names=None, threshold: float = THRESHOLD, n: int = 256, task=None,
               layout: str | None = None) -> list[dict]:
    """Score every head of the model of ``source`` (a Run, a run directory, or a model with
    ``task`` and ``layout``) against ``names`` (default: every registered pattern) on ``inputs``
    (default: ``n`` test examples, teacher forced).

    Returns one row per head: ``module``, ``head``, ``scores`` ``{pattern: score or None}``,
    ``role`` and its ``score``, ``best``: the role, or for a ``mixed`` head its best pattern, and
    ``attention``: its best offset, position and token with their mass (``describe``). An
    unknown pattern name is a one-line ConfigError listing the valid ones.
    """
    names = check_patterns(names)
    s = subject(source, task, layout)
    inp = prepare(s, held_out(s, n) if inputs is None else inputs)
    modules = [m for m in s.model.modules() if isinstance(m, Attention)]
    _, acts = cached(s.model, inp, [f"{m.name}.pattern" for m in modules])
    rows = []
    for m in modules:
        ctx = context(s, inp, m.name)
        per = pattern_scores(acts[f"{m.name}.pattern"], ctx, names)
        stats = attention_stats(acts[f"{m.name}.pattern"], ctx, s.task.vocab)
        for h in range(m.n_heads):
            scores = {p: per[p][h] for p in names}
            role, sc, best = role_of(scores, threshold)
            rows.append({"module": m.name, "head": h, "scores": scores, "role": role, "score": sc, "best": best,
                         "attention": stats[h]})
    return rows


def context(s, inp: Inputs, module: str) -> PatternContext:
    """The ``PatternContext`` of attention module ``module`` of ``s``'s model on ``inp``."""
    q, k, cross = _frames(inp, module)
    stack = s.model.decoder if module.startswith("decoder") else s.model.encoder
    return PatternContext(q, k, cross, (k.col >= 0).sum(1), inp.input_len, not cross and stack.causal)
