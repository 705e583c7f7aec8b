"""parity: the answer is the number of ones mod 2."""

import pytest
import torch

from toyformer import ConfigError
from toyformer.tasks import get_task


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def decode(task, row):
    return [task.vocab.tokens[i] for i in row.tolist() if i != 0]


def test_parity_recomputed():
    task = get_task("parity", length=9)
    ex = task.sample(200, gen())
    assert ex.input.shape == (200, 9)
    for i, t in zip(ex.input, ex.target):
        assert decode(task, t) == [str(decode(task, i).count("1") % 2)]


def test_domain_is_every_bit_string():
    task = get_task("parity", length=5)
    dom = task.domain()
    strings = ["".join(decode(task, r)) for r in dom.input]
    assert sorted(strings) == [format(k, "05b") for k in range(32)]
    assert all(decode(task, t) == [str(s.count("1") % 2)] for s, t in zip(strings, dom.target))
    assert len(get_task("parity", length=16).domain()) == 2**16
    assert get_task("parity", length=17).domain() is None


def test_length_override():
    assert get_task("parity").sample(3, gen(), length=30).input.shape == (3, 30)


def test_bad_parameters():
    with pytest.raises(ConfigError, match="task.length=0"):
        get_task("parity", length=0)
