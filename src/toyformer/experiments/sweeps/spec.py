"""A sweep file: a base run config, a grid and/or a list of overrides, seeds; expanded into points.

::

    name: reverse-width                       # default: the file's stem
    base: {task: {name: reverse, length: 20}, model: {n_layers: 1}, train: {steps: 300}}
    grid: {task.length: [10, 20], model.d_model: [32, 64]}   # cartesian product; keys as for --set
    points: [{model.norm: post}, {model.norm: pre}]           # optional; a product with the grid
    seeds: [0, 1, 2]
    replicas: 4                               # optional: each point is 4 batched replicas, seeds seed..seed+3
    table: {rows: task.length, cols: model.d_model, value: test_exact_match}
    plot: {x: task.length, y: test_token_acc, lines: model.d_model}   # or a list of plots

``base`` may also be a path to a config file (relative to the sweep file). Every point is
validated with ``RunConfig.with_overrides`` when the spec is expanded, so a bad key or value fails
before any run starts (values keep the types the file gives them). A point's run directory is named from its overrides
and seed: ``length=10,d_model=32,norm=post,seed=0`` (a short hash is added when a value had to be made
filesystem-safe or the name is long).

>>> spec = load_sweep({"base": {"task": "count_ones"}, "grid": {"model.d_model": [32, 64]}, "seeds": [0, 1]})
>>> [p.name for p in spec.expand()]
['d_model=32,seed=0', 'd_model=32,seed=1', 'd_model=64,seed=0', 'd_model=64,seed=1']
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from toyformer.config import RunConfig, read_config_file
from toyformer.errors import ConfigError
from toyformer.files import check_folder_name

KEYS = ("name", "base", "grid", "points", "seeds", "replicas", "table", "plot")
TABLE_KEYS = ("rows", "cols", "value")
PLOT_KEYS = ("x", "y", "lines")
SAFE = re.compile(r"[^A-Za-z0-9._=,+-]")
MAX_NAME = 80


@dataclass(frozen=True)
class Point:
    """One run of a sweep: its overrides (``key=value`` strings), seed, validated config and name."""

    name: str
    overrides: tuple[str, ...]
    seed: int
    config: RunConfig
    values: dict = field(default_factory=dict, compare=False)  # key -> value as written in the spec


@dataclass
class SweepSpec:
    """A parsed sweep file. ``expand()`` gives its points."""

    name: str
    base: dict
    grid: dict = field(default_factory=dict)
    points: list = field(default_factory=list)
    seeds: list = field(default_factory=list)
    table: dict = field(default_factory=dict)
    plots: list = field(default_factory=list)
    replicas: int = 1  # K > 1: each point is K replicas (seeds seed .. seed+K-1) trained as one batched run

    def __post_init__(self):
        check_folder_name(self.name, "sweep name")  # the default sweep directory is runs/sweeps/NAME

    def to_dict(self) -> dict:
        return {"name": self.name, "base": self.base, "grid": self.grid, "points": self.points, "seeds": self.seeds,
                "replicas": self.replicas, "table": self.table, "plot": self.plots}

    def with_replicas(self, k: int | None) -> SweepSpec:
        """A copy whose points train ``k`` replicas each (``toyformer sweep --replicas K``); None: unchanged."""
        return self if k is None else replace(self, replicas=replicas_value(k, "replicas"))

    def with_base_overrides(self, overrides: list[str]) -> SweepSpec:
        """A copy whose base config has ``key=value`` overrides applied (``toyformer sweep --set``)."""
        if not overrides:
            return self
        return replace(self, base=RunConfig.from_dict(self.base).with_overrides(overrides).to_dict())

    def combinations(self) -> list[dict]:
        """Every grid x points combination as ``{key: value}`` (before seeds)."""
        grid = [dict(zip(self.grid, values)) for values in itertools.product(*self.grid.values())]
        return [{**g, **p} for g in grid for p in (self.points or [{}])]

    def expand(self) -> list[Point]:
        """All points (combinations x seeds), each validated; a bad key or value raises ConfigError."""
        base = RunConfig.from_dict(self.base)
        seeds = self.seeds or [base.seed]
        self._check_seed_ranges(seeds)
        combos = self.combinations()
        swept = list(dict.fromkeys(k for c in combos for k in c))
        labels = _labels(swept)
        points, seen = [], {}
        for combo in combos:
            overrides = tuple(f"{k}={_text(v)}" for k, v in combo.items())
            for seed in seeds:
                try:
                    config = base.with_overrides({**combo, "seed": seed})
                except ConfigError as exc:
                    where = f" (point {', '.join(overrides)})" if overrides else ""
                    raise ConfigError(f"sweep {self.name!r}{where}: {exc}") from None
                name = point_name([(labels[k], _text(v)) for k, v in combo.items()] + [("seed", str(seed))])
                if name in seen:
                    raise ConfigError(f"sweep {self.name!r}: point {name!r} appears twice; remove the duplicate")
                seen[name] = True
                points.append(Point(name, overrides, seed, config, dict(combo)))
        return points

    def _check_seed_ranges(self, seeds: list[int]) -> None:
        """With replicas, seed s trains seeds s .. s+K-1: two listed seeds closer than K would train a run twice."""
        ordered = sorted(seeds)
        for a, b in zip(ordered, ordered[1:]):
            if b - a < self.replicas:
                raise ConfigError(f"sweep {self.name!r}: seeds {a} and {b} overlap with replicas: {self.replicas} "
                                  f"(seeds {a}..{a + self.replicas - 1}); space the seeds by at least {self.replicas}")

    def swept_fields(self) -> list[str]:
        """The dotted config fields the sweep varies (grid and points keys), then ``seed`` if several."""
        base = RunConfig.from_dict(self.base)
        keys = list(dict.fromkeys(k for c in self.combinations() for k in c))
        fields = [full_key(base, k) for k in keys]
        return fields + (["seed"] if len(self.seeds) > 1 else [])


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return str(value)


def _labels(keys: list[str]) -> dict[str, str]:
    """Short labels for the swept keys: the leaf name unless two keys share it."""
    leaves = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: leaf if leaves.count(leaf) == 1 else k for k, leaf in zip(keys, leaves)}


def point_name(pairs: list[tuple[str, str]]) -> str:
    """``label=value`` pairs joined by commas; a short hash is added when the text was not
    filesystem-safe or is long, so distinct points never share a directory.

    >>> point_name([("length", "10"), ("seed", "0")]), point_name([("positional", "a/b"), ("seed", "0")])
    ('length=10,seed=0', 'positional=a_b,seed=0-74edce61')
    """
    raw = ",".join(f"{k}={v}" for k, v in pairs)
    safe = SAFE.sub("_", raw)
    if safe == raw and len(raw) <= MAX_NAME and not raw.startswith("."):
        return raw
    digest = hashlib.sha1(raw.encode()).hexdigest()[:8]
    return f"{safe.lstrip('.')[:MAX_NAME]}-{digest}"


def full_key(config: RunConfig, key: str) -> str:
    """The dotted column name of an override key (``length`` -> ``task.length``)."""
    data = config.to_dict()
    section, leaf = config._resolve_key(key, data)
    return leaf if section is None else f"{section}.{leaf}"


def load_sweep(source, name: str | None = None) -> SweepSpec:
    """A ``SweepSpec`` from a YAML/TOML/JSON file path or a dict; unknown keys are rejected (a
    file's errors name the file)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        data = read_config_file(path, "sweep file", f"a mapping with keys {', '.join(KEYS)}")
        try:
            return _parse(data, path.parent, name or path.stem)
        except ConfigError as exc:
            raise ConfigError(f"sweep file {str(path)!r}: {exc}") from None
    if isinstance(source, dict):
        return _parse(dict(source), Path("."), name)
    raise ConfigError(f"a sweep spec is a file path or a dict, not {type(source).__name__}")


def _parse(data: dict, root: Path, name: str | None) -> SweepSpec:
    for key in data:
        if key not in KEYS:
            raise ConfigError(f"unknown sweep key {key!r}; allowed: {', '.join(KEYS)}")
    base = data.get("base", {})
    if isinstance(base, str):
        base = read_config_file(root / base)
    if not isinstance(base, dict):
        raise ConfigError("sweep 'base' must be a run config (a mapping) or a config file path")
    grid = data.get("grid") or {}
    if not isinstance(grid, dict) or any(not isinstance(v, list) or not v for v in grid.values()):
        raise ConfigError("sweep 'grid' must map keys to non-empty lists, e.g. {task.length: [10, 20]}")
    points = data.get("points") or []
    if not isinstance(points, list) or any(not isinstance(p, dict) for p in points):
        raise ConfigError("sweep 'points' must be a list of mappings, e.g. [{model.norm: pre}, {model.norm: post}]")
    seeds = data.get("seeds") or []
    seeds = [seeds] if isinstance(seeds, int) else seeds
    if not isinstance(seeds, list) or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise ConfigError(f"sweep 'seeds' must be a list of integers, not {seeds!r}")
    table = _mapping(data.get("table") or {}, "table", TABLE_KEYS)
    plots = data.get("plot") or []
    plots = [_mapping(p, "plot", PLOT_KEYS) for p in (plots if isinstance(plots, list) else [plots])]
    for p in plots:
        if "x" not in p or "y" not in p:
            raise ConfigError("a sweep 'plot' needs x and y, e.g. {x: task.length, y: test_token_acc, lines: "
                              "model.d_model}")
    spec_name = str(data.get("name") or name or "sweep")
    replicas = replicas_value(data.get("replicas", 1), f"sweep {spec_name!r}: replicas")
    return SweepSpec(spec_name, base, grid, points, list(dict.fromkeys(seeds)), table, plots, replicas)


def replicas_value(value, what: str) -> int:
    """``value`` as a replica count (an integer >= 1), else a one-line ConfigError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what}={value!r} is not allowed; allowed: an integer >= 1")
    return value


def _mapping(value, what: str, allowed: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"sweep '{what}' must be a mapping with keys {', '.join(allowed)}")
    for key in value:
        if key not in allowed:
            raise ConfigError(f"unknown key {what}.{key}; allowed: {', '.join(allowed)}")
    return dict(value)
