"""Tune: an Optuna search over config keys that minimises time-to-solve (``space``: the search
space; ``search``: the study and its trials, ordinary runs on the sweep executors; ``driver``:
``tune()``, the best config re-measured on fresh seeds; ``outputs``: what it reports)."""

from toyformer.experiments.tune.driver import load_space, tune
from toyformer.experiments.tune.space import DEFAULT_SPACES, Space, default_space, parse_space

__all__ = ["DEFAULT_SPACES", "Space", "default_space", "load_space", "parse_space", "tune"]
