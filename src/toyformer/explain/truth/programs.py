"""The compiled ground truths: five programs of ``rasp`` (Weiss et al.'s and Tracr's canon), each
with its task, compiled to a toyformer tagger whose graph is the program's.

=========== ===================================================================== ==================
program     what it outputs at each position                                      graph
=========== ===================================================================== ==================
reverse     the tokens before the first ``.`` reversed (``3 1 4 . .`` ->           head (length), MLP
            ``4 1 3 . .``): the length is read from the tokens                    (mirror index),
                                                                                  head (mirror)
sort        the tokens sorted, duplicates kept                                    2 heads (counts of
                                                                                  each token, before
                                                                                  and in all), MLP
                                                                                  (target position),
                                                                                  head (fetch)
hist        how often its token occurs in the sequence                            head, MLP
frac_prevs  the share of ``x`` among the tokens so far, in tenths (rounded down)  head, MLP
dyck        ``1`` if the brackets are balanced, else ``0`` (at every position)    3 heads, 2 MLPs
=========== ===================================================================== ==================

Positions are structure: at a fixed length they are the same for every input, so what an
ablation can remove is what the tokens say; each program is written so that everything it
computes depends on them (reverse's length counts the tokens before the filler).

>>> model, task, truth = compiled("hist")                        # doctest: +SKIP
>>> sorted(truth)[:2]                                            # doctest: +SKIP
[('count', 'output'), ('frac', 'count')]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar
from collections.abc import Callable

import torch

from toyformer.errors import ConfigError
from toyformer.explain.truth.compiler import compile_program, layers
from toyformer.explain.truth.rasp import INDICES, TOKENS, Aggregate, Lookup, Program, Var, run, truth_edges
from toyformer.tasks.base import Examples, Vocab

LENGTH = 6


def _reverse(length: int) -> Program:
    syms = ("0", "1", "2", "3", "4", ".")
    tok, idx = Var(TOKENS, syms), Var(INDICES, tuple(range(length)))
    n = Var("length")
    opp = Var("mirror index", tuple(range(length)))
    rev = Var("reversed", syms)
    ops = [Aggregate(n, tok, how="mean", f=lambda t: t != "."),
           Lookup(opp, lambda g, z: (round(z) - 1 - g[0]) if g[0] < round(z) else g[0], gates=(idx,),
                  numeric=lambda g: {(n, 0): length}, inputs=(n,)),
           Aggregate(rev, tok, query=opp, key=idx, predicate=lambda k, q: k == q)]
    return Program("reverse", tok, idx, ops, rev, "the tokens before the first '.' reversed")


def _sort(length: int) -> Program:
    syms = ("0", "1", "2", "3", "4")
    tok, idx = Var(TOKENS, syms), Var(INDICES, tuple(range(length)))
    frac = Var("frac", size=len(syms))
    before = Var("frac before", size=len(syms))
    target = Var("target", tuple(range(length)))
    out = Var("sorted", syms)

    def place(g):  # z = number of smaller tokens + number of equal ones up to here (1-based)
        t, i = syms.index(g[0]), g[1]
        return {**{(frac, v): float(length) for v in range(t)}, (before, t): float(i + 1)}

    ops = [Aggregate(frac, tok, how="mean"),
           Aggregate(before, tok, query=idx, key=idx, predicate=lambda k, q: k <= q, how="mean"),
           Lookup(target, lambda g, z: min(length - 1, max(0, round(z) - 1)), gates=(tok, idx), numeric=place,
                  inputs=(frac, before)),
           Aggregate(out, tok, query=idx, key=target, predicate=lambda k, q: k == q)]
    return Program("sort", tok, idx, ops, out, "the tokens sorted")


def _hist(length: int) -> Program:
    tok, idx = Var(TOKENS, ("a", "b", "c", "d")), Var(INDICES, tuple(range(length)))
    frac = Var("frac", size=4)
    count = Var("count", tuple(str(c) for c in range(1, length + 1)))
    ops = [Aggregate(frac, tok, how="mean"),
           Lookup(count, lambda g, z: str(min(length, max(1, round(z)))), gates=(tok,),
                  numeric=lambda g: {(frac, "abcd".index(g[0])): float(length)}, inputs=(frac,))]
    return Program("hist", tok, idx, ops, count, "how often its token occurs")


def _frac_prevs(length: int) -> Program:
    tok, idx = Var(TOKENS, ("x", "y")), Var(INDICES, tuple(range(length)))
    share = Var("share of x")
    tenths = Var("tenths", tuple(str(k) for k in range(11)))
    ops = [Aggregate(share, tok, query=idx, key=idx, predicate=lambda k, q: k <= q, how="mean", f=lambda t: t == "x"),
           Lookup(tenths, lambda g, z: str(math.floor(10 * z + 1e-9)), numeric=lambda g: {(share, 0): 1.0},
                  inputs=(share,))]
    return Program("frac_prevs", tok, idx, ops, tenths, "the share of x so far, in tenths")


def _dyck(length: int) -> Program:
    tok, idx = Var(TOKENS, ("(", ")")), Var(INDICES, tuple(range(length)))
    sign = lambda t: 1.0 if t == "(" else -1.0  # noqa: E731
    depth, total = Var("depth"), Var("total")
    below, zero = Var("below zero"), Var("ends at zero", ("yes", "no"))
    ever = Var("ever below")
    out = Var("balanced", ("0", "1"))
    ops = [Aggregate(depth, tok, query=idx, key=idx, predicate=lambda k, q: k <= q, how="mean", f=sign),
           Aggregate(total, tok, how="mean", f=sign),
           Lookup(below, lambda g, z: 1.0 if z < -1e-9 else 0.0, numeric=lambda g: {(depth, 0): 1.0}, inputs=(depth,)),
           Lookup(zero, lambda g, z: "yes" if abs(z) < 1e-9 else "no", numeric=lambda g: {(total, 0): 1.0},
                  inputs=(total,)),
           Aggregate(ever, below, how="mean"),
           Lookup(out, lambda g, z: "1" if g[0] == "yes" and z < 1e-9 else "0", gates=(zero,),
                  numeric=lambda g: {(ever, 0): 1.0}, inputs=(ever,))]
    return Program("dyck", tok, idx, ops, out, "1 if the brackets are balanced")


def _draw_reverse(n, g, length):
    k = torch.randint(1, length + 1, (n,), generator=g).tolist()
    x = torch.randint(5, (n, length), generator=g).tolist()
    return [[str(v) for v in row[:m]] + ["."] * (length - m) for row, m in zip(x, k)]


def _draw(symbols):
    def draw(n, g, length):
        return [[symbols[i] for i in row] for row in torch.randint(len(symbols), (n, length), generator=g).tolist()]
    return draw


def _draw_frac(n, g, length):
    p = torch.rand(n, 1, generator=g)
    return [["x" if v else "y" for v in row] for row in (torch.rand(n, length, generator=g) < p).tolist()]


def _draw_dyck(n, g, length):
    rows = _draw("()")(n, g, length)
    for r in range(0, n, 2):  # every other row balanced: a random walk that never goes below zero
        depth, row = 0, []
        for i in range(length):
            left = length - i
            up = depth == 0 or (depth < left and bool(torch.rand(1, generator=g) < 0.5))
            row.append("(" if up else ")")
            depth += 1 if up else -1
        rows[r] = row
    return rows


PROGRAMS: dict[str, tuple[Callable, Callable]] = {
    "reverse": (_reverse, _draw_reverse), "sort": (_sort, _draw("01234")), "hist": (_hist, _draw("abcd")),
    "frac_prevs": (_frac_prevs, _draw_frac), "dyck": (_dyck, _draw_dyck),
}


@dataclass(frozen=True, eq=False)
class ProgramTask:
    """A compiled program's task (the task protocol, unregistered): inputs drawn by ``draw``,
    targets by running the program."""

    name: str
    program: Program
    draw: Callable
    length: int

    kind: ClassVar[str] = "tag"
    default_layout: ClassVar[str] = "tagger"
    holdout: ClassVar[bool] = False

    @property
    def description(self) -> str:
        return self.program.description

    @property
    def vocab(self) -> Vocab:
        tokens = list(self.program.tokens.values)
        return Vocab(tokens + [v for v in self.program.output.values if v not in tokens])

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        rows = self.draw(n, generator, self.length)
        env = run(self.program, rows)
        v = self.vocab
        x = torch.tensor([[v.id(t) for t in row] for row in rows])
        out = self.program.output
        y = torch.tensor([[v.id(out.values[i]) for i in row] for row in env[out.name].tolist()])
        return Examples(x, y)

    def domain(self):
        return None


def compiled(name: str, length: int = LENGTH, samples: int = 4000, seed: int = 0):
    """``(model, task, truth)``: program ``name`` compiled (its lookups set from ``samples`` drawn
    inputs), its task, and its graph as edges ``(writer, reader)`` named as ``circuit`` names
    them (``encoder.blocks.0.attn head 0``, ``... values``, ``encoder.blocks.0.ff``, ``input``,
    ``output``)."""
    if name not in PROGRAMS:
        raise ConfigError(f"unknown program {name!r}; valid: {', '.join(PROGRAMS)}")
    make, draw = PROGRAMS[name]
    program = make(length)
    task = ProgramTask(name, program, draw, length)
    rows = draw(samples, torch.Generator().manual_seed(seed), length)
    model = compile_program(program, task, rows)
    return model, task, _named(program, truth_edges(program))


def _named(program: Program, edges: set) -> set[tuple[str, str]]:
    """Edges between op outputs -> edges between the heads and MLPs they were compiled to."""
    where = layers(program)
    slot: dict = {}
    names = {}
    for op in program.ops:
        layer, kind = where[op.out.name]
        if kind == "head":
            h = slot.get(layer, 0)
            slot[layer] = h + 1
            names[op.out.name] = f"encoder.blocks.{layer}.attn head {h}"
        else:
            names[op.out.name] = f"encoder.blocks.{layer}.ff"

    def rename(x: str) -> str:
        for var, node in sorted(names.items(), key=lambda kv: -len(kv[0])):  # "frac before" before "frac"
            if x == var or x.startswith(var + " "):
                return node + x[len(var):]
        return x

    return {(rename(w), rename(r)) for w, r in edges}
