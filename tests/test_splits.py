"""Train and test are disjoint where the task asks for it, checked on the examples themselves."""

import torch

from conftest import small_config
from toyformer.splits import TrainData, input_keys, make_splits


def rows(t):
    return {tuple(r) for r in t.tolist()}


def test_stream_never_yields_a_held_out_input():
    # reverse with length 3 over 3 symbols has 27 inputs: val/test cover a good part of them
    cfg = small_config({"name": "reverse", "length": 3, "vocab_size": 3}, eval={"val_size": 4, "test_size": 6})
    task = cfg.task.build()
    splits = make_splits(task, cfg)
    held = rows(splits.val.input) | rows(splits.test.input)
    assert len(held) >= 6
    data = TrainData(task, splits, 64, seed=0)
    seen = set().union(*(rows(data.batch(s).input) for s in range(20)))
    assert seen and not (seen & held)
    assert len(seen | held) == 27  # everything else does get trained on


def test_fixed_pool_is_disjoint_and_sized():
    cfg = small_config({"name": "reverse", "length": 4, "vocab_size": 4}, data={"train_size": 50})
    splits = make_splits(cfg.task.build(), cfg)
    assert len(splits.pool) == 50
    assert not rows(splits.pool.input) & (rows(splits.val.input) | rows(splits.test.input))


def test_keys_equal_exactly_for_equal_inputs():
    x = torch.tensor([[5, 6, 0], [5, 6, 0], [6, 5, 0], [5, 6, 7]])
    k = input_keys(x)
    assert k[0] == k[1] and len(set(k.tolist())) == 3
    # right padding does not change a key
    assert input_keys(torch.tensor([[5, 6]]))[0] == k[0]
