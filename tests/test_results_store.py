"""The SQLite results store: rows, safe filters, pivots with mean ± CI, formats, concurrent writers,
and recording from `toyformer train`."""

import csv
import io
import json
import multiprocessing
import re
import shutil
import subprocess
import sqlite3
from pathlib import Path

import pytest

from toyformer import ConfigError, ResultsStore, mean_ci
from toyformer.cli import main
from toyformer.experiments.store.rows import flatten_config, git_revision
from toyformer.experiments.store.table import pivot
from toyformer.experiments.store.where import parse_where


def _config(length, vocab, norm="pre", seed=0, **extra):
    return {"task": {"name": "reverse", "length": length, "vocab_size": vocab}, "model": {"norm": norm, **extra},
            "seed": seed}


def _summary(acc, solved=None):
    return {"test_token_acc": acc, "test_exact_match": acc / 2, "solved_at_step": solved, "wall_s": 1.5,
            "device": "cpu", "task": "reverse"}


@pytest.fixture
def store(tmp_path):
    st = ResultsStore(tmp_path / "r.sqlite")
    # R2-like: length x vocabulary; two seeds in the (20, 10) cell
    for length, vocab, seed, acc in [(10, 5, 0, 1.0), (10, 7, 0, 0.9), (20, 5, 0, 0.8), (20, 7, 0, 0.6),
                                     (20, 7, 1, 0.5)]:
        st.record_summary(_config(length, vocab, "pre" if length == 10 else "post", seed),
                          _summary(acc, 100 if acc == 1.0 else None),
                          tmp_path / f"run-{length}-{vocab}-{seed}", source="test", machine="m", git_rev="g")
    return st


def test_flatten_config_dotted_columns():
    flat = flatten_config({"task": {"name": "reverse", "length": 3}, "model": {"head_hidden": (64, 32)}, "seed": 2})
    assert flat == {"task.name": "reverse", "task.length": 3, "model.head_hidden": "[64, 32]", "seed": 2}


def test_rows_hold_config_fields_metrics_and_provenance(store, tmp_path):
    rows = store.query()
    assert len(rows) == 5
    r = rows[0]
    assert r["task.length"] == 10 and r["task.vocab_size"] == 5 and r["model.norm"] == "pre"
    assert r["test_token_acc"] == 1.0 and r["solved"] == 1 and r["solved_at_step"] == 100
    assert r["source"] == "test" and r["machine"] == "m" and r["git_rev"] == "g" and r["replica"] == 0
    assert r["run_dir"] == str((tmp_path / "run-10-5-0").resolve())


def test_where_filters_on_config_fields(store):
    def q(w):
        return sorted((r["task.length"], r["task.vocab_size"], r["seed"]) for r in store.query(where=w))

    assert q("task.length >= 20 and model.norm = 'post'") == [(20, 5, 0), (20, 7, 0), (20, 7, 1)]
    assert q("length = 10 or (vocab_size = 7 and seed != 0)") == [(10, 5, 0), (10, 7, 0), (20, 7, 1)]
    assert q("not (length = 20) and vocab_size in (7, 9)") == [(10, 7, 0)]
    assert q("solved_at_step is null and test_token_acc < 0.65") == [(20, 7, 0), (20, 7, 1)]
    assert q("norm like 'p%'") == q("model.norm in ('pre', 'post')")
    assert q("solved = true") == [(10, 5, 0)]


def test_where_is_parameterised_and_rejects_bad_fields(store):
    sql, params = parse_where("model.norm = 'x'' or 1=1 --'", ["model.norm"])
    assert params == ["x' or 1=1 --"] and "1=1" not in sql
    assert store.query(where="model.norm = 'x'' or 1=1 --'") == []
    with pytest.raises(ConfigError, match=r"unknown field 'lenth'; known: .*task\.length"):
        store.query(where="lenth > 3")
    with pytest.raises(ConfigError, match="cannot read '; drop table runs'"):
        store.query(where="length = 1; drop table runs")
    with pytest.raises(ConfigError, match="unexpected 'drop'"):
        store.query(where="length = 1 drop table runs")
    with pytest.raises(ConfigError, match="expected an operator"):
        store.query(where="length 3")
    assert len(store.query()) == 5  # nothing was dropped


