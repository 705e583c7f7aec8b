"""TensorBoard event files for a run, so that a user who lives in TensorBoard sees toyformer runs
there: the scalars of every evaluation (losses, per-token accuracy, exact match, learning rate)
and, when the run ends, its test numbers, the learning curves and the attention grid as images.

An ``on_eval`` callback like ``live.CurvesFile``; training itself never imports this module:
``toyformer.train`` and ``toyformer.train_replicas`` (``experiments.recording``), ``toyformer
train`` and sweeps add it when ``train.tensorboard`` names a directory. The ``tensorboard``
package is optional (``pip install 'toyformer[tensorboard]'``); without it a run that asks for
TensorBoard stops before it starts with one line saying so. The event files are written when the
first evaluation is logged, so a bad config writes nothing.

Tags: ``train/loss``, ``train/token_acc``, ``train/exact_match``, ``val/loss``, ``val/token_acc``,
``val/exact_match``, ``lr`` at each evaluation; ``test/token_acc``, ``test/exact_match``,
``test/loss`` and the images ``curves`` and ``attention`` at the end; the config as text.

>>> cfg = toyformer.RunConfig.from_dict({"task": "reverse", "train": {"tensorboard": "runs/tb/rev"}})  # doctest: +SKIP
>>> toyformer.train(cfg, out_dir="runs/rev")     # then: tensorboard --logdir runs/tb          # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from toyformer.errors import ConfigError

EXTRA = "pip install 'toyformer[tensorboard]'"
SPLITS = ("train", "val", "test")


def check_available() -> None:
    """A one-line ConfigError when TensorBoard's package is missing (``torch.utils.tensorboard``
    needs it)."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ConfigError(f"train.tensorboard needs the tensorboard package: {EXTRA}") from None


def scalar_tags(record: dict) -> dict[str, float]:
    """A metrics record as TensorBoard tags: ``val_exact_match`` -> ``val/exact_match``; ``lr`` as is.

    >>> scalar_tags({"step": 20, "wall_s": 0.1, "lr": 0.001, "train_loss": 2.3, "val_token_acc": 0.5})
    {'lr': 0.001, 'train/loss': 2.3, 'val/token_acc': 0.5}
    """
    out = {}
    for key, value in record.items():
        if key in ("step", "wall_s") or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        split, _, metric = key.partition("_")
        out[f"{split}/{metric}" if split in SPLITS and metric else key] = value
    return out


def figure_image(fig):
    """A matplotlib figure as an RGB array ``[H, W, 3]`` (drawn by Agg; pyplot is never imported)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


class TensorBoardLog:
    """``on_eval`` callback writing one run's event files into ``log_dir``; ``run_dir`` (the run
    directory, once written) gives the images at the end."""

    def __init__(self, log_dir: str | Path, run_dir: str | Path | None = None, config: dict | None = None):
        check_available()
        self.log_dir = Path(log_dir)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.config = config
        self._writer = None

    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir))
            config = self.config
            if config is None and self.run_dir is not None and (self.run_dir / "config.json").is_file():
                config = json.loads((self.run_dir / "config.json").read_text())
            if config is not None:
                self._writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)
        return self._writer

    def __call__(self, record: dict) -> None:
        for tag, value in scalar_tags(record).items():
            if math.isfinite(value):
                self.writer.add_scalar(tag, value, record["step"])
        self.writer.flush()  # seen by a running TensorBoard at once

    def finish(self, summary: dict | None = None) -> None:
        """The test numbers, the curves and the attention grid; then the files are closed."""
        summary = summary or {}
        step = summary.get("steps") or 0
        tests = {k: v for k, v in summary.items() if k.startswith("test_") and k != "test_n"}
        for tag, value in scalar_tags(tests).items():
            if math.isfinite(value):
                self.writer.add_scalar(tag, value, step)
        if self.run_dir is not None and (self.run_dir / "summary.json").is_file():
            for tag, fig in self._figures(summary):
                self.writer.add_image(tag, figure_image(fig), step, dataformats="HWC")
        self.writer.close()

    def _figures(self, summary: dict):
        from toyformer.inspect.capture import attention
        from toyformer.inspect.plots import attention_figure, curves_figure
        from toyformer.run import load_run

        assert self.run_dir is not None  # only called for a run directory that holds summary.json
        run = load_run(self.run_dir, device="cpu")
        if run.metrics:
            yield "curves", curves_figure(run.metrics, summary, run.config.layout)
        yield "attention", attention_figure(attention(run, run.splits.test[:1]), 0)


class ReplicaTensorBoard:
    """``on_eval(i, record)`` for K replicas: replica ``i`` logs into ``log_dir/replica-<i>``."""

    def __init__(self, log_dir: str | Path, run_dirs: list[Path | None]):
        self.logs = [TensorBoardLog(Path(log_dir) / f"replica-{i}", d) for i, d in enumerate(run_dirs)]

    def __call__(self, i: int, record: dict) -> None:
        self.logs[i](record)

    def finish(self, summaries: list[dict]) -> None:
        for log, summary in zip(self.logs, summaries):
            log.finish(summary)


class Callbacks:
    """Several ``on_eval`` callbacks as one; ``finish`` reaches those that have it."""

    def __init__(self, *parts):
        self.parts = [p for p in parts if p is not None]

    def __call__(self, *args) -> None:
        for part in self.parts:
            part(*args)

    def finish(self, *args) -> None:
        for part in self.parts:
            if hasattr(part, "finish"):
                part.finish(*args)


def with_tensorboard(on_eval, config, run_dir: str | Path | None):
    """``on_eval`` plus a ``TensorBoardLog`` when ``config`` (a RunConfig) names
    ``train.tensorboard``; else ``on_eval`` unchanged."""
    log_dir = config.train.tensorboard if config is not None else None
    if log_dir is None:
        return on_eval
    log = TensorBoardLog(log_dir, run_dir, config.to_dict())
    return log if on_eval is None else Callbacks(on_eval, log)
