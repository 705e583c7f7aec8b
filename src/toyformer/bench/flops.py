"""Analytic FLOP count of a toyformer model: matrix multiplies only, attention included.

A linear layer on ``rows`` vectors costs ``2 * rows * d_in * d_out``; attention of ``Tq``
queries over ``Tk`` keys costs ``2 * Tq * Tk * d`` for the scores and as much again for the
weighted sum of the values, per example (every query against every key: the fused kernel
computes masked pairs too). Norms, activations, softmax and the optimiser are not counted, as is
usual for model FLOPs. A training step costs 3x the forward pass (the backward pass computes
the gradients of both the inputs and the weights of every product).

>>> from toyformer import RunConfig
>>> cfg = RunConfig.from_dict({"task": {"name": "reverse", "length": 4}, "model": {"d_model": 8,
...     "n_heads": 2, "n_layers": 1, "d_ff": 16}})
>>> forward_flops(cfg.model, "tagger", vocab_size=15, batch=1, t_in=4)
5568
"""

from __future__ import annotations


def linear(rows: int, d_in: int, d_out: int) -> int:
    return 2 * rows * d_in * d_out


def attention(tq: int, tk: int, d: int) -> int:
    """One attention layer for one example: projections of queries, keys+values and output,
    scores ``Q K^T`` and the weighted sum ``A V``."""
    return linear(tq, d, d) + linear(tk, d, 2 * d) + linear(tq, d, d) + 2 * (2 * tq * tk * d)


def block(t: int, d: int, d_ff: int, memory: int | None = None) -> int:
    """Self-attention (+ cross-attention over ``memory`` positions) + feed-forward, one example."""
    flops = attention(t, t, d) + linear(t, d, d_ff) + linear(t, d_ff, d)
    if memory is not None:
        flops += attention(t, memory, d)
    return flops


def mlp(rows: int, d_in: int, hidden: tuple[int, ...], d_out: int) -> int:
    flops = 0
    for width in (*hidden, d_out):
        flops, d_in = flops + linear(rows, d_in, width), width
    return flops


def forward_flops(model, layout: str, vocab_size: int, batch: int, t_in: int, t_dec: int = 0) -> int:
    """Forward FLOPs of a ``ModelConfig`` in ``layout`` for ``batch`` examples of ``t_in`` model
    input positions (``t_dec`` decoder positions for seq2seq). ``t_in`` is what the encoder
    reads: for classifier pooling ``slot`` include the extra position."""
    d, ff = model.d_model, model.d_ff
    if layout == "seq2seq":
        n_dec = model.n_decoder_layers or model.n_layers
        per = model.n_layers * block(t_in, d, ff) + n_dec * block(t_dec, d, ff, memory=t_in)
        per += linear(t_dec, d, vocab_size)
    else:
        per = model.n_layers * block(t_in, d, ff)
        if layout == "classifier":
            d_in = d * t_in if model.pooling == "flatten" else d
            per += mlp(1, d_in, tuple(model.head_hidden), vocab_size)
        elif layout == "causal":
            per += linear(t_in, d, vocab_size)
        else:  # tagger, masked
            per += mlp(t_in, d, tuple(model.head_hidden), vocab_size)
    return batch * per


def batch_flops(config, batch, vocab_size: int) -> int:
    """Forward FLOPs of ``config``'s model on a formatted ``toyformer.data.batches.Batch``."""
    b, t = batch.inputs.shape
    if config.layout == "classifier" and config.model.pooling == "slot":
        t += 1
    t_dec = 0 if batch.decoder_inputs is None else batch.decoder_inputs.shape[1]
    return forward_flops(config.model, config.layout, vocab_size, b, t, t_dec)


def training_flops(config, batch, vocab_size: int) -> int:
    """FLOPs of one training step (forward + backward = 3x forward) on ``batch``."""
    return 3 * batch_flops(config, batch, vocab_size)
