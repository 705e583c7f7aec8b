"""Replicas: K models that differ only in seed (and optionally ``train.lr``) trained as one
batched computation, with each replica's results and their mean with a 95% confidence interval.

Replica ``i`` is the run of ``config`` with ``seed = config.seed + i``: its own initialisation
(built exactly as ``training.build`` builds a single run), its own training data stream or pool,
its own learning-rate schedule, gradient clipping and early stop. One step stacks the K batches
and runs forward, backward and AdamW once for all replicas (``models.replicated``,
``replica_optim``); a replica that reaches its target is frozen where its single run would have
stopped. Evaluation unstacks each replica into a normal model and reuses ``toyformer.evaluation``.

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

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from toyformer import rundir
from toyformer.config import RunConfig
from toyformer.data import IGNORE, format_batch, stack_batches
from toyformer.errors import ConfigError
from toyformer.evaluation import evaluate_config, public
from toyformer.metrics import exact_match
from toyformer.models.replicated import Replicated
from toyformer.replica_optim import ReplicaAdamW, clip_per_replica
from toyformer.results_store import record_run
from toyformer.splits import Lengths, TrainData
from toyformer.stats import mean_ci
from toyformer.training import Run, build, decays, finish, load_run, lr_at, progress_bar

SWEEPABLE = ("train.lr",)  # what --replica-set may vary across replicas
HEADLINE = ("test_token_acc", "test_exact_match", "test_loss", "val_exact_match", "train_loss", "steps",
            "solved_at_step", "solved_at_s")


@dataclass
class Replicas:
    """A replica run: one ``Run`` per replica and the combined summary (``replicas``, ``mean``,
    ``ci95``; ``groups`` per swept value)."""

    runs: list[Run]
    summary: dict = field(default_factory=dict)
    run_dir: Path | None = None


def parse_replica_set(items: list[str]) -> dict[str, list[float]]:
    """``["train.lr=1e-3,3e-3"]`` -> ``{"train.lr": [0.001, 0.003]}``; only ``SWEEPABLE`` keys."""
    out: dict[str, list[float]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = "train.lr" if key.strip() == "lr" else key.strip()
        if key not in SWEEPABLE or not sep:
            raise ConfigError(f"--replica-set {item!r}: allowed keys: {', '.join(SWEEPABLE)} (as KEY=V1,V2,...)")
        try:
            out[key] = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"--replica-set {item!r}: values must be numbers, e.g. {key}=1e-3,3e-3") from None
    return out


def replica_configs(config: RunConfig, k: int, values: dict[str, list] | None = None) -> list[RunConfig]:
    """The K single-run configs: ``seed + i``, and value ``i * len(values) // k`` of each swept key
    (one value per replica, or a list whose length divides K: consecutive replicas share a value)."""
    if not isinstance(k, int) or k < 1:
        raise ConfigError(f"--replicas {k}: allowed: an integer >= 1")
    values = values or {}
    for key, vals in values.items():
        if key not in SWEEPABLE:
            raise ConfigError(f"--replica-set {key}: allowed keys: {', '.join(SWEEPABLE)}")
        if not vals or k % len(vals):
            divisors = ", ".join(str(d) for d in range(1, k + 1) if k % d == 0)
            raise ConfigError(f"--replica-set {key}: {len(vals)} values for {k} replicas; allowed counts: {divisors}")
    return [config.with_overrides([f"seed={config.seed + i}"] + [f"{key}={vals[i * len(vals) // k]}"
                                                                  for key, vals in values.items()])
            for i in range(k)]


def train_replicas(config: RunConfig | None, k: int | None = None, out_dir: str | Path | None = None,
                   lrs: list[float] | None = None, resume: bool = False, quiet: bool = True,
                   device: str | None = None, store=None) -> Replicas:
    """Train ``k`` replicas of ``config`` (seeds ``seed .. seed + k - 1``; ``lrs``: their learning
    rates, one per replica or a list whose length divides ``k``) as one batched computation.
    With ``out_dir`` the run directory is written; ``resume`` continues it from its checkpoint
    (``config`` and ``k`` are then read from it). With ``store`` (a results store or its path) each
    replica is recorded as its own row (``replica``, ``n_replicas``).

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
    configs = replica_configs(config, k, values)
    runs = [build(c, device) for c in configs]  # validates everything before anything is written
    if out is not None and not resume:
        rundir.prepare_out_dir(out, resume=False)
        for i, (run, cfg) in enumerate(zip(runs, configs)):
            (out / "replicas" / str(i)).mkdir(parents=True)
            rundir.write_json(out / "replicas" / str(i) / "config.json", cfg.to_dict())
        rundir.write_json(out / "replicas.json", {"k": k, "replica_set": values, "config": config.to_dict()})
    for i, run in enumerate(runs):
        run.run_dir = None if out is None else out / "replicas" / str(i)
    result = Replicas(runs, run_dir=out)
    _loop(result, quiet, resume)
    result.summary = combine(runs, values)
    if out is not None:
        rundir.write_json(out / "summary.json", result.summary)
        for i, run in enumerate(runs):
            record_run(store, run, "train", replica=i, n_replicas=k)
    return result


