"""The fault harness: real faults under the real commands, and the contract they must keep.

Two ways to fail a write, as trusted systems test theirs (SQLite's fault-injecting VFS, disks
filled under PostgreSQL and etcd):

- ``tmpfs(folder, size)``: a real filesystem of ``size`` bytes mounted on ``folder``, so that a
  command fills it and every library beneath raises its own error on a real ``ENOSPC``
  (``read_only(folder)`` remounts it read-only: ``EROFS``). Needs root, or passwordless sudo;
  elsewhere the test skips, saying so. ``Recorder`` runs a command once on a roomy mount and
  notes, for each write, the space used before it and at its peak, so that ``size_for`` can
  choose the size at which the disk fills on a chosen kind of write.
- ``Shim(n)``: at the Python level, the n-th write or fsync under a folder fails, raised as the
  library doing it raises it (safetensors' ``SafetensorError``, sqlite3's ``OperationalError``,
  Optuna's ``StorageInternalError`` caused by SQLAlchemy's, ``OSError`` from Python's files and
  matplotlib). ``Shim(0)`` only counts, so that a test can fail every n of a short run.

``check_failed`` and ``check_finished`` are the contract: after the fault, one line naming the
path meant and the reason, a non-zero exit, nothing half-written, the last checkpoint intact,
the store consistent; after the command that goes on, every run finished and recorded once.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import sqlite3
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PAGE = 4096
KINDS = {  # a written file -> the kind of write it is (the first pattern that matches)
    "config": re.compile(r"(^|/)(config\.json|replicas\.json|base\.yaml|task\.py|task_file\.json)$"),
    "metrics log": re.compile(r"metrics\.jsonl$"),
    "checkpoint": re.compile(r"checkpoint\.safetensors$|checkpoints/step_\d+\.safetensors$"),
    "weights": re.compile(r"model\.safetensors$"),
    "figures": re.compile(r"\.(png|svg|pdf)$"),
    "report": re.compile(r"(\.html|\.md|explain\.json|lengths\.json)$"),
    "results store": re.compile(r"(store|results)\.sqlite$"),
    "tune study": re.compile(r"study\.sqlite$"),
    "summary": re.compile(r"\.(json|yaml)$"),  # summary.json, sweep.json, tune.json, best.yaml, a benchmark's
}


def kind_of(path: str) -> str:
    return next((k for k, pattern in KINDS.items() if pattern.search(str(path))), "other")


def tiny(steps: int | None = 6, every: int | None = 3, batch: bool = True) -> list[str]:
    """The ``--set`` flags of a tiny reverse run (one layer, d_model 16, length 4, 16 examples to
    validate and test) of ``steps`` steps evaluated every ``every`` (None: not set here)."""
    flags = ["model.d_model=16", "model.n_heads=2", "model.n_layers=1", "model.d_ff=32", "length=4"]
    flags += [f"steps={steps}"] * (steps is not None) + [f"eval.every={every}"] * (every is not None)
    flags += ["eval.val_size=16", "eval.test_size=16"] + ["data.batch_size=16"] * batch
    return [arg for flag in flags for arg in ("--set", flag)]


def tiny_spec(name: str, steps: int = 6, every: int = 3, lengths=(3, 4), **more) -> dict:
    """A sweep file of the tiny reverse run of ``tiny`` over ``task.length`` in ``lengths``."""
    return {"name": name, "base": {"task": {"name": "reverse", "length": 4},
                                   "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32},
                                   "data": {"batch_size": 16}, "train": {"steps": steps, "warmup_steps": 1},
                                   "eval": {"every": every, "val_size": 16, "test_size": 16, "target": None}},
            "grid": {"task.length": list(lengths)}, **more}


# --- real filesystems --------------------------------------------------------------------------

def _sudo() -> list[str]:
    return [] if os.geteuid() == 0 else ["sudo", "-n"]


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*_sudo(), "mount", *args], capture_output=True, text=True, timeout=60)


def can_mount(folder: Path) -> str | None:
    """None when this process can mount a tmpfs on ``folder``, else why not."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 and not shutil.which("sudo"):
        return "mounting a tmpfs needs root or sudo, and this user has neither"
    done = _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder))
    if done.returncode:
        return f"mount -t tmpfs is not permitted here ({done.stderr.strip() or done.returncode})"
    _umount(folder)
    return None


