"""Activation patching: run the model on a corrupted input, put back one activation from the
clean input, and measure how much of the clean answer returns.

The answer is the model's own answer to the clean input (its class, tags or greedy answer);
both runs are teacher forced on it. The metric is the mean log-probability of that answer's
tokens; a patch's ``restored`` share is ``(patched - corrupted) / (clean - corrupted)``: 0 the
patch changes nothing, 1 it brings the clean answer all the way back. Patches:

- ``residual``: each layer's residual stream (``blocks.i.resid_pre``, and the last
  ``resid_post``), one position at a time: where along the sequence and in which layer the
  information that decides the answer sits (the heat map);
- ``heads``: each head's output (``attn.z``, every position);
- ``modules``: each attention and feed-forward output (every position).

Clean and corrupted inputs must have the same number of tokens (positions are compared one by
one). Given two sets, row ``i`` of one is paired with row ``i`` of the other.

>>> p = patch("runs/rev", "3 1 4 1 5", "3 1 4 1 9")             # doctest: +SKIP
>>> p["residual"]["restored"][0]                                  # layer 0, every position  # doctest: +SKIP
[0.0, 0.0, 0.0, 0.0, 1.0]
"""

from __future__ import annotations

import torch

from toyformer.data import IGNORE, lengths
from toyformer.errors import ConfigError
from toyformer.explain.ablation import components
from toyformer.explain.data import Inputs, cached, examples_for, forward, held_out, prepare, stream_names
from toyformer.explain.probes import layer_names
from toyformer.inspect.capture import as_inputs, subject
from toyformer.tasks.base import Examples


def answer_logprob(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean log-probability of the counted ``labels`` under ``logits``."""
    logp = logits.float().log_softmax(-1)
    if labels.dim() == 1:
        return logp.gather(1, labels[:, None]).mean().item()
    keep = labels != IGNORE
    return logp[keep].gather(1, labels[keep][:, None]).mean().item()


def corrupt_pairs(s, n: int, seed: int = 0) -> tuple[Examples, Examples]:
    """Default clean/corrupted sets: ``n`` test examples, each paired with another test input of
    the same length."""
    test = held_out(s, n)
    n_in = lengths(test.input)
    g = torch.Generator().manual_seed(seed)
    other = torch.empty(len(test), dtype=torch.long)
    for length in n_in.unique().tolist():
        rows = (n_in == length).nonzero().flatten()
        other[rows] = rows[torch.randperm(len(rows), generator=g)]
    return test, Examples(test.input[other], test.target)


def patch(source, clean=None, corrupt=None, n: int = 64, seed: int = 0) -> dict:
    """Patch every layer and position, head and module of ``source``'s model from ``clean`` into
    ``corrupt`` (token strings, lists of them, ids or Examples; default: ``n`` test examples each
    against another of the same length). Returns the metric on the clean and the corrupted run
    and a ``restored`` share per patch (module docstring)."""
    s = subject(source)
    if clean is None and corrupt is None:
        clean_ex, bad = corrupt_pairs(s, n, seed)
    elif clean is None or corrupt is None:
        raise ConfigError("activation patching needs both a clean and a corrupted input (clean= and corrupt=)")
    else:
        clean_ex = examples_for(s, clean)
        bad_input = corrupt.input if isinstance(corrupt, Examples) else as_inputs(s, corrupt)
        bad = Examples(bad_input, clean_ex.target)  # teacher forced on the clean answer
    if clean_ex.input.shape != bad.input.shape or not torch.equal(lengths(clean_ex.input), lengths(bad.input)):
        raise ConfigError(f"clean and corrupted inputs must have the same number of tokens; got "
                          f"{lengths(clean_ex.input).tolist()[:8]} and {lengths(bad.input).tolist()[:8]}")
    both = prepare(s, Examples.cat([clean_ex, bad]))
    k = len(clean_ex)
    return _patch_all(s, both.rows(slice(0, k)), both.rows(slice(k, None)))


def _restore(value: torch.Tensor, position: int | None = None, head: int | None = None):
    def hook(x, name):
        x = x.clone()
        if head is not None:
            x[:, :, head] = value[:, :, head]
        elif position is not None:
            x[:, position] = value[:, position]
        else:
            x = value.clone()
        return x
    return hook


def _patch_all(s, clean: Inputs, corrupt: Inputs) -> dict:
    model, labels = s.model, clean.batch.labels
    resid = [n for stream in stream_names(s.layout) for n in layer_names(model, stream)]
    comps = components(model)
    names = resid + sorted({c.hook for c in comps})
    clean_logits, acts = cached(model, clean, names)
    m_clean = answer_logprob(clean_logits, labels)
    m_bad = answer_logprob(forward(model, corrupt), labels)
    span = m_clean - m_bad

    def restored(table: dict) -> float | None:
        m = answer_logprob(forward(model, corrupt, table), labels)
        return None if abs(span) < 1e-6 else (m - m_bad) / span

    grid, layers = [], []
    for name in resid:
        t = acts[name].shape[1]
        layers.append(name)
        grid.append([restored({name: _restore(acts[name], position=p)}) for p in range(t)])
    heads = [{"component": c.name, "restored": restored({c.hook: _restore(acts[c.hook], head=c.head)})}
             for c in comps if c.kind == "head"]
    modules = [{"component": c.name, "restored": restored({c.hook: _restore(acts[c.hook])})}
               for c in comps if c.kind != "head"]
    vocab = s.task.vocab.tokens
    tokens = {st: [vocab[i] for i in fr.tokens[0].tolist()] for st, fr in clean.frames.items()}  # the first pair
    return {"clean_logprob": m_clean, "corrupt_logprob": m_bad, "n": len(clean),
            "residual": {"layers": layers, "restored": grid, "tokens": tokens},
            "heads": heads, "modules": modules}
