"""sort: the target is sorted and a permutation of the input."""

from collections import Counter

import pytest
import torch

from toyformer import ConfigError
from toyformer.tasks import get_task


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_sorted_and_a_permutation():
    task = get_task("sort", length=9, vocab_size=12)  # "10" < "2" as strings: compare as numbers
    ex = task.sample(100, gen())
    for i, t in zip(ex.input.tolist(), ex.target.tolist()):
        xs = [int(task.vocab.tokens[k]) for k in i]
        ys = [int(task.vocab.tokens[k]) for k in t]
        assert all(a <= b for a, b in zip(ys, ys[1:])) and Counter(xs) == Counter(ys)


def test_length_override():
    ex = get_task("sort").sample(3, gen(), length=50)
    assert ex.target.shape == (3, 50) and (ex.target.diff(dim=1) >= 0).all()


@pytest.mark.parametrize("params", [{"length": 0}, {"vocab_size": 1}])
def test_bad_parameters(params):
    with pytest.raises(ConfigError, match="out of range"):
        get_task("sort", **params)
