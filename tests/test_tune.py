"""toyformer tune: an Optuna study whose trials are ordinary runs; resumable, shared by workers,
its best config reproducible, its bad input refused."""

from __future__ import annotations

import json

import pytest

from toyformer import ResultsStore, RunConfig
from toyformer.cli import main
from toyformer.experiments import tune as tune_pkg
from toyformer.experiments.tune import parse_space, tune
from toyformer.experiments.tune.search import open_study

BASE = {"task": {"name": "count_ones", "length": 6},
        "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32},
        "train": {"steps": 40, "warmup_steps": 5},
        "eval": {"every": 10, "val_size": 16, "test_size": 16}}
SPACE = {"train.lr": {"log": [1e-3, 3e-2]}, "model.d_model": {"choices": [16, 32]}}


def base():
    return RunConfig.from_dict(BASE)


def states(out, name="count_ones-classifier"):
    return [t.state.name for t in open_study(out, name).get_trials(deepcopy=False)]


def test_a_small_tune_records_its_trials_and_writes_the_best_config(tmp_path):
    store = tmp_path / "store.sqlite"
    r = tune(base(), budget_s=120, trials=3, space=SPACE, out=tmp_path / "t", store=store, trial_s=20)
    assert r["trials_finished"] == 3 and r["best"] is not None
    assert (tmp_path / "t" / "best.yaml").is_file() and (tmp_path / "t" / "summary.md").is_file()
    assert r["remeasured"]["n"] == 3 and len(r["remeasured"]["seeds"]) == 3
    rows = ResultsStore(store).query(where="source = 'tune'")
    complete = r["states"]["COMPLETE"]
    same = r["defaults"] is r["remeasured"] or r["defaults"] == r["remeasured"]
    # every complete trial, the best config on 3 fresh seeds, and the defaults on the same seeds
    assert len(rows) == complete + 3 + (0 if same else 3)
    assert {row["sweep"] for row in rows} == {"count_ones-classifier"}
    assert set(r["best"]["params"]) == set(SPACE)


def test_the_gain_is_the_defaults_against_the_best_on_the_same_seeds(tmp_path, capsys):
    slow = {**BASE, "train": {**BASE["train"], "lr": 1e-4}}  # defaults that solve nothing in 40 steps
    out = tmp_path / "t"
    assert main(["tune", "--config", _write(tmp_path, slow), "--space", _write(tmp_path, {"space": SPACE},
                                                                               "space.yaml"),
                 "--budget-s", "120", "--trials", "3", "--trial-s", "20", "--out", str(out), "--no-store",
                 "--json"]) == 0
    text = capsys.readouterr().out
    r = json.loads(text.strip().splitlines()[-1])
    best, defaults, g = r["remeasured"], r["defaults"], r["gain"]
    assert defaults["seeds"] == best["seeds"] and g["seeds"] == best["seeds"]
    seeds = sorted(int(p.name.split("_")[1]) for p in (out / "defaults").iterdir())
    assert seeds == best["seeds"]
    lr = {json.loads((p / "config.json").read_text())["train"]["lr"] for p in (out / "defaults").iterdir()}
    assert lr == {1e-4}  # the base config, without the searched values
    assert (g["best_solved"], g["defaults_solved"]) == (best["solved"], defaults["solved"])
    em = defaults["test_exact_match"]
    assert 0 <= em["low"] <= em["mean"] <= em["high"] <= 1 and em["n"] == 3 * 6  # count_ones length 6: 6 inputs
    if g["ratio"] is not None:
        times = lambda m: [x["solved_at_s"] if x["solved"] else 20 for x in m["runs"]]  # noqa: E731
        assert g["ratio"] == pytest.approx(sum(times(defaults)) / sum(times(best)))
        assert g["ratio_is"] == ("exact" if defaults["solved"] == 3 else "at least")
        assert f"{g['ratio']:.1f}x as fast" in text
    else:
        assert best["solved"] < 3 and "no ratio" in text
    summary = (out / "summary.md").read_text()
    assert "## Gain over the defaults" in summary and "| defaults | " in summary and "95% CI" in summary


def _write(tmp_path, data, name="base.yaml") -> str:
    import yaml

    (tmp_path / name).write_text(yaml.safe_dump(data))
    return str(tmp_path / name)


def test_the_best_config_reproduces_its_trial(tmp_path):
    r = tune(base(), budget_s=120, trials=2, space=SPACE, out=tmp_path / "t", store=None, trial_s=30)
    trial_dir = r["best"]["run_dir"]
    assert main(["train", "--config", str(tmp_path / "t" / "best.yaml"), "--out", str(tmp_path / "again"),
                 "--quiet", "--no-live-plot", "--no-store"]) == 0
    strip = lambda d: [{k: v for k, v in json.loads(x).items() if k != "wall_s"}  # noqa: E731
                       for x in (d / "metrics.jsonl").read_text().splitlines()]
    from pathlib import Path

    assert strip(tmp_path / "again") == strip(Path(trial_dir))


CHILD = """
import os, signal, sys
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
import toyformer.training as training
from test_tune import SPACE, base
from toyformer.experiments.tune import tune

real, calls = training.train, []

def dies_in_the_second_trial(config, out_dir=None, **kw):
    calls.append(out_dir)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # the process dies in the middle of trial 1
    return real(config, out_dir=out_dir, **kw)

training.train = dies_in_the_second_trial
tune(base(), budget_s=120, trials=3, space=SPACE, out={out!r}, store=None, trial_s=20)
"""


