"""The LSTM family: where it fits, what it refuses, that it reads left to right, and that it
learns what the suite says an LSTM can (parity, beyond its training lengths)."""

import pytest
import torch

from toyformer import ConfigError, RunConfig, train, train_replicas
from toyformer.data import format_batch
from toyformer.experiments.chomsky.score import model_predictor, protocol_score
from toyformer.models import build_model
from toyformer.models.recurrent import RecurrentEncoder
from toyformer.tasks import get_task


def lstm_config(task="parity", layout="masked", **model):
    return RunConfig.from_dict({"task": task, "layout": layout,
                                "model": {"family": "lstm", "d_model": 16, "n_layers": 1, **model},
                                "train": {"steps": 4}, "eval": {"every": 4, "val_size": 8, "test_size": 8},
                                "data": {"batch_size": 4, "masking": "answer"}})


@pytest.mark.parametrize("task, layout", [("parity", "classifier"), ("reverse", "tagger"), ("parity", "masked"),
                                          ("stack_manipulation", "masked")])
def test_lstm_stands_in_for_the_encoder(task, layout):
    cfg = lstm_config(task, layout)
    model = build_model(cfg.model, layout, cfg.task.build(), (12, 12))
    assert any(isinstance(m, torch.nn.LSTM) for m in model.modules())
    ex = cfg.task.build().sample(3, torch.Generator().manual_seed(0), length=6)
    logits = model(format_batch(ex, layout))
    assert logits.shape[0] == 3 and torch.isfinite(logits).all()


@pytest.mark.parametrize("layout", ["causal", "seq2seq"])
def test_layouts_with_a_decoder_are_refused(layout):
    cfg = lstm_config("reverse", layout)
    with pytest.raises(ConfigError, match="allowed layouts: classifier, tagger, masked"):
        build_model(cfg.model, layout, cfg.task.build(), (8, 8))


@pytest.mark.parametrize("option", [{"positional": "rope"}, {"random_positions": True}, {"attention_window": 2},
                                    {"positions_from": "both"}, {"causal_encoder": True}])
def test_transformer_only_options_are_refused(option):
    with pytest.raises(ConfigError, match="model.family='lstm'"):
        lstm_config(**option)


def test_lstm_width_need_not_divide_by_heads():
    assert lstm_config(d_model=30, n_heads=4).model.d_model == 30


def test_lstm_seeds_are_not_batched_replicas():
    with pytest.raises(ConfigError, match="cannot train as batched replicas"):
        train_replicas(lstm_config(), k=2)


def test_lstm_reads_left_to_right():
    """An output depends only on the tokens up to it: changing a later token changes nothing before it."""
    torch.manual_seed(0)
    enc = RecurrentEncoder(vocab_size=9, hidden=8, n_layers=2)
    x = torch.randint(5, 9, (4, 10))
    y = x.clone()
    y[:, 6] = torch.where(x[:, 6] == 5, 6, 5)
    a, b = enc(x), enc(y)
    assert torch.equal(a[:, :6], b[:, :6]) and not torch.equal(a[:, 6:], b[:, 6:])


@pytest.mark.slow
def test_lstm_learns_parity_beyond_its_training_lengths():
    """The cpu budget's LSTM cell (lengths 1..40, growing; learning rate 1e-2) is right at every
    length 41..100: the suite's LSTM result (and the committed run's cell, bit for bit)."""
    from toyformer.experiments.chomsky.protocol import BUDGETS, cell_config

    run = train(cell_config("parity_check", "lstm", BUDGETS["cpu"], seed=0, lr=1e-2))
    predict = model_predictor(run.model, "masked", run.device)
    assert protocol_score(predict, get_task("parity"), list(range(41, 101, 10)), 64)["score"] >= 0.99


@pytest.mark.parametrize("family", ["transformer", "lstm"])
def test_reports_of_suite_runs_read_the_answer_slots(family, tmp_path):
    """The suite's layout (masked, answer slots) and the LSTM in the inspect and report layers:
    the model's answers are read at the slots, a report is written (no attention drawn for an LSTM)."""
    from toyformer import write_report
    from toyformer.inspect.capture import predict, subject

    model = {"family": "lstm", "d_model": 16, "positional": "none"} if family == "lstm" else {
        "d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32}
    cfg = RunConfig.from_dict({"task": "stack_manipulation", "model": model, "train": {"steps": 4},
                               "eval": {"every": 4, "val_size": 8, "test_size": 8},
                               "data": {"batch_size": 4, "min_length": 1, "max_length": 6}})
    run = train(cfg, out_dir=tmp_path / "run")
    ex = run.splits.test[:3]
    answers = predict(subject(run), ex.input)
    assert torch.equal((answers != 0).sum(1), (ex.target != 0).sum(1))  # one answer token per slot, row by row
    page = write_report(tmp_path / "run").read_text()
    assert ("Attention" in page) == (family == "transformer")
