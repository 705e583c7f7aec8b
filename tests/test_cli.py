"""The CLI: JSON output, errors (one line, exit 2, nothing written), eval, resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toyformer.cli import main

FAST = ["--set", "model.d_model=32", "--set", "model.n_layers=1", "--set", "eval.val_size=32",
        "--set", "eval.test_size=64", "--set", "steps=40", "--set", "eval.every=20", "--set", "length=4"]
REQUIRED = {"task", "layout", "params", "steps", "wall_s", "train_loss", "test_token_acc",
            "test_exact_match", "solved_at_step", "solved_at_s"}


def run_cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_train_json_then_eval(tmp_path, capsys):
    code, out, _ = run_cli(["train", "reverse", "--out", str(tmp_path / "r"), "--json", *FAST], capsys)
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert REQUIRED <= set(result) and result["task"] == "reverse" and result["layout"] == "tagger"
    for name in ("config.json", "metrics.jsonl", "summary.json", "model.safetensors"):
        assert (tmp_path / "r" / name).is_file()
    code, out, _ = run_cli(["eval", str(tmp_path / "r"), "--json"], capsys)
    again = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and again["test_exact_match"] == result["test_exact_match"]
    assert again["test_token_acc"] == result["test_token_acc"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "nope"], "unknown task 'nope'; allowed:"),
        (["train", "reverse", "--set", "bogus=1"], "unknown key 'bogus'"),
        (["train", "reverse", "--set", "model.n_heads=3"], "not divisible by model.n_heads=3"),
        (["train", "reverse", "--layout", "classifier"], "allowed layouts:"),
        (["train", "reverse", "--set", "model.positional=wavy"], "allowed: none, sinusoidal, learned"),
        (["eval", "/nonexistent/run"], "not a run directory"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, argv, message):
    out_dir = tmp_path / "never"
    argv = argv + (["--out", str(out_dir)] if argv[0] == "train" else [])
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out_dir.exists()


def test_argparse_errors_exit_2(capsys):
    assert main(["train", "reverse", "--layout", "sideways"]) == 2
    assert main(["frobnicate"]) == 2


def test_tasks_lists_every_task_with_an_example(capsys):
    from toyformer import list_tasks

    code, out, _ = run_cli(["tasks"], capsys)
    assert code == 0
    for name in list_tasks():
        assert f"{name} " in out
    assert "->" in out


def test_custom_task_file(tmp_path, capsys):
    (tmp_path / "my_task.py").write_text(
        "from dataclasses import dataclass\n"
        "from typing import ClassVar\n"
        "import torch\n"
        "from toyformer import register_task, Vocab, Examples\n"
        "@register_task('double_up')\n"
        "@dataclass(frozen=True)\n"
        "class DoubleUp:\n"
        "    '''x -> x x.'''\n"
        "    length: int = 3\n"
        "    kind: ClassVar[str] = 'seq2seq'\n"
        "    default_layout: ClassVar[str] = 'seq2seq'\n"
        "    holdout: ClassVar[bool] = False\n"
        "    description: ClassVar[str] = 'repeat the input twice'\n"
        "    @property\n"
        "    def vocab(self):\n"
        "        return Vocab(['a', 'b', 'c'])\n"
        "    def sample(self, n, generator, length=None):\n"
        "        x = torch.randint(5, 8, (n, length or self.length), generator=generator)\n"
        "        return Examples(x, torch.cat([x, x], 1))\n"
        "    def domain(self):\n"
        "        return None\n"
    )
    code, out, err = run_cli(["train", "double_up", "--task-file", str(tmp_path / "my_task.py"),
                            "--out", str(tmp_path / "run"), "--json", *FAST[:-2]], capsys)
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["task"] == "double_up"


def test_resume_after_sigkill_equals_uninterrupted(tmp_path):
    args = ["train", "reverse", "--quiet", *FAST[:-6], "--set", "steps=400", "--set", "eval.every=25",
            "--set", "length=6", "--set", "eval.target=none", "--set", "model.dropout=0.1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "toyformer"]
    subprocess.run([*cmd, *args, "--out", str(tmp_path / "whole")], check=True, env=env, capture_output=True)
    proc = subprocess.Popen([*cmd, *args, "--out", str(tmp_path / "cut")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "cut" / "checkpoint.safetensors"
    deadline = time.time() + 60
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.15)  # somewhere after the first checkpoint, mid-step or mid-write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "cut" / "summary.json").exists(), "the run finished before it was killed"
    subprocess.run([*cmd, "train", "--resume", "--quiet", "--out", str(tmp_path / "cut")], check=True, env=env)
    lines = lambda d: [  # noqa: E731
        {k: v for k, v in json.loads(line).items() if k != "wall_s"}
        for line in Path(d, "metrics.jsonl").read_text().splitlines()
    ]
    assert lines(tmp_path / "cut") == lines(tmp_path / "whole")
    cut, whole = (tmp_path / name / "model.safetensors" for name in ("cut", "whole"))
    assert cut.read_bytes() == whole.read_bytes()


def test_an_out_dir_in_use_says_what_train_can_do(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "reverse", "--out", str(out), "--quiet", "--no-live-plot", *FAST]) == 0
    code, _, err = run_cli(["train", "reverse", "--out", str(out), *FAST], capsys)
    assert code == 2 and "already holds a run; pass --resume to continue it or choose another --out" in err
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    code, _, err = run_cli(["train", "reverse", "--out", str(other), *FAST], capsys)
    assert code == 2 and "is not empty and holds no run; choose another --out" in err and "--resume" not in err
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def test_a_task_name_with_a_slash_is_refused(tmp_path, capsys):
    (tmp_path / "bad_task.py").write_text(
        "from toyformer import register_task\n"
        "@register_task('my/task')\n"
        "class Nope: ...\n")
    code, _, err = run_cli(["train", "my/task", "--task-file", str(tmp_path / "bad_task.py"),
                            "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and "task name 'my/task' is not allowed: it becomes a folder's name" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()