def _umount(folder: Path) -> None:
    if subprocess.run([*_sudo(), "umount", str(folder)], capture_output=True, timeout=60).returncode:
        subprocess.run([*_sudo(), "umount", "-l", str(folder)], capture_output=True, timeout=60)


@contextmanager
def tmpfs(folder: Path, size: int):
    """A tmpfs of ``size`` bytes (whole pages) on ``folder`` for the ``with`` block; always unmounted."""
    why = can_mount(folder)
    if why:
        pytest.skip(f"the real full-disk tests need a tmpfs: {why}")
    done = _mount("-t", "tmpfs", "-o", f"size={max(size, PAGE)},mode=0755", "tmpfs", str(folder))
    assert done.returncode == 0, done.stderr
    try:
        yield folder
    finally:
        _umount(folder)


def resize(folder: Path, size: int) -> None:
    """Give the mounted tmpfs ``size`` bytes (room to go on after it filled)."""
    done = _mount("-o", f"remount,size={size}", str(folder))
    assert done.returncode == 0, done.stderr


def read_only(folder: Path, on: bool = True) -> None:
    """Remount the tmpfs on ``folder`` read-only (``on``) or writable again."""
    done = _mount("-o", f"remount,{'ro' if on else 'rw'}", str(folder))
    assert done.returncode == 0, done.stderr


def used(folder: Path) -> int:
    """Bytes in use on the filesystem of ``folder``."""
    st = os.statvfs(folder)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


# --- watching the writes of a command ------------------------------------------------------

@dataclass
class Write:
    path: str
    kind: str
    before: int  # bytes used before it
    peak: int  # bytes used with it written (its old version still there)


@dataclass
class Recorder:
    """Notes every atomic write, results-store connection and study opening under ``root``, with
    the space used before and at its peak; ``before_write(kind, path)``, if given, is called
    just before each (to fill the disk, or make it read-only, at a chosen write)."""

    root: Path
    before_write: object = None
    writes: list[Write] = field(default_factory=list)

    def _before(self, kind: str, path) -> int:
        if self.before_write is not None:
            self.before_write(kind, str(path))
        return used(self.root)

    @contextmanager
    def watching(self, monkeypatch):
        from toyformer import files
        from toyformer.experiments.store.store import ResultsStore

        real_atomic, real_connect, real_insert = files.atomic_write, ResultsStore._connect, ResultsStore._insert
        recorder = self

        def atomic_write(path, write):
            before = recorder._before(kind_of(path), path)

            def measured(tmp):
                write(tmp)
                recorder.writes.append(Write(str(path), kind_of(path), before, used(recorder.root)))

            return real_atomic(path, measured)

        def connect(self, *args, **kwargs):  # SQLite's WAL and shared memory exist while a connection is open
            before = used(recorder.root)
            con = real_connect(self, *args, **kwargs)
            return _Measured(con, lambda: recorder.writes.append(
                Write(str(self.path), "results store", before, used(recorder.root))))

        def insert(self, row):  # a row written (not a check or a read): where the store's disk is filled
            recorder._before("results store", self.path)
            return real_insert(self, row)

        _patch_everywhere(monkeypatch, "atomic_write", real_atomic, atomic_write)
        monkeypatch.setattr(ResultsStore, "_connect", connect)
        monkeypatch.setattr(ResultsStore, "_insert", insert)
        try:
            from toyformer.experiments.tune import search
        except ImportError:
            search = None
        if search is not None:
            real_open = search.open_study

            def open_study(out, name, worker=0):
                before = recorder._before("tune study", Path(out) / "study.sqlite")
                study = real_open(out, name, worker)
                recorder.writes.append(Write(str(Path(out) / "study.sqlite"), "tune study", before,
                                             used(recorder.root)))
                return study

            _patch_everywhere(monkeypatch, "open_study", real_open, open_study)
        yield self

    def size_for(self, kind: str) -> int | None:
        """A filesystem size at which the first write of ``kind`` that can be reached fails: every
        write before it fits (at its peak), it does not; None when every write of that kind comes
        after a bigger one (then ``FillAt`` fills the disk just before it)."""
        highest = 0
        for w in self.writes:
            size = _pages(max(highest, w.before))
            if w.kind == kind and w.peak > size:
                return size
            highest = max(highest, w.peak)
        return None

    def kinds(self) -> list[str]:
        return list(dict.fromkeys(w.kind for w in self.writes))


