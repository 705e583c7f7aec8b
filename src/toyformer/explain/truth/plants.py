"""The plants of ``planted``: each a task, a model shape, the circuit to plant (heads with their
roles, MLPs, edges named as ``graph`` names them) and the high-level model's answer when one
edge of the circuit carries its value on another input.

- ``reverse``: the registry's ``reverse`` task (6 tokens of 8); one mirror head.
- ``induction``: 6 distinct tokens, then one of the first five again; the answer is the token
  that followed it (causal layout, no ``<sep>``: the answer is read at the repeated token). A
  previous-token head in layer 0 tells each position what came before it; an induction head in
  layer 1 finds the position whose previous token is the query's and copies its token.
- ``neighbours``: 6 digits ``0-4``; the answer at each position is the sum of its two neighbours
  modulo 5 (a missing neighbour counts 0). A previous-token head and a next-token head (attends
  1 position forward) in layer 0 bring the neighbours; the feed-forward block adds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar
from collections.abc import Callable

import torch

from toyformer.tasks import get_task
from toyformer.tasks.base import Examples, Vocab


@dataclass
class Plant:
    name: str
    task: object
    layout: str
    model: dict
    heads: dict  # "module head h" -> role label (as ``score.label`` writes it)
    edges: list  # (writer, reader) names of ``graph``
    answer: Callable  # (base Examples, source Examples, edge) -> (target [n, ...], ok [n])
    sep: bool = True
    mlps: list = field(default_factory=list)


SHAPE = {"d_model": 32, "n_heads": 4, "n_layers": 2, "d_ff": 64, "positional": "learned"}


class _Drawn:
    """What the plants' tasks share: drawn afresh (no held-out domain), kept out of the registry."""

    holdout: ClassVar[bool] = False

    def domain(self):
        return None


@dataclass(frozen=True, eq=False)
class Induction(_Drawn):
    """``length`` distinct tokens of ``vocab_size``, then one of the first ``length - 1`` again;
    the answer is the token after its first occurrence (``a c f b e d f`` -> ``b``)."""

    length: int = 6
    vocab_size: int = 12
    name: ClassVar[str] = "induction"
    kind: ClassVar[str] = "classify"
    default_layout: ClassVar[str] = "causal"
    description: ClassVar[str] = "the token after the earlier occurrence of the last token"

    @property
    def vocab(self) -> Vocab:
        return Vocab([chr(ord("a") + i) for i in range(self.vocab_size)])

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        first = len(self.vocab) - self.vocab_size
        prompt = torch.rand(n, self.vocab_size, generator=generator).argsort(-1)[:, : self.length] + first
        k = torch.randint(self.length - 1, (n, 1), generator=generator)
        x = torch.cat([prompt, prompt.gather(1, k)], 1)
        return Examples(x, prompt.gather(1, k + 1))


@dataclass(frozen=True, eq=False)
class Neighbours(_Drawn):
    """``length`` digits of ``0..modulus-1``; at each position the sum of its neighbours modulo
    ``modulus`` (``1 4 2`` -> ``4 3 4``)."""

    length: int = 6
    modulus: int = 5
    name: ClassVar[str] = "neighbours"
    kind: ClassVar[str] = "tag"
    default_layout: ClassVar[str] = "tagger"
    description: ClassVar[str] = "the sum of the two neighbours"

    @property
    def vocab(self) -> Vocab:
        return Vocab([str(i) for i in range(self.modulus)])

    def digits(self, x: torch.Tensor) -> torch.Tensor:
        return x - (len(self.vocab) - self.modulus)

    def answer(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """Token ids of ``(before + after) mod m`` from the digits of the two neighbours."""
        return (before + after) % self.modulus + (len(self.vocab) - self.modulus)

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        x = torch.randint(self.modulus, (n, self.length), generator=generator)
        return Examples(x + (len(self.vocab) - self.modulus), self.answer(*_neighbours(x, x)))


def _neighbours(before_of: torch.Tensor, after_of: torch.Tensor):
    """Digits of each position's previous token in ``before_of`` and next in ``after_of`` (0 if none)."""
    zero = torch.zeros_like(before_of[:, :1])
    return torch.cat([zero, before_of[:, :-1]], 1), torch.cat([after_of[:, 1:], zero], 1)


def reverse() -> Plant:
    head = "encoder.blocks.0.attn head 1"

    def answer(base, source, edge):
        return source.target, torch.ones(len(base), dtype=torch.bool)

    return Plant("reverse", get_task("reverse", length=6, vocab_size=8), "tagger", dict(SHAPE), {head: "mirror"},
                 [("input", f"{head} values"), (head, "output")], answer)


def induction() -> Plant:
    prev, ind = "decoder.blocks.0.attn head 2", "decoder.blocks.1.attn head 1"
    edges = [("input", f"{prev} values"), (prev, f"{ind} keys"), ("input", f"{ind} queries"),
             ("input", f"{ind} values"), (ind, "output")]

    def answer(base, source, edge):
        if edge == (ind, "output"):
            return source.target, torch.ones(len(base), dtype=torch.bool)
        x, s = base.input, source.input
        feeds_prev = s if edge in (edges[0], edges[1]) else x  # what the previous-token head reads
        before = torch.cat([torch.full_like(x[:, :1], -1), feeds_prev[:, :-1]], 1)  # [n, T]: token before each
        query = (s if edge == edges[2] else x)[:, -1:]
        values = s if edge == edges[3] else x
        hit = before == query
        ok = hit.sum(1) == 1
        target = values.gather(1, hit.long().argmax(1, keepdim=True))
        return torch.where(ok[:, None], target, base.target), ok

    return Plant("induction", Induction(), "causal", dict(SHAPE), {prev: "previous", ind: "induction"}, edges, answer,
                 sep=False)


def neighbours() -> Plant:
    prev, nxt, mlp = "encoder.blocks.0.attn head 0", "encoder.blocks.0.attn head 3", "encoder.blocks.0.ff"
    edges = [("input", f"{prev} values"), ("input", f"{nxt} values"), (prev, mlp), (nxt, mlp), (mlp, "output")]
    task = Neighbours()

    def answer(base, source, edge):
        if edge == edges[4]:
            return source.target, torch.ones(len(base), dtype=torch.bool)
        x, s = task.digits(base.input), task.digits(source.input)
        before, _ = _neighbours(s if edge in (edges[0], edges[2]) else x, x)
        _, after = _neighbours(x, s if edge in (edges[1], edges[3]) else x)
        return task.answer(before, after), torch.ones(len(base), dtype=torch.bool)

    return Plant("neighbours", task, "tagger", dict(SHAPE, d_ff=128), {prev: "previous", nxt: "offset +1"}, edges,
                 answer, mlps=[mlp])


PLANTS: dict[str, Callable[[], Plant]] = {"reverse": reverse, "induction": induction, "neighbours": neighbours}
