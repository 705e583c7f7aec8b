"""Length ranges in training and evaluation at every length: the CLI, table, JSON and plot."""

import json

import pytest
import torch

from conftest import small_config
from toyformer import ConfigError, train
from toyformer.cli import main
from toyformer.data.batches import lengths as row_lengths
from toyformer.eval.lengths import evaluate_lengths, format_table, parse_lengths, trained_range
from toyformer.data.splits import Lengths, TrainData, make_splits


def test_parse_lengths():
    assert parse_lengths("1:4") == [1, 2, 3, 4]
    assert parse_lengths("10,20,30") == [10, 20, 30]
    assert parse_lengths("2:9:3, 1") == [1, 2, 5, 8]
    for bad in ("0:3", "5:2", "a", "1:2:3:4", ""):
        with pytest.raises(ConfigError, match="lengths="):
            parse_lengths(bad)


def test_held_out_sets_cover_the_range_and_training_draws_from_it():
    cfg = small_config(data={"min_length": 2, "max_length": 6, "length_sampling": "row", "batch_size": 200})
    task = cfg.task.build()
    splits = make_splits(task, cfg)
    assert set(row_lengths(splits.test.input).tolist()) == {2, 3, 4, 5, 6}
    data = TrainData(task, splits, 200, seed=0, lengths=Lengths.from_config(cfg.data))
    batch = row_lengths(data.batch(0).input)
    assert set(batch.tolist()) == {2, 3, 4, 5, 6}  # per row: every length in one batch
    per_batch = TrainData(task, splits, 50, seed=0, lengths=Lengths(2, 6, "batch"))
    widths = [set(row_lengths(per_batch.batch(s).input).tolist()) for s in range(30)]
    assert all(len(w) == 1 for w in widths) and set().union(*widths) == {2, 3, 4, 5, 6}


def test_curriculum_grows_the_longest_length():
    cur = Lengths(1, 10, "curriculum")
    tops = [cur.top(step, total=100) for step in (0, 10, 25, 49, 50, 99)]
    assert tops == [1, 3, 6, 10, 10, 10] and tops == sorted(tops)
    cfg = small_config(data={"min_length": 2, "max_length": 8, "length_sampling": "curriculum"})
    task = cfg.task.build()
    data = TrainData(task, make_splits(task, cfg), 16, seed=0, lengths=Lengths.from_config(cfg.data), total_steps=40)
    early = max(row_lengths(data.batch(s).input).max().item() for s in range(3))
    late = {row_lengths(data.batch(s).input).max().item() for s in range(20, 40)}
    assert early <= 3 and max(late) == 8


@pytest.mark.parametrize("data, message", [
    ({"min_length": 3}, "go together"),
    ({"min_length": 5, "max_length": 2}, "1 <= min_length <= max_length"),
    ({"min_length": 1, "max_length": 4, "length_sampling": "zigzag"}, "allowed: batch, row, curriculum"),
])
def test_bad_length_ranges_are_rejected(data, message):
    with pytest.raises(ConfigError, match=message):
        small_config(data=data)


def test_evaluate_lengths_reports_every_length_and_the_trained_range():
    cfg = small_config(layout="causal", data={"min_length": 2, "max_length": 4}, train={"steps": 10})
    run = train(cfg)
    result = evaluate_lengths(run, [1, 3, 7], n=20)
    assert [r["length"] for r in result["rows"]] == [1, 3, 7] and result["trained"] == [2, 4]
    assert evaluate_lengths(run, [1, 3, 7], n=20) == result  # fresh, but seeded, samples
    table = format_table(result)
    assert "| 3* |" in table and "| 7 |" in table and "trained lengths (2..4)" in table
    plain = small_config().with_overrides(["length=9"])
    assert trained_range(plain, plain.task.build()) == (9, 9)
    add = small_config({"name": "addition", "digits": 10, "min_digits": 2})
    assert trained_range(add, add.task.build()) == (2, 10)  # addition's lengths are its digits


def test_lengths_beyond_a_position_table_are_flagged():
    cfg = small_config(layout="causal", data={"min_length": 2, "max_length": 4}, train={"steps": 2},
                       model={"max_len": 16})  # a causal reverse of length L is 2L + 2 tokens
    result = evaluate_lengths(train(cfg), [4, 7, 8], n=4)
    assert [r["clamped"] for r in result["rows"]] == [False, False, True]
    assert "| 8! |" in format_table(result) and "clamped" in format_table(result)
    rope = evaluate_lengths(train(cfg.with_overrides(["model.positional=rope"])), [8], n=4)
    assert rope["rows"][0]["clamped"] is False  # no table, nothing to clamp


def test_cli_eval_lengths_table_json_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "reverse", "--layout", "causal", "--out", str(out), "--quiet", "--set", "steps=30",
            "--set", "model.d_model=32", "--set", "model.n_layers=1", "--set", "eval.val_size=16",
            "--set", "eval.test_size=16", "--set", "min_length=2", "--set", "max_length=4",
            "--set", "model.positional=alibi"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--lengths", "2:3,6", "--n", "16", "--json", "--beam", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert [r["length"] for r in result["rows"]] == [2, 3, 6] and result["trained"] == [2, 4]
    assert any(line.startswith("| 6 |") for line in lines)
    png = (out / "lengths.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "lengths.json").read_text())["rows"] == result["rows"]
    assert main(["eval", str(out), "--beam", "2", "--json"]) == 0
    beam = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert beam["decode"] == "beam" and beam["beam_width"] == 2


@pytest.mark.parametrize("argv, message", [
    (["--lengths", "9:1"], "--lengths"),
    (["--beam", "0"], "--beam: 0 is out of range; allowed: >= 1"),
])
def test_cli_eval_bad_options(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert main(["train", "reverse", "--out", str(out), "--quiet", "--set", "steps=2", "--set", "eval.val_size=4",
                 "--set", "eval.test_size=4", "--set", "model.d_model=16", "--set", "model.n_layers=1"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (out / "lengths.json").exists()


def test_training_with_a_range_and_random_positions_is_deterministic():
    cfg = small_config(data={"min_length": 2, "max_length": 6, "length_sampling": "curriculum"},
                       model={"positional": "learned", "random_positions": True, "max_len": 32},
                       train={"steps": 40})
    a, b = train(cfg), train(cfg)
    flat = lambda r: torch.cat([p.detach().flatten() for p in r.model.parameters()])  # noqa: E731
    assert torch.equal(flat(a), flat(b))
