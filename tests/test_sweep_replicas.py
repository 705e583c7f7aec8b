"""Sweeps with replicas: each point one batched replica run, one store row per replica, mean ± CI cells."""

import json
import shutil

import pytest
import yaml

from toyformer import ConfigError, ResultsStore, load_sweep, sweep
from toyformer.cli import main

BASE = {"task": {"name": "reverse", "length": 6},
        "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32},
        "data": {"batch_size": 16},
        "train": {"steps": 20, "warmup_steps": 2},
        "eval": {"every": 10, "val_size": 16, "test_size": 32, "target": None}}
SPEC = {"name": "reps", "base": BASE, "grid": {"model.d_model": [8, 16]}, "replicas": 2,
        "table": {"rows": "model.d_model", "value": "test_token_acc"},
        "plot": {"x": "model.d_model", "y": "test_token_acc"}}
METRICS = ("seed", "test_token_acc", "test_exact_match", "train_loss", "steps")


def test_replica_points_record_one_row_per_replica_and_resume(tmp_path):
    out, store = tmp_path / "sw", tmp_path / "r.sqlite"
    first = sweep(SPEC, out=out, store=store)
    assert [p.status for p in first.points] == ["trained", "trained"]
    rows = ResultsStore(store).query(where="sweep = 'reps'")
    assert len(rows) == 4
    for p in first.points:
        mine = sorted((r for r in rows if r["point"] == p.point.name), key=lambda r: r["replica"])
        assert [(r["replica"], r["n_replicas"], r["seed"]) for r in mine] == [(0, 2, 0), (1, 2, 1)]
        saved = json.loads((p.run_dir / "summary.json").read_text())
        assert [r["test_token_acc"] for r in mine] == [r["test_token_acc"] for r in saved["replicas"]]
        assert mine[1]["run_dir"] == str(p.run_dir / "replicas" / "1")
        # the table's cell holds both replicas: their mean, its interval inside [0, 1], and their test examples
        mean, lo, hi, examples = first.table.interval(p.point.config.model.d_model)
        assert mean == pytest.approx(saved["mean"]["test_token_acc"]) and examples == 64
        assert [lo, hi] == pytest.approx(saved["interval95"]["test_token_acc"]) and 0 <= lo <= mean <= hi <= 1
    table = (out / "table.md").read_text()
    assert table.count("(mean of 2 runs, n=64, 95% CI ") == 2 and "±" not in table
    assert "replicas per seed" in (out / "report.html").read_text()
    assert (out / "test_token_acc_by_d_model.png").is_file()

    # a finished point is skipped; a killed one resumes from its checkpoint; nothing is recorded twice
    killed = first.points[1].run_dir
    (killed / "summary.json").unlink()
    again = sweep(SPEC, out=out, store=store)
    assert [p.status for p in again.points] == ["done", "resumed"]
    assert again.table.to_dict() == first.table.to_dict()
    assert len(ResultsStore(store).query()) == 4
    assert [p.status for p in sweep(SPEC, out=out, store=store).points] == ["done", "done"]


def test_cli_replicas_overrides_the_spec(tmp_path, capsys):
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(yaml.safe_dump({**SPEC, "grid": {"model.d_model": [16]}, "replicas": 1}))
    argv = ["sweep", str(spec_file), "--out", str(tmp_path / "sw"), "--store", str(tmp_path / "r.sqlite"), "--quiet"]
    assert main(argv + ["--replicas", "3", "--json"]) == 0
    out = capsys.readouterr().out
    assert "(mean of 3 runs, n=96, 95% CI " in out
    (point,) = json.loads(out.strip().splitlines()[-1])["points"]
    assert point["replicas"] == 3 and set(point["interval95"]) >= {"test_token_acc", "test_exact_match"}
    assert point["test_n"] == 96 and "test_exact_match" not in point["ci95"]
    # the same directory with another replica count is never silently reused
    assert main(argv + ["--replicas", "2"]) == 2
    assert "was trained with replicas: 3, not 2" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "sw")
    assert main(argv + ["--replicas", "0"]) == 2
    assert "--replicas: 0 is out of range; allowed: >= 1" in capsys.readouterr().err
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("change, message", [
    ({"replicas": 0}, r"replicas=0 is not allowed; allowed: an integer >= 1"),
    ({"replicas": "2"}, r"replicas='2' is not allowed"),
    ({"replicas": 2, "seeds": [0, 1]}, r"seeds 0 and 1 overlap with replicas: 2 .*space the seeds by at least 2"),
])
def test_bad_replicas_fail_before_anything_runs(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        sweep({**SPEC, **change}, out=tmp_path / "sw", store=tmp_path / "r.sqlite")
    assert not (tmp_path / "sw").exists() and not (tmp_path / "r.sqlite").exists()


def test_seeds_spaced_by_k_and_the_default_table_pools_replicas():
    spec = load_sweep({**SPEC, "grid": {}, "seeds": [0, 2], "table": {}})
    assert [p.name for p in spec.expand()] == ["seed=0", "seed=2"] and spec.to_dict()["replicas"] == 2
    from toyformer.experiments.sweeps.run import table_settings

    assert table_settings(spec, spec.expand())["rows"] == ["task.name"]  # not seed: each replica has its own


@pytest.mark.slow
def test_worker_processes_and_dask_train_replicas_as_in_process(tmp_path):
    spec = {**SPEC, "grid": {"model.d_model": [16]}}
    here = sweep(spec, out=tmp_path / "a", store=None)
    there = sweep(spec, out=tmp_path / "b", workers=2, store=tmp_path / "r.sqlite")
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        dask = sweep(spec, out=tmp_path / "c", cluster=cluster.scheduler_address, store=tmp_path / "r.sqlite")
    for result in (there, dask):
        assert [p.status for p in result.points] == ["trained"]
        numbers = lambda res: [{k: r[k] for k in METRICS} for r in res.points[0].summary["replicas"]]  # noqa: E731
        assert numbers(result) == numbers(here)
    rows = ResultsStore(tmp_path / "r.sqlite").query()
    assert sorted((r["run_dir"].split("/")[-5], r["replica"]) for r in rows) == [("b", 0), ("b", 1), ("c", 0), ("c", 1)]
