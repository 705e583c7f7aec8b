"""Optimisation: the learning-rate schedule, AdamW for one model, and AdamW with clipping for
stacked replica parameters ``[K, *shape]``.

A single run uses ``torch.optim.AdamW`` with the fused kernel (one kernel per parameter group
rather than a dozen small ops per parameter). Replicas need what is per replica: the learning
rate (a vector ``[K]``: each replica's own schedule, or a swept ``train.lr``), which replicas
still train (``active [K]``: a replica that reached its target is frozen exactly where a single
run would have stopped), and the gradient norm that clipping scales by. ``ReplicaAdamW``
computes ``torch.optim.AdamW``'s update (single-tensor path) in the same order; the fused kernel
rounds its own way, so a replica follows its single run up to rounding.

>>> lr_at(0, total=100, cfg=TrainConfig(lr=1e-3, warmup_steps=10))   # doctest: +SKIP
0.0001
>>> opt = ReplicaAdamW(rep.params, decay={"head.weight": True, ...}, betas=(0.9, 0.999),  # doctest: +SKIP
...                    weight_decay=0.01)
>>> clip_per_replica(grads, max_norm=1.0)                           # doctest: +SKIP
>>> opt.step(grads, lr=torch.tensor([1e-3, 3e-3]), active=torch.tensor([True, False]))  # doctest: +SKIP
"""

from __future__ import annotations

import math

import torch


def lr_at(step: int, total: int, cfg) -> float:
    """Learning rate at 0-based ``step``: linear warm-up, then constant, linear or cosine decay."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    shape = 1 - progress if cfg.schedule == "linear" else 0.5 * (1 + math.cos(math.pi * progress))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * shape)


def decays(name: str, param: torch.Tensor) -> bool:
    """Whether AdamW decays this parameter: matrices only (not biases, norms or embeddings)."""
    return param.dim() >= 2 and "embed" not in name


def make_optimizer(model: torch.nn.Module, cfg) -> torch.optim.AdamW:
    """Fused AdamW; weight decay on matrices only (not on biases, norms or embeddings)."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        (decay if decays(name, p) or not cfg.weight_decay else no_decay).append(p)
    # without weight decay every parameter is in one group: one fused update instead of two
    groups = [g for g in ({"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay,
                                                                                "weight_decay": 0.0})
              if g["params"]]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, cfg.beta2), fused=True)


def param_order(model: torch.nn.Module, cfg) -> list[str]:
    """Parameter names in the order ``make_optimizer`` numbers them (its state's indices)."""
    decay = [n for n, p in model.named_parameters() if decays(n, p) or not cfg.weight_decay]
    return decay + [n for n, _ in model.named_parameters() if n not in set(decay)]


def clip_per_replica(grads: dict[str, torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale each replica's gradients so that their global 2-norm (over its slice of every
    parameter) is at most ``max_norm``, as ``clip_grad_norm_`` does for one model. In place;
    returns the norms before clipping ``[K]``."""
    per_param = [g.flatten(1).norm(dim=1) for g in grads.values()]  # each [K]
    total = torch.stack(per_param, 1).norm(dim=1)  # [K]
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)  # [K]
    for g in grads.values():
        g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))
    return total


class ReplicaAdamW:
    """AdamW (``torch.optim.AdamW``'s update, eps 1e-8) on stacked parameters with per-replica
    learning rates; ``decay[name]``: whether weight decay applies to that parameter."""

    def __init__(self, params: dict[str, torch.Tensor], decay: dict[str, bool], betas: tuple[float, float],
                 weight_decay: float, eps: float = 1e-8):
        self.params, self.decay = params, decay
        self.betas, self.weight_decay, self.eps = betas, weight_decay, eps
        self.steps = 0
        self.exp_avg = {n: torch.zeros_like(p) for n, p in params.items()}
        self.exp_avg_sq = {n: torch.zeros_like(p) for n, p in params.items()}

    @torch.no_grad()
    def step(self, grads: dict[str, torch.Tensor], lr: torch.Tensor, active: torch.Tensor) -> None:
        """One update with learning rates ``lr [K]`` (float64); replicas where ``active [K]`` is
        False keep their parameters unchanged."""
        beta1, beta2 = self.betas
        self.steps += 1
        bias1, bias2_sqrt = 1 - beta1**self.steps, (1 - beta2**self.steps) ** 0.5  # as torch.optim.AdamW
        step_size = (lr / bias1).float()  # [K]
        shrink = (1 - lr * self.weight_decay).float()  # [K]
        for name, p in self.params.items():
            g = grads[name]
            view = (-1, *[1] * (p.dim() - 1))
            new = p * shrink.view(view) if self.decay[name] and self.weight_decay else p.clone()
            self.exp_avg[name].lerp_(g, 1 - beta1)
            self.exp_avg_sq[name].mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (self.exp_avg_sq[name].sqrt() / bias2_sqrt).add_(self.eps)
            new.sub_(step_size.view(view) * self.exp_avg[name] / denom)
            p.copy_(torch.where(active.view(view), new, p))

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The moments as named tensors (checkpoints); ``steps`` is kept by the caller."""
        return {**{f"exp_avg.{n}": t for n, t in self.exp_avg.items()},
                **{f"exp_avg_sq.{n}": t for n, t in self.exp_avg_sq.items()}}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], steps: int) -> None:
        for name in self.params:
            self.exp_avg[name].copy_(tensors[f"exp_avg.{name}"])
            self.exp_avg_sq[name].copy_(tensors[f"exp_avg_sq.{name}"])
        self.steps = steps
