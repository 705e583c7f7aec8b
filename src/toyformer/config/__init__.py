"""Typed configuration: frozen dataclasses validated on construction, config files and dotted
overrides (``model.n_layers=2``), unknown keys rejected with the list of known ones."""

from toyformer.config.run_config import (LAYOUTS, SECTIONS, DataConfig, EvalConfig, Layout, ModelConfig, RunConfig,
                                         TaskConfig, TrainConfig, read_config_file)

__all__ = ["LAYOUTS", "SECTIONS", "DataConfig", "EvalConfig", "Layout", "ModelConfig", "RunConfig", "TaskConfig",
           "TrainConfig", "read_config_file"]
