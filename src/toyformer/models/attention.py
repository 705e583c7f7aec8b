"""Multi-head attention: projections, one ``kernels.attend`` call, the output projection; and
the KV cache for incremental decoding.

Every attention module has a stable ``name`` (``encoder.blocks.0.attn``,
``decoder.blocks.1.cross_attn``) and its hook points (``hookpoints``): ``q_in``, ``k_in``,
``v_in`` (the residual stream each head reads, one copy per head ``[batch, tokens, heads,
d_model]``, before the block's norm), ``q``, ``k``, ``v`` (``[batch, tokens, heads, d_head]``,
after RoPE), ``scores`` (before the softmax, ``[batch, heads, queries, keys]``), ``pattern`` (the
weights), ``z`` (each head's output ``[batch, queries, heads, d_head]``), ``result`` (each head's
output through the output projection, ``[batch, queries, heads, d_model]``, without its bias)
and ``out``. Reading a point changes nothing; only a hook that replaces ``q_in``/``k_in``/
``v_in``, ``scores`` or ``result`` makes the module compute that part head by head, explicitly
(``pattern`` is always computed explicitly). ``impl`` chooses how attention is computed
(``auto``: the fastest for the device; ``sdpa``, ``explicit``, ``few_keys``: see ``kernels``).

Positional schemes plug in here at two of their three points: a ``Rotary`` rotates queries and
keys (RoPE), and a float ``mask`` carries additive score biases (ALiBi, relative buckets) with
``-inf`` where a key is hidden. During incremental decoding a ``KVCache`` keeps the (already
rotated) keys and values of every layer, so each new token costs one query against the cache.
"""

from __future__ import annotations

import torch
from torch import nn

from toyformer.models import kernels
from toyformer.models.hookpoints import Hookable, hookable
from toyformer.models.local_attention import Local, local_attend
from toyformer.tasks.base import PAD

SPLIT = ("q_in", "k_in", "v_in")  # the per-head inputs
POINTS = (*SPLIT, "q", "k", "v", "scores", "pattern", "z", "result", "out")


