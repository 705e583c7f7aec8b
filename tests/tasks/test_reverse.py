"""reverse: reversing twice is the identity."""

import pytest
import torch

from toyformer import ConfigError
from toyformer.tasks import get_task


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_reverse_twice_is_identity():
    task = get_task("reverse", length=7, vocab_size=5)
    ex = task.sample(50, gen())
    assert ex.input.shape == ex.target.shape == (50, 7)
    for i, t in zip(ex.input.tolist(), ex.target.tolist()):
        assert t[::-1] == i and all(task.vocab.tokens[k] in {"0", "1", "2", "3", "4"} for k in i)


def test_length_override():
    assert get_task("reverse").sample(3, gen(), length=40).input.shape == (3, 40)


@pytest.mark.parametrize("params", [{"length": 0}, {"vocab_size": 1}])
def test_bad_parameters(params):
    with pytest.raises(ConfigError, match="out of range"):
        get_task("reverse", **params)
