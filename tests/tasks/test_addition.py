"""addition: the sum recomputed from the decoded operands, in both answer orders."""

import pytest
import torch

from toyformer import ConfigError
from toyformer.tasks import get_task


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def operands_and_sum(task, i, t):
    tok = task.vocab.tokens
    a, b = "".join(tok[k] for k in i.tolist() if k).split("+")
    s = "".join(tok[k] for k in t.tolist() if k)
    return a, b, s[::-1] if task.reverse_answer else s


@pytest.mark.parametrize("reverse_answer", [False, True])
def test_sums_recomputed(reverse_answer):
    task = get_task("addition", digits=12, reverse_answer=reverse_answer)
    ex = task.sample(300, gen())
    lengths = set()
    for i, t in zip(ex.input, ex.target):
        a, b, s = operands_and_sum(task, i, t)
        assert a == str(int(a)) and b == str(int(b)) and s == str(int(s))  # no zero-fill
        assert int(s) == int(a) + int(b)
        lengths |= {len(a), len(b)}
    assert lengths == set(range(1, 13))  # every operand length occurs


def test_digit_counts_and_one_digit_values():
    task = get_task("addition", digits=4, min_digits=2)
    ex = task.sample(300, gen())
    assert {len(x) for i, t in zip(ex.input, ex.target) for x in operands_and_sum(task, i, t)[:2]} == {2, 3, 4}
    ones = get_task("addition", digits=1)
    ex = ones.sample(400, gen())
    assert {int(operands_and_sum(ones, i, t)[0]) for i, t in zip(ex.input, ex.target)} == set(range(10))


@pytest.mark.parametrize("reverse_answer", [False, True])
def test_length_override_far_beyond_int64(reverse_answer):
    task = get_task("addition", reverse_answer=reverse_answer)
    ex = task.sample(20, gen(), length=60)
    for i, t in zip(ex.input, ex.target):
        a, b, s = operands_and_sum(task, i, t)
        assert len(a) == len(b) == 60 and int(s) == int(a) + int(b)


@pytest.mark.parametrize("params", [{"digits": 0}, {"digits": 3, "min_digits": 5}, {"min_digits": 0}])
def test_bad_parameters(params):
    with pytest.raises(ConfigError, match="out of range"):
        get_task("addition", **params)
