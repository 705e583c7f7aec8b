"""The suite's protocol: its score on constructed predictors (a perfect one, a constant one,
checked against a count made in plain Python with the reference code's mask rule), the score of
a model read at the masked layout's slots, the configurations of the cells, the verdicts, and the
published numbers."""

import json
from importlib import resources

import pytest
import torch

from toyformer import ConfigError
from toyformer.data import IGNORE, format_batch
from toyformer.experiments.chomsky.protocol import BUDGETS, SCHEMES, cell_config, longest_sequence, verdict
from toyformer.experiments.chomsky.score import accuracy, model_predictor, protocol_score
from toyformer.experiments.chomsky.table import compare, published_for, summarise
from toyformer.models import build_model
from toyformer.tasks import get_task
from toyformer.tasks.base import Examples
from toyformer.tasks.chomsky import SUITE

LENGTHS = [41, 57, 100]


def suite_task(name):
    return get_task(SUITE[name].task, **SUITE[name].params)


@pytest.mark.parametrize("name", list(SUITE))
def test_a_perfect_predictor_scores_one(name):
    result = protocol_score(lambda ex: ex.target, suite_task(name), LENGTHS, n=16)
    assert result["score"] == 1.0 and set(result["per_length"]) == set(LENGTHS)


@pytest.mark.parametrize("name", ["stack_manipulation", "binary_addition", "binary_multiplication", "duplicate_string",
                                  "cycle_navigation", "bucket_sort"])
def test_a_constant_predictor_scores_its_share_of_the_counted_tokens(name):
    """Always answering "0": at each length, the share of "0" among the answer tokens up to and
    including the end mark (or all of them), counted over the strings in plain Python; the score
    is the plain mean over lengths."""
    task = suite_task(name)
    zero = task.vocab.id("0")
    got = protocol_score(lambda ex: torch.full_like(ex.target, zero), task, LENGTHS, n=32, seed=7)
    expected = []
    for length in LENGTHS:
        ex = task.sample(32, torch.Generator().manual_seed(7 * 100_003 + length), length=length)
        hits = counted = 0
        for row in ex.target.tolist():
            tokens = [task.vocab.tokens[i] for i in row]
            kept = tokens[: tokens.index("end") + 1] if "end" in tokens else tokens
            hits += kept.count("0")
            counted += len(kept)
        expected.append(hits / counted)
    assert got["score"] == pytest.approx(sum(expected) / len(expected))
    assert 0 < got["score"] < 1


def test_a_constant_class_is_right_about_half_the_time_on_parity():
    task = suite_task("parity_check")
    score = protocol_score(lambda ex: torch.full_like(ex.target, task.vocab.id("1")), task, LENGTHS, n=2000)["score"]
    assert abs(score - 0.5) < 0.03


def test_accuracy_refuses_misshapen_predictions():
    task = suite_task("odds_first")
    ex = task.sample(4, torch.Generator().manual_seed(0), length=6)
    assert accuracy(task, ex.target, ex.target) == (24, 24)
    with pytest.raises(ValueError):
        accuracy(task, ex.target, ex.target[:, :3])


@pytest.mark.parametrize("name", ["parity_check", "stack_manipulation", "duplicate_string"])
def test_model_predictions_are_read_at_the_answer_slots(name):
    """The predictor's answers are the argmax at the <unk> slots behind the input, in order."""
    task = suite_task(name)
    cfg = cell_config(name, "transformer/rope", BUDGETS["quick"], seed=0, lr=1e-3, max_test_length=44)
    torch.manual_seed(0)
    model = build_model(cfg.model, "masked", task, (12, 12))
    ex = task.sample(5, torch.Generator().manual_seed(1), length=9)
    got = model_predictor(model, "masked", "cpu", heads=2)(ex)
    batch = format_batch(ex, "masked")
    model.eval()
    logits = model(batch)
    for row in range(5):
        slots = (batch.labels[row] != IGNORE).nonzero().flatten()
        assert slots.tolist() == list(range(ex.input.shape[1], ex.input.shape[1] + ex.target.shape[1]))
        assert got[row].tolist() == logits[row, slots].argmax(-1).tolist()


