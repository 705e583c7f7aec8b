"""A run in memory: its config, task, data splits and model, built fresh or loaded from a run
directory.

``build(config)`` validates the task/layout pair and seeds the model's initialisation;
``load_run(run_dir)`` rebuilds the same ``Run`` from a directory alone and loads its final (or,
for an unfinished run, its latest checkpointed) weights.

>>> run = load_run("runs/reverse-demo")                 # doctest: +SKIP
>>> run.config.task.name, run.summary["test_exact_match"]   # doctest: +SKIP
('reverse', 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from toyformer.config import RunConfig
from toyformer.data import Splits, format_batch, make_splits
from toyformer import numerics
from toyformer.errors import ConfigError
from toyformer.files import read_json
from toyformer.models import build_model
from toyformer.tasks.base import Task
from toyformer.tasks.protocol import check_task
from toyformer.run import checkpoint, directory, memory
from toyformer.run.records import Summary


@dataclass
class Run:
    """A trained (or loaded) run: its config, model, data splits, metrics and summary."""

    config: RunConfig
    model: torch.nn.Module
    task: Task
    splits: Splits
    device: torch.device
    metrics: list[dict] = field(default_factory=list)
    summary: Summary = field(default_factory=lambda: Summary())
    run_dir: Path | None = None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but no CUDA device is available; allowed here: auto, cpu")
    return torch.device(name)


def build(config: RunConfig, device: str | None = None) -> Run:
    """Task, splits and a freshly initialised model (seeded) for ``config``; validates the pair."""
    dev = resolve_device(device or config.device)
    numerics.check(config.train.portable, dev)
    task = config.task.build()
    check_task(task)
    memory.check(memory.estimate(config, task), dev)  # before anything large is allocated
    splits = make_splits(task, config)
    widths = [format_batch(ex[:8], config.layout, config.data.sep) for ex in (splits.val, splits.test)]
    w_in = max(b.inputs.shape[1] for b in widths)
    w_out = max(b.labels.shape[-1] if b.labels.dim() > 1 else 1 for b in widths)
    torch.manual_seed(config.seed)
    model = build_model(config.model, config.layout, task, (w_in, w_out)).to(dev)
    if config.train.epochs is not None and splits.pool is None:
        raise ConfigError("train.epochs needs a fixed pool: set data.train_size (or use train.steps)")
    return Run(config, model, task, splits, dev)


def load_run(run_dir: str | Path, device: str | None = None) -> Run:
    """Rebuild a run from its directory: config, splits and the final (or latest) weights."""
    run_dir = Path(run_dir)
    config = directory.run_config(run_dir)
    run = build(config, device)
    run.run_dir = run_dir
    weights = run_dir / "model.safetensors"
    if weights.is_file():
        checkpoint.load_weights(weights, run.model, run.device)
    elif (run_dir / "checkpoint.safetensors").is_file():
        state = checkpoint.load_checkpoint_weights(run_dir / "checkpoint.safetensors", run.model, run.device)
        run.metrics = state["history"]
    else:
        raise ConfigError(f"{str(run_dir)!r} has no weights yet (no model.safetensors or checkpoint)")
    if (run_dir / "summary.json").is_file():
        run.summary = read_json(run_dir / "summary.json")
        run.metrics = directory.read_metrics(run_dir)
    return run