class KVCache:
    """Keys and values of one stack's attention layers for incremental decoding.

    ``tokens [B, max_len]`` is the history of the decoded stream (positions are recomputed from
    it, so the cached path gives the same positions as a full forward). Self-attention keys and
    values are written into preallocated buffers ``[B, H, max_len, d_head]``; cross-attention
    keys and values over the encoder memory are computed once (``static``).

    >>> cache = KVCache(batch=2, max_len=16)          # doctest: +SKIP
    >>> model.decoder(prompt, cache=cache)            # doctest: +SKIP  # then one column at a time
    """

    def __init__(self, batch: int, max_len: int, device=None):
        self.tokens = torch.full((batch, max_len), PAD, dtype=torch.long, device=device)
        self.start = self.length = 0  # the columns [start, length) are being processed
        self.buffers: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.static: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.context: dict[str, torch.Tensor] = {}  # per-row tensors the model needs each step (memory)

    @property
    def max_len(self) -> int:
        return self.tokens.shape[1]

    def append(self, tokens: torch.Tensor) -> torch.Tensor:
        """Add ``tokens [B, t]`` to the history; returns the whole history ``[B, length]``."""
        t = tokens.shape[1]
        if self.length + t > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} tokens; cannot add {t} to {self.length}")
        self.start, self.length = self.length, self.length + t
        self.tokens[:, self.start : self.length] = tokens
        return self.tokens[:, : self.length]

    def extend(self, name: str, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new ``k, v [B, H, t, dh]`` of layer ``name``; return all keys/values so far."""
        if name not in self.buffers:
            b, h, _, dh = k.shape
            shape = (b, h, self.max_len, dh)
            self.buffers[name] = (k.new_zeros(shape), v.new_zeros(shape))
        kb, vb = self.buffers[name]
        kb[:, :, self.start : self.length] = k
        vb[:, :, self.start : self.length] = v
        return kb[:, :, : self.length], vb[:, :, : self.length]

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows ``index [B']`` (beam search: expand a row into beams, follow surviving beams)."""
        n = self.length
        self.tokens = self.tokens.index_select(0, index)
        for name, bufs in self.buffers.items():
            if len(index) != bufs[0].shape[0]:  # a new batch size: new buffers
                k_old, v_old = bufs
                bufs = (k_old.new_zeros((len(index), *k_old.shape[1:])),
                        v_old.new_zeros((len(index), *v_old.shape[1:])))
            for old, new in zip(self.buffers[name], bufs):
                new[:, :, :n] = old[:, :, :n].index_select(0, index)  # only the used columns move
            self.buffers[name] = bufs
        pick = lambda t: t.index_select(0, index)  # noqa: E731
        self.static = {name: (pick(k), pick(v)) for name, (k, v) in self.static.items()}
        self.context = {name: pick(t) for name, t in self.context.items()}


class Attention(Hookable):
    """Multi-head attention. ``mask`` is boolean (True where a query may attend to a key) or
    float (added to the scores; ``-inf`` hides a key).

    >>> attn = Attention(d_model=16, n_heads=2, dropout=0.0, name="encoder.blocks.0.attn")
    >>> x = torch.randn(3, 5, 16)                                            # [B, T, d]
    >>> attn(x, None, torch.ones(3, 1, 5, 5, dtype=torch.bool)).shape
    torch.Size([3, 5, 16])
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float, name: str, impl: kernels.Impl = "auto"):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout
        self.name = name
        self.impl = impl  # replicas set "explicit": vmap has no batching rule for the fused kernel
        hookable(self, name, POINTS)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.d_head).transpose(1, 2)  # [B, H, T, d_head]

    def _keys_values(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = (self._heads(t) for t in self.kv(context).chunk(2, dim=-1))  # [B, H, Tk, dh]
        return k, v

    def _tap(self, point: str, t: torch.Tensor) -> torch.Tensor:
        """``t [B, H, T, dh]`` through the hooks of ``point`` (q, k or v; ``[B, T, H, dh]`` there)."""
        tap = self.tap
        if tap is None or not tap.wants(point):
            return t
        return tap(point, t.transpose(1, 2)).transpose(1, 2)

    def _tapped(self, q, k, v):
        return self._tap("q", q), self._tap("k", k), self._tap("v", v)

    def project(self, x: torch.Tensor, context: torch.Tensor | None, rotary=None,
                cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries from ``x [B, Tq, d]``, keys and values from ``context [B, Tk, d]`` (None:
        self-attention over ``x``), each ``[B, H, T, dh]``; ``rotary`` (RoPE, self-attention
        only) rotates queries and new keys; with a ``cache`` new self-attention keys/values are
        appended to it and cross-attention keys/values are computed once."""
        q = self._heads(self.q(x))  # [B, H, Tq, dh]
        if context is None:  # self-attention
            k, v = self._keys_values(x)
            if rotary is not None:
                q, k = rotary(q), rotary(k)
            q, k, v = self._tapped(q, k, v)
            if cache is not None:
                k, v = cache.extend(self.name, k, v)  # [B, H, Tk, dh], Tk = all tokens so far
            return q, k, v
        if cache is None:
            return self._tapped(q, *self._keys_values(context))
        if self.name not in cache.static:
            k, v = self._keys_values(context)
            cache.static[self.name] = (self._tap("k", k), self._tap("v", v))
        return (self._tap("q", q), *cache.static[self.name])

    def _split(self, x: torch.Tensor, context: torch.Tensor | None, norm, rotary, cache):
        """Queries, keys and values when a hook asks for the per-head inputs: ``x`` (and a
        self-attention context) arrive before the block's ``norm``; each head gets its own copy
        ``[B, T, H, d]`` at ``q_in``/``k_in``/``v_in``. Read-only hooks leave the usual path."""
        h, tap = self.n_heads, self.tap
        assert tap is not None, "called while a hook asks for the per-head inputs"
        ctx = x if context is None else context
        copies = [x[:, :, None].expand(-1, -1, h, -1), ctx[:, :, None].expand(-1, -1, h, -1)]
        ins = [tap(p, copies[p != "q_in"]) for p in SPLIT]
        if all(t is copies[p != "q_in"] for p, t in zip(SPLIT, ins)):  # only read
            return self.project(norm(x), None if context is None else context, rotary, cache)
        if cache is not None:
            raise ValueError("a hook that replaces q_in, k_in or v_in needs a whole forward pass, not cached decoding")
        if context is None:  # self-attention: every copy through the block's norm
            xq, xk, xv = (norm(t) for t in ins)
        else:  # cross-attention: the memory is used as it is
            xq, xk, xv = norm(ins[0]), ins[1], ins[2]
        d = x.shape[-1]
        w_k, w_v = self.kv.weight.view(2, h, self.d_head, d)
        b_k, b_v = self.kv.bias.view(2, h, 1, self.d_head)

        def per_head(t, w, b):  # [B, T, H, d] -> [B, H, T, dh]
            return torch.einsum("bthd,hed->bhte", t, w) + b

        q = per_head(xq, self.q.weight.view(h, self.d_head, d), self.q.bias.view(h, 1, self.d_head))
        k, v = per_head(xk, w_k, b_k), per_head(xv, w_v, b_v)
        if rotary is not None and context is None:
            q, k = rotary(q), rotary(k)
        return self._tapped(q, k, v)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None, mask: torch.Tensor,
                rotary=None, cache: KVCache | None = None, norm=None) -> torch.Tensor:
        """``x [B, Tq, d]`` attends to ``context [B, Tk, d]`` (None: itself) under ``mask
        [B, 1 or H, Tq, Tk]`` (or a ``Local`` plan of candidate keys). Returns ``[B, Tq, d]``.
        ``norm``: the block passes its norm (and ``x`` before it) only while a hook asks for
        ``q_in``, ``k_in`` or ``v_in``."""
        tap = self.tap
        if tap is not None and norm is not None:
            q, k, v = self._split(x, context, norm, rotary, cache)
        else:
            q, k, v = self.project(x, context, rotary, cache)
        p = self.dropout if self.training else 0.0
        y = None
        if isinstance(mask, Local):  # a long windowed input at evaluation: only the candidate keys are scored
            y, _ = local_attend(q, k, v, mask)
        elif tap is not None and (tap.wants("pattern") or tap.wants("scores")):  # the explicit path, hooked in it
            scores = kernels.attention_scores(q, k, mask)  # [B, H, Tq, Tk]
            hooked = tap("scores", scores)
            if tap.wants("pattern") or hooked is not scores:
                weights = tap("pattern", kernels.softmax(hooked))  # [B, H, Tq, Tk]
                y = kernels.dropout(weights, p) @ v
        if y is None:
            y, _ = kernels.attend(q, k, v, mask, p, kernels.choose(self.impl, q, k, p, need_weights=False))
        b, _, tq, _ = y.shape
        z = y.transpose(1, 2)  # [B, Tq, H, dh]
        if tap is None:
            return self.out(z.reshape(b, tq, -1))  # [B, Tq, d]
        z = tap("z", z)
        if tap.wants("result"):
            w = self.out.weight.view(-1, self.n_heads, self.d_head)  # [d, H, dh]
            result = torch.einsum("bthe,dhe->bthd", z, w)  # [B, Tq, H, d]
            hooked = tap("result", result)
            if hooked is not result:
                return tap("out", hooked.sum(2) + self.out.bias)
        return tap("out", self.out(z.reshape(b, tq, -1)))


