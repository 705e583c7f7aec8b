"""alternating (R3): the answer continues the alternation."""

import pytest
import torch

from toyformer import ConfigError
from toyformer.tasks import get_task


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def decode(task, row):
    return [int(task.vocab.tokens[i]) for i in row.tolist() if i != 0]


def check_alternates(task, ex, length):
    for i, t in zip(ex.input, ex.target):
        seq = decode(task, i) + decode(task, t)
        assert len(seq) == 2 * length and all(seq[k] != seq[k + 1] for k in range(2 * length - 1))


def test_continues_the_alternation():
    task = get_task("alternating", length=5)
    ex = task.sample(20, gen())
    check_alternates(task, ex, 5)
    assert {decode(task, i)[0] for i in ex.input} == {0, 1}  # both starting bits occur


def test_domain_is_both_examples():
    task = get_task("alternating")
    dom = task.domain()
    assert dom.input.shape == dom.target.shape == (2, 8)
    check_alternates(task, dom, 8)
    assert {decode(task, i)[0] for i in dom.input} == {0, 1}


def test_length_override():
    task = get_task("alternating", length=5)
    check_alternates(task, task.sample(10, gen(), length=13), 13)


def test_bad_parameters():
    with pytest.raises(ConfigError, match="task.length=0"):
        get_task("alternating", length=0)
