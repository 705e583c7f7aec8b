"""One optimisation step, for one model or for K replicas, behind one interface.

The training loop (``loop.py``) sees only this interface, so a single run and a replica run
share everything but the step itself:

- ``k``: how many replicas (1 for a single run); ``total``: the steps the run takes;
- ``step(step, active)``: draw the batch of 0-based ``step`` for each replica, forward, backward,
  clip, update the replicas where ``active [K]`` holds, and add the step to ``acc``;
- ``load_into(i, model)``: replica ``i``'s current weights into a normal model (evaluation);
- ``snapshot(indices)`` / ``rollback(i)``: keep the weights of some replicas (after a finite
  evaluation), and put replica ``i``'s kept weights back (after it diverged);
- ``tensors()`` / ``restore(tensors)``: weights, optimiser state and data generators in the
  checkpoint layout of ``toyformer.run.checkpoint`` (``[K, *shape]``).

``SingleStep`` trains the model itself with fused ``torch.optim.AdamW`` (under
``train.precision`` and ``train.compile``); ``ReplicaStep`` stacks the K models' parameters and
runs them as one batched computation (``models.replicated``, ``optim.ReplicaAdamW``).

>>> stepper = SingleStep(build(cfg))                       # doctest: +SKIP
>>> for step in range(stepper.total): stepper.step(step)    # doctest: +SKIP
>>> stepper.acc.read()[0]["train_loss"]                     # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from toyformer.data import IGNORE, Lengths, TrainData, format_batch, stack_batches
from toyformer.eval import exact_match, loss_and_predictions
from toyformer.models.replicated import Replicated
from toyformer.numerics import compile_model
from toyformer.run import Run
from toyformer.training.optim import ReplicaAdamW, clip_per_replica, decays, lr_at, make_optimizer, param_order


class Accumulator:
    """Per-replica running training loss and accuracy between evaluations ``[K]``, kept on the
    device (no host sync per step), and the first step whose loss was not finite."""

    def __init__(self, k: int, dev):
        self.k, self.dev = k, dev
        self.first_bad = torch.full((k,), -1, dtype=torch.long, device=dev)  # [K], -1: every loss finite
        self.reset()

    def reset(self):
        z = lambda: torch.zeros(self.k, device=self.dev)  # noqa: E731
        self.loss, self.hits, self.count, self.exact, self.rows, self.n = z(), z(), z(), z(), 0, 0

    def add(self, step: int, loss: torch.Tensor, pred: torch.Tensor, labels: torch.Tensor) -> None:
        """``loss [K]``; ``pred, labels [K, B(, T)]``; ``step`` is 0-based."""
        counted = labels != IGNORE
        self.loss += loss
        self.hits += ((pred == labels) & counted).flatten(1).sum(1)
        self.count += counted.flatten(1).sum(1)
        self.exact += exact_match(pred.flatten(0, 1), labels.flatten(0, 1)).view(self.k, -1).sum(1)
        self.rows += labels.shape[1]
        self.n += 1
        bad = ~torch.isfinite(loss) & (self.first_bad < 0)
        self.first_bad = torch.where(bad, step, self.first_bad)

    def read(self) -> list[dict]:
        """Each replica's means since the last read (training exact match is teacher forced)."""
        loss = (self.loss / max(self.n, 1)).tolist()
        acc = (self.hits / self.count.clamp(min=1)).tolist()
        exact = (self.exact / max(self.rows, 1)).tolist()
        self.reset()
        return [{"train_loss": a, "train_token_acc": b, "train_exact_match": c} for a, b, c in zip(loss, acc, exact)]

    def diverged(self) -> list[int | None]:
        """Per replica: the first 0-based step whose training loss was NaN or infinite, or None."""
        return [None if s < 0 else s for s in self.first_bad.tolist()]


def total_steps(cfg, data: TrainData) -> int:
    """``train.steps``, or ``train.epochs`` passes over a fixed pool."""
    return cfg.train.steps if cfg.train.epochs is None else cfg.train.epochs * data.steps_per_epoch


