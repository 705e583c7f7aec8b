"""What every task shares: the vocabulary, the examples it draws, and the task protocol.

A task knows its vocabulary and how to draw examples; it never sees a model. Examples are token
ids in one vocabulary shared by inputs and targets, right-padded with ``<pad>`` (id 0).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Literal, Protocol, runtime_checkable

import torch

from toyformer.errors import ConfigError

SPECIALS = ("<pad>", "<bos>", "<eos>", "<sep>", "<unk>")
PAD, BOS, EOS, SEP, UNK = range(len(SPECIALS))

Kind = Literal["classify", "tag", "seq2seq"]


class Vocab:
    """Token strings <-> ids. Ids 0-4 are always ``<pad> <bos> <eos> <sep> <unk>``.

    >>> v = Vocab(["0", "1"])
    >>> v.encode("1 0 1".split()).tolist(), v.decode([6, 5, 2, 0])
    ([6, 5, 6], '1 0 <eos>')
    """

    def __init__(self, tokens: list[str] | tuple[str, ...]):
        tokens = tuple(tokens)
        clash = set(tokens) & set(SPECIALS)
        if clash or len(set(tokens)) != len(tokens):
            raise ValueError(f"task tokens must be unique and not special, got {sorted(clash)}")
        self.tokens: tuple[str, ...] = SPECIALS + tokens
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        return self.index[token]

    def encode(self, tokens: list[str]) -> torch.Tensor:
        return torch.tensor([self.index.get(t, UNK) for t in tokens], dtype=torch.long)

    def decode(self, ids, keep_pad: bool = False) -> str:
        """Ids to a space-separated string; stops after ``<eos>``, drops ``<pad>``."""
        out = []
        for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids):
            if i == PAD and not keep_pad:
                continue
            out.append(self.tokens[i])
            if i == EOS:
                break
        return " ".join(out)


@dataclass(frozen=True)
class Examples:
    """A batch of task examples: ``input [n, len_in]`` and ``target [n, len_out]`` token ids.

    Both are right-padded with ``<pad>``. For a ``classify`` task ``target`` is ``[n, 1]``.
    """

    input: torch.Tensor
    target: torch.Tensor

    def __len__(self) -> int:
        return self.input.shape[0]

    def __getitem__(self, idx) -> Examples:
        return Examples(self.input[idx], self.target[idx])

    def to(self, device) -> Examples:
        return Examples(self.input.to(device), self.target.to(device))

    @staticmethod
    def cat(parts: list[Examples]) -> Examples:
        """Concatenate along the batch, padding each to the widest input and target."""
        w_in = max(p.input.shape[1] for p in parts)
        w_out = max(p.target.shape[1] for p in parts)
        pad = torch.nn.functional.pad
        return Examples(
            torch.cat([pad(p.input, (0, w_in - p.input.shape[1]), value=PAD) for p in parts]),
            torch.cat([pad(p.target, (0, w_out - p.target.shape[1]), value=PAD) for p in parts]),
        )


@runtime_checkable
class Task(Protocol):
    """The task protocol. Implement it as a frozen dataclass whose fields are the parameters.

    - ``kind``: ``classify`` (one answer token), ``tag`` (one answer per input position) or
      ``seq2seq`` (an answer sequence of its own length).
    - ``default_layout``: the layout ``toyformer train TASK`` uses when none is given.
    - ``holdout``: whether test examples must be excluded from training. ``False`` for tasks
      whose point is memorising a small domain (a lookup table, counting 10 patterns).
    - ``sample(n, generator, length=None)``: ``n`` examples in one vectorised call; ``length``
      overrides the task's length where the task has one (length generalisation).
    - ``domain()``: every distinct example, for small finite domains; ``None`` otherwise.
    """

    kind: ClassVar[Kind]
    default_layout: ClassVar[str]
    holdout: ClassVar[bool]
    description: ClassVar[str]

    @property
    def vocab(self) -> Vocab: ...

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples: ...

    def domain(self) -> Examples | None: ...


class TaskBase:
    """The preamble registered tasks share, written once (a base without fields, so a task's own
    dataclass fields and their order stay its own): the ``name`` the registry gives it, its
    vocabulary from ``tokens`` when it is fixed, no finite domain unless it overrides ``domain``,
    test examples held out of training."""

    name: ClassVar[str]  # set by register_task
    holdout: ClassVar[bool] = True
    tokens: ClassVar[tuple[str, ...]] = ()  # a fixed vocabulary; a task whose vocabulary varies defines vocab

    @property
    def vocab(self) -> Vocab:
        if not self.tokens:
            raise NotImplementedError(f"task {type(self).__name__} defines neither tokens nor vocab")
        return Vocab(self.tokens)

    def domain(self) -> Examples | None:
        return None


class LengthTask(TaskBase):
    """A task drawn at a ``length`` (its field): ``task.length`` checked on construction, and
    ``length_of`` for ``sample(..., length=L)`` (length generalisation).

    >>> from toyformer.tasks import get_task
    >>> get_task("reverse", length=5).length_of(None), get_task("reverse", length=5).length_of(9)
    (5, 9)
    """

    length: int

    def __post_init__(self):
        check_range("task.length", self.length, 1)

    def length_of(self, length: int | None) -> int:
        """The length of a sample: ``length`` (at least 1), or the task's own."""
        length = self.length if length is None else length
        check_range("length", length, 1)
        return length