def test_a_killed_tune_resumes_without_repeating_a_trial(tmp_path):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "t"
    child = subprocess.run([sys.executable, "-c", CHILD.format(tests=str(Path(__file__).parent), out=str(out))],
                           capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert states(out) == ["COMPLETE", "RUNNING"]
    first = open_study(out, "count_ones-classifier").get_trials()[0]
    r = tune(base(), budget_s=120, trials=3, space=SPACE, out=out, store=None, trial_s=20)
    trials = open_study(out, "count_ones-classifier").get_trials()
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert r["trials_finished"] == 3 and len(finished) == 3
    assert trials[0].params == first.params and trials[0].datetime_complete == first.datetime_complete  # not re-run
    assert trials[1].state.name == "FAIL"  # the one the kill interrupted ...
    retried = [t for t in trials if t.user_attrs.get("retry_of") == 1]
    assert len(retried) == 1 and retried[0].params == trials[1].params  # ... taken again, with its values
    new = [t for t in finished if t.number > 1 and t not in retried]  # drawn by the resumed search: not again
    assert new and all(t.params not in (trials[0].params, trials[1].params) for t in new), [t.params for t in trials]


def test_two_workers_share_one_study(tmp_path):
    r = tune(base(), budget_s=300, trials=4, space=SPACE, out=tmp_path / "t", store=None, trial_s=30, workers=2,
             threads=1)
    trials = open_study(tmp_path / "t", "count_ones-classifier").get_trials()
    taken = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert r["trials_finished"] == 4 and len(taken) == 4
    assert len({t.user_attrs["pid"] for t in taken}) == 2  # both processes took trials of the one study


def test_workers_opening_a_new_study_at_once_draw_values_of_their_own(tmp_path):
    first = [open_study(tmp_path, "s", worker).ask().suggest_float("lr", 1e-4, 1e-2, log=True) for worker in (0, 1)]
    assert first[0] != first[1]  # both saw an empty study: with one seed they would try the same setting
    (tmp_path / "other").mkdir()
    again = open_study(tmp_path / "other", "s", 0).ask().suggest_float("lr", 1e-4, 1e-2, log=True)
    assert again == first[0]  # worker 0 of a new study draws as a single process does


def test_the_default_space_of_every_layout_is_valid():
    for layout, task in [("classifier", "count_ones"), ("tagger", "reverse"), ("causal", "reverse"),
                         ("seq2seq", "reverse"), ("masked", "reverse")]:
        cfg = RunConfig.from_dict({"task": task, "layout": layout})
        assert parse_space(tune_pkg.default_space(layout), cfg).keys()


@pytest.mark.parametrize("space,message", [
    ("space: {model.bogus: {log: [1, 2]}}", "model.bogus"),
    ("space: {train.lr: {log: [0.01, 0.001]}}", "is empty"),
    ("space: {train.lr: {log: [0, 0.1]}}", "low > 0"),
    ("space: {train.lr: {range: [1, 2]}}", "exactly one of"),
    ("space: {model.d_model: {choices: []}}", "non-empty"),
    ("space: {train.steps: {float: [10, 20]}}", "train.steps"),
    ("space: {model.dropout: {float: [0, 1]}}", "model.dropout"),
    ("space: {seed: {int: [0, 5]}}", "seed"),
    ("other: 1", "allowed: space"),
    ("", "is empty"),
])
def test_a_bad_space_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, space, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.yaml").write_text(space)
    code = main(["tune", "count_ones", "--space", "space.yaml", "--budget-s", "10", "--out", "t"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space.yaml"]


@pytest.mark.parametrize("argv,message", [
    (["--budget-s", "0"], "--budget-s"), (["--budget-s", "nan"], "--budget-s"), ([], "--budget-s"),
    (["--budget-s", "5", "--trials", "0"], "--trials"), (["--budget-s", "5", "--objective", "speed"], "speed"),
    (["--budget-s", "5", "--workers", "2", "--cluster", "tcp://127.0.0.1:1"], "--workers and --cluster"),
])
def test_bad_tune_options_are_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["tune", "count_ones", *argv, "--out", "t"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "t").exists()


def test_tune_logs_each_trial_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tune(base().with_overrides({"train.tensorboard": str(tmp_path / "tb")}), budget_s=120, trials=2, space=SPACE,
         out=tmp_path / "t", store=None, trial_s=20)
    logs = sorted(p.name for p in (tmp_path / "tb").iterdir())
    assert logs[:2] == ["best-seed-1000", "best-seed-2000"] and "trial-0000" in logs and "trial-0001" in logs
    events = EventAccumulator(str(tmp_path / "tb" / "trial-0000")).Reload()
    assert "val/exact_match" in events.Tags()["scalars"]


def test_trials_of_several_seeds_are_judged_by_their_slowest(tmp_path):
    store = tmp_path / "store.sqlite"
    r = tune(base(), budget_s=120, trials=2, space=SPACE, out=tmp_path / "t", store=store, trial_s=20, seeds=2)
    trial = r["best"]
    assert (tmp_path / "t" / "trials" / f"{trial['number']:04d}" / "replicas.json").is_file()
    from toyformer.training import load_replicas

    runs = load_replicas(trial["run_dir"]).runs
    times = [run.summary["solved_at_s"] for run in runs]
    if all(t is not None for t in times):
        assert trial["value"] == max(times)
    rows = ResultsStore(store).query(where="source = 'tune' and point = 'trial 0'")
    assert sorted(row["replica"] for row in rows) == [0, 1]
    best = RunConfig.load(tmp_path / "t" / "best.yaml")
    assert best.seed == base().seed  # the trial's own config, not a replica's
