"""toyformer: a lab for small transformers on synthetic algorithmic tasks.

>>> import toyformer
>>> toyformer.get_task("reverse", length=4).sample(2, torch.Generator().manual_seed(0)).input.shape  # doctest: +SKIP
torch.Size([2, 4])
>>> run = toyformer.train(toyformer.RunConfig.from_dict({"task": "count_ones"}))   # doctest: +SKIP
"""

from toyformer.config import DataConfig, EvalConfig, ModelConfig, RunConfig, TaskConfig, TrainConfig
from toyformer.errors import ConfigError
from toyformer.evaluation import evaluate
from toyformer.models import build_model, record_attention
from toyformer.tasks import Examples, Vocab, get_task, list_tasks, load_task_file, register_task
from toyformer.training import Run, load_run, train

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "DataConfig", "EvalConfig", "Examples", "ModelConfig", "Run", "RunConfig",
    "TaskConfig", "TrainConfig", "Vocab", "build_model", "evaluate", "get_task", "list_tasks",
    "load_run", "load_task_file", "record_attention", "register_task", "train",
]
