"""Length generalisation: accuracy and exact match of a trained run at every length asked for.

Whether a model learned the algorithm or memorised its training lengths shows on longer inputs
than any it trained on. ``evaluate_lengths`` draws a fresh held-out set per length
(``task.sample(n, ..., length=L)`` from its own seed, ``eval.seed + 1009 * L``), decodes it like
the run's test set, and reports per-token accuracy (teacher forced) and exact match (the model's
own decoded answers).

Disjointness: a length outside the trained range cannot have been trained on. A length inside it
is a fresh sample that was not excluded from the training stream; where a length has few
distinct examples (1-digit addition has 100), its set overlaps what training saw.

>>> parse_lengths("1:4,10,20:30:5")
[1, 2, 3, 4, 10, 20, 25, 30]
"""

from __future__ import annotations


import torch

from toyformer.errors import ConfigError
from toyformer.data import format_batch
from toyformer.eval.evaluate import evaluate_config
from toyformer.models.positional.embedder import Embedder
from toyformer.run import memory
from toyformer.stats import proportion_ci


def parse_lengths(text: str) -> list[int]:
    """``"1:64"`` (inclusive range), ``"10,20,30"``, ``"2:40:2"`` (with a step), or a mix."""
    out: list[int] = []
    for item in text.split(","):
        parts = item.strip().split(":")
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            nums = []
        if not 1 <= len(nums) <= 3 or any(n < 1 for n in nums) or (len(nums) > 1 and nums[1] < nums[0]):
            raise ConfigError(f"lengths={text!r}: {item.strip()!r} is not a length; allowed: N, A:B, A:B:STEP, "
                              "comma-separated, N >= 1")
        out += [nums[0]] if len(nums) == 1 else list(range(nums[0], nums[1] + 1, nums[2] if len(nums) == 3 else 1))
    return sorted(set(out))


def task_length(task) -> int | None:
    """The length a task trains at by default: its field named by ``length_param`` (a class
    attribute; default ``"length"``), or None when it has none."""
    return getattr(task, getattr(task, "length_param", "length"), None)


def trained_range(config, task) -> tuple[int, int] | None:
    """The lengths a run trained on: ``data.min_length..max_length``, or the task's own length
    (from its ``min_length_param`` field, when it has one, e.g. addition's ``min_digits``)."""
    if config.data.min_length is not None:
        return config.data.min_length, config.data.max_length
    length = task_length(task)
    if length is None:
        return None
    low = getattr(task, getattr(task, "min_length_param", ""), None)
    return (length if low is None else low), length


def evaluate_lengths(run, lengths: list[int], n: int = 500, **decode) -> dict:
    """Evaluate ``run`` (a ``Run``, e.g. from ``load_run``) on ``n`` fresh examples per length.

    ``decode`` overrides the run's ``eval.decode`` / ``eval.beam_width``. Returns
    ``{"task", "layout", "positional", "trained": [lo, hi] | None, "rows": [{"length",
    "token_acc", "exact_match", "n", "clamped"}, ...]}``; ``clamped`` is true where a position
    table (``learned``, ``abacus``) is shorter than the positions of that length, which then
    all share its last row (raise ``model.max_len`` to give them rows of their own).

    >>> evaluate_lengths(load_run("runs/add"), [10, 20, 30])["rows"][2]["exact_match"]  # doctest: +SKIP
    0.982
    """
    cfg = run.config
    longest = max(lengths)
    memory.check(memory.evaluation(cfg, run.task, n, longest), run.device, f"lengths={longest} with n={n}")
    rows = []
    for length in lengths:
        ex = run.task.sample(n, torch.Generator().manual_seed(cfg.eval.seed + 1009 * length), length=length)
        result = evaluate_config(run.model, ex, cfg, run.device, **decode)
        rows.append({"length": length, "token_acc": result["token_acc"], "exact_match": result["exact_match"], "n": n,
                     "clamped": positions_clamped(run.model, format_batch(ex[:8], cfg.layout, cfg.data.sep))})
    trained = trained_range(cfg, run.task)
    return {
        "task": cfg.task.name,
        "layout": cfg.layout,
        "positional": cfg.model.positions.label(cfg.model.attention_window),
        "trained": list(trained) if trained else None,
        "rows": rows,
    }


def positions_clamped(model, batch) -> bool:
    """True when a position table of ``model`` is too short for the positions of ``batch``
    (the widest sequences of a length: the full teacher-forced input)."""
    tokens = {"inputs": batch.inputs, "decoder_inputs": batch.decoder_inputs}
    tables = [(name, m) for name, m in model.named_modules() if isinstance(m, Embedder) and m.table is not None]
    for name, embed in tables:
        side = "decoder_inputs" if name.startswith("decoder") and tokens["decoder_inputs"] is not None else "inputs"
        was_training = embed.training
        embed.eval()  # evaluation positions: no random offsets
        widest = int(embed.positions(tokens[side].to(embed.tok.weight.device)).max())
        embed.train(was_training)
        if widest >= embed.max_len:
            return True
    return False


def format_table(result: dict) -> str:
    """A markdown table; lengths inside the trained range are marked ``*``, lengths whose
    positions a too short table clamped ``!``."""
    lo, hi = result["trained"] or (None, None)
    lines = ["| length | token_acc | exact_match | n | exact_match 95% CI |", "|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        mark = ("*" if lo is not None and lo <= r["length"] <= hi else "") + ("!" if r.get("clamped") else "")
        low, high = proportion_ci(round(r["exact_match"] * r["n"]), r["n"])
        lines.append(f"| {r['length']}{mark} | {r['token_acc']:.4f} | {r['exact_match']:.4f} | {r['n']} | "
                     f"{low:.4f}-{high:.4f} |")
    if lo is not None:
        lines.append(f"\n`*` trained lengths ({lo}..{hi})")
    if any(r.get("clamped") for r in result["rows"]):
        lines.append("`!` positions beyond model.max_len, clamped to its last one")
    return "\n".join(lines)
