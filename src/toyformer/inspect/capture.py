"""Look inside a trained model: attention weights on chosen inputs, embeddings in 2-D, samples.

Everything takes a ``Run``, a run directory, or a bare model with its task and layout.

>>> maps = toyformer.attention("runs/rev", "3 1 4 1 5")            # doctest: +SKIP
>>> maps.names()                                                  # doctest: +SKIP
['encoder.blocks.0.attn', 'encoder.blocks.1.attn']
>>> w, queries, keys = maps.sample("encoder.blocks.0.attn", 0)      # doctest: +SKIP
>>> w.shape, queries                                              # doctest: +SKIP
(torch.Size([4, 5, 5]), ['3', '1', '4', '1', '5'])
>>> [m.name for m in toyformer.embeddings("runs/rev")]             # doctest: +SKIP
['encoder tokens', 'encoder positions']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from toyformer.data import IGNORE, Batch, answer_tokens, causal_prompt, format_batch
from toyformer.eval.decode import greedy
from toyformer.errors import ConfigError
from toyformer.models import CausalLM, Seq2Seq, record_attention
from toyformer.models.positional.embedder import Embedder
from toyformer.tasks.base import BOS, EOS, PAD, SEP, SPECIALS, UNK, Examples, Task, Vocab, readable_answer

if TYPE_CHECKING:
    from toyformer.run import Run


@dataclass
class Subject:
    """What the inspectors need: a model, its task, layout and ``data.sep``, and the run if any."""

    model: nn.Module
    task: Task
    layout: str
    sep: bool = True
    run: Run | None = None


def subject(source, task=None, layout: str | None = None, sep: bool = True, device: str | None = None) -> Subject:
    """Accept a ``Run``, a run directory, a model (then ``task`` and ``layout`` are required), or
    a ``Subject`` as it is."""
    from toyformer.run import Run, load_run

    if isinstance(source, Subject):
        return source
    if isinstance(source, (str, Path)):
        source = load_run(source, device=device)
    if isinstance(source, Run):
        cfg = source.config
        return Subject(source.model, source.task, cfg.layout, cfg.data.sep, source)
    if isinstance(source, nn.Module):
        if task is None or layout is None:
            raise ConfigError("inspecting a bare model needs its task and layout")
        return Subject(source, task, layout, sep)
    raise ConfigError(f"cannot inspect a {type(source).__name__}; allowed: a Run, a run directory, a model, or a "
                      "Subject")


def parse_input(vocab: Vocab, text: str, task_name: str = "the task") -> torch.Tensor:
    """A space-separated token string -> ids ``[L]``; unknown tokens are a one-line ConfigError.

    >>> parse_input(Vocab(["a", "b"]), "a b a").tolist()
    [5, 6, 5]
    """
    tokens = text.split()
    allowed = vocab.tokens[len(SPECIALS):]
    if not tokens:
        raise ConfigError(f"empty input for {task_name}; give space-separated tokens from: {_listing(allowed)}")
    bad = [t for t in tokens if t not in allowed]
    if bad:
        raise ConfigError(f"token {bad[0]!r} is not in the vocabulary of {task_name}; allowed: {_listing(allowed)}")
    return vocab.encode(tokens)


def _listing(tokens, limit: int = 60) -> str:
    shown = " ".join(tokens[:limit])
    return shown if len(tokens) <= limit else f"{shown} ... ({len(tokens)} tokens)"


def as_inputs(s: Subject, inputs) -> torch.Tensor:
    """Examples, ids ``[B, L]`` or ``[L]``, a token string, or a list of token strings -> ``[B, L]``."""
    if isinstance(inputs, Examples):
        return inputs.input
    if isinstance(inputs, torch.Tensor):
        return inputs if inputs.dim() == 2 else inputs.unsqueeze(0)
    name = f"task {getattr(s.task, 'name', '?')!r}"
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    rows = [parse_input(s.task.vocab, t, name) for t in texts]
    x = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=PAD)  # [B, L]
    width = getattr(s.model, "width", None)
    if getattr(s.model, "pooling", None) == "flatten":
        assert width is not None  # a flatten-pooling model is built for a fixed width
        if x.shape[1] > width:
            raise ConfigError(f"input of {x.shape[1]} tokens is too long for this flatten-pooling model; allowed: <= "
                              f"{width}")
    _check_fits(s, x)
    return x


def _check_fits(s: Subject, x: torch.Tensor) -> None:
    """A ConfigError when running the model on inputs ``x [B, L]`` (and an answer of about their
    length) would need more memory than the device has: an input of a million tokens is refused
    in one line, not by the allocator minutes later."""
    cfg = getattr(s.run, "config", None)
    if cfg is None:
        return
    from toyformer.run import memory

    seq, layers = memory.shape(s.layout, cfg.model, x.shape[1], x.shape[1] + 2)
    parts = {"activations": memory.activation_bytes(cfg.model, x.shape[0], seq, layers, backward=False)}
    device = next(s.model.parameters()).device
    memory.check(parts, device, f"an input of {x.shape[1]} tokens")


def answer_width(s: Subject, inputs: torch.Tensor) -> int:
    """Room for a generated answer: the task's widest answer, or the input's width + 2."""
    ex = s.task.sample(256, torch.Generator().manual_seed(0))
    return max(answer_tokens(ex).shape[1], inputs.shape[1] + 2)


@torch.no_grad()
def masked_batch_for(s: Subject, inputs: torch.Tensor) -> Batch:
    """The masked layout's batch for right-padded inputs ``[B, L]``: each row's input followed by
    one ``<unk>`` slot per token of the answer the task gives inputs of its length (the task's
    widest answer where it has no length)."""
    n_tok = (inputs != PAD).sum(1)  # [B]
    g = torch.Generator().manual_seed(0)
    widths = {}
    for n in n_tok.unique().tolist():  # one draw per distinct length, not per row
        try:
            ex = s.task.sample(1, g, length=n)
            widths[n] = int((ex.target != PAD).sum()) if ex.input.shape[1] == n else None
        except ConfigError:  # a task without a length
            widths[n] = None
        if widths[n] is None:
            widths[n] = int((s.task.sample(256, g).target != PAD).sum(1).max())
    width = torch.tensor([widths[n] for n in n_tok.tolist()], device=inputs.device)  # [B]
    cols = torch.arange(int(width.max()), device=inputs.device).unsqueeze(0)
    slots = torch.where(cols < width.unsqueeze(1), UNK, PAD)  # [B, A], right-padded per row
    return format_batch(Examples(inputs, slots), "masked", s.sep)


def predict(s: Subject, inputs: torch.Tensor) -> torch.Tensor:
    """The model's own answers for right-padded inputs ``[B, L]``: ``[B, 1]`` class, ``[B, L]``
    tags, ``[B, A]`` greedy answers ending in ``<eos>`` for the decoders, or the ``[B, A]``
    answers read at the masked layout's ``<unk>`` slots."""
    model, was_training = s.model, s.model.training
    model.eval()
    dev = next(model.parameters()).device
    inputs = inputs.to(dev)
    if s.layout in ("causal", "seq2seq"):
        out = greedy(model, s.layout, inputs, answer_width(s, inputs), s.sep)
    elif s.layout == "masked":  # the answers at each row's slots, right-padded
        batch = masked_batch_for(s, inputs)
        n_slots = (batch.labels != IGNORE).sum(1, keepdim=True)  # [B, 1]
        keep = torch.arange(int(n_slots.max()), device=dev).unsqueeze(0) < n_slots
        answers = model(batch).argmax(-1)[batch.labels != IGNORE]  # row by row
        out = torch.full(keep.shape, PAD, dtype=torch.long, device=dev).masked_scatter(keep, answers)
    else:
        out = model(Batch(inputs, inputs)).argmax(-1)
        out = out.unsqueeze(1) if out.dim() == 1 else out.masked_fill(inputs == PAD, PAD)
    model.train(was_training)
    return out.cpu()


