"""toyformer: a lab for small transformers on synthetic algorithmic tasks.

>>> import toyformer
>>> toyformer.get_task("reverse", length=4).sample(2, torch.Generator().manual_seed(0)).input.shape  # doctest: +SKIP
torch.Size([2, 4])
>>> run = toyformer.train(toyformer.RunConfig.from_dict({"task": "count_ones"}))   # doctest: +SKIP
"""

from toyformer.config import DataConfig, EvalConfig, ModelConfig, RunConfig, TaskConfig, TrainConfig
from toyformer.decode import beam_search, greedy, sample
from toyformer.diagnosis import diagnose
from toyformer.errors import ConfigError
from toyformer.evaluation import by_length, by_position, evaluate
from toyformer.generate import generate
from toyformer.inspect import AttentionMaps, EmbeddingMap, attention, embeddings, samples
from toyformer.length_eval import evaluate_lengths, format_table, parse_lengths, plot_lengths
from toyformer.live import CurvesFile, NotebookCurves, live_curves
from toyformer.models import build_model, record_attention
from toyformer.plots import plot_run
from toyformer.replicas import Replicas, load_replicas, train_replicas
from toyformer.report import write_report
from toyformer.results_plot import metric_figure
from toyformer.results_store import ResultsStore
from toyformer.stats import mean_ci
from toyformer.sweep_run import sweep
from toyformer.sweep_spec import load_sweep
from toyformer.tasks import Examples, Vocab, get_task, list_tasks, load_task_file, register_task
from toyformer.training import Run, load_run, train

__version__ = "0.1.0"

__all__ = [
    "AttentionMaps", "ConfigError", "CurvesFile", "DataConfig", "EmbeddingMap", "EvalConfig", "Examples",
    "ModelConfig", "NotebookCurves", "Replicas", "ResultsStore", "Run", "RunConfig", "TaskConfig", "TrainConfig",
    "Vocab", "attention", "beam_search", "build_model", "by_length", "by_position", "diagnose", "embeddings",
    "evaluate", "evaluate_lengths", "format_table", "generate", "get_task", "greedy", "list_tasks", "live_curves",
    "load_replicas", "load_run", "load_sweep", "load_task_file", "mean_ci", "metric_figure", "parse_lengths",
    "plot_lengths", "plot_run", "record_attention", "register_task", "sample", "samples", "sweep", "train",
    "train_replicas", "write_report",
]
