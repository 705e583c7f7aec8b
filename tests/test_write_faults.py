"""The n-th write or fsync fails, for every n of a short run: a Python-level shim (``fault_harness.Shim``)
that raises what the library doing the write raises (safetensors' ``SafetensorError``, sqlite3's
``OperationalError``, Optuna's ``StorageInternalError``, ``OSError`` from files and matplotlib),
so it runs on every machine (the real full disks of ``test_full_disk.py`` need a tmpfs).

Each time: one line naming the file meant and the reason, exit 2, nothing half-written, the last
checkpoint intact, the store consistent; then the command the line names finishes the work, and
every run ends with exactly the metrics of a run that never failed. The fast suite fails one write
of each library; the slow one every n of a run, of replicas, of a sweep and of a tune.
"""

from __future__ import annotations

import errno
import json
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from fault_harness import Shim, check_failed, check_finished, check_whole, tiny, tiny_spec
from toyformer import faults
from toyformer.cli import main

TINY = [*tiny(), "--quiet", "--no-live-plot"]
SPEC = tiny_spec("shim", plot=[{"x": "task.length", "y": "test_token_acc"}])
COMMANDS = {
    "train": ["train", "reverse", *TINY, "--out", "{d}/run", "--store", "{d}/store.sqlite"],
    "train --replicas": ["train", "reverse", *TINY, "--replicas", "2", "--out", "{d}/rep", "--store",
                         "{d}/store.sqlite"],
    "sweep": ["sweep", "{d}/spec.yaml", "--out", "{d}/sw", "--store", "{d}/store.sqlite", "--quiet"],
    "tune": ["tune", "reverse", *TINY[:-2], "--space", "{d}/space.yaml", "--budget-s", "300", "--trials", "2",
             "--trial-s", "60", "--out", "{d}/tn", "--store", "{d}/store.sqlite", "--quiet"],
}


def prepare(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    (d / "space.yaml").write_text(yaml.safe_dump({"space": {"train.lr": {"log": [1e-3, 3e-2]}}}))


def argv_of(name: str, d: Path) -> list[str]:
    return [a.format(d=d) for a in COMMANDS[name]]


_counted: dict[str, tuple[list, Path]] = {}


def counted(name: str, tmp_path_factory, monkeypatch) -> tuple[list[tuple[str, str]], Path]:
    """The writes and fsyncs of the command, counted once (the same in every run: seeded), and
    the folder of that run, which never failed."""
    if name not in _counted:
        d = tmp_path_factory.mktemp("count")
        prepare(d)
        with monkeypatch.context() as m:
            shim = Shim(d).install(m)
            assert main(argv_of(name, d)) == 0
        _counted[name] = ([(what, str(Path(path).relative_to(d))) for what, path in shim.events], d)
    return _counted[name]


def events(name: str, tmp_path_factory, monkeypatch) -> list[tuple[str, str]]:
    return counted(name, tmp_path_factory, monkeypatch)[0]


def meant(path: str) -> str:
    """The file a write was meant for: its temporary file's name without the dot and suffix."""
    p = Path(path)
    if p.name.startswith(".") and p.name.endswith(".tmp"):
        return str(p.parent / p.name[1:].rsplit(".", 2)[0])
    return str(p)


def fail_at(name: str, n: int, d: Path, monkeypatch, capsys) -> None:
    """Fail the n-th event, check the contract, go on with what the line says, check it finished."""
    prepare(d)
    argv = argv_of(name, d)
    capsys.readouterr()
    with monkeypatch.context() as m:
        shim = Shim(d, n).install(m)
        code = main(argv)
    err = capsys.readouterr().err
    assert shim.failed is not None, f"event {n} did not happen"
    named = check_failed(d, code, err, ["No space left on device"])
    assert Path(named).resolve() == Path(meant(shim.failed[1])).resolve(), (named, shim.failed)
    go_on = shlex.split(err.split("go on with: ", 1)[1])[1:] if "go on with: " in err else argv
    assert main(go_on) == 0, capsys.readouterr().err
    runs = [p.parent for p in d.rglob("config.json") if "replicas" not in p.parts]
    check_finished(d, d / "store.sqlite", runs)


def metrics(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "wall_s"}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def all_metrics(d: Path) -> dict[str, list[dict]]:
    """The metrics of every run under ``d`` (each replica's, each point's), by path."""
    return {str(p.parent.relative_to(d)): metrics(p.parent) for p in sorted(d.rglob("metrics.jsonl"))}


@pytest.mark.parametrize("what", ["safetensors", "fsync", "sqlite3"])
def test_one_failed_write_of_each_library(what, tmp_path, tmp_path_factory, monkeypatch, capsys):
    evs = events("train", tmp_path_factory, monkeypatch)
    n = next(i for i, (w, _) in enumerate(evs, 1) if w == what)
    fail_at("train", n, tmp_path / "d", monkeypatch, capsys)


@pytest.mark.slow
def test_every_write_of_a_run_fails_in_turn(tmp_path, tmp_path_factory, monkeypatch, capsys):
    """For every n: fail the n-th write or fsync of a run, resume, and end where a run that never
    failed ends (its metrics, step by step)."""
    evs = events("train", tmp_path_factory, monkeypatch)
    clean = tmp_path / "clean"
    assert main(["train", "reverse", *TINY, "--out", str(clean), "--no-store"]) == 0
    assert len(evs) >= 10, evs
    for n in range(1, len(evs) + 1):
        d = tmp_path / f"n{n}"
        fail_at("train", n, d, monkeypatch, capsys)
        assert metrics(d / "run") == metrics(clean), f"event {n} ({evs[n - 1]}): the resumed run differs"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["train --replicas", "sweep", "tune"])