@dataclass
class AttentionMaps:
    """Attention weights of one forward pass under stable names, with the tokens on each axis.

    ``weights[name]`` is ``[B, H, queries, keys]``; ``tokens["encoder"]`` / ``tokens["decoder"]``
    are the ids ``[B, T]`` each attention ran over; ``outputs`` are the model's answers.
    """

    weights: dict[str, torch.Tensor]
    tokens: dict[str, torch.Tensor]
    inputs: torch.Tensor
    outputs: torch.Tensor
    vocab: Vocab
    layout: str

    def names(self) -> list[str]:
        return list(self.weights)

    def axes(self, name: str) -> tuple[str, str]:
        """Which token sequence the queries and the keys of ``name`` come from."""
        side = name.split(".", 1)[0]
        return (side, "encoder") if name.endswith("cross_attn") else (side, side)

    def sample(self, name: str, row: int) -> tuple[torch.Tensor, list[str], list[str]]:
        """Weights ``[H, q, k]`` of one example with padding dropped, and the query/key tokens."""
        q_side, k_side = self.axes(name)
        q_ids, k_ids = self.tokens[q_side][row], self.tokens[k_side][row]
        q_keep, k_keep = q_ids != PAD, k_ids != PAD
        w = self.weights[name][row][:, q_keep][:, :, k_keep]
        words = lambda ids: [self.vocab.tokens[i] for i in ids.tolist()]  # noqa: E731
        return w, words(q_ids[q_keep]), words(k_ids[k_keep])

    def describe(self, row: int) -> tuple[str, str]:
        """The input and the model's answer of one example as token strings."""
        return self.vocab.decode(self.inputs[row]), self.vocab.decode(self.outputs[row])