def test_new_config_fields_become_columns(store, tmp_path):
    store.record_summary(_config(30, 5, d_ff=99), _summary(0.1), tmp_path / "new", machine="m", git_rev="g")
    rows = store.query(where="model.d_ff = 99")
    assert len(rows) == 1 and rows[0]["task.length"] == 30
    assert store.query(where="length = 10")[0]["model.d_ff"] is None


def test_recording_again_replaces_the_row(store, tmp_path):
    store.record_summary(_config(10, 5), _summary(0.25), tmp_path / "run-10-5-0", machine="m", git_rev="g")
    rows = store.query(where="length = 10 and vocab_size = 5")
    assert len(rows) == 1 and rows[0]["test_token_acc"] == 0.25


def test_pivot_puts_numbers_in_the_right_cells(store):
    table = store.pivot("task.length", "task.vocab_size", "test_token_acc")
    assert table.row_keys == [(10,), (20,)] and table.col_keys == [(5,), (7,)]
    assert table.cell(10, 5) == (1.0, 0.0, 1) and table.cell(20, 5) == (0.8, 0.0, 1)
    mean, ci, n = table.cell(20, 7)
    assert n == 2 and mean == pytest.approx(0.55) and ci == pytest.approx(mean_ci([0.6, 0.5])[1])
    md = table.markdown()
    assert "| length | vocab_size=5 | vocab_size=7 |" in md
    # an accuracy's mean never gets a t-interval (0.55 ± 0.64 would leave [0, 1]): the bootstrap over the runs
    assert "| 20 | 0.8000 | 0.5500 (mean of 2 runs, 95% CI 0.5000-0.6000) |" in md
    rows = list(csv.reader(io.StringIO(table.csv())))
    assert rows[0][:6] == ["task.length", "vocab_size=5", "vocab_size=5 lo", "vocab_size=5 hi", "vocab_size=5 runs",
                           "vocab_size=5 examples"]
    assert float(rows[2][6]) == pytest.approx(0.55) and rows[2][9] == "2"
    cells = json.loads(table.json())["cells"]
    assert {(c["row"]["task.length"], c["col"]["task.vocab_size"]): c["n"] for c in cells} == {
        (10, 5): 1, (10, 7): 1, (20, 5): 1, (20, 7): 2}
    assert all(0 <= c["low"] <= c["mean"] <= c["high"] <= 1 and c["ci95"] is None for c in cells)
    steps = store.pivot("task.length", "task.vocab_size", "wall_s").markdown()  # not an accuracy: mean ± CI
    assert "1.5000 ± 0.0000 (n=2)" in steps


def test_pivot_rejects_a_text_value_and_unknown_fields(store):
    with pytest.raises(ConfigError, match="not a number"):
        store.pivot("task.length", None, "model.norm")
    with pytest.raises(ConfigError, match="unknown rows field 'width'"):
        store.pivot("width", None, "test_token_acc")
    with pytest.raises(ConfigError, match="ambiguous"):
        pivot([{"a.x": 1, "b.x": 2, "m": 0.5}], "x", None, "m")


