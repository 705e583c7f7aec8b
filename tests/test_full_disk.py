"""A really full disk, and a read-only one, under every command that writes (``COMMANDS``: train,
train --replicas, sweep, tune, recipe --quick, recipe lengths --quick, explain, report, plot,
eval --lengths, diagnose --try, results --sync, results --plot, bench --quick): a tmpfs mounted
at the size where the disk fills on each kind of write in turn (config, metrics log, checkpoint,
weights, figures, report, the results store, a tune study), and mounted read-only. The commands
that write nothing (tasks, eval without --lengths, diagnose without --try, results, ui) read a
read-only disk.

The contract each time (``fault_harness``): one line naming the path meant and the reason, a
non-zero exit, nothing half-written, the last good checkpoint intact, the store consistent; and,
with room again, the command the line names (``--resume``, or the same command) finishes the
work, every run recorded once. ``train`` runs in the fast suite; every other command is slow-marked
(CI runs it too). Where this machine cannot mount a tmpfs the tests skip, saying why; the
Python-level shim (``test_write_faults.py``) runs everywhere.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from fault_harness import (FillAt, Recorder, can_mount, check_failed, check_finished, kind_of, read_only, resize, tiny,
                           tiny_spec, tmpfs, used)
from toyformer.cli import main

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs and /proc are Linux's")

ROOMY = 64 * 2**20
TINY = tiny()
SPEC = tiny_spec("full", plot=[{"x": "task.length", "y": "test_token_acc"}])
SPACE = {"space": {"train.lr": {"log": [1e-3, 3e-2]}}}
TUNE = tiny(batch=False)


@dataclass
class Command:
    argv: list[str]  # {d}: the mounted folder; {files}: spec files outside it
    done: list[str]  # files that exist once the work is finished
    setup: str | None = None  # "run": a trained run copied to {d}/run; "runs": to {d}/runs/a; "store": and recorded
    store: bool = True
    kinds: list[str] = field(default_factory=list)  # the kinds of write the disk must fill on


COMMANDS = {
    "train": Command(["train", "reverse", *TINY, "--out", "{d}/run", "--store", "{d}/store.sqlite", "--quiet"],
                     ["run/summary.json", "run/model.safetensors"],
                     kinds=["config", "checkpoint", "metrics log", "figures", "weights", "summary", "results store"]),
    "train --replicas": Command(["train", "reverse", *TINY, "--replicas", "2", "--out", "{d}/rep", "--store",
                                 "{d}/store.sqlite", "--quiet"], ["rep/summary.json", "rep/replicas/1/summary.json"],
                                kinds=["config", "checkpoint", "results store"]),
    "sweep": Command(["sweep", "{files}/full.yaml", "--out", "{d}/sw", "--store", "{d}/store.sqlite", "--quiet"],
                     ["sw/sweep.json", "sw/report.html", "sw/runs/length=4,seed=0/summary.json"],
                     kinds=["config", "results store", "figures", "report"]),
    "tune": Command(["tune", "reverse", *TUNE, "--space", "{files}/space.yaml", "--budget-s", "300", "--trials", "2",
                     "--trial-s", "60", "--out", "{d}/tn", "--store", "{d}/store.sqlite", "--quiet"],
                    ["tn/tune.json", "tn/summary.md"],
                    kinds=["tune study", "checkpoint"]),
    "recipe --quick": Command(["recipe", "r1", "--quick", "--out", "{d}/rc", "--store", "{d}/store.sqlite"],
                              ["rc/result.json", "rc/report.html"],
                              kinds=["results store", "report"]),
    "recipe lengths --quick": Command(["recipe", "lengths", "--preset", "addition", "--quick", "--out", "{d}/rl",
                                       "--store", "{d}/store.sqlite"], ["rl/result.json", "rl/report.html"],
                                      kinds=["report"]),
    "explain": Command(["explain", "{d}/run", "-n", "16"], ["run/explain.json", "run/report.html"], setup="run",
                       store=False, kinds=["report"]),
    "report": Command(["report", "{d}/run"], ["run/report.html"], setup="run", store=False, kinds=["report"]),
    "plot": Command(["plot", "{d}/run", "--what", "attention"], ["run/attention.png"], setup="run", store=False,
                    kinds=["figures"]),
    "results --sync": Command(["results", "--sync", "{d}/runs", "--store", "{d}/store.sqlite"], [], setup="runs",
                              kinds=["results store"]),
    "bench --quick": Command(["bench", "peak", "--quick", "--out", "{d}/peak.json", "--markdown", "{d}/peak.md"],
                             ["peak.json", "peak.md"], store=False, kinds=["summary"]),
    "eval --lengths": Command(["eval", "{d}/run", "--lengths", "3,4", "-n", "16"],
                              ["run/lengths.json", "run/lengths.png"], setup="run", store=False,
                              kinds=["figures", "report"]),
    "results --plot": Command(["results", "--store", "{d}/store.sqlite", "--plot", "x=task.length,y=test_token_acc",
                               "--out", "{d}/acc.png"], ["acc.png"], setup="store", kinds=["figures"]),
    "diagnose --try": Command(["diagnose", "{d}/run", "--try", "--budget-s", "8", "--seeds", "1", "--quiet",
                               "--markdown", "{d}/try.md"], ["run/try.json", "try.md"], setup="run", store=False,
                              kinds=["config", "report"]),
}
SIZED = {"train", "train --replicas"}  # the results store written last: a size chosen from one run fits the next
FAST = {("train", "checkpoint"), ("train", "weights"), ("train", "figures"), ("train", "results store")}
CASES = [pytest.param(name, kind, marks=() if (name, kind) in FAST else pytest.mark.slow, id=f"{name}: {kind}")
         for name, command in COMMANDS.items() for kind in command.kinds]


@pytest.fixture(scope="module")
def mount_point(tmp_path_factory):
    """One folder every mount of this module goes on (the same path: the same file sizes)."""
    folder = tmp_path_factory.mktemp("fullfs") / "m"
    why = can_mount(folder)
    if why:
        pytest.skip(f"the real full-disk tests need a tmpfs: {why}")
    return folder


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The spec files, and a trained run to copy, outside the mount."""
    folder = tmp_path_factory.mktemp("faultfiles")
    (folder / "full.yaml").write_text(yaml.safe_dump(SPEC))
    (folder / "space.yaml").write_text(yaml.safe_dump(SPACE))
    assert main(["train", "reverse", *TINY, "--out", str(folder / "run"), "--no-store", "--quiet",
                 "--no-live-plot"]) == 0
    return folder


