"""Replicas: K models that differ only in seed (and optionally ``train.lr``) trained as one
batched computation, with each replica's results and their mean with a 95% confidence interval.

Replica ``i`` is the run of ``config`` with ``seed = config.seed + i``: its own initialisation
(built exactly as ``toyformer.run.build`` builds a single run), its own training data stream or pool,
its own learning-rate schedule, gradient clipping and early stop. One step stacks the K batches
and runs forward, backward and AdamW once for all replicas (``steps.ReplicaStep``), in the
same loop as a single run (``loop.fit``); a replica that reaches its target is frozen where its single run would have
stopped. Evaluation unstacks each replica into a normal model and reuses ``toyformer.eval.evaluate``.

::

    RUN_DIR/
      replicas.json          the base config, K and the per-replica values (--replica-set)
      checkpoint.safetensors stacked weights + AdamW moments + RNG states (resume)
      summary.json           every replica's headline numbers, their mean and ci95 (written last)
      replicas/<i>/          replica i as a normal run directory (config, metrics, summary, weights)

>>> rep = toyformer.train_replicas(RunConfig.from_dict({"task": "count_ones"}), k=8)   # doctest: +SKIP
>>> rep.summary["mean"]["test_exact_match"], rep.summary["ci95"]["test_exact_match"]   # doctest: +SKIP
(1.0, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

from toyformer.config import RunConfig
from toyformer.errors import ConfigError
from toyformer.files import read_json, write_json
from toyformer.numerics import pinned_threads
from toyformer.run import ReplicaSummary, Run, build, directory, load_run
from toyformer.training.loop import fit
from toyformer.training.single import write_final
from toyformer.training.steps import ReplicaStep
from toyformer.training.summary import combine, finish

SWEEPABLE = ("train.lr",)  # what --replica-set may vary across replicas


@dataclass
class Replicas:
    """A replica run: one ``Run`` per replica and the combined summary (``replicas``, ``mean``,
    ``ci95``; ``groups`` per swept value)."""

    runs: list[Run]
    summary: ReplicaSummary = field(default_factory=lambda: ReplicaSummary())
    run_dir: Path | None = None


def parse_replica_set(items: list[str]) -> dict[str, list[float]]:
    """``["train.lr=1e-3,3e-3"]`` -> ``{"train.lr": [0.001, 0.003]}``; only ``SWEEPABLE`` keys."""
    out: dict[str, list[float]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = "train.lr" if key.strip() == "lr" else key.strip()
        if key not in SWEEPABLE or not sep:
            raise ConfigError(f"replica_set={item!r}: allowed keys: {', '.join(SWEEPABLE)} (as KEY=V1,V2,...)")
        try:
            out[key] = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"replica_set={item!r}: values must be numbers, e.g. {key}=1e-3,3e-3") from None
    return out


def replica_configs(config: RunConfig, k: int, values: dict[str, list] | None = None) -> list[RunConfig]:
    """The K single-run configs: ``seed + i``, and value ``i * len(values) // k`` of each swept key
    (one value per replica, or a list whose length divides K: consecutive replicas share a value)."""
    if not isinstance(k, int) or k < 1:
        raise ConfigError(f"k={k!r}: allowed: an integer >= 1 (the number of replicas)")
    values = values or {}
    for key, vals in values.items():
        if key not in SWEEPABLE:
            raise ConfigError(f"replica_set={key!r}: allowed keys: {', '.join(SWEEPABLE)}")
        if not vals or k % len(vals):
            divisors = ", ".join(str(d) for d in range(1, k + 1) if k % d == 0)
            raise ConfigError(f"replica_set={key!r}: {len(vals)} values for {k} replicas; allowed counts: {divisors}")
    return [config.with_overrides([f"seed={config.seed + i}"] + [f"{key}={vals[i * len(vals) // k]}"
                                                                  for key, vals in values.items()])
            for i in range(k)]


def train_replicas(config: RunConfig | None, k: int | None = None, out_dir: str | Path | None = None,
                   lrs: list[float] | None = None, resume: bool = False, quiet: bool = True,
                   device: str | None = None, on_eval: Callable[[int, dict], None] | None = None) -> Replicas:
    """Train ``k`` replicas of ``config`` (seeds ``seed .. seed + k - 1``; ``lrs``: their learning
    rates, one per replica or a list whose length divides ``k``) as one batched computation.
    With ``out_dir`` the run directory is written; ``resume`` continues it from its checkpoint
    (``config`` and ``k`` are then read from it). ``on_eval(i, record)`` is called after each
    evaluation of replica ``i`` (its time is not counted in ``wall_s``); if it has a
    ``finish(summaries)`` method, that is called once with every replica's summary at the end.

    Replica ``i`` ends as the single run of its config would (``toyformer.train``), up to the
    rounding of the batched kernels, when training draws no global random numbers (dropout,
    random positions or abacus offsets make each replica a different, equally valid, random run).
    """
    out = Path(out_dir) if out_dir is not None else None
    if resume:
        if out is None:
            raise ConfigError("resume needs an output directory")
        if (out / "summary.json").is_file():
            return load_replicas(out, device)
        meta = _read_meta(out)
        config, k, values = RunConfig.from_dict(meta["config"]), meta["k"], meta["replica_set"]
    else:
        values = {"train.lr": list(lrs)} if lrs is not None else {}
    if k is None:
        raise ConfigError("train_replicas needs k (the number of replicas)")
    if config is None:
        raise ConfigError("train_replicas needs a config, or resume=True with the out_dir of a replica run")
    if config.model.family != "transformer":
        raise ConfigError(f"model.family={config.model.family!r} cannot train as batched replicas (torch.func.vmap "
                          "has no batching rule for torch.nn.LSTM, nor a way through a recurrent loop); train its "
                          "seeds one after another, e.g. a sweep over seed")
    configs = replica_configs(config, k, values)
    runs = [build(c, device) for c in configs]  # validates everything before anything is written
    if out is None:
        return _fit(runs, values, resume, quiet, on_eval=on_eval)
    with directory.writing(out, resume):  # one writer per run directory
        if resume and (out / "summary.json").is_file():  # finished by another process just before the lock
            return load_replicas(out, device)
        if not resume:
            directory.save_task_file(out, config.task.name)
            write_json(out / "replicas.json", {"k": k, "replica_set": values, "config": config.to_dict()})
        _replica_dirs(out, configs)  # after replicas.json: a start cut short (a full disk) is resumed, not lost
        for i, run in enumerate(runs):
            run.run_dir = out / "replicas" / str(i)
        return _fit(runs, values, resume, quiet, out, on_eval)


def _replica_dirs(out: Path, configs: list[RunConfig]) -> None:
    """Each replica's directory with its config (and task file copy), where it is not there yet."""
    for i, cfg in enumerate(configs):
        folder = out / "replicas" / str(i)
        if (folder / "config.json").is_file():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        directory.save_task_file(folder, cfg.task.name)
        write_json(folder / "config.json", cfg.to_dict())