def _write_rows(path, worker, n):
    st = ResultsStore(path)
    for i in range(n):
        st.record_summary(_config(10, 5, seed=i), _summary(i / n), f"/tmp/w{worker}-{i}", machine="m", git_rev="g")


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "shared.sqlite"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_write_rows, args=(path, w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    rows = ResultsStore(path).query()
    assert len(rows) == 100 and len({r["run_dir"] for r in rows}) == 100
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_train_cli_records_the_run(tmp_path, capsys):
    store = tmp_path / "store.sqlite"
    out = tmp_path / "run"
    argv = ["train", "count_ones", "--set", "train.steps=10", "--set", "eval.every=5", "--set", "eval.test_size=32",
            "--set", "eval.val_size=16", "--set", "model.n_layers=1", "--out", str(out), "--store", str(store),
            "--quiet", "--no-live-plot", "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (row,) = ResultsStore(store).query()
    assert row["source"] == "train" and row["run_dir"] == str(out.resolve())
    assert row["test_token_acc"] == summary["test_token_acc"] and row["model.n_layers"] == 1 and row["steps"] == 10
    assert row["git_rev"] == git_revision() and "torch threads" in row["machine"]

    assert main(["results", "--store", str(store), "--format", "json", "--columns", "source,n_layers,steps"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"source": "train", "model.n_layers": 1, "steps": 10}]


def test_a_store_that_cannot_record_is_refused_before_training(tmp_path, capsys):
    bad = tmp_path / "a_directory"
    bad.mkdir()
    argv = ["train", "count_ones", "--set", "train.steps=4", "--set", "eval.every=2", "--set", "eval.test_size=16",
            "--set", "eval.val_size=8", "--set", "model.n_layers=1", "--out", str(tmp_path / "run"), "--store",
            str(bad), "--quiet", "--no-live-plot"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a directory" in err[0] and str(bad) in err[0]
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_store_that_fails_while_recording_keeps_the_run(tmp_path, monkeypatch, capsys):
    """The disk fills between training and recording: the CLI exits 2 with one line naming the
    store and how to go on; the API raises the disk's OSError naming the store; --resume records it later."""
    store, out = tmp_path / "s.sqlite", tmp_path / "run"
    real = ResultsStore._insert

    def full(self, row):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ResultsStore, "_insert", full)
    argv = ["train", "count_ones", "--set", "train.steps=4", "--set", "eval.every=2", "--set", "eval.test_size=16",
            "--set", "eval.val_size=8", "--set", "model.n_layers=1", "--out", str(out), "--store", str(store),
            "--quiet", "--no-live-plot"]
    assert main(argv) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert f"'{store}': No space left on device" in err and f"go on with: toyformer train --resume --out {out}" in err
    assert (out / "summary.json").is_file()
    from toyformer import train

    with pytest.raises(OSError) as info:  # the API: the disk's error, naming the store
        train(None, out_dir=out, resume=True, store=store)
    assert info.value.filename == str(store) and (out / "summary.json").is_file()
    monkeypatch.setattr(ResultsStore, "_insert", real)
    assert main(["train", "--resume", "--out", str(out), "--store", str(store), "--quiet"]) == 0
    assert [r["run_dir"] for r in ResultsStore(store).query()] == [str(out.resolve())]


def test_results_cli_pivot_and_errors(store, capsys):
    argv = ["results", "--store", str(store.path), "--rows", "length", "--cols", "vocab_size", "--value",
            "test_token_acc"]
    assert main(argv) == 0
    assert "| 10 | 1.0000 | 0.9000 |" in capsys.readouterr().out
    assert main(["results", "--store", str(store.path), "--where", "nope = 1"]) == 2
    assert re.search(r"toyformer: error: --where 'nope = 1': unknown field 'nope'; known: ", capsys.readouterr().err)
    assert main(["results", "--store", str(store.path) + ".missing"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_results_cli_plot(store, tmp_path, capsys):
    out = tmp_path / "acc.svg"
    assert main(["results", "--store", str(store.path), "--plot", "x=length,y=test_token_acc,lines=vocab_size",
                 "--out", str(out)]) == 0
    assert out.read_text().lstrip().startswith("<?xml") and "<svg" in out.read_text()


def test_git_revision_is_the_checkout_head():
    rev = git_revision()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / ".git").exists() and shutil.which("git"):  # the package runs from this checkout
        head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        assert rev.split("+")[0] == head.strip()
    else:
        assert re.fullmatch(r"toyformer \S+", rev)


def test_recipes_record_their_runs(tmp_path):
    from toyformer.experiments.recipes import run_recipe

    run_recipe("r1", tmp_path / "r1", quick=True, store=tmp_path / "s.sqlite")
    rows = ResultsStore(tmp_path / "s.sqlite").query()
    run_dirs = sorted(str(p.resolve()) for p in (tmp_path / "r1" / "runs").iterdir())
    assert sorted(r["run_dir"] for r in rows) == run_dirs
    assert {(r["source"], r["sweep"]) for r in rows} == {("recipe", "recipe r1")}


def test_replicas_are_rows_of_one_run_and_share_a_cell(tmp_path):
    st = ResultsStore(tmp_path / "r.sqlite")
    for i, acc in enumerate([0.7, 0.8, 0.9]):
        st.record_summary(_config(10, 5, seed=i), _summary(acc), tmp_path / "rep", replica=i, n_replicas=3,
                          machine="m", git_rev="g")
    rows = st.query()
    assert [(r["replica"], r["n_replicas"]) for r in rows] == [(0, 3), (1, 3), (2, 3)]
    mean, ci, n = st.pivot("task.length", None, "wall_s").cell(10)
    assert n == 3 and mean == pytest.approx(1.5) and ci == pytest.approx(mean_ci([1.5, 1.5, 1.5])[1])
    mean, lo, hi, examples = st.pivot("task.length", None, "test_token_acc").interval(10)
    assert mean == pytest.approx(0.8) and 0.7 <= lo < mean < hi <= 0.9 and examples is None


def _finished_run(run_dir, config, summary):
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "summary.json").write_text(json.dumps(summary))


def test_sync_records_each_finished_run_missing_once(tmp_path, capsys):
    runs = tmp_path / "runs"
    _finished_run(runs / "single", _config(10, 5), _summary(0.5))
    rep = runs / "rep"
    for i in range(3):
        _finished_run(rep / "replicas" / str(i), _config(10, 5, seed=i), _summary(0.1 * i))
    (rep / "replicas.json").write_text(json.dumps({"k": 3, "replica_set": {}, "config": _config(10, 5)}))
    (rep / "summary.json").write_text("{}")
    unfinished = runs / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text(json.dumps(_config(20, 5)))
    sweep_dir = runs / "sweeps" / "s"
    _finished_run(sweep_dir / "runs" / "length=10,seed=0", _config(10, 7), _summary(0.7))
    (sweep_dir / "sweep.json").write_text(json.dumps({"sweep": "s"}))
    st = ResultsStore(tmp_path / "r.sqlite")
    st.record_summary(_config(10, 5, seed=1), _summary(0.1), rep / "replicas" / "1", replica=1, n_replicas=3,
                      source="train", machine="m", git_rev="g")

    assert st.sync(runs) == 1 + 2 + 1  # the single run, replicas 0 and 2, the sweep's point
    rows = {(Path(r["run_dir"]).relative_to(runs.resolve()).as_posix(), r["replica"]): r for r in st.query()}
    assert set(rows) == {("single", 0), ("rep/replicas/0", 0), ("rep/replicas/1", 1), ("rep/replicas/2", 2),
                         ("sweeps/s/runs/length=10,seed=0", 0)}
    assert rows[("rep/replicas/1", 1)]["source"] == "train"  # a row that was there stays as it was
    assert [rows[("rep/replicas/2", 2)][k] for k in ("n_replicas", "test_token_acc", "seed")] == [3, 0.2, 2]
    point = rows[("sweeps/s/runs/length=10,seed=0", 0)]
    assert (point["source"], point["sweep"], point["point"]) == ("sweep", "s", "length=10,seed=0")
    assert rows[("single", 0)]["source"] == "sync" and rows[("single", 0)]["test_token_acc"] == 0.5
    assert st.sync(runs) == 0 and len(st.query()) == 5

    assert main(["results", "--sync", str(runs), "--store", str(st.path)]) == 0
    assert capsys.readouterr().out.startswith("added 0 run(s) from ")
    assert main(["results", "--sync", str(tmp_path / "nope"), "--store", str(st.path)]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["results", "--sync", str(runs), "--rows", "length"]) == 2
    assert "run it without --rows" in capsys.readouterr().err


def test_results_plot_errors_name_the_plot_option(store, tmp_path, capsys):
    argv = ["results", "--store", str(store.path), "--out", str(tmp_path / "p.svg"), "--plot"]
    assert main(argv + ["x=nosuch,y=test_token_acc"]) == 2
    err = capsys.readouterr().err
    assert "unknown --plot x field 'nosuch'" in err and "--rows" not in err and len(err.strip().splitlines()) == 1
    assert main(argv + ["x=length,y=norm"]) == 2
    assert "--plot y metric 'model.norm' is not a number" in capsys.readouterr().err


def test_test_exact_match_has_its_interval_and_solved_follows_the_summary(tmp_path):
    st = ResultsStore(tmp_path / "r.sqlite")
    summary = {**_summary(1.0, solved=100), "test_exact_match": 0.999, "test_n": 2000,
               # validation reached it, the evidence did not
               "test_exact_match_ci95": [0.9964, 0.9997], "solved": False}
    st.record_summary(_config(10, 5), summary, tmp_path / "a", machine="m", git_rev="g")
    st.record_summary(_config(10, 5, seed=1), {**_summary(0.5), "test_n": 50}, tmp_path / "b", machine="m", git_rev="g")
    a, b = st.query()
    assert (a["test_n"], a["test_exact_match_lo"], a["test_exact_match_hi"], a["solved"]) == (2000, 0.9964, 0.9997, 0)
    assert b["solved"] == 0 and b["test_exact_match_lo"] < 0.25 < b["test_exact_match_hi"]  # Wilson from test_n
    assert [r["id"] for r in st.query(where="test_exact_match_lo > 0.99")] == [a["id"]]
    single = st.pivot("seed", None, "test_exact_match").markdown()
    assert "| 0 | 0.9990 (n=2,000, 95% CI 0.9964-0.9997) |" in single
    both = st.pivot("task.length", None, "test_exact_match").interval(10)
    assert both[3] == 2050 and 0 <= both[1] < both[0] < both[2] <= 1


def test_an_older_store_gets_the_interval_columns_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)  # a store written before the interval's columns existed
    con.execute('CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, run_dir TEXT, replica INTEGER NOT NULL '
                'DEFAULT 0, test_exact_match REAL, test_n INTEGER, solved INTEGER, "task.name" TEXT, '
                'UNIQUE (run_dir, replica))')
    con.execute('INSERT INTO runs (run_dir, test_exact_match, test_n, solved, "task.name") '
                "VALUES ('/old', 0.5, 100, 0, 'reverse')")
    con.commit()
    con.close()
    (old,) = ResultsStore(path, read_only=True).query()  # read only: computed, nothing written
    assert old["test_exact_match_lo"] == pytest.approx(0.4038, abs=1e-4) and old["test_exact_match_hi"] > 0.5
    st = ResultsStore(path)
    st.record_summary(_config(10, 5), {**_summary(1.0), "test_n": 10}, tmp_path / "new", machine="m", git_rev="g")
    old, new = st.query(where="test_exact_match_lo is not null")  # filled in the table itself
    assert old["run_dir"] == "/old" and old["test_exact_match_lo"] == pytest.approx(0.4038, abs=1e-4)
    assert new["test_exact_match_lo"] < 0.5 < new["test_exact_match_hi"] < 1  # 5 of 10


def test_record_summaries_writes_the_rows_record_summary_would_in_one_transaction(store, tmp_path):
    one = ResultsStore(tmp_path / "one.sqlite")
    entries = [{"config": _config(10, 5, seed=s, d_ff=64), "summary": {**_summary(0.5 + s / 10), "test_n": 20},
                "run_dir": tmp_path / f"bulk-{s}", "source": "bench", "sweep": "s", "point": f"p{s}", "machine": "m",
                "git_rev": "g"} for s in range(3)]
    for entry in entries:
        one.record_summary(**entry)
    ids = store.record_summaries(entries)
    assert ids == [6, 7, 8]  # after the fixture's five, in order
    leave = ("id", "recorded_at")
    got = [{k: v for k, v in r.items() if k not in leave} for r in store.query(where="sweep = 's'")]
    want = [{k: v for k, v in r.items() if k not in leave} for r in one.query()]
    assert got == want and got[1]["model.d_ff"] == 64 and got[2]["test_exact_match_lo"] is not None
    again = store.record_summaries([{**entries[0], "summary": _summary(0.01)}])  # (run_dir, replica) replaces
    assert len(store.query(where="sweep = 's'")) == 3
    assert store.query(where=f"id = {again[0]}")[0]["test_token_acc"] == 0.01
    assert store.record_summaries([]) == []


def test_record_summaries_writes_all_or_nothing(store, tmp_path):
    before = store.query()
    good = {"config": _config(10, 5, d_ff=7), "summary": _summary(0.5), "run_dir": tmp_path / "g", "machine": "m",
            "git_rev": "g"}
    bad = {**good, "config": {**_config(10, 5), "id": "not a number"}, "run_dir": tmp_path / "b"}  # fails at its insert
    with pytest.raises(Exception, match="datatype mismatch"):
        store.record_summaries([good, {**good, "run_dir": tmp_path / "g2"}, bad])
    assert store.query() == before and "model.d_ff" not in store.columns()  # the new column rolled back too
    with pytest.raises(ConfigError, match=r"entries\[1\]: unknown key 'seed'; allowed keys: config, summary, run_dir"):
        store.record_summaries([good, {**good, "seed": 3}])
    with pytest.raises(ConfigError, match=r"entries\[0\]: not a dict with config and summary"):
        store.record_summaries([{"config": {}}])
    with pytest.raises(ConfigError, match="read-only"):
        ResultsStore(store.path, read_only=True).record_summaries([good])
    assert store.query() == before
