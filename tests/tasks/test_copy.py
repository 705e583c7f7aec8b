"""copy: the target is the input."""

import pytest
import torch

from toyformer import ConfigError
from toyformer.tasks import get_task


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_copy_is_identity():
    task = get_task("copy", length=7, vocab_size=3)
    ex = task.sample(50, gen())
    assert ex.input.shape == (50, 7) and torch.equal(ex.target, ex.input)
    assert {task.vocab.tokens[k] for k in ex.input.flatten().tolist()} == {"0", "1", "2"}


def test_length_override():
    ex = get_task("copy").sample(3, gen(), length=33)
    assert ex.input.shape == ex.target.shape == (3, 33)


@pytest.mark.parametrize("params", [{"length": 0}, {"vocab_size": 1}, {"vocab_size": 1001}])
def test_bad_parameters(params):
    with pytest.raises(ConfigError, match="out of range"):
        get_task("copy", **params)
