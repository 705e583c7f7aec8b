"""A run directory and the ``Run`` it holds: build a run from a config, load one from its directory;
what its ``summary.json`` holds, as types (``records``).

Everything above this layer (evaluation, training, inspection, reports, experiments) reaches a
run's files only through here.
"""

from toyformer.run.build import Run, build, load_run, resolve_device
from toyformer.run.records import ReplicaSummary, Summary

__all__ = ["ReplicaSummary", "Run", "Summary", "build", "load_run", "resolve_device"]
