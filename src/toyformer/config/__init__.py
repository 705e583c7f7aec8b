"""Typed configuration: frozen dataclasses validated on construction (``sections``: task, model,
data, train, eval, each numeric value with its declared range, ``ranges``), the whole run
(``run_config``: ``RunConfig``, config files and dotted overrides such as ``model.n_layers=2``),
unknown keys rejected with the list of known ones; the table of positional schemes and their
rules (``positional``)."""

from toyformer.config import positional
from toyformer.config.positional import SCHEMES, PositionalConfig, Scheme, register_scheme
from toyformer.config.run_config import LAYOUTS, SECTIONS, Layout, RunConfig, read_config_file
from toyformer.config.sections import DataConfig, EvalConfig, ModelConfig, TaskConfig, TrainConfig

__all__ = ["LAYOUTS", "SCHEMES", "SECTIONS", "DataConfig", "EvalConfig", "Layout", "ModelConfig", "PositionalConfig",
           "RunConfig", "Scheme", "TaskConfig", "TrainConfig", "positional", "read_config_file", "register_scheme"]
