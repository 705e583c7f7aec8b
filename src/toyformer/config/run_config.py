"""Run configuration: typed, nested, frozen dataclasses validated on construction.

A run is fully described by a ``RunConfig``; it is written to every run directory so that a run
can be evaluated, resumed or re-plotted from its directory alone.

>>> cfg = RunConfig.from_dict({"task": {"name": "reverse", "length": 8}, "model": {"n_layers": 1}})
>>> cfg.task.params["length"], cfg.model.n_layers, cfg.layout
(8, 1, 'tagger')
>>> cfg.with_overrides(["model.d_model=32", "lr=3e-3"]).train.lr
0.003
"""

from __future__ import annotations

import copy
import dataclasses
import json
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from toyformer.values import coerce
from toyformer.errors import ConfigError
from toyformer.tasks import get_task, task_class, task_params

Layout = Literal["classifier", "tagger", "causal", "seq2seq", "masked"]
LAYOUTS: tuple[str, ...] = typing.get_args(Layout)


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
    """Transformer shape and the choices that decide success."""

    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 256
    dropout: float = 0.0
    norm: Literal["pre", "post"] = "pre"
    positional: Literal["none", "sinusoidal", "learned", "rope", "alibi", "relative", "abacus"] = "learned"
    random_positions: bool = False  # training positions: a sorted random subset of 0..max_len-1
    digit_positions: bool = False  # position coupling: the scheme's positions are digit places (abacus.py)
    place_embedding: bool = False  # also add a learned embedding of each digit's place in its number
    positions_from: Literal["start", "both"] = "start"  # both: also encode each token's distance to the end
    relative_max_distance: int = 128  # relative: log buckets up to here; <= 8 clips distances instead
    attention_window: int | None = None  # self-attention only to keys at most this many positions away
    activation: Literal["relu", "gelu"] = "gelu"
    # classifier only; slot: read the answer at an extra empty (<pad>) position (R1's padding)
    pooling: Literal["mean", "first", "last", "flatten", "slot"] = "mean"
    head_hidden: tuple[int, ...] = ()  # classifier/tagger: MLP head widths before the output layer
    causal_encoder: bool = False  # classifier/tagger: causal self-attention (R1's decoder-only)
    n_decoder_layers: int | None = None  # seq2seq: decoder depth (None: same as n_layers)
    max_len: int | None = None  # positional table / random-position range (None: from the task's lengths)
    init: Literal["small", "torch"] = "small"  # small: normal(0, 0.02) as GPT-2; torch: PyTorch's defaults
    attention: Literal["auto", "sdpa", "explicit", "few_keys"] = "auto"  # how attention is computed (models/kernels.py)

    def __post_init__(self):
        for name in ("d_model", "n_heads", "n_layers", "d_ff"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name}={getattr(self, name)} must be >= 1")
        if self.d_model % self.n_heads:
            divisors = [h for h in range(1, self.d_model + 1) if self.d_model % h == 0]
            raise ConfigError(
                f"model.d_model={self.d_model} is not divisible by model.n_heads={self.n_heads}; "
                f"allowed n_heads: {', '.join(map(str, divisors))}"
            )
        if self.positional == "rope" and (self.d_model // self.n_heads) % 2:
            raise ConfigError(
                f"model.positional='rope' needs an even head width; d_model/n_heads = {self.d_model // self.n_heads}"
            )
        if self.random_positions and self.positional in ("none", "abacus"):
            raise ConfigError(
                f"model.random_positions=true does not apply to model.positional={self.positional!r}; "
                f"allowed with: sinusoidal, learned, rope, alibi, relative"
            )
        if self.digit_positions and self.positional in ("none", "abacus"):
            raise ConfigError(
                f"model.digit_positions=true does not apply to model.positional={self.positional!r} "
                f"(abacus already indexes digit places); allowed with: sinusoidal, learned, rope, alibi, relative"
            )
        if self.place_embedding and (self.positional == "abacus" or self.digit_positions):
            raise ConfigError(
                "model.place_embedding=true adds digit places to sequence positions; with "
                f"model.positional={self.positional!r} and digit_positions={self.digit_positions} the positions "
                "already are digit places; allowed: positional none, sinusoidal, learned, rope, alibi, relative"
            )
        if self.positions_from == "both" and (self.positional not in ("sinusoidal", "learned")
                                               or self.digit_positions or self.random_positions):
            raise ConfigError(
                f"model.positions_from='both' needs model.positional=sinusoidal or learned without digit or random "
                f"positions, got model.positional={self.positional!r}"
            )
        if self.attention_window is not None and self.attention_window < 0:
            raise ConfigError(f"model.attention_window={self.attention_window} must be >= 0 or none")
        if self.relative_max_distance < 1:
            raise ConfigError(f"model.relative_max_distance={self.relative_max_distance} must be >= 1")
        if self.digit_positions and self.random_positions:
            raise ConfigError("model.digit_positions and model.random_positions exclude each other; set one")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout={self.dropout} is out of range; allowed: 0 <= dropout < 1")


@dataclass(frozen=True)
class DataConfig:
    """How training examples are drawn and batched."""

    batch_size: int = 64
    train_size: int | None = None  # None: a stream of fresh samples each step; N: a fixed pool
    holdout: Literal["auto", "yes", "no"] = "auto"  # exclude test examples from training
    sep: bool = True  # causal layout: a <sep> token between prompt and answer
    prompt_loss: bool = False  # causal layout: loss on the prompt's next tokens too (plain LM)
    mask_prob: float = 0.15  # masked layout: share of tokens masked in training
    min_length: int | None = None  # train (and hold out) task lengths min_length..max_length
    max_length: int | None = None
    length_sampling: Literal["batch", "row", "curriculum"] = "batch"  # a length per batch / per row / growing

    def __post_init__(self):
        if (self.min_length is None) != (self.max_length is None):
            raise ConfigError("data.min_length and data.max_length go together; set both or neither")
        if self.min_length is not None and not 1 <= self.min_length <= self.max_length:
            raise ConfigError(
                f"data.min_length={self.min_length}, data.max_length={self.max_length}: "
                f"allowed: 1 <= min_length <= max_length"
            )
        if self.batch_size < 1:
            raise ConfigError(f"data.batch_size={self.batch_size} must be >= 1")
        if self.train_size is not None and self.train_size < 1:
            raise ConfigError(f"data.train_size={self.train_size} must be >= 1 or none")
        if not 0.0 < self.mask_prob <= 1.0:
            raise ConfigError(f"data.mask_prob={self.mask_prob} is out of range; allowed: 0 < mask_prob <= 1")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and stopping."""

    steps: int = 2000
    epochs: int | None = None  # with a fixed pool: stop after this many passes
    max_time_s: float | None = None
    lr: float = 3e-3
    weight_decay: float = 0.01
    beta2: float = 0.98
    warmup_steps: int = 50
    schedule: Literal["cosine", "constant", "linear"] = "cosine"
    min_lr_ratio: float = 0.1  # cosine/linear decay ends at lr * min_lr_ratio
    grad_clip: float | None = 1.0
    compile: bool = False  # torch.compile the model (opt-in: pays off on larger models, see the benchmarks)
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast on the run's device type

    def __post_init__(self):
        if self.steps < 1:
            raise ConfigError(f"train.steps={self.steps} must be >= 1")
        if self.lr <= 0:
            raise ConfigError(f"train.lr={self.lr} must be > 0")
        if self.warmup_steps < 0:
            raise ConfigError(f"train.warmup_steps={self.warmup_steps} must be >= 0")


@dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation and early stopping."""

    every: int = 100
    val_size: int = 512
    test_size: int = 2000
    batch_size: int = 500
    target_metric: Literal["exact_match", "token_acc"] = "exact_match"
    target: float | None = 1.0  # stop when validation reaches this (None: never stop early)
    seed: int = 1234  # seed of the validation and test sets (the same for every run seed)
    decode: Literal["greedy", "beam"] = "greedy"  # how exact match decodes (causal, seq2seq)
    beam_width: int = 4  # with decode=beam

    def __post_init__(self):
        if self.beam_width < 1:
            raise ConfigError(f"eval.beam_width={self.beam_width} must be >= 1")
        if self.every < 1:
            raise ConfigError(f"eval.every={self.every} must be >= 1")
        if self.val_size < 1 or self.test_size < 1:
            raise ConfigError("eval.val_size and eval.test_size must be >= 1")


SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig, "eval": EvalConfig}


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. ``layout`` None means the task's default layout.

    A task may carry ``config_defaults`` (section -> values): the settings that solve it at its
    default size with its default layout. They fill in what the user left unset, before the
    global defaults of each section; where a section's tuned values conflict with what the user
    set (``model.place_embedding`` with ``model.positional=abacus``), that section's tuned values
    are dropped and the user's settings win.
    """

    task: TaskConfig = field(default_factory=TaskConfig)
    layout: Layout | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def __post_init__(self):
        if self.layout is None:
            object.__setattr__(self, "layout", task_class(self.task.name).default_layout)
        if self.layout not in LAYOUTS:
            raise ConfigError(f"layout={self.layout!r} is not allowed; allowed: {', '.join(LAYOUTS)}")
        if (self.model.positional == "abacus" or self.model.digit_positions) and self.layout == "causal" and not self.data.sep:
            raise ConfigError("digit places (model.positional='abacus' or model.digit_positions) in the causal layout "
                              "needs data.sep=true (the answer starts after <sep>)")

    # --- conversion -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["task"] = {"name": self.task.name, **self.task.params}
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        """Build from nested plain data (a config file); unknown keys are rejected."""
        original = copy.deepcopy(data)
        data = dict(data)
        known = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in known:
                raise ConfigError(f"unknown config key {key!r}; allowed: {', '.join(known)}")
        task = data.pop("task", {})
        if isinstance(task, str):
            task = {"name": task}
        task = dict(task)
        kwargs: dict[str, Any] = {"task": TaskConfig(task.pop("name", "count_ones"), task)}
        cls_ = task_class(kwargs["task"].name)
        tuned = getattr(cls_, "config_defaults", {}) if data.get("layout") in (None, cls_.default_layout) else {}
        for name, section in SECTIONS.items():
            given = data.pop(name, None) or {}
            try:
                kwargs[name] = _build_section(section, name, {**tuned.get(name, {}), **given})
            except ConfigError:
                if not tuned.get(name):
                    raise
                # the task's tuned values conflict with the user's: the user's settings win
                kwargs[name] = _build_section(section, name, given)
        hints = typing.get_type_hints(cls)
        for key, value in data.items():
            kwargs[key] = coerce(value, hints[key], key)
        config = cls(**kwargs)
        object.__setattr__(config, "_given", original)  # what with_overrides starts from
        return config

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        """Read a YAML, TOML or JSON config file."""
        return cls.from_dict(read_config_file(path))

    def with_overrides(self, overrides: list[str] | dict) -> "RunConfig":
        """Apply ``key=value`` overrides (or a ``{key: value}`` dict of typed values, as a sweep
        file gives them); keys are dotted (``model.n_layers``) or unique leaf names (``n_layers``,
        ``length``); task parameters are ``task.<param>``.

        The overrides apply to the data this config was built from (``from_dict``), so a task's
        tuned defaults still fill in only what is left unset, and yield where they conflict:
        ``addition`` adds a place embedding by default, and ``model.positional=abacus`` (which
        already indexes digit places) replaces it instead of failing."""
        full = self.to_dict()
        data = copy.deepcopy(getattr(self, "_given", None) or full)
        if isinstance(data.get("task"), str):
            data["task"] = {"name": data["task"]}
        items = overrides.items() if isinstance(overrides, dict) else map(_split_override, overrides)
        for key, value in items:
            section, leaf = self._resolve_key(key.strip(), full)
            if section is not None and not data.get(section):  # absent, or empty in a config file
                data[section] = {}
            target = data if section is None else data[section]
            target[leaf] = value
        return RunConfig.from_dict(data)

    def _resolve_key(self, key: str, data: dict) -> tuple[str | None, str]:
        if "." in key:
            section, leaf = key.split(".", 1)
            if section not in data or not isinstance(data[section], dict):
                raise ConfigError(f"unknown config section {section!r}; allowed: task, {', '.join(SECTIONS)}")
            if leaf not in data[section]:
                allowed = ", ".join(k for k in data[section] if k != "name" or section != "task")
                raise ConfigError(f"unknown key {key!r}; allowed in {section}: {allowed}")
            return section, leaf
        if key in data and not isinstance(data[key], dict):
            return None, key
        owners = [s for s, v in data.items() if isinstance(v, dict) and key in v]
        if len(owners) == 1:
            return owners[0], key
        if len(owners) > 1:
            raise ConfigError(f"key {key!r} is ambiguous; use one of: {', '.join(f'{s}.{key}' for s in owners)}")
        every = sorted(f"{s}.{k}" for s, v in data.items() if isinstance(v, dict) for k in v)
        raise ConfigError(f"unknown key {key!r}; allowed: {', '.join(every)}")


def _split_override(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value")
    key, value = item.split("=", 1)
    return key, value


def _build_section(cls, name: str, values: dict):
    if not isinstance(values, dict):
        raise ConfigError(f"config section {name!r} must be a mapping")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown key {name}.{key}; allowed: {', '.join(known)}")
        kwargs[key] = coerce(value, hints[key], f"{name}.{key}")
    return cls(**kwargs)


def read_config_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix == ".json":
            return json.loads(text)
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text) or {}
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid: {str(exc).splitlines()[0]}")
    raise ConfigError(f"config file {str(path)!r} has suffix {path.suffix!r}; allowed: .yaml, .yml, .toml, .json")
