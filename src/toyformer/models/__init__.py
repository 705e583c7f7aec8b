"""Models: attention, blocks, positional schemes and the four layouts; hook points on every
activation (``hookpoints``)."""

from __future__ import annotations

from contextlib import contextmanager

from torch import nn

from toyformer.models.attention import Attention
from toyformer.models.hookpoints import check_names, hook_names, hooks
from toyformer.models.layouts import FITS, CausalLM, Classifier, Seq2Seq, Tagger, build_model, check_fits


@contextmanager
def record_attention(model: nn.Module):
    """Record attention weights ``[batch, heads, queries, keys]`` under the stable names of the
    attention modules (a hook on every ``<module>.pattern``).

    >>> with record_attention(model) as weights:          # doctest: +SKIP
    ...     model(batch)
    >>> weights["encoder.blocks.0.attn"].shape             # doctest: +SKIP
    torch.Size([8, 4, 20, 20])
    """
    recorded: dict = {}

    def keep(w, name):
        recorded[name.removesuffix(".pattern")] = w.detach()

    names = [m.name + ".pattern" for m in model.modules() if isinstance(m, Attention)]
    with hooks(model, {n: keep for n in names}):
        yield recorded


__all__ = [
    "FITS", "CausalLM", "Classifier", "Seq2Seq", "Tagger", "build_model", "check_fits", "check_names", "hook_names",
    "hooks", "record_attention",
]
