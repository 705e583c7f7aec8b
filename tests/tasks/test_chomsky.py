"""The Chomsky-hierarchy suite's tasks, each checked against an independent implementation of
its rule: the examples are decoded to strings and recomputed with plain Python (``eval`` for the
expressions, Python's big integers and ``math.isqrt`` for the binary tasks, a list for the
stack), at short lengths and at the suite's longest test length."""

import doctest
import importlib
import math
import pkgutil
import re

import pytest
import torch

import toyformer.tasks.chomsky
from toyformer.tasks import get_task, task_class
from toyformer.tasks.chomsky import SUITE
from toyformer.tasks.protocol import check_task

LENGTHS = [1, 2, 3, 4, 5, 6, 7, 12, 40, 41]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def suite_task(name):
    entry = SUITE[name]
    return get_task(entry.task, **entry.params)


def rows(name, length, n=64, seed=0):
    """``n`` examples of suite task ``name`` at ``length`` as lists of token strings."""
    task = suite_task(name)
    ex = task.sample(n, gen(seed), length=length)
    tok = task.vocab.tokens
    return [([tok[i] for i in x.tolist()], [tok[i] for i in t.tolist()]) for x, t in zip(ex.input, ex.target)]


def le_int(bits):  # little-endian bit strings -> int
    return sum(int(b) << i for i, b in enumerate(bits))


def le_answer(value, width):
    """The suite's answer for ``value``: little-endian bits without leading zeros, end, zeros."""
    out = list(format(value, "b")[::-1]) + ["end"]
    return out + ["0"] * (width - len(out))


def in_grammar(s, ops):
    """Whether ``s`` is an expression of the suite's bracket grammar (by brute force)."""
    if len(s) <= 4:
        return s in {f"{p}{d}{q}" for d in "01234" for p, q in [("", ""), ("-", ""), ("(", ")"), ("(-", ")")]
                     if len(p) + 1 + len(q) == len(s)}
    if s[0] != "(" or s[-1] != ")":
        return False
    return any(s[i] in ops and in_grammar(s[1:i], ops) and in_grammar(s[i + 1:-1], ops) for i in range(2, len(s) - 2))


def check_even_pairs(x, t):
    assert t == [str(sum(a != b for a, b in zip(x, x[1:])) % 2)]


def check_modular_arithmetic(x, t):
    assert len(x) % 2 == 1 and all(o in "+-*" for o in x[1::2]) and all(d in "01234" for d in x[0::2])
    assert t == [str(eval("".join(x)) % 5)]


def check_parity_check(x, t):
    assert t == [str(x.count("1") % 2)]


def check_cycle_navigation(x, t):
    assert set(x) <= {"0", "1", "2"} and t == [str(sum(int(a) - 1 for a in x) % 5)]


def check_stack_manipulation(x, t):
    stack_len = next((i for i, a in enumerate(x) if a not in "01"), len(x))
    assert 1 <= stack_len <= max(1, len(x) - 1) and all(a in ("pop", "push0", "push1") for a in x[stack_len:])
    stack = list(x[:stack_len])
    for a in x[stack_len:]:
        if a == "pop":
            stack = stack[:-1]
        else:
            stack.append(a[-1])
    out = stack[::-1] + ["end"]
    assert t == out + ["0"] * (len(x) + 1 - len(out))


def check_reverse_string(x, t):
    assert set(x) <= {"0", "1"} and t == x[::-1]


def check_modular_arithmetic_brackets(x, t):
    text = "".join(x)
    assert in_grammar(text, "+-*") if len(x) <= 12 else text.count("(") == text.count(")")
    assert t == [str(eval(text) % 5)]


def check_solve_equation(x, t):
    if len(x) < 3:
        assert x == ["0"] * len(x) and t == ["0"]
        return
    text = "".join(x)
    left, right = text.split("=")
    assert "*" not in text and text.count("x") == 1 and len(right) == 1
    assert in_grammar(left.replace("x", t[0]), "+-") if len(x) <= 12 else True
    solutions = [d for d in range(5) if eval(left.replace("x", str(d))) % 5 == int(right)]
    assert solutions == [int(t[0])]  # the answer, and the only one


def check_duplicate_string(x, t):
    assert t == x + x


def check_missing_duplicate_string(x, t):
    if len(x) == 1:
        assert x == ["1"] and t == ["1"]
        return
    body = x[:-1] if len(x) % 2 else x
    assert (x[-1] == "_") == (len(x) % 2 == 1) and body.count("?") == 1
    half = len(body) // 2
    i = body.index("?")
    twin = body[i + half] if i < half else body[i - half]
    assert t == [twin]
    filled = body[:i] + [twin] + body[i + 1:]
    assert filled[:half] == filled[half:]


def check_odds_first(x, t):
    assert t == x[1::2] + x[0::2]


def split_operands(x, op):
    if len(x) <= 2:
        return None
    i = x.index(op)
    assert x.count(op) == 1 and 1 <= i <= len(x) - 2
    a, b = x[:i], x[i + 1:]
    assert le_int(a) >= 1 and le_int(b) >= 1  # operands are drawn from 1 .. 2**len - 1
    return le_int(a), le_int(b)


