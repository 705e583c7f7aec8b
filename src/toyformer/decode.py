"""Batched greedy decoding for the causal and seq2seq layouts.

Every row decodes in parallel; a row that has produced ``<eos>`` is padded with ``<pad>`` from
then on, and decoding stops when every row is done or ``max_new`` tokens were produced.
"""

from __future__ import annotations

import torch

from toyformer.data import causal_prompt
from toyformer.tasks.base import BOS, EOS, PAD


@torch.no_grad()
def greedy(model, layout: str, inputs: torch.Tensor, max_new: int, sep: bool = True) -> torch.Tensor:
    """Greedy answers ``[B, max_new]`` (``<eos>`` included, ``<pad>`` after it) for right-padded
    task inputs ``[B, L]``.

    >>> answers = greedy(model, "seq2seq", examples.input, max_new=6)   # doctest: +SKIP
    """
    b = inputs.shape[0]
    done = torch.zeros(b, dtype=torch.bool, device=inputs.device)
    if layout == "causal":
        seq = causal_prompt(inputs, sep)  # [B, P]
        step = lambda s: model.logits(s)[:, -1]  # noqa: E731
    elif layout == "seq2seq":
        memory, src_valid = model.encode(inputs), inputs != PAD
        seq = torch.full((b, 1), BOS, dtype=torch.long, device=inputs.device)
        step = lambda s: model.decode(s, memory, src_valid)[:, -1]  # noqa: E731
    else:
        raise ValueError(f"greedy decoding applies to causal and seq2seq layouts, not {layout!r}")
    start = seq.shape[1]
    for _ in range(max_new):
        nxt = step(seq).argmax(-1)  # [B]
        nxt = nxt.masked_fill(done, PAD)
        done = done | (nxt == EOS)
        seq = torch.cat([seq, nxt.unsqueeze(1)], 1)
        if bool(done.all()):
            break
    out = seq[:, start:]
    return torch.nn.functional.pad(out, (0, max_new - out.shape[1]), value=PAD)  # [B, max_new]
