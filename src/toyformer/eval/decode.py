"""Batched decoding for the causal and seq2seq layouts: greedy, sampling and beam search.

Every row decodes in parallel; a row that has produced ``<eos>`` is padded with ``<pad>`` from
then on, and decoding stops when every row is done or ``max_new`` tokens were produced. The
answers come back as ``[B, max_new]`` (``<eos>`` included, ``<pad>`` after it).

By default the decoders keep a KV cache (each new token costs one query against the cached keys
and values); ``cache=False`` recomputes the whole prefix every step, the reference the cached
path is tested against.

>>> greedy(model, "causal", examples.input, max_new=12)                       # doctest: +SKIP
>>> beam_search(model, "seq2seq", examples.input, max_new=6, beam_width=4)     # doctest: +SKIP
>>> g = torch.Generator().manual_seed(0)                                          # doctest: +SKIP
>>> sample(model, "causal", x, 12, temperature=0.8, top_k=5, generator=g)       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from toyformer.data import causal_prompt
from toyformer.tasks.base import BOS, EOS, PAD


class Stepper:
    """One batch being decoded: ``logits [B, V]`` for the next token, ``step(tokens [B])``
    appends a token to every row, ``reorder(index)`` keeps rows ``index`` (beam search)."""

    def __init__(self, model, layout: str, inputs: torch.Tensor, max_new: int, sep: bool, cache: bool):
        if layout not in ("causal", "seq2seq"):
            raise ValueError(f"decoding applies to causal and seq2seq layouts, not {layout!r}")
        self.model, self.layout, self.cache = model, layout, None
        prefix = causal_prompt(inputs, sep) if layout == "causal" else inputs  # [B, P] or [B, S]
        if cache:
            self.logits, self.cache = model.start(prefix, max_new)
        elif layout == "causal":
            self.seq = prefix
            self.logits = model.logits(self.seq)[:, -1]
        else:
            self.memory, self.src_valid = model.encode(prefix), prefix != PAD
            self.seq = torch.full((len(prefix), 1), BOS, dtype=torch.long, device=prefix.device)
            self.logits = model.decode(self.seq, self.memory, self.src_valid)[:, -1]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.cache is not None:
            self.logits = self.model.step(tokens, self.cache)
            return self.logits
        self.seq = torch.cat([self.seq, tokens[:, None]], 1)
        if self.layout == "causal":
            self.logits = self.model.logits(self.seq)[:, -1]
        else:
            self.logits = self.model.decode(self.seq, self.memory, self.src_valid)[:, -1]
        return self.logits

    def reorder(self, index: torch.Tensor) -> None:
        self.logits = self.logits.index_select(0, index)
        if self.cache is not None:
            self.cache.reorder(index)
            return
        self.seq = self.seq.index_select(0, index)
        if self.layout == "seq2seq":
            self.memory, self.src_valid = self.memory.index_select(0, index), self.src_valid.index_select(0, index)


def _eval_mode(fn):
    """Decode with dropout and random positions off; restore the model's mode afterwards."""

    def wrapper(model, *args, **kwargs):
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return fn(model, *args, **kwargs)
        finally:
            model.train(was_training)

    wrapper.__doc__, wrapper.__name__ = fn.__doc__, fn.__name__
    return wrapper


