"""Diagnosis: runs made to fail in a known way get the right finding, with evidence and settings."""

import json
import math
import re

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
    run = train(small_config(train={"steps": 400}, eval={"every": 20, "target": 0.99}), out_dir=tmp_path / "r")
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
    run = train(small_config(train={"steps": 40, "lr": 1e4 if clip is None else 30.0, "grad_clip": clip,
                                    "warmup_steps": 0}))
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


# ---- every sentence cites the numbers it was built from; missing numbers do not crash -----------

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
CHANCE = {"classes": 10, "chance_loss": math.log(10), "blind_loss": math.log(10)}


def _summary(**extra):
    return {"target": {"metric": "exact_match", "value": 1.0}, "solved_at_step": None, "test_exact_match": 0.3,
            "chance": CHANCE, **extra}


def _rows(losses, **extra):
    return [{"step": 10 * (i + 1), "train_loss": x, "val_loss": x, **extra} for i, x in enumerate(losses)]


STOP = {"step": 27, "weights_from_step": 20, "reason": "NaN"}
BY_POSITION = {"position": [0, 1, 2], "n": [9, 9, 9], "token_acc": [0.95, 0.9, 0.12]}
BY_LENGTH = {"length": [2, 3, 4], "n": [50, 50, 50], "token_acc": [1.0, 0.9, 0.5], "exact_match": [1.0, 0.7, 0.1]}
RISING = [{**r, "val_exact_match": v} for r, v in zip(_rows([0.5] * 6), [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])]
CASES = {  # name: (first symptom, metrics, summary)
    "chance": ("chance", _rows([2.31, 2.30]), _summary()),
    "memorising": ("memorising", _rows([0.4, 0.1], train_token_acc=0.95, val_token_acc=0.41), _summary()),
    "diverged above chance": ("diverged", _rows([2.0, 5.0]), _summary()),
    "unstable": ("diverged", _rows([0.2, 1.5]), _summary()),
    "null loss": ("diverged", _rows([0.5, None]), _summary()),
    "stopped": ("diverged", _rows([1.0]), _summary(diverged=STOP)),
    "stopped, no rows": ("diverged", [], _summary(diverged={**STOP, "step": 7, "weights_from_step": 0})),
    "by position": ("by_position", _rows([0.5]), _summary(test_by_position=BY_POSITION)),
    "by length": ("by_length", _rows([0.5]), _summary(test_by_length=BY_LENGTH)),
    "still improving": ("still_improving", RISING, _summary()),
    "unexplained": ("unexplained", _rows([0.5, 0.5]), _summary()),
}


def _evidence_values(evidence: dict) -> list[float]:
    values = []
    for key, value in evidence.items():
        values += [float(x) for x in NUMBER.findall(key)]  # a threshold named in its key (positions_above_0.8)
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                values.append(float(v))
    return values


@pytest.mark.parametrize("case", list(CASES))
def test_every_number_in_a_finding_is_in_its_evidence(case):
    symptom, metrics, summary = CASES[case]
    findings = diagnose(small_config(), metrics, summary)
    assert findings[0]["symptom"] == symptom
    for f in findings:
        values = _evidence_values(f["evidence"])
        for text in (f["title"], f["detail"]):
            assert "None" not in text and "nan" not in text, text
            for token in NUMBER.findall(text):
                x, decimals = float(token), len(token.split(".")[1]) if "." in token else 0
                tol = max(0.5 * 10 ** -decimals, 5e-3 * abs(x)) + 1e-9
                assert any(abs(x - v) <= tol for v in values), (token, text, f["evidence"])


def test_missing_losses_are_read_as_a_divergence_not_a_crash():
    (f, *_) = diagnose(small_config(), _rows([0.5, None]), _summary())
    assert f["symptom"] == "diverged" and f["title"].startswith("Training diverged at step 20")
    (f, *_) = diagnose(small_config(), _rows([None, None]), _summary())
    assert f["symptom"] == "diverged" and f["evidence"]["best_train_loss"] is None


def test_a_stopped_run_names_its_step_in_the_title():
    (f, *_) = diagnose(small_config(), *CASES["stopped"][1:])
    assert f["title"] == "Training diverged at step 27: the loss became NaN or infinite"
    assert "weights are those of step 20" in f["detail"]


def test_unexplained_claims_only_what_it_measured():
    (f,) = diagnose(small_config(), *CASES["unexplained"][1:])
    assert f["symptom"] == "unexplained" and f["detail"].startswith("Test exact_match 0.300;")
    assert "learned" not in f["detail"]
