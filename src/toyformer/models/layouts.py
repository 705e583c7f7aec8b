"""The four layouts, thin variants over one embedder and one block stack, and ``build_model``.

Every model maps a ``Batch`` to logits over the task vocabulary: ``[B, V]`` for the classifier,
``[B, T, V]`` otherwise. ``build_model`` is the only place that switches on the layout. Hook
points (``hookpoints``): ``logits`` on every model, ``pooled`` on the classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from toyformer.data import Batch
from toyformer.errors import ConfigError
from toyformer.models.attention import KVCache, cross_attention_mask, self_attention_mask
from toyformer.models.blocks import Stack
from toyformer.models.hookpoints import Hookable, hookable
from toyformer.models.kernels import ReLU
from toyformer.models.positional.abacus import Answer
from toyformer.models.positional.embedder import Embedder
from toyformer.models.recurrent import recurrent_encoder
from toyformer.tasks.base import BOS, PAD, SPECIALS

# the layouts a recurrent network can stand in for the encoder of (it has no decoder)
RECURRENT_LAYOUTS = ("classifier", "tagger", "masked")

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
        layers += [nn.Linear(d_in, d_hidden), ReLU()]
        d_in = d_hidden
    return nn.Sequential(*layers, nn.Linear(d_in, vocab_size))


class Encoder(nn.Module):
    """Embedding + a bidirectional or causal stack (+ cross-attention in a seq2seq decoder):
    ``[B, T]`` tokens -> ``[B, T, d]``. With a ``KVCache`` the tokens are appended to the cached
    history and only they are computed (incremental decoding)."""

    def __init__(self, cfg, vocab_size: int, max_len: int, name: str, causal: bool, n_layers: int,
                 digit_ids: torch.Tensor | None = None, cross: bool = False, answer: Answer = "none"):
        super().__init__()
        self.embed = Embedder(vocab_size, cfg, max_len, digit_ids, answer)
        self.embed.hook_name = f"{name}.embed"
        self.stack = Stack(cfg, n_layers, name, causal, cross)
        self.causal = causal

    def forward(self, tokens: torch.Tensor, memory: torch.Tensor | None = None,
                src_valid: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        if cache is None:
            pos = k_pos = self.embed.positions(tokens)  # [B, T]
            places, numbers = self.embed.places(tokens), self.embed.numbers(tokens)
            mask = self_attention_mask(tokens != PAD, self.causal)  # [B, 1, T, T]
        else:
            history = cache.append(tokens)  # [B, Tk]
            k_pos = self.embed.positions(history)
            pos = k_pos[:, cache.start :]
            places, numbers = (None if t is None else t[:, cache.start :]
                               for t in (self.embed.places(history), self.embed.numbers(history)))
            mask = self_attention_mask(history != PAD, self.causal, cache.start)  # [B, 1, T, Tk]
        cross = None
        if memory is not None:
            assert src_valid is not None, "cross-attention needs the source's real positions"
            cross = cross_attention_mask(src_valid, tokens.shape[1])
        return self.stack(self.embed(tokens, pos, places, numbers), mask, pos, k_pos, memory, cross, cache)


def make_encoder(cfg, vocab_size: int, max_len: int, digit_ids: torch.Tensor | None = None) -> nn.Module:
    """The encoder of a classifier or tagger: the transformer ``Encoder`` or, with a recurrent
    ``model.family`` (lstm, rnn, stack_rnn, tape_rnn), a recurrent network (``models/recurrent.py``);
    each maps ``[B, T]`` tokens to ``[B, T, d_model]``."""
    if cfg.family != "transformer":
        return recurrent_encoder(cfg, vocab_size)
    return Encoder(cfg, vocab_size, max_len, "encoder", cfg.causal_encoder, cfg.n_layers, digit_ids)


class Classifier(Hookable):
    """Encoder, then pooling, then an MLP head. Pooling: the mean over real tokens, the first or
    last position, all positions flattened (R0), or ``slot``: an empty ``<pad>`` position is
    appended and the answer read there (R1's padded variant)."""

    def __init__(self, cfg, vocab_size: int, max_len: int, width: int, digit_ids: torch.Tensor | None = None):
        super().__init__()
        self.encoder = make_encoder(cfg, vocab_size, max_len, digit_ids)
        self.pooling, self.width = cfg.pooling, width
        d_in = cfg.d_model * (width if cfg.pooling == "flatten" else 1)
        self.head = mlp_head(d_in, cfg.head_hidden, vocab_size)
        hookable(self, "", ("pooled", "logits"))
        self.hooks_last = True

    def forward(self, batch: Batch) -> torch.Tensor:
        tokens = self.encoder_tokens(batch.inputs)
        pooled = self.pool(self.encoder(tokens), tokens)
        if self.tap is None:
            return self.head(pooled)  # [B, V]
        return self.tap("logits", self.head(self.tap("pooled", pooled)))

    def encoder_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """The tokens ``[B, T']`` the encoder reads for inputs ``[B, T]``: as they are, padded to the
        width of flatten pooling, or with the empty slot appended (slot pooling)."""
        if self.pooling == "flatten":  # a fixed-width input: pad or reject
            if tokens.shape[1] > self.width:
                raise ValueError(f"flatten pooling was built for width {self.width}, got {tokens.shape[1]}")
            tokens = F.pad(tokens, (0, self.width - tokens.shape[1]), value=PAD)
        if self.pooling == "slot":
            tokens = F.pad(tokens, (0, 1), value=PAD)  # the zero-vector slot of R1
        return tokens

    def pool(self, h: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``h [B, T, d]`` over ``tokens [B, T]`` (from ``encoder_tokens``) -> ``[B, d]`` (flatten:
        ``[B, T * d]``)."""
        if self.pooling == "mean":
            valid = (tokens != PAD).unsqueeze(-1).float()  # [B, T, 1]
            pooled = (h * valid).sum(1) / valid.sum(1).clamp(min=1)
        elif self.pooling == "first":
            pooled = h[:, 0]
        elif self.pooling in ("last", "slot"):
            pooled = h[:, -1]
        else:
            pooled = h.flatten(1)  # [B, T * d]
        return pooled


class Tagger(Hookable):
    """Encoder and one prediction per input position (also the masked-token layout's model)."""

    def __init__(self, cfg, vocab_size: int, max_len: int, digit_ids: torch.Tensor | None = None):
        super().__init__()
        self.encoder = make_encoder(cfg, vocab_size, max_len, digit_ids)
        self.head = mlp_head(cfg.d_model, cfg.head_hidden, vocab_size)
        hookable(self, "", ("logits",))
        self.hooks_last = True

    def forward(self, batch: Batch) -> torch.Tensor:
        logits = self.head(self.encoder(batch.inputs))  # [B, T, V]
        return logits if self.tap is None else self.tap("logits", logits)


class CausalLM(Hookable):
    """Decoder-only: a causal stack over ``prompt <sep> answer``, next-token logits."""

    def __init__(self, cfg, vocab_size: int, max_len: int, digit_ids: torch.Tensor | None = None):
        super().__init__()
        self.decoder = Encoder(cfg, vocab_size, max_len, "decoder", True, cfg.n_layers, digit_ids, answer="after_sep")
        self.head = nn.Linear(cfg.d_model, vocab_size)
        hookable(self, "", ("logits",))
        self.hooks_last = True

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.logits(batch.inputs)

    def logits(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:  # [B, T] -> [B, T, V]
        logits = self.head(self.decoder(tokens, cache=cache))
        return logits if self.tap is None else self.tap("logits", logits)

    def start(self, prompt: torch.Tensor, max_new: int) -> tuple[torch.Tensor, KVCache]:
        """Incremental decoding: run the left-padded ``prompt [B, P]`` into a new cache with room
        for ``max_new`` more tokens; returns the next-token logits ``[B, V]`` and the cache."""
        cache = KVCache(prompt.shape[0], prompt.shape[1] + max_new, prompt.device)
        return self.logits(prompt, cache)[:, -1], cache

    def step(self, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Append ``tokens [B]`` to the cache; next-token logits ``[B, V]``."""
        return self.logits(tokens[:, None], cache)[:, -1]


class Seq2Seq(Hookable):
    """Encoder-decoder: bidirectional encoder; causal decoder with cross-attention."""

    def __init__(self, cfg, vocab_size: int, max_len: int, digit_ids: torch.Tensor | None = None):
        super().__init__()
        self.encoder = Encoder(cfg, vocab_size, max_len, "encoder", False, cfg.n_layers, digit_ids)
        n_dec = cfg.n_decoder_layers or cfg.n_layers
        self.decoder = Encoder(cfg, vocab_size, max_len, "decoder", True, n_dec, digit_ids, cross=True, answer="all")
        self.head = nn.Linear(cfg.d_model, vocab_size)
        hookable(self, "", ("logits",))
        self.hooks_last = True

    def forward(self, batch: Batch) -> torch.Tensor:
        memory = self.encoder(batch.inputs)
        assert batch.decoder_inputs is not None, "a seq2seq batch has decoder inputs"
        return self.decode(batch.decoder_inputs, memory, batch.inputs != PAD)

    def encode(self, src: torch.Tensor) -> torch.Tensor:  # [B, S] -> [B, S, d]
        return self.encoder(src)

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, src_valid: torch.Tensor,
               cache: KVCache | None = None) -> torch.Tensor:
        """``tgt [B, T]`` decoder inputs (``<bos>`` first) -> logits ``[B, T, V]``."""
        logits = self.head(self.decoder(tgt, memory, src_valid, cache))
        return logits if self.tap is None else self.tap("logits", logits)

    def start(self, src: torch.Tensor, max_new: int) -> tuple[torch.Tensor, KVCache]:
        """Incremental decoding: encode ``src [B, S]``, run ``<bos>``; logits ``[B, V]``, cache."""
        cache = KVCache(src.shape[0], max_new + 1, src.device)
        cache.context.update(memory=self.encode(src), src_valid=src != PAD)
        bos = torch.full((src.shape[0], 1), BOS, dtype=torch.long, device=src.device)
        return self.step(bos[:, 0], cache), cache

    def step(self, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Append ``tokens [B]`` to the decoder cache; next-token logits ``[B, V]``."""
        ctx = cache.context
        return self.decode(tokens[:, None], ctx["memory"], ctx["src_valid"], cache)[:, -1]


def check_fits(kind: str, layout: str, task_name: str) -> None:
    if kind not in FITS[layout]:
        fits = [name for name, kinds in FITS.items() if kind in kinds]
        raise ConfigError(
            f"layout {layout!r} cannot learn task {task_name!r} (a {kind} task); allowed layouts: {', '.join(fits)}"
        )


def build_model(cfg, layout: str, task, widths: tuple[int, int]) -> nn.Module:
    """Build the model for ``layout`` on ``task``; rejects a task/layout pair that cannot fit.

    ``widths`` are the widths of a formatted batch (inputs, labels), used for the positional
    table (``PositionalConfig.table_size``) and for flatten pooling.
    """
    check_fits(task.kind, layout, task.name)
    if cfg.family != "transformer" and layout not in RECURRENT_LAYOUTS:
        raise ConfigError(f"model.family={cfg.family!r} stands in for an encoder; layout {layout!r} has a decoder; "
                          f"allowed layouts: {', '.join(RECURRENT_LAYOUTS)}")
    if cfg.pooling in ("flatten", "slot") and layout != "classifier":
        raise ConfigError(f"model.pooling={cfg.pooling!r} only applies to the classifier layout, not {layout!r}")
    cfg.positions.check_layout(layout)
    digit_ids = digits_of(cfg, task)
    vocab_size = len(task.vocab)
    max_len = cfg.positions.table_size(max(widths))
    model: nn.Module
    if layout == "classifier":
        model = Classifier(cfg, vocab_size, max_len, widths[0], digit_ids)
    elif layout in ("tagger", "masked"):
        model = Tagger(cfg, vocab_size, max_len, digit_ids)
    elif layout == "causal":
        model = CausalLM(cfg, vocab_size, max_len, digit_ids)
    else:
        model = Seq2Seq(cfg, vocab_size, max_len, digit_ids)
    if init_of(cfg.init, layout) == "small":
        model.apply(_init_small)
    return model


def init_of(init: str, layout: str) -> str:
    """``model.init=auto``: PyTorch's initialisation for the encoder-decoder, whose
    cross-attention finds the source positions far sooner from it (copy, reverse and the lookup
    table at seq2seq: ``docs/results/time_to_solve.md``), GPT-2's small one for the others."""
    if init != "auto":
        return init
    return "torch" if layout == "seq2seq" else "small"


def digits_of(cfg, task) -> torch.Tensor | None:
    """The ids that count as digits for digit places, ``model.digit_positions`` and the number
    embedding (with ``model.symbol_positions``: every symbol of the task's vocabulary); None when
    no option reads them. A task that is not made of numbers is refused (``PositionalConfig.check_task``)."""
    if cfg.symbol_positions:  # every task symbol counts (not the specials: <pad>, <sep>, ...)
        return torch.arange(len(SPECIALS), len(task.vocab))
    cfg.positions.check_task(task)
    if cfg.positions.needs_digits is None:
        return None
    return torch.tensor([task.vocab.id(str(d)) for d in range(10)])


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
