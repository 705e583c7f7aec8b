"""K models of one architecture trained as one batched computation (replicas).

The parameters of ``K`` models are stacked along a new leading replica dimension
(``[K, *shape]``) and one template module is run over them with ``torch.func.vmap`` and
``functional_call``: every operation runs once for all replicas, on ``K`` times the data,
instead of ``K`` times. Attention is computed by its ``explicit`` implementation, which vmap
batches; the fused kernel has no batching rule and would loop over the replicas.

>>> models = [build_model(cfg, "tagger", task, (8, 8)) for _ in range(3)]    # doctest: +SKIP
>>> rep = Replicated(models)                                                   # doctest: +SKIP
>>> loss, pred = rep.loss_and_predictions(stacked_batch)   # loss [3], pred [3, B, T]  # doctest: +SKIP
>>> rep.load_into(1, models[1])   # replica 1's current weights, back in a normal module  # doctest: +SKIP
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from toyformer.data import IGNORE, Batch
from toyformer.models.attention import Attention


class Replicated:
    """Stacked parameters ``params[name] [K, *shape]`` (leaf tensors with gradients) of ``K``
    models with identical architecture, and a batched forward over them."""

    def __init__(self, models: list[nn.Module]):
        self.k = len(models)
        self.template = copy.deepcopy(models[0])
        for m in self.template.modules():
            if isinstance(m, Attention):
                m.impl = "explicit"
        self.template.train()
        named = [dict(m.named_parameters()) for m in models]
        self.params = {name: torch.stack([n[name].detach() for n in named]).requires_grad_()
                       for name in named[0]}
        # embedding rows that never learn (<pad>); under vmap (torch 2.13) the embedding backward
        # keeps only replica 0's at zero, so the others are zeroed here
        self.frozen_rows = [(f"{name}.weight", m.padding_idx) for name, m in self.template.named_modules()
                            if isinstance(m, nn.Embedding) and m.padding_idx is not None]

    def _one(self, params: dict, inputs, labels, decoder_inputs, prompt_len: int):
        logits = functional_call(self.template, params, (Batch(inputs, labels, decoder_inputs, prompt_len),))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE)
        return loss, logits.argmax(-1)

    def loss_and_predictions(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch`` with a leading replica dimension (``data.stack_batches``) -> each replica's
        mean cross-entropy ``[K]`` and argmax predictions ``[K, B(, T)]`` (teacher forced)."""
        has_decoder = batch.decoder_inputs is not None
        fn = vmap(lambda p, x, y, d: self._one(p, x, y, d, batch.prompt_len),
                  in_dims=(0, 0, 0, 0 if has_decoder else None), randomness="different")
        return fn(self.params, batch.inputs, batch.labels, batch.decoder_inputs)

    def gradients(self, loss: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each replica's gradients ``[K, *shape]`` of its own loss (``loss [K]``: replicas are
        independent, so the gradient of the sum is every replica's own), with the ``padding_idx``
        rows of embeddings zero, as ``nn.Embedding`` keeps them for a single model."""
        grads = dict(zip(self.params, torch.autograd.grad(loss.sum(), list(self.params.values()))))
        for name, row in self.frozen_rows:
            grads[name][:, row] = 0
        return grads

    @torch.no_grad()
    def load_into(self, k: int, model: nn.Module) -> None:
        """Copy replica ``k``'s current weights into ``model`` (same architecture)."""
        for name, p in model.named_parameters():
            p.copy_(self.params[name][k])
