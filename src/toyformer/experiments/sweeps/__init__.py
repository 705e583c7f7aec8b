"""Sweeps: a spec (``spec``: a base config and a grid or list of overrides) run point by point
(``run``) on an executor (``executors``: in process, local processes, a Dask cluster), with its
table, plots and report (``outputs``)."""

from toyformer.experiments.sweeps.run import DEFAULT_STORE, PointResult, SweepResult, sweep
from toyformer.experiments.sweeps.spec import Point, SweepSpec, load_sweep

__all__ = ["DEFAULT_STORE", "Point", "PointResult", "SweepResult", "SweepSpec", "load_sweep", "sweep"]
