"""Diagnosis: runs made to fail in a known way get the right finding, with evidence and settings."""

import json
import math

import pytest
import torch

from conftest import small_config
from toyformer import diagnose, train
from toyformer.eval.diagnosis import chance_level
from toyformer.tasks.base import Examples


def symptoms(run):
    return [f["symptom"] for f in run.summary["diagnosis"]]


def finding(run, symptom):
    return next(f for f in run.summary["diagnosis"] if f["symptom"] == symptom)


def keys(f):
    return [s["key"] for s in f["settings"]]


def test_a_solved_run_has_nothing_to_diagnose(tmp_path):
    run = train(small_config(train={"steps": 400}, eval={"every": 20, "target": 1.0}), out_dir=tmp_path / "r")
    assert run.summary["solved_at_step"] is not None
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["diagnosis"] == []


def test_too_few_steps_is_chance():
    run = train(small_config(train={"steps": 5, "warmup_steps": 0}, eval={"every": 5}))
    assert symptoms(run)[0] == "chance"
    f = finding(run, "chance")
    ev = f["evidence"]
    assert ev["classes"] == 10 and ev["chance_loss"] == pytest.approx(math.log(10), abs=1e-3)
    assert ev["train_loss"] >= 0.9 * ev["chance_loss"]
    assert {"model.norm", "train.warmup_steps", "train.lr", "train.steps"} <= set(keys(f))
    suspects = [s["key"] for s in f["settings"] if s["suspect"]]
    assert suspects[:2] == ["train.warmup_steps", "train.steps"]  # suspects come first
    assert "model.pooling" not in keys(f)  # a tagger has no pooling


def test_a_tiny_learning_rate_is_chance_and_names_the_learning_rate():
    run = train(small_config(train={"steps": 40, "lr": 1e-7}))
    lr = next(s for s in finding(run, "chance")["settings"] if s["key"] == "train.lr")
    assert lr["value"] == 1e-7 and lr["suspect"]


def test_a_tiny_pool_with_many_epochs_is_memorising():
    cfg = small_config({"name": "reverse", "length": 5, "vocab_size": 50},
                       data={"train_size": 16, "batch_size": 16}, train={"epochs": 100}, eval={"every": 50})
    run = train(cfg)
    f = finding(run, "memorising")
    assert f["evidence"]["train_token_acc"] > 0.9 and f["evidence"]["gap"] > 0.5
    assert keys(f)[0] == "data.train_size" and {"train.weight_decay", "model.dropout"} <= set(keys(f))


@pytest.mark.parametrize("clip", [None, 1.0])
def test_a_huge_learning_rate_diverges(clip):
    run = train(small_config(train={"steps": 40, "lr": 1e4 if clip is None else 30.0, "grad_clip": clip, "warmup_steps": 0}))
    assert symptoms(run)[0] == "diverged"
    f = finding(run, "diverged")
    assert keys(f)[0] == "train.lr" and f["settings"][0]["suspect"]
    if clip is None:  # NaN: recorded as a string so that summary.json stays valid JSON
        assert "first_nonfinite_step" in f["evidence"]
        json.loads(json.dumps(run.summary["diagnosis"], allow_nan=False))
    else:
        assert f["evidence"]["final_train_loss"] > 1.5 * f["evidence"]["chance_loss"]


def test_a_causal_encoder_on_reverse_is_limited_to_some_positions():
    # position i of a reversed sequence needs token L-1-i: a causal encoder sees it only for i >= L/2
    run = train(small_config(model={"causal_encoder": True}, train={"steps": 120}, eval={"every": 40}))
    f = finding(run, "by_position")
    acc = f["evidence"]["acc_by_position"]
    assert min(acc[3:]) > 0.9 and max(acc[:2]) < 0.4
    first = f["settings"][0]
    assert first["key"] == "model.causal_encoder" and first["value"] is True and first["suspect"]


def test_no_positions_on_reverse_points_at_the_positional_encoding():
    run = train(small_config(model={"positional": "none"}, train={"steps": 60}))
    settings = [s for f in run.summary["diagnosis"] for s in f["settings"] if s["suspect"]]
    assert any(s["key"] == "model.positional" and s["value"] == "none" for s in settings)


def test_accuracy_limited_to_some_lengths():
    cfg = small_config()
    summary = {
        "target": {"metric": "exact_match", "value": 1.0}, "solved_at_step": None, "test_exact_match": 0.6,
        "chance": {"classes": 10, "chance_loss": math.log(10), "blind_loss": math.log(10)},
        "test_by_position": {"position": [0, 1], "n": [100, 100], "token_acc": [0.8, 0.8]},
        "test_by_length": {"length": [2, 3, 4], "n": [50, 50, 50], "token_acc": [1.0, 0.9, 0.5],
                           "exact_match": [1.0, 0.7, 0.1]},
    }
    metrics = [{"step": 10, "train_loss": 0.5, "val_loss": 0.6, "train_token_acc": 0.8, "val_token_acc": 0.8}]
    (f,) = diagnose(cfg, metrics, summary)
    assert f["symptom"] == "by_length"
    assert f["evidence"]["best_length"] == 2 and f["evidence"]["worst_length"] == 4


def test_chance_level_counts_answer_classes_and_the_input_blind_loss():
    # answers: position 0 always "a" (id 5), position 1 uniform over 4 tokens
    target = torch.tensor([[5, 5], [5, 6], [5, 7], [5, 8]]).repeat(25, 1)
    ex = Examples(target.clone(), target)
    c = chance_level(ex, "tagger", True)
    assert c["classes"] == 4 and c["chance_loss"] == pytest.approx(math.log(4))
    assert c["blind_loss"] == pytest.approx((0 + math.log(4)) / 2)
