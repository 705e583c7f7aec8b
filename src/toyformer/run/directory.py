"""The run directory: which files a run writes, and checks that a directory is one.

::

    RUN_DIR/
      config.json         the complete RunConfig
      metrics.jsonl       one line per evaluation
      summary.json        final numbers (written last: its presence means the run finished)
      model.safetensors   final weights
      checkpoint.safetensors  weights + optimiser + RNG states, training state in its metadata

Every file is written atomically (``toyformer.files``).
"""

from __future__ import annotations

from pathlib import Path

from toyformer.errors import ConfigError
from toyformer.files import read_json


def prepare_out_dir(out: Path, resume: bool) -> None:
    """Create a fresh run directory, or check that a resumable one is there."""
    out = Path(out)
    if resume:
        if not (out / "config.json").is_file():
            raise ConfigError(f"--resume: {str(out)!r} is not a run directory (no config.json)")
        return
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"output directory {str(out)!r} is not empty; pass --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)


def read_config(run_dir: Path) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.is_file() and (Path(run_dir) / "replicas.json").is_file():
        raise ConfigError(f"{str(run_dir)!r} is a replica run; pass one of its replicas, e.g. {Path(run_dir) / 'replicas' / '0'}")
    if not path.is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory (no config.json)")
    return read_json(path)
