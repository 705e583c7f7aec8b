"""Evaluation breakdowns: per-position and per-row counts agree with the headline numbers."""

import pytest
import torch

from conftest import small_config
from toyformer import by_length, by_position
from toyformer.eval.evaluate import answer_columns, evaluate_examples
from toyformer.tasks.base import PAD, Examples
from toyformer.run import build


@pytest.mark.parametrize("layout", ["tagger", "causal", "seq2seq"])
def test_breakdowns_add_up_to_the_headline_numbers(layout):
    run = build(small_config(layout=layout))
    ex = run.splits.test
    ex = Examples(ex.input.clone(), ex.target.clone())
    ex.input[:40, 3:] = PAD  # variable lengths: 40 inputs of 3 tokens
    ex.target[:40, 3:] = PAD
    r = evaluate_examples(run.model, ex, layout, True, 50, run.device)
    answer = 5 + (layout != "tagger")  # answer tokens (+ <eos> for the decoders)
    assert r["pos_count"].shape == r["pos_hits"].shape == (answer,)
    assert r["pos_count"][0] == len(ex)
    assert r["pos_count"][4] == len(ex) - 40  # short rows have no token there
    assert r["pos_hits"].sum() / r["pos_count"].sum() == pytest.approx(r["token_acc"])
    assert r["row_hits"].sum() == r["pos_hits"].sum() and r["row_count"].sum() == r["pos_count"].sum()
    assert r["input_len"].tolist() == [3] * 40 + [5] * (len(ex) - 40)
    bl = by_length(r)
    assert bl["length"] == [3, 5] and bl["n"] == [40, len(ex) - 40]
    weights = torch.tensor(bl["n"], dtype=torch.float64)
    assert float((torch.tensor(bl["exact_match"]) * weights).sum() / weights.sum()) == pytest.approx(r["exact_match"])
    bp = by_position(r)
    assert bp["position"] == list(range(answer)) and bp["n"] == r["pos_count"].tolist()


def test_answer_columns_per_layout():
    pred, labels = torch.tensor([3, 4]), torch.tensor([3, 5])  # classifier: one answer each
    p, lab = answer_columns(pred, labels, "classifier", 0)
    assert p.shape == lab.shape == (2, 1)
    seq = torch.arange(12).reshape(2, 6)  # causal: the answer starts at column prompt_len - 1
    p, lab = answer_columns(seq, seq, "causal", prompt_len=4)
    assert lab.tolist() == [[3, 4, 5], [9, 10, 11]]
