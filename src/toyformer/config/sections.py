"""The sections of a run's configuration: task, model, data, train, eval.

Each section is a frozen dataclass validated on construction: every option is a Literal, every
number has its allowed range declared beside it (``field(..., metadata=at_least(1))``, checked
by ``ranges.check``), and rules between fields are checked in ``__post_init__``.

>>> TrainConfig(lr=float("nan"))
Traceback (most recent call last):
...
toyformer.errors.ConfigError: train.lr=nan is not a finite number; allowed: > 0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from toyformer.config.positional import DEFAULT, PositionalConfig
from toyformer.config.ranges import SEEDS, at_least, between, check, greater_than
from toyformer.errors import ConfigError
from toyformer.tasks import get_task, task_params


@dataclass(frozen=True)
class TaskConfig:
    """A task name and its parameters (checked against the task's own fields)."""

    name: str = "count_ones"
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        task = get_task(self.name, **self.params)  # validates name and params
        object.__setattr__(self, "params", task_params(task))

    def build(self):
        return get_task(self.name, **self.params)


@dataclass(frozen=True)
class ModelConfig:
    """Transformer shape and the choices that decide success (or, with a recurrent ``family``, a
    recurrent network of ``d_model`` hidden units in place of the encoder: ``lstm`` and ``rnn`` of
    ``n_layers`` layers, ``stack_rnn`` and ``tape_rnn`` of one)."""

    # lstm, rnn: models/recurrent.py; stack_rnn, tape_rnn (an RNN with a stack or a tape): models/memory_rnn.py
    family: Literal["transformer", "lstm", "rnn", "stack_rnn", "tape_rnn"] = "transformer"
    d_model: int = field(default=64, metadata=at_least(1))
    n_heads: int = field(default=4, metadata=at_least(1))
    n_layers: int = field(default=2, metadata=at_least(1))
    d_ff: int = field(default=256, metadata=at_least(1))
    dropout: float = field(default=0.0, metadata=between(0, 1, hi_open=True))
    norm: Literal["pre", "post"] = "pre"
    positional: str = DEFAULT  # a scheme of config/positional.py's table (SCHEMES)
    random_positions: bool = False  # training positions: a sorted random subset of 0..max_len-1
    digit_positions: bool = False  # position coupling: the scheme's positions are digit places (abacus.py)
    # position coupling by index: the i-th input symbol and the i-th answer token share position i (scratchpads)
    symbol_positions: bool = False
    place_embedding: bool = False  # also add a learned embedding of each digit's place in its number
    positions_from: Literal["start", "both"] = "start"  # both: also encode each token's distance to the end
    # relative: log buckets up to here; <= 8 clips distances instead
    relative_max_distance: int = field(default=128, metadata=at_least(1))
    # self-attention only to keys at most this many positions away
    attention_window: int | None = field(default=None, metadata=at_least(0))
    window_sink: bool = False  # the window keeps keys at position 0 visible (with digit positions: non-digits)
    number_embedding: bool = False  # also add a learned embedding of which number each digit is in
    activation: Literal["relu", "gelu"] = "gelu"
    # classifier only; slot: read the answer at an extra empty (<pad>) position (R1's padding)
    pooling: Literal["mean", "first", "last", "flatten", "slot"] = "mean"
    # classifier/tagger: MLP head widths before the output layer
    head_hidden: tuple[int, ...] = field(default=(), metadata=at_least(1))
    causal_encoder: bool = False  # classifier/tagger: causal self-attention (R1's decoder-only)
    # seq2seq: decoder depth (None: same as n_layers)
    n_decoder_layers: int | None = field(default=None, metadata=at_least(1))
    # positional table / random-position range (None: from the task's lengths; checked against them)
    max_len: int | None = field(default=None, metadata=at_least(2))
    # small: normal(0, 0.02) as GPT-2; torch: PyTorch's defaults; auto: torch for seq2seq, else small
    init: Literal["auto", "small", "torch"] = "auto"
    attention: Literal["auto", "sdpa", "explicit", "few_keys"] = "auto"  # how attention is computed (models/kernels.py)

    @property
    def positions(self) -> PositionalConfig:
        """The positional scheme's row and the options that change what a position is (an unknown
        scheme is a ConfigError naming the allowed ones)."""
        return PositionalConfig.of(self)

    def __post_init__(self):
        check(self, "model")
        if self.family != "transformer":
            self._check_recurrent()
            return
        if self.d_model % self.n_heads:
            divisors = [h for h in range(1, self.d_model + 1) if self.d_model % h == 0]
            raise ConfigError(
                f"model.d_model={self.d_model} is not divisible by model.n_heads={self.n_heads}; "
                f"allowed n_heads: {', '.join(map(str, divisors))}"
            )
        self.positions.check(self.n_heads, self.d_model)
        if self.window_sink and self.attention_window is None:
            raise ConfigError("model.window_sink=true keeps keys visible through an attention window; set "
                              "model.attention_window too (allowed: window_sink=false without a window)")

    def _check_recurrent(self) -> None:
        """A recurrent network reads tokens in order: the transformer's position and attention options
        do not apply; the memory networks have one recurrent layer, as the reference's."""
        family = self.family
        self.positions.check_recurrent(family)
        for key, default in TRANSFORMER_ONLY.items():
            if getattr(self, key) != default:
                raise ConfigError(f"model.{key}={getattr(self, key)!r} does not apply to model.family={family!r}; "
                                  f"allowed: {default!r} (the default)")
        if family in ("stack_rnn", "tape_rnn") and self.n_layers != 1:
            raise ConfigError(f"model.n_layers={self.n_layers} with model.family={family!r}: its recurrent network "
                              "has one layer beside its memory; allowed: 1")


TRANSFORMER_ONLY = {"random_positions": False, "digit_positions": False, "symbol_positions": False,
                    "place_embedding": False,
                    "number_embedding": False, "window_sink": False,
                    "positions_from": "start", "attention_window": None, "causal_encoder": False,
                    "n_decoder_layers": None}


@dataclass(frozen=True)
class DataConfig:
    """How training examples are drawn and batched."""

    batch_size: int = field(default=64, metadata=at_least(1))
    # None: a stream of fresh samples each step; N: a fixed pool
    train_size: int | None = field(default=None, metadata=at_least(1))
    # a finite domain's share used for training (None: 70%; the rest is held out, 2/3 test, 1/3 validation)
    train_share: float | None = field(default=None, metadata=between(0, 1, lo_open=True, hi_open=True))
    holdout: Literal["auto", "yes", "no"] = "auto"  # exclude test examples from training
    sep: bool = True  # causal layout: a <sep> token between prompt and answer
    prompt_loss: bool = False  # causal layout: loss on the prompt's next tokens too (plain LM)
    # masked layout: share of tokens masked in training
    mask_prob: float = field(default=0.15, metadata=between(0, 1, lo_open=True))
    # masked layout: random (BERT: random tokens of input and answer, in training) or answer (every
    # answer token, in training as at evaluation: the Chomsky-hierarchy suite's protocol)
    masking: Literal["random", "answer"] = "random"
    # train (and hold out) task lengths min_length..max_length
    min_length: int | None = field(default=None, metadata=at_least(1))
    max_length: int | None = field(default=None, metadata=at_least(1))
    length_sampling: Literal["batch", "row", "curriculum"] = "batch"  # a length per batch / per row / growing

    def __post_init__(self):
        check(self, "data")
        if (self.min_length is None) != (self.max_length is None):
            raise ConfigError("data.min_length and data.max_length go together; set both or neither")
        if self.min_length is not None and self.min_length > self.max_length:
            raise ConfigError(
                f"data.min_length={self.min_length}, data.max_length={self.max_length}: "
                f"allowed: 1 <= min_length <= max_length"
            )


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and stopping."""

    steps: int = field(default=2000, metadata=at_least(1))
    # with a fixed pool: stop after this many passes
    epochs: int | None = field(default=None, metadata=at_least(1))
    max_time_s: float | None = field(default=None, metadata=greater_than(0))
    lr: float = field(default=3e-3, metadata=greater_than(0))
    weight_decay: float = field(default=0.01, metadata=at_least(0))
    beta2: float = field(default=0.98, metadata=between(0, 1, hi_open=True))
    warmup_steps: int = field(default=50, metadata=at_least(0))
    schedule: Literal["cosine", "constant", "linear"] = "cosine"
    # cosine/linear decay ends at lr * min_lr_ratio
    min_lr_ratio: float = field(default=0.1, metadata=between(0, 1))
    grad_clip: float | None = field(default=1.0, metadata=greater_than(0))
    compile: bool = False  # torch.compile the model (opt-in: pays off on larger models, see the benchmarks)
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast on the run's device type
    # write TensorBoard event files here: scalars at each evaluation, attention and curves at the end
    # (pip install 'toyformer[tensorboard]'); where the logs go, not what is computed
    tensorboard: str | None = None
    # log: also keep the weights at log-spaced steps in checkpoints/ (toyformer explain --over-training)
    keep_checkpoints: Literal["last", "log"] = "last"
    checkpoints_per_decade: int = field(default=8, metadata=between(1, 100))  # with keep_checkpoints=log
    # the same bits on every x86-64 CPU: pinned code paths, one thread (toyformer/numerics.py)
    portable: bool = False

    def __post_init__(self):
        check(self, "train")
        if self.portable and (self.compile or self.precision != "fp32"):
            raise ConfigError(f"train.portable=true with train.compile={self.compile}, train.precision="
                              f"{self.precision!r}: the portable mode pins the eager fp32 code paths; allowed: "
                              "compile=false and precision=fp32, or portable=false")
        if self.tensorboard is not None and not self.tensorboard.strip():
            raise ConfigError("train.tensorboard='' names no directory; allowed: a directory path, or none")


@dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation and early stopping."""

    every: int = field(default=100, metadata=at_least(1))
    val_size: int = field(default=512, metadata=at_least(1))
    test_size: int = field(default=2000, metadata=at_least(1))
    batch_size: int = field(default=500, metadata=at_least(1))
    target_metric: Literal["exact_match", "token_acc"] = "exact_match"
    # solved (and stopped) when the confirmation set shows at least this (None: never stop early);
    # a stream's validation grows to the rows whose 100% bounds the error at 1 - target (eval/solved.py)
    target: float | None = field(default=0.999, metadata=between(0, 1, lo_open=True))
    # solved after this many confirming evaluations in a row
    hold: int = field(default=2, metadata=at_least(1))
    # a stream's confirmation rows (None: the fewest whose 100% bounds the error at 1 - target; more
    # rows let a run with a few errors show a bound, e.g. 10,000 rows allow 4 errors at 99.9%)
    confirm_size: int | None = field(default=None, metadata=at_least(1))
    # seed of the validation and test sets (the same for every run seed)
    seed: int = field(default=1234, metadata=SEEDS)
    decode: Literal["greedy", "beam"] = "greedy"  # how exact match decodes (causal, seq2seq)
    beam_width: int = field(default=4, metadata=at_least(1))  # with decode=beam

    def __post_init__(self):
        check(self, "eval")