def check_binary_addition(x, t):
    ab = split_operands(x, "+")
    value = le_int(x) if ab is None else ab[0] + ab[1]
    assert t == le_answer(value, len(x) + 1)


def check_binary_multiplication(x, t):
    ab = split_operands(x, "*")
    if ab is None:
        assert t == ["0"] * (len(x) - 1) + ["end"]
        return
    assert t == le_answer(ab[0] * ab[1], len(x))


def check_compute_sqrt(x, t):
    value = int("".join(x), 2)
    assert value >= 1 and t == list(format(math.isqrt(value), "b").zfill(math.ceil(len(x) / 2)))


def check_bucket_sort(x, t):
    assert set(x) <= set("01234") and t == sorted(x)


CHECKS = {name: globals()[f"check_{name}"] for name in SUITE}


@pytest.mark.parametrize("name", list(SUITE))
@pytest.mark.parametrize("length", LENGTHS)
def test_examples_follow_the_rule(name, length):
    for x, t in rows(name, length):
        CHECKS[name](x, t)


@pytest.mark.parametrize("name", list(SUITE))
def test_rule_at_the_longest_test_length(name):
    for x, t in rows(name, 500, n=8):
        CHECKS[name](x, t)


@pytest.mark.parametrize("name", list(SUITE))
def test_output_lengths_are_the_reference_codes(name):
    expected = {"stack_manipulation": lambda n: n + 1, "binary_addition": lambda n: n + 1,
                "duplicate_string": lambda n: 2 * n, "compute_sqrt": lambda n: math.ceil(n / 2),
                "reverse_string": lambda n: n, "odds_first": lambda n: n, "binary_multiplication": lambda n: n,
                "bucket_sort": lambda n: n}.get(name, lambda n: 1)
    for length in (1, 2, 7, 30):
        ex = suite_task(name).sample(4, gen(), length=length)
        odd_only = name == "modular_arithmetic" and length % 2 == 0
        assert ex.input.shape[1] == length - odd_only
        assert ex.target.shape[1] == expected(length) and (ex.target != 0).all()  # no padding: fixed width


@pytest.mark.parametrize("name", list(SUITE))
def test_protocol_seeding_and_metadata(name):
    task = suite_task(name)
    check_task(task)
    a, b = task.sample(16, gen(3), length=20), task.sample(16, gen(3), length=20)
    assert torch.equal(a.input, b.input) and torch.equal(a.target, b.target)
    assert "Worked example" in type(task).__doc__ and task.description


def test_draws_cover_the_reference_ranges():
    """Splits drawn uniformly as in the reference code: every stack length 1..L-1, every first
    operand length 1..L-2, every hidden position, every symbol length of a bracket sub-tree."""
    length = 9
    stack_lens = {next(i for i, a in enumerate(x) if a not in "01") for x, _ in rows("stack_manipulation", length, 400)
                  if any(a not in "01" for a in x)}
    assert stack_lens == set(range(1, length))
    splits = {x.index("+") for x, _ in rows("binary_addition", length, 400)}
    assert splits == set(range(1, length - 1))
    hidden = {x.index("?") for x, _ in rows("missing_duplicate_string", length, 400)}
    assert hidden == set(range(2 * (length // 2)))
    ops = {a for x, _ in rows("modular_arithmetic_brackets", 15, 200) for a in x if a in "+-*"}
    assert ops == {"+", "-", "*"}


NEW = [name for name in SUITE if SUITE[name].task not in ("parity", "reverse", "sort")]


@pytest.mark.parametrize("name", NEW)
def test_worked_example_follows_the_rule(name):
    """The docstring's worked example passes the same independent check."""
    lines = {}
    for line in task_class(SUITE[name].task).__doc__.splitlines():
        key, _, rest = line.strip().partition(" ")
        if key in ("input", "target"):
            lines[key] = re.split(r"\s{2,}", rest.strip())[0].split()  # the tokens, before a comment
    CHECKS[name](lines["input"], lines["target"])


def test_reused_tasks_keep_their_own_format():
    assert task_class("parity").kind == "classify" and SUITE["parity_check"].task == "parity"
    assert get_task("reverse", **SUITE["reverse_string"].params).vocab.tokens[5:] == ("0", "1")
    assert get_task("sort", **SUITE["bucket_sort"].params).vocab.tokens[5:] == ("0", "1", "2", "3", "4")


def test_accuracy_mask_ends_at_the_end_mark():
    task = suite_task("stack_manipulation")
    ex = task.sample(32, gen(), length=12)
    mask = task.accuracy_mask(ex.target)
    end = task.vocab.id("end")
    for t, m in zip(ex.target.tolist(), mask.tolist()):
        assert m == [i <= t.index(end) for i in range(len(t))]


MODULES = sorted(m.name for m in pkgutil.iter_modules(toyformer.tasks.chomsky.__path__))


@pytest.mark.parametrize("module", MODULES)
def test_doctests(module):
    mod = importlib.import_module(f"toyformer.tasks.chomsky.{module}")
    assert doctest.testmod(mod, extraglobs={"torch": torch}).failed == 0
