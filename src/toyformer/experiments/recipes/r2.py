"""R2 reverse a sequence: the reported 8-row table (length N x vocabulary M) as described and
improved side by side, token accuracy and exact match per row, an attention map per row."""

from __future__ import annotations

from typing import Any

import torch

from toyformer.inspect.capture import attention
from toyformer.eval.lengths import evaluate_lengths
from toyformer.inspect.plots import plot_run
from toyformer.experiments.recipes.base import Context, RecipeResult, Table, exact, solved

ROWS = [(100, 10), (100, 20), (200, 10), (200, 20), (500, 10), (500, 20), (1000, 10), (1000, 20)]
REPORTED = {(100, 10): 1.0, (100, 20): 1.0, (200, 10): 0.8527, (200, 20): 0.4870, (500, 10): 0.1003,
            (500, 20): 0.0501, (1000, 10): 0.1000, (1000, 20): 0.0501}
FULL_STEPS = 7813  # 20 epochs of 50,000 samples in batches of 128

# As described (reconstructed): one-hot input + linear projection (an embedding), sinusoidal
# encoding, one post-LN encoder block with one head (d 32), a small MLP head; Adam 5e-4 with
# 50 warm-up steps and cosine decay, clipping 5; 50,000 training samples, 1,000 validation,
# 10,000 test; batch 128; 20 epochs. On this CPU a row is capped at ``budget_s`` seconds.
ORIGINAL = {
    "layout": "tagger",
    "model": {"d_model": 32, "n_heads": 1, "n_layers": 1, "d_ff": 128, "norm": "post", "positional": "sinusoidal",
              "head_hidden": [64], "dropout": 0.0, "init": "torch"},
    "data": {"batch_size": 128, "train_size": 50_000},
    "train": {"epochs": 20, "lr": 5e-4, "warmup_steps": 50, "schedule": "cosine", "min_lr_ratio": 0.0,
              "weight_decay": 0.0, "beta2": 0.999, "grad_clip": 5.0},
    "eval": {"every": 200, "val_size": 1_000, "test_size": 10_000, "target": None},
}
# Improved: pre-norm, d_model 64 with two heads, fresh samples, lr 2e-3 with warm-up, and the two
# changes that make long rows learnable: positions counted from both ends (the rule "position i
# reads the token i places from the end" is then the same at every length) and a length curriculum
# (batches of lengths 1..top, top growing to N over the first half of the steps), so the rule is
# found on short sequences, where attention has few keys to choose from, and carries over to N.
# Validation holds every length 1..N; training stops once all of it is reversed perfectly.
IMPROVED: dict[str, Any] = {
    "layout": "tagger",
    "model": {"d_model": 64, "n_heads": 2, "n_layers": 1, "d_ff": 128, "norm": "pre", "positional": "sinusoidal",
              "positions_from": "both"},
    "data": {"batch_size": 32, "min_length": 1, "length_sampling": "curriculum"},
    "train": {"lr": 2e-3, "warmup_steps": 100},
    "eval": {"every": 100, "val_size": 1_000, "test_size": 1_000, "target": 1.0, "target_metric": "token_acc",
             "batch_size": 100},
}
# Ablation at one row, each run under the improved run's step budget (and at most 240 s):
# name -> (length curriculum?, positions counted from). "start, fixed length" is toyformer's
# previous improved configuration.
ABLATION_ROW = (200, 10)
ABLATION = {
    "start, fixed length": (False, "start"),
    "both ends, fixed length": (False, "both"),
    "start, length curriculum": (True, "start"),
}
N_TEST = 10_000  # fresh length-N sequences per row for the improved column
ROW_TARGET = 0.999  # test token accuracy at which a row counts as solved


def improved_steps(n: int) -> int:
    """Step budget of the improved run for length ``n``: the curriculum reaches n at half of it."""
    return max(1_500, 3 * n)


def improved_config(n: int, m: int) -> dict:
    """The improved configuration of row (N, M), as nested plain data."""
    return {**IMPROVED, "task": {"name": "reverse", "length": n, "vocab_size": m},
            "data": {**IMPROVED["data"], "max_length": n}, "train": {**IMPROVED["train"], "steps": improved_steps(n)}}


def _improved(ctx: Context, n: int, m: int):
    run = ctx.train(f"improved_N{n}_M{m}", ctx.config(improved_config(n, m), {"train.max_time_s": 2}))
    at_n = evaluate_lengths(run, [n], 64 if ctx.quick else N_TEST)["rows"][0]
    return run, at_n


