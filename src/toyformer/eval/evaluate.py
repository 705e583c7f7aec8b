"""Evaluation: teacher-forced loss and per-token accuracy, and exact match on generated answers.

For the causal and seq2seq layouts exact match is measured on the model's own answers, decoded
greedily (default) or by beam search (``eval.decode=beam``, ``eval.beam_width``), never on
teacher-forced predictions, which overstate a calculator.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from toyformer.data import IGNORE, answer_tokens, format_batch, lengths
from toyformer.eval.decode import decode as decode_answers
from toyformer.eval.metrics import exact_match
from toyformer.run.memory import model_rows
from toyformer.stats import proportion_ci
from toyformer.tasks.base import PAD, Examples


def loss_and_predictions(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy over counted labels and argmax predictions (teacher forced)."""
    logits = model(batch)  # [B, V] or [B, T, V]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.labels.reshape(-1), ignore_index=IGNORE)
    return loss, logits.argmax(-1)


def answer_columns(pred: torch.Tensor, labels: torch.Tensor, layout: str, prompt_len: int):
    """Predictions and labels restricted to the answer, position 0 first: ``[B, A]`` each.

    The classifier's single answer is position 0; a causal batch's answer starts at column
    ``prompt_len - 1`` (the model reads ``seq[:, :-1]``).
    """
    if labels.dim() == 1:
        return pred.unsqueeze(1), labels.unsqueeze(1)
    if layout == "causal":
        return pred[:, prompt_len - 1 :], labels[:, prompt_len - 1 :]
    return pred, labels


def _add_padded(total: torch.Tensor | None, part: torch.Tensor) -> torch.Tensor:
    """Sum two 1-d count vectors of possibly different lengths (answers of different widths)."""
    if total is None:
        return part
    width = max(len(total), len(part))
    pad = lambda t: F.pad(t, (0, width - len(t)))  # noqa: E731
    return pad(total) + pad(part)


