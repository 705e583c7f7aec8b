"""Trained ground truths: ordinary toyformer models trained so that a chosen circuit carries the
computation (strict interchange-intervention training, SIIT, as InterpBench: Gupta et al. 2024,
after Geiger et al.'s IIT).

Each *plant* names a task, the heads (with their roles) and MLPs of its circuit, and the edges
between them, and says what the answer becomes when one edge carries the value of another input
(``answer``: the high-level model under an interchange). Every step trains on three losses:

- **behaviour**: the task's answer;
- **interchange**: one edge of the circuit, picked at random, carries its writer's value on
  another input (path patching, ``paths``); the answer must be the high-level model's answer
  under that interchange;
- **strictness**: a random half of the edges outside the circuit (every one a quarter of the
  time) is ablated, by zero, mean or resample at random; the answer must stay the task's.

So the circuit's edges carry what the high-level model says they carry and no other edge
matters, under any of the three ablations: the truth a circuit search is scored against.

========== ========= ======================================================================
plant      layout    circuit (roles)
========== ========= ======================================================================
reverse    tagger    input -> mirror head (values) -> output                       (mirror)
induction  causal    input -> previous-token head (values) -> induction head (keys);
                     input -> induction head (queries, values) -> output  (previous, induction)
neighbours tagger    input -> previous-token head, next-token head (values) -> MLP -> output
                                                                    (previous, offset +1)
========== ========= ======================================================================

>>> model, plant, info = train_plant("reverse", seed=0)           # doctest: +SKIP
>>> info["exact_match"], info["interchange"]                        # doctest: +SKIP
(1.0, 0.99)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from toyformer.config import ModelConfig, TrainConfig
from toyformer.data import IGNORE
from toyformer.errors import ConfigError
from toyformer.explain.data import prepare, score
from toyformer.explain.graph import build_graph
from toyformer.explain.paths import Runner
from toyformer.explain.truth.plants import PLANTS, Plant
from toyformer.inspect.capture import Subject
from toyformer.models import build_model
from toyformer.tasks.base import Examples
from toyformer.training.optim import lr_at, make_optimizer

STEPS, BATCH, LR = 1000, 128, 3e-3


def _ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE)


class Trainer:
    """One plant's model, its graph, and the indices of its circuit's edges."""

    def __init__(self, plant: Plant, seed: int):
        self.plant = plant
        torch.manual_seed(seed)
        cfg = ModelConfig(**plant.model)
        widths = (plant.task.sample(4, torch.Generator().manual_seed(0)).input.shape[1] + 2,) * 2
        self.model = build_model(cfg, plant.layout, plant.task, widths)
        self.subject = Subject(self.model, plant.task, plant.layout, plant.sep)
        self.graph = build_graph(self.model, plant.layout)
        names = [(self.graph.writers[w].name, self.graph.readers[r].name) for w, r in self.graph.edges]
        missing = set(plant.edges) - set(names)
        if missing:
            raise ConfigError(f"plant {plant.name!r} names edges its model does not have: {sorted(missing)}")
        self.truth = [names.index(e) for e in plant.edges]
        self.others = [e for e in range(len(names)) if e not in self.truth]

    def batch(self, n: int, g: torch.Generator):
        base, source = self.plant.task.sample(n, g), self.plant.task.sample(n, g)
        both = prepare(self.subject, Examples.cat([base, source]))
        return base, source, both.rows(slice(0, n)), both.rows(slice(n, None))

    def labels(self, base: Examples, target: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
        """The labels of ``base`` with ``target`` as its answer (rows not ``ok``: ignored)."""
        labels = prepare(self.subject, Examples(base.input, target)).batch.labels
        mask = ok.view(-1, *([1] * (labels.dim() - 1))).to(labels.device)
        return labels.masked_fill(~mask.expand_as(labels), IGNORE)

    def losses(self, g: torch.Generator, n: int) -> torch.Tensor:
        base, source, b, src = self.batch(n, g)
        runner = Runner(self.model, self.graph, b)
        acts = runner.record(src)
        rows = torch.arange(n)
        intact = {p: 0.0 for p in runner.parts}
        loss = _ce(runner.run(intact, train=True), b.batch.labels)
        e = self.truth[int(torch.randint(len(self.truth), (1,), generator=g))]
        target, ok = self.plant.answer(base, source, self.plant.edges[self.truth.index(e)])
        mask = torch.zeros(len(self.graph.edges))
        mask[e] = 1.0
        swapped = runner.ablated("resample", src, rows=rows, acts=acts)
        loss = loss + _ce(runner.run(swapped, edge_mask=mask, train=True), self.labels(base, target, ok))
        method = ("zero", "mean", "resample")[int(torch.randint(3, (1,), generator=g))]
        values = runner.ablated(method, src, rows=rows, acts=acts)
        mask = torch.zeros(len(self.graph.edges))
        every = bool(torch.rand(1, generator=g) < 0.25)
        pick = torch.ones(len(self.others)) if every else (torch.rand(len(self.others), generator=g) < 0.5).float()
        mask[self.others] = pick
        return loss + _ce(runner.run(values, edge_mask=mask, train=True), b.batch.labels)

    def evaluate(self, n: int = 512, seed: int = 1) -> dict:
        """Exact match of the behaviour, of the answers under each interchange (their mean), and
        with every edge outside the circuit ablated (each method)."""
        g = torch.Generator().manual_seed(seed)
        base, source, b, src = self.batch(n, g)
        runner = Runner(self.model, self.graph, b)
        acts = runner.record(src)
        rows = torch.arange(n)
        out = {"exact_match": score(runner.run({p: 0.0 for p in runner.parts}), b.batch.labels)["exact_match"]}
        swapped = runner.ablated("resample", src, rows=rows, acts=acts)
        hits = []
        for i, e in enumerate(self.truth):
            target, ok = self.plant.answer(base, source, self.plant.edges[i])
            mask = torch.zeros(len(self.graph.edges))
            mask[e] = 1.0
            labels = self.labels(base, target, ok)
            logits = runner.run(swapped, edge_mask=mask)
            counted = (labels != IGNORE).reshape(labels.shape[0], -1).any(-1)
            right = ((logits.argmax(-1) == labels) | (labels == IGNORE)).reshape(labels.shape[0], -1).all(-1)
            hits.append(float(right[counted].float().mean()))
        out["interchange"] = sum(hits) / len(hits)
        mask = torch.zeros(len(self.graph.edges))
        mask[self.others] = 1.0
        for method in ("zero", "mean", "resample"):
            values = runner.ablated(method, src, rows=rows, acts=acts)
            out[f"circuit_only_{method}"] = score(runner.run(values, edge_mask=mask), b.batch.labels)["exact_match"]
        return out


def train_plant(name: str, seed: int = 0, steps: int = STEPS, batch: int = BATCH, lr: float = LR, on_step=None):
    """``(model, plant, info)``: plant ``name`` trained for ``steps`` steps by SIIT; ``info`` has
    the exact match of its behaviour, under interchanges, and of its circuit alone;
    ``on_step(step, loss)`` is called after every step."""
    if name not in PLANTS:
        raise ConfigError(f"unknown plant {name!r}; valid: {', '.join(PLANTS)}")
    plant = PLANTS[name]()
    t = Trainer(plant, seed)
    cfg = TrainConfig(lr=lr, warmup_steps=min(100, steps // 10), steps=steps, weight_decay=0.01)
    opt = make_optimizer(t.model, cfg)
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, cfg)
        opt.zero_grad(set_to_none=True)
        loss = t.losses(g, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(t.model.parameters(), 1.0)
        opt.step()
        if on_step is not None:
            on_step(step, float(loss.detach()))
    t.model.eval()
    return t.model, plant, t.evaluate()
