"""Models: attention, blocks, positional schemes and the four layouts."""

from __future__ import annotations

from contextlib import contextmanager

from torch import nn

from toyformer.models.attention import Attention
from toyformer.models.layouts import FITS, CausalLM, Classifier, Seq2Seq, Tagger, build_model, check_fits


@contextmanager
def record_attention(model: nn.Module):
    """Record attention weights ``[batch, heads, queries, keys]`` under stable names.

    >>> with record_attention(model) as weights:          # doctest: +SKIP
    ...     model(batch)
    >>> weights["encoder.blocks.0.attn"].shape             # doctest: +SKIP
    torch.Size([8, 4, 20, 20])
    """
    recorded: dict = {}
    modules = [m for m in model.modules() if isinstance(m, Attention)]
    for m in modules:
        m.recorder = recorded
    try:
        yield recorded
    finally:
        for m in modules:
            m.recorder = None


__all__ = [
    "FITS", "CausalLM", "Classifier", "Seq2Seq", "Tagger", "build_model", "check_fits", "record_attention",
]