def test_a_decoder_scores_lengths_pooled_as_it_does_each_alone(monkeypatch):
    """Pooled examples of many lengths are decoded in batches cut to their own lengths: the answers
    are those of decoding each length alone, and each batch is only as wide as its own rows."""
    import toyformer.experiments.chomsky.score as score

    cfg = cell_config("parity_check", "transformer/scratchpad", BUDGETS["quick"], 0, 1e-3, max_test_length=60)
    task = cfg.task.build()
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.layout, task, (60, 60))
    monkeypatch.setattr(score, "model_rows", lambda model, batch, seq: min(batch, 5))  # several batches per length
    widths = []
    real = score.greedy
    monkeypatch.setattr(score, "greedy", lambda m, lay, inputs, n, sep: widths.append(inputs.shape[1]) or
                        real(m, lay, inputs, n, sep))
    predict = model_predictor(model, cfg.layout, "cpu")
    drawn = [task.sample(7, torch.Generator().manual_seed(length), length=length) for length in (3, 17, 41)]
    together = predict(Examples.cat(drawn))
    assert widths[0] < 10 and widths[-1] > 40  # the short rows' batches carry no long padding
    same = counted = 0
    for k, ex in enumerate(drawn):
        alone = predict(ex)
        got = together[7 * k : 7 * k + 7]
        same, counted = same + int((got[:, : alone.shape[1]] == alone).sum()), counted + alone.numel()
    assert same / counted >= 0.99, (same, counted)  # the same greedy answers (a near-tie may flip on another CPU)


def test_cell_configs_follow_the_protocol():
    cfg = cell_config("bucket_sort", "transformer/randomised", BUDGETS["full"], seed=3, lr=3e-4)
    assert (cfg.task.name, cfg.task.params["vocab_size"], cfg.layout, cfg.data.masking) == \
        ("sort", 5, "masked", "answer")
    assert (cfg.data.min_length, cfg.data.max_length, cfg.data.length_sampling) == (1, 40, "batch")
    assert (cfg.train.steps, cfg.data.batch_size, cfg.train.lr, cfg.train.weight_decay, cfg.train.schedule) == (
        1_000_000, 128, 3e-4, 0.0, "constant")
    assert (cfg.model.n_layers, cfg.model.d_model, cfg.model.n_heads, cfg.model.random_positions) == (5, 64, 8, True)
    assert cfg.model.max_len >= longest_sequence("bucket_sort", 500) == 1000
    lstm = cell_config("parity_check", "lstm", BUDGETS["full"], seed=0, lr=1e-4)
    assert (lstm.model.family, lstm.model.d_model, lstm.model.n_layers) == ("lstm", 256, 1)
    cpu_lstm = cell_config("even_pairs", "lstm", BUDGETS["cpu"], 0, 3e-3)
    assert (cpu_lstm.data.length_sampling, cpu_lstm.train.steps) == ("curriculum", 1500)
    long_rnn = cell_config("even_pairs", "stack_rnn", BUDGETS["long"], 0, 3e-3)
    assert (long_rnn.train.steps, long_rnn.model.d_model, long_rnn.data.length_sampling) == (20_000, 128, "curriculum")
    with pytest.raises(ConfigError, match="unknown column"):
        cell_config("even_pairs", "transformer/bogus", BUDGETS["cpu"], 0, 1e-3)
    with pytest.raises(ConfigError, match="unknown suite task"):
        cell_config("parity", "lstm", BUDGETS["cpu"], 0, 1e-3)


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_every_scheme_builds(scheme):
    task = "parity_check" if scheme == "scratchpad" else "reverse_string"
    cell_config(task, f"transformer/{scheme}", BUDGETS["quick"], 0, 1e-3)


def test_the_scratchpad_column_is_a_decoder_of_the_regular_tasks():
    cfg = cell_config("modular_arithmetic", "transformer/scratchpad", BUDGETS["cpu"], 0, 1e-3)
    assert (cfg.task.name, cfg.task.params["of"], cfg.layout) == ("scratchpad", "modular_arithmetic_simple", "causal")
    assert cfg.model.symbol_positions and cfg.model.attention_window == 1 and cfg.data.max_length == 40
    with pytest.raises(ConfigError, match="needs a regular task with an automaton, not 'reverse_string'"):
        cell_config("reverse_string", "transformer/scratchpad", BUDGETS["cpu"], 0, 1e-3)


@pytest.mark.parametrize("column", ["rnn", "stack_rnn", "tape_rnn"])
def test_the_recurrent_columns_share_the_lstm_budget(column):
    cfg = cell_config("reverse_string", column, BUDGETS["cpu"], 0, 3e-3)
    assert (cfg.model.family, cfg.model.d_model, cfg.model.n_layers) == (column, 128, 1)
    assert cfg.train.steps == BUDGETS["cpu"].steps["lstm"] and cfg.layout == "masked"


