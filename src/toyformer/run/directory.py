"""The run directory: which files a run writes, and checks that a directory is one.

::

    RUN_DIR/
      config.json         the complete RunConfig
      metrics.jsonl       one line per evaluation
      summary.json        final numbers (written last: its presence means the run finished)
      model.safetensors   final weights
      checkpoint.safetensors  weights + optimiser + RNG states, training state in its metadata
      task.py, task_file.json the user's task file (for a task from --task-file) and its sha256
      .lock               held by the process writing the run (``toyformer.run.lock``)

Every file is written atomically (``toyformer.files``). The messages here name no command-line
flag: they are reached from the API, ``toyformer train`` and sweeps alike, and each front end
words its own remedies. A run of a task from the user's own file
keeps a copy of that file, so that it can be evaluated, plotted, reported, sampled and resumed
from its directory alone: reading the run's config (``read_config``) registers the copy when
the task is not registered; a copy or a given ``--task-file`` that differs from the file the
run was trained with is an error, never silently used.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

from toyformer.config import RunConfig
from toyformer.errors import ConfigError
from toyformer.files import atomic_write, is_temporary, read_json, read_jsonl, remove_orphan_temporaries, write_json
from toyformer.run import lock
from toyformer.tasks import file_sha256, list_tasks, load_task_file, task_source

TASK_COPY, TASK_META = "task.py", "task_file.json"


STARTED = (lock.LOCK, TASK_COPY, TASK_META)  # what a start cut short (a full disk) leaves before config.json


def is_empty(out: Path) -> bool:
    """True when ``out`` is missing or holds no run yet: nothing but its lock file and the copy of
    a task file written before ``config.json`` (a start cut short by a full disk or a kill)."""
    out = Path(out)
    return not out.exists() or all(p.name in STARTED or is_temporary(p) for p in out.iterdir())


def holds_run(out: Path) -> bool:
    """True when ``out`` holds a run, finished or not (a single run or a replica run)."""
    return (Path(out) / "config.json").is_file() or (Path(out) / "replicas.json").is_file()


def prepare_out_dir(out: Path, resume: bool) -> None:
    """Create a fresh run directory, or check that a resumable one is there."""
    out = Path(out)
    if resume:
        if not (out / "config.json").is_file():
            raise ConfigError(f"cannot resume {str(out)!r}: not a run directory (no config.json)")
        return
    if not is_empty(out):
        if holds_run(out):
            raise ConfigError(f"output directory {str(out)!r} already holds a run; continue it with resume=True "
                              "or choose another directory")
        raise ConfigError(f"output directory {str(out)!r} is not empty and holds no run; remove it or choose "
                          "another directory")
    out.mkdir(parents=True, exist_ok=True)


@contextmanager
def writing(out: Path, resume: bool):
    """Prepare ``out`` (fresh, or resumable with ``resume``) and hold its lock while the run is
    written; another process writing it raises ``lock.DirectoryLocked`` before anything is written."""
    out = Path(out)
    if resume:
        if not out.is_dir():
            raise ConfigError(f"cannot resume {str(out)!r}: no such directory")
    else:
        prepare_out_dir(out, resume=False)
    with lock.hold(out):
        if not resume:  # again under the lock: another process may have started a run here meanwhile
            prepare_out_dir(out, resume=False)
        remove_orphan_temporaries(out)  # the sole writer now: a killed writer's half-written files go
        yield


def save_task_file(run_dir: Path, task_name: str) -> None:
    """Copy the file task ``task_name`` was loaded from (if any) into ``run_dir``, with its sha256."""
    source = task_source(task_name)
    if source is None:
        return
    path, sha = source
    if file_sha256(path) != sha:
        raise ConfigError(f"task file {str(path)!r} changed since it was loaded; run the command again")
    atomic_write(Path(run_dir) / TASK_COPY, lambda tmp: shutil.copyfile(path, tmp))
    write_json(Path(run_dir) / TASK_META, {"task": task_name, "source": str(path), "sha256": sha})


def ensure_task(run_dir: Path) -> None:
    """Make the task of ``run_dir`` available: register the run's copy of its task file when the
    task is not registered; refuse a copy, or a registered file, that differs from the one the
    run was trained with."""
    run_dir = Path(run_dir)
    meta_path = run_dir / TASK_META
    if not meta_path.is_file():
        return
    meta = read_json(meta_path)
    copy = run_dir / TASK_COPY
    if not copy.is_file():
        raise ConfigError(f"{str(copy)!r} is missing: the run's task {meta['task']!r} came from that file")
    if file_sha256(copy) != meta["sha256"]:
        raise ConfigError(f"{str(copy)!r} was changed after the run was trained (its sha256 differs from "
                          f"{str(meta_path)!r}); restore it")
    if meta["task"] not in list_tasks():
        load_task_file(copy)
        return
    source = task_source(meta["task"])
    if source is None or source[1] != meta["sha256"]:
        where = f"task file {str(source[0])!r}" if source else "toyformer's built-in tasks"
        raise ConfigError(f"task {meta['task']!r} from {where} differs from the file the run {str(run_dir)!r} was "
                          f"trained with ({str(copy)!r}); leave out task_files= to use the run's copy")


def read_config(run_dir: Path) -> dict:
    """The run's ``config.json`` (its task made available, see ``ensure_task``)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file() and (Path(run_dir) / "replicas.json").is_file():
        raise ConfigError(f"{str(run_dir)!r} is a replica run; pass one of its replicas, e.g. "
                          f"{Path(run_dir) / 'replicas' / '0'}")
    if not path.is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory (no config.json)")
    ensure_task(run_dir)
    return read_json(path)


def run_config(run_dir: Path):
    """The run's ``RunConfig`` from ``config.json``; a config that no longer validates names the file."""
    try:
        return RunConfig.from_dict(read_config(run_dir))
    except ConfigError as exc:
        raise ConfigError(f"{str(Path(run_dir) / 'config.json')!r}: {exc}") from None


def read_metrics(run_dir: Path) -> list[dict]:
    """The run's ``metrics.jsonl`` (``[]`` before its first evaluation); a damaged last line is
    left out (``--resume`` rewrites the file from the checkpoint)."""
    path = Path(run_dir) / "metrics.jsonl"
    return read_jsonl(path) if path.is_file() else []
