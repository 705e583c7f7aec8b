"""Train one run: seeded, deterministic, resumable; early stop at a target metric.

>>> run = toyformer.train(RunConfig.from_dict({"task": "count_ones"}), out_dir="runs/ones")   # doctest: +SKIP
>>> run.summary["test_exact_match"], run.summary["solved_at_step"]                            # doctest: +SKIP
(1.0, 200)
>>> run = toyformer.train(None, out_dir="runs/ones", resume=True)   # a killed run continues  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Callable

from toyformer.config import RunConfig
from toyformer.errors import ConfigError
from toyformer.files import write_json
from toyformer.numerics import pinned_threads
from toyformer.run import Run, build, directory, load_run
from toyformer.run.checkpoint import save_weights
from toyformer.training.loop import fit
from toyformer.training.steps import SingleStep
from toyformer.training.summary import finish


def train(
    config: RunConfig | None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    quiet: bool = True,
    device: str | None = None,
    on_eval: Callable[[dict], None] | None = None,
) -> Run:
    """Train a model for ``config``. With ``out_dir`` the run directory is written (and, with
    ``resume``, continued from its checkpoint; ``config`` is then read from the directory).
    ``on_eval(record)`` is called after each evaluation (live plots, loggers; its time is not
    counted in ``wall_s``); if it has a ``finish(summary)`` method, that is called once when the
    run ends. Returns the ``Run``; ``run.summary["diverged"]`` says when the loss stopped being
    finite (the weights are then those of the last evaluation before it)."""
    out = Path(out_dir) if out_dir is not None else None
    if resume:
        if out is None:
            raise ConfigError("resume needs an output directory")
        directory.prepare_out_dir(out, resume=True)
        if (out / "summary.json").is_file():  # finished: nothing to do
            return load_run(out, device=device)
        config = RunConfig.from_dict(directory.read_config(out))
    if config is None:
        raise ConfigError("train needs a config, or resume=True with the out_dir of a run")
    run = build(config, device)  # validates everything before anything is written
    if out is None:
        return _fit(run, resume, quiet, on_eval)
    with directory.writing(out, resume):  # one writer per run directory
        if resume and (out / "summary.json").is_file():  # finished by another process just before the lock
            return load_run(out, device=device)
        if not resume:
            directory.save_task_file(out, config.task.name)  # before config.json: a resumed run needs its task
            write_json(out / "config.json", config.to_dict())
        run.run_dir = out
        return _fit(run, resume, quiet, on_eval)


def _fit(run: Run, resume: bool, quiet: bool, on_eval) -> Run:
    callback = None if on_eval is None else (lambda i, record: on_eval(record))
    with pinned_threads(run.config.train.portable):
        state = fit(SingleStep(run), quiet, callback, resume, run.run_dir)
        run.summary = finish(run, state["replicas"][0])
    if run.run_dir is not None:
        write_final(run)
    if hasattr(on_eval, "finish"):  # live plots draw their final state
        on_eval.finish(run.summary)
    return run


def write_final(run: Run) -> None:
    """The final weights, then ``summary.json`` (written last: its presence means finished)."""
    assert run.run_dir is not None, "only a run with a directory writes one"
    save_weights(run.run_dir / "model.safetensors", run.model, {"config": run.config.to_dict()})
    write_json(run.run_dir / "summary.json", run.summary)


def train_into(run_dir: str | Path, config: RunConfig, quiet: bool = True, device: str | None = None,
               on_eval: Callable[[dict], None] | None = None) -> tuple[Run, str]:
    """Make ``run_dir`` a finished run of ``config``: load it when it finished, continue it from
    its checkpoint when it started, train it otherwise. Returns the run and what was done
    (``"done"``, ``"resumed"`` or ``"trained"``); this is how recipes and sweeps resume.
    ``on_eval`` as for ``train``."""
    run_dir = Path(run_dir)
    if (run_dir / "summary.json").is_file():
        return load_run(run_dir, device=device), "done"
    if (run_dir / "config.json").is_file():
        return train(None, out_dir=run_dir, resume=True, quiet=quiet, device=device, on_eval=on_eval), "resumed"
    return train(config, out_dir=run_dir, quiet=quiet, device=device, on_eval=on_eval), "trained"
