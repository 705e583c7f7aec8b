"""Sweeps: expansion and validation before any run, resume, executors agreeing, outputs, CLI."""

import json
import shutil

import pytest
import yaml

from toyformer import ConfigError, ResultsStore, RunConfig, load_sweep, sweep
from toyformer.cli import main
from toyformer.experiments.sweeps.executors import DaskCluster
from toyformer.experiments.sweeps.spec import point_name

BASE = {"task": {"name": "reverse", "length": 4},
        "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32},
        "data": {"batch_size": 16},
        "train": {"steps": 12, "warmup_steps": 2},
        "eval": {"every": 6, "val_size": 16, "test_size": 32, "target": None}}
SPEC = {"name": "tiny", "base": BASE, "grid": {"task.length": [3, 4]}, "seeds": [0, 1],
        "table": {"rows": "task.length", "cols": "seed", "value": "test_token_acc"},
        "plot": {"x": "task.length", "y": "test_token_acc"}}
METRICS = ("test_token_acc", "test_exact_match", "train_loss", "steps")


def test_expansion_is_grid_times_points_times_seeds():
    spec = load_sweep({"base": BASE, "grid": {"task.length": [10, 20], "model.d_model": [32, 64]},
                       "points": [{"model.norm": "post"}, {"model.norm": "pre"}], "seeds": [0, 1, 2]})
    points = spec.expand()
    assert len(points) == 2 * 2 * 2 * 3 == len({p.name for p in points})
    assert points[0].name == "length=10,d_model=32,norm=post,seed=0"
    assert points[-1].name == "length=20,d_model=64,norm=pre,seed=2"
    p = points[7]  # length 10, d_model 64, norm post, seed 1
    assert (p.config.task.params["length"], p.config.model.d_model, p.config.model.norm, p.config.seed) == (10, 64,
                                                                                                            "post", 1)
    assert spec.swept_fields() == ["task.length", "model.d_model", "model.norm", "seed"]


def test_points_alone_and_names_are_filesystem_safe():
    spec = load_sweep({"base": BASE, "points": [{"model.head_hidden": [8, 4]}, {"model.head_hidden": []}]})
    names = [p.name for p in spec.expand()]
    assert names[0] == "head_hidden=8,4,seed=0" and names[1] == "head_hidden=,seed=0"
    assert point_name([("x", "a/b c"), ("seed", "0")]).startswith("x=a_b_c,seed=0-")
    assert point_name([("x", "a/b")]) != point_name([("x", "a_b")])
    long = point_name([(f"k{i}", "v" * 10) for i in range(10)])
    assert len(long) <= 89 and "/" not in long


