"""The one error type users see: bad input, reported as a single line naming the allowed values.

The library's messages name the API's arguments (``where='x >': ...``); the front ends that take
flags (the CLI, ``toyformer bench``) name the flag that sets each (``as_flags``).
"""

import re


class ConfigError(ValueError):
    """Bad user input (unknown task, key or value; a layout that cannot fit the task)."""


# The library's errors name the API's arguments (``where='x >': ...``); the command line names the
# flag that sets each (``--where 'x >': ...``). Argument -> flag, for the arguments a flag sets.
FLAGS = {"where": "--where", "lengths": "--lengths", "replica_set": "--replica-set", "k": "--replicas",
         "inputs": "--input", "input_text": "--input", "clean": "--input", "corrupt": "--corrupt",
         "budget_s": "--budget-s", "preset": "--preset", "workers": "--workers", "cluster": "--cluster",
         "threads": "--threads", "objective": "--objective", "trials": "--trials", "seeds": "--seeds",
         "out": "--out", "store": "--store", "format": "--format", "plot": "--plot", "what": "--what",
         "sample": "--sample", "task_files": "--task-file", "runs": "--runs", "host": "--host", "port": "--port",
         "n": "--n"}
_ARGUMENT = re.compile(r"(?<![\w.\-'\"])(" + "|".join(sorted(FLAGS, key=len, reverse=True)) + r")=")


def as_flags(message: str) -> str:
    """A library message with each argument (``where=...``) named by its flag (``--where ...``).

    >>> as_flags("where='x >': the expression ends too early; model.where=1 stays")
    "--where 'x >': the expression ends too early; model.where=1 stays"
    """
    return _ARGUMENT.sub(lambda m: FLAGS[m.group(1)] + " ", message)
