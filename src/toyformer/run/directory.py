"""The run directory: which files a run writes, and checks that a directory is one.

::

    RUN_DIR/
      config.json         the complete RunConfig
      metrics.jsonl       one line per evaluation
      summary.json        final numbers (written last: its presence means the run finished)
      model.safetensors   final weights
      checkpoint.safetensors  weights + optimiser + RNG states, training state in its metadata
      .lock               held by the process writing the run (``toyformer.run.lock``)

Every file is written atomically (``toyformer.files``). The messages here name no command-line
flag: they are reached from the API, ``toyformer train`` and sweeps alike, and each front end
words its own remedies.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from toyformer.errors import ConfigError
from toyformer.files import read_json
from toyformer.run import lock


def is_empty(out: Path) -> bool:
    """True when ``out`` is missing or holds nothing but a lock file."""
    out = Path(out)
    return not out.exists() or all(p.name == lock.LOCK for p in out.iterdir())


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
        yield


def read_config(run_dir: Path) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.is_file() and (Path(run_dir) / "replicas.json").is_file():
        raise ConfigError(f"{str(run_dir)!r} is a replica run; pass one of its replicas, e.g. {Path(run_dir) / 'replicas' / '0'}")
    if not path.is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory (no config.json)")
    return read_json(path)