def train_replicas_into(run_dir: str | Path, config: RunConfig, k: int, quiet: bool = True,
                        device: str | None = None) -> tuple[Replicas, str]:
    """Make ``run_dir`` a finished run of ``k`` replicas of ``config``, as ``training.train_into``
    does for one run: load it when finished (``"done"``), continue it from its checkpoint when
    started (``"resumed"``), train it otherwise (``"trained"``); this is how sweeps train replicas."""
    run_dir = Path(run_dir)
    if (run_dir / "summary.json").is_file():
        return load_replicas(run_dir, device), "done"
    if (run_dir / "replicas.json").is_file():
        return train_replicas(None, out_dir=run_dir, resume=True, quiet=quiet, device=device), "resumed"
    return train_replicas(config, k, out_dir=run_dir, quiet=quiet, device=device), "trained"


def _read_meta(out: Path) -> dict:
    path = out / "replicas.json"
    if not path.is_file():
        raise ConfigError(f"{str(out)!r} is not a replica run directory (no replicas.json)")
    return rundir.read_json(path)


def load_replicas(run_dir: str | Path, device: str | None = None) -> Replicas:
    """A finished replica run from its directory: every replica's ``Run`` and the summary."""
    run_dir = Path(run_dir)
    k = _read_meta(run_dir)["k"]
    runs = [load_run(run_dir / "replicas" / str(i), device) for i in range(k)]
    return Replicas(runs, rundir.read_json(run_dir / "summary.json"), run_dir)


class _Accumulator:
    """Per-replica running training loss/accuracy between evaluations ``[K]``, on the device."""

    def __init__(self, k: int, dev):
        self.k, self.dev = k, dev
        self.reset()

    def reset(self):
        z = lambda: torch.zeros(self.k, device=self.dev)  # noqa: E731
        self.loss, self.hits, self.count, self.exact, self.rows, self.n = z(), z(), z(), z(), 0, 0

    def add(self, loss, pred, labels):  # loss [K]; pred, labels [K, B(, T)]
        counted = labels != IGNORE
        self.loss += loss
        self.hits += ((pred == labels) & counted).flatten(1).sum(1)
        self.count += counted.flatten(1).sum(1)
        self.exact += exact_match(pred.flatten(0, 1), labels.flatten(0, 1)).view(self.k, -1).sum(1)
        self.rows += labels.shape[1]
        self.n += 1

    def read(self) -> list[dict]:
        loss = (self.loss / max(self.n, 1)).tolist()
        acc = (self.hits / self.count.clamp(min=1)).tolist()
        exact = (self.exact / max(self.rows, 1)).tolist()
        self.reset()
        return [{"train_loss": a, "train_token_acc": b, "train_exact_match": c} for a, b, c in zip(loss, acc, exact)]


