"""Validation/test sets and the training data source, with train and test kept disjoint.

- A task with a small finite ``domain()`` and ``holdout``: the domain is shuffled once (eval
  seed) and cut into test, validation and training parts, so the sets are disjoint by
  construction.
- A task without holdout (memorising a table, counting 10 patterns): validation and test are
  the whole domain when it is finite, and training sees every example.
- Any other task: validation and test are drawn from their own seeds, and every training
  example whose input equals a held-out input is dropped before it is used (compared by a
  64-bit key of the tokens: equal inputs always have equal keys, so nothing held out leaks).
- **Small sub-domains.** Holding out every input that validation and test happen to draw would
  take a small sub-domain out of training altogether: ``addition`` draws single-digit +
  single-digit sums a ninth of the time, only 100 inputs, and 2,512 held-out rows covered 98 of
  them, so the model never saw that format and got all of it wrong. So when the held-out rows
  repeat an input (the sign of such a sub-domain), a probe of ``64 x`` as many training draws
  finds the *frequent* inputs, those expected at least once among the held-out rows
  (probability ``>= 1 / held-out rows``). Frequent inputs are training-only: validation and test
  are drawn again without them (from the same seeds), so they stay disjoint from training and
  measure the rest of the task. Tasks whose held-out rows are all distinct are untouched.

Training data is a stream (fresh samples every step) or a fixed pool visited in epochs.

**The confirmation set** (``Splits.confirm``), with a target (``eval.target``): the examples
that, added to validation, decide whether the run is *solved* (``eval/solved.py``). On a finite
domain it is the rest of the held-out part (the test part: validation and test together are every
held-out input, so the check is exhaustive); without holdout, validation already is the whole
domain. On a stream, fresh held-out rows (their own seed, kept out of training like validation
and test) bring validation up to the size whose 100% bounds the error at ``1 - target`` with
95% confidence (2,995 rows for 99.9%).

**Length ranges** (``data.min_length`` .. ``data.max_length``, for length generalisation): the
task's own length parameter is replaced by lengths drawn from the range (what a length is, is
the task's business: symbols for ``reverse``, operand digits for ``addition``). Validation and
test sets then hold every length of the range (uniform per row, disjoint from training as
above); training batches draw a length per batch (``data.length_sampling=batch``), per row
(``row``), or per batch from a range whose top grows linearly from ``min_length`` to
``max_length`` over the first half of ``train.steps`` (``curriculum``). A task with a finite
domain is sampled like any other task when a range is set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from toyformer.errors import ConfigError
from toyformer.stats import needed
from toyformer.tasks.base import Examples

_MULT = 0x9E3779B97F4A7C15 - 2**64  # an odd 64-bit constant (as a signed int64)


def input_keys(inputs: torch.Tensor) -> torch.Tensor:
    """A 64-bit key per row of right-padded token ids ``[n, T] -> [n]`` (int64 arithmetic wraps)."""
    t = inputs.shape[1]
    powers = torch.full((t,), _MULT, dtype=torch.long).cumprod(0).to(inputs.device)  # [T]
    return (inputs * powers).sum(-1)


@dataclass(frozen=True)
class Lengths:
    """A range of task lengths ``lo..hi`` and how training draws from it (see the module doc)."""

    lo: int
    hi: int
    mode: str = "batch"  # batch | row | curriculum

    @classmethod
    def from_config(cls, data_cfg) -> Lengths | None:
        if data_cfg.min_length is None:
            return None
        return cls(data_cfg.min_length, data_cfg.max_length, data_cfg.length_sampling)

    def top(self, step: int, total: int) -> int:
        """The longest length a curriculum allows at 0-based ``step`` of ``total``."""
        if self.mode != "curriculum":
            return self.hi
        grown = (self.hi - self.lo + 1) * step // max(1, total // 2)
        return min(self.hi, self.lo + grown)

    def sampler(self, task, generator: torch.Generator | None = None, step: int | None = None, total: int = 1):
        """``sample(n, generator)`` for the training batch of ``step`` (its length drawn here,
        once, from ``generator``), or for held-out sets (``step`` None: every length, per row)."""
        if step is None or self.mode == "row":
            return lambda n, g: self.per_row(task, n, g)
        length = int(torch.randint(self.lo, self.top(step, total) + 1, (1,), generator=generator))
        return lambda n, g: task.sample(n, g, length=length)

    def per_row(self, task, n: int, generator: torch.Generator) -> Examples:
        """``n`` examples, each of a length drawn uniformly from the range (grouped by length)."""
        per_row = torch.randint(self.lo, self.hi + 1, (n,), generator=generator)  # [n]
        counts = torch.bincount(per_row - self.lo, minlength=self.hi - self.lo + 1).tolist()
        return Examples.cat([task.sample(c, generator, length=self.lo + i) for i, c in enumerate(counts) if c])


@dataclass
class Splits:
    val: Examples
    test: Examples
    pool: Examples | None  # training examples to draw from (finite domains, fixed pools)
    exclude: torch.Tensor | None  # sorted keys of held-out inputs, for streams
    confirm: Examples | None = None  # with a target: the rows beyond val that confirm a solve
    # errors on val (+ confirm) are counted, not bounded: every held-out input of a finite domain, or
    # a stream with too few inputs outside the frequent ones to draw the rows that would bound them
    exhaustive: bool = False
    domain: int | None = None  # the size of a finite domain (None: a stream)

    def sizes(self) -> dict:
        """How many inputs each part holds (``train`` None for a stream)."""
        return {"domain": self.domain, "train": None if self.pool is None else len(self.pool), "val": len(self.val),
                "test": len(self.test), "confirm": len(self.val) + (0 if self.confirm is None else len(self.confirm)),
                "exhaustive": self.exhaustive}


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_splits(task, cfg) -> Splits:
    """Build validation/test sets and the training pool for ``task`` under ``cfg`` (a RunConfig)."""
    holdout = cfg.data.holdout == "yes" or (cfg.data.holdout == "auto" and task.holdout)
    ev = cfg.eval
    lengths = Lengths.from_config(cfg.data)
    dom = task.domain() if lengths is None else None
    targeted = ev.target is not None
    if dom is not None and holdout:
        n_test, n_val = domain_split(len(dom), cfg)
        if n_test < 1 or n_val < 1:
            raise ConfigError(f"task {task.name!r} has only {len(dom)} examples, too few to hold out; set "
                              "data.holdout=no")
        order = torch.randperm(len(dom), generator=_generator(ev.seed))
        at_test, at_val, at_train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
        unused = 0
        if cfg.data.train_size is not None:
            unused = max(0, len(at_train) - cfg.data.train_size)  # neither trained on nor evaluated
            at_train = at_train[: cfg.data.train_size]
        return Splits(dom[at_val], dom[at_test], dom[at_train], None, dom[at_test] if targeted else None,
                      exhaustive=unused == 0, domain=len(dom))
    if dom is not None:
        return Splits(dom, dom, None, None, exhaustive=True, domain=len(dom))
    sample = task.sample if lengths is None else lengths.sampler(task)
    val = sample(ev.val_size, _generator(ev.seed))
    test = sample(ev.test_size, _generator(ev.seed + 1))
    more = confirm_size(ev) - ev.val_size if targeted else 0
    confirm = sample(more, _generator(ev.seed + 3)) if more > 0 else None
    exclude, short = None, False
    if holdout:
        held = [e for e in (val, test, confirm) if e is not None]
        frequent = frequent_inputs(sample, torch.cat([input_keys(e.input) for e in held]), ev.seed)
        if frequent is not None:  # draw the held-out sets again without them
            val = draw(task, ev.val_size, _generator(ev.seed), frequent, sample)
            test = draw(task, ev.test_size, _generator(ev.seed + 1), frequent, sample)
            if confirm is not None:  # a task with few inputs besides the frequent ones may not have them all
                confirm = draw(task, more, _generator(ev.seed + 3), frequent, sample, partial=True)
                short = len(confirm) < more
        held = [e for e in (val, test, confirm) if e is not None]
        exclude = torch.cat([input_keys(e.input) for e in held]).unique()  # sorted
        if confirm is not None and starved(sample, exclude, ev.seed):  # few inputs: confirm on the held-out ones
            confirm, short = test, True
            exclude = torch.cat([input_keys(val.input), input_keys(test.input)]).unique()
    pool = None
    if cfg.data.train_size is not None:
        pool = draw(task, cfg.data.train_size, _generator(cfg.seed + 10_000), exclude, sample)
    return Splits(val, test, pool, exclude, confirm, exhaustive=short)


def starved(sample, exclude: torch.Tensor, seed: int, probe: int = 4096) -> bool:
    """Would holding out ``exclude`` leave training fewer than half of its draws? (A task whose
    inputs are few: its held-out rows already cover much of it.)"""
    keys = input_keys(sample(probe, _generator(seed + 4)).input)
    return torch.isin(keys, exclude).float().mean().item() > 0.5


def domain_split(size: int, cfg) -> tuple[int, int]:
    """Test and validation inputs of a finite domain of ``size``: a fifth and a tenth (at most
    ``eval.test_size`` and ``eval.val_size``), or, with ``data.train_share``, the rest of the
    domain after training, two thirds test and one third validation."""
    share, ev = cfg.data.train_share, cfg.eval
    if share is None:
        return min(ev.test_size, size // 5), min(ev.val_size, size // 10)
    held = size - round(size * share)
    n_test = min(ev.test_size, round(held * 2 / 3))
    return n_test, min(ev.val_size, held - n_test)


def confirm_size(ev) -> int:
    """Rows of a stream's confirmation set, validation's included: ``eval.confirm_size``, or the
    fewest whose 100% bounds the error at ``1 - eval.target`` (95%; a target of 1 is confirmed as
    one of 99.9%); at least ``eval.val_size``."""
    return max(ev.val_size, ev.confirm_size or needed(min(ev.target, 0.999)))


PROBE_FACTOR = 64  # training draws probed per held-out row


def frequent_inputs(sample, held_keys: torch.Tensor, seed: int, chunk: int = 16_384) -> torch.Tensor | None:
    """Sorted keys of the training-only inputs (see "Small sub-domains" above), or None.

    ``held_keys [n]`` are the keys of the validation and test rows as first drawn. Only when
    they repeat an input are ``64 n`` training inputs drawn (``sample(k, generator)``, seeded
    from ``seed``) and counted; an input counted at least 64 times (expected at least once in
    ``n`` draws) is frequent.

    >>> from toyformer.tasks.addition import Addition
    >>> task = Addition()
    >>> keys = input_keys(task.sample(2512, torch.Generator().manual_seed(0)).input)
    >>> len(frequent_inputs(task.sample, keys, seed=0))  # the 100 one-digit + one-digit sums
    100
    """
    n = len(held_keys)
    if n == 0 or len(held_keys.unique()) == n:
        return None
    g = _generator(seed + 2)
    total, parts = PROBE_FACTOR * n, []
    for start in range(0, total, chunk):
        parts.append(input_keys(sample(min(chunk, total - start), g).input))
    keys, counts = torch.cat(parts).unique(return_counts=True)
    frequent = keys[counts >= PROBE_FACTOR]  # sorted
    return frequent if len(frequent) else None


def draw(task, n: int, generator: torch.Generator, exclude: torch.Tensor | None, sample=None,
         partial: bool = False) -> Examples:
    """``n`` fresh examples, none of whose inputs is in ``exclude`` (sorted keys; the held-out
    inputs for training data, the frequent ones for validation and test); ``sample(n, generator)``
    draws them (default ``task.sample``). With ``partial``, fewer when 100 attempts find no more."""
    sample = sample or task.sample
    if exclude is None:
        return sample(n, generator)
    parts, have, tried = [], 0, 0
    for attempt in range(100):
        ask = max(n - have, 16)
        if attempt >= 20:  # most draws are excluded (a small domain): ask for enough at once
            ask = min(int(ask * (tried + 1) / (have + 1) * 1.1) + 1, 1 << 20)
        ex = sample(ask, generator)
        ex = ex[~torch.isin(input_keys(ex.input), exclude)]
        parts.append(ex)
        have, tried = have + len(ex), tried + ask
        if have >= n:
            return Examples.cat(parts)[:n]
    if partial:
        return Examples.cat(parts)
    raise ConfigError(f"task {task.name!r}: almost every sample is held out or too frequent to hold out; "
                      "set data.holdout=no or lower eval sizes")


class TrainData:
    """Training batches for step ``s`` (0-based): a stream, or a pool visited in shuffled epochs.

    The stream's only state is its generator; a pool's order for epoch ``e`` is drawn from
    ``seed + e``, so resuming at step ``s`` needs the generator state alone.
    """

    def __init__(self, task, splits: Splits, batch_size: int, seed: int, lengths: Lengths | None = None,
                 total_steps: int = 1):
        self.task, self.splits, self.batch_size, self.seed = task, splits, batch_size, seed
        self.lengths, self.total_steps = lengths, total_steps
        self.generator = _generator(seed)
        pool = splits.pool
        self._epoch: int | None = None
        self._order: torch.Tensor | None = None
        self.steps_per_epoch = None if pool is None else max(1, -(-len(pool) // batch_size))

    def batch(self, step: int) -> Examples:
        pool = self.splits.pool
        if pool is None:
            sample = None
            if self.lengths is not None:
                sample = self.lengths.sampler(self.task, self.generator, step, self.total_steps)
            return draw(self.task, self.batch_size, self.generator, self.splits.exclude, sample)
        assert self.steps_per_epoch is not None  # set with the pool
        epoch, i = divmod(step, self.steps_per_epoch)
        if self._order is None or self._epoch != epoch:
            self._epoch = epoch
            self._order = torch.randperm(len(pool), generator=_generator(self.seed * 1_000_003 + epoch))
        return pool[self._order[i * self.batch_size : (i + 1) * self.batch_size]]
