"""Token embedding, position ids, and the positional schemes that add to the embeddings.

Positional schemes plug in at one of three points (``model.positional``):

========== ============================ ==============================================
scheme     plug point                   module
========== ============================ ==============================================
none       nothing (NoPE)               causal models still see order through the mask
sinusoidal added to the embeddings      ``sinusoidal`` below
learned    added to the embeddings      an ``nn.Embedding(max_len, d)`` below
abacus     added to the embeddings      ``abacus.py``: index of a digit in its number
rope       queries and keys             ``rope.py``
alibi      attention scores             ``alibi.py``
relative   attention scores             ``relative_bias.py`` (T5 buckets, learned)
========== ============================ ==============================================

Positions count real tokens: ``position = (number of non-pad tokens so far) - 1``, so a
left-padded causal prompt and a right-padded encoder input both start at position 0.

With ``model.random_positions`` (Ruoss et al. 2023) the positions of a training sequence of
``T`` tokens are a sorted random subset of ``0 .. max_len-1``, drawn per row and per forward,
so the model sees every position up to ``max_len`` while training on short sequences and can
rely only on the order of positions. At evaluation positions are the plain ``0 .. T-1``
(deterministic, and the same in cached and uncached decoding); every such position up to
``max_len`` was seen in training. It applies to every scheme that uses positions (all but
``none`` and ``abacus``).

With ``model.digit_positions`` (position coupling, Cho et al. 2024) every scheme uses the digit
places of ``abacus.py`` instead of sequence positions: ``learned`` on digit places is ``abacus``
(a random offset per row while training), ``rope``/``alibi``/``relative`` then see distances
between places (no offset: they ignore a common shift).

With ``model.symbol_positions`` (position coupling by index) every task symbol counts as a
"digit" and places are counted from the left in every run of symbols: the ``i``-th symbol of the
prompt and the ``i``-th token of the answer share position ``i`` (``<sep>`` and the other specials
have 0). A scratchpad token that reads "the input symbol of my index" (``tasks/scratchpad.py``)
then meets the same distances at every length.

With ``model.place_embedding`` a learned embedding of each digit's place in its number (the
places of ``abacus``, without a random offset) is added on top of whatever the scheme gives, so
a model keeps the order of its tokens (sequence positions) and also sees which digits have the
same significance (Abacus embeddings, McLeish et al. 2024, used beside sequence positions).

With ``model.number_embedding`` a learned embedding of which number each digit belongs to (the
first operand, the second, the answer: ``abacus.number_index``) is added too. Digit places alone
make the units of both operands look alike to an attention head (same token embeddings, same
place); with the number index a head can read one operand's digit and another head the other's,
and the index does not depend on how many digits the numbers have.

With ``model.positions_from=both`` (encoder inputs only: classifier, tagger, masked) an absolute
scheme also encodes each token's distance to the last real token: ``sinusoidal`` spends half of
the channels on each count, ``learned`` adds a second table. A rule such as "position i reads the
token i places from the end" (reversal) is then the same at every length, so it transfers from
short training sequences to long ones (a length curriculum), as length-difference encodings do in
length-controlled generation (Takase & Okazaki 2019).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from toyformer.errors import ConfigError
from toyformer.models.positional.abacus import Answer, digit_places, number_index, random_offset
from toyformer.models.hookpoints import hookable
from toyformer.models.kernels import Dropout
from toyformer.tasks.base import PAD

MAX_NUMBERS = 16  # rows of the number-index table; a later number shares the last row


def positions(tokens: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` token ids -> ``[B, T]`` position ids, counted from the first non-pad token."""
    return ((tokens != PAD).long().cumsum(-1) - 1).clamp(min=0)


def randomise(pos: torch.Tensor, max_len: int) -> torch.Tensor:
    """Map plain positions ``[B, T]`` (values < T) onto a sorted random subset of ``0..max_len-1``
    per row (uses the global torch generator, which the training loop seeds and checkpoints)."""
    b, t = pos.shape
    if t > max_len:
        raise ConfigError(
            f"model.max_len={max_len} is shorter than a sequence of {t} tokens; random positions "
            f"need max_len >= the longest sequence"
        )
    chosen = torch.rand(b, max_len, device=pos.device).topk(t, dim=-1).indices.sort(-1).values  # [B, T]
    return chosen.gather(1, pos)


