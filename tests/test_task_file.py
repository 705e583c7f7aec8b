"""A run of a task from the user's own file is self-contained: the file is copied into the run
directory (with its sha256) and used by eval, plot, report, sample and --resume when the task is
not registered; a changed file is refused, never silently used."""

import json

import pytest

from toyformer.cli import main
from toyformer.tasks import registry

TASK = '''
from dataclasses import dataclass
from typing import ClassVar
import torch
from toyformer import register_task, Vocab, Examples

@register_task("flip_bits")
@dataclass(frozen=True)
class FlipBits:
    """0 1 1 -> 1 0 0."""
    length: int = 4
    kind: ClassVar[str] = "tag"
    default_layout: ClassVar[str] = "tagger"
    holdout: ClassVar[bool] = False
    description: ClassVar[str] = "flip every bit"

    @property
    def vocab(self):
        return Vocab(["0", "1"])

    def sample(self, n, generator, length=None):
        x = torch.randint(5, 7, (n, length or self.length), generator=generator)
        return Examples(x, 11 - x)

    def domain(self):
        return None
'''
SMALL = ["--set", "train.steps=30", "--set", "eval.every=10", "--set", "eval.val_size=32", "--set", "eval.test_size=32",
         "--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1", "--quiet",
         "--no-live-plot"]


def forget(name="flip_bits"):
    """As in a new process: the task is not registered."""
    registry._REGISTRY.pop(name, None)
    registry._SOURCES.pop(name, None)


@pytest.fixture
def trained(tmp_path):
    task_file = tmp_path / "flip.py"
    task_file.write_text(TASK)
    run = tmp_path / "run"
    assert main(["train", "flip_bits", "--layout", "causal", "--task-file", str(task_file), "--out", str(run),
                 *SMALL]) == 0  # causal: `sample` applies to it
    forget()
    task_file.unlink()  # the run directory alone must do
    yield run
    forget()


def test_the_run_keeps_a_copy_of_its_task_file(trained):
    meta = json.loads((trained / "task_file.json").read_text())
    assert meta["task"] == "flip_bits" and (trained / "task.py").read_text() == TASK
    assert meta["sha256"] == registry.file_sha256(trained / "task.py")


@pytest.mark.parametrize("argv", [["eval", "{run}"], ["plot", "{run}", "--what", "attention"], ["report", "{run}"],
                                  ["sample", "{run}", "--n", "2"]])
def test_commands_work_from_the_run_directory_alone(trained, argv, capsys):
    forget()
    assert main([a.format(run=trained) for a in argv]) == 0, capsys.readouterr().err


def test_a_killed_run_resumes_from_its_directory_alone(tmp_path):
    task_file = tmp_path / "flip.py"
    task_file.write_text(TASK)
    run = tmp_path / "run"
    assert main(["train", "flip_bits", "--task-file", str(task_file), "--out", str(run), *SMALL]) == 0
    for name in ("summary.json", "model.safetensors"):  # as if killed before the end
        (run / name).unlink()
    forget()
    task_file.unlink()
    assert main(["train", "--resume", "--out", str(run), "--quiet"]) == 0
    assert json.loads((run / "summary.json").read_text())["task"] == "flip_bits"
    forget()


def test_replica_runs_keep_the_copy_too(tmp_path):
    task_file = tmp_path / "flip.py"
    task_file.write_text(TASK)
    run = tmp_path / "rep"
    assert main(["train", "flip_bits", "--task-file", str(task_file), "--out", str(run), "--replicas", "2",
                 *SMALL]) == 0
    forget()
    assert main(["eval", str(run / "replicas" / "1")]) == 0
    assert (run / "task.py").is_file()
    forget()


def test_a_changed_copy_is_refused(trained, capsys):
    (trained / "task.py").write_text(TASK + "\n# edited\n")
    assert main(["eval", str(trained)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "task.py" in err and "changed" in err


def test_a_different_task_file_of_the_same_name_is_refused(trained, tmp_path, capsys):
    other = tmp_path / "other.py"
    other.write_text(TASK.replace("11 - x", "x"))
    assert main(["eval", str(trained), "--task-file", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert "differs from the file the run" in err and str(other) in err
    forget()
    same = tmp_path / "same.py"
    same.write_text(TASK)
    assert main(["eval", str(trained), "--task-file", str(same)]) == 0  # the same file: accepted