@pytest.fixture(autouse=True)
def own_store(monkeypatch, mount_point):
    monkeypatch.setenv("TOYFORMER_RESULTS", str(mount_point / "store.sqlite"))
    monkeypatch.chdir(mount_point.parent)


def argv_of(command: Command, d: Path, files: Path) -> list[str]:
    return [a.format(d=d, files=files) for a in command.argv]


def setup(command: Command, d: Path, files: Path) -> None:
    if command.setup == "run":
        shutil.copytree(files / "run", d / "run")
    elif command.setup in ("runs", "store"):
        shutil.copytree(files / "run", d / "runs" / "a")
    if command.setup == "store":
        assert main(["results", "--sync", str(d / "runs"), "--store", str(d / "store.sqlite")]) == 0


_traces: dict[str, Recorder] = {}


def trace(name: str, mount_point: Path, files: Path, monkeypatch) -> Recorder:
    """Run the command once on a roomy mount, noting every write (cached per command)."""
    if name not in _traces:
        command = COMMANDS[name]
        with tmpfs(mount_point, ROOMY):
            setup(command, mount_point, files)
            recorder = Recorder(mount_point)
            with monkeypatch.context() as m, recorder.watching(m):
                assert main(argv_of(command, mount_point, files)) == 0
        _traces[name] = recorder
    return _traces[name]


def go_on(err: str, argv: list[str]) -> list[str]:
    """The command the line names (``go on with: ...``), else the same command."""
    if "go on with: " in err:
        return shlex.split(err.strip().split("go on with: ", 1)[1])[1:]
    return argv


def finished(command: Command, d: Path) -> None:
    for f in command.done:
        assert (d / f).is_file(), f"{f} missing after going on"
    runs = [p.parent for p in d.rglob("config.json") if "replicas" not in p.parts]
    check_finished(d, d / "store.sqlite" if command.store else None, runs)


def fail_and_go_on(name: str, kind: str, mount_point: Path, files: Path, monkeypatch, capsys,
                   size: int | None) -> None:
    """Run the command on a tmpfs of ``size`` bytes (None: roomy, and shrunk to what it holds
    just before the first write of ``kind``), check the contract, give it room and go on."""
    command = COMMANDS[name]
    argv = argv_of(command, mount_point, files)
    with tmpfs(mount_point, size or ROOMY):
        setup(command, mount_point, files)
        capsys.readouterr()
        with monkeypatch.context() as m:
            with Recorder(mount_point, before_write=None if size else FillAt(mount_point, kind)).watching(m):
                code = main(argv)
        err = capsys.readouterr().err
        named = check_failed(mount_point, code, err, ["No space left on device"])
        assert kind_of(named) == kind, f"the write that failed was {named} ({kind_of(named)}), not a {kind} write"
        resize(mount_point, ROOMY)
        assert main(go_on(err, argv)) == 0, capsys.readouterr().err
        finished(command, mount_point)


