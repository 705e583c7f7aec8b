"""Multi-head attention: projections, one ``kernels.attend`` call, the output projection; and
the KV cache for incremental decoding.

Every attention module has a stable ``name`` (``encoder.blocks.0.attn``,
``decoder.blocks.1.cross_attn``) and three hook points (``hookpoints``): ``pattern`` (the
weights ``[batch, heads, queries, keys]``, computed explicitly only while a hook asks for them),
``z`` (each head's output ``[batch, queries, heads, d_head]``) and ``out``. ``impl`` chooses how
attention is computed (``auto``: the fastest for the device; ``sdpa``, ``explicit``,
``few_keys``: see ``kernels``).

Positional schemes plug in here at two of their three points: a ``Rotary`` rotates queries and
keys (RoPE), and a float ``mask`` carries additive score biases (ALiBi, relative buckets) with
``-inf`` where a key is hidden. During incremental decoding a ``KVCache`` keeps the (already
rotated) keys and values of every layer, so each new token costs one query against the cache.
"""

from __future__ import annotations

import torch
from torch import nn

from toyformer.models import kernels
from toyformer.models.hookpoints import hookable
from toyformer.models.local_attention import Local, local_attend
from toyformer.tasks.base import PAD


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
                bufs = tuple(b.new_zeros((len(index), *b.shape[1:])) for b in bufs)
            for old, new in zip(self.buffers[name], bufs):
                new[:, :, :n] = old[:, :, :n].index_select(0, index)  # only the used columns move
            self.buffers[name] = bufs
        pick = lambda t: t.index_select(0, index)  # noqa: E731
        self.static = {name: (pick(k), pick(v)) for name, (k, v) in self.static.items()}
        self.context = {name: pick(t) for name, t in self.context.items()}


class Attention(nn.Module):
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
        hookable(self, name, ("pattern", "z", "out"))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.d_head).transpose(1, 2)  # [B, H, T, d_head]

    def _keys_values(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = (self._heads(t) for t in self.kv(context).chunk(2, dim=-1))  # [B, H, Tk, dh]
        return k, v

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
            if cache is not None:
                k, v = cache.extend(self.name, k, v)  # [B, H, Tk, dh], Tk = all tokens so far
        elif cache is not None:
            if self.name not in cache.static:
                cache.static[self.name] = self._keys_values(context)
            k, v = cache.static[self.name]
        else:
            k, v = self._keys_values(context)
        return q, k, v

    def forward(self, x: torch.Tensor, context: torch.Tensor | None, mask: torch.Tensor,
                rotary=None, cache: KVCache | None = None) -> torch.Tensor:
        """``x [B, Tq, d]`` attends to ``context [B, Tk, d]`` (None: itself) under ``mask
        [B, 1 or H, Tq, Tk]`` (or a ``Local`` plan of candidate keys). Returns ``[B, Tq, d]``."""
        q, k, v = self.project(x, context, rotary, cache)
        p = self.dropout if self.training else 0.0
        tap = self.tap
        if isinstance(mask, Local):  # a long windowed input at evaluation: only the candidate keys are scored
            y, _ = local_attend(q, k, v, mask)
        elif tap is not None and tap.wants("pattern"):  # the explicit path, the pattern hooked in it
            weights = tap("pattern", kernels.attention_weights(q, k, mask))  # [B, H, Tq, Tk]
            y = kernels.dropout(weights, p) @ v
        else:
            y, _ = kernels.attend(q, k, v, mask, p, kernels.choose(self.impl, q, k, p, need_weights=False))
        b, _, tq, _ = y.shape
        z = y.transpose(1, 2)  # [B, Tq, H, dh]
        if tap is None:
            return self.out(z.reshape(b, tq, -1))  # [B, Tq, d]
        return tap("out", self.out(tap("z", z).reshape(b, tq, -1)))


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