class FillAt:
    """``before_write`` of a ``Recorder``: just before the first write of ``kind``, shrink the
    tmpfs on ``root`` to the space it uses, so that this write is the one that meets a full disk."""

    def __init__(self, root: Path, kind: str):
        self.root, self.kind, self.done = root, kind, False

    def __call__(self, kind: str, path: str) -> None:
        if not self.done and kind == self.kind:
            self.done = True
            if used(self.root) < PAGE:  # a tmpfs of size 0 has no limit: hold one page
                (self.root / ".ballast").write_bytes(b"\0" * PAGE)
            resize(self.root, used(self.root))


class _Measured:
    """A sqlite3 connection that reports the space used just before it closes."""

    def __init__(self, con, on_close):
        self._con, self._on_close = con, on_close

    def __getattr__(self, name):
        return getattr(self._con, name)

    def close(self):
        self._on_close()
        self._con.close()


def _pages(n: int) -> int:
    return -(-n // PAGE) * PAGE


def _patch_everywhere(monkeypatch, name: str, real, fake) -> None:
    """Replace function ``real`` under ``name`` in every toyformer module that holds it."""
    import sys

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("toyformer") and getattr(module, name, None) is real:
            monkeypatch.setattr(module, name, fake)


# --- the Python-level shim ---------------------------------------------------------------------

class Shim:
    """Fail the ``n``-th write or fsync under ``root`` (``n`` 0: fail none, count them), raised as
    the library that does it raises it. ``events`` lists what was counted: ``(kind, path)``."""

    def __init__(self, root: Path, n: int = 0):
        self.root, self.n = str(Path(root).resolve()), n
        self.events: list[tuple[str, str]] = []
        self.failed: tuple[str, str] | None = None

    def _here(self, path) -> bool:
        return str(Path(path).resolve()).startswith(self.root)

    def _event(self, what: str, path) -> bool:
        """Count one event; True when it is the one to fail."""
        self.events.append((what, str(path)))
        if len(self.events) == self.n:
            self.failed = (what, str(path))
            return True
        return False

    def install(self, monkeypatch) -> Shim:
        import pathlib

        import safetensors
        from matplotlib.figure import Figure

        from toyformer.experiments.store.store import ResultsStore
        from toyformer.run import checkpoint

        shim = self
        real_save, real_text, real_bytes = checkpoint.save_file, pathlib.Path.write_text, pathlib.Path.write_bytes
        real_fsync, real_copy = os.fsync, shutil.copyfile
        real_insert, real_savefig = ResultsStore._insert, Figure.savefig

        def save_file(tensors, filename, metadata=None):
            if shim._here(filename) and shim._event("safetensors", filename):
                raise safetensors.SafetensorError("Error while serializing: I/O error: No space left on device "
                                                  "(os error 28)")
            return real_save(tensors, filename, metadata=metadata)

        def write_text(self, *args, **kwargs):
            if shim._here(self) and shim._event("write", self):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
            return real_text(self, *args, **kwargs)

        def write_bytes(self, data):
            if shim._here(self) and shim._event("write", self):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
            return real_bytes(self, data)

        def fsync(fd):
            try:
                path = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                path = ""
            if path and shim._here(path) and shim._event("fsync", path):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_fsync(fd)

        def copyfile(src, dst, *args, **kwargs):
            if shim._here(dst) and shim._event("write", dst):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
            return real_copy(src, dst, *args, **kwargs)

        def savefig(self, fname, *args, **kwargs):
            if isinstance(fname, (str, os.PathLike)) and shim._here(fname) and shim._event("matplotlib", fname):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(fname))
            return real_savefig(self, fname, *args, **kwargs)

        def insert(self, row):
            if shim._here(self.path) and shim._event("sqlite3", self.path):
                exc = sqlite3.OperationalError("database or disk is full")
                exc.sqlite_errorcode, exc.sqlite_errorname = 13, "SQLITE_FULL"
                raise exc
            return real_insert(self, row)

        monkeypatch.setattr(checkpoint, "save_file", save_file)
        monkeypatch.setattr(pathlib.Path, "write_text", write_text)
        monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(shutil, "copyfile", copyfile)
        monkeypatch.setattr(Figure, "savefig", savefig)
        monkeypatch.setattr(ResultsStore, "_insert", insert)
        self._optuna(monkeypatch)
        return self

    def _optuna(self, monkeypatch) -> None:
        """Optuna's writes fail as its RDB storage fails: StorageInternalError from SQLAlchemy's
        OperationalError from sqlite3's."""
        try:
            import optuna
            from sqlalchemy.exc import OperationalError
        except ImportError:
            return
        shim = self
        storage = optuna.storages.RDBStorage
        for name in ("create_new_trial", "set_trial_state_values", "set_trial_param", "set_trial_user_attr",
                     "set_trial_intermediate_value"):
            real = getattr(storage, name)

            def failing(self, *args, _real=real, _name=name, **kwargs):
                path = self.url.removeprefix("sqlite:///")
                if shim._here(path) and shim._event("optuna", path):
                    orig = sqlite3.OperationalError("database or disk is full")
                    orig.sqlite_errorcode = 13
                    try:
                        raise OperationalError("INSERT ...", {}, orig)
                    except OperationalError as e:
                        raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from e
                return _real(self, *args, **kwargs)

            monkeypatch.setattr(storage, name, failing)


