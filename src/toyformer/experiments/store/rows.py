"""What one run's row in the results store holds: its config as dotted columns, the numbers of
its summary, the interval of its test exact match, and where it ran (git revision, machine).

>>> flatten_config({"task": {"name": "reverse", "length": 8}, "seed": 1})
{'task.name': 'reverse', 'task.length': 8, 'seed': 1}
"""

from __future__ import annotations

import functools
import json
import platform
import subprocess
from pathlib import Path

from toyformer.stats import proportion_ci

METRICS = {  # summary key -> SQL type; other numeric summary keys are added on demand
    "test_token_acc": "REAL", "test_exact_match": "REAL", "test_loss": "REAL", "train_loss": "REAL",
    "val_token_acc": "REAL", "val_exact_match": "REAL", "solved": "INTEGER", "solved_at_step": "INTEGER",
    "solved_at_s": "REAL", "wall_s": "REAL", "steps": "INTEGER", "params": "INTEGER", "test_n": "INTEGER",
    "test_exact_match_lo": "REAL", "test_exact_match_hi": "REAL",
}
INTERVAL = ("test_exact_match_lo", "test_exact_match_hi")  # Wilson's 95% interval of test_exact_match

def flatten_config(config: dict) -> dict:
    """A RunConfig dict as dotted columns: ``{"task.name": ..., "model.d_model": 64, "seed": 0}``;
    list values become JSON text.

    >>> flatten_config({"task": {"name": "reverse", "length": 8}, "model": {"head_hidden": [64]}, "seed": 1})
    {'task.name': 'reverse', 'task.length': 8, 'model.head_hidden': '[64]', 'seed': 1}
    """
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            for leaf, v in flatten_config(value).items():
                out[f"{key}.{leaf}"] = v
        else:
            out[key] = json.dumps(list(value)) if isinstance(value, (list, tuple)) else value
    return out


def result_row(config: dict, summary: dict) -> dict:
    """The columns of a run: its flattened config, the numbers of its summary, the interval of its
    test exact match, and ``solved`` (the summary's own; before it had one, whether validation
    reached the target)."""
    row = flatten_config(config)
    numbers = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    row.update({k: summary.get(k) for k in METRICS if k in summary or k in numbers})  # None too: an unsolved run
    row.update({k: v for k, v in numbers.items() if k not in row})
    row.update(zip(INTERVAL, test_interval(summary)))
    row["solved"] = int(bool(summary["solved"]) if "solved" in summary else summary.get("solved_at_step") is not None)
    return row


def test_interval(summary: dict) -> tuple[float | None, float | None]:
    """The 95% interval of a run's test exact match: the summary's own, else Wilson's from its
    ``test_n`` (a summary written before the interval was), else ``(None, None)``."""
    if summary.get("test_exact_match_ci95"):
        return tuple(summary["test_exact_match_ci95"])
    n, value = summary.get("test_n"), summary.get("test_exact_match")
    if not n or value is None:
        return None, None
    return proportion_ci(round(value * n), n)


@functools.lru_cache(maxsize=1)
def git_revision() -> str:
    """``git rev-parse HEAD`` of toyformer's checkout (``+dirty`` with local changes), else its version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("toyformer")
    except PackageNotFoundError:
        release = "unknown"
    src = Path(__file__).resolve().parents[2]  # src/toyformer
    try:
        def git(*a):
            return subprocess.run(["git", "-C", str(src), *a], capture_output=True, text=True, timeout=5)

        top = git("rev-parse", "--show-toplevel")
        if top.returncode == 0 and (Path(top.stdout.strip()) / "src" / "toyformer").resolve() == src:
            rev = git("rev-parse", "HEAD").stdout.strip()
            dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".").stdout.strip()
            if rev:
                return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return f"toyformer {release}"


def machine_info(device: str | None = None) -> str:
    """Where a run trained: host, CPU, OS, torch threads and device, Python and torch versions."""
    import torch

    return (f"{platform.node()} {platform.machine()} {platform.system()}, {torch.get_num_threads()} torch threads, "
            f"{device or 'cpu'}, Python {platform.python_version()}, torch {torch.__version__}")
