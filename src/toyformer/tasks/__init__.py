"""The task library. Importing this package registers every built-in task."""

from toyformer.tasks import (  # noqa: F401  (each import registers its task)
    addition,
    alternating,
    arithmetic,
    chomsky,
    copy,
    count_ones,
    lookup_table,
    modular_arithmetic,
    parity,
    reverse,
    scratchpad,
    sort,
)
from toyformer.tasks.base import BOS, EOS, PAD, SEP, SPECIALS, UNK, Examples, Task, Vocab, task_params
from toyformer.tasks.registry import (file_sha256, get_task, list_tasks, load_task_file, register_task, task_class,
                                      task_source)

__all__ = [
    "BOS", "EOS", "PAD", "SEP", "SPECIALS", "UNK", "Examples", "Task", "Vocab", "task_params",
    "file_sha256", "get_task", "list_tasks", "load_task_file", "register_task", "task_class", "task_source",
]