@pytest.mark.parametrize("name,kind", CASES)
def test_a_full_disk_on_each_kind_of_write(name, kind, mount_point, files, monkeypatch, capsys):
    """A tmpfs just too small for the first write of ``kind`` (chosen from a roomy run); a write
    that comes after a bigger one (the weights after the second checkpoint), and the commands
    whose libraries write more than the Recorder sees or whose results store is written between
    runs (its WAL and shared memory come and go), meet a tmpfs shrunk to what it holds just
    before that write."""
    size = trace(name, mount_point, files, monkeypatch).size_for(kind) if name in SIZED else None
    fail_and_go_on(name, kind, mount_point, files, monkeypatch, capsys, size or None)


READ_ONLY = [pytest.param(name, marks=() if name == "train" else pytest.mark.slow) for name in COMMANDS]


@pytest.mark.parametrize("name", READ_ONLY)
def test_a_read_only_disk(name, mount_point, files, monkeypatch, capsys):
    """Every command that writes, on a filesystem read-only when it starts (a remount while it
    runs is refused by the kernel: the run directory's lock file is open for writing): one line
    naming the path meant, exit 2, nothing changed; writable again, the command the line names
    does the work."""
    command = COMMANDS[name]
    argv = argv_of(command, mount_point, files)
    with tmpfs(mount_point, ROOMY):
        setup(command, mount_point, files)
        before = sorted(p for p in mount_point.rglob("*"))
        read_only(mount_point)
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err
        check_failed(mount_point, code, err, ["Read-only file system"])
        assert code == 2, err
        read_only(mount_point, False)
        assert sorted(p for p in mount_point.rglob("*")) == before
        assert main(go_on(err, argv)) == 0, capsys.readouterr().err
        finished(command, mount_point)


@pytest.mark.slow
def test_sizes_alone_reach_most_kinds_of_write(mount_point, files, monkeypatch):
    """Several tmpfs sizes, chosen from one roomy run, each fill the disk on a different kind of
    write; only writes that come after a bigger one need the disk shrunk before them."""
    reached = {kind for name in SIZED for kind in COMMANDS[name].kinds
               if trace(name, mount_point, files, monkeypatch).size_for(kind) is not None}
    assert {"config", "checkpoint", "metrics log", "figures", "results store"} <= reached, reached


READERS = {  # the commands that write nothing, and what each prints
    "results": (["results", "--store", "{d}/store.sqlite", "--format", "json"], '"task.name": "reverse"'),
    "eval": (["eval", "{d}/runs/a"], "test_exact_match"),
    "diagnose": (["diagnose", "{d}/runs/a"], ""),
    "tasks": (["tasks"], "reverse"),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n == "results" else pytest.mark.slow) for n in READERS])
def test_the_commands_that_only_read_work_on_a_read_only_disk(name, mount_point, files, capsys):
    """Reading needs no write: each command that writes nothing works on a read-only filesystem
    and leaves it as it was."""
    argv, says = READERS[name]
    with tmpfs(mount_point, ROOMY):
        shutil.copytree(files / "run", mount_point / "runs" / "a")
        assert main(["results", "--sync", str(mount_point / "runs"), "--store", str(mount_point / "store.sqlite")]) == 0
        read_only(mount_point)
        before = sorted((p, p.stat().st_mtime_ns) for p in mount_point.rglob("*"))
        capsys.readouterr()
        assert main([a.format(d=mount_point) for a in argv]) == 0, capsys.readouterr().err
        assert says in capsys.readouterr().out
        assert sorted((p, p.stat().st_mtime_ns) for p in mount_point.rglob("*")) == before
        assert used(mount_point) > 0


def test_the_results_browser_reads_a_read_only_disk(mount_point, files):
    """``toyformer ui`` writes nothing (its store opened ``mode=ro``): it serves the store and the
    run directories of a read-only filesystem, and leaves them as they were."""
    pytest.importorskip("starlette")
    import json
    import urllib.request

    from toyformer.ui import Background

    with tmpfs(mount_point, ROOMY):
        shutil.copytree(files / "run", mount_point / "runs" / "a")
        assert main(["results", "--sync", str(mount_point / "runs"), "--store", str(mount_point / "store.sqlite")]) == 0
        read_only(mount_point)
        before = sorted((p, p.stat().st_mtime_ns) for p in mount_point.rglob("*"))
        with Background(store=mount_point / "store.sqlite", runs=mount_point / "runs") as url:
            with urllib.request.urlopen(f"{url}/api/runs", timeout=60) as response:
                table = json.loads(response.read())
        assert sorted((p, p.stat().st_mtime_ns) for p in mount_point.rglob("*")) == before
    assert len(table["rows"]) == 1, table
