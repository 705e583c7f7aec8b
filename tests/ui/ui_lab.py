"""Fixtures and helpers of the results browser's tests, imported by each test module (a second
``conftest.py`` would take the name ``conftest`` from ``tests/conftest.py``, which other tests
import): a small lab, a results store with a sweep (2 widths x 2 seeds), a run of a hostile task
(tokens such as ``<script>``), a run to be removed while its page is open, and the server over
them (``toyformer.ui.Background``: a real uvicorn on a free port)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("plotly")

from hostile_pages import EVIL_TASK, EVIL_TOKENS  # noqa: E402, F401 (EVIL_TOKENS: for the test modules)

TINY = {"model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32},
        "train": {"steps": 40, "warmup_steps": 5}, "eval": {"every": 10, "val_size": 32, "test_size": 64},
        "data": {"batch_size": 32}}


def tiny(task: str, **sections):
    """A tiny config of ``task`` (length 4 where it has one); ``sections`` merged over ``TINY``."""
    from toyformer import RunConfig

    data = {key: dict(value) for key, value in TINY.items()}
    data["task"] = {"name": task, **({"length": 4} if task in ("reverse", "evil<i>copy<b>") else {})}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return RunConfig.from_dict(data)
SWEEP = """name: widths
base: {task: {name: reverse, length: 4}, model: {n_layers: 1, n_heads: 2, d_ff: 32},
       train: {steps: 40, warmup_steps: 5}, eval: {every: 10, val_size: 32, test_size: 64}}
grid: {model.d_model: [8, 16]}
seeds: [0, 1]
plot: {x: model.d_model, y: test_token_acc}
"""


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """``runs/`` with ``results.sqlite``: the sweep ``widths`` (4 runs), ``evil`` (the hostile
    task), ``doomed`` (removed by a test) and ``count`` (a classifier)."""
    from toyformer import sweep, train
    from toyformer.tasks import load_task_file

    root = tmp_path_factory.mktemp("lab")
    runs, store = root / "runs", root / "runs" / "results.sqlite"
    (root / "evil_task.py").write_text(EVIL_TASK)
    load_task_file(root / "evil_task.py")
    train(tiny("evil<i>copy<b>"), out_dir=runs / "evil", store=store)
    train(tiny("reverse"), out_dir=runs / "doomed", store=store)
    train(tiny("count_ones"), out_dir=runs / "count", store=store)
    (root / "widths.yaml").write_text(SWEEP)
    sweep(root / "widths.yaml", out=runs / "sweeps" / "widths", store=store)
    return {"root": root, "runs": runs, "store": store}


@pytest.fixture(scope="session")
def server(lab):
    """The results browser over the lab: its base URL; ``server.app`` for its state."""
    from toyformer.ui import Background

    bg = Background(store=lab["store"], runs=lab["runs"], port=0)
    with bg as url:
        bg.base = url
        yield bg


def row_id(store: Path, run_dir: Path) -> str:
    """The store key (row id) of a run directory."""
    from toyformer.experiments.store import ResultsStore

    rows = ResultsStore(store, read_only=True).query(f"run_dir = '{Path(run_dir).resolve()}'", ["id"])
    return str(rows[0]["id"])


def tree_digest(folder: Path, skip=("results.sqlite-wal", "results.sqlite-shm")) -> dict:
    """Every file under ``folder``: its sha256 and modification time (SQLite's -wal/-shm left out)."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in skip}