def _generate(st: Stepper, b: int, max_new: int, choose: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    out = torch.full((b, max_new), PAD, dtype=torch.long, device=st.logits.device)
    done = torch.zeros(b, dtype=torch.bool, device=out.device)
    for i in range(max_new):
        nxt = choose(st.logits).masked_fill(done, PAD)  # [B]
        out[:, i] = nxt
        done = done | (nxt == EOS)
        if i == max_new - 1 or bool(done.all()):
            break
        st.step(nxt)
    return out  # [B, max_new]


@_eval_mode
def greedy(model, layout: str, inputs: torch.Tensor, max_new: int, sep: bool = True,
           cache: bool = True) -> torch.Tensor:
    """Greedy answers ``[B, max_new]`` for right-padded task inputs ``[B, L]``."""
    st = Stepper(model, layout, inputs, max_new, sep, cache)
    return _generate(st, len(inputs), max_new, lambda logits: logits.argmax(-1))


@_eval_mode
def sample(model, layout: str, inputs: torch.Tensor, max_new: int, temperature: float = 1.0,
           top_k: int | None = None, generator: torch.Generator | None = None, sep: bool = True,
           cache: bool = True) -> torch.Tensor:
    """Sampled answers ``[B, max_new]``: softmax of ``logits / temperature``, restricted to the
    ``top_k`` most likely tokens when given; ``generator`` (on the model's device) makes it
    reproducible."""
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0 (use greedy for the argmax)")

    def choose(logits: torch.Tensor) -> torch.Tensor:
        logits = logits / temperature
        if top_k is not None:
            kth = logits.topk(min(top_k, logits.shape[-1]), -1).values[:, -1:]  # [B, 1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]

    st = Stepper(model, layout, inputs, max_new, sep, cache)
    return _generate(st, len(inputs), max_new, choose)


def length_penalty(length: torch.Tensor, alpha: float) -> torch.Tensor:
    """GNMT's ``((5 + length) / 6) ** alpha``; a beam's score is its log-probability divided by
    this (``alpha`` 0: plain log-probability; larger: longer answers favoured)."""
    return ((5.0 + length.float()) / 6.0) ** alpha


@_eval_mode
def beam_search(model, layout: str, inputs: torch.Tensor, max_new: int, beam_width: int = 4,
                alpha: float = 0.0, sep: bool = True, cache: bool = True,
                return_scores: bool = False):
    """Batched beam search: the ``beam_width`` best partial answers of every row are kept, all
    ``B * beam_width`` of them decoded as one batch. A beam that produced ``<eos>`` is finished:
    it continues with ``<pad>`` at no cost and competes with its final score. Beams are ranked by
    log-probability / ``length_penalty(length, alpha)`` (length counts ``<eos>``). Decoding
    stops as soon as no unfinished beam can overtake a finished one in any row.

    Returns the best answer per row ``[B, max_new]`` (and its log-probability ``[B]`` with
    ``return_scores``). ``beam_width=1`` is greedy decoding.
    """
    b, k = len(inputs), beam_width
    st = Stepper(model, layout, inputs, max_new, sep, cache)
    logp = F.log_softmax(st.logits.float(), -1)  # [B, V]
    v = logp.shape[-1]
    if not 1 <= k <= v:
        raise ValueError(f"beam_width={k} must be between 1 and the vocabulary size {v}")
    scores, tok = logp.topk(k, -1)  # [B, k]
    st.reorder(torch.arange(b, device=inputs.device).repeat_interleave(k))
    seqs = torch.full((b, k, max_new), PAD, dtype=torch.long, device=inputs.device)
    seqs[:, :, 0] = tok
    done = tok == EOS  # [B, k]
    length = torch.ones_like(tok)
    only_pad = torch.full((v,), float("-inf"), device=logp.device)
    only_pad[PAD] = 0.0
    rows = torch.arange(b, device=inputs.device)[:, None]  # [B, 1]
    for i in range(1, max_new):
        if _settled(scores, length, done, alpha, max_new):
            break
        logp = F.log_softmax(st.step(seqs[:, :, i - 1].reshape(-1)).float(), -1).view(b, k, v)
        logp = torch.where(done[..., None], only_pad, logp)  # finished beams: <pad>, free
        cand = scores[..., None] + logp  # [B, k, V]
        cand_len = length + (~done).long()  # [B, k]
        ranked = cand / length_penalty(cand_len, alpha)[..., None]
        top = ranked.view(b, -1).topk(k, -1).indices  # [B, k] over k * V candidates
        beam, tok = top // v, top % v
        scores = cand.view(b, -1).gather(1, top)
        length = cand_len.gather(1, beam)
        done = done.gather(1, beam) | (tok == EOS)
        seqs = seqs[rows, beam]  # [B, k, max_new]
        seqs[:, :, i] = tok
        st.reorder((rows * k + beam).view(-1))
    best = (scores / length_penalty(length, alpha)).argmax(-1)  # [B]
    out = seqs[rows[:, 0], best]
    return (out, scores[rows[:, 0], best]) if return_scores else out


def _settled(scores: torch.Tensor, length: torch.Tensor, done: torch.Tensor, alpha: float, max_new: int) -> bool:
    """True when, in every row, a finished beam beats the best score any unfinished beam could
    still reach (log-probabilities only fall; with ``alpha > 0`` the penalty is at most that of
    ``max_new`` tokens), so that going on cannot change the answer."""
    neg_inf = torch.tensor(float("-inf"), device=scores.device)
    finished = torch.where(done, scores / length_penalty(length, alpha), neg_inf).amax(-1)  # [B]
    reach = length_penalty(length if alpha <= 0 else torch.full_like(length, max_new), alpha)
    open_best = torch.where(done, neg_inf, scores / reach).amax(-1)  # [B]
    return bool((finished >= open_best).all())


def decode(model, layout: str, inputs: torch.Tensor, max_new: int, sep: bool = True,
           method: str = "greedy", beam_width: int = 4) -> torch.Tensor:
    """Answers by ``method`` (``greedy`` or ``beam``), as ``eval.decode`` chooses."""
    if method == "beam":
        return beam_search(model, layout, inputs, max_new, beam_width, sep=sep)
    return greedy(model, layout, inputs, max_new, sep)
