"""Tasks whose ``config_defaults`` were tuned to solve them: the plain default run (task name
only, default layout, seed 0) must still reach 99.9% test exact match. Runs are deterministic,
so a failure means a change to the code or the defaults broke what solved the task."""

import pytest

import toyformer
from toyformer import RunConfig

SOLVED_BY_DEFAULT = ["parity", "modular_arithmetic", "sort", "addition"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SOLVED_BY_DEFAULT)
def test_default_config_solves(name):
    run = toyformer.train(RunConfig.from_dict({"task": name}))
    assert run.summary["test_exact_match"] >= 0.999, (name, run.summary)
