"""Linear probes: which quantities the residual stream holds, layer by layer.

For each stream (encoder, decoder) the residual after each layer (layer 0: the embeddings, the
input of the first block; layer ``i``: the output of block ``i - 1``) is read at every position
of held-out examples, and a linear classifier (multinomial logistic regression, L-BFGS on
standardised features) is fitted to predict a quantity from it. The examples are split in two
(by example, never by position): the probe learns on one half and is scored on the other, so the
accuracy is held-out. The targets, per position (``TARGETS``):

- ``position``: its index from the first real token;
- ``token``: the input token there;
- ``previous_token``: the input token before it (what a previous-token head copies, and what
  tells ``(i, j)`` from ``(j, i)`` without positional encoding: R1);
- ``mirror_token``: the input token at the mirrored position (``L-1-j`` for the position that
  produces answer token ``j``, or that reads input token ``j``): what a reversal must fetch;
- ``answer``: the answer token produced there (the classifier's class at every position).

``chance`` is the held-out accuracy of always guessing the most frequent training value. A
quantity is *readable* at a layer when the probe reaches ``READABLE`` there.

>>> rows = probe("runs/r1-2layers")                                                   # doctest: +SKIP
>>> [(r["layer"], round(r["accuracy"], 2)) for r in rows if r["target"] == "position"]  # doctest: +SKIP
[(0, 0.67), (1, 1.0), (2, 1.0)]
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from toyformer.errors import ConfigError
from toyformer.explain.data import Frame, Inputs, cached, held_out, prepare, stream_names
from toyformer.inspect.capture import subject

READABLE = 0.9
IGNORE_TARGET = -1  # no target at this position
MAX_SAMPLES = 8192  # positions per half


def _position(frame: Frame, inp: Inputs) -> torch.Tensor:
    return frame.col.masked_fill(~frame.valid, IGNORE_TARGET)


def _token(frame: Frame, inp: Inputs) -> torch.Tensor:
    return frame.tokens.masked_fill(frame.input_index < 0, IGNORE_TARGET)


def _mirror_token(frame: Frame, inp: Inputs) -> torch.Tensor:
    j = torch.where(frame.answer_index >= 0, frame.answer_index, frame.input_index)  # [B, T]
    src = inp.input_len[:, None] - 1 - j
    ok = (j >= 0) & (src >= 0) & (src < inp.input_len[:, None])
    x = inp.examples.input.to(j.device)
    return x.gather(1, src.clamp(0, x.shape[1] - 1)).masked_fill(~ok, IGNORE_TARGET)


def _previous_token(frame: Frame, inp: Inputs) -> torch.Tensor:
    i = frame.input_index
    x = inp.examples.input.to(i.device)
    ok = i >= 1
    return x.gather(1, (i - 1).clamp(0, x.shape[1] - 1)).masked_fill(~ok, IGNORE_TARGET)


def _answer(frame: Frame, inp: Inputs) -> torch.Tensor:
    return frame.labels.masked_fill(frame.labels < 0, IGNORE_TARGET)


TARGETS: dict[str, Callable[[Frame, Inputs], torch.Tensor]] = {
    "position": _position, "token": _token, "previous_token": _previous_token, "mirror_token": _mirror_token,
    "answer": _answer,
}


def fit_probe(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, iters: int = 100,
              l2: float = 1e-4) -> torch.Tensor:
    """Fit multinomial logistic regression on ``x_train [N, d]``, ``y_train [N]`` (class ids
    ``0..C-1``); return its predictions for ``x_test [M, d]``.

    >>> x = torch.eye(4).repeat(10, 1)                   # one-hot positions 0..3
    >>> y = torch.arange(4).repeat(10)
    >>> fit_probe(x, y, torch.eye(4)).tolist()
    [0, 1, 2, 3]
    """
    x_train, x_test = x_train.double(), x_test.double()
    mu, sd = x_train.mean(0), x_train.std(0).clamp_min(1e-6)
    xs, xt = (x_train - mu) / sd, (x_test - mu) / sd
    c = int(y_train.max()) + 1
    w = torch.zeros(xs.shape[1], c, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(c, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=iters, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xs @ w + b, y_train) + l2 * w.pow(2).sum()
        loss.backward()
        return loss

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # hundreds of tiny steps: threads cost more than they give (and wait on a busy machine)
    try:
        with torch.enable_grad():
            opt.step(closure)
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        return (xt @ w + b).argmax(-1)


def layer_names(model, stream: str) -> list[str]:
    """The residual of ``stream`` after each layer: ``[blocks.0.resid_pre, blocks.0.resid_post, ...]``."""
    stack = (model.decoder if stream == "decoder" else model.encoder).stack
    return [f"{stream}.blocks.0.resid_pre"] + [f"{stream}.blocks.{i}.resid_post" for i in range(len(stack.blocks))]


def probe(source, targets=None, n: int = 512, seed: int = 0, inputs=None, iters: int = 100) -> list[dict]:
    """Probe every layer of every stream of ``source`` (a Run or a run directory) for
    ``targets`` (default all of ``TARGETS``) on ``n`` held-out examples (validation and test).

    One row per stream, layer and target: ``accuracy`` (held-out), ``chance``, ``n_train`` /
    ``n_test`` (positions) and ``by_position`` (held-out accuracy per position index).
    """
    targets = list(TARGETS) if targets is None else ([targets] if isinstance(targets, str) else list(targets))
    for t in targets:
        if t not in TARGETS:
            raise ConfigError(f"unknown probe target {t!r}; valid: {', '.join(TARGETS)}")
    s = subject(source)
    if inputs is None:
        from toyformer.tasks.base import Examples

        splits = s.run.splits if s.run is not None else None
        same = splits is not None and splits.val is splits.test  # tasks without holdout: both are the domain
        inputs = held_out(s, n) if same else Examples.cat([held_out(s, n // 2, "val"), held_out(s, n - n // 2)])
    inp = prepare(s, inputs)
    g = torch.Generator().manual_seed(seed)
    half = torch.randperm(len(inp), generator=g) < (len(inp) + 1) // 2  # [B] rows the probe learns on
    rows = []
    for stream in stream_names(s.layout):
        names = layer_names(s.model, stream)
        _, acts = cached(s.model, inp, names)
        frame = inp.frames[stream]
        for target in targets:
            y = TARGETS[target](frame, inp).cpu()  # [B, T]
            for layer, name in enumerate(names):
                rows.append(_probe_one(acts[name].cpu(), y, frame.col.cpu(), half, stream, layer, target, g, iters))
    return [r for r in rows if r is not None]


def _probe_one(x, y, col, half, stream, layer, target, g, iters) -> dict | None:
    has = y != IGNORE_TARGET  # [B, T]
    train = has & half[:, None]
    test = has & ~half[:, None]
    if train.sum() < 2 or test.sum() < 1:
        return None
    xs, ys, xt, yt, ct = x[train], y[train], x[test], y[test], col[test]
    if len(ys) > MAX_SAMPLES:
        keep = torch.randperm(len(ys), generator=g)[:MAX_SAMPLES]
        xs, ys = xs[keep], ys[keep]
    if len(yt) > MAX_SAMPLES:
        keep = torch.randperm(len(yt), generator=g)[:MAX_SAMPLES]
        xt, yt, ct = xt[keep], yt[keep], ct[keep]
    classes, ys_ids = ys.unique(return_inverse=True)
    if len(classes) == 1:
        pred = classes.expand(len(yt))
    else:
        pred = classes[fit_probe(xs.float(), ys_ids, xt.float(), iters)]
    right = pred == yt
    majority = classes[ys_ids.bincount().argmax()]
    by_pos = {}
    for p in ct.unique().tolist():
        at = ct == p
        by_pos[int(p)] = right[at].float().mean().item()
    return {"stream": stream, "layer": layer, "target": target, "accuracy": right.float().mean().item(),
            "chance": (yt == majority).float().mean().item(), "n_train": len(ys), "n_test": len(yt),
            "by_position": by_pos}


def readable_from(rows: list[dict], stream: str, target: str, level: float = READABLE) -> int | None:
    """The first layer from which on ``target`` stays readable (accuracy >= ``level``), or None."""
    mine = sorted((r for r in rows if r["stream"] == stream and r["target"] == target), key=lambda r: r["layer"])
    first = None
    for r in mine:
        if r["accuracy"] >= level:
            first = r["layer"] if first is None else first
        else:
            first = None
    return first
