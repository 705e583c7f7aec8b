"""Refuse a run that cannot fit in memory before anything is allocated.

``model.d_model=100000000``, ``task.length=100000000`` or ``--lengths 100000000`` would otherwise
end in an allocator error minutes later, or in swapping. ``estimate`` adds up what a run holds
at its peak: the held-out and training examples, the weights with their gradients and AdamW
moments, and the activations of one training batch (attention scores included); ``check`` raises
a ConfigError naming the estimate, its largest part and what the device has available. The
estimate is coarse (within a small factor); it only has to catch requests that are off by
orders of magnitude.

>>> check(estimate(RunConfig.from_dict({"task": "reverse"}), get_task("reverse")), "cpu")   # doctest: +SKIP
"""

from __future__ import annotations

import math
import os

import torch

from toyformer.errors import ConfigError
from toyformer.models.local_attention import LOCAL_FROM
from toyformer.tasks.protocol import PROBE_LENGTH, probe

FLOAT = 4  # bytes of a float32
LONG = 8  # bytes of a token id
SCORES_PER_BATCH = 2**25  # attention scores (all heads of all rows) one evaluation batch may hold


LOCAL_KEYS = 64  # about the most keys a query of a windowed model scores at evaluation (local_attention.py)


def keys_per_query(seq: int, window: int | None) -> int:
    """How many keys one query of a ``seq``-token row is scored against at evaluation: all of them,
    or, for a windowed model reading a long row, its candidate keys only (``models/local_attention``)."""
    return min(seq, LOCAL_KEYS) if window is not None and seq >= LOCAL_FROM else seq


def model_rows(model, batch_size: int, seq: int) -> int:
    """``rows_per_batch`` for ``model`` (its heads and attention window read from its modules; a
    recurrent model counts as one head)."""
    heads = max((m.n_heads for m in model.modules() if hasattr(m, "n_heads")), default=1)
    window = next((m.window for m in model.modules() if getattr(m, "window", None) is not None), None)
    return rows_per_batch(batch_size, heads, seq, window)


def rows_per_batch(batch_size: int, heads: int, seq: int, window: int | None = None) -> int:
    """Rows of one evaluation batch: at most ``batch_size``, and few enough that the attention scores
    of ``seq``-token rows (``heads`` each) stay within ``SCORES_PER_BATCH``, so that evaluating at
    1,000 digits (3,000-token sequences) fits in memory however the model attends.

    >>> rows_per_batch(500, 4, 35), rows_per_batch(500, 4, 3005), rows_per_batch(500, 4, 3005, window=1)
    (500, 1, 43)
    """
    return max(1, min(batch_size, SCORES_PER_BATCH // (heads * seq * keys_per_query(seq, window))))


def available_bytes(device: torch.device | str) -> int | None:
    """Memory the process can still use on ``device`` (None where it cannot be told)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def widths(task, length: int | None = None) -> tuple[int, int]:
    """Input and target widths of the task's examples (at ``length``), without drawing long ones:
    a task longer than ``PROBE_LENGTH`` is sampled at that length and scaled up."""
    ex, length = probe(task, 1, length)
    scale = length / PROBE_LENGTH if length is not None and length > PROBE_LENGTH else 1
    return math.ceil(ex.input.shape[1] * scale), math.ceil(ex.target.shape[1] * scale)


def shape(layout: str, cfg, w_in: int, w_out: int) -> tuple[int, int]:
    """The longest sequence a block of ``layout`` sees, and how many blocks there are."""
    if layout == "seq2seq":
        return max(w_in, w_out + 1), cfg.n_layers + (cfg.n_decoder_layers or cfg.n_layers)
    seq = {"causal": w_in + w_out + 2, "masked": w_in + w_out}.get(layout, w_in + 1)
    return seq, cfg.n_layers


def model_params(cfg, vocab_size: int, seq: int, layers: int) -> int:
    """About how many parameters the model of ``cfg`` (a ModelConfig) has."""
    d = cfg.d_model
    per_layer = 8 * d * d + 2 * d * cfg.d_ff  # attention (self, and cross in a decoder) and feed-forward
    max_len = cfg.positions.table_size(seq)  # rows of a position table (two with positions from both ends)
    return layers * per_layer + (vocab_size + 2 * max_len) * d + d * vocab_size + sum(cfg.head_hidden) * d


def activation_bytes(cfg, batch: int, seq: int, layers: int, backward: bool = True, keys: int | None = None) -> int:
    """Bytes of one forward (and backward) pass of ``batch`` rows of ``seq`` tokens, each query
    scored against ``keys`` keys (default: all ``seq``)."""
    per_token = layers * (12 * cfg.d_model + 2 * cfg.d_ff)  # saved tensors of each block
    scores = layers * cfg.n_heads * seq * (keys or seq) * 3  # scores, weights and their gradient
    return (batch * seq * per_token + batch * scores) * FLOAT * (2 if backward else 1)


def estimate(config, task) -> dict[str, int]:
    """Bytes a run of ``config`` on ``task`` holds at its peak, by part."""
    w_in, w_out = widths(task, config.data.max_length)
    seq, layers = shape(config.layout, config.model, w_in, w_out)
    rows = config.eval.val_size + config.eval.test_size + (config.data.train_size or 0) + config.data.batch_size
    params = model_params(config.model, len(task.vocab), seq, layers)
    return {
        "examples": rows * (w_in + w_out) * LONG * 3,  # drawn, formatted, and a copy on the device
        "weights": params * FLOAT * 4,  # weights, gradients, two AdamW moments
        "activations": max(activation_bytes(config.model, config.data.batch_size, seq, layers),
                           activation_bytes(config.model, config.eval.batch_size, seq, layers, backward=False)),
    }


def evaluation(config, task, rows: int, length: int | None = None, answer: int | None = None) -> dict[str, int]:
    """Bytes of evaluating (or decoding) ``rows`` examples of ``task`` at ``length`` with the model
    of ``config``; ``answer``: the generated width, when it differs from the task's targets."""
    w_in, w_out = widths(task, length)
    w_out = answer or w_out
    seq, layers = shape(config.layout, config.model, w_in, w_out)
    window = config.model.attention_window
    batch = rows_per_batch(min(rows, config.eval.batch_size), config.model.n_heads, seq, window)
    return {"examples": rows * (w_in + w_out) * LONG * 3,
            "activations": activation_bytes(config.model, batch, seq, layers, False, keys_per_query(seq, window))}


def check(parts: dict[str, int], device, what: str = "the run") -> None:
    """ConfigError when ``parts`` (bytes by name) add up to more than the device has available."""
    need = sum(parts.values())
    have = available_bytes(device)
    if have is None or need <= 0.9 * have:
        return
    largest = max(parts, key=lambda name: parts[name])
    raise ConfigError(f"{what} needs about {_size(need)} ({largest}: {_size(parts[largest])}), more than the "
                      f"{_size(have)} available on {torch.device(device).type}; make it smaller")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1024
    return f"{n:.1f} PiB"
