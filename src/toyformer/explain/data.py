"""What every analysis runs on: a set of examples formatted for the model's layout (teacher
forced), the map of each stream's positions onto the example, and the scores of a forward pass.

A *stream* is the token sequence one stack reads: ``encoder`` (classifier, tagger, masked, the
seq2seq source) or ``decoder`` (the causal sequence, the seq2seq target). Its ``Frame`` says,
per position, which token is there, which input token it is (``input_index``), which answer
token the position produces (``answer_index``, ``labels``), and the digit places of numbers, so
that attention patterns (``roles``) and probe targets (``probes``) are defined once for every
layout.

Teacher-forced exact match equals greedy exact match: a decoder that gets every answer token
right given the right prefix produces that prefix itself, and one that does not, does not. So
every score here is one forward pass, and agrees with ``toyformer eval``'s greedy numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from toyformer.data import IGNORE, Batch, format_batch, lengths
from toyformer.errors import ConfigError
from toyformer.inspect.capture import Subject, as_inputs, parse_input, predict, subject
from toyformer.models.hookpoints import hooks
from toyformer.models.positional.abacus import digit_places
from toyformer.tasks.base import PAD, Examples


@dataclass
class Frame:
    """Positions of one stream, each ``[B, T]``: token ids as the stack reads them (``<pad>`` at
    padding), ``valid`` (real tokens, and the empty slot a classifier reads), ``col`` (the
    position counted from the first real token), ``input_index`` / ``answer_index`` (which input
    token is here / which answer token is produced here; -1: none), ``labels`` (that answer
    token, ``IGNORE`` elsewhere), ``places`` / ``answer_places`` (digit significance of the
    input digit here / of the answer digit produced here; 0: none; numeric tasks only)."""

    tokens: torch.Tensor
    valid: torch.Tensor
    col: torch.Tensor
    input_index: torch.Tensor
    answer_index: torch.Tensor
    labels: torch.Tensor
    places: torch.Tensor | None = None
    answer_places: torch.Tensor | None = None


@dataclass
class Inputs:
    """Examples formatted for a model: ``batch`` (teacher forced), ``frames`` per stream,
    ``input_tokens [B, L]`` / ``input_len [B]`` of the examples, and ``out`` (the stream whose
    positions carry the logits)."""

    examples: Examples
    batch: Batch
    layout: str
    frames: dict[str, Frame]
    input_len: torch.Tensor
    out: str

    def __len__(self) -> int:
        return len(self.examples)

    def rows(self, idx) -> Inputs:
        """The same inputs restricted to rows ``idx`` (same width, so positions still align)."""
        b = self.batch
        batch = Batch(b.inputs[idx], b.labels[idx], None if b.decoder_inputs is None else b.decoder_inputs[idx],
                      b.prompt_len)
        frames = {k: Frame(**{f: (None if v is None else v[idx]) for f, v in vars(fr).items()})
                  for k, fr in self.frames.items()}
        return Inputs(self.examples[idx], batch, self.layout, frames, self.input_len[idx], self.out)


def stream_names(layout: str) -> list[str]:
    return ["encoder", "decoder"] if layout == "seq2seq" else ["decoder"] if layout == "causal" else ["encoder"]


def out_stream(layout: str) -> str:
    return "decoder" if layout in ("causal", "seq2seq") else "encoder"


def examples_for(s: Subject, inputs) -> Examples:
    """``inputs`` as Examples: Examples as they are (teacher forced on their targets); ids or
    token strings with the model's own answers as targets (what it reads when it answers)."""
    if isinstance(inputs, Examples):
        return inputs
    x = as_inputs(s, inputs)
    return Examples(x, predict(s, x))


def prepare(s: Subject, inputs) -> Inputs:
    """Format ``inputs`` (Examples, ids or token strings) for ``s``'s model and map its streams."""
    ex = examples_for(s, inputs)
    dev = next(s.model.parameters()).device
    batch = format_batch(ex, s.layout, s.sep).to(dev)
    n_in = lengths(ex.input).to(dev)
    frames = {}
    for stream in stream_names(s.layout):
        frames[stream] = _frame(s, stream, batch, ex.to(dev), n_in)
    return Inputs(ex, batch, s.layout, frames, n_in, out_stream(s.layout))


