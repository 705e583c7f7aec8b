"""The rules a task's examples follow, checked on a first small batch before a run uses a task.

A task from a user's file (``--task-file``) can break the protocol in ways that would otherwise
surface as a shape error deep inside a model, or train silently on garbage. ``check_task``
draws four examples (and looks at ``domain()``) and names the first broken rule:

- ``sample(n, generator)`` returns ``Examples`` whose ``input [n, L]`` and ``target [n, L']``
  are 2-D ``torch.long`` tensors with ``n`` rows;
- every id is in the task's vocabulary (``0 <= id < len(vocab)``);
- ``<bos>``, ``<sep>`` and ``<unk>`` never occur (the layouts add them); ``<eos>`` only as the
  last token of a row;
- rows are right-padded: no token after a ``<pad>``, and at least one token per row;
- a ``classify`` task has one target column; a ``tag`` task one target per input column.

>>> check_task(get_task("reverse"))   # doctest: +SKIP
"""

from __future__ import annotations

import torch

from toyformer.errors import ConfigError
from toyformer.tasks.base import BOS, EOS, PAD, SEP, SPECIALS, UNK, Examples

KINDS = ("classify", "tag", "seq2seq")
PROBE_LENGTH = 16  # a longer task is checked (and its memory estimated) at this length


def own_length(task) -> int | None:
    """The task's length parameter (its field named by ``length_param``, default ``length``)."""
    value = getattr(task, getattr(task, "length_param", "length"), None)
    return value if isinstance(value, int) else None


def probe(task, n: int, length: int | None = None):
    """``n`` examples at ``length`` (default: the task's own), drawn at ``PROBE_LENGTH`` when that
    is longer; returns the examples and the length asked for."""
    length = length or own_length(task)
    g = torch.Generator().manual_seed(0)
    if length is not None and length > PROBE_LENGTH:
        return task.sample(n, g, length=PROBE_LENGTH), length
    return (task.sample(n, g, length=length) if length != own_length(task) else task.sample(n, g)), length


def check_task(task, n: int = 4) -> None:
    """Raise ConfigError naming ``task`` and the first rule its examples break."""
    name = getattr(task, "name", type(task).__name__)

    def broken(rule: str) -> ConfigError:
        return ConfigError(f"task {name!r} breaks the task protocol: {rule}")

    if getattr(task, "kind", None) not in KINDS:
        raise broken(f"kind={getattr(task, 'kind', None)!r}; allowed: {', '.join(KINDS)}")
    try:
        vocab_size = len(task.vocab)
        ex, _ = probe(task, n)
        domain = task.domain()
    except Exception as exc:  # noqa: BLE001 - the user's code: report it on one line
        raise broken(f"drawing {n} examples failed: {type(exc).__name__}: {exc}") from None
    _check_examples(ex, n, vocab_size, task.kind, broken)
    if domain is not None:
        _check_examples(domain, None, vocab_size, task.kind, lambda rule: broken(f"domain(): {rule}"))


def _check_examples(ex, n: int | None, vocab_size: int, kind: str, broken) -> None:
    if not isinstance(ex, Examples):
        raise broken(f"sample() returned {type(ex).__name__}; expected toyformer.Examples(input, target)")
    for side in ("input", "target"):
        t = getattr(ex, side)
        if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.dtype != torch.long:
            what = f"a {t.dim()}-d {t.dtype} tensor" if isinstance(t, torch.Tensor) else type(t).__name__
            raise broken(f"{side} is {what}; expected a 2-d torch.long tensor [n, length]")
        rows = ex.input.shape[0] if n is None else n
        if t.shape[0] != rows or t.shape[1] < 1:
            raise broken(f"{side} has shape {tuple(t.shape)}; expected [{rows}, length >= 1]")
        if t.numel() and (t.min() < 0 or t.max() >= vocab_size):
            bad = int(t.max()) if t.max() >= vocab_size else int(t.min())
            raise broken(f"{side} holds id {bad}, outside the vocabulary of {vocab_size} tokens (0..{vocab_size - 1})")
        for special in (BOS, SEP, UNK):
            if (t == special).any():
                raise broken(f"{side} holds {SPECIALS[special]}, which the layouts add themselves; allowed specials "
                             f"in examples: <pad> (padding, at the end), <eos> (last)")
        real = t != PAD
        if (real[:, 1:] & ~real[:, :-1]).any():
            raise broken(f"{side} has a token after <pad>; rows must be right-padded")
        if not real[:, 0].all():
            raise broken(f"{side} has a row without tokens")
        last = real.sum(1) - 1  # [n] index of each row's last token
        eos_before_end = (t == EOS) & (torch.arange(t.shape[1]) < last.unsqueeze(1))
        if eos_before_end.any():
            raise broken(f"{side} has <eos> before the last token of a row")
    if kind == "classify" and ex.target.shape[1] != 1:
        raise broken(f"a classify task has one target token per example; target has {ex.target.shape[1]} columns")
    if kind == "tag" and ex.target.shape[1] != ex.input.shape[1]:
        raise broken(f"a tag task has one target per input position; input has {ex.input.shape[1]} columns, "
                     f"target {ex.target.shape[1]}")
