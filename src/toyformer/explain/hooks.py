"""Hooks and an activation cache on a run's model, by the stable names of
``toyformer.models.hookpoints`` (``encoder.blocks.0.resid_pre``, ``decoder.blocks.1.attn.pattern``,
``logits``, ...; the table there gives each name's shape and its TransformerLens name).

>>> logits, cache = run_with_cache("runs/rev", "3 1 4 1 5", names=["encoder.blocks.0.attn.pattern"])  # doctest: +SKIP
>>> cache["encoder.blocks.0.attn.pattern"].shape                                                   # doctest: +SKIP
torch.Size([1, 4, 5, 5])
>>> zero_head = lambda z, name: z.index_fill(2, torch.tensor([1]), 0.0)   # z [B, T, H, d_head]    # doctest: +SKIP
>>> run_with_hooks("runs/rev", "3 1 4 1 5", {"encoder.blocks.0.attn.z": zero_head})               # doctest: +SKIP
"""

from __future__ import annotations

import torch

from toyformer.explain.data import cached, forward, held_out, prepare
from toyformer.inspect.capture import subject
from toyformer.models.hookpoints import check_names, hook_names as model_hook_names


def hook_names(source, task=None, layout: str | None = None) -> list[str]:
    """Every hook name of the model of ``source`` (a Run, a run directory, or a model with
    ``task`` and ``layout``)."""
    return model_hook_names(subject(source, task, layout).model)


def _inputs(s, inputs):
    return prepare(s, held_out(s, 8) if inputs is None else inputs)


def run_with_cache(source, inputs=None, names=None, task=None, layout: str | None = None
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits and the activations ``names`` (default: every one; name the ones you need to keep
    memory small) of one forward pass, in evaluation mode without gradients.

    ``inputs``: Examples (teacher forced on their targets), ids ``[B, L]``, a token string or a
    list of them (the model's own answers are the targets); default the first 8 test examples.
    An unknown name is a one-line ConfigError listing the valid ones.
    """
    s = subject(source, task, layout)
    names = model_hook_names(s.model) if names is None else check_names(s.model, names)
    return cached(s.model, _inputs(s, inputs), names)


def run_with_hooks(source, inputs, hooks: dict, task=None, layout: str | None = None) -> torch.Tensor:
    """Logits of one forward pass with ``hooks`` ``{name: fn}`` attached; ``fn(activation, name)``
    may return a replacement (patching, ablation). ``inputs`` as ``run_with_cache``."""
    s = subject(source, task, layout)
    return forward(s.model, _inputs(s, inputs), hooks)