def _attention_figure(ctx: Context, run, n: int, m: int) -> tuple[str, float]:
    """The attention map of the improved run on one fresh length-``n`` sequence, and the mean
    weight its best head puts on the mirrored key (position i on N-1-i)."""
    ex = run.task.sample(1, torch.Generator().manual_seed(n + m), length=n)
    text = run.task.vocab.decode(ex.input[0])
    fig = f"r2_attention_N{n}_M{m}.png"
    plot_run(ctx.out / "runs" / f"improved_N{n}_M{m}", "attention", input_text=text, out=ctx.out / fig)
    weights = next(iter(attention(run, ex.input).weights.values()))[0]  # [H, N, N]: the one layer
    return fig, mirror_share(weights)


def mirror_share(weights: torch.Tensor) -> float:
    """``[H, N, N]`` attention weights -> the mean weight that query i puts on key N-1-i, for the
    head that puts the most there (1.0: a perfect anti-diagonal; 1/N: uniform attention)."""
    n = weights.shape[-1]
    i = torch.arange(n)
    return weights[:, i, n - 1 - i].mean(-1).max().item()


def _ablation(ctx: Context, res: RecipeResult, full: dict, n: int, m: int) -> dict:
    rows, numbers = [], {}
    for name, (curriculum, ends) in ABLATION.items():
        data = improved_config(n, m)
        data.update(model={**data["model"], "positions_from": ends}, train={**data["train"], "max_time_s": 240})
        if not curriculum:  # every batch of length N
            data["data"] = {"batch_size": data["data"]["batch_size"]}
        cfg = ctx.config(data, {"train.max_time_s": 2})
        s = ctx.train(f"ablation_N{n}_M{m}_{name.replace(' ', '_').replace(',', '')}", cfg).summary
        rows.append([name, s["test_token_acc"], s["solved_at_step"], s["steps"], s["wall_s"]])
        numbers[name] = {k: s[k] for k in ("test_token_acc", "solved_at_step", "steps", "wall_s")}
    rows.append(["both ends + length curriculum (improved)", full["token_acc"], full["solved_at_step"],
                 full["steps"], full["wall_s"]])
    res.tables.append(Table(
        f"Ablation: one change at a time (N={n}, M={m}; each run at most {improved_steps(n)} steps or 240 s)",
        ["configuration", "test token acc", "solved at step", "steps", "wall s"], rows,
        note="Fixed-length runs train and test on length N only; curriculum runs train on lengths 1..N and "
             "stop once validation token accuracy is 1.0 over every length 1..N; their test token accuracy is over "
             "lengths 1..N, the improved row's over fresh length-N sequences."))
    return numbers


