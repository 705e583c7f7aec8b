"""The task registry: name -> task class. A new task is one file plus one ``register_task`` line.

>>> from toyformer.tasks import get_task
>>> get_task("reverse", length=4).kind
'tag'
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import sys
import typing
from pathlib import Path

from toyformer.values import coerce
from toyformer.errors import ConfigError
from toyformer.files import check_folder_name

_REGISTRY: dict[str, type] = {}
_SOURCES: dict[str, tuple[Path, str]] = {}  # task name -> (file, sha256) for tasks loaded from a user's file


def register_task(name: str):
    """Class decorator adding a task class to the registry under ``name``.

    A user's own file can do this too and be loaded with ``--task-file my_task.py``::

        @register_task("my_task")
        @dataclass(frozen=True)
        class MyTask: ...
    """

    check_folder_name(name, "task name")  # default run directories are named runs/TASK-LAYOUT-TIME

    def deco(cls):
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"task {name!r} must be a dataclass")
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return deco


def list_tasks() -> list[str]:
    return sorted(_REGISTRY)


def task_class(name: str) -> type:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown task {name!r}; allowed: {', '.join(list_tasks())}")
    return _REGISTRY[name]


def get_task(name: str, **params):
    """Build a task by name; parameters are type-checked and unknown ones rejected.

    >>> get_task("reverse", length=3, vocab_size=5).length
    3
    """
    cls = task_class(name)
    known = [f.name for f in dataclasses.fields(cls)]
    hints = typing.get_type_hints(cls)
    clean = {}
    for key, value in params.items():
        if key not in known:
            raise ConfigError(
                f"unknown parameter {key!r} for task {name!r}; allowed: {', '.join(known) or 'none'}"
            )
        clean[key] = coerce(value, hints[key], f"task.{key}")
    return cls(**clean)


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def task_source(name: str) -> tuple[Path, str] | None:
    """The file task ``name`` was loaded from and its sha256, or None for a built-in task."""
    return _SOURCES.get(name)


def load_task_file(path: str | Path) -> list[str]:
    """Import a user's Python file that registers tasks; returns the names it registered.

    The file and its sha256 are remembered per task (``task_source``), so that a run directory
    can keep a copy of the file its task came from."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"task file {str(path)!r} does not exist")
    sha = file_sha256(path)
    before = {name: cls for name, cls in _REGISTRY.items()}
    mod_name = f"toyformer_user_task_{path.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"task file {str(path)!r} cannot be imported (not a Python module)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: report it on one line
        raise ConfigError(f"task file {str(path)!r} failed to import: {type(exc).__name__}: {exc}") from None
    registered = sorted(name for name, cls in _REGISTRY.items() if before.get(name) is not cls)
    if not registered:
        raise ConfigError(f"task file {str(path)!r} registers no task (use @register_task)")
    for name in registered:
        _SOURCES[name] = (path.resolve(), sha)
    return registered