def test_verdicts():
    assert [verdict(s, 0.5) for s in (1.0, 0.9, 0.899, 0.55, 0.549, 0.3)] == [
        "solved", "solved", "between", "between", "chance", "chance"]
    assert [verdict(s, 0.2) for s in (0.249, 0.25, 0.325)] == ["chance", "between", "between"]


def published():
    return json.loads(resources.files("toyformer.bench").joinpath("chomsky_published.json").read_text())


CONFIRMED_ROWS = ("modular_arithmetic", "parity_check", "stack_manipulation", "reverse_string", "duplicate_string",
                  "odds_first")


def test_published_numbers_cover_every_task_and_column():
    pub = published()
    assert set(pub["scores"]) == set(SUITE) and pub["sources"]["deletang2023"]["table"] == "Table 2"
    assert "verified_against_pdf" not in pub  # replaced by the per-cell account in "checks"
    for name, s in pub["scores"].items():
        recurrent = {"lstm", "transformer"} | ({"rnn", "stack_rnn", "tape_rnn"} if name in CONFIRMED_ROWS else set())
        assert set(s["deletang2023"]) == recurrent and len(s["ruoss2023"]) == 11
        assert all(0 <= v <= 100 for v in [*s["deletang2023"].values(), *s["ruoss2023"].values()])
        assert pub["chance"][name] == 100 * SUITE[name].chance
    assert published_for(pub, "even_pairs", "transformer/randomised") == {
        "value": 1.0, "source": "Ruoss et al. random_relative", "check": None}
    assert published_for(pub, "even_pairs", "transformer/both_ends") is None
    assert published_for(pub, "even_pairs", "rnn") is None  # no confirmed value: not typed in


def test_provenance_follows_the_checked_record():
    """The confirmed cells are those of ../shared/data/chomsky_published_checked.md: 14 of Deletang
    et al.'s 30 (LSTM, transformer), the RNN, Stack-RNN and Tape-RNN of its six confirmed rows, none
    of Ruoss et al.'s; each names a source that exists."""
    pub = published()
    confirmed = pub["checks"]["confirmed"]
    assert confirmed["ruoss2023"] == {}
    deletang = [(t, c) for t, cols in confirmed["deletang2023"].items() for c in cols]
    assert len([x for x in deletang if x[1] in ("lstm", "transformer")]) == 14
    assert {t for t, c in deletang if c == "tape_rnn"} == set(CONFIRMED_ROWS)
    assert all(key in pub["checks"]["sources"] for cols in confirmed["deletang2023"].values() for key in cols.values())
    assert published_for(pub, "parity_check", "transformer/none")["check"] is None  # Ruoss: unverified
    assert "DeltaFormer" in published_for(pub, "parity_check", "stack_rnn")["check"]
    assert published_for(pub, "stack_manipulation", "rnn")["value"] == pytest.approx(0.56)
    assert published_for(pub, "cycle_navigation", "lstm")["check"] is None
    assert published_for(pub, "even_pairs", "lstm")["check"] is not None


def test_comparison_counts_verdicts_spreads_and_wins():
    run = lambda score, seed: {"score": score, "train_score": 1.0, "lr": 1e-3, "seed": seed}  # noqa: E731
    cells = [summarise("parity_check", "lstm", [run(0.98, 0), run(1.0, 1)], 0.5),  # published 100: solved, in spread
             summarise("parity_check", "transformer/none", [run(0.60, 0), run(0.70, 1)], 0.5),  # published chance
             summarise("reverse_string", "transformer/both_ends", [run(0.97, 0)], 0.5)]  # above 95.1
    cmp = compare(cells, published())
    assert cmp["verdicts"] == {"reproduced": 1, "cells": 2, "confirmed_reproduced": 1, "confirmed_cells": 1}
    assert cmp["spread"] == {"within": 1, "cells": 2}
    assert [r["check"] is not None for r in cmp["rows"]] == [True, False, False]  # LSTM confirmed; Ruoss not
    assert cmp["beats"]["tasks"] == 2 and [b["beats"] for b in cmp["best"]] == [True, True]
    assert cells[1]["mean"] == pytest.approx(0.65) and cells[1]["max"] == 0.70