def _train_data(run: Run) -> TrainData:
    cfg = run.config
    return TrainData(run.task, run.splits, cfg.data.batch_size, cfg.seed, Lengths.from_config(cfg.data))


def _format(run: Run, data: TrainData, step: int):
    cfg = run.config
    ex = data.batch(step).to(run.device)
    masks = None if cfg.data.masking == "answer" else data.generator  # no generator: the answer is masked
    return format_batch(ex, cfg.layout, cfg.data.sep, cfg.data.mask_prob, masks, cfg.data.prompt_loss)


class Stepper(Protocol):
    """The step interface the training loop drives (``loop.fit``): ``SingleStep`` for one run,
    ``ReplicaStep`` for K replicas batched. ``step`` trains on the batch of a 0-based step (only the
    replicas still ``active``) and returns its number of examples; ``load_into`` copies replica
    ``i``'s weights into a model; ``snapshot``/``rollback`` keep and restore the last finite
    weights; ``tensors``/``restore``/``param_order`` are what the checkpoint holds."""

    runs: list[Run]
    k: int
    total: int
    acc: Accumulator

    @property
    def generators(self) -> list[torch.Generator]: ...

    def step(self, step: int, active: torch.Tensor) -> int: ...

    def load_into(self, i: int, model: torch.nn.Module) -> None: ...

    def snapshot(self, indices: list[int]) -> None: ...

    def rollback(self, i: int) -> None: ...

    def tensors(self) -> dict[str, torch.Tensor]: ...

    def restore(self, tensors: dict[str, torch.Tensor]) -> None: ...

    def param_order(self) -> list[str]: ...


class SingleStep:
    """The step of a single run: the model itself, fused AdamW, ``torch.nn.utils.clip_grad_norm_``."""

    k = 1

    def __init__(self, run: Run):
        cfg = run.config
        self.runs, self.cfg = [run], cfg
        self.data = _train_data(run)
        self.total = self.data.total_steps = total_steps(cfg, self.data)
        self.opt = make_optimizer(run.model, cfg.train)
        self.acc = Accumulator(1, run.device)
        self.forward = compile_model(run.model) if cfg.train.compile else run.model
        self.autocast: dict[str, Any] = {"device_type": run.device.type, "dtype": torch.bfloat16,
                                         "enabled": cfg.train.precision == "bf16"}
        self._kept: list[torch.Tensor] = []

    @property
    def generators(self) -> list[torch.Generator]:
        return [self.data.generator]

    def batch(self, step: int):
        """The formatted training ``Batch`` of 0-based ``step``, on the run's device."""
        return _format(self.runs[0], self.data, step)

    def step(self, step: int, active: torch.Tensor | None = None) -> int:
        """Train on the batch of 0-based ``step``; returns its number of examples."""
        cfg, model = self.cfg, self.runs[0].model
        batch = self.batch(step)
        for group in self.opt.param_groups:
            group["lr"] = lr_at(step, self.total, cfg.train)
        with torch.autocast(**self.autocast):
            loss, pred = loss_and_predictions(self.forward, batch)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        self.opt.step()
        self.acc.add(step, loss.detach().float().view(1), pred.unsqueeze(0), batch.labels.unsqueeze(0))
        return len(batch.labels)

    def load_into(self, i: int, model: torch.nn.Module) -> None:
        """The weights are the model's own: nothing to copy."""

    def snapshot(self, indices: list[int]) -> None:
        if indices:
            self._kept = [p.detach().clone() for p in self.runs[0].model.parameters()]

    @torch.no_grad()
    def rollback(self, i: int) -> None:
        for p, kept in zip(self.runs[0].model.parameters(), self._kept):
            p.copy_(kept)

    def tensors(self) -> dict[str, torch.Tensor]:
        model = self.runs[0].model
        out = {f"model.{n}": p.detach().unsqueeze(0) for n, p in model.named_parameters()}
        for n, p in model.named_parameters():
            slots = self.opt.state.get(p)
            if slots:
                out[f"optim.exp_avg.{n}"] = slots["exp_avg"].unsqueeze(0)
                out[f"optim.exp_avg_sq.{n}"] = slots["exp_avg_sq"].unsqueeze(0)
                out[f"optim.step.{n}"] = slots["step"].detach().float().cpu().reshape(1)
        return out

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        model, dev = self.runs[0].model, self.runs[0].device
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(tensors[f"model.{n}"][0])
        opt = self.opt.state_dict()
        order = param_order(model, self.cfg.train)
        opt["state"] = {i: {"step": tensors[f"optim.step.{n}"][0].clone(),
                            "exp_avg": tensors[f"optim.exp_avg.{n}"][0].to(dev),
                            "exp_avg_sq": tensors[f"optim.exp_avg_sq.{n}"][0].to(dev)}
                        for i, n in enumerate(order) if f"optim.step.{n}" in tensors}
        self.opt.load_state_dict(opt)

    def param_order(self) -> list[str]:
        return param_order(self.runs[0].model, self.cfg.train)


