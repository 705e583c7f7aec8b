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
        (t, c) for t in ("parity_check", "binary_addition") for c in ("lstm", "transformer/none",
                                                                      "transformer/randomised")]
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


def test_memory_networks_and_provenance_in_the_table(tmp_path):
    """The RNN, Stack-RNN and Tape-RNN columns train, score and meet their published counterparts
    (confirmed on parity_check); a Ruoss et al. cell shows as unverified."""
    argv = ["bench", "chomsky", "--quick", "--threads", "1", "--tasks", "parity_check", "--models",
            "rnn,stack_rnn,tape_rnn,transformer", "--schemes", "none", "--seeds", "1", "--runs-dir",
            str(tmp_path / "runs"), "--store", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "c.json"),
            "--markdown", str(tmp_path / "c.md")]
    assert main(argv) == 0
    result = json.loads((tmp_path / "c.json").read_text())["chomsky"]
    assert [c["column"] for c in result["cells"]] == ["rnn", "stack_rnn", "tape_rnn", "transformer/none"]
    rows = {r["column"]: r for r in result["comparison"]["rows"]}
    assert rows["stack_rnn"]["published"] == 1.0 and "DeltaFormer" in rows["stack_rnn"]["check"]
    assert rows["transformer/none"]["check"] is None
    text = (tmp_path / "c.md").read_text()
    assert "| parity_check | regular | tape_rnn |" in text and "confirmed [1]" in text
    assert "| 51.9 (?) | **unverified** |" in text  # Ruoss et al.'s none column for parity_check


def test_from_rerenders_a_finished_bench_without_training(tmp_path):
    """--from sets a bench's JSON beside the current published numbers: the scores are kept, the
    provenance is added, nothing is trained; a file that is not a bench's JSON is refused."""
    first = bench(tmp_path, "--models", "lstm")
    saved = json.loads((tmp_path / "chomsky.json").read_text())
    for row in saved["chomsky"]["comparison"]["rows"]:  # as an old file: no provenance yet
        row.pop("check", None)
    (tmp_path / "old.json").write_text(json.dumps(saved))
    argv = ["bench", "chomsky", "--from", str(tmp_path / "old.json"), "--out", str(tmp_path / "again.json"),
            "--markdown", str(tmp_path / "again.md"), "--runs-dir", str(tmp_path / "nowhere")]
    assert main(argv) == 0
    again = json.loads((tmp_path / "again.json").read_text())["chomsky"]
    assert [c["max"] for c in again["cells"]] == [c["max"] for c in first["cells"]]
    assert all("check" in r for r in again["comparison"]["rows"]) and not (tmp_path / "nowhere").exists()
    text = (tmp_path / "again.md").read_text()
    assert "Re-rendered from the JSON of" in text and "provenance" in text and (tmp_path / "again.png").is_file()
    (tmp_path / "bad.json").write_text("{}")
    assert main(["bench", "chomsky", "--from", str(tmp_path / "bad.json"), "--out", str(tmp_path / "x.json")]) == 2