def _loop(result: Replicas, quiet: bool, resume: bool) -> None:
    runs, out = result.runs, result.run_dir
    cfgs = [r.config for r in runs]
    base, dev, k = cfgs[0], runs[0].device, len(runs)
    datas = [TrainData(r.task, r.splits, c.data.batch_size, c.seed, Lengths.from_config(c.data)) for r, c in zip(runs, cfgs)]
    total = base.train.steps if base.train.epochs is None else base.train.epochs * datas[0].steps_per_epoch
    for d in datas:
        d.total_steps = total
    rep = Replicated([r.model for r in runs])
    decay = {name: decays(name, p[0]) for name, p in rep.params.items()}
    opt = ReplicaAdamW(rep.params, decay, (0.9, base.train.beta2), base.train.weight_decay)
    state = {"step": 0, "wall_s": 0.0, "replicas": [
        {"solved_at_step": None, "solved_at_s": None, "stopped": None, "wall_s": None, "history": []} for _ in runs]}
    ckpt = out / "checkpoint.safetensors" if out is not None else None
    if resume and ckpt.is_file():
        state = _load_checkpoint(ckpt, rep, opt, datas, dev)
    step, wall_before = state["step"], state["wall_s"]
    active = torch.tensor([s["stopped"] is None for s in state["replicas"]], device=dev)  # [K]
    acc = _Accumulator(k, dev)
    bar = progress_bar(total, quiet)
    bar.update(step)
    t0 = time.perf_counter()
    stop = step >= total or not bool(active.any())
    while not stop:
        batches = [format_batch(d.batch(step).to(dev), c.layout, c.data.sep, c.data.mask_prob, d.generator,
                                c.data.prompt_loss) for d, c in zip(datas, cfgs)]
        batch = stack_batches(batches, base.layout)  # [K, B, ...]
        lr = torch.tensor([lr_at(step, total, c.train) for c in cfgs], dtype=torch.float64, device=dev)  # [K]
        loss, pred = rep.loss_and_predictions(batch)  # [K], [K, B(, T)]
        grads = rep.gradients(loss)
        if base.train.grad_clip is not None:
            clip_per_replica(grads, base.train.grad_clip)
        opt.step(grads, lr, active)
        acc.add(loss.detach(), pred, batch.labels)
        step += 1
        bar.update(1)
        wall = wall_before + time.perf_counter() - t0
        out_of_time = base.train.max_time_s is not None and wall >= base.train.max_time_s
        if step % base.eval.every == 0 or step >= total or out_of_time:
            train = acc.read()
            for i in active.nonzero().flatten().tolist():
                _evaluate(runs[i], rep, i, state["replicas"][i], train[i], step, total, wall, dev)
            wall = wall_before + time.perf_counter() - t0
            for i, s in enumerate(state["replicas"]):
                if s["stopped"] is None and (s["solved_at_step"] is not None or step >= total or out_of_time):
                    s["stopped"], s["wall_s"] = step, round(wall, 3)
                    active[i] = False
            stop = not bool(active.any()) or step >= total or out_of_time
            state.update(step=step, wall_s=wall)
            if out is not None:
                _save_checkpoint(ckpt, rep, opt, datas, dev, state)
                for run, s in zip(runs, state["replicas"]):
                    rundir.write_jsonl(run.run_dir / "metrics.jsonl", s["history"])
    bar.close()
    for i, (run, s) in enumerate(zip(runs, state["replicas"])):
        rep.load_into(i, run.model)
        run.metrics = s["history"]
        run.summary = finish(run, {"step": s["stopped"], "wall_s": s["wall_s"], "solved_at_step": s["solved_at_step"],
                                   "solved_at_s": s["solved_at_s"]})


def _evaluate(run: Run, rep: Replicated, i: int, s: dict, train: dict, step: int, total: int, wall: float, dev):
    """Validate replica ``i`` (unstacked into its own model) and record it, as a single run does."""
    cfg = run.config
    rep.load_into(i, run.model)
    val = evaluate_config(run.model, run.splits.val, cfg, dev)
    s["history"].append({"step": step, "wall_s": round(wall, 3), "lr": lr_at(step - 1, total, cfg.train), **train,
                         **public(val, "val")})
    if cfg.eval.target is not None and val[cfg.eval.target_metric] >= cfg.eval.target and s["solved_at_step"] is None:
        s["solved_at_step"], s["solved_at_s"] = step, round(wall, 3)


