"""The four layouts, thin variants over one embedder and one block stack, and ``build_model``.

Every model maps a ``Batch`` to logits over the task vocabulary: ``[B, V]`` for the classifier,
``[B, T, V]`` otherwise. ``build_model`` is the only place that switches on the layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from toyformer.data import Batch
from toyformer.errors import ConfigError
from toyformer.models.attention import cross_attention_mask, self_attention_mask
from toyformer.models.blocks import Stack
from toyformer.models.positional import Embedder
from toyformer.tasks.base import PAD

# which task kinds each layout can learn
FITS = {
    "classifier": ("classify",),
    "tagger": ("tag",),
    "causal": ("classify", "tag", "seq2seq"),
    "seq2seq": ("classify", "tag", "seq2seq"),
    "masked": ("classify", "tag", "seq2seq"),
}


def mlp_head(d_in: int, hidden: tuple[int, ...], vocab_size: int) -> nn.Sequential:
    """``Linear -> ReLU`` for each hidden width, then the output layer."""
    layers: list[nn.Module] = []
    for d_hidden in hidden:
        layers += [nn.Linear(d_in, d_hidden), nn.ReLU()]
        d_in = d_hidden
    return nn.Sequential(*layers, nn.Linear(d_in, vocab_size))


class Encoder(nn.Module):
    """Embedding + bidirectional (or causal) stack: ``[B, T]`` tokens -> ``[B, T, d]``."""

    def __init__(self, cfg, vocab_size: int, max_len: int, name: str, causal: bool, n_layers: int):
        super().__init__()
        self.embed = Embedder(vocab_size, cfg.d_model, cfg.positional, max_len, cfg.dropout)
        self.stack = Stack(cfg, n_layers, name)
        self.causal = causal

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = self_attention_mask(tokens != PAD, self.causal)
        return self.stack(self.embed(tokens), mask)


class Classifier(nn.Module):
    """Encoder, then pooling, then an MLP head. Pooling: the mean over real tokens, the first or
    last position, all positions flattened (R0), or ``slot``: an empty ``<pad>`` position is
    appended and the answer read there (R1's padded variant)."""

    def __init__(self, cfg, vocab_size: int, max_len: int, width: int):
        super().__init__()
        self.encoder = Encoder(cfg, vocab_size, max_len, "encoder", cfg.causal_encoder, cfg.n_layers)
        self.pooling, self.width = cfg.pooling, width
        d_in = cfg.d_model * (width if cfg.pooling == "flatten" else 1)
        self.head = mlp_head(d_in, cfg.head_hidden, vocab_size)

    def forward(self, batch: Batch) -> torch.Tensor:
        tokens = batch.inputs
        if self.pooling == "flatten":  # a fixed-width input: pad or reject
            if tokens.shape[1] > self.width:
                raise ValueError(f"flatten pooling was built for width {self.width}, got {tokens.shape[1]}")
            tokens = F.pad(tokens, (0, self.width - tokens.shape[1]), value=PAD)
        if self.pooling == "slot":
            tokens = F.pad(tokens, (0, 1), value=PAD)  # the zero-vector slot of R1
        h = self.encoder(tokens)  # [B, T, d]
        if self.pooling == "mean":
            valid = (tokens != PAD).unsqueeze(-1).float()  # [B, T, 1]
            pooled = (h * valid).sum(1) / valid.sum(1).clamp(min=1)
        elif self.pooling == "first":
            pooled = h[:, 0]
        elif self.pooling in ("last", "slot"):
            pooled = h[:, -1]
        else:
            pooled = h.flatten(1)  # [B, T * d]
        return self.head(pooled)  # [B, V]


class Tagger(nn.Module):
    """Encoder and one prediction per input position (also the masked-token layout's model)."""

    def __init__(self, cfg, vocab_size: int, max_len: int):
        super().__init__()
        self.encoder = Encoder(cfg, vocab_size, max_len, "encoder", cfg.causal_encoder, cfg.n_layers)
        self.head = mlp_head(cfg.d_model, cfg.head_hidden, vocab_size)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.head(self.encoder(batch.inputs))  # [B, T, V]


class CausalLM(nn.Module):
    """Decoder-only: a causal stack over ``prompt <sep> answer``, next-token logits."""

    def __init__(self, cfg, vocab_size: int, max_len: int):
        super().__init__()
        self.decoder = Encoder(cfg, vocab_size, max_len, "decoder", True, cfg.n_layers)
        self.head = nn.Linear(cfg.d_model, vocab_size)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.logits(batch.inputs)

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T, V]
        return self.head(self.decoder(tokens))


