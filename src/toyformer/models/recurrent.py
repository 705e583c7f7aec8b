"""The recurrent families (``model.family=lstm|rnn|stack_rnn|tape_rnn``): a recurrent network
where a transformer layout has its encoder, so that "can a transformer learn this?" is answered
beside models that read their input one token at a time and carry a state.

As in the Chomsky-hierarchy reference code (``models/rnn.py``): the tokens enter as one-hot
vectors, the network (``model.d_model`` hidden units) runs left to right, and its outputs go
through a ReLU into the layout's head. ``lstm`` is a ``torch.nn.LSTM`` and ``rnn`` an Elman
network (``torch.nn.RNN``, tanh), each of ``model.n_layers`` layers; ``stack_rnn`` and
``tape_rnn`` are an Elman network with an external memory (``memory_rnn.py``), one layer as in
the reference. None has a positional scheme: order is what a recurrence reads. Each is
unidirectional, so an answer read at a position sees the tokens up to it, and right padding after
the last counted position changes nothing.

``torch.func.vmap`` has no batching rule for ``torch.nn.LSTM`` (nor a way through the memory
networks' loops): recurrent seeds train one after another, never as batched replicas.

>>> enc = RecurrentEncoder(vocab_size=7, hidden=16, n_layers=1)
>>> enc(torch.tensor([[5, 6, 4, 0]])).shape
torch.Size([1, 4, 16])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RECURRENT = ("lstm", "rnn", "stack_rnn", "tape_rnn")


class RecurrentEncoder(nn.Module):
    """``[B, T]`` token ids -> ``[B, T, hidden]``: one-hot, ``nn.LSTM`` (or ``nn.RNN``), ReLU."""

    def __init__(self, vocab_size: int, hidden: int, n_layers: int, dropout: float = 0.0, cell: str = "lstm"):
        super().__init__()
        self.vocab_size = vocab_size
        make = nn.LSTM if cell == "lstm" else nn.RNN
        layer = make(vocab_size, hidden, num_layers=n_layers, batch_first=True,
                     dropout=dropout if n_layers > 1 else 0.0)
        setattr(self, cell, layer)  # the attribute names the cell: enc.lstm, enc.rnn
        self.cell = cell

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = F.one_hot(tokens, self.vocab_size).float()  # [B, T, V]
        out, _ = getattr(self, self.cell)(x)  # [B, T, hidden]
        return F.relu(out)


def recurrent_encoder(cfg, vocab_size: int) -> nn.Module:
    """The encoder of ``cfg.family`` (one of ``RECURRENT``)."""
    if cfg.family in ("stack_rnn", "tape_rnn"):
        from toyformer.models.memory_rnn import MemoryEncoder

        return MemoryEncoder(vocab_size, cfg.d_model, cfg.family)
    return RecurrentEncoder(vocab_size, cfg.d_model, cfg.n_layers, cfg.dropout, cfg.family)
