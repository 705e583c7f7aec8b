"""The speed paths of ``toyformer.models.kernels`` against PyTorch's own ops, forward + backward.

Each row times one op on the shape of a reference model (R1: 300 rows, 2 heads, 3 keys, head
width 8; R4: 125 rows, 4 heads, 9 keys, head width 16) with ``torch.utils.benchmark`` (median
of blocked runs), both contenders in the same process:

- softmax over short rows: ``kernels.softmax`` against ``Tensor.softmax``;
- dropout: ``kernels.dropout`` against ``F.dropout``;
- attention: each implementation of ``kernels.attend`` (``sdpa``, ``explicit``, ``few_keys``),
  without and with dropout;
- the AdamW update of R4's model: fused (what a run uses) against ``foreach`` and per parameter.

``toyformer bench kernels --markdown docs/results/kernels.md`` writes the committed table.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.utils import benchmark

from toyformer.config import RunConfig
from toyformer.experiments.recipes import r4
from toyformer.models import kernels
from toyformer.run import build

SHAPES = {"R1": (300, 2, 3, 8), "R4": (125, 4, 9, 16)}  # rows, heads, keys, head width


def _time(fn, quick: bool) -> float:
    """Median seconds of ``fn()``."""
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    m = timer.timeit(5) if quick else timer.blocked_autorange(min_run_time=0.5)
    return m.median


def _fwd_bwd(op, *inputs):
    """A closure running ``op(*inputs)`` forward and backward (inputs require grad)."""
    grad = torch.randn_like(op(*inputs).detach())

    def fn():
        y = op(*inputs)
        torch.autograd.grad(y, [x for x in inputs if isinstance(x, torch.Tensor) and x.requires_grad], grad)
    return fn


def _softmax_rows(quick: bool) -> list[dict]:
    rows = []
    for keys in (3, 9, 32):
        x = torch.randn(20_000 // keys * 9, keys, requires_grad=True)
        ours = _time(_fwd_bwd(kernels.softmax, x), quick)
        torch_s = _time(_fwd_bwd(lambda t: t.softmax(-1), x), quick)
        rows.append({"op": f"softmax, rows of {keys}", "shape": list(x.shape), "toyformer_s": ours, "torch_s": torch_s,
                     "path": "whole-tensor" if keys <= kernels.SHORT_ROW else "ATen (above SHORT_ROW)"})
    return rows


def _dropout_rows(quick: bool) -> list[dict]:
    x = torch.randn(125, 9, 64, requires_grad=True)
    ours = _time(_fwd_bwd(lambda t: kernels.dropout(t, 0.01), x), quick)
    torch_s = _time(_fwd_bwd(lambda t: F.dropout(t, 0.01), x), quick)
    return [{"op": "dropout p=0.01", "shape": list(x.shape), "toyformer_s": ours, "torch_s": torch_s,
             "path": "16-bit mask"}]


def _attention_rows(quick: bool) -> list[dict]:
    rows = []
    for name, (b, h, t, dh) in SHAPES.items():
        q, k, v = (torch.randn(b, h, t, dh, requires_grad=True) for _ in range(3))
        mask = torch.ones(b, 1, t, t, dtype=torch.bool).tril()
        for p in (0.0, 0.1):
            def attend(q, k, v, impl, mask=mask, p=p):
                return kernels.attend(q, k, v, mask, p, impl)[0]

            times = {impl: _time(_fwd_bwd(lambda q, k, v, impl=impl: attend(q, k, v, impl), q, k, v), quick)
                     for impl in ("sdpa", "explicit", "few_keys")}
            chosen = kernels.choose("auto", q, k, p, need_weights=False)
            rows.append({"op": f"attention {name}, dropout {p:g}", "shape": [b, h, t, dh], "times_s": times,
                         "auto": chosen})
    return rows


def _optimizer_rows(quick: bool) -> list[dict]:
    cfg = RunConfig.from_dict(r4.ORIGINAL).with_overrides(["eval.val_size=16", "eval.test_size=16"])
    model = build(cfg, "cpu").model
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    times = {}
    variants: dict[str, dict[str, Any]] = {"fused": {"fused": True}, "foreach": {"foreach": True},
                                           "per parameter": {"foreach": False}}  # AdamW's keyword arguments
    for kind, options in variants.items():
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, **options)
        opt.step()  # the moments exist
        times[kind] = _time(opt.step, quick)
    return [{"op": "AdamW step, R4's model", "params": sum(p.numel() for p in model.parameters()), "times_s": times}]


def run(args) -> dict:
    """``toyformer bench kernels [--quick]``: every row above (``--quick``: a few repeats each)."""
    return {"softmax": _softmax_rows(args.quick), "dropout": _dropout_rows(args.quick),
            "attention": _attention_rows(args.quick), "optimizer": _optimizer_rows(args.quick)}


def render(result: dict) -> str:
    us = lambda s: f"{1e6 * s:.0f}"  # noqa: E731
    lines = ["### CPU ops: toyformer's path against PyTorch's (forward + backward, median us)", "",
             "| op | shape | toyformer | PyTorch | speed-up | path |", "|---|---|---|---|---|---|"]
    for r in result["softmax"] + result["dropout"]:
        lines.append(f"| {r['op']} | {r['shape']} | {us(r['toyformer_s'])} | {us(r['torch_s'])} | "
                     f"{r['torch_s'] / r['toyformer_s']:.2f}x | {r['path']} |")
    lines += ["", "### Attention implementations (forward + backward, median us)", "",
              "| case | [B, H, T, dh] | sdpa | explicit | few_keys | auto picks (eager) |", "|---|---|---|---|---|---|"]
    for r in result["attention"]:
        t = r["times_s"]
        lines.append(f"| {r['op']} | {r['shape']} | {us(t['sdpa'])} | {us(t['explicit'])} | {us(t['few_keys'])} | "
                     f"{r['auto']} |")
    lines += ["", "### AdamW update (median us)", "", "| case | parameters | fused | foreach | per parameter |",
              "|---|---|---|---|---|"]
    for r in result["optimizer"]:
        t = r["times_s"]
        lines.append(f"| {r['op']} | {r['params']:,} | {us(t['fused'])} | {us(t['foreach'])} | "
                     f"{us(t['per parameter'])} |")
    return "\n".join(lines)
