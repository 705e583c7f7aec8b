"""Training: determinism to the bit, exact resume, early stop, schedules, and learning."""

import pytest
import torch

from conftest import small_config
from toyformer import train
from toyformer.training.optim import lr_at
from toyformer.config import TrainConfig
from toyformer.files import read_json


def weights(run):
    return torch.cat([p.detach().flatten() for p in run.model.parameters()])


def test_same_seed_same_bits():
    cfg = small_config(model={"dropout": 0.1})
    a, b = train(cfg), train(cfg)
    assert torch.equal(weights(a), weights(b))
    assert no_time(a.metrics) == no_time(b.metrics)


def test_other_seed_other_bits():
    assert not torch.equal(weights(train(small_config(seed=0))), weights(train(small_config(seed=1))))


class Interrupt(Exception):
    pass


def no_time(rows):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]


@pytest.mark.parametrize("data", [{"batch_size": 16}, {"batch_size": 16, "train_size": 100}])
def test_resume_after_interrupt_equals_no_interruption(tmp_path, data):
    cfg = small_config(model={"dropout": 0.1}, data=data)
    whole = train(cfg, out_dir=tmp_path / "whole")

    def stop_at_40(record):
        if record["step"] == 40:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cfg, out_dir=tmp_path / "cut", on_eval=stop_at_40)
    assert not (tmp_path / "cut" / "summary.json").exists()
    resumed = train(None, out_dir=tmp_path / "cut", resume=True)
    assert torch.equal(weights(whole), weights(resumed))
    assert no_time(resumed.metrics) == no_time(whole.metrics)
    keep = lambda s: {k: v for k, v in s.items() if not k.endswith("_s")}  # noqa: E731
    assert keep(read_json(tmp_path / "cut" / "summary.json")) == keep(read_json(tmp_path / "whole" / "summary.json"))


def test_early_stop_records_time_to_solve():
    run = train(small_config(train={"steps": 2000}, eval={"every": 20, "target": 0.99}))
    s = run.summary
    assert s["solved_at_step"] is not None and s["steps"] == s["solved_at_step"] < 2000
    assert s["solved_at_s"] <= s["wall_s"] + 1e-9


def test_max_time_stops_the_run():
    run = train(small_config(train={"steps": 10**6, "max_time_s": 0.5}, eval={"every": 10**5}))
    assert run.summary["steps"] < 10**6 and run.summary["wall_s"] >= 0.5


def test_epochs_with_a_fixed_pool():
    run = train(small_config(data={"train_size": 64, "batch_size": 32}, train={"epochs": 3}))
    assert run.summary["steps"] == 6


def test_warmup_then_cosine():
    cfg = TrainConfig(lr=1.0, warmup_steps=10, steps=110, min_lr_ratio=0.0)
    assert lr_at(0, 110, cfg) == pytest.approx(0.1)
    assert lr_at(9, 110, cfg) == pytest.approx(1.0)
    assert lr_at(60, 110, cfg) == pytest.approx(0.5)
    assert lr_at(110, 110, cfg) == pytest.approx(0.0)
    assert lr_at(50, 110, TrainConfig(lr=1.0, schedule="constant")) == 1.0


LEARN = {
    "classifier": ("count_ones", {}),
    "tagger": ("reverse", {"length": 8}),
    "causal": ("reverse", {"length": 5}),
    "seq2seq": ("copy", {"length": 6}),
    "masked": ("alternating", {"length": 6}),
}


@pytest.mark.parametrize("layout", list(LEARN))
def test_every_layout_learns_a_small_task(layout):
    name, params = LEARN[layout]
    cfg = small_config(
        {"name": name, **params}, layout,
        model={"d_model": 64, "n_heads": 4, "n_layers": 2, "d_ff": 128},
        train={"steps": 1500, "lr": 3e-3, "warmup_steps": 20},
        eval={"every": 50, "target": 1.0, "val_size": 500, "test_size": 500},  # a stop judged on 500
    )
    s = train(cfg).summary
    assert s["test_token_acc"] >= 0.99 and s["test_exact_match"] >= 0.99, s
