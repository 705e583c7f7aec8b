"""A trained decoder's answers to inputs of your choice: sampled, greedy or by beam search.

``generate`` is what ``toyformer sample`` runs: it takes a ``Run``, a run directory, or a bare
causal/seq2seq model (with ``task=`` and ``layout=``), parses the inputs as the task's tokens and
returns each input with its answers as token strings.

>>> rows = toyformer.inspect.generate("runs/add", "1 2 + 3 4", n=3, temperature=0.7, top_k=3)   # doctest: +SKIP
>>> rows[0]["outputs"]                                                                  # doctest: +SKIP
['4 6', '4 6', '4 7']
>>> toyformer.inspect.generate("runs/add", ["1 2 + 3 4", "9 + 9"], method="beam", beam_width=4)  # doctest: +SKIP
"""

from __future__ import annotations

import torch

from toyformer.eval.decode import beam_search, greedy, sample
from toyformer.errors import ConfigError
from toyformer.inspect.capture import answer_width, as_inputs, subject
from toyformer.run import memory
from toyformer.tasks.base import readable_answer

METHODS = ("sample", "greedy", "beam")


def generate(source, inputs=None, method: str = "sample", n: int = 1, temperature: float = 1.0,
             top_k: int | None = None, beam_width: int = 4, seed: int = 0, task=None,
             layout: str | None = None, sep: bool = True, device: str | None = None) -> list[dict]:
    """Answers of ``source`` to ``inputs`` (a token string, a list of them, ids ``[B, L]``, or
    ``None``: the run's first 4 test inputs).

    ``method``: ``sample`` (softmax of ``logits / temperature``, restricted to the ``top_k``
    most likely tokens when given; ``n`` answers per input, reproducible from ``seed``),
    ``greedy`` or ``beam`` (of ``beam_width``; both give one answer). Returns one
    ``{"input": str, "outputs": [str, ...]}`` per input, answers without ``<eos>``/``<pad>``.
    """
    if method not in METHODS:
        raise ConfigError(f"method={method!r} is not allowed; allowed: {', '.join(METHODS)}")
    if n < 1 or (n > 1 and method != "sample"):
        raise ConfigError(f"n={n}: allowed: 1, or more than 1 with method='sample' (greedy and beam give one answer)")
    if temperature <= 0:
        raise ConfigError(f"temperature={temperature} must be > 0 (use method='greedy' for the argmax)")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k={top_k} must be >= 1")
    if beam_width < 1:
        raise ConfigError(f"beam_width={beam_width} must be >= 1")
    s = subject(source, task, layout, sep, device)
    if s.layout not in ("causal", "seq2seq"):
        raise ConfigError(f"generation applies to the causal and seq2seq layouts, not {s.layout!r}")
    if inputs is None:
        if s.run is None:
            raise ConfigError("a bare model needs inputs to generate from")
        inputs = s.run.splits.test[:4]
    x = as_inputs(s, inputs)  # [B, L]
    dev = next(s.model.parameters()).device
    width = answer_width(s, x)
    if s.run is not None:
        parts = memory.evaluation(s.run.config, s.task, len(x) * n, None, width)
        memory.check(parts, dev, f"{len(x) * n:,} answers (--n {n})")
    rows = x.repeat_interleave(n, 0).to(dev)  # [B * n, L]
    if method == "greedy":
        out = greedy(s.model, s.layout, rows, width, s.sep)
    elif method == "beam":
        out = beam_search(s.model, s.layout, rows, width, beam_width, sep=s.sep)
    else:
        gen = torch.Generator(device=dev).manual_seed(seed)
        out = sample(s.model, s.layout, rows, width, temperature, top_k, gen, s.sep)
    vocab = s.task.vocab
    answers = [vocab.decode(a).removesuffix("<eos>").strip() for a in readable_answer(s.task, out.cpu())]
    return [{"input": vocab.decode(x[i]), "outputs": answers[i * n : (i + 1) * n]} for i in range(len(x))]
