"""R1 memorise a lookup table: three decoder-only configurations without positional encoding,
accuracy split into symmetric and asymmetric cells, and a configuration that reaches 100%."""

from __future__ import annotations

import torch

from toyformer.data import format_batch
from toyformer.experiments.recipes.base import Context, RecipeResult, Table

# causal decoder-only, token embedding, no positional encoding, d_model 16, 2 heads, ff 64,
# dropout 0, PyTorch's initialisation; Adam lr 1e-2, batch 300, 3000 steps, fresh samples every step
BASE = {
    "task": {"name": "lookup_table", "size": 30},
    "model": {"d_model": 16, "n_heads": 2, "d_ff": 64, "dropout": 0.0, "positional": "none", "n_layers": 1,
              "init": "torch"},
    "data": {"batch_size": 300},
    "train": {"steps": 3000, "lr": 1e-2, "schedule": "constant", "warmup_steps": 0, "weight_decay": 0.0,
              "beta2": 0.999, "grad_clip": None},
    "eval": {"every": 500, "target": None},
}
# padded: a zero vector appended as a third position, the answer read there (classifier with a
# causal encoder and slot pooling); unpadded: next-token prediction on (i, j, M[i][j]), the
# answer read at the position of j (causal layout without <sep>, loss on every next token)
PADDED = {**BASE, "layout": "classifier", "model": {**BASE["model"], "causal_encoder": True, "pooling": "slot"}}
UNPADDED = {**BASE, "layout": "causal", "data": {**BASE["data"], "sep": False, "prompt_loss": True}}
CONFIGS = {
    "1 layer, padded": (PADDED, {}, 0.506),
    "2 layers, padded": (PADDED, {"model.n_layers": 2}, 0.973),
    "1 layer, unpadded": (UNPADDED, {}, 0.927),
}
# improved: positions break the (i, j) / (j, i) symmetry; warm-up + cosine decay settle the
# memorised table; stop as soon as every cell is right
IMPROVED = {
    **PADDED,
    "model": {**PADDED["model"], "positional": "learned", "d_model": 32, "n_heads": 2, "d_ff": 128},
    "train": {"steps": 3000, "lr": 1e-2, "warmup_steps": 50, "schedule": "cosine", "weight_decay": 0.0},
    "eval": {"every": 100, "target": 1.0},
}


def cell_accuracy(run) -> tuple[float, float, float, int]:
    """Accuracy on all, symmetric and asymmetric cells of the table, and the symmetric count."""
    task, model, cfg = run.task, run.model, run.config
    dom = task.domain()
    sym = task.symmetric(dom.input)
    with torch.no_grad():
        model.eval()
        if cfg.layout == "causal":
            batch = format_batch(dom.to(run.device), "causal", cfg.data.sep)
            pred = model(batch).argmax(-1)[:, batch.prompt_len - 1]  # the answer position
        else:
            pred = model(format_batch(dom.to(run.device), "classifier")).argmax(-1)
    right = (pred.cpu() == dom.target[:, 0])
    return right.float().mean().item(), right[sym].float().mean().item(), right[~sym].float().mean().item(), int(sym.sum())


def run(ctx: Context) -> RecipeResult:
    res = RecipeResult("r1", "R1: memorise a lookup table (decoder-only, no positional encoding)")
    rows, numbers = [], {}
    for label, (base, overrides, reported) in CONFIGS.items():
        cfg = ctx.config(base).with_overrides([f"{k}={v}" for k, v in overrides.items()])
        run_ = ctx.train(label.replace(" ", "_").replace(",", ""), cfg)
        acc, acc_sym, acc_asym, n_sym = cell_accuracy(run_)
        rows.append([label, reported, acc, abs(acc - reported), acc_sym, acc_asym, run_.summary["wall_s"]])
        numbers[label] = {"reported": reported, "accuracy": acc, "symmetric": acc_sym, "asymmetric": acc_asym,
                          "wall_s": run_.summary["wall_s"]}
    improved = ctx.train("improved", ctx.config(IMPROVED))
    acc, acc_sym, acc_asym, n_sym = cell_accuracy(improved)
    rows.append(["improved: learned positions, 1 layer, padded", None, acc, None, acc_sym, acc_asym,
                 improved.summary["wall_s"]])
    numbers["improved"] = {"accuracy": acc, "symmetric": acc_sym, "asymmetric": acc_asym,
                           "solved_at_step": improved.summary["solved_at_step"],
                           "solved_at_s": improved.summary["solved_at_s"], "wall_s": improved.summary["wall_s"]}
    ceiling = 0.5 + 30 / 900
    res.tables.append(Table(
        "Accuracy over all 900 cells", ["configuration", "reported", "measured", "|diff|", "symmetric cells",
                                        "asymmetric cells", "wall s"], rows,
        note=f"{n_sym} of 900 cells are symmetric (M[i][j] == M[j][i], the 30 diagonal cells included). "
             f"The 1-layer padded ceiling is 0.5 + 30/900 = {ceiling:.3f}."))
    one = numbers["1 layer, padded"]
    res.findings.append(
        f"1 layer, padded: {one['symmetric']:.3f} on symmetric cells and {one['asymmetric']:.3f} on asymmetric ones. "
        "With no positional encoding and a zero pad, a causal layer sees the bag {i, j}: it cannot tell (i, j) "
        "from (j, i), so it fails exactly where M[i][j] != M[j][i] (about half of those cells right by luck of "
        "picking one of two answers).")
    res.findings.append(
        "Two layers escape because the first layer's output at j depends on the order (j attends to i, but i "
        "cannot attend to j): the causal mask itself carries position. Unpadded reads the answer at j, which has "
        "seen i before it, with the same effect in one layer.")
    res.findings.append(f"Learned positions break the symmetry directly: {acc:.3f} of cells right "
                        f"(solved at step {improved.summary['solved_at_step']}, {improved.summary['solved_at_s']} s).")
    res.numbers = numbers
    return res
