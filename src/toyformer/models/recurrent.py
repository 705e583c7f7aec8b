"""The recurrent family (``model.family=lstm``): a ``torch.nn.LSTM`` where a transformer layout
has its encoder, so that "can a transformer learn this?" is answered beside a model that reads
its input one token at a time and carries a state.

As in the Chomsky-hierarchy reference code (``models/rnn.py``): the tokens enter as one-hot
vectors, the LSTM (``model.d_model`` hidden units, ``model.n_layers`` layers) runs left to right,
and its outputs go through a ReLU into the layout's head. It has no positional scheme: order is
what a recurrence reads. The LSTM is unidirectional, so an answer read at a position sees the
tokens up to it, and right padding after the last counted position changes nothing.

``torch.func.vmap`` has no batching rule for ``torch.nn.LSTM``: LSTM seeds train one after
another, never as batched replicas.

>>> enc = RecurrentEncoder(vocab_size=7, hidden=16, n_layers=1)
>>> enc(torch.tensor([[5, 6, 4, 0]])).shape
torch.Size([1, 4, 16])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RecurrentEncoder(nn.Module):
    """``[B, T]`` token ids -> ``[B, T, hidden]``: one-hot, ``nn.LSTM``, ReLU."""

    def __init__(self, vocab_size: int, hidden: int, n_layers: int, dropout: float = 0.0):
        super().__init__()
        self.vocab_size = vocab_size
        self.lstm = nn.LSTM(vocab_size, hidden, num_layers=n_layers, batch_first=True,
                            dropout=dropout if n_layers > 1 else 0.0)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = F.one_hot(tokens, self.vocab_size).float()  # [B, T, V]
        out, _ = self.lstm(x)  # [B, T, hidden]
        return F.relu(out)
