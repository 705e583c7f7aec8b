"""The results store: one SQLite row per finished run (``store``; what a row holds: ``rows``), the ``--where`` filter
language (``where``), pivot tables with confidence intervals (``table``) and their plots (``plot``)."""

from toyformer.experiments.store.plot import metric_figure, parse_plot
from toyformer.experiments.store.rows import METRICS, flatten_config, git_revision, machine_info, result_row
from toyformer.experiments.store.store import ResultsStore, as_store, default_store_path, record_run, warn_not_recorded
from toyformer.experiments.store.table import PivotTable, pivot

__all__ = ["METRICS", "PivotTable", "ResultsStore", "as_store", "default_store_path", "flatten_config", "git_revision",
           "machine_info", "metric_figure", "parse_plot", "pivot", "record_run", "result_row", "warn_not_recorded"]