# --- the contract ------------------------------------------------------------------------------

REASONS = ("No space left on device", "Read-only file system")


def check_failed(root: Path, code: int, err: str, reasons=REASONS) -> str:
    """After a fault: one line naming a path under ``root`` and the reason, a non-zero exit, and
    everything under ``root`` whole (``check_whole``). Returns the path named."""
    lines = err.strip().splitlines()
    assert code != 0, f"exit 0 after a fault; stderr: {err}"
    assert len(lines) == 1 and lines[0].startswith("toyformer: error: "), err
    assert "Traceback" not in err, err
    assert any(r in lines[0] for r in reasons), lines[0]
    named = re.search(r"'([^']+)': ", lines[0])
    assert named and str(Path(named.group(1)).resolve()).startswith(str(root.resolve())), lines[0]
    check_whole(root)
    return named.group(1)


def check_whole(root: Path) -> None:
    """Nothing half-written under ``root``: no temporary file; every JSON, JSON lines, safetensors,
    PNG and SVG file complete; every checkpoint loadable; every SQLite file sound, and every row
    of a results store a finished run."""
    from safetensors.torch import load_file

    from toyformer.run.checkpoint import read_training

    temporaries = [p for p in root.rglob(".*") if p.name.endswith(".tmp")]
    assert not temporaries, f"temporary files left: {temporaries}"
    for p in root.rglob("*"):
        if not p.is_file() or p.name == ".lock":
            continue
        if p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".jsonl":
            for line in p.read_text().splitlines():
                json.loads(line)
        elif p.suffix == ".safetensors":
            load_file(str(p))
            if p.name == "checkpoint.safetensors":
                read_training(p)
        elif p.suffix == ".png":
            assert p.read_bytes().endswith(b"IEND\xaeB`\x82"), f"{p} is cut short"
        elif p.suffix == ".svg":
            assert p.read_text().rstrip().endswith("</svg>"), f"{p} is cut short"
        elif p.suffix == ".sqlite" and p.stat().st_size:
            con = _copy_of(p)
            try:
                assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", p
                if p.name != "study.sqlite" and "runs" in {r[0] for r in con.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table'")}:
                    for (run_dir,) in con.execute("SELECT run_dir FROM runs"):
                        assert (Path(run_dir) / "summary.json").is_file(), f"a row of an unfinished run: {run_dir}"
            finally:
                con.close()


def _copy_of(path: Path) -> sqlite3.Connection:
    """An in-memory copy (its WAL applied) of the SQLite file ``path``: on a full or read-only
    disk SQLite could not make its shared memory beside it."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="toyformer-check-") as folder:
        for suffix in ("", "-wal"):
            if Path(f"{path}{suffix}").is_file():
                shutil.copyfile(f"{path}{suffix}", Path(folder) / f"{path.name}{suffix}")
        copy, con = sqlite3.connect(Path(folder) / path.name), sqlite3.connect(":memory:")
        try:
            copy.backup(con)
        finally:
            copy.close()
    return con


def check_finished(root: Path, store: Path | None, run_dirs: list[Path]) -> None:
    """After going on: every run in ``run_dirs`` finished, everything whole, and the store holds
    one row per finished run under ``root`` (a sync adds none)."""
    from toyformer import ResultsStore

    check_whole(root)
    for d in run_dirs:
        assert (d / "summary.json").is_file(), f"{d} did not finish"
    if store is not None:
        st = ResultsStore(store)
        rows = st.query()
        keys = [(r["run_dir"], r["replica"]) for r in rows]
        assert len(keys) == len(set(keys)), "a run recorded twice"
        assert st.sync(root) == 0, "finished runs the store is missing"