@torch.no_grad()
def attention(source, inputs=None, task=None, layout: str | None = None, sep: bool = True) -> AttentionMaps:
    """Record every attention map of ``source`` on ``inputs``.

    ``source``: a ``Run``, a run directory, or a model (with ``task`` and ``layout``).
    ``inputs``: ``Examples``, ids ``[B, L]``, a token string such as ``"3 1 4"``, or a list of
    them; default: the first 8 test examples of a run. Decoders run on their own greedy answers,
    so the maps show what the model attends to while producing what it produces.
    """
    s = subject(source, task, layout, sep)
    if inputs is None:
        if s.run is None:
            raise ConfigError("attention on a bare model needs inputs")
        inputs = s.run.splits.test[:8]
    x = as_inputs(s, inputs)  # [B, L]
    outputs = predict(s, x)
    dev = next(s.model.parameters()).device
    was_training = s.model.training
    s.model.eval()
    tokens = {}
    with record_attention(s.model) as recorded:
        if s.layout in ("classifier", "tagger"):
            tokens["encoder"] = x
            s.model(Batch(x.to(dev), x.to(dev)))
        elif s.layout == "masked":
            batch = masked_batch_for(s, x.to(dev))
            tokens["encoder"] = batch.inputs.cpu()
            s.model(batch)
        elif s.layout == "causal":
            seq = torch.cat([causal_prompt(x, s.sep), outputs], 1)[:, :-1]  # what the model read
            tokens["decoder"] = seq
            cast(CausalLM, s.model).logits(seq.to(dev))
        else:
            dec = torch.cat([torch.full_like(outputs[:, :1], BOS), outputs[:, :-1]], 1)
            dec = dec.masked_fill(dec == EOS, PAD)  # [B, A] decoder inputs behind <bos>
            tokens["encoder"], tokens["decoder"] = x, dec
            model = cast(Seq2Seq, s.model)
            model.decode(dec.to(dev), model.encode(x.to(dev)), x.to(dev) != PAD)
    s.model.train(was_training)
    weights = {k: v.cpu() for k, v in recorded.items()}
    return AttentionMaps(weights, tokens, x, outputs, s.task.vocab, s.layout)


@dataclass
class EmbeddingMap:
    """Rows of an embedding table in 2-D: raw when ``d_model`` is 2, else the top two principal
    components (``explained``: the share of variance they keep)."""

    name: str
    kind: str  # "tokens" or "positions"
    points: torch.Tensor  # [N, 2]
    labels: list[str]
    method: str  # "raw" or "pca"
    explained: float | None