def self_attention_mask(valid: torch.Tensor, causal: bool, start: int = 0) -> torch.Tensor:
    """``valid [B, Tk]`` (False at padding) -> ``[B, 1, Tq, Tk]`` for the queries at columns
    ``start .. Tk-1`` (``start`` > 0 while decoding with a cache: only the new columns ask).

    Every query may always attend to itself: a padding query with no other key would otherwise
    get a row of -inf, a NaN, and NaNs spread to real positions through later layers.
    """
    tk = valid.shape[1]
    q_idx = torch.arange(start, tk, device=valid.device).unsqueeze(1)  # [Tq, 1]
    k_idx = torch.arange(tk, device=valid.device).unsqueeze(0)  # [1, Tk]
    mask = valid[:, None, None, :]  # [B, 1, 1, Tk]
    if causal:
        mask = mask & (k_idx <= q_idx)
    return mask | (k_idx == q_idx)  # [B, 1, Tq, Tk]


def cross_attention_mask(src_valid: torch.Tensor, t_query: int) -> torch.Tensor:
    """``src_valid [B, S]`` -> ``[B, 1, t_query, S]``."""
    return src_valid[:, None, None, :].expand(-1, 1, t_query, -1)


def with_bias(mask: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A boolean mask and an additive score bias ``[B, H, Tq, Tk]`` -> one float mask."""
    if bias is None:
        return mask
    return bias.masked_fill(~mask, float("-inf"))
