"""Train and test are disjoint where the task asks for it, checked on the examples themselves."""

import torch

from conftest import small_config
from toyformer import RunConfig
from toyformer.data.splits import TrainData, frequent_inputs, input_keys, make_splits


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


def _one_digit_sums(task, inputs):
    """Rows of ``inputs`` that are single-digit + single-digit sums."""
    plus = task.vocab.id("+")
    return ((inputs[:, 1] == plus) & (inputs != 0).sum(1).eq(3)).nonzero().flatten()


def test_small_sub_domain_is_trained_on_and_not_held_out():
    # addition draws 1-digit + 1-digit sums a ninth of the time, only 100 inputs: held-out rows
    # repeat them, so they are training-only; everything held out is still never trained on
    cfg = RunConfig.from_dict({"task": {"name": "addition"}})
    task = cfg.task.build()
    splits = make_splits(task, cfg)
    assert (len(splits.val), len(splits.test)) == (cfg.eval.val_size, cfg.eval.test_size)
    held = torch.cat([splits.val.input, splits.test.input])
    assert len(_one_digit_sums(task, held)) == 0
    data = TrainData(task, splits, 512, seed=0)
    batches = torch.cat([data.batch(s).input for s in range(40)])
    assert len(rows(batches[_one_digit_sums(task, batches)])) == 100
    assert not rows(batches) & rows(held)
    # two-digit + one-digit sums (1,800 inputs, expected 0.3 times each in 2,512 rows) stay held out
    assert any(r[2] == task.vocab.id("+") and r[4] == 0 for r in held.tolist())


def test_held_out_rows_without_repeats_are_drawn_as_before():
    cfg = small_config({"name": "sort", "length": 12})
    task = cfg.task.build()
    splits = make_splits(task, cfg)
    assert frequent_inputs(task.sample, input_keys(splits.test.input), seed=0) is None
    assert torch.equal(splits.val.input, task.sample(64, torch.Generator().manual_seed(cfg.eval.seed)).input)
    assert torch.equal(splits.test.input, task.sample(128, torch.Generator().manual_seed(cfg.eval.seed + 1)).input)