@torch.no_grad()
def evaluate_examples(model, ex: Examples, layout: str, sep: bool, batch_size: int, device,
                      decode: str = "greedy", beam_width: int = 4) -> dict:
    """Loss, per-token accuracy and exact match of ``model`` on ``ex``, with the breakdowns;
    ``decode`` (``greedy`` or ``beam`` of ``beam_width``) is how the causal and seq2seq layouts
    produce their answers.

    Returns plain numbers (``loss, token_acc, exact_match, n``) and CPU tensors:

    - ``row_correct [n]`` bool: exact match per example (greedy decoding for the decoders);
    - ``row_hits [n]``, ``row_count [n]``: right and counted answer tokens per example;
    - ``input_len [n]``: non-pad input tokens per example;
    - ``pos_hits [A]``, ``pos_count [A]``: right and counted tokens per answer position
      (teacher forced, like ``token_acc``: ``pos_hits.sum() / pos_count.sum() == token_acc``).
    """
    was_training = model.training
    model.eval()
    loss_sum, rows, row_hits, row_count = 0.0, [], [], []
    pos_hits = pos_count = None
    if decode == "beam":  # beam search decodes batch * beam_width rows at once
        batch_size = max(1, batch_size // beam_width)
    # long rows (1,000-digit sums) go a few at a time, so that their attention scores fit in memory
    batch_size = model_rows(model, batch_size, ex.input.shape[1] + ex.target.shape[1] + 2)
    for start in range(0, len(ex), batch_size):
        part = ex[start : start + batch_size].to(device)
        batch = format_batch(part, layout, sep)
        loss, pred = loss_and_predictions(model, batch)
        pred_a, labels_a = answer_columns(pred, batch.labels, layout, batch.prompt_len)  # [b, A]
        counted = labels_a != IGNORE
        hit = (pred_a == labels_a) & counted
        loss_sum += loss.item() * counted.sum().item()
        row_hits.append(hit.sum(1).cpu())
        row_count.append(counted.sum(1).cpu())
        pos_hits = _add_padded(pos_hits, hit.sum(0).cpu())
        pos_count = _add_padded(pos_count, counted.sum(0).cpu())
        if layout in ("causal", "seq2seq"):
            ref = answer_tokens(part)  # [b, A]
            gen = decode_answers(model, layout, part.input, ref.shape[1], sep, decode, beam_width)
            rows.append(exact_match(gen, ref.masked_fill(ref == PAD, IGNORE)).cpu())
        else:
            rows.append(exact_match(pred, batch.labels).cpu())
    model.train(was_training)
    row_correct, hits, count = torch.cat(rows), torch.cat(row_hits), torch.cat(row_count)
    counted_total = max(count.sum().item(), 1)
    return {
        "loss": loss_sum / counted_total,
        "token_acc": hits.sum().item() / counted_total,
        "exact_match": row_correct.float().mean().item(),
        "n": len(ex),
        "row_correct": row_correct,
        "row_hits": hits,
        "row_count": count,
        "input_len": lengths(ex.input).cpu(),
        "pos_hits": pos_hits,
        "pos_count": pos_count,
    }


def by_position(result: dict) -> dict:
    """Per-token accuracy per answer position, from an ``evaluate_examples`` result.

    >>> by_position({"pos_hits": torch.tensor([4, 1]), "pos_count": torch.tensor([4, 4])})
    {'position': [0, 1], 'n': [4, 4], 'token_acc': [1.0, 0.25]}
    """
    hits, count = result["pos_hits"], result["pos_count"]
    acc = hits.double() / count.clamp(min=1)
    keep = count > 0
    return {
        "position": keep.nonzero().squeeze(1).tolist(),
        "n": count[keep].tolist(),
        "token_acc": acc[keep].tolist(),
    }


def by_length(result: dict) -> dict:
    """Per-token accuracy and exact match per input length, from an ``evaluate_examples`` result.

    >>> r = {"input_len": torch.tensor([2, 3, 3]), "row_correct": torch.tensor([True, False, True]),
    ...      "row_hits": torch.tensor([2, 1, 3]), "row_count": torch.tensor([2, 3, 3])}
    >>> by_length(r)
    {'length': [2, 3], 'n': [1, 2], 'token_acc': [1.0, 0.6666666666666666], 'exact_match': [1.0, 0.5]}
    """
    lens, group = result["input_len"].unique(return_inverse=True)  # [L], [n]
    size = len(lens)
    total = lambda v: torch.zeros(size, dtype=torch.float64).index_add_(0, group, v.double())  # noqa: E731
    n = total(torch.ones_like(group))
    return {
        "length": lens.tolist(),
        "n": n.long().tolist(),
        "token_acc": (total(result["row_hits"]) / total(result["row_count"]).clamp(min=1)).tolist(),
        "exact_match": (total(result["row_correct"]) / n).tolist(),
    }


def public(result: dict, prefix: str) -> dict:
    """The JSON-able numbers of an ``evaluate_examples`` result, keys prefixed (``val_loss``)."""
    return {f"{prefix}_{k}": v for k, v in result.items() if k != "n" and not isinstance(v, torch.Tensor)}


def evaluate_config(model, ex: Examples, cfg, device, **decode) -> dict:
    """``evaluate_examples`` with the options of a ``RunConfig``; ``decode`` overrides
    ``decode=`` / ``beam_width=``."""
    options = {"decode": cfg.eval.decode, "beam_width": cfg.eval.beam_width, **decode}
    return evaluate_examples(model, ex, cfg.layout, cfg.data.sep, cfg.eval.batch_size, device, **options)


def evaluate(run_dir: str | Path, device: str = "auto", beam_width: int | None = None) -> dict:
    """Re-evaluate a finished (or checkpointed) run from its directory alone; ``beam_width``
    decodes by beam search of that width instead of the run's ``eval.decode``.

    >>> toyformer.evaluate("runs/reverse-demo")["test_exact_match"]   # doctest: +SKIP
    1.0
    """
    from toyformer.run import load_run

    run = load_run(run_dir, device=device)
    cfg = run.config
    decode = {} if beam_width is None else {"decode": "beam", "beam_width": beam_width}
    result = evaluate_config(run.model, run.splits.test, cfg, run.device, **decode)
    method = decode.get("decode", cfg.eval.decode)
    width = decode.get("beam_width", cfg.eval.beam_width)
    return {"task": cfg.task.name, "layout": cfg.layout, "run_dir": str(run_dir), "decode": method,
            **({"beam_width": width} if method == "beam" else {}), **public(result, "test"), "test_n": result["n"],
            "test_exact_match_ci95": list(proportion_ci(int(result["row_correct"].sum()), result["n"]))}