class SymbolTask(LengthTask):
    """A sequence of symbols ``"0" .. str(vocab_size - 1)`` (its field ``vocab_size``, 2..1000):
    copy, reverse, sort, and the suite's duplicate and odds-first strings."""

    vocab_size: int

    def __post_init__(self):
        super().__post_init__()
        check_range("task.vocab_size", self.vocab_size, 2, 1000)

    @property
    def vocab(self) -> Vocab:
        return Vocab([str(i) for i in range(self.vocab_size)])

    def symbols(self, n: int, generator: torch.Generator, length: int | None) -> torch.Tensor:
        """``n`` uniform sequences of ``length_of(length)`` symbols: token ids ``[n, L]``."""
        length = self.length_of(length)
        return torch.randint(self.vocab_size, (n, length), generator=generator) + self.vocab.id("0")


def task_params(task) -> dict:
    """The parameters of a task instance as a plain dict (its dataclass fields)."""
    return {f.name: getattr(task, f.name) for f in fields(task)}


def check_range(name: str, value: int, lo: int, hi: int | None = None) -> None:
    """Raise ConfigError unless ``lo <= value <= hi`` (``hi`` None: no upper bound)."""
    if value < lo or (hi is not None and value > hi):
        allowed = f">= {lo}" if hi is None else f"{lo}..{hi}"
        raise ConfigError(f"{name}={value!r} is out of range; allowed: {allowed}")


def digits_of(x: torch.Tensor, width: int) -> torch.Tensor:
    """Decimal digits of non-negative integers, most significant first, zero-filled.

    >>> digits_of(torch.tensor([7, 305]), 3).tolist()
    [[0, 0, 7], [3, 0, 5]]
    """
    powers = 10 ** torch.arange(width - 1, -1, -1, device=x.device)  # [width]
    return (x.unsqueeze(-1) // powers) % 10  # [n, width]


def number_tokens(x: torch.Tensor, digit0: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Decimal strings of non-negative integers as token ids, left-aligned, without zero-fill.

    Returns ``tokens [n, width]`` (``<pad>`` after the last digit) and ``lengths [n]``.
    ``digit0`` is the id of the token ``"0"`` (digits 0-9 must be consecutive ids).

    >>> t, n = number_tokens(torch.tensor([7, 305]), digit0=5, width=3)
    >>> t.tolist(), n.tolist()
    ([[12, 0, 0], [8, 5, 10]], [1, 3])
    """
    d = digits_of(x, width)  # [n, width], zero-filled on the left
    n_digits = torch.clamp((x.unsqueeze(-1) >= 10 ** torch.arange(width, device=x.device)).sum(-1), min=1)
    shift = width - n_digits  # leading zeros to drop
    cols = torch.arange(width, device=x.device).unsqueeze(0) + shift.unsqueeze(1)  # [n, width]
    valid = cols < width
    out = torch.gather(d, 1, cols.clamp(max=width - 1)) + digit0
    return torch.where(valid, out, torch.full_like(out, PAD)), n_digits


def place(dst: torch.Tensor, src: torch.Tensor, src_len: torch.Tensor, start: torch.Tensor) -> None:
    """Write ``src[i, :src_len[i]]`` into ``dst[i, start[i]:]`` for every row, vectorised.

    ``dst [n, W]`` is modified in place; positions beyond ``W`` are dropped.
    """
    n, w_src = src.shape
    j = torch.arange(w_src, device=src.device).unsqueeze(0)  # [1, w_src]
    cols = start.unsqueeze(1) + j  # [n, w_src]
    keep = (j < src_len.unsqueeze(1)) & (cols < dst.shape[1])
    rows = torch.arange(n, device=src.device).unsqueeze(1).expand_as(cols)
    dst[rows[keep], cols[keep]] = src[keep]


def readable_answer(task, ids: torch.Tensor) -> torch.Tensor:
    """Answers ``[n, A]`` as a person reads them: a task that writes its answer's digits least
    significant first (``reverse_answer=true``) has each run of digits turned back; any other
    task's answers are returned as they are. Display only: the model and exact match use the
    task's own order.

    >>> from toyformer.tasks import get_task
    >>> task = get_task("addition", reverse_answer=True)
    >>> task.vocab.decode(readable_answer(task, task.vocab.encode("5 4 2".split()).unsqueeze(0))[0])
    '2 4 5'
    """
    if not getattr(task, "reverse_answer", False):
        return ids
    digit_ids = torch.tensor([task.vocab.id(str(d)) for d in range(10)], device=ids.device)
    is_digit = torch.isin(ids, digit_ids)  # [n, A]
    t = ids.shape[1]
    col = torch.arange(t, device=ids.device).expand_as(ids)  # [n, A]
    start = torch.where(is_digit, torch.full_like(col, -1), col).cummax(-1).values + 1  # first column of the run
    end = torch.where(is_digit, torch.full_like(col, t), col).flip(-1).cummin(-1).values.flip(-1) - 1  # its last
    src = torch.where(is_digit, start + end - col, col)  # [n, A]: the mirrored column inside the run
    return torch.gather(ids, 1, src)
