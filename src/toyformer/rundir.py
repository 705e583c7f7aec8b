"""The run directory: atomic files, weights in safetensors, a resumable checkpoint.

::

    RUN_DIR/
      config.json         the complete RunConfig
      metrics.jsonl       one line per evaluation
      summary.json        final numbers (written last: its presence means the run finished)
      model.safetensors   final weights
      checkpoint.safetensors  weights + optimiser + RNG states, training state in its metadata

Every file is written to a temporary name, flushed and renamed, so a run killed at any moment
leaves either the old or the new version, never half a file. Nothing here unpickles code.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, safe_open, save_file

from toyformer.errors import ConfigError


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be read
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def save_weights(path: Path, model: torch.nn.Module, metadata: dict | None = None) -> None:
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))


def load_weights(path: Path, model: torch.nn.Module, device) -> None:
    model.load_state_dict(load_file(str(path), device=str(device)))


def save_checkpoint(path: Path, model, optimizer, rng: dict[str, torch.Tensor], state: dict) -> None:
    """Weights, AdamW moments and RNG states as tensors; ``state`` (JSON) in the metadata."""
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for idx, slots in opt["state"].items():
        for name, value in slots.items():
            tensors[f"optim.{idx}.{name}"] = value.detach().contiguous().cpu().reshape(value.shape)
    tensors.update({f"rng.{k}": v.contiguous() for k, v in rng.items()})
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"state": json.dumps(state)}))


def load_checkpoint(path: Path, model, optimizer, device) -> tuple[dict[str, torch.Tensor], dict]:
    """Restore model and optimiser in place; return the RNG states and the training state."""
    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        state = json.loads(f.metadata()["state"])
    model.load_state_dict({k[6:]: v.to(device) for k, v in tensors.items() if k.startswith("model.")})
    opt = optimizer.state_dict()
    slots: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            slots.setdefault(int(idx), {})[name] = value if name == "step" else value.to(device)
    opt["state"] = slots
    optimizer.load_state_dict(opt)
    rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}
    return rng, state


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
