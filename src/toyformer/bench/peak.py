"""The machine's matrix-multiply peak: the best GFLOP/s of a large square float32 matmul.

A ``n x n`` by ``n x n`` product costs ``2 n^3`` floating-point operations. The best of a few
repeats (after one warm-up) is the peak that a model's achieved FLOP/s is compared with; it runs
at the current ``torch.get_num_threads()``, the same thread count the model trains with.

>>> peak_gflops(n=256, repeats=2)["gflops"] > 0
True
"""

from __future__ import annotations

import time

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gflops(n: int = 2048, repeats: int = 5, device: str | torch.device = "cpu",
                dtype: torch.dtype = torch.float32) -> dict:
    """Best GFLOP/s of ``repeats`` timed ``[n, n] @ [n, n]`` products on ``device``.

    Returns ``{"gflops", "n", "repeats", "dtype", "device", "threads", "all_gflops"}``.
    """
    device = torch.device(device)
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g, dtype=torch.float32).to(device, dtype)
    b = torch.randn(n, n, generator=g, dtype=torch.float32).to(device, dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up: threads, caches, kernel selection
    _sync(device)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        _sync(device)
        rates.append(2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return {"gflops": max(rates), "n": n, "repeats": repeats, "dtype": str(dtype).removeprefix("torch."),
            "device": str(device), "threads": torch.get_num_threads(), "all_gflops": rates}


def run(args) -> dict:
    """``python -m benchmarks peak``: float32 and bfloat16 peaks on ``args.device``."""
    n, repeats = (256, 2) if args.quick else (4096, 5)
    return {"float32": peak_gflops(n, repeats, args.device), "bfloat16": peak_gflops(n, repeats, args.device,
                                                                                     torch.bfloat16)}


def render(result: dict) -> str:
    rows = [f"| {k} | {r['n']} | {r['threads']} | {r['gflops']:.1f} |" for k, r in result.items() if k != "wall_s"]
    return "\n".join(["### Matrix-multiply peak", "", "| dtype | n | threads | GFLOP/s (best) |", "|---|---|---|---|",
                      *rows])