def test_every_write_of_replicas_a_sweep_and_a_tune_fails_in_turn(name, tmp_path, tmp_path_factory, monkeypatch,
                                                                   capsys):
    """For every n: fail the n-th write or fsync of replicas, a sweep, a tune; go on as the line
    says; every run ends as in the run that never failed (each replica's and each point's metrics,
    step by step; a tune's trials as ``tune_went_on`` says)."""
    evs, clean = counted(name, tmp_path_factory, monkeypatch)
    assert len(evs) >= 10, evs
    for n in range(1, len(evs) + 1):
        d = tmp_path / f"n{n}"
        fail_at(name, n, d, monkeypatch, capsys)
        if name == "tune":
            tune_went_on(d / "tn", clean / "tn", f"event {n} ({evs[n - 1]})")
        else:
            assert all_metrics(d) == all_metrics(clean), f"event {n} ({evs[n - 1]}): a run differs after going on"
        shutil.rmtree(d)


def tune_went_on(out: Path, clean: Path, what: str) -> None:
    """A tune run again after a failed write has its trials, each setting tried once (the trial cut
    short continues with its values; the sampler draws new ones, not those of the first run
    again), and re-measures the defaults as the tune that never failed did."""
    trials = [json.loads((p.parent / "config.json").read_text())["train"]["lr"]
              for p in sorted((out / "trials").glob("*/summary.json"))]
    assert len(trials) == json.loads((out / "tune.json").read_text())["trials_finished"] == 2, (what, trials)
    assert len(set(trials)) == len(trials), f"{what}: one setting tried twice: {trials}"
    assert all_metrics(out / "defaults") == all_metrics(clean / "defaults"), f"{what}: the defaults differ"


def test_the_api_raises_the_os_error_naming_the_file(tmp_path, monkeypatch):
    """Beneath the CLI, the library raises ``OSError(ENOSPC, ..., path meant)`` whatever failed."""
    from conftest import small_config
    from toyformer import train

    with monkeypatch.context() as m:
        shim = Shim(tmp_path, 2).install(m)  # config.json's write, then its fsync
        with pytest.raises(OSError) as info:
            train(small_config(train={"steps": 4}, eval={"every": 2}), out_dir=tmp_path / "run")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "run" / "config.json")
    assert shim.failed[0] == "fsync"
    check_whole(tmp_path)


REAL = """
import json, resource, signal, sys
from pathlib import Path
import torch, yaml
from matplotlib.figure import Figure
from PIL import Image
from safetensors.torch import save_file
from toyformer import faults

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
folder = Path(sys.argv[1])

def yaml_to(path):
    with open(path, "w") as f:
        yaml.safe_dump({"a": list(range(10**4))}, f)

WRITES = {
    "safetensors": lambda p: save_file({"x": torch.ones(10**4)}, p),
    "torch": lambda p: torch.save(torch.ones(10**4), p),
    "matplotlib": lambda p: Figure(figsize=(20, 20)).savefig(p, format="png"),
    "Pillow": lambda p: Image.effect_noise((256, 256), 64).save(p, format="PNG"),
    "PyYAML": yaml_to,
    "Python": lambda p: Path(p).write_bytes(b"x" * 10**5),
}
out = {}
for name, write in WRITES.items():
    try:
        write(str(folder / name))
        out[name] = None
    except Exception as exc:
        mapped = faults.io_error(exc, "meant.file")
        out[name] = [type(exc).__name__, str(exc)[:200], mapped and mapped.errno, mapped and mapped.filename]
print(json.dumps(out))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "statvfs"), reason="RLIMIT_FSIZE is POSIX's")
def test_each_library_s_own_error_maps_to_one_os_error(tmp_path):
    """Each library beneath the I/O failing for real (a file-size limit, RLIMIT_FSIZE, that the
    kernel enforces on every write: EFBIG) raises its own type, and ``faults.io_error`` makes
    every one the OSError naming the file meant."""
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", REAL, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    found = json.loads(child.stdout.strip().splitlines()[-1])
    for library, result in found.items():
        assert result is not None, f"{library} wrote past the limit without an error"
        kind, text, number, filename = result
        assert number == errno.EFBIG and filename == "meant.file", f"{library}: {kind}: {text} -> {number}"
    assert found["safetensors"][0] == "SafetensorError"  # each its own type, all mapped


def test_sqlite_and_optuna_full_databases_map_to_one_os_error(tmp_path):
    """SQLite refusing to grow (``max_page_count``: a real SQLITE_FULL), directly and through
    SQLAlchemy and Optuna's storage, is ``OSError(ENOSPC)`` naming the database."""
    import sqlite3

    con = sqlite3.connect(tmp_path / "s.sqlite")
    con.execute("CREATE TABLE t (x)")
    con.execute(f"PRAGMA max_page_count = {con.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(sqlite3.OperationalError) as info:
        con.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * 100)
    assert faults.io_error(info.value, tmp_path / "s.sqlite").errno == errno.ENOSPC

    optuna = pytest.importorskip("optuna")
    import sqlalchemy

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.sqlite'}")
    study = optuna.create_study(storage=storage, study_name="s")

    @sqlalchemy.event.listens_for(storage.engine, "connect")
    def full(dbapi_con, record):  # every new connection: no page more than there are
        dbapi_con.execute(f"PRAGMA max_page_count = {dbapi_con.execute('PRAGMA page_count').fetchone()[0]}")

    storage.engine.dispose()
    with pytest.raises(Exception) as info:
        for _ in range(200):
            study.enqueue_trial({"x": 1.0}, user_attrs={"pad": "x" * 2000})
    mapped = faults.io_error(info.value, tmp_path / "study.sqlite")
    assert mapped is not None and mapped.errno == errno.ENOSPC, repr(info.value)