def _fit(runs: list[Run], values: dict, resume: bool, quiet: bool, out: Path | None = None,
         on_eval: Callable[[int, dict], None] | None = None) -> Replicas:
    with pinned_threads(runs[0].config.train.portable):
        state = fit(ReplicaStep(runs), quiet, on_eval, resume, out)
        for run, s in zip(runs, state["replicas"]):
            run.summary = finish(run, s)
            if out is not None:
                write_final(run)
    result = Replicas(runs, combine(runs, values), run_dir=out)
    if out is not None:
        write_json(out / "summary.json", result.summary)
    ended = getattr(on_eval, "finish", None)  # live plots draw their final state
    if ended is not None:
        ended([run.summary for run in runs])
    return result


def train_replicas_into(run_dir: str | Path, config: RunConfig, k: int, quiet: bool = True,
                        device: str | None = None, on_eval: Callable[[int, dict], None] | None = None
                        ) -> tuple[Replicas, str]:
    """Make ``run_dir`` a finished run of ``k`` replicas of ``config``, as ``training.train_into``
    does for one run: load it when finished (``"done"``), continue it from its checkpoint when
    started (``"resumed"``), train it otherwise (``"trained"``); this is how sweeps train replicas."""
    run_dir = Path(run_dir)
    if (run_dir / "summary.json").is_file():
        return load_replicas(run_dir, device), "done"
    if (run_dir / "replicas.json").is_file():
        rep = train_replicas(None, out_dir=run_dir, resume=True, quiet=quiet, device=device, on_eval=on_eval)
        return rep, "resumed"
    return train_replicas(config, k, out_dir=run_dir, quiet=quiet, device=device, on_eval=on_eval), "trained"


def _read_meta(out: Path) -> dict:
    path = out / "replicas.json"
    if not path.is_file():
        raise ConfigError(f"{str(out)!r} is not a replica run directory (no replicas.json)")
    directory.ensure_task(out)
    return read_json(path)


def load_replicas(run_dir: str | Path, device: str | None = None) -> Replicas:
    """A finished replica run from its directory: every replica's ``Run`` and the summary."""
    run_dir = Path(run_dir)
    k = _read_meta(run_dir)["k"]
    runs = [load_run(run_dir / "replicas" / str(i), device) for i in range(k)]
    return Replicas(runs, read_json(run_dir / "summary.json"), run_dir)
