"""Phase changes in training, and the Fourier account of modular addition.

**Phases** (from the run's metrics log). *Memorisation*: training exact match at least
``MEMORISED`` while validation is at least ``GAP`` below it, at two evaluations in a row (the
first of them is the step). *Generalisation*: the first evaluation with validation exact match at
least ``GENERALISED``. A run *grokked* when it memorised first and generalised later (Power et
al. 2022); a run whose training and validation accuracy rose together is not called grokked.

**Fourier** (``modular_arithmetic`` with ``+`` or ``-``; Nanda et al. 2023). The token
embeddings of the numbers ``0 .. p-1`` are transformed along the token axis; the energy of each
frequency ``k = 1 .. p//2`` (cos and sin together) is its share of the non-constant energy, and
the *key frequencies* are those with at least ``KEY_SHARE`` times the share of a flat spectrum.
On the model's logits over the whole table ``(a, b)``, the directions ``cos(w_k (a ± b))`` and
``sin(w_k (a ± b))`` of the key frequencies are what the algorithm of Nanda et al. uses:
*restricted loss* keeps only them (and each answer's constant), over every pair; *excluded
loss* removes them, over the training pairs. A model that computes with those frequencies has
a low restricted loss and a high excluded loss.

>>> phases([{"step": 100, "train_exact_match": 1.0, "val_exact_match": 0.1},
...         {"step": 200, "train_exact_match": 1.0, "val_exact_match": 0.2},
...         {"step": 300, "train_exact_match": 1.0, "val_exact_match": 0.95}])["grokked"]
True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from toyformer.data import format_batch

MEMORISED, GAP, GENERALISED = 0.9, 0.5, 0.9
KEY_SHARE = 1.5


def phases(metrics: list[dict], metric: str = "exact_match") -> dict:
    """Memorisation and generalisation steps of a metrics log (see the module docstring), with
    the numbers that decided them."""
    rows = [r for r in metrics if r.get(f"train_{metric}") is not None and r.get(f"val_{metric}") is not None]
    memorised = generalised = None
    for prev, cur in zip(rows, rows[1:]):
        if memorised is None and all(_gap(r, metric) for r in (prev, cur)):
            memorised = prev
    for r in rows:
        if r[f"val_{metric}"] >= GENERALISED:
            generalised = r
            break
    if memorised is not None and generalised is not None and generalised["step"] <= memorised["step"]:
        memorised = None  # validation was already there: no memorisation phase before it
    widest = max(rows, key=lambda r: r[f"train_{metric}"] - r[f"val_{metric}"], default=None)

    def pick(r):
        return None if r is None else {"step": r["step"], "train": r[f"train_{metric}"], "val": r[f"val_{metric}"]}

    return {"metric": metric, "evaluations": len(rows), "memorised": pick(memorised), "generalised": pick(generalised),
            "grokked": memorised is not None and generalised is not None, "widest_gap": pick(widest),
            "thresholds": {"memorised": MEMORISED, "gap": GAP, "generalised": GENERALISED}}


def _gap(r: dict, metric: str) -> bool:
    return r[f"train_{metric}"] >= MEMORISED and r[f"val_{metric}"] <= r[f"train_{metric}"] - GAP


def applies(run) -> bool:
    task = run.task
    return getattr(task, "name", None) == "modular_arithmetic" and task.op in ("+", "-")


def fourier_basis(p: int) -> torch.Tensor:
    """``[p, p]`` orthonormal rows over ``x = 0..p-1``: constant, then cos and sin of ``2 pi k x / p``
    for ``k = 1 .. p//2`` (for even ``p`` the last row is the alternating sign)."""
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, p // 2 + 1):
        rows.append(torch.cos(2 * math.pi * k * x / p))
        if not (p % 2 == 0 and k == p // 2):
            rows.append(torch.sin(2 * math.pi * k * x / p))
    basis = torch.stack(rows)
    return basis / basis.norm(dim=1, keepdim=True)


def spectrum(embedding: torch.Tensor) -> list[float]:
    """Share of the non-constant energy of ``embedding [p, d]`` per frequency ``1 .. p//2``."""
    p = embedding.shape[0]
    coeff = fourier_basis(p) @ embedding.double()  # [p, d]
    energy = coeff.pow(2).sum(1)[1:]  # without the constant
    per_freq = [energy[0::2][k] + (energy[1::2][k] if k < len(energy[1::2]) else 0) for k in range(p // 2)]
    total = float(sum(per_freq)) or 1.0
    return [float(e) / total for e in per_freq]


def key_frequencies(shares: list[float]) -> list[int]:
    """Frequencies (1-based) with at least ``KEY_SHARE`` times a flat spectrum's share."""
    flat = 1.0 / len(shares)
    return [k + 1 for k, s in enumerate(shares) if s >= KEY_SHARE * flat]


def _number_embedding(run) -> torch.Tensor:
    model, vocab, p = run.model, run.task.vocab, run.task.modulus
    embed = (model.decoder if run.config.layout == "causal" else model.encoder).embed
    ids = torch.tensor([vocab.id(str(i)) for i in range(p)], device=embed.tok.weight.device)
    return embed.tok.weight[ids].detach().cpu()


@torch.no_grad()
def fourier(run) -> dict | None:
    """The Fourier account of a ``modular_arithmetic`` run (``+`` or ``-``); None for other tasks."""
    if not applies(run):
        return None
    shares = spectrum(_number_embedding(run))
    keys = key_frequencies(shares)
    task, p = run.task, run.task.modulus
    dom = task.domain()
    a = dom.input[:, 0] - task.vocab.id("0")
    b = dom.input[:, 2] - task.vocab.id("0")
    was = run.model.training
    run.model.eval()
    logits = _answer_logits(run, dom).double().cpu()  # [p*p, V]
    run.model.train(was)
    labels = dom.target[:, 0]
    s = (a + b) if task.op == "+" else (a - b)
    dirs = []
    for k in keys:
        for f in (torch.cos, torch.sin):
            v = f(2 * math.pi * k * s.double() / p)
            dirs.append(v / v.norm())
    proj = torch.zeros_like(logits)
    for v in dirs:
        proj += v[:, None] * (v @ logits)[None, :]
    restricted = logits.mean(0, keepdim=True) + proj
    train = _train_rows(run, dom)
    loss = lambda z, rows: F.cross_entropy(z[rows], labels[rows]).item()  # noqa: E731
    every = torch.ones(len(labels), dtype=torch.bool)
    return {"modulus": p, "op": task.op, "shares": shares, "key_frequencies": keys,
            "key_share": sum(shares[k - 1] for k in keys), "loss": loss(logits, every),
            "restricted_loss": loss(restricted, every), "excluded_loss": loss(logits - proj, train),
            "train_pairs": int(train.sum()), "chance_loss": math.log(p)}


def _answer_logits(run, ex) -> torch.Tensor:
    cfg = run.config
    batch = format_batch(ex.to(run.device), cfg.layout, cfg.data.sep)
    logits = run.model(batch)
    if logits.dim() == 2:
        return logits
    return logits[:, batch.prompt_len - 1] if cfg.layout == "causal" else logits[:, 0]


def _train_rows(run, dom) -> torch.Tensor:
    """Which rows of the domain the run trained on (its pool; every row when it had none)."""
    from toyformer.data.splits import input_keys

    pool = run.splits.pool
    if pool is None:
        return torch.ones(len(dom), dtype=torch.bool)
    return torch.isin(input_keys(dom.input), input_keys(pool.input))