@pytest.mark.parametrize("change, message", [
    ({"grid": {"model.d_modl": [32]}}, "unknown key 'model.d_modl'"),
    ({"grid": {"model.norm": ["pre", "mid"]}}, r"model.norm='mid' is not allowed; allowed: pre, post"),
    ({"points": [{"model.d_model": 33}]}, "not divisible"),
    ({"seeds": ["a"]}, "seeds"),
    ({"grid": {"length": 3}}, "non-empty lists"),
    ({"colour": 1}, "unknown sweep key 'colour'"),
    ({"table": {"rows": "width"}}, "unknown table field 'width'"),
    ({"plot": {"x": "length", "y": "accuracy"}}, "unknown plot y 'accuracy'"),
    ({"points": [{"seed": 1}, {"seed": 1}]}, "appears twice"),
    ({"points": [{"train.epochs": 2}]}, r"sweep point length=3,epochs=2,seed=0: train.epochs needs a fixed pool"),
    ({"points": [{"layout": "classifier"}]}, "length=3,layout=classifier,seed=0: .*classifier"),
])
def test_a_bad_spec_fails_before_anything_runs(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        sweep({**SPEC, **change}, out=tmp_path / "sw", store=tmp_path / "r.sqlite")
    assert not (tmp_path / "sw").exists() and not (tmp_path / "r.sqlite").exists()


def test_sweep_records_tables_plots_and_resumes(tmp_path):
    out, store = tmp_path / "sw", tmp_path / "r.sqlite"
    first = sweep(SPEC, out=out, store=store)
    assert [p.status for p in first.points] == ["trained"] * 4
    rows = ResultsStore(store).query(where="sweep = 'tiny'")
    assert len(rows) == 4 and {r["source"] for r in rows} == {"sweep"}
    by_point = {p.point.name: p.summary for p in first.points}
    for r in rows:
        assert r["test_token_acc"] == by_point[r["point"]]["test_token_acc"]
    # the table's cells are the runs' numbers
    assert first.table.cell(3, 1)[0] == by_point["length=3,seed=1"]["test_token_acc"]
    for name in ("sweep.json", "table.md", "report.html", "test_token_acc_by_length.png",
                 "test_token_acc_by_length.svg"):
        assert (out / name).is_file(), name
    report = (out / "report.html").read_text()
    assert "length=3,seed=1" in report and "data:image/png;base64," in report
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["counts"] == {"done": 0, "trained": 4, "resumed": 0, "failed": 0}

    # a point killed after its last checkpoint resumes; a point never started trains; the rest are skipped
    killed, lost = out / "runs" / "length=4,seed=0", out / "runs" / "length=3,seed=1"
    (killed / "summary.json").unlink()
    (killed / "model.safetensors").unlink()
    shutil.rmtree(lost)
    again = sweep(SPEC, out=out, store=store)
    status = {p.point.name: p.status for p in again.points}
    assert status == {"length=3,seed=0": "done", "length=3,seed=1": "trained", "length=4,seed=0": "resumed",
                      "length=4,seed=1": "done"}
    for p in again.points:
        assert {k: p.summary[k] for k in METRICS} == {k: by_point[p.point.name][k] for k in METRICS}
    assert len(ResultsStore(store).query()) == 4  # re-recorded points replace their rows


def test_an_edited_spec_does_not_reuse_old_points(tmp_path):
    one = {**SPEC, "grid": {"task.length": [3]}, "seeds": [0]}
    sweep(one, out=tmp_path / "sw", store=None)
    edited = {**one, "base": {**BASE, "model": {**BASE["model"], "d_ff": 48}}}
    with pytest.raises(ConfigError, match=r"trained with another config \(model.d_ff: 32 != 48\)"):
        sweep(edited, out=tmp_path / "sw", store=None)


@pytest.mark.slow
def test_worker_processes_give_the_same_numbers_as_in_process(tmp_path):
    spec = {**SPEC, "seeds": [0]}
    here = sweep(spec, out=tmp_path / "a", store=tmp_path / "r.sqlite")
    there = sweep(spec, out=tmp_path / "b", workers=2, store=tmp_path / "r.sqlite")
    assert there.executor.startswith("2 local processes, ")
    assert [p.status for p in there.points] == ["trained", "trained"]
    for a, b in zip(here.points, there.points):
        assert {k: a.summary[k] for k in METRICS} == {k: b.summary[k] for k in METRICS}
    assert len(ResultsStore(tmp_path / "r.sqlite").query()) == 4


@pytest.mark.slow
def test_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        spec = {**SPEC, "seeds": [0]}
        result = sweep(spec, out=tmp_path / "sw", cluster=cluster.scheduler_address, store=tmp_path / "r.sqlite")
    assert result.executor == f"Dask cluster at {cluster.scheduler_address}"
    assert [p.status for p in result.points] == ["trained", "trained"]
    rows = ResultsStore(tmp_path / "r.sqlite").query()
    assert sorted(r["task.length"] for r in rows) == [3, 4] and all(r["test_token_acc"] is not None for r in rows)
    with pytest.raises(ConfigError, match="cannot reach a Dask scheduler"):
        DaskCluster("tcp://127.0.0.1:9", timeout_s=1)


def test_cli_sweep_then_results(tmp_path, capsys):
    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(yaml.safe_dump({k: v for k, v in SPEC.items() if k != "name"}))
    store = tmp_path / "r.sqlite"
    argv = ["sweep", str(spec_file), "--out", str(tmp_path / "sw"), "--store", str(store), "--json", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| length | seed=0 | seed=1 |" in out
    payload = json.loads(out.strip().splitlines()[-1])
    assert payload["sweep"] == "tiny" and payload["counts"]["trained"] == 4
    acc = {p["name"]: p["test_token_acc"] for p in payload["points"]}

    argv = ["results", "--store", str(store), "--where", "sweep = 'tiny' and seed = 1", "--rows", "length",
            "--value", "test_token_acc", "--format", "json"]
    assert main(argv) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert {c["row"]["task.length"]: c["mean"] for c in cells} == {3: acc["length=3,seed=1"], 4: acc["length=4,seed=1"]}

    assert main(["sweep", str(spec_file), "--out", str(tmp_path / "sw"), "--store", str(store), "--quiet"]) == 0
    assert "| length | seed=0 | seed=1 |" in capsys.readouterr().out  # all four skipped, same table
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_toml_spec_and_base_file(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "s.toml").write_text('base = "base.yaml"\nseeds = [3]\n[grid]\n"model.d_model" = [16]\n')
    spec = load_sweep(tmp_path / "s.toml")
    (point,) = spec.expand()
    assert spec.name == "s" and point.name == "d_model=16,seed=3" and point.config.task.params["length"] == 4


def test_the_r2_example_spec_is_r2s_table():
    from pathlib import Path

    from toyformer.experiments.recipes.r2 import ROWS, improved_config
    from toyformer.experiments.sweeps.run import check_buildable, table_settings

    spec = load_sweep(Path(__file__).parents[1] / "examples" / "sweeps" / "r2_reverse.yaml")
    points = spec.expand()
    check_buildable(points)
    assert sorted((p.config.task.params["length"], p.config.task.params["vocab_size"]) for p in points) == sorted(ROWS)
    for p in points:  # exactly the recipe's improved configuration
        params = p.config.task.params
        assert p.config == RunConfig.from_dict(improved_config(params["length"], params["vocab_size"]))
    assert table_settings(spec, points) == {"rows": ["task.length"], "cols": ["task.vocab_size"],
                                            "value": "test_token_acc"}


def test_a_failing_point_is_reported_and_the_others_finish(tmp_path, monkeypatch, capsys):
    import toyformer.experiments.sweeps.run as sweep_run

    real = sweep_run.run_point

    def flaky(config, run_dir, **kwargs):
        if run_dir.endswith("length=4,seed=0"):
            raise RuntimeError("out of memory\nsecond line")
        return real(config, run_dir, **kwargs)

    monkeypatch.setattr(sweep_run, "run_point", flaky)
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(yaml.safe_dump({**SPEC, "seeds": [0]}))
    assert main(["sweep", str(spec_file), "--out", str(tmp_path / "sw"), "--store", str(tmp_path / "r.sqlite"),
                 "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "failed: length=4,seed=0: RuntimeError: out of memory" in out and "| 3 | " in out
    saved = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert saved["counts"] == {"done": 0, "trained": 1, "resumed": 0, "failed": 1}
    assert "Failures" in (tmp_path / "sw" / "report.html").read_text()
    assert [r["point"] for r in ResultsStore(tmp_path / "r.sqlite").query()] == ["length=3,seed=0"]


def test_a_name_with_a_slash_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"sweep name 'a/b' is not allowed: it becomes a folder's name"):
        sweep({**SPEC, "name": "a/b"}, store=tmp_path / "r.sqlite")
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(yaml.safe_dump({**SPEC, "name": "../up"}))
    assert main(["sweep", str(spec_file), "--store", str(tmp_path / "r.sqlite")]) == 2
    err = capsys.readouterr().err
    assert "sweep name '../up' is not allowed" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_a_point_directory_holding_no_run_names_no_flag_sweep_lacks(tmp_path, capsys):
    spec_file, out = tmp_path / "s.yaml", tmp_path / "sw"
    spec_file.write_text(yaml.safe_dump({**SPEC, "grid": {"task.length": [3]}, "seeds": [0]}))
    junk = out / "runs" / "length=3,seed=0" / "notes.txt"
    junk.parent.mkdir(parents=True)
    junk.write_text("not a run")
    assert main(["sweep", str(spec_file), "--out", str(out), "--store", str(tmp_path / "r.sqlite"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"'{junk.parent}' is not empty and holds no run; remove it or choose another directory" in err
    assert "--resume" not in err and len(err.strip().splitlines()) == 1