def run(ctx: Context, budget_s: float = 240.0) -> RecipeResult:
    res = RecipeResult("r2", "R2: reverse a sequence (encoder tagger), scaling length and vocabulary")
    rows = []
    numbers: dict[str, dict[str, Any]] = {}
    quick = {"data.train_size": 64, "train.epochs": 1, "eval.val_size": 8, "eval.test_size": 16}
    for n, m in (ROWS[:2] if ctx.quick else ROWS):
        task = {"name": "reverse", "length": n, "vocab_size": m}
        orig_cfg = ctx.config({**ORIGINAL, "task": task}, quick)
        orig_cfg = orig_cfg.with_overrides([f"train.max_time_s={2 if ctx.quick else budget_s}"])
        orig = ctx.train(f"as_described_N{n}_M{m}", orig_cfg).summary
        better, at_n = _improved(ctx, n, m)
        b = better.summary
        fig, mirror = _attention_figure(ctx, better, n, m)
        res.figures.append(fig)
        short = "" if orig["steps"] >= FULL_STEPS else f" ({orig['steps']}/{FULL_STEPS} steps)"
        rows.append([n, m, REPORTED[(n, m)], orig["test_token_acc"], exact(orig["test_exact_match"],
                                                                           orig.get("test_n")),
                     f"{orig['wall_s']:.0f}{short}", at_n["token_acc"], exact(at_n["exact_match"], at_n["n"]),
                     b["solved_at_step"], b["wall_s"], mirror])
        numbers[f"N{n}_M{m}"] = {
            "reported": REPORTED[(n, m)],
            "as_described": {k: orig[k] for k in ("test_token_acc", "test_exact_match", "steps", "wall_s")},
            "improved": {"token_acc": at_n["token_acc"], "exact_match": at_n["exact_match"], "n_test": at_n["n"],
                         "mirror_attention": mirror,
                         **{k: b[k] for k in ("steps", "wall_s", "solved_at_step")}},
        }
    n_test = at_n["n"]
    res.tables.append(Table(
        "Test token accuracy as described and improved",
        ["N", "M", "reported", "as described", "exact (n, 95% CI)", "wall s (steps if shortened)", "improved",
         "exact (n, 95% CI)",
         "solved at step", "improved wall s", "attention on N-1-i"], rows,
        note=f"As described = 20 epochs of 50,000 samples ({FULL_STEPS} steps), capped at "
             f"{orig_cfg.train.max_time_s:g} s per row on this CPU, tested on its {orig['test_n']:,} test sequences: a "
             "row that shows its steps was shortened. Improved = "
             "pre-norm, d_model 64, 2 heads, positions from both ends, lengths 1..N in a growing curriculum, lr 2e-3, "
             f"stopping once validation token accuracy is 1.0 (every length 1..N); tested on {n_test:,} fresh length-N "
             "sequences. "
             "Attention on N-1-i: the mean weight that position i puts on the mirrored position N-1-i, best head, "
             "on the sequence of the row's figure."))
    res.findings += findings(numbers)
    n, m = ROWS[0] if ctx.quick else ABLATION_ROW
    full = numbers[f"N{n}_M{m}"]["improved"]
    numbers["ablation"] = _ablation(ctx, res, full, n, m)
    res.findings.append(ablation_finding(numbers["ablation"], full, n, m))
    res.numbers = numbers
    return res


def findings(numbers: dict) -> list[str]:
    """The rows' findings, from ``numbers["N<n>_M<m>"]["improved"]`` (``token_acc``, ``mirror_attention``)."""
    rows = {key: r["improved"] for key, r in numbers.items() if key.startswith("N")}
    worst_key = min(rows, key=lambda k: rows[k]["token_acc"])
    worst = rows[worst_key]["token_acc"]
    if worst >= ROW_TARGET:
        first = (f"Improved: every row reaches at least {ROW_TARGET:.1%} test token accuracy (lowest {worst:.4f}, "
                 f"{worst_key}): the task is learnable at every length and vocabulary size tried.")
    else:
        below = [k for k, r in rows.items() if r["token_acc"] < ROW_TARGET]
        first = (f"Improved: {len(below)} of {len(rows)} rows are below {ROW_TARGET:.1%} test token accuracy "
                 f"(lowest {worst:.4f}, {worst_key}); not solved at: {', '.join(below)}.")
    mirror = min(r["mirror_attention"] for r in rows.values())
    second = (f"Each improved model's best head puts at least {mirror:.3f} of position i's attention on the mirrored "
              "position N-1-i" + (": the attention maps below show the anti-diagonal." if mirror >= 0.5
                                  else " (uniform attention would put 1/N)."))
    return [first, second]


def ablation_finding(ablation: dict, full: dict, n: int, m: int) -> str:
    """The ablation row's finding: each run's numbers, and the explanation only when the measurements
    show that the two changes together learn and neither alone does."""
    def done(acc, step) -> bool:
        return solved(acc, ROW_TARGET, step)

    parts = [f"{name}: test token accuracy {r['test_token_acc']:.3f} after {r['steps']} steps"
             + (f" (solved at step {r['solved_at_step']})" if done(r["test_token_acc"], r["solved_at_step"]) else "")
             for name, r in ablation.items()]
    full_done = done(full["token_acc"], full["solved_at_step"])
    state = f"solved at step {full['solved_at_step']}" if full_done else f"not solved in {full['steps']} steps"
    text = (f"At N={n}, M={m}: " + "; ".join(parts)
            + f"; both ends with the length curriculum: {full['token_acc']:.3f} ({state}).")
    if full_done and not any(done(r["test_token_acc"], r["solved_at_step"]) for r in ablation.values()):
        text += (" Only the two changes together learn: a fixed-length run starts with attention spread over all N "
                 "keys, so the signal towards the mirrored key is about 1/N; short "
                 "curriculum sequences find the rule quickly, and only counting from both ends makes it one rule "
                 "for every length (from the start alone the mirrored position L-1-i depends on the length L, "
                 "which a one-layer tagger cannot see).")
    return text
