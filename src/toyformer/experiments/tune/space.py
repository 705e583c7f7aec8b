"""A search space: ranges, log ranges and choices over any config key, as a YAML section.

::

    space:
      train.lr: {log: [1.0e-4, 1.0e-2]}          # sampled log-uniformly
      train.warmup_steps: {int: [0, 200]}        # an integer in the range
      train.min_lr_ratio: {float: [0.0, 0.5]}    # a float in the range
      model.d_model: {choices: [32, 64, 128]}    # one of the values

Keys are those of ``--set`` (dotted, or a unique leaf name); they are checked against the base
config when the space is read, so a typo fails before any trial runs. A layout has a default
space (``default_space``): the keys that decide how fast these models learn.

>>> space = parse_space({"train.lr": {"log": [1e-4, 1e-2]}}, RunConfig.from_dict({"task": "reverse"}))
>>> space.keys()
['train.lr']
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from toyformer.config import RunConfig, positional
from toyformer.errors import ConfigError

KINDS = ("log", "int", "float", "choices")

_COMMON = {
    "train.lr": {"log": [3e-4, 1e-2]},
    "train.warmup_steps": {"int": [0, 200]},
    "train.steps": {"choices": [500, 1000, 2000, 4000]},
    "train.min_lr_ratio": {"float": [0.0, 0.5]},
    "train.weight_decay": {"log": [1e-4, 1.0]},
    "data.batch_size": {"choices": [32, 64, 128, 256]},
    "model.d_model": {"choices": [32, 64, 128]},
    "model.n_layers": {"int": [1, 4]},
}
_SEQUENCES = {"model.positional": {"choices": positional.candidates(with_none=True)}}
DEFAULT_SPACES: dict[str, dict] = {
    "classifier": {**_COMMON, "model.pooling": {"choices": ["mean", "first", "last"]}},
    "tagger": {**_COMMON, **_SEQUENCES},
    "causal": {**_COMMON, **_SEQUENCES},
    "seq2seq": {**_COMMON, **_SEQUENCES},
    "masked": {**_COMMON, **_SEQUENCES},
}


@dataclass(frozen=True)
class Param:
    key: str  # the full dotted key (model.d_model)
    kind: str  # log, int, float or choices
    values: tuple  # (low, high) or the choices

    def sample(self, trial):
        """A value for this key from an Optuna ``trial``."""
        if self.kind == "choices":
            return trial.suggest_categorical(self.key, list(self.values))
        low, high = self.values
        if self.kind == "int":
            return trial.suggest_int(self.key, int(low), int(high))
        return trial.suggest_float(self.key, float(low), float(high), log=self.kind == "log")


@dataclass(frozen=True)
class Space:
    params: tuple[Param, ...]

    def keys(self) -> list[str]:
        return [p.key for p in self.params]

    def sample(self, trial) -> dict:
        """``{key: value}`` for one trial."""
        return {p.key: p.sample(trial) for p in self.params}

    def to_dict(self) -> dict:
        return {p.key: {p.kind: list(p.values)} for p in self.params}


def default_space(layout: str) -> dict:
    return {k: dict(v) for k, v in DEFAULT_SPACES[layout].items()}


def parse_space(data, base: RunConfig, where: str = "space") -> Space:
    """A ``Space`` from its YAML mapping, checked against ``base``: every key must be a config key
    (the full dotted name is kept), every range non-empty, every value one the config allows."""
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{where} must be a non-empty mapping of config keys to ranges, e.g. "
                          "{train.lr: {log: [1e-4, 1e-2]}}")
    full = base.to_dict()
    params = []
    for key, spec in data.items():
        section, leaf = base._resolve_key(str(key), full)
        name = leaf if section is None else f"{section}.{leaf}"
        if name in ("seed", "task.name"):
            raise ConfigError(f"{where}: {name} cannot be searched (trials share one seed and one task)")
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
            raise ConfigError(f"{where}: {name} needs exactly one of {', '.join(KINDS)}, e.g. {{log: [1e-4, 1e-2]}}; "
                              f"got {spec!r}")
        kind, values = next(iter(spec.items()))
        params.append(_param(name, kind, values, where))
    for p in params:  # every value the space can give must be one the config allows (ends and a fraction between)
        low, high = p.values[0], p.values[-1]
        middle = () if p.kind == "choices" else (
            low * (high / low) ** 0.37 if p.kind == "log" else low + 0.37 * (high - low),)
        for value in (*p.values, *middle) if p.kind != "int" else p.values:
            try:
                base.with_overrides({p.key: value})
            except ConfigError as exc:
                raise ConfigError(f"{where}: {p.key}: {exc}") from None
    return Space(tuple(params))


def _param(name: str, kind: str, values, where: str) -> Param:
    if kind == "choices":
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: {name}: choices must be a non-empty list")
        return Param(name, kind, tuple(values))
    if (not isinstance(values, list) or len(values) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values)):
        raise ConfigError(f"{where}: {name}: {kind} needs [low, high] (two numbers), got {values!r}")
    low, high = values
    if not all(math.isfinite(v) for v in values) or not low < high:
        raise ConfigError(f"{where}: {name}: the range [{low}, {high}] is empty; allowed: low < high")
    if kind == "log" and low <= 0:
        raise ConfigError(f"{where}: {name}: a log range needs low > 0, got {low}")
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise ConfigError(f"{where}: {name}: an int range needs integer bounds, got [{low}, {high}]")
    return Param(name, kind, (low, high))
