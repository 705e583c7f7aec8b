"""Recurrent networks with an external memory: the Chomsky-hierarchy suite's memory-augmented
baselines (Deletang et al. 2023), written after the designs of the reference code's
``models/stack_rnn.py`` and ``models/tape_rnn.py``.

Both are an Elman network (tanh, ``hidden`` units) whose input at each step is the token (one-hot)
beside what the memory shows (the top of the stack, the tape cell under the head); from its new
state it chooses, by a softmax, a mixture of actions, and the memory becomes the same mixture of
what each action would make of it. Everything is differentiable: no discrete choice is sampled.

- ``stack_rnn`` (Joulin & Mikolov 2015): a stack of ``CELL``-wide vectors; actions push (a
  value computed from the state; every cell moves one down), pop (every cell moves one up, zeros
  come in at the bottom) and no-op. A stack lets a network reverse a string, or run a pushdown
  automaton, at any length.
- ``tape_rnn`` (the reference's ``TapeInputLengthJumpCore``, after Suzgun et al.'s Baby-NTM): a
  circular tape of ``CELL``-wide vectors. Each step writes a value (an MLP of the state) into the
  cell under the head, then moves the head: stay, one cell left or right, or the input's length
  left or right, which lets it copy the input (duplicate, odds first) at any length.

Memory size: the reference fixes it (30 stack cells, 40 tape cells); here it is the number of
tokens the network reads, so a stack never overflows and the tape never wraps over cells it
still needs, at any test length. The input length for the tape's jumps is the number of tokens
read before the answer slots (every token that is neither ``<pad>`` nor the ``<unk>`` of a slot).

>>> enc = MemoryEncoder(vocab_size=7, hidden=16, family="stack_rnn")
>>> enc(torch.tensor([[5, 6, 4, 4, 0]])).shape
torch.Size([1, 5, 16])
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from toyformer.tasks.base import PAD, UNK

CELL = 8  # width of a stack or tape cell (the reference's stack_cell_size, memory_cell_size)
WRITE_HIDDEN = (64, 64)  # the tape's write MLP (the reference's mlp_layers_size)


def push_pop(stack: torch.Tensor, actions: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``stack [B, S, C]`` (cell 0 on top), ``actions [B, 3]`` (push, pop, no-op; each row sums to
    1), ``value [B, C]`` -> the new stack, the actions' mixture.

    >>> s = torch.tensor([[[1.0], [2.0], [0.0]]])
    >>> push_pop(s, torch.tensor([[1.0, 0, 0]]), torch.tensor([[7.0]])).flatten().tolist()
    [7.0, 1.0, 2.0]
    >>> push_pop(s, torch.tensor([[0, 1.0, 0]]), torch.tensor([[7.0]])).flatten().tolist()
    [2.0, 0.0, 0.0]
    """
    pushed = torch.cat([value[:, None], stack[:, :-1]], 1)  # [B, S, C]: everything one down
    popped = torch.cat([stack[:, 1:], torch.zeros_like(stack[:, :1])], 1)  # everything one up
    push, pop, stay = (a[:, None, None] for a in actions.unbind(-1))
    return push * pushed + pop * popped + stay * stack


def rolled(tape: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``tape [B, S, C]`` rolled by ``shift [B]`` cells: ``out[b, m] = tape[b, (m - shift[b]) % S]``.

    >>> rolled(torch.arange(4.0).view(1, 4, 1), torch.tensor([1])).flatten().tolist()
    [3.0, 0.0, 1.0, 2.0]
    """
    s = tape.shape[1]
    index = (torch.arange(s, device=tape.device)[None] - shift[:, None]) % s  # [B, S]
    return tape.gather(1, index[..., None].expand(-1, -1, tape.shape[2]))


def tape_moves(tape: torch.Tensor, actions: torch.Tensor, written: torch.Tensor, jump: torch.Tensor) -> torch.Tensor:
    """``tape [B, S, C]`` (cell 0 under the head), ``actions [B, 5]`` (stay, left, right, jump left,
    jump right), ``written [B, C]`` (the value for the current cell), ``jump [B]`` (the input's
    length) -> the new tape: the value written, then the head moved by the actions' mixture."""
    tape = torch.cat([written[:, None], tape[:, 1:]], 1)  # [B, S, C]
    one = torch.ones_like(jump)
    # "left" brings cell m + 1 under the head (the reference's roll(eye, -1) on the cells)
    moves = [tape, rolled(tape, -one), rolled(tape, one), rolled(tape, -jump), rolled(tape, jump)]
    return cast(torch.Tensor, sum(actions[:, i, None, None] * m for i, m in enumerate(moves)))


def input_length(tokens: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` tokens -> ``[B]`` tokens read before the answer slots: neither ``<pad>`` nor ``<unk>``.

    >>> input_length(torch.tensor([[5, 6, 7, 4, 4, 0]])).tolist()
    [3]
    """
    return ((tokens != PAD) & (tokens != UNK)).sum(-1)


class MemoryEncoder(nn.Module):
    """``[B, T]`` token ids -> ``[B, T, hidden]``: one-hot, the memory network over the tokens, ReLU."""

    def __init__(self, vocab_size: int, hidden: int, family: str):
        super().__init__()
        if family not in ("stack_rnn", "tape_rnn"):
            raise ValueError(f"unknown memory family {family!r}")
        self.vocab_size, self.hidden, self.family = vocab_size, hidden, family
        self.cell = nn.RNNCell(vocab_size + CELL, hidden)  # tanh, as the reference's VanillaRNN
        if family == "stack_rnn":
            self.value: nn.Module = nn.Linear(hidden, CELL)
            self.actions = nn.Linear(hidden, 3)
        else:
            widths = (hidden, *WRITE_HIDDEN)
            layers = [m for a, b in zip(widths, widths[1:]) for m in (nn.Linear(a, b), nn.ReLU())]
            self.value = nn.Sequential(*layers, nn.Linear(widths[-1], CELL))
            self.actions = nn.Linear(hidden, 5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, t = tokens.shape
        x = F.one_hot(tokens, self.vocab_size).float()  # [B, T, V]
        h = x.new_zeros(b, self.hidden)  # [B, hidden]
        memory = x.new_zeros(b, t, CELL)  # [B, S=T, C]: a cell for every token read
        jump = input_length(tokens)  # [B] the tape's jump
        out = []
        for i in range(t):
            h = self.cell(torch.cat([x[:, i], memory[:, 0]], -1), h)
            actions = self.actions(h).softmax(-1)
            if self.family == "stack_rnn":
                memory = push_pop(memory, actions, self.value(h))
            else:
                memory = tape_moves(memory, actions, self.value(h), jump)
            out.append(h)
        return F.relu(torch.stack(out, 1))  # [B, T, hidden]