def _arange(t: int, like: torch.Tensor) -> torch.Tensor:
    return torch.arange(t, device=like.device).expand(like.shape[0], t)


def _frame(s: Subject, stream: str, batch: Batch, ex: Examples, n_in: torch.Tensor) -> Frame:
    layout, none = s.layout, None
    if stream == "decoder" and layout == "seq2seq":
        tokens = batch.decoder_inputs
    elif layout == "classifier":
        tokens = s.model.encoder_tokens(batch.inputs)
    else:
        tokens = batch.inputs
    t = tokens.shape[1]
    cols = _arange(t, tokens)
    real = tokens != PAD
    first = real.long().argmax(1, keepdim=True)  # [B, 1] left padding of causal prompts
    col = (cols - first).masked_fill(~real, -1)
    valid = real.clone()
    none = torch.full_like(tokens, -1)
    input_index, answer_index = none.clone(), none.clone()
    labels = torch.full_like(tokens, IGNORE)
    if layout == "classifier":
        if s.model.pooling == "slot":
            valid[:, -1] = True  # the empty slot the answer is read at
            col[:, -1] = n_in
        input_index = col.masked_fill(~real, -1)
        answer_index = input_index.clone()
        labels = batch.labels[:, None].expand_as(tokens).masked_fill(~valid, IGNORE)
    elif layout == "tagger" or (layout == "seq2seq" and stream == "encoder"):
        input_index = col.masked_fill(~real | (col >= n_in[:, None]), -1)
        answer_index = input_index.clone()
        if layout == "tagger":
            labels = batch.labels
    elif layout == "masked":
        is_input = real & (col < n_in[:, None])
        input_index = col.masked_fill(~is_input, -1)
        answer_index = (col - n_in[:, None]).masked_fill(is_input | ~real, -1)
        labels = batch.labels
    elif layout == "causal":
        start = batch.prompt_len - int(s.sep) - n_in[:, None]  # [B, 1] column of the first input token
        is_input = (cols >= start) & (cols < batch.prompt_len - int(s.sep))
        input_index = (cols - start).masked_fill(~is_input, -1)
        labels = batch.labels
        answer_index = (cols - (batch.prompt_len - 1)).masked_fill(labels == IGNORE, -1)
    else:  # seq2seq decoder: position j reads <bos> y_0 .. and produces y_j
        labels = batch.labels
        answer_index = cols.masked_fill(labels == IGNORE, -1)
    frame = Frame(tokens, valid, col, input_index, answer_index, labels)
    if getattr(s.task, "numeric", False):
        _add_places(s, frame, ex)
    return frame


def _add_places(s: Subject, frame: Frame, ex: Examples) -> None:
    """Digit significance (1: units) of the input digits and of the answer digit each position produces."""
    vocab = s.task.vocab
    digit_ids = torch.tensor([vocab.id(str(d)) for d in range(10)], device=frame.tokens.device)
    inputs_only = frame.tokens.masked_fill(frame.input_index < 0, PAD)
    frame.places = digit_places(inputs_only, digit_ids, "none")
    answer = ex.target
    mode = "all" if getattr(s.task, "reverse_answer", False) else "none"  # least significant digit first
    target_places = digit_places(answer, digit_ids, mode)  # [B, A]
    j = frame.answer_index
    picked = target_places.gather(1, j.clamp(0, answer.shape[1] - 1))
    frame.answer_places = picked.masked_fill((j < 0) | (j >= answer.shape[1]), 0)


def forward(model, inp: Inputs, table: dict | None = None) -> torch.Tensor:
    """Logits of ``model`` on ``inp`` in evaluation mode without gradients, with hooks ``table``."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad(), hooks(model, table or {}):
            return model(inp.batch)
    finally:
        model.train(was)


def cached(model, inp: Inputs, names) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits and the activations ``names`` (detached) of one forward pass."""
    cache: dict[str, torch.Tensor] = {}

    def keep(x, name):
        cache[name] = x.detach()

    logits = forward(model, inp, {n: keep for n in names})
    return logits, cache