def _save_checkpoint(path: Path, rep: Replicated, opt: ReplicaAdamW, datas, dev, state: dict) -> None:
    tensors = {f"param.{n}": p.detach().contiguous().cpu() for n, p in rep.params.items()}
    tensors.update({f"optim.{n}": t.contiguous().cpu() for n, t in opt.state_tensors().items()})
    tensors["rng.torch"] = torch.get_rng_state()
    if dev.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(dev)
    tensors.update({f"rng.data.{i}": d.generator.get_state() for i, d in enumerate(datas)})
    meta = {"state": json.dumps({**state, "optim_steps": opt.steps})}
    rundir.atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def _load_checkpoint(path: Path, rep: Replicated, opt: ReplicaAdamW, datas, dev) -> dict:
    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        state = json.loads(f.metadata()["state"])
    with torch.no_grad():
        for name, p in rep.params.items():
            p.copy_(tensors[f"param.{name}"])
    opt.load_state_tensors({k[6:]: v.to(dev) for k, v in tensors.items() if k.startswith("optim.")},
                           state.pop("optim_steps"))
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and dev.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng.cuda"], dev)
    for i, d in enumerate(datas):
        d.generator.set_state(tensors[f"rng.data.{i}"])
    return state


def combine(runs: list[Run], values: dict[str, list] | None = None) -> dict:
    """The replica run's summary: each replica's headline numbers, their ``mean`` and ``ci95``
    (half-width of a 95% t-interval; ``solved_at_*`` over the replicas that solved), and with a
    swept key one ``groups`` entry per value."""
    rows = [{"replica": i, "seed": r.config.seed, "lr": r.config.train.lr, "run_dir": str(r.run_dir) if r.run_dir else None,
             **{m: r.summary.get(m) for m in HEADLINE}} for i, r in enumerate(runs)]
    first = runs[0].summary
    summary = {"task": first["task"], "layout": first["layout"], "k": len(runs), "params": first["params"],
               "solved": sum(r["solved_at_step"] is not None for r in rows), "replicas": rows,
               **aggregate(rows), "wall_s": max(r.summary["wall_s"] for r in runs),
               "target": first["target"], "machine": first["machine"], "device": first["device"]}
    if values:
        summary["groups"] = [{"lr": lr, "replicas": [r["replica"] for r in rows if r["lr"] == lr],
                              **aggregate([r for r in rows if r["lr"] == lr])}
                             for lr in dict.fromkeys(r["lr"] for r in rows)]
    return summary


def aggregate(rows: list[dict]) -> dict:
    """``{"mean": {metric: ...}, "ci95": {metric: ...}}`` over the rows' non-missing values."""
    mean, ci = {}, {}
    for m in HEADLINE:
        vals = [r[m] for r in rows if r.get(m) is not None]
        if vals:
            mean[m], ci[m] = mean_ci(vals)
    return {"mean": mean, "ci95": ci}


def format_table(summary: dict) -> str:
    """The replicas one per line, then the mean +- 95% CI line (``toyformer train --replicas``)."""
    cols = ("test_token_acc", "test_exact_match", "solved_at_step", "steps")
    fmt = lambda v: "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = [f"{'replica':>7} {'seed':>6} {'lr':>9} " + " ".join(f"{c:>16}" for c in cols)]
    for r in summary["replicas"]:
        lines.append(f"{r['replica']:>7} {r['seed']:>6} {r['lr']:>9.3g} " + " ".join(f"{fmt(r[c]):>16}" for c in cols))
    groups = summary.get("groups") or [{"lr": None, **summary}]
    for g in groups:
        cells = [f"{g['mean'][c]:.4f} +- {g['ci95'][c]:.4f}" if c in g["mean"] else "-" for c in cols]
        label = "mean" if g["lr"] is None else f"lr {g['lr']:.3g}"
        lines.append(f"{label:>24} " + " ".join(f"{c:>16}" for c in cells))
    return "\n".join(lines)
