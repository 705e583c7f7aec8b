"""Weights and checkpoints in safetensors: tensors only, with JSON metadata; nothing is unpickled.

``model.safetensors`` holds one model's final weights (and the run's config in its metadata).
``checkpoint.safetensors`` holds what resuming needs, for a single run and a replica run alike
(a single run is one replica, ``K = 1``)::

    model.<param>            [K, *shape]  weights of every replica
    optim.exp_avg.<param>    [K, *shape]  AdamW's first moments
    optim.exp_avg_sq.<param> [K, *shape]  AdamW's second moments
    optim.step.<param>       [K]          AdamW's step counts
    rng.torch, rng.cuda      the global generators' states (rng.cuda only on a CUDA device)
    rng.data.<i>             replica i's data generator
    metadata: {"format": "toyformer-checkpoint-2", "state": JSON of the loop state}

Checkpoints written before this format (a single run's ``model.<param>`` unstacked with
``optim.<index>.<slot>``; a replica run's ``param.<param>``) are read by ``read_training`` and
returned in this layout, so an old run still resumes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from toyformer.errors import ConfigError
from toyformer.files import atomic_write, dumps

FORMAT = "toyformer-checkpoint-2"
KEPT = "checkpoints"  # train.keep_checkpoints=log: RUN_DIR/checkpoints/step_000100.safetensors, weights only


def log_steps(total: int, per_decade: int) -> list[int]:
    """Steps ``0 .. total`` at which ``train.keep_checkpoints=log`` keeps the weights: 0 (the
    initialisation) and ``round(10 ** (i / per_decade))``.

    >>> log_steps(100, 4)
    [0, 1, 2, 3, 6, 10, 18, 32, 56, 100]
    """
    steps, i = {0}, 0
    while (s := round(10 ** (i / per_decade))) <= total:
        steps.add(s)
        i += 1
    return sorted(steps)


def kept_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / KEPT / f"step_{step:06d}.safetensors"


def kept_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """The weights kept at log-spaced steps, ``[(step, path), ...]`` in step order."""
    folder = Path(run_dir) / KEPT
    found = []
    for path in folder.glob("step_*.safetensors") if folder.is_dir() else ():
        try:
            found.append((int(path.stem.removeprefix("step_")), path))
        except ValueError:
            continue
    return sorted(found)


def save_weights(path: Path, model: torch.nn.Module, metadata: dict | None = None) -> None:
    """One model's weights; ``metadata`` values are stored as JSON."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))


def _load(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; a truncated or foreign file is a ConfigError."""
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"{str(path)!r} is not a readable safetensors file ({str(exc).splitlines()[0]}); "
                          "it may be truncated: restore it or train again") from None
    return tensors, meta


def _load_state_dict(model: torch.nn.Module, weights: dict[str, torch.Tensor], path: Path, device) -> None:
    """Load ``weights`` into ``model``; missing, extra or wrongly shaped tensors are a ConfigError."""
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    wrong = [k for k in own if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)]
    if missing or extra or wrong:
        what = (f"shape of {wrong[0]} is {tuple(weights[wrong[0]].shape)}, the config builds "
                f"{tuple(own[wrong[0]].shape)}" if wrong else
                f"missing {missing[0]}" if missing else f"unexpected {extra[0]}")
        raise ConfigError(f"{str(path)!r} does not fit the model its config.json builds ({what})")
    model.load_state_dict({k: v.to(device) for k, v in weights.items()})


def load_weights(path: Path, model: torch.nn.Module, device) -> None:
    """Load ``model.safetensors`` into ``model`` (checked against its shapes)."""
    _load_state_dict(model, _load(path)[0], path, device)


def save_training(path: Path, tensors: dict[str, torch.Tensor], state: Mapping[str, Any]) -> None:
    """Write a training checkpoint (the layout above); ``state`` is the loop's JSON state."""
    cpu = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {"format": FORMAT, "state": dumps(state)}
    atomic_write(path, lambda tmp: save_file(cpu, tmp, metadata=meta))


def read_training(path: Path, param_order: list[str] | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """A training checkpoint's tensors in the layout above, and its loop state.

    ``param_order``: the parameter names in the order a single run's ``torch.optim.AdamW``
    numbered them; an old-format single-run checkpoint read without it has no ``optim.*``."""
    tensors, meta = _load(path)
    if "state" not in meta:
        raise ConfigError(f"{str(path)!r} is not a toyformer checkpoint (no training state in its metadata)")
    try:
        state = json.loads(meta["state"])
    except ValueError:
        raise ConfigError(f"{str(path)!r} has a damaged training state in its metadata") from None
    if meta.get("format") == FORMAT:
        return tensors, state
    if any(k.startswith("param.") for k in tensors):
        return _from_replicas_v1(tensors, state)
    return _from_single_v1(tensors, state, param_order)


def saved_step(path: Path) -> int | None:
    """The step a training checkpoint was written at, from its metadata alone (no tensor is read);
    None when there is none or it cannot be read."""
    try:
        with safe_open(str(path), "pt") as f:
            return int(json.loads((f.metadata() or {})["state"])["step"])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError):
        return None


def _from_replicas_v1(tensors: dict, state: dict) -> tuple[dict, dict]:
    steps = state.pop("optim_steps")
    out = {}
    for key, value in tensors.items():
        if key.startswith("param."):
            name = key[len("param."):]
            out[f"model.{name}"] = value
            out[f"optim.step.{name}"] = torch.full((value.shape[0],), float(steps))
        else:  # optim.exp_avg.*, optim.exp_avg_sq.*, rng.*
            out[key] = value
    state["k"] = len(state["replicas"])
    return out, state


def _from_single_v1(tensors: dict, state: dict, param_order: list[str] | None) -> tuple[dict, dict]:
    out = {}
    for key, value in tensors.items():
        if key.startswith("model."):
            out[key] = value.unsqueeze(0)
        elif key.startswith("optim."):
            if param_order is None:
                continue
            _, idx, slot = key.split(".", 2)
            name = param_order[int(idx)]
            out[f"optim.{slot}.{name}"] = value.reshape(1) if slot == "step" else value.unsqueeze(0)
        elif key == "rng.data":
            out["rng.data.0"] = value
        else:
            out[key] = value
    history = state.pop("history")
    stopped = state["solved_at_step"] is not None
    replica = {"solved_at_step": state.pop("solved_at_step"), "solved_at_s": state.pop("solved_at_s"),
               "stopped": state["step"] if stopped else None, "wall_s": state["wall_s"] if stopped else None,
               "history": history}
    return out, {**state, "k": 1, "replicas": [replica]}


def load_checkpoint_weights(path: Path, model: torch.nn.Module, device, replica: int = 0) -> dict:
    """Load replica ``replica``'s weights from a training checkpoint into ``model``; returns that
    replica's loop state (``history`` ...). Reads both formats."""
    tensors, state = read_training(path)
    weights = {k[len("model."):]: v[replica] for k, v in tensors.items() if k.startswith("model.")}
    _load_state_dict(model, weights, path, device)
    return state["replicas"][replica]