def row_scores(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per row: ``correct`` (every counted answer token right), ``hits`` / ``count`` (tokens),
    ``loss`` (summed cross-entropy over counted tokens)."""
    if labels.dim() == 1:
        logits, labels = logits[:, None], labels[:, None]
    counted = labels != IGNORE
    pred = logits.argmax(-1)
    ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE,
                         reduction="none").view(labels.shape)
    return {"correct": ((pred == labels) | ~counted).all(-1), "hits": ((pred == labels) & counted).sum(-1),
            "count": counted.sum(-1), "loss": ce.sum(-1)}


def score(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Exact match, per-token accuracy and mean loss per counted token (as ``toyformer eval``)."""
    r = row_scores(logits, labels)
    count = max(int(r["count"].sum()), 1)
    return {"exact_match": r["correct"].float().mean().item(), "token_acc": r["hits"].sum().item() / count,
            "loss": r["loss"].sum().item() / count}


def check_inputs(s: Subject, inputs: str | None, corrupt: str | None = None) -> None:
    """Token strings for a run: every token one of those its inputs hold, the number of tokens
    one of the lengths its inputs have, and a corrupted input as long as the clean one. One-line
    ConfigError naming the bad value and the allowed ones."""
    texts = [(t, w) for t, w in ((inputs, "input"), (corrupt, "corrupted input")) if t is not None]
    if not texts or s.run is None:
        return
    name = f"task {s.task.name!r}"
    ids = {w: parse_input(s.task.vocab, t, name) for t, w in texts}
    if len(ids) == 2 and len(ids["input"]) != len(ids["corrupted input"]):
        raise ConfigError(f"clean and corrupted inputs must have the same number of tokens; got "
                          f"{len(ids['input'])} and {len(ids['corrupted input'])}")
    seen = Examples.cat([s.run.splits.val, s.run.splits.test, s.task.sample(1024, torch.Generator().manual_seed(0))])
    tokens = sorted(set(seen.input.unique().tolist()) - {PAD})
    sizes = sorted(set(lengths(seen.input).tolist()))
    allowed = " ".join(s.task.vocab.tokens[i] for i in tokens)
    for text, what in texts:
        bad = [i for i in ids[what].tolist() if i not in tokens]
        if bad:
            raise ConfigError(f"{what} {text!r}: token {s.task.vocab.tokens[bad[0]]!r} is in the vocabulary of {name} "
                              f"but never in its inputs; allowed: {allowed}")
        if len(ids[what]) not in sizes:
            contiguous = sizes == list(range(sizes[0], sizes[-1] + 1)) and len(sizes) > 2
            span = f"{sizes[0]}..{sizes[-1]}" if contiguous else ", ".join(map(str, sizes))
            raise ConfigError(f"{what} {text!r} has {len(ids[what])} tokens, a length this run's inputs never have; "
                              f"allowed: {span} tokens")


def paired(s: Subject, n: int, inputs: Examples | None = None, reference: Examples | None = None
           ) -> tuple[Inputs, Inputs]:
    """``n`` test examples to score and ``n`` validation examples to take means and resamples
    from (or ``inputs`` and ``reference``), prepared together so that their positions align."""
    test = held_out(s, n) if inputs is None else inputs
    ref = held_out(s, n, "val") if reference is None else reference
    both = prepare(s, Examples.cat([test, ref]))
    return both.rows(slice(0, len(test))), both.rows(slice(len(test), None))


def held_out(s: Subject, n: int, split: str = "test") -> Examples:
    """The first ``n`` examples of the run's ``split`` (a bare model has none: a ConfigError)."""
    if s.run is None:
        raise ConfigError("explaining a bare model needs inputs; pass a Run or a run directory for held-out data")
    ex = getattr(s.run.splits, split)
    return ex[:n]


__all__ = ["Frame", "Inputs", "cached", "check_inputs", "paired", "examples_for", "forward", "held_out", "out_stream",
           "prepare", "row_scores",
           "score", "stream_names", "subject"]
