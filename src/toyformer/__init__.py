"""toyformer: a lab for small transformers on synthetic algorithmic tasks.

The public API, gathered from the layers of the package (each layer imports only the layers
below it; see ``docs/architecture.md``)::

    cli                       the command line, a thin layer over this API
    bench                     benchmarks (throughput, time to solve)
    experiments               results store, sweeps, recipes; training that records
    report                    HTML pages
    explain                   hooks, ablation, patching, head roles, probes, logit lens, explain
    inspect                   attention, embeddings, generation, plots, live curves
    training                  one loop for single runs and replicas
    eval                      metrics, evaluation, decoding, lengths, diagnosis
    run                       Run, build, load_run: a run directory <-> a model
    models                    attention, blocks, positional schemes, layouts
    data                      formatting per layout, splits
    config                    typed configuration
    tasks                     what to learn
    errors, files, values, stats

>>> import toyformer
>>> toyformer.get_task("reverse", length=4).sample(2, torch.Generator().manual_seed(0)).input.shape  # doctest: +SKIP
torch.Size([2, 4])
>>> run = toyformer.train(toyformer.RunConfig.from_dict({"task": "count_ones"}))   # doctest: +SKIP
"""

from toyformer import interrupts as _interrupts

_interrupts.guard_start()  # the command line: Ctrl-C during the imports below is one line, not a traceback

from toyformer.config import DataConfig, EvalConfig, ModelConfig, RunConfig, TaskConfig, TrainConfig
from toyformer.errors import ConfigError
from toyformer.eval import (beam_search, by_length, by_position, diagnose, evaluate, evaluate_lengths, format_table,
                            greedy, parse_lengths, sample)
from toyformer.experiments.recipes import list_recipes, run_recipe
from toyformer.experiments.recording import train, train_replicas
from toyformer.experiments.store import ResultsStore, metric_figure
from toyformer.experiments.sweeps import load_sweep, sweep
from toyformer.experiments.trial_fixes import try_fixes
from toyformer.experiments.tune import tune
from toyformer.explain import run_with_cache, run_with_hooks
from toyformer.inspect import (AttentionMaps, CurvesFile, EmbeddingMap, NotebookCurves, attention, embeddings, generate,
                               live_curves, plot_lengths, plot_run, samples)
from toyformer.models import build_model, hooks, record_attention
from toyformer.report import write_report
from toyformer.run import Run, load_run
from toyformer.stats import mean_ci
from toyformer.tasks import Examples, Vocab, get_task, list_tasks, load_task_file, register_task
from toyformer.training import Replicas, load_replicas

__version__ = "0.1.0"

__all__ = [
    "AttentionMaps", "ConfigError", "CurvesFile", "DataConfig", "EmbeddingMap", "EvalConfig", "Examples",
    "ModelConfig", "NotebookCurves", "Replicas", "ResultsStore", "Run", "RunConfig", "TaskConfig", "TrainConfig",
    "Vocab", "attention", "beam_search", "build_model", "by_length", "by_position", "diagnose", "embeddings",
    "evaluate", "evaluate_lengths", "format_table", "generate", "get_task", "greedy", "list_recipes", "list_tasks",
    "hooks", "live_curves", "load_replicas", "load_run", "load_sweep", "load_task_file", "mean_ci", "metric_figure",
    "parse_lengths", "plot_lengths", "plot_run", "record_attention", "register_task", "run_recipe", "run_with_cache",
    "run_with_hooks", "sample", "samples", "sweep", "train", "train_replicas", "try_fixes", "tune", "write_report",
]