class Seq2Seq(nn.Module):
    """Encoder-decoder: bidirectional encoder; causal decoder with cross-attention."""

    def __init__(self, cfg, vocab_size: int, max_len: int):
        super().__init__()
        self.encoder = Encoder(cfg, vocab_size, max_len, "encoder", False, cfg.n_layers)
        n_dec = cfg.n_decoder_layers or cfg.n_layers
        self.embed = Embedder(vocab_size, cfg.d_model, cfg.positional, max_len, cfg.dropout)
        self.decoder = Stack(cfg, n_dec, "decoder", cross=True)
        self.head = nn.Linear(cfg.d_model, vocab_size)

    def forward(self, batch: Batch) -> torch.Tensor:
        memory = self.encoder(batch.inputs)
        return self.decode(batch.decoder_inputs, memory, batch.inputs != PAD)

    def encode(self, src: torch.Tensor) -> torch.Tensor:  # [B, S] -> [B, S, d]
        return self.encoder(src)

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, src_valid: torch.Tensor) -> torch.Tensor:
        """``tgt [B, T]`` decoder inputs (``<bos>`` first) -> logits ``[B, T, V]``."""
        mask = self_attention_mask(tgt != PAD, causal=True)
        h = self.decoder(self.embed(tgt), mask, memory, cross_attention_mask(src_valid, tgt.shape[1]))
        return self.head(h)


def check_fits(kind: str, layout: str, task_name: str) -> None:
    if kind not in FITS[layout]:
        fits = [name for name, kinds in FITS.items() if kind in kinds]
        raise ConfigError(
            f"layout {layout!r} cannot learn task {task_name!r} (a {kind} task); allowed layouts: {', '.join(fits)}"
        )


def build_model(cfg, layout: str, task, widths: tuple[int, int]) -> nn.Module:
    """Build the model for ``layout`` on ``task``; rejects a task/layout pair that cannot fit.

    ``widths`` are the widths of a formatted batch (inputs, labels), used for the positional
    table (``cfg.max_len`` or twice the widest sequence) and for flatten pooling.
    """
    check_fits(task.kind, layout, task.name)
    if cfg.pooling in ("flatten", "slot") and layout != "classifier":
        raise ConfigError(f"model.pooling={cfg.pooling!r} only applies to the classifier layout, not {layout!r}")
    vocab_size = len(task.vocab)
    max_len = cfg.max_len or 2 * max(widths) + 8
    if layout == "classifier":
        model = Classifier(cfg, vocab_size, max_len, widths[0])
    elif layout in ("tagger", "masked"):
        model = Tagger(cfg, vocab_size, max_len)
    elif layout == "causal":
        model = CausalLM(cfg, vocab_size, max_len)
    else:
        model = Seq2Seq(cfg, vocab_size, max_len)
    if cfg.init == "small":
        model.apply(_init_small)
    return model


def _init_small(module: nn.Module) -> None:
    """GPT-2 style: normal(0, 0.02) weights, zero biases, a zero ``<pad>`` embedding.

    The alternative, PyTorch's defaults (``model.init=torch``: embeddings N(0, 1), Kaiming-uniform
    linear layers, as ``nn.Embedding`` + ``nn.TransformerEncoder`` give), starts a deep post-norm
    stack with residual activations far larger than this one, and is part of why R0 fails.
    """
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
