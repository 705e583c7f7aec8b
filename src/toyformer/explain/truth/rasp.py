"""A small RASP (Weiss et al. 2021) for programs whose graph is known: variables over the token
positions, attention that selects and aggregates, and lookups that map values; an interpreter
that runs a program exactly; and each program's own graph, the truth a circuit is scored against.

==================================== ==========================================================
op                                   what it computes at each position (and what it becomes)
==================================== ==========================================================
``Aggregate(out, value, query, key,  the keys whose ``key`` value and the query's ``query`` value
predicate, how, f)``                 satisfy ``predicate(k, q)`` (no query and key: every key),
                                     then ``copy`` (the one selected key's ``value``), ``mean``
                                     of ``f(value)`` (a number) or, without ``f``, the fraction
                                     of the selected keys holding each value (a vector); one head
``Lookup(out, fn, gates, numeric)``  ``fn(gate values, z)``, ``z`` a weighted sum of numeric
                                     variables (the weights may depend on the gates); an MLP
==================================== ==========================================================

``tokens`` (the input) and ``indices`` (the positions) are the program's inputs. Positions are
the same for every input of the program's fixed length, so they are structure, not an input an
ablation can change: reading ``indices`` adds no edge to the graph. The graph: an edge from the
writer of each variable an op reads (``input`` for ``tokens``) to the op's head (through its
queries, keys or values) or MLP, and from the output's writer to ``output``.

>>> length = Aggregate(Var("length"), TOKENS, how="mean", f=lambda t: t != ".")          # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable

import torch


@dataclass(frozen=True)
class Var:
    """A variable: categorical with ``values``, or numeric (``values`` None) of ``size`` numbers."""

    name: str
    values: tuple | None = None
    size: int = 1

    @property
    def numeric(self) -> bool:
        return self.values is None

    @property
    def width(self) -> int:
        return self.size if self.numeric else len(self.values)


TOKENS, INDICES = "tokens", "indices"  # the names of the two input variables


@dataclass(frozen=True)
class Aggregate:
    out: Var
    value: Var
    query: Var | None = None
    key: Var | None = None
    predicate: Callable | None = None  # predicate(key value, query value) -> bool
    how: str = "copy"  # copy | mean
    f: Callable | None = None  # mean of f(value) (categorical value -> number)
    kind: str = field(default="head", init=False)

    def reads(self) -> dict[str, Var | None]:
        return {"q": self.query, "k": self.key, "v": self.value}


@dataclass(frozen=True)
class Lookup:
    out: Var
    fn: Callable  # fn(tuple of gate values, z) -> out value
    gates: tuple = ()
    numeric: Callable | None = None  # numeric(tuple of gate values) -> {(var, index): weight}
    inputs: tuple = ()  # the numeric variables ``numeric`` may name
    kind: str = field(default="mlp", init=False)

    def reads(self) -> dict[str, tuple]:
        return {"mlp": tuple(self.gates) + tuple(self.inputs)}


@dataclass
class Program:
    """``ops`` in an order that computes each variable before it is read; ``tokens`` and
    ``indices`` are ``Var``s named ``TOKENS`` and ``INDICES``; ``output`` a categorical variable
    whose values are output tokens."""

    name: str
    tokens: Var
    indices: Var
    ops: list
    output: Var
    description: str = ""

    def op_of(self, var: Var):
        for op in self.ops:
            if op.out == var:
                return op
        return None


def run(program: Program, inputs: list[list]) -> dict[str, torch.Tensor]:
    """Every variable of ``program`` on ``inputs`` (rows of token values, all of the program's
    length): categorical as value indices ``[N, L]``, numeric as ``float64 [N, L, size]``."""
    n, length = len(inputs), len(inputs[0])
    tok = program.tokens.values
    env = {TOKENS: torch.tensor([[tok.index(t) for t in row] for row in inputs]),
           INDICES: torch.arange(length).expand(n, length)}
    for op in program.ops:
        env[op.out.name] = _aggregate(op, env) if isinstance(op, Aggregate) else _lookup(op, env)
    return env


def _selection(op: Aggregate, env: dict) -> torch.Tensor:
    """``[N, Lq, Lk]``: which keys each query selects."""
    q = env[op.query.name] if op.query is not None else None
    if q is None:
        n, length = env[TOKENS].shape
        return torch.ones(n, length, length, dtype=torch.bool)
    k = env[op.key.name]
    table = torch.tensor([[bool(op.predicate(kv, qv)) for kv in op.key.values] for qv in op.query.values])
    return table[q[:, :, None], k[:, None, :]]


def _aggregate(op: Aggregate, env: dict) -> torch.Tensor:
    sel = _selection(op, env)
    v = env[op.value.name]
    if op.how == "copy":
        if not bool((sel.sum(-1) == 1).all()):
            raise ValueError(f"{op.out.name}: a copy must select exactly one key per query")
        return v.gather(1, sel.long().argmax(-1))
    w = sel.double() / sel.sum(-1, keepdim=True).clamp(min=1)  # [N, Lq, Lk]
    if op.value.numeric:
        x = v
    elif op.f is not None:
        x = torch.tensor([float(op.f(val)) for val in op.value.values], dtype=torch.float64)[v][..., None]
    else:
        x = torch.nn.functional.one_hot(v, len(op.value.values)).double()
    return w @ x  # [N, L, size]


def lookup_table(op: Lookup, env: dict) -> tuple[torch.Tensor, list, torch.Tensor]:
    """The distinct ``(gate value indices..., z)`` rows a lookup meets ``[U, gates + 1]``, its
    output for each, and each position's row ``[N, L]``."""
    n, length = env[TOKENS].shape
    z = lookup_z(op, env).reshape(-1, 1)
    gates = [env[g.name].reshape(-1, 1).double() for g in op.gates]
    rows, inverse = torch.cat(gates + [z.round(decimals=9)], 1).unique(dim=0, return_inverse=True)
    outs = [op.fn(tuple(g.values[int(c)] for g, c in zip(op.gates, row[:-1])), row[-1]) for row in rows.tolist()]
    return rows, outs, inverse.view(n, length)


