"""Token embedding, position ids, and the positional schemes that add to the embeddings
(``sinusoidal``, ``learned``; ``abacus`` is ``learned`` on digit places). The table of every
scheme and where it plugs in is ``toyformer.config.positional.SCHEMES``.

Positions count real tokens: ``position = (number of non-pad tokens so far) - 1``, so a
left-padded causal prompt and a right-padded encoder input both start at position 0.

With ``model.random_positions`` (Ruoss et al. 2023) the positions of a training sequence of
``T`` tokens are a sorted random subset of ``0 .. max_len-1``, drawn per row and per forward,
so the model sees every position up to ``max_len`` while training on short sequences and can
rely only on the order of positions. At evaluation positions are the plain ``0 .. T-1``
(deterministic, and the same in cached and uncached decoding); every such position up to
``max_len`` was seen in training. It applies to every scheme that reads sequence positions
(``Scheme.sequence``).

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

from toyformer.config.positional import check_random_fits
from toyformer.models.positional import build
from toyformer.models.positional.abacus import Answer, digit_places, number_index, random_offset
from toyformer.models.hookpoints import Hookable, hookable
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
    check_random_fits(max_len, t)
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


class Sinusoidal(nn.Module):
    """The scheme ``sinusoidal``: ``[B, T]`` positions -> ``[B, T, width]`` fixed sines and cosines."""

    def __init__(self, width: int):
        super().__init__()
        self.width = width

    @classmethod
    def from_config(cls, cfg, max_len: int, width: int) -> Sinusoidal:
        return cls(width)

    def forward(self, pos: torch.Tensor) -> torch.Tensor:
        return sinusoidal(pos, self.width)


class LearnedPositions(nn.Embedding):
    """The schemes ``learned`` and ``abacus``: a learned table of ``max_len`` rows; positions past
    its end share its last row."""

    @classmethod
    def from_config(cls, cfg, max_len: int, width: int) -> LearnedPositions:
        return cls(max_len, width)

    def forward(self, pos: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T, width]
        return super().forward(pos.clamp(max=self.num_embeddings - 1))


class Embedder(Hookable):
    """Token embedding (the ``<pad>`` row is zero) plus an additive positional encoding.

    ``positions(tokens)`` gives the ids the scheme uses (sequence positions, or digit places for
    ``abacus``); ``forward(tokens, pos)`` embeds. The two are separate so that a KV cache can
    compute positions over the whole decoded history and embed only the new tokens.

    With ``model.positions_from=both`` the scheme encodes the distance to the end too: a scheme
    with a table gets a second table (``pos_end``), summed; a fixed function spends half of the
    channels on each count.
    """

    digit_ids: torch.Tensor  # [10] or the task's symbols, a buffer (with digit places)
    answer: Answer

    def __init__(self, vocab_size: int, cfg, max_len: int, digit_ids: torch.Tensor | None = None,
                 answer: Answer = "none"):
        super().__init__()
        d = cfg.d_model
        positional = cfg.positions
        scheme = positional.scheme
        self.tok = nn.Embedding(vocab_size, d, padding_idx=PAD)
        self.max_len, self.d_model = max_len, d
        self.random = positional.random
        # positions are digit places (or, with symbol_positions, indices of symbols counted from the left)
        self.digits = positional.coupled
        self.absolute = scheme.plug == "embedding"  # added to the embeddings
        self.both_ends = positional.both_ends
        self.split = self.both_ends and not scheme.table  # a fixed function: half the channels for each end
        width = d - d // 2 if self.split else d
        self.pos = build(scheme, cfg, max_len=max_len, width=width) if self.absolute else None
        self.pos_end = (build(scheme, cfg, max_len=max_len, width=d - width if self.split else d)
                        if self.both_ends and self.pos is not None else None)
        self.has_table = scheme.table
        self.place = nn.Embedding(max_len, d) if cfg.place_embedding else None
        self.number = nn.Embedding(MAX_NUMBERS, d) if cfg.number_embedding else None
        if digit_ids is not None:  # abacus: which tokens are digits, and which are answer
            self.register_buffer("digit_ids", digit_ids, persistent=False)
            self.answer = "all" if cfg.symbol_positions else answer
        self.drop = Dropout(cfg.dropout)
        # hook points: every term added to the token embedding (models/hookpoints.py)
        points = ("tok", *(("place",) if self.place is not None else ()),
                  *(("number",) if self.number is not None else ()),
                  *(("pos",) if self.pos is not None else ()),
                  *(("pos_end",) if self.pos_end is not None and not self.split else ()))
        hookable(self, "embed", points)

    @property
    def table(self) -> nn.Embedding | None:
        """The position embeddings, one row per position (a scheme with a table), or None."""
        return self.pos if self.has_table and isinstance(self.pos, nn.Embedding) else None

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
        if self.place is not None and places is not None:
            x = x + tap("place", self.place(places.clamp(max=self.max_len - 1)))
        if self.number is not None and numbers is not None:
            x = x + tap("number", self.number(numbers.clamp(max=MAX_NUMBERS - 1)))
        if self.pos is None:
            return self.drop(x)
        if self.pos_end is None:
            return self.drop(x + tap("pos", self.pos(pos)))
        end = from_end(tokens, pos)  # [B, T]
        if self.split:
            return self.drop(x + tap("pos", torch.cat([self.pos(pos), self.pos_end(end)], -1)))
        x = x + tap("pos", self.pos(pos))
        return self.drop(x + tap("pos_end", self.pos_end(end)))
