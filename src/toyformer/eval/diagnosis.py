"""Why a run failed: turn the measurements of a run that missed its target into findings.

Each finding names a symptom, the numbers that show it, and the settings known to matter for
that symptom (with their current values; ``suspect`` marks a value that often causes it)::

    {"symptom": "chance", "title": "Nothing learned: loss flat at chance level",
     "detail": "...", "evidence": {"train_loss": 2.302, "chance_loss": 2.303, ...},
     "settings": [{"key": "model.norm", "value": "post", "suspect": true, "why": "..."}, ...]}

Symptoms: ``diverged`` (NaN/inf or a loss above chance), ``chance`` (loss at ln C: nothing
learned), ``memorising`` (train far above validation), ``by_position`` / ``by_length``
(accuracy limited to some answer positions or input lengths), ``still_improving`` (stopped too
early), and ``unexplained`` when none of these stands out.

>>> diagnose(cfg, run.metrics, run.summary)[0]["symptom"]   # doctest: +SKIP
'chance'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from toyformer.data import IGNORE, format_batch
from toyformer.eval.evaluate import answer_columns

# (key, why) per symptom; the value and whether it is suspect come from the run's config
SETTINGS: dict[str, list[tuple[str, str]]] = {
    "chance": [
        ("model.norm", "post-LN stacks deeper than a couple of layers often never leave chance without warm-up (R0); "
                       "pre-norm keeps the residual path clean"),
        ("model.n_layers", "depth multiplies the post-LN problem; 1-2 layers solve most toy tasks"),
        ("train.warmup_steps", "warm-up lets Adam's moment estimates settle before full-size steps"),
        ("train.lr", "too low and nothing moves in the steps given; too high and updates overshoot"),
        ("train.steps", "too few steps to leave the plateau"),
        ("model.pooling", "flatten pooling ties each position to its own head weights; mean pooling shares them"),
        ("model.positional", "without positions an encoder cannot tell where a token is"),
    ],
    "memorising": [
        ("data.train_size", "more distinct examples, or none for a fresh stream every step"),
        ("train.weight_decay", "decay pulls memorised weights back towards a simpler solution"),
        ("model.dropout", "dropout makes memorising single examples harder"),
        ("model.d_model", "a smaller model has less room to memorise"),
        ("model.n_layers", "a smaller model has less room to memorise"),
    ],
    "diverged": [
        ("train.lr", "the usual cause: lower it (3e-4 .. 3e-3 for these models)"),
        ("train.warmup_steps", "full-size steps on fresh Adam moments blow up"),
        ("train.grad_clip", "clipping the gradient norm bounds each step"),
        ("model.norm", "pre-norm is more stable than post-norm"),
    ],
    "by_position": [
        ("model.causal_encoder", "a causal encoder cannot see later tokens: positions whose answer lies ahead "
                                 "stay at chance"),
        ("model.positional", "the model must know where each token is (a scheme added to the embeddings)"),
        ("model.n_layers", "routing by position may need more than one layer"),
        ("model.n_heads", "more heads can attend to more positions at once"),
        ("train.steps", "some positions are learned later than others: train longer"),
    ],
    "by_length": [
        ("model.positional", "positions beyond those seen in training have untrained encodings"),
        ("model.n_layers", "longer inputs may need more depth"),
        ("train.steps", "the longer inputs are often learned last: train longer"),
    ],
    "still_improving": [
        ("train.steps", "validation was still rising when the run stopped: train longer"),
        ("train.max_time_s", "a time limit may have cut the run short"),
        ("train.lr", "a larger learning rate may get there sooner"),
    ],
    "unexplained": [
        ("model.positional", "without positions an encoder sees a bag of tokens: order-dependent tasks fail"),
        ("train.steps", "train longer"),
        ("model.d_model", "a wider model"),
        ("model.n_layers", "a deeper model"),
        ("train.lr", "try a few learning rates around the default"),
    ],
}


def chance_level(ex, layout: str, sep: bool) -> dict:
    """What a model that learned nothing scores on ``ex`` (the test set).

    ``classes`` C is the number of distinct answer tokens; ``chance_loss`` is ln C (uniform over
    them); ``blind_loss`` is the best loss of a model that ignores the input (the entropy of the
    answer token at each answer position), at most ln C.
    """
    batch = format_batch(ex, layout, sep)
    _, labels = answer_columns(batch.labels, batch.labels, layout, batch.prompt_len)  # [n, A]
    counted = labels != IGNORE
    tokens = labels[counted]
    classes = int(tokens.unique().numel())
    pos = torch.arange(labels.shape[1]).expand_as(labels)[counted]
    counts = torch.zeros(labels.shape[1], int(tokens.max()) + 1, dtype=torch.float64)  # [A, V]
    counts.index_put_((pos, tokens), torch.ones_like(tokens, dtype=torch.float64), accumulate=True)
    n_pos = counts.sum(1)  # [A]
    p = counts / n_pos.clamp(min=1).unsqueeze(1)
    entropy = -(p * p.clamp(min=1e-300).log()).sum(1)  # [A]
    return {
        "classes": classes,
        "chance_loss": math.log(classes) if classes > 1 else 0.0,
        "blind_loss": float((entropy * n_pos).sum() / n_pos.sum()),
    }


def reached_target(summary: Mapping[str, Any]) -> bool:
    """Did the run reach its target? With no target (``eval.target=none``) the goal is 1.0 on test."""
    target = summary.get("target") or {}
    if summary.get("solved_at_step") is not None:
        return True
    goal = target.get("value")
    metric = target.get("metric", "exact_match")
    value = summary.get(f"test_{metric}")
    return goal is None and value is not None and value >= 1.0


def diagnose(config, metrics: list[dict], summary: Mapping[str, Any]) -> list[dict]:
    """Findings for a run that ended without reaching its target; ``[]`` when it reached it.

    ``summary`` must hold the run's test numbers, ``chance`` (see ``chance_level``) and
    ``test_by_position`` / ``test_by_length`` (see ``evaluation.by_position``).
    """
    if reached_target(summary) or not (metrics or summary.get("diverged")):
        return []
    stopped = _stopped_nonfinite(metrics, summary)
    if not metrics:  # stopped before its first evaluation
        return [{**stopped, "settings": _settings("diverged", config)}]
    findings = []
    diverged = stopped or _diverged(metrics, summary)
    if diverged:
        findings.append(diverged)
    else:
        findings += [f for f in (_chance(metrics, summary),) if f]
    findings += [f for f in (_memorising(metrics), _by_position(summary), _by_length(summary, config)) if f]
    if not findings:
        findings += [f for f in (_still_improving(metrics, config),) if f]
    if not findings:
        findings.append(_unexplained(metrics, summary, config))
    for f in findings:
        f["settings"] = _settings(f["symptom"], config)
    return findings


def _finding(symptom: str, title: str, detail: str, evidence: dict) -> dict:
    clean = {k: _number(v) for k, v in evidence.items()}
    return {"symptom": symptom, "title": title, "detail": detail, "evidence": clean}


def _number(v):
    """Rounded for reading; NaN and infinity as strings so that summary.json stays valid JSON."""
    if isinstance(v, float):
        return round(v, 4) if math.isfinite(v) else str(v)
    return v


def _losses(metrics: list[dict], key: str) -> list[float]:
    """The recorded values of ``key``, skipping missing ones (``null`` in metrics.jsonl)."""
    return [r[key] for r in metrics if r.get(key) is not None]


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def _stopped_nonfinite(metrics, summary):
    """The loop stopped the run at a NaN or infinite training loss (``summary["diverged"]``)."""
    stop = summary.get("diverged")
    if not stop:
        return None
    finite = [x for x in _losses(metrics, "train_loss") if math.isfinite(x)]
    evidence = {"first_nonfinite_step": stop["step"], "weights_from_step": stop["weights_from_step"],
                "best_train_loss": min(finite) if finite else None, "chance_loss": summary["chance"]["chance_loss"]}
    kept = (f"the weights are those of step {stop['weights_from_step']}, the last evaluation before it"
            if stop["weights_from_step"] else "no evaluation came before it: the weights are the initial ones")
    return _finding("diverged", f"Training diverged at step {stop['step']}: the loss became NaN or infinite",
                    f"The training loss was not a finite number at step {stop['step']}; training stopped there and "
                    f"{kept}.", evidence)


def _diverged(metrics, summary):
    chance = summary["chance"]
    train, val = _losses(metrics, "train_loss"), _losses(metrics, "val_loss")
    # a missing loss (null in metrics.jsonl) counts as not finite; a missing val_loss key does not
    bad = [r["step"] for r in metrics if not all(_finite(r.get(k, 0.0)) for k in ("train_loss", "val_loss"))]
    ceiling = 1.5 * max(chance["chance_loss"], 0.1)
    finite = [x for x in train if math.isfinite(x)]
    evidence = {"final_train_loss": metrics[-1].get("train_loss"), "chance_loss": chance["chance_loss"]}
    if bad:
        evidence.update(first_nonfinite_step=bad[0], best_train_loss=min(finite) if finite else None)
        return _finding("diverged", f"Training diverged at step {bad[0]}: the loss became NaN or infinite",
                        f"The loss was not a finite number from step {bad[0]} on.", evidence)
    if not finite:
        return None
    best = min(finite)
    evidence.update(best_train_loss=best, max_val_loss=max(val) if val else None)
    if train[-1] > ceiling:
        return _finding("diverged", "Training diverged: the loss ended above chance level",
                        f"Final training loss {train[-1]:.3g} is worse than guessing uniformly "
                        f"({chance['chance_loss']:.3g}), a sign that the updates overshoot.", evidence)
    if train[-1] > best + max(0.5, best):
        return _finding("diverged", "Training became unstable: the loss went back up",
                        f"The training loss reached {best:.3g}, then rose to {train[-1]:.3g}.", evidence)
    return None


def _chance(metrics, summary):
    chance = summary["chance"]
    floor = chance["blind_loss"]
    losses = [x for x in _losses(metrics, "train_loss") if math.isfinite(x)]
    if not losses:
        return None
    last, first = losses[-1], losses[0]
    if floor < 0.05 or last < 0.9 * floor:
        return None
    flat = abs(first - last) <= 0.1 * max(first, 1e-9)
    evidence = {
        "train_loss": last, "first_train_loss": first, "chance_loss": chance["chance_loss"],
        "classes": chance["classes"], "input_blind_loss": floor, "val_token_acc": metrics[-1].get("val_token_acc"),
        "chance_token_acc": 1 / max(chance["classes"], 1), "steps": metrics[-1]["step"],
    }
    detail = (f"The training loss {'stayed' if flat else 'ended'} at {last:.3g}; guessing among the "
              f"{chance['classes']} answer tokens gives ln {chance['classes']} = {chance['chance_loss']:.3g}, "
              f"and a model that ignores the input can reach {floor:.3g}. The model has not used its input.")
    return _finding("chance", "Nothing learned: the loss is at chance level", detail, evidence)


def _memorising(metrics):
    last = metrics[-1]
    train_acc, val_acc = last.get("train_token_acc"), last.get("val_token_acc")
    if train_acc is None or val_acc is None or train_acc - val_acc < 0.15:
        return None
    evidence = {"train_token_acc": train_acc, "val_token_acc": val_acc, "gap": train_acc - val_acc,
                "train_loss": last.get("train_loss"), "val_loss": last.get("val_loss")}
    detail = (f"Training accuracy {train_acc:.3f} is far above validation {val_acc:.3f}: the model fits the "
              "examples it sees but does not generalise to new ones.")
    return _finding("memorising", "Memorising: training far above validation", detail, evidence)


def _uneven(values: list[float], counts: list[int], min_n: int) -> tuple[int, int] | None:
    """Indices of the best and worst groups when the spread is large; None otherwise."""
    idx = [i for i, n in enumerate(counts) if n >= min_n]
    if len(idx) < 2:
        return None
    best = max(idx, key=lambda i: values[i])
    worst = min(idx, key=lambda i: values[i])
    if values[best] >= 0.8 and values[best] - values[worst] >= 0.3:
        return best, worst
    return None


def _by_position(summary):
    pos = summary.get("test_by_position")
    if not pos:
        return None
    found = _uneven(pos["token_acc"], pos["n"], min_n=1)
    if found is None:
        return None
    acc, where = pos["token_acc"], pos["position"]
    good = [where[i] for i, a in enumerate(acc) if a >= 0.8]
    evidence = {"best_position": where[found[0]], "best_acc": acc[found[0]], "worst_position": where[found[1]],
                "worst_acc": acc[found[1]], "positions_above_0.8": len(good), "positions": len(where)}
    if len(where) <= 32:
        evidence["acc_by_position"] = [round(a, 3) for a in acc]
    detail = (f"Only {len(good)} of {len(where)} answer positions are above 0.8 (position {where[found[0]]}: "
              f"{acc[found[0]]:.3f}, position {where[found[1]]}: {acc[found[1]]:.3f}).")
    return _finding("by_position", "Accuracy limited to some answer positions", detail, evidence)


def _by_length(summary, config):
    lens = summary.get("test_by_length")
    if not lens:
        return None
    metric = config.eval.target_metric
    values = lens[metric]
    found = _uneven(values, lens["n"], min_n=max(5, sum(lens["n"]) // 100))
    if found is None:
        return None
    where = lens["length"]
    evidence = {"best_length": where[found[0]], f"best_{metric}": values[found[0]],
                "worst_length": where[found[1]], f"worst_{metric}": values[found[1]]}
    if len(where) <= 32:
        evidence[f"{metric}_by_length"] = [round(v, 3) for v in values]
    detail = (f"Test {metric} depends on the input length: {values[found[0]]:.3f} at length {where[found[0]]}, "
              f"{values[found[1]]:.3f} at length {where[found[1]]}.")
    return _finding("by_length", "Accuracy limited to some input lengths", detail, evidence)


def _still_improving(metrics, config):
    key = f"val_{config.eval.target_metric}"
    values = [r[key] for r in metrics if r.get(key) is not None]
    if len(values) < 4:
        return None
    earlier = values[-1 - max(1, len(values) // 4)]
    if values[-1] - earlier < 0.02:
        return None
    evidence = {key: values[-1], f"{key}_earlier": earlier, "steps": metrics[-1]["step"]}
    detail = f"Validation {config.eval.target_metric} rose from {earlier:.3f} to {values[-1]:.3f} near the end."
    return _finding("still_improving", "Stopped while still improving", detail, evidence)


def _unexplained(metrics, summary, config):
    metric = config.eval.target_metric
    value = summary.get(f"test_{metric}")
    evidence = {f"test_{metric}": value, "train_loss": metrics[-1].get("train_loss")}
    measured = f"Test {metric} {value:.3f}" if value is not None else f"No test {metric} was measured"
    return _finding("unexplained", "No single symptom stands out",
                    f"{measured}; none of the known failure patterns matches.", evidence)


def _settings(symptom: str, config) -> list[dict]:
    """The settings known to matter for ``symptom``, with current values; suspect ones first."""
    values = {f"{section}.{k}": v for section, d in config.to_dict().items() if isinstance(d, dict) for k,
              v in d.items()}
    rows = []
    for key, why in SETTINGS[symptom]:
        if (key == "model.pooling" and config.layout != "classifier") or (
            key == "model.causal_encoder" and config.layout not in ("classifier", "tagger")
        ):
            continue
        rows.append({"key": key, "value": values.get(key), "suspect": _suspect(symptom, key, config), "why": why})
    return sorted(rows, key=lambda r: not r["suspect"])


def _suspect(symptom: str, key: str, cfg) -> bool:
    """Heuristics for values that commonly cause ``symptom``."""
    m, t, d = cfg.model, cfg.train, cfg.data
    no_positions = m.positions.scheme.plug == "none"
    rules = {
        ("chance", "model.norm"): m.norm == "post" and m.n_layers > 2,
        ("chance", "model.n_layers"): m.norm == "post" and m.n_layers > 2,
        ("chance", "train.warmup_steps"): t.warmup_steps == 0,
        ("chance", "train.lr"): t.lr < 1e-4 or t.lr > 1e-2,
        ("chance", "train.steps"): t.steps < 200,
        ("chance", "model.pooling"): m.pooling == "flatten",
        ("chance", "model.positional"): no_positions and cfg.layout != "classifier",
        ("memorising", "data.train_size"): d.train_size is not None,
        ("memorising", "train.weight_decay"): t.weight_decay == 0,
        ("memorising", "model.dropout"): m.dropout == 0,
        ("diverged", "train.lr"): t.lr > 1e-2,
        ("diverged", "train.warmup_steps"): t.warmup_steps == 0,
        ("diverged", "train.grad_clip"): t.grad_clip is None,
        ("diverged", "model.norm"): m.norm == "post",
        ("by_position", "model.causal_encoder"): m.causal_encoder,
        ("by_position", "model.positional"): no_positions,
        ("unexplained", "model.positional"): no_positions and cfg.layout != "classifier",
        ("by_length", "model.positional"): no_positions,
        ("still_improving", "train.max_time_s"): t.max_time_s is not None,
    }
    return bool(rules.get((symptom, key), False))
