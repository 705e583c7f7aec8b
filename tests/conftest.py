"""Shared helpers: small, fast configurations."""

import pytest
import torch

from toyformer import RunConfig

torch.set_num_threads(1)  # small models: threads cost more than they give, and runs stay comparable


def small_config(task="reverse", layout=None, **sections) -> RunConfig:
    """A tiny model on a tiny task; ``sections`` are nested dicts merged over the defaults."""
    task = {"name": task, **({"length": 5} if task in ("reverse", "copy", "sort") else {})} if isinstance(task,
                                                                                                          str) else task
    data = {
        "task": task,
        "model": {"d_model": 32, "n_heads": 2, "n_layers": 1, "d_ff": 64},
        "train": {"steps": 60, "warmup_steps": 5},
        "eval": {"every": 20, "val_size": 64, "test_size": 128, "target": None},
        "data": {"batch_size": 32},
    }
    if layout:
        data["layout"] = layout
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return RunConfig.from_dict(data)


@pytest.fixture
def tiny():
    return small_config


@pytest.fixture(autouse=True)
def _results_store(tmp_path, monkeypatch):
    """Runs recorded by the CLI go to a store under the test's tmp_path, never into the repo's runs/."""
    monkeypatch.setenv("TOYFORMER_RESULTS", str(tmp_path / "results.sqlite"))
