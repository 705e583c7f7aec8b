"""Formatting: turns task examples into what a layout consumes. Masks are derived from ``<pad>``.

The four layouts see an example ``input = 3 1 4``, ``target = 4 1 3`` as::

    classifier  inputs 3 1 4                      labels [class]          (target [n, 1])
    tagger      inputs 3 1 4                      labels 4 1 3            (one per position)
    causal      inputs 3 1 4 <sep> 4 1 3          labels . . . 4 1 3 <eos> (loss on the answer only)
    seq2seq     inputs 3 1 4  decoder <bos> 4 1 3  labels 4 1 3 <eos>
    masked      inputs 3 ? 4 4 1 ?                labels . 1 . . . 3      (BERT-style, R3)

The masked-token objective reads the whole example ``input ++ target`` with random tokens
replaced by ``<unk>`` (the mask token) and predicts them, in both halves; at evaluation the
whole target is masked, so the model answers the same question as the others.

Causal prompts are left-padded so that every row's answer starts in the same column (batched
greedy decoding appends one column at a time); positions are counted from the first real token.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import cast

import torch
import torch.nn.functional as F

from toyformer.tasks.base import BOS, EOS, PAD, SEP, UNK, Examples

IGNORE = -100  # label value that the loss and the metrics skip


@dataclass(frozen=True)
class Batch:
    """Model-ready tensors. ``labels`` uses ``IGNORE`` where nothing is predicted."""

    inputs: torch.Tensor  # [B, T] encoder input, or the whole causal sequence
    labels: torch.Tensor  # [B] classifier, else [B, T_out]
    decoder_inputs: torch.Tensor | None = None  # seq2seq: [B, T_out] target shifted right
    prompt_len: int = 0  # causal: column where the answer starts (labels start one earlier)

    def to(self, device) -> Batch:
        decoder = None if self.decoder_inputs is None else self.decoder_inputs.to(device)
        return Batch(self.inputs.to(device), self.labels.to(device), decoder, self.prompt_len)


def lengths(x: torch.Tensor) -> torch.Tensor:
    """Number of non-pad tokens per right-padded row: ``[n, T] -> [n]``."""
    return (x != PAD).sum(-1)


def with_eos(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Append ``<eos>`` to each right-padded answer that does not already end with one.

    Returns the answers ``[n, T + 1]`` and their lengths including ``<eos>`` ``[n]``. A
    one-token answer (a class, ``target [n, 1]``) is complete by itself and gets no ``<eos>``:
    predicting one would cost a tiny model capacity for nothing (R1).
    """
    n_tok = lengths(target)  # [n]
    if target.shape[1] == 1:
        return target.clone(), n_tok
    out = torch.nn.functional.pad(target, (0, 1), value=PAD)  # [n, T + 1]
    last = out.gather(1, (n_tok - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
    missing = (last != EOS) | (n_tok == 0)
    rows = torch.arange(len(out), device=out.device)
    out[rows[missing], n_tok[missing]] = EOS
    return out, n_tok + missing.long()


def format_batch(
    ex: Examples, layout: str, sep: bool = True, mask_prob: float = 0.15, generator: torch.Generator | None = None,
    prompt_loss: bool = False,
) -> Batch:
    """Turn examples into a ``Batch`` for ``layout`` (see the module docstring).

    ``prompt_loss`` (causal layout, training): plain language modelling, with loss on every next
    token of the prompt too, not only on the answer.

    ``mask_prob`` and ``generator`` apply to the masked layout: with a generator (training)
    each real token is masked with probability ``mask_prob``; without one (evaluation) the
    target is masked.
    """
    if layout == "masked":
        return masked_batch(ex, mask_prob, generator)
    if layout == "classifier":
        return Batch(ex.input, ex.target[:, 0])
    if layout == "tagger":
        width = max(ex.input.shape[1], ex.target.shape[1])
        inputs = torch.nn.functional.pad(ex.input, (0, width - ex.input.shape[1]), value=PAD)
        labels = torch.nn.functional.pad(ex.target, (0, width - ex.target.shape[1]), value=PAD)
        return Batch(inputs, labels.masked_fill(labels == PAD, IGNORE))
    answer, ans_len = with_eos(ex.target)  # [n, A], [n]
    if layout == "seq2seq":
        bos = torch.full_like(answer[:, :1], BOS)
        decoder_inputs = torch.cat([bos, answer[:, :-1]], 1)  # [n, A]
        decoder_inputs = decoder_inputs.masked_fill(decoder_inputs == EOS, PAD)
        return Batch(ex.input, answer.masked_fill(answer == PAD, IGNORE), decoder_inputs)
    if layout == "causal":
        prompt = causal_prompt(ex.input, sep)  # [n, P], left-padded
        seq = torch.cat([prompt, answer], 1)  # [n, P + A]
        labels = torch.full_like(seq, IGNORE)
        p = prompt.shape[1]
        labels[:, p - 1 : p - 1 + answer.shape[1]] = answer.masked_fill(answer == PAD, IGNORE)
        if prompt_loss:
            # the next prompt token, read from a real token (never from left padding)
            labels[:, : p - 1] = prompt[:, 1:].masked_fill((prompt[:, 1:] == PAD) | (prompt[:, :-1] == PAD), IGNORE)
        # the model reads seq[:, :-1] and predicts seq[:, 1:]
        return Batch(seq[:, :-1], labels[:, :-1], prompt_len=p)
    raise ValueError(f"unknown layout {layout!r}")


def masked_batch(ex: Examples, mask_prob: float, generator: torch.Generator | None) -> Batch:
    """BERT-style batch over ``input ++ target`` (each right-padded part packed together)."""
    n_in = lengths(ex.input)  # [n]
    seq = torch.full((len(ex), ex.input.shape[1] + ex.target.shape[1]), PAD, dtype=torch.long, device=ex.input.device)
    seq[:, : ex.input.shape[1]] = ex.input
    rows = torch.arange(len(ex), device=seq.device).unsqueeze(1)
    cols = n_in.unsqueeze(1) + torch.arange(ex.target.shape[1], device=seq.device)  # [n, T_out]
    is_target = torch.zeros_like(seq, dtype=torch.bool)
    keep = ex.target != PAD
    seq[rows.expand_as(cols)[keep], cols[keep]] = ex.target[keep]
    is_target[rows.expand_as(cols)[keep], cols[keep]] = True
    if generator is None:
        masked = is_target
    else:  # drawn on the CPU generator, so the same examples mask the same way on any device
        masked = (torch.rand(seq.shape, generator=generator) < mask_prob).to(seq.device) & (seq != PAD)
    labels = seq.masked_fill(~masked, IGNORE)
    return Batch(seq.masked_fill(masked, UNK), labels)


def causal_prompt(inputs: torch.Tensor, sep: bool = True) -> torch.Tensor:
    """Right-padded prompts ``[n, L]`` -> left-padded ``[n, L (+1)]`` ending with ``<sep>``."""
    n_tok = lengths(inputs)  # [n]
    width = inputs.shape[1] + int(sep)
    out = torch.full((len(inputs), width), PAD, dtype=inputs.dtype, device=inputs.device)
    if sep:
        out[:, -1] = SEP
    shift = width - int(sep) - n_tok  # [n] leading pads
    cols = torch.arange(inputs.shape[1], device=inputs.device).unsqueeze(0) + shift.unsqueeze(1)
    keep = torch.arange(inputs.shape[1], device=inputs.device).unsqueeze(0) < n_tok.unsqueeze(1)
    rows = torch.arange(len(inputs), device=inputs.device).unsqueeze(1).expand_as(cols)
    out[rows[keep], cols[keep]] = inputs[keep]
    return out


def answer_tokens(ex: Examples) -> torch.Tensor:
    """The reference answers as the decoders must produce them: ``[n, A]`` ending in ``<eos>``."""
    return with_eos(ex.target)[0]


def stack_batches(batches: list[Batch], layout: str) -> Batch:
    """``K`` batches of one layout (one per replica, same number of rows) -> one ``Batch`` whose
    tensors have a leading replica dimension: ``inputs [K, B, T]``, ``labels [K, B(, T_out)]``.

    Narrower batches are widened with padding that changes nothing a model computes at the
    counted positions: ``<pad>`` inputs (masked as keys, counted from the first real token as
    positions) and ``IGNORE`` labels, on the right; a causal batch is first padded on the left so
    that every replica's answer starts at the same column (``prompt_len``).
    """
    prompt_len = max(b.prompt_len for b in batches)
    if layout == "causal":  # align the answers: more left padding in front of shorter prompts
        batches = [Batch(F.pad(b.inputs, (prompt_len - b.prompt_len, 0), value=PAD),
                         F.pad(b.labels, (prompt_len - b.prompt_len, 0), value=IGNORE), None, prompt_len)
                   for b in batches]

    def stack(tensors: list[torch.Tensor], value: int) -> torch.Tensor:
        if tensors[0].dim() == 1:  # classifier labels [B]
            return torch.stack(tensors)
        width = max(t.shape[1] for t in tensors)
        return torch.stack([F.pad(t, (0, width - t.shape[1]), value=value) for t in tensors])

    decoder = None
    if batches[0].decoder_inputs is not None:
        decoder = stack(cast("list[torch.Tensor]", [b.decoder_inputs for b in batches]), PAD)
    return Batch(stack([b.inputs for b in batches], PAD), stack([b.labels for b in batches], IGNORE), decoder,
                 prompt_len)
