"""``toyformer bench chomsky --quick``: the whole pipeline (cells trained through the executors,
scored, recorded in the results store, tabled beside the published numbers, a figure), and a
second invocation that reuses the finished runs and their scores."""

import json

import pytest

from toyformer.cli import main
from toyformer.experiments.store import ResultsStore


def bench(tmp_path, *extra):
    argv = ["bench", "chomsky", "--quick", "--threads", "1", "--tasks", "parity_check,binary_addition",
            "--schemes", "none,randomised", "--runs-dir", str(tmp_path / "runs"), "--store", str(tmp_path / "r.sqlite"),
            "--out", str(tmp_path / "chomsky.json"), "--markdown", str(tmp_path / "chomsky.md"), *extra]
    assert main(argv) == 0
    return json.loads((tmp_path / "chomsky.json").read_text())["chomsky"]


def test_quick_bench_trains_scores_records_and_tables_every_cell(tmp_path, capsys):
    result = bench(tmp_path)
    cells = result["cells"]
    assert [(c["task"], c["column"]) for c in cells] == [
        (t, c) for t in ("parity_check", "binary_addition") for c in ("lstm", "transformer/none", "transformer/randomised")]
    assert all(c["n"] == 2 and 0 <= c["max"] <= 1 for c in cells) and result["budget"]["name"] == "quick"
    rows = ResultsStore(tmp_path / "r.sqlite").query(where="sweep = 'chomsky-quick'")
    assert len(rows) == 12 and all(r["chomsky_score"] is not None for r in rows)  # 6 cells x 2 seeds
    assert {r["point"] for r in rows} == {f"{c['task']}/{c['column']}" for c in cells}
    text = (tmp_path / "chomsky.md").read_text()
    assert "budget `quick`" in text and "Published verdict reproduced" in text and (tmp_path / "chomsky.png").is_file()
    assert "| parity_check | regular | lstm |" in text
    out = capsys.readouterr().out
    assert "best toyformer transformer" in out

    again = bench(tmp_path)  # finished runs are loaded and their scores read back, not measured again
    assert [c["max"] for c in again["cells"]] == [c["max"] for c in cells]
    assert len(ResultsStore(tmp_path / "r.sqlite").query(where="sweep = 'chomsky-quick'")) == 12


def test_seeds_as_runs_gives_a_run_directory_per_seed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = bench(tmp_path, "--seeds-as", "runs", "--models", "transformer", "--seeds", "3")
    dirs = [s["run_dir"] for r in result["runs"] for s in r["scores"]]
    assert len(dirs) == 12 and all("/seed-" in d for d in dirs)
    assert all(d.startswith("runs/") for d in dirs)  # under the working directory: relative, no machine's folders


@pytest.mark.slow
def test_worker_processes_give_the_same_scores(tmp_path):
    one = bench(tmp_path / "a", "--models", "lstm")
    two = bench(tmp_path / "b", "--models", "lstm", "--workers", "2")
    assert [c["max"] for c in one["cells"]] == [c["max"] for c in two["cells"]]
