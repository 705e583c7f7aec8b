"""``explain`` and ``toyformer explain``: every layout, explain.json, the report section, an
unfinished run, replica runs, and bad input as one line with exit code 2."""

import json
import re
import shutil

import pytest

from conftest import small_config
from runs import reverser
from toyformer import train, train_replicas
from toyformer.cli import main
from toyformer.explain import explain, read_explain

NONE = re.compile(r"\bNone\b|\bnan\b")
LAYOUTS = {
    "classifier": ("count_ones", "classifier", {}),
    "tagger": ("reverse", "tagger", {}),
    "causal": ("reverse", "causal", {}),
    "seq2seq": ({"name": "arithmetic", "complexity": 1}, "seq2seq", {}),
    "masked": ("reverse", "masked", {}),
    "r1-padded": ({"name": "lookup_table", "size": 6}, "classifier",
                  {"positional": "none", "pooling": "slot", "causal_encoder": True}),
}


@pytest.mark.parametrize("key", list(LAYOUTS))
def test_every_layout_is_explained(key, tmp_path):
    task, layout, model = LAYOUTS[key]
    train(small_config(task, layout, model=model, train={"steps": 20}), out_dir=tmp_path / "run")
    result = explain(tmp_path / "run", n=64)
    saved = read_explain(tmp_path / "run")
    assert saved["sentences"] == result["sentences"] and saved["step"] == 20 and saved["finished"]
    for part in ("roles", "ablation", "probes", "lens", "dla", "phases", "timings"):
        assert part in saved
    text = "\n".join(result["sentences"])
    name = task if isinstance(task, str) else task["name"]
    assert re.match(rf"{name} \({layout}\), step 20, \d+ test examples: exact match \d\.\d\d\d", text)
    assert not NONE.search(text)


def test_the_cli_writes_explain_json_and_the_report_section(tmp_path, capsys):
    run_dir = tmp_path / "rev"
    shutil.copytree(reverser(), run_dir)
    assert main(["report", str(run_dir)]) == 0
    assert "Not explained yet" in (run_dir / "report.html").read_text()
    capsys.readouterr()
    assert main(["explain", str(run_dir), "--input", "3 1 4 1 5", "--corrupt", "3 1 4 1 9", "-n", "128"]) == 0
    out = capsys.readouterr().out
    assert "is a mirror head" in out and "ablating it" in out and "Patching one clean activation" in out
    page = (run_dir / "report.html").read_text()
    assert "What it learned" in page and "Ablations, largest effect first" in page and "Head roles" in page
    assert "Activation patching" in page
    assert read_explain(run_dir)["patching"]["residual"]["layers"][0] == "encoder.blocks.0.resid_pre"
    assert main(["explain", str(run_dir), "--json", "--no-report", "-n", "64"]) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert payload["ablation"]["n"] == 64


def test_an_unfinished_run_is_explained_from_its_last_checkpoint(tmp_path, capsys):
    run_dir = tmp_path / "run"
    train(small_config(train={"steps": 40}), out_dir=run_dir)
    (run_dir / "summary.json").unlink()
    (run_dir / "model.safetensors").unlink()
    assert main(["explain", str(run_dir), "-n", "32"]) == 0
    out = capsys.readouterr().out
    assert "The run is not finished: explained from its last checkpoint, step 40." in out
    assert read_explain(run_dir)["weights"] == "checkpoint.safetensors"


def test_a_replica_run_is_explained_replica_by_replica(tmp_path, capsys):
    cfg = small_config(train={"steps": 20}, data={"batch_size": 16, "train_size": 100})
    train_replicas(cfg, k=2, out_dir=tmp_path / "rep")
    assert main(["explain", str(tmp_path / "rep"), "-n", "32"]) == 0
    out = capsys.readouterr().out
    assert "replica 0" in out and "replica 1" in out
    for i in range(2):
        assert read_explain(tmp_path / "rep" / "replicas" / str(i))["step"] == 20
        assert "What it learned" in (tmp_path / "rep" / "replicas" / str(i) / "report.html").read_text()


def test_over_training_from_the_cli(tmp_path, capsys):
    cfg = small_config(train={"steps": 40, "keep_checkpoints": "log", "checkpoints_per_decade": 2})
    train(cfg, out_dir=tmp_path / "run")
    assert main(["explain", str(tmp_path / "run"), "--over-training", "-n", "32"]) == 0
    assert read_explain(tmp_path / "run")["over_training"]["steps"] == [0, 1, 3, 10, 32, 40]
    assert "Over training" in (tmp_path / "run" / "report.html").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--corrupt", "1 2 3 4 5"], "--corrupt needs --input"),
    (["--input", "3 1 4 1 5", "--corrupt", "3 1 4"], "same number of tokens"),
    (["--input", "3 1 x 1 5", "--corrupt", "3 1 4 1 5"], "token 'x' is not in the vocabulary"),
    (["-n", "0"], "allowed: >= 1"),
    (["--over-training"], "kept no checkpoints; train it with train.keep_checkpoints=log"),
])
def test_bad_input_is_one_line_with_exit_code_2(argv, message, capsys):
    code = main(["explain", str(reverser()), "--no-report", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_directory_without_a_run_is_one_line(tmp_path, capsys):
    assert main(["explain", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_a_run_in_memory_is_explained_without_writing():
    run = train(small_config(train={"steps": 20}))
    result = explain(run, n=32)
    assert result["run_dir"] is None and result["step"] == 20 and result["sentences"]
