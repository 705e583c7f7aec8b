"""Fixtures and helpers of the results browser's tests, imported by each test module (a second
``conftest.py`` would take the name ``conftest`` from ``tests/conftest.py``, which other tests
import): a small lab, a results store with a sweep (2 widths x 2 seeds), a run of a hostile task
(tokens such as ``<script>``), a run to be removed while its page is open, and the server over
them (``toyformer.ui.Background``: a real uvicorn on a free port)."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
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


def get(base: str, path: str, **params):
    """(status, headers, body as text or JSON) of a GET."""
    url = base + path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            status, headers, body = r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, e.headers, e.read().decode()
    is_json = headers.get("content-type", "").startswith("application/json")
    return status, headers, json.loads(body) if is_json else body


def row_id(store: Path, run_dir: Path) -> str:
    """The store key (row id) of a run directory."""
    from toyformer.experiments.store import ResultsStore

    rows = ResultsStore(store, read_only=True).query(f"run_dir = '{Path(run_dir).resolve()}'", ["id"])
    return str(rows[0]["id"])


def tree_digest(folder: Path, skip=("results.sqlite-wal", "results.sqlite-shm")) -> dict:
    """Every file under ``folder``: its sha256 and modification time (SQLite's -wal/-shm left out)."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in skip}


CIRCUIT = {  # a circuit in the shape explain.json gives it, with a hostile node name (shown as text)
    "nodes": [{"name": "encoder.embed", "kind": "embed"},
              {"name": "encoder.blocks.0.attn head 0", "kind": "head", "role": "mirror", "score": 0.93},
              {"name": "encoder.blocks.0.ff", "kind": "mlp", "score": 0.5},
              {"name": "<b>logits</b>", "kind": "output"}],
    "edges": [{"source": "encoder.embed", "target": "encoder.blocks.0.attn head 0", "score": 0.8},
              {"source": "encoder.blocks.0.attn head 0", "target": "encoder.blocks.0.ff", "score": 0.4},
              ["encoder.blocks.0.ff", "<b>logits</b>", 0.6],
              {"source": ["encoder.hook_embed", None], "target": ["encoder.blocks.0.attn.hook_result", 0]}],
    "faithful": True, "exact_match_kept": 0.99, "method": "edge attribution patching",
}


@pytest.fixture(scope="session")
def explained(lab):
    """``count`` explained by ``toyformer explain`` (roles, ablations, probes, lens, phases), and a
    sweep run explained with a circuit added to its explain.json; returns their run directories."""
    from toyformer.explain import explain
    from toyformer.files import read_json, write_json

    count = lab["runs"] / "count"
    explain(count, n=64)
    with_circuit = lab["runs"] / "sweeps" / "widths" / "runs" / "d_model=16,seed=0"
    explain(with_circuit, n=64)
    data = read_json(with_circuit / "explain.json")
    write_json(with_circuit / "explain.json", {**data, "circuit": CIRCUIT})
    return {"count": count, "circuit": with_circuit}


def synthetic_study(folder: Path, run_dirs: list[Path], name: str = "synthetic", running: bool = False):
    """A tune directory whose Optuna study was written here (no training): three complete trials
    (their runs: ``run_dirs``), one pruned at step 20, one failed with a hostile error, and with
    ``running`` one trial left running. Returns the study (to add trials to while a page watches)."""
    import optuna
    import yaml
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder.mkdir(parents=True)
    (folder / "base.yaml").write_text(yaml.safe_dump(tiny("reverse").to_dict()))
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{folder / 'study.sqlite'}")
    dist = {"train.lr": FloatDistribution(1e-3, 1e-2, log=True), "model.d_model": CategoricalDistribution([8, 16])}

    def add(state, value, lr, width, reported, **attrs):
        study.add_trial(create_trial(state=state, value=value, params={"train.lr": lr, "model.d_model": width},
                                     distributions=dist, intermediate_values=reported, user_attrs=attrs))

    for i, (value, lr, width) in enumerate([(30.0, 0.002, 8), (12.5, 0.006, 16), (20.0, 0.004, 16)]):
        add(TrialState.COMPLETE, value, lr, width, {10: 0.8, 20: 0.4 - 0.1 * i}, run_dir=str(run_dirs[i]),
            solved_at_s=value if value < 30 else None, best_val=0.6 + 0.1 * i, test_exact_match=0.5)
    add(TrialState.PRUNED, None, 0.001, 8, {10: 0.95, 20: 0.93})
    add(TrialState.FAIL, None, 0.009, 8, {}, error="<script>alert('trial')</script> refused")
    if running:
        study.ask({"train.lr": dist["train.lr"], "model.d_model": dist["model.d_model"]})
    return study
