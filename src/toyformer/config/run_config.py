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

from toyformer.config.ranges import SEEDS, check
from toyformer.config.sections import DataConfig, EvalConfig, ModelConfig, TaskConfig, TrainConfig
from toyformer.errors import ConfigError
from toyformer.tasks import task_class
from toyformer.values import coerce, parse_scalar

Layout = Literal["classifier", "tagger", "causal", "seq2seq", "masked"]
LAYOUTS: tuple[str, ...] = typing.get_args(Layout)

SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig, "eval": EvalConfig}


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. ``layout`` None means the task's default layout.

    A task may carry ``config_defaults`` (section -> values): the settings that solve it at its
    default size with its default layout, and ``layout_defaults`` (layout -> section -> values)
    for the other layouts it fits. They fill in what the user left unset, before the
    global defaults of each section; where a section's tuned values conflict with what the user
    set (``model.place_embedding`` with ``model.positional=abacus``), that section's tuned values
    are dropped and the user's settings win.
    """

    task: TaskConfig = field(default_factory=TaskConfig)
    layout: Layout = None  # type: ignore[assignment]  # None: the task's default layout, set on construction
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = field(default=0, metadata=SEEDS)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def __post_init__(self):
        check(self, None)
        if self.layout is None:
            object.__setattr__(self, "layout", task_class(self.task.name).default_layout)
        if self.layout not in LAYOUTS:
            raise ConfigError(f"layout={self.layout!r} is not allowed; allowed: {', '.join(LAYOUTS)}")
        self.model.positions.check_sep(self.layout, self.data.sep)

    # --- conversion -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["task"] = {"name": self.task.name, **self.task.params}
        return d

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
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
        tuned = tuned_defaults(cls_, data.get("layout"))
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
            if key == "layout" and (value is None or isinstance(value, str) and parse_scalar(value) is None):
                continue  # none: the task's default layout, as when left out
            kwargs[key] = coerce(value, hints[key], key)
        config = cls(**kwargs)
        object.__setattr__(config, "_given", original)  # what with_overrides starts from
        return config

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read a YAML, TOML or JSON config file."""
        return cls.from_dict(read_config_file(path))

    def with_overrides(self, overrides: list[str] | dict) -> RunConfig:
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


def tuned_defaults(task_cls, layout: str | None) -> dict:
    """The task's tuned settings for ``layout``: ``config_defaults`` at its default layout,
    ``layout_defaults[layout]`` at another one (``{}`` where it has none)."""
    if layout in (None, task_cls.default_layout):
        return getattr(task_cls, "config_defaults", {})
    return getattr(task_cls, "layout_defaults", {}).get(layout, {})


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


CONFIG_FILE = "a mapping of sections (task, model, data, train, eval)"


def read_config_file(path: str | Path, what: str = "config file", expected: str = CONFIG_FILE) -> dict:
    """A YAML, TOML or JSON file holding a mapping (a run config; a sweep spec with ``what`` and
    ``expected`` saying so); anything else (missing, not UTF-8, not parseable, empty, a list or a
    scalar, a run config section that is not a mapping) is one ConfigError naming the file and
    what was expected."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist")
    suffixes = (".yaml", ".yml", ".toml", ".json")
    if path.suffix not in suffixes:
        raise ConfigError(f"{what} {str(path)!r} has suffix {path.suffix!r}; allowed: {', '.join(suffixes)}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {str(path)!r} is not UTF-8 text (byte {exc.start}); expected YAML, TOML or "
                          "JSON") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{what} {str(path)!r} is not valid: {' '.join(str(exc).split())}") from None
    if data is None or data == {}:
        raise ConfigError(f"{what} {str(path)!r} is empty; expected {expected}")
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {str(path)!r} holds {kind_of(data)}; expected {expected}")
    if expected != CONFIG_FILE:
        return data
    for name in SECTIONS:
        if name in data and data[name] is not None and not isinstance(data[name], dict):
            raise ConfigError(f"{what} {str(path)!r}: section {name!r} holds {kind_of(data[name])}; "
                              f"expected a mapping of keys to values")
    if "task" in data and not isinstance(data["task"], (str, dict)):
        raise ConfigError(f"{what} {str(path)!r}: 'task' holds {kind_of(data['task'])}; expected a task "
                          f"name or a mapping with 'name' and its parameters")
    return data


def kind_of(value) -> str:
    """What a parsed file value is, in words: ``[1]`` -> "a list"."""
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "a mapping", type(None): "nothing"}
    return kinds.get(type(value), f"a {type(value).__name__}")
