"""*Solved* means solved (``eval/solved.py``): a run on a small finite domain is not called solved
while a held-out input is still wrong, a stream's validation grows to the rows whose 100% bounds
the error, and the verdict holds for ``eval.hold`` evaluations. The models here are oracles (right
on every input but the ones chosen), so the tests do not depend on training or on the CPU."""

from __future__ import annotations

import pytest
import torch

from toyformer import RunConfig, stats
from toyformer.data.splits import input_keys, make_splits
from toyformer.run import build


class Oracle(torch.nn.Module):
    """A classifier that answers every input right, except the inputs in ``wrong`` (keys)."""

    def __init__(self, answer, wrong: torch.Tensor, classes: int):
        super().__init__()
        self.answer, self.wrong, self.classes = answer, wrong, classes
        self.w = torch.nn.Parameter(torch.zeros(()))  # something for the optimiser to step

    def forward(self, batch):
        right = self.answer(batch.inputs)  # [B] class ids
        bad = torch.isin(input_keys(batch.inputs), self.wrong)
        guess = torch.where(bad, (right + 1) % self.classes, right)
        return torch.nn.functional.one_hot(guess, self.classes).float() * 20 + self.w  # [B, V]


def parity_run(wrong_rows: str, hold: int = 2, **eval_cfg):
    """A parity run whose model is right everywhere but on the first row of ``wrong_rows``."""
    cfg = RunConfig.from_dict({"task": "parity", "train": {"steps": 200},
                               "eval": {"every": 20, "hold": hold, **eval_cfg}})
    run = build(cfg)
    one = run.task.vocab.id("1")
    zero = run.task.vocab.id("0")
    wrong = input_keys(getattr(run.splits, wrong_rows).input[:1]) if wrong_rows else torch.empty(0, dtype=torch.long)
    run.model = Oracle(lambda x: (x == one).sum(1) % 2 + zero, wrong, len(run.task.vocab) + 4)
    return cfg, run


def fit(cfg, run):
    from toyformer.training.single import _fit

    return _fit(run, False, True, None)


def test_a_finite_domain_is_not_solved_while_one_held_out_input_is_wrong():
    cfg, run = parity_run("test")  # validation is all right; one test string is wrong
    run = fit(cfg, run)
    assert all(r["val_exact_match"] == 1.0 for r in run.metrics)  # the old rule stopped at step 20
    assert run.summary["solved"] is False and run.summary["solved_at_step"] is None
    assert run.summary["steps"] == 200
    assert run.summary["test_exact_match"] == pytest.approx(50 / 51)
    assert {r["confirm_errors"] for r in run.metrics} == {1}
    assert run.summary["splits"]["exhaustive"] and run.summary["splits"]["confirm"] == 76
    assert "76 inputs of the domain's 256" in run.summary["splits"]["note"]


def test_every_held_out_input_right_for_hold_evaluations_is_solved():
    cfg, run = parity_run("", hold=3)
    run = fit(cfg, run)
    assert run.summary["solved"] and run.summary["solved_at_step"] == 60  # the third evaluation
    assert run.summary["target"]["evidence"] == {"n": 76, "errors": 0, "exhaustive": True, "error_bound": 0.0}


def test_a_wrong_training_input_does_not_count():
    cfg, run = parity_run("pool")
    assert fit(cfg, run).summary["solved_at_step"] == 40


def test_a_stream_confirms_on_the_rows_that_bound_the_error():
    cfg = RunConfig.from_dict({"task": "reverse", "eval": {"val_size": 100}})
    splits = make_splits(cfg.task.build(), cfg)
    assert len(splits.val) + len(splits.confirm) == stats.needed(0.999) == 2995
    held = torch.cat([input_keys(e.input) for e in (splits.val, splits.test, splits.confirm)]).unique()
    assert torch.equal(held, splits.exclude)  # the confirmation rows are kept out of training too
    none = make_splits(RunConfig.from_dict({"task": "reverse", "eval": {"target": None}}).task.build(),
                       RunConfig.from_dict({"task": "reverse", "eval": {"target": None}}))
    assert none.confirm is None


def test_screen_never_skips_a_set_that_would_pass():
    """Validation's errors are a lower bound of the set's: the rest is measured whenever the whole
    set could still pass, and a set that passes is never screened out."""
    from toyformer.eval.solved import confirm

    class Rows:
        target = torch.zeros(2500, 1)

        def __len__(self):
            return 2500

        def __getitem__(self, part):
            return range(2500)[part]

    class Splits:
        exhaustive = False
        confirm = Rows()

    cfg = RunConfig.from_dict({"task": "reverse", "eval": {"val_size": 512}})
    for val_errors in range(3):
        val = {"n": 512, "row_correct": torch.arange(512) >= val_errors}
        result = confirm(val, Splits, cfg, lambda rows: {"n": len(rows), "row_correct": torch.ones(len(rows),
                                                                                                   dtype=torch.bool)})
        assert (result is not None) == (val_errors <= stats.allowed_errors(3012, 0.999, False))
        assert result is None or result.n == 3012  # a set that can pass is measured whole


def test_the_rest_is_measured_only_until_it_shows_the_target_missed():
    from toyformer.eval.solved import confirm

    class Splits:
        exhaustive = False
        confirm = torch.arange(2500)  # rows; the model is wrong on row 700 and row 1200
    measured = []

    def evaluate(rows):
        measured.append(len(rows))
        return {"n": len(rows), "row_correct": (rows != 700) & (rows != 1200)}

    cfg = RunConfig.from_dict({"task": "reverse", "eval": {"val_size": 512, "batch_size": 500}})
    result = confirm({"n": 512, "row_correct": torch.ones(512, dtype=torch.bool)}, Splits, cfg, evaluate)
    assert measured == [500, 500] and (result.n, result.errors) == (1512, 1)  # stopped after the chunk of row 700


@pytest.mark.parametrize("k,n", [(0, 10), (10, 10), (1998, 2000), (3, 3000)])
def test_intervals_stay_inside_0_1(k, n):
    lo, hi = stats.proportion_ci(k, n)
    assert 0 <= lo <= k / n <= hi <= 1


def test_the_bound_and_the_allowed_errors_agree():
    for n in (100, 2995, 10_000):
        e = stats.allowed_errors(n, 0.999, False)
        assert e < 0 or stats.error_bound(e, n) <= 0.001 < stats.error_bound(e + 1, n)
    assert stats.allowed_errors(2994, 0.999, False) == -1
    assert stats.allowed_errors(1000, 0.999, True) == 1


def test_a_target_of_1_on_a_stream_is_held_as_all_confirmation_rows_right():
    from toyformer.eval.solved import Evidence, allowed

    assert allowed(Evidence(n=2995, errors=0, exhaustive=False), 1.0)
    assert not allowed(Evidence(n=2995, errors=1, exhaustive=False), 1.0)
    assert not allowed(Evidence(n=76, errors=1, exhaustive=True), 1.0)
