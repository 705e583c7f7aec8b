"""modular_arithmetic: the answer is a op b mod p, recomputed with Python's pow."""

import pytest
import torch

from toyformer import ConfigError
from toyformer.tasks import get_task


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def decode(task, row):
    return [task.vocab.tokens[i] for i in row.tolist() if i != 0]


def expected(a, op, b, p):
    return {"+": a + b, "-": a - b, "*": a * b, "/": a * pow(b, p - 2, p)}[op] % p


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_domain_recomputed(op):
    p = 13
    task = get_task("modular_arithmetic", modulus=p, op=op)
    dom = task.domain()
    pairs = set()
    for i, t in zip(dom.input, dom.target):
        a, o, b, eq = decode(task, i)
        a, b, c = int(a), int(b), int(decode(task, t)[0])
        assert o == op and eq == "=" and c == expected(a, op, b, p)
        pairs.add((a, b))
    low = 1 if op == "/" else 0
    assert pairs == {(a, b) for a in range(p) for b in range(low, p)}


def test_large_prime_division_sampled():
    p = 499  # b^(p-2) by repeated squaring must not overflow
    task = get_task("modular_arithmetic", modulus=p, op="/")
    ex = task.sample(300, gen())
    for i, t in zip(ex.input, ex.target):
        a, _, b, _ = decode(task, i)
        a, b = int(a), int(b)
        assert b != 0 and int(decode(task, t)[0]) == expected(a, "/", b, p)
        assert int(decode(task, t)[0]) * b % p == a


def test_vocab():
    tokens = get_task("modular_arithmetic", modulus=5).vocab.tokens[5:]
    assert tokens == ("0", "1", "2", "3", "4", "+", "-", "*", "/", "=")


@pytest.mark.parametrize("params, message", [
    ({"modulus": 12, "op": "/"}, "must be prime"),
    ({"modulus": 1}, "out of range"),
    ({"op": "%"}, r"allowed: \+, -, \*, /"),
])
def test_bad_parameters(params, message):
    with pytest.raises(ConfigError, match=message):
        get_task("modular_arithmetic", **params)
    get_task("modular_arithmetic", modulus=12, op="*")  # only division needs a prime