class ReplicaStep:
    """The step of K replicas: stacked parameters, one batched forward and backward under
    ``vmap``, per-replica clipping and AdamW (``ReplicaAdamW``)."""

    def __init__(self, runs: list[Run]):
        self.runs = runs
        self.cfgs = [r.config for r in runs]
        base = self.cfgs[0]
        self.k, self.dev = len(runs), runs[0].device
        self.datas = [_train_data(r) for r in runs]
        self.total = total_steps(base, self.datas[0])
        for d in self.datas:
            d.total_steps = self.total
        self.rep = Replicated([r.model for r in runs])
        decay = {name: decays(name, p[0]) for name, p in self.rep.params.items()}
        self.opt = ReplicaAdamW(self.rep.params, decay, (0.9, base.train.beta2), base.train.weight_decay)
        self.acc = Accumulator(self.k, self.dev)
        self._kept: dict[str, torch.Tensor] | None = None

    @property
    def generators(self) -> list[torch.Generator]:
        return [d.generator for d in self.datas]

    def step(self, step: int, active: torch.Tensor) -> int:
        base = self.cfgs[0]
        batch = stack_batches([_format(r, d, step) for r, d in zip(self.runs, self.datas)], base.layout)  # [K, B, ...]
        lr = torch.tensor([lr_at(step, self.total, c.train) for c in self.cfgs], dtype=torch.float64,
                          device=self.dev)  # [K]
        loss, pred = self.rep.loss_and_predictions(batch)  # [K], [K, B(, T)]
        grads = self.rep.gradients(loss)
        if base.train.grad_clip is not None:
            clip_per_replica(grads, base.train.grad_clip)
        self.opt.step(grads, lr, active)
        self.acc.add(step, loss.detach(), pred, batch.labels)
        return batch.labels.shape[0] * batch.labels.shape[1]

    def load_into(self, i: int, model: torch.nn.Module) -> None:
        self.rep.load_into(i, model)

    @torch.no_grad()
    def snapshot(self, indices: list[int]) -> None:
        if self._kept is None:
            self._kept = {n: p.detach().clone() for n, p in self.rep.params.items()}
        elif indices:
            for n, p in self.rep.params.items():
                self._kept[n][indices] = p[indices]

    @torch.no_grad()
    def rollback(self, i: int) -> None:
        assert self._kept is not None, "a snapshot comes before a rollback"
        for n, p in self.rep.params.items():
            p[i] = self._kept[n][i]
            self.opt.exp_avg[n][i] = 0  # it never steps again; its moments may hold NaN
            self.opt.exp_avg_sq[n][i] = 0

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {f"model.{n}": p.detach() for n, p in self.rep.params.items()}
        out.update({f"optim.{n}": t for n, t in self.opt.state_tensors().items()})
        out.update({f"optim.step.{n}": torch.full((self.k,), float(self.opt.steps)) for n in self.rep.params})
        return out

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, p in self.rep.params.items():
                p.copy_(tensors[f"model.{name}"])
        steps = int(tensors[f"optim.step.{next(iter(self.rep.params))}"][0])
        self.opt.load_state_tensors({k[len("optim."):]: v.to(self.dev) for k, v in tensors.items()
                                     if k.startswith("optim.exp_avg")}, steps)

    def param_order(self) -> list[str]:
        return list(self.rep.params)