def project_2d(x: torch.Tensor) -> tuple[torch.Tensor, str, float | None]:
    """``[N, d]`` -> ``[N, 2]``: as is for ``d <= 2``, else PCA by SVD (signs fixed, deterministic).

    >>> p, method, _ = project_2d(torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.5, 0.0]]))
    >>> method, p.shape
    ('pca', torch.Size([3, 2]))
    """
    x = x.detach().float().cpu()
    if x.shape[1] <= 2:
        return torch.nn.functional.pad(x, (0, 2 - x.shape[1])), "raw", None
    centred = x - x.mean(0)
    u, sv, _ = torch.linalg.svd(centred, full_matrices=False)
    points = u[:, :2] * sv[:2]  # [N, 2]
    signs = points[points.abs().argmax(0), torch.arange(2)].sign()  # largest coordinate positive
    points = points * signs.masked_fill(signs == 0, 1.0)
    var = sv.pow(2)
    return points, "pca", float(var[:2].sum() / var.sum().clamp(min=1e-12))


def _used_tokens(vocab: Vocab, layout: str, side: str, sep: bool) -> list[int]:
    """Task tokens plus the specials this side of the model reads (never ``<pad>`` or ``<unk>``):
    ``<bos>`` starts a seq2seq decoder's input, ``<sep>`` ends a causal prompt."""
    specials = {("seq2seq", "decoder"): [BOS], ("causal", "decoder"): [SEP] if sep else []}.get((layout, side), [])
    return specials + list(range(len(SPECIALS), len(vocab)))


def embeddings(source, task=None, layout: str | None = None, positions: int | None = None) -> list[EmbeddingMap]:
    """Token embeddings (and learned positional embeddings) of every embedder of the model, in 2-D.

    ``positions``: how many positions to show (default: the widest sequence of the run's test
    set, or the whole table for a bare model).
    """
    s = subject(source, task, layout)
    widths = _widths(s) if positions is None else {}
    maps = []
    for path, module in s.model.named_modules():
        if not isinstance(module, Embedder):
            continue
        side = path.removesuffix(".embed") if path != "embed" else "decoder"  # Seq2Seq: decoder embedding on top
        ids = _used_tokens(s.task.vocab, s.layout, side, s.sep)
        pts, method, explained = project_2d(module.tok.weight[ids])
        maps.append(EmbeddingMap(f"{side} tokens", "tokens", pts, [s.task.vocab.tokens[i] for i in ids], method,
                                 explained))
        if module.table is not None:
            n = min(positions or widths.get(side, module.max_len), module.max_len)
            pts, method, explained = project_2d(module.table.weight[:n])
            maps.append(EmbeddingMap(f"{side} positions", "positions", pts, [str(i) for i in range(n)], method,
                                     explained))
    return maps


def _widths(s: Subject) -> dict[str, int]:
    """The widest sequence each side of the model reads on the run's test set."""
    if s.run is None:
        return {}
    batch = format_batch(s.run.splits.test[:512], s.layout, s.sep)
    if s.layout == "seq2seq":
        assert batch.decoder_inputs is not None  # a seq2seq batch has decoder inputs
        return {"encoder": batch.inputs.shape[1], "decoder": batch.decoder_inputs.shape[1]}
    return {"decoder" if s.layout == "causal" else "encoder": batch.inputs.shape[1]}


def samples(source, n: int = 8) -> list[dict]:
    """The first ``n`` test examples of a run with the model's answers: input, target, output, correct."""
    s = subject(source)
    if s.run is None:  # a Subject without its run: no test set
        raise AttributeError("samples needs a run; this Subject has none (run=None)")
    ex = s.run.splits.test[:n]
    out = predict(s, ex.input)
    vocab = s.task.vocab
    if s.layout in ("causal", "seq2seq"):
        ref = answer_tokens(ex)
    else:
        width = max(0, out.shape[1] - ex.target.shape[1])
        ref = ex.target if s.layout == "classifier" else torch.nn.functional.pad(ex.target, (0, width))
    ref, out = readable_answer(s.task, ref), readable_answer(s.task, out)  # digits in reading order
    rows = []
    for i in range(len(ex)):
        target, output = vocab.decode(ref[i]), vocab.decode(out[i])
        rows.append({"input": vocab.decode(ex.input[i]), "target": target, "output": output,
                     "correct": target == output})
    return rows
