"""Ctrl-C and SIGTERM, for real: a child process gets the signal (a terminal's Ctrl-C reaches its
whole process group) while it trains, sweeps, tunes, runs a recipe, explains or benchmarks.

Each time: no traceback, one line saying where it stopped, what was kept and the exact command
that goes on; exit 130 (SIGINT) or 143 (SIGTERM); no temporary file, no process left (a sweep's
and a tune's workers stop with their parent); the store holds every run that finished; and the
command the line names finishes the work. A second Ctrl-C exits at once.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from fault_harness import check_finished, check_whole, tiny, tiny_spec
from toyformer import ResultsStore
from toyformer.cli import main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SRC = str(Path(__file__).resolve().parents[1] / "src")
TINY = tiny(steps=None, every=None)
LONG = [*TINY, "--set", "train.steps=100000", "--set", "eval.every=10"]  # stopped long before its end
SHORT = [*TINY, "--set", "train.steps=40", "--set", "eval.every=10"]


def start(argv: list[str], cwd: Path, threads: int = 1) -> subprocess.Popen:
    """``toyformer ARGV`` in a child, in its own process group (as a terminal runs it)."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TOYFORMER_RESULTS": str(cwd / "store.sqlite"), "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, "-m", "toyformer", *argv], cwd=cwd, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, proc: subprocess.Popen, timeout: float = 600) -> None:
    """Poll ``condition()`` until it holds; fail if the child ends first or it takes too long."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the child ended ({proc.returncode}) before it could be interrupted: {err[-2000:]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("the child never reached the point to interrupt")
        time.sleep(0.2)


def interrupt(proc: subprocess.Popen, sig=signal.SIGINT, group: bool = True) -> tuple[int, str, str]:
    """Send ``sig`` (to the whole group, as a terminal does, or to the process alone) and wait."""
    (os.killpg if group else os.kill)(proc.pid, sig)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def no_process_left(proc: subprocess.Popen, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while True:
        left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
        if not left:
            return
        assert time.monotonic() < deadline, f"processes left in the group: {left}"
        time.sleep(0.2)


def one_line(code: int, err: str, sig=signal.SIGINT) -> str:
    """The contract of a stop: exit 128 + signal, one line on stderr (besides progress lines
    starting with the command's own name), no traceback."""
    assert code == 128 + sig, f"exit {code}: {err}"
    assert "Traceback" not in err, err
    lines = [x for x in err.strip().splitlines() if x.startswith("toyformer: ")]
    assert len(lines) == 1 and lines[0].startswith("toyformer: interrupted"), err
    return lines[0]


def go_on(line: str) -> list[str]:
    return shlex.split(line.split("go on with: ", 1)[1])[1:]


def rows(store: Path) -> list[tuple[str, int]]:
    return sorted((r["run_dir"], r["replica"]) for r in ResultsStore(store).query()) if store.is_file() else []


@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_stopped_run_says_where_and_how_to_go_on(sig, tmp_path, capsys):
    out = tmp_path / "run"
    proc = start(["train", "reverse", *LONG, "--out", str(out), "--store", str(tmp_path / "s.sqlite"), "--quiet"],
                 tmp_path)
    wait_for(lambda: (out / "checkpoint.safetensors").is_file(), proc)
    code, _, err = interrupt(proc, sig)
    line = one_line(code, err, sig)
    match = re.fullmatch(r"toyformer: interrupted at step (\d+); the checkpoint of step (\d+) is in (\S+); "
                         r"go on with: toyformer train --resume --out (\S+) --store (\S+)", line)
    assert match, line
    at, kept = int(match.group(1)), int(match.group(2))
    assert kept % 10 == 0 and kept <= at and match.group(3) == match.group(4) == str(out)
    from toyformer.run.checkpoint import saved_step

    assert saved_step(out / "checkpoint.safetensors") == kept
    no_process_left(proc)
    check_whole(tmp_path)
    assert rows(tmp_path / "s.sqlite") == []  # nothing finished: nothing recorded


@pytest.mark.slow
def test_resuming_after_ctrl_c_finishes_the_run_as_if_never_stopped(tmp_path, capsys):
    """The command the line names ends where an uninterrupted run ends (metrics step by step)."""
    out, clean = tmp_path / "run", tmp_path / "clean"
    argv = ["train", "reverse", *SHORT, "--set", "train.steps=400", "--out", str(out), "--store",
            str(tmp_path / "store.sqlite"), "--quiet", "--no-live-plot"]
    proc = start(argv, tmp_path)
    wait_for(lambda: (out / "checkpoint.safetensors").is_file(), proc)
    line = one_line(*interrupt(proc)[::2])
    assert main(go_on(line)) == 0
    assert main(["train", "reverse", *SHORT, "--set", "train.steps=400", "--out", str(clean), "--store",
                 str(tmp_path / "store.sqlite"), "--quiet", "--no-live-plot"]) == 0
    strip = lambda d: [{k: v for k, v in json.loads(x).items() if k != "wall_s"}  # noqa: E731
                       for x in (d / "metrics.jsonl").read_text().splitlines()]
    assert strip(out) == strip(clean)
    check_finished(tmp_path, tmp_path / "store.sqlite", [out, clean])


@pytest.mark.slow
def test_a_stopped_replica_run_goes_on(tmp_path):
    out = tmp_path / "rep"
    proc = start(["train", "reverse", *SHORT, "--set", "train.steps=300", "--replicas", "3", "--out", str(out),
                  "--store", str(tmp_path / "s.sqlite"), "--quiet"], tmp_path)
    wait_for(lambda: (out / "checkpoint.safetensors").is_file(), proc)
    line = one_line(*interrupt(proc)[::2])
    assert re.fullmatch(rf"toyformer: interrupted at step \d+; the checkpoint of step \d+ is in {out}; go on with: "
                        rf"toyformer train --resume --out {out} --store \S+", line), line
    no_process_left(proc)
    check_whole(tmp_path)
    assert main(go_on(line)) == 0
    check_finished(tmp_path, tmp_path / "s.sqlite", [out / "replicas" / str(i) for i in range(3)])
    assert len(rows(tmp_path / "s.sqlite")) == 3


DOUBLE = textwrap.dedent("""
    import signal, sys
    from toyformer import interrupts
    with interrupts.installed():
        with interrupts.critical(), interrupts.temporary(sys.argv[1]):
            open(sys.argv[1], "w").write("half")
            signal.raise_signal(signal.SIGINT)   # inside a write: it waits for the write to end
            print("deferred", flush=True)
            signal.raise_signal(signal.SIGINT)   # a second Ctrl-C: out at once, the temporary file removed
            print("not reached", flush=True)
""")


def test_a_second_ctrl_c_exits_at_once_and_removes_the_temporary_file(tmp_path):
    tmp = tmp_path / ".x.json.abcdefgh.tmp"
    done = subprocess.run([sys.executable, "-c", DOUBLE, str(tmp)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": SRC})
    assert done.returncode == 130 and done.stdout == "deferred\n" and not tmp.exists(), (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr


def test_a_signal_inside_a_write_is_raised_after_it(tmp_path):
    """In process: the write under way completes (the new version in place, no temporary file),
    then ``Interrupted`` is raised."""
    from toyformer import interrupts
    from toyformer.files import write_text

    target = tmp_path / "a.txt"
    with interrupts.installed():
        with pytest.raises(interrupts.Interrupted) as info:
            write_text(target, "old")

            def write(tmp):
                Path(tmp).write_text("new")
                signal.raise_signal(signal.SIGTERM)

            from toyformer.files import atomic_write

            atomic_write(target, write)
    assert info.value.code == 143 and target.read_text() == "new" and not list(tmp_path.glob(".*.tmp"))


SPEC = tiny_spec("stopped", steps=40, every=10, lengths=(3, 4, 5, 6))


def sweep_argv(tmp_path: Path, workers: int, steps: int) -> list[str]:
    spec = {**SPEC, "base": {**SPEC["base"], "train": {"steps": steps, "warmup_steps": 1}}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    return ["sweep", "s.yaml", "--out", "sw", "--store", "s.sqlite", "--workers", str(workers), "--threads", "1",
            "--quiet"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stopped_sweep_stops_its_workers(sig, tmp_path):
    """Two worker processes: the signal (to the whole group, or to the sweep alone) stops the
    points under way at a safe point, starts no other, and no worker outlives the sweep."""
    argv = sweep_argv(tmp_path, 2, 100000)
    proc = start(argv, tmp_path)
    runs = tmp_path / "sw" / "runs"
    wait_for(lambda: len(list(runs.glob("*/checkpoint.safetensors"))) >= 2, proc)
    line = one_line(*interrupt(proc, sig)[::2], sig)
    assert re.fullmatch(r"toyformer: interrupted; 0 of 4 points finished in sw; go on with: toyformer sweep s\.yaml "
                        r"--out sw --store s\.sqlite --workers 2 --threads 1 --quiet", line), line
    assert go_on(line) == argv
    no_process_left(proc)
    check_whole(tmp_path)
    assert rows(tmp_path / "s.sqlite") == []
    assert len(list(runs.glob("*/config.json"))) <= 3  # the points not started stayed so (2 workers, 1 queued)


@pytest.mark.slow
def test_a_sweep_stopped_by_ctrl_c_is_finished_by_running_it_again(tmp_path, monkeypatch):
    argv = sweep_argv(tmp_path, 2, 60)
    proc = start(argv, tmp_path)
    runs = tmp_path / "sw" / "runs"
    wait_for(lambda: len(list(runs.glob("*/summary.json"))) >= 1
             and len(list(runs.glob("*/checkpoint.safetensors"))) >= 2, proc)
    line = one_line(*interrupt(proc)[::2])
    no_process_left(proc)
    check_whole(tmp_path)
    finished = sorted(str(p.parent.resolve()) for p in runs.glob("*/summary.json"))
    # the store claims no unfinished point; a point whose worker finished as the stop came may wait
    # for the re-run to be recorded (the store's documented contract), which the re-run below checks
    assert set(r for r, _ in rows(tmp_path / "s.sqlite")) <= set(finished)
    monkeypatch.chdir(tmp_path)
    assert main(go_on(line)) == 0
    check_finished(tmp_path, tmp_path / "s.sqlite", sorted(runs.iterdir()))
    assert len(rows(tmp_path / "s.sqlite")) == 4


@pytest.mark.slow
def test_a_dask_sweep_stops_its_jobs_at_an_evaluation(tmp_path):
    """On a Dask cluster the jobs under way read the sweep's stop event at each evaluation and
    stop there: no job keeps running on the cluster, every point directory is free to go on."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        (tmp_path / "s.yaml").write_text(yaml.safe_dump({**SPEC, "base": {
            **SPEC["base"], "train": {"steps": 100000, "warmup_steps": 1}}}))
        proc = start(["sweep", "s.yaml", "--out", "sw", "--store", "s.sqlite", "--cluster", cluster.scheduler_address,
                      "--threads", "1", "--quiet"], tmp_path)
        runs = tmp_path / "sw" / "runs"
        wait_for(lambda: len(list(runs.glob("*/checkpoint.safetensors"))) >= 2, proc)
        line = one_line(*interrupt(proc)[::2])
        assert "go on with: toyformer sweep s.yaml" in line
        with distributed.Client(cluster.scheduler_address) as client:
            deadline = time.monotonic() + 120
            while any(client.processing().values()):
                assert time.monotonic() < deadline, f"jobs still running on the cluster: {client.processing()}"
                time.sleep(0.5)
    from toyformer.run import lock

    for point in runs.iterdir():  # no job holds a point any more
        with lock.hold(point):
            pass
    check_whole(tmp_path)


TUNE = ["tune", "reverse", *TINY, "--set", "train.steps=100000", "--set", "eval.every=10", "--space", "space.yaml",
        "--budget-s", "600", "--trials", "2", "--trial-s", "8", "--out", "tn", "--store", "s.sqlite", "--quiet"]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_stopped_tune_continues_its_trials(workers, tmp_path, monkeypatch):
    """The trials under way stop (their workers with them); the tune run again continues them in
    their own directories and finishes the search."""
    slow = {"space": {"train.lr": {"log": [1e-5, 3e-5]}}}  # no trial solves (so ends) before the stop: 100,000 steps
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(slow))
    argv = [*TUNE, "--workers", str(workers), "--threads", "1"]
    proc = start(argv, tmp_path)
    trials = tmp_path / "tn" / "trials"
    wait_for(lambda: len(list(trials.glob("*/checkpoint.safetensors"))) >= workers, proc)
    line = one_line(*interrupt(proc)[::2])
    assert re.fullmatch(r"toyformer: interrupted( at step \d+)?; 0 trial\(s\) finished in tn \(the study is "
                        r"tn/study\.sqlite\); go on with: toyformer tune .*", line), line
    no_process_left(proc)
    check_whole(tmp_path)
    steps = lambda d: [json.loads(x)["step"] for x in (d / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    stopped = {p.parent: steps(p.parent)[-1] for p in trials.glob("*/checkpoint.safetensors")}
    monkeypatch.chdir(tmp_path)
    assert main(go_on(line)) == 0
    result = json.loads((tmp_path / "tn" / "tune.json").read_text())
    assert result["trials_finished"] == 2
    for d, last in stopped.items():  # each continued where it stopped (to its end, or until pruned), not begun anew
        assert steps(d)[-1] > last and steps(d) == sorted(set(steps(d))), (d, last, steps(d))
    check_finished(tmp_path, tmp_path / "s.sqlite", [])


@pytest.mark.slow
@pytest.mark.parametrize("argv,ready,says", [
    (["recipe", "r1", "--quick", "--out", "rc"], "rc/runs", r"interrupted; \d+ run\(s\) finished in rc/runs; "
                                                             r"go on with: toyformer recipe r1 --quick --out rc"),
    (["explain", "run", "--over-training", "-n", "100000"], None,  # every kept checkpoint: long enough to stop
     r"interrupted; go on with: toyformer explain run --over-training -n 100000"),
    (["bench", "peak", "--out", "peak.json"], None, r"interrupted; go on with: toyformer bench peak --out peak\.json"),
], ids=["recipe", "explain", "bench"])
def test_every_long_command_stops_in_one_line(argv, ready, says, tmp_path):
    assert main(["train", "reverse", *SHORT, "--set", "train.keep_checkpoints=log", "--out", str(tmp_path / "run"),
                 "--no-store", "--quiet", "--no-live-plot"]) == 0
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").iterdir()}
    proc = start(argv, tmp_path)
    if ready:
        wait_for(lambda: (tmp_path / ready).is_dir(), proc)
    else:
        wait_for(lambda: _busy(proc), proc)
    line = one_line(*interrupt(proc)[::2])
    assert re.fullmatch(f"toyformer: {says}", line), line
    no_process_left(proc)
    check_whole(tmp_path)
    assert {p: p.stat().st_mtime_ns for p in before} == before  # the run explained was not touched


def _busy(proc: subprocess.Popen) -> bool:
    """The child has imported torch and is computing (some CPU seconds spent)."""
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") > 5
