"""Damaged, foreign, newer, locked and empty results stores and tune studies: one line each.

(The table of ``test_bad_input.py`` runs every command that opens a store on a store that is not
SQLite, truncated, another program's, of a newer schema, or a directory.) Here: a store or study
locked by another process (we wait ``$TOYFORMER_STORE_WAIT_S``, then name that process), an
empty store (it plainly holds no runs), and a tune study that is damaged, foreign or of another
Optuna version.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fault_harness import tiny
from toyformer import ResultsStore
from toyformer.cli import main

TINY = [*tiny(steps=4, every=2), "--quiet", "--no-live-plot"]
HOLD = textwrap.dedent("""
    import sqlite3, sys
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    if sys.argv[2] == "exclusive":
        con.execute("PRAGMA locking_mode = EXCLUSIVE")
        con.execute("BEGIN EXCLUSIVE")
        con.execute("SELECT count(*) FROM sqlite_master").fetchall()
    else:
        con.execute("BEGIN IMMEDIATE")
    print("holding", flush=True)
    sys.stdin.read()
""")


def one_line(code: int, err: str, *words: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("toyformer: error: "), (code, err)
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


class Holder:
    """Another process holding a lock on an SQLite file (``exclusive``: readers wait too)."""

    def __init__(self, path: Path, how: str = "write"):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), how], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "holding"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.stdin.close()
        self.proc.wait(30)


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "store.sqlite"
    assert main(["train", "reverse", *TINY, "--out", str(tmp_path / "a"), "--store", str(path)]) == 0
    return path


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="who holds a lock is read from /proc/locks (Linux)")
def test_a_locked_store_names_the_process_holding_it(store, tmp_path, monkeypatch, capsys):
    """A run finishes, its store is locked past the wait: one line naming the holder, exit 2, the
    run kept; once the lock is gone, ``--resume`` records it."""
    monkeypatch.setenv("TOYFORMER_STORE_WAIT_S", "1")
    capsys.readouterr()
    with Holder(store) as holder:
        code = main(["train", "reverse", *TINY, "--out", str(tmp_path / "b"), "--store", str(store)])
        line = one_line(code, capsys.readouterr().err, f"is locked by process {holder.proc.pid}", "waited for 1 s",
                        "1 run(s) not recorded", f"toyformer results --sync {tmp_path / 'b'}")
    assert "python" in line and (tmp_path / "b" / "summary.json").is_file()
    assert main(["train", "--resume", "--out", str(tmp_path / "b"), "--store", str(store), "--quiet"]) == 0
    assert len(ResultsStore(store).query()) == 2


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="who holds a lock is read from /proc/locks (Linux)")
def test_a_store_locked_for_reading_too(store, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TOYFORMER_STORE_WAIT_S", "0.5")
    con = sqlite3.connect(store)
    con.execute("PRAGMA journal_mode = DELETE")  # a store another tool left in rollback-journal mode
    con.close()
    capsys.readouterr()
    with Holder(store, "exclusive") as holder:
        for argv in (["results", "--store", str(store)], ["results", "--sync", str(tmp_path), "--store", str(store)]):
            one_line(main(argv), capsys.readouterr().err, f"locked by process {holder.proc.pid}")


def test_an_empty_store_plainly_holds_no_runs(tmp_path, capsys):
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    for argv in (["results", "--store", str(empty)], ["results", "--fields", "--store", str(empty)],
                 ["results", "--rows", "seed", "--store", str(empty)]):
        one_line(main(argv), capsys.readouterr().err, "holds no runs yet", "train or sweep with --store")
    # a store with the table but no row: the same
    st = ResultsStore(tmp_path / "s.sqlite")
    st.record_summary({"task": {"name": "x"}}, {}, str(tmp_path / "r"), machine="m", git_rev="g")
    con = sqlite3.connect(st.path)
    con.execute("DELETE FROM runs")
    con.commit()
    con.close()
    one_line(main(["results", "--store", str(st.path)]), capsys.readouterr().err, "holds no runs yet")
    # and writing into an empty file is fine: it becomes the store
    assert main(["train", "reverse", *TINY, "--out", str(tmp_path / "a"), "--store", str(empty)]) == 0
    assert len(ResultsStore(empty).query()) == 1


def test_the_results_browser_starts_on_an_empty_store_with_a_runs_folder(tmp_path):
    from toyformer.ui.server import make_source

    (tmp_path / "empty.sqlite").write_bytes(b"")
    source = make_source(tmp_path / "empty.sqlite", tmp_path)  # its runs folder may hold unrecorded runs
    assert source.store_columns() == []


def test_a_newer_store_is_refused_and_an_older_one_read(store, capsys):
    con = sqlite3.connect(store)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1  # what this toyformer writes
    con.execute("PRAGMA user_version = 0")  # a store written before the version was kept
    con.commit()
    assert main(["results", "--store", str(store), "--format", "csv"]) == 0
    con.execute("PRAGMA user_version = 2")
    con.commit()
    con.close()
    capsys.readouterr()
    one_line(main(["results", "--store", str(store)]), capsys.readouterr().err, "newer toyformer",
             "schema version 2", "reads up to 1")


def test_a_truncated_store_says_how_to_rebuild_it(store, tmp_path, capsys):
    data = store.read_bytes()
    store.write_bytes(data[:len(data) // 2])
    capsys.readouterr()
    line = one_line(main(["results", "--store", str(store)]), capsys.readouterr().err, "is damaged")
    assert f"toyformer results --sync RUNS_DIR --store {store}" in line
    store.rename(tmp_path / "damaged.sqlite")  # what the line says: move it away, rebuild from the run directories
    assert main(["results", "--sync", str(tmp_path), "--store", str(store)]) == 0
    assert len(ResultsStore(store).query()) == 1


# --- tune studies -------------------------------------------------------------------------------

TUNE = ["tune", "reverse", *TINY[:-2], "--budget-s", "60", "--trials", "1", "--trial-s", "20", "--no-store", "--quiet"]


@pytest.fixture
def space(tmp_path):
    (tmp_path / "space.yaml").write_text("space: {train.lr: {log: [0.001, 0.03]}}\n")
    return ["--space", str(tmp_path / "space.yaml")]


@pytest.mark.parametrize("content,words", [
    (b"not a database at all\n" * 20, ["not a toyformer tune study", "not an SQLite database"]),
    ("foreign", ["not a toyformer tune study", "other tables (things)"]),
    ("truncated", ["is damaged"]),
], ids=["not sqlite", "another program's", "truncated"])
def test_a_study_that_cannot_serve_is_one_line(content, words, tmp_path, space, capsys):
    optuna = pytest.importorskip("optuna")
    out = tmp_path / "tn"
    out.mkdir()
    study = out / "study.sqlite"
    if content == "foreign":
        con = sqlite3.connect(study)
        con.execute("CREATE TABLE things (x)")
        con.commit()
        con.close()
    elif content == "truncated":
        s = optuna.create_study(storage=f"sqlite:///{tmp_path / 'whole.sqlite'}", study_name="x")
        for _ in range(30):
            s.enqueue_trial({"x": 1.0}, user_attrs={"pad": "y" * 500})
        data = (tmp_path / "whole.sqlite").read_bytes()
        study.write_bytes(data[:len(data) // 2])
    else:
        study.write_bytes(content)
    before = sorted(out.iterdir())
    capsys.readouterr()
    one_line(main([*TUNE, *space, "--out", str(out)]), capsys.readouterr().err, str(study), *words)
    assert sorted(out.iterdir()) == before  # nothing written beside it


@pytest.mark.slow
def test_a_study_of_another_optuna_version(tmp_path, space, capsys):
    pytest.importorskip("optuna")
    out = tmp_path / "tn"
    assert main([*TUNE, *space, "--out", str(out)]) == 0
    con = sqlite3.connect(out / "study.sqlite")
    con.execute("UPDATE alembic_version SET version_num = 'v99.0.0.a'")
    con.commit()
    con.close()
    capsys.readouterr()
    one_line(main([*TUNE, *space, "--out", str(out)]), capsys.readouterr().err, "another version of Optuna",
             str(out / "study.sqlite"))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="who holds a lock is read from /proc/locks (Linux)")
def test_a_locked_study_names_the_process_holding_it(tmp_path, space, monkeypatch, capsys):
    pytest.importorskip("optuna")
    out = tmp_path / "tn"
    assert main([*TUNE, *space, "--out", str(out)]) == 0
    monkeypatch.setenv("TOYFORMER_STORE_WAIT_S", "1")
    capsys.readouterr()
    with Holder(out / "study.sqlite", "exclusive") as holder:
        code = main([*TUNE, *space, "--trials", "2", "--out", str(out)])
        one_line(code, capsys.readouterr().err, str(out / "study.sqlite"), f"locked by process {holder.proc.pid}")
    assert main([*TUNE, *space, "--trials", "2", "--out", str(out)]) == 0  # free again: the search goes on


@pytest.mark.parametrize("text", ["task: {name: [reverse\n", "- 1\n- 2\n", ""], ids=["not YAML", "a list", "empty"])
def test_a_damaged_base_file_of_a_tune_is_one_line(text, tmp_path, space, capsys):
    """A tune directory's base.yaml that PyYAML cannot read, or that holds no config: one line
    naming it, nothing written."""
    out = tmp_path / "tn"
    out.mkdir()
    (out / "base.yaml").write_text(text)
    capsys.readouterr()
    one_line(main([*TUNE, *space, "--out", str(out)]), capsys.readouterr().err, str(out / "base.yaml"), "is damaged")
    assert sorted(p.name for p in out.iterdir()) == ["base.yaml"]