def from_end(tokens: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` tokens and their positions -> ``[B, T]`` real tokens after each one (0 at the last)."""
    n_real = (tokens != PAD).sum(-1, keepdim=True)  # [B, 1]
    return (n_real - 1 - pos).clamp(min=0)


def sinusoidal(pos: torch.Tensor, d_model: int) -> torch.Tensor:
    """The fixed encoding of "Attention is all you need": ``[B, T]`` positions -> ``[B, T, d]``."""
    half = torch.arange(0, d_model, 2, device=pos.device, dtype=torch.float32)  # [d/2]
    freq = torch.exp(-math.log(10000.0) * half / d_model)
    angle = pos.unsqueeze(-1).float() * freq  # [B, T, d/2]
    # sin in the even channels, cos in the odd ones (built out of place: vmap, for replicas)
    return torch.stack([angle.sin(), angle.cos()], -1).flatten(-2)[..., :d_model]


class Embedder(nn.Module):
    """Token embedding (the ``<pad>`` row is zero) plus an additive positional encoding.

    ``positions(tokens)`` gives the ids the scheme uses (sequence positions, or digit places for
    ``abacus``); ``forward(tokens, pos)`` embeds. The two are separate so that a KV cache can
    compute positions over the whole decoded history and embed only the new tokens.
    """

    def __init__(self, vocab_size: int, cfg, max_len: int, digit_ids: torch.Tensor | None = None,
                 answer: Answer = "none"):
        super().__init__()
        d = cfg.d_model
        self.tok = nn.Embedding(vocab_size, d, padding_idx=PAD)
        self.positional, self.max_len, self.d_model = cfg.positional, max_len, d
        self.random = cfg.random_positions
        # positions are digit places (or, with symbol_positions, indices of symbols counted from the left)
        self.digits = cfg.positional == "abacus" or cfg.digit_positions or cfg.symbol_positions
        self.absolute = cfg.positional in ("learned", "sinusoidal", "abacus")  # added to the embeddings
        self.pos = nn.Embedding(max_len, d) if cfg.positional in ("learned", "abacus") else None
        self.both_ends = cfg.positions_from == "both"
        self.pos_end = nn.Embedding(max_len, d) if self.both_ends and self.pos is not None else None
        self.place = nn.Embedding(max_len, d) if cfg.place_embedding else None
        self.number = nn.Embedding(MAX_NUMBERS, d) if cfg.number_embedding else None
        if digit_ids is not None:  # abacus: which tokens are digits, and which are answer
            self.register_buffer("digit_ids", digit_ids, persistent=False)
            self.answer = "all" if cfg.symbol_positions else answer
        self.drop = Dropout(cfg.dropout)
        # hook points: every term added to the token embedding (models/hookpoints.py)
        learned_end = self.pos_end is not None
        points = ("tok", *(("place",) if self.place is not None else ()),
                  *(("number",) if self.number is not None else ()),
                  *(("pos",) if self.pos is not None or cfg.positional == "sinusoidal" else ()),
                  *(("pos_end",) if learned_end else ()))
        hookable(self, "embed", points)

    def positions(self, tokens: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T]
        if self.digits:  # abacus, position coupling; relative schemes need no offset
            places = digit_places(tokens, self.digit_ids, self.answer)
            return random_offset(places, self.max_len) if self.training and self.absolute else places
        pos = positions(tokens)
        return randomise(pos, self.max_len) if self.random and self.training else pos

    def places(self, tokens: torch.Tensor) -> torch.Tensor | None:  # [B, T] -> [B, T] digit places
        """The digit places ``model.place_embedding`` adds (None without it)."""
        return None if self.place is None else digit_places(tokens, self.digit_ids, self.answer)

    def numbers(self, tokens: torch.Tensor) -> torch.Tensor | None:  # [B, T] -> [B, T] number index
        """Which number each digit is in, ``model.number_embedding`` adds (None without it)."""
        return None if self.number is None else number_index(tokens, self.digit_ids)

    def forward(self, tokens: torch.Tensor, pos: torch.Tensor, places: torch.Tensor | None = None,
                numbers: torch.Tensor | None = None) -> torch.Tensor:  # [B, T] -> [B, T, d]
        tap = self.tap if self.tap is not None else lambda point, term: term
        x = tap("tok", self.tok(tokens))
        if self.place is not None:
            x = x + tap("place", self.place(places.clamp(max=self.max_len - 1)))
        if self.number is not None:
            x = x + tap("number", self.number(numbers.clamp(max=MAX_NUMBERS - 1)))
        end = from_end(tokens, pos) if self.both_ends else None  # [B, T]
        if self.pos is not None:
            x = x + tap("pos", self.pos(pos.clamp(max=self.max_len - 1)))
            if end is not None:
                x = x + tap("pos_end", self.pos_end(end.clamp(max=self.max_len - 1)))
        elif self.positional == "sinusoidal" and end is not None:  # half the channels for each end
            half = self.d_model // 2
            x = x + tap("pos", torch.cat([sinusoidal(pos, self.d_model - half), sinusoidal(end, half)], -1))
        elif self.positional == "sinusoidal":
            x = x + tap("pos", sinusoidal(pos, self.d_model))
        return self.drop(x)
