"""count_ones (R0): the answer is the number of ones."""

import pytest
import torch

from toyformer import ConfigError
from toyformer.tasks import get_task


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def decode(task, row):
    return [task.vocab.tokens[i] for i in row.tolist() if i != 0]


def test_domain_is_r0_format():
    task = get_task("count_ones")
    assert task.vocab.tokens[5:] == tuple(str(i) for i in range(11))
    dom = task.domain()
    assert dom.input.shape == (10, 10) and dom.target.shape == (10, 1)
    counts = set()
    for i, t in zip(dom.input, dom.target):
        bits, n = "".join(decode(task, i)), int(decode(task, t)[0])
        assert bits == "1" * n + "0" * (10 - n)
        counts.add(n)
    assert counts == set(range(1, 11))


def test_shuffled_counts_recomputed():
    task = get_task("count_ones", length=12, shuffled=True)
    assert task.domain() is None
    ex = task.sample(300, gen())
    patterns = set()
    for i, t in zip(ex.input, ex.target):
        bits = "".join(decode(task, i))
        assert len(bits) == 12 and set(bits) <= {"0", "1"}
        assert decode(task, t) == [str(bits.count("1"))]
        patterns.add(bits)
    assert len(patterns) > 100  # the ones really move
    assert {int(decode(task, t)[0]) for t in ex.target} == set(range(1, 13))


def test_length_override():
    task = get_task("count_ones", length=10)
    ex = task.sample(50, gen(), length=4)
    assert ex.input.shape == (50, 4) and ex.target.max() <= task.vocab.id("4")
    with pytest.raises(ConfigError, match="length=11"):  # no class token for 11 ones
        task.sample(2, gen(), length=11)


def test_bad_parameters():
    with pytest.raises(ConfigError, match="task.length=0"):
        get_task("count_ones", length=0)
