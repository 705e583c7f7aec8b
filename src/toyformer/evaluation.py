"""Evaluation: teacher-forced loss and per-token accuracy, and exact match on generated answers.

For the causal and seq2seq layouts exact match is measured on the model's own answers, decoded
greedily (default) or by beam search (``eval.decode=beam``, ``eval.beam_width``), never on
teacher-forced predictions, which overstate a calculator.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from toyformer.data import IGNORE, answer_tokens, format_batch
from toyformer.decode import decode as decode_answers
from toyformer.metrics import exact_match, token_hits
from toyformer.tasks.base import PAD, Examples


def loss_and_predictions(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy over counted labels and argmax predictions (teacher forced)."""
    logits = model(batch)  # [B, V] or [B, T, V]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.labels.reshape(-1), ignore_index=IGNORE)
    return loss, logits.argmax(-1)


@torch.no_grad()
def evaluate_examples(model, ex: Examples, layout: str, sep: bool, batch_size: int, device,
                      decode: str = "greedy", beam_width: int = 4) -> dict:
    """Loss, per-token accuracy and exact match of ``model`` on ``ex``; ``decode`` (``greedy`` or
    ``beam`` of ``beam_width``) is how the causal and seq2seq layouts produce their answers.

    Returns plain numbers plus ``row_correct``, a ``[n]`` bool tensor (exact match per example).
    """
    was_training = model.training
    model.eval()
    loss_sum, hits, counted, rows = 0.0, 0, 0, []
    if decode == "beam":  # beam search decodes batch * beam_width rows at once
        batch_size = max(1, batch_size // beam_width)
    for start in range(0, len(ex), batch_size):
        part = ex[start : start + batch_size].to(device)
        batch = format_batch(part, layout, sep)
        loss, pred = loss_and_predictions(model, batch)
        h, c = token_hits(pred, batch.labels)
        loss_sum += loss.item() * c.item()
        hits, counted = hits + h.item(), counted + c.item()
        if layout in ("causal", "seq2seq"):
            ref = answer_tokens(part)  # [b, A]
            gen = decode_answers(model, layout, part.input, ref.shape[1], sep, decode, beam_width)
            rows.append(exact_match(gen, ref.masked_fill(ref == PAD, IGNORE)).cpu())
        else:
            rows.append(exact_match(pred, batch.labels).cpu())
    model.train(was_training)
    row_correct = torch.cat(rows)
    return {
        "loss": loss_sum / max(counted, 1),
        "token_acc": hits / max(counted, 1),
        "exact_match": row_correct.float().mean().item(),
        "n": len(ex),
        "row_correct": row_correct,
    }


def public(result: dict, prefix: str) -> dict:
    """The JSON-able numbers of an ``evaluate_examples`` result, keys prefixed (``val_loss``)."""
    return {f"{prefix}_{k}": v for k, v in result.items() if k not in ("row_correct", "n")}


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
    from toyformer.training import load_run

    run = load_run(run_dir, device=device)
    cfg = run.config
    decode = {} if beam_width is None else {"decode": "beam", "beam_width": beam_width}
    result = evaluate_config(run.model, run.splits.test, cfg, run.device, **decode)
    method = decode.get("decode", cfg.eval.decode)
    width = decode.get("beam_width", cfg.eval.beam_width)
    return {"task": cfg.task.name, "layout": cfg.layout, "run_dir": str(run_dir), "decode": method,
            **({"beam_width": width} if method == "beam" else {}), **public(result, "test"), "test_n": result["n"]}