def _lookup(op: Lookup, env: dict) -> torch.Tensor:
    _, outs, at = lookup_table(op, env)
    if op.out.numeric:
        return torch.tensor([float(y) for y in outs], dtype=torch.float64)[at][..., None]
    return torch.tensor([op.out.values.index(y) for y in outs])[at]


def lookup_z(op: Lookup, env: dict) -> torch.Tensor:
    """``z [N, L]`` of a lookup: its weighted sum of numeric variables (weights by the gates)."""
    n, length = env[TOKENS].shape
    z = torch.zeros(n, length, dtype=torch.float64)
    if op.numeric is None:
        return z
    gates = [env[g.name] for g in op.gates]
    if not gates:
        for (var, index), w in op.numeric(()).items():
            z += w * env[var.name][:, :, index]
        return z
    combos = torch.stack(gates, -1).view(-1, len(gates))
    for combo in combos.unique(dim=0).tolist():
        at = (combos == torch.tensor(combo, dtype=torch.long)).all(-1).view(n, length)
        weights = op.numeric(tuple(g.values[c] for g, c in zip(op.gates, combo)))
        for (var, index), w in weights.items():
            z[at] += w * env[var.name][at][:, index]
    return z


def truth_edges(program: Program) -> set[tuple[str, str]]:
    """The program's graph as edges ``(writer, reader)``: op names by output variable; writers
    ``input`` (the tokens) and op outputs; readers ``{op} queries/keys/values``, ``{op}`` (an MLP)
    and ``output``."""
    edges = set()
    for op in program.ops:
        for channel, read in op.reads().items():
            for var in (read if isinstance(read, tuple) else (read,)):
                if var is None or var.name == INDICES:
                    continue
                writer = "input" if var.name == TOKENS else var.name
                reader = op.out.name if channel == "mlp" else f"{op.out.name} {_CHANNEL[channel]}"
                edges.add((writer, reader))
    edges.add((program.output.name, "output"))
    return edges


_CHANNEL = {"q": "queries", "k": "keys", "v": "values"}
