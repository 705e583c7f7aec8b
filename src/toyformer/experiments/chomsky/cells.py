"""One cell of the suite's table: a task and a column (a recurrent family or ``transformer/<scheme>``)
trained on every seed and learning rate of a budget, each seed scored at the test lengths.

``run_cell`` is the job the sweep executors run (in process, in worker processes or on a Dask
cluster; it is pickled by reference). Its runs are ordinary run directories::

    OUT/<task>/<column>/lr-<lr>/seed-<s>/           one run per seed (the LSTM; --seeds-as runs)
    OUT/<task>/<column>/lr-<lr>/replicas/<s>/       transformer seeds as one batched replica run
    .../chomsky_score.json                          the seed's score at the test lengths

A finished run is loaded, not trained again, and a score already measured at the same lengths
and sample size is read back, so a killed bench run again continues where it stopped.

>>> result = run_cell("parity_check", "lstm", BUDGETS["quick"], "runs/bench/chomsky")   # doctest: +SKIP
>>> [r["score"] for r in result["runs"]]                                               # doctest: +SKIP
[0.49, 0.51]
"""

from __future__ import annotations

import time
from pathlib import Path

from toyformer.experiments.chomsky.protocol import TRAIN_LENGTHS, Budget, cell_config, steps_key
from toyformer.experiments.chomsky.score import DECODING, model_predictor, protocol_score
from toyformer.files import read_json, write_json

SCORE_FILE = "chomsky_score.json"
SCORE_SEED = 1  # the test examples: the same for every run, model and budget


def run_cell(task: str, column: str, budget: Budget, out: str, seeds: int | None = None,
             max_test_length: int | None = None, n_per_length: int | None = None, batched: bool = True,
             threads: int | None = None, quiet: bool = True) -> dict:
    """Train and score every seed and learning rate of the cell (``task``, ``column``) under
    ``budget``; transformer seeds train as batched replicas when ``batched`` (a recurrent network's never can).
    Returns each run's config, summary, score and trained-range score, and where it ran."""
    import torch

    from toyformer.experiments.store import git_revision, machine_info
    from toyformer.training import train_into, train_replicas_into

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    seeds = seeds or budget.seeds
    top = max_test_length or budget.max_test_length
    n = n_per_length or budget.n_per_length
    family = steps_key(column)
    t0 = time.perf_counter()
    runs = []
    try:
        for lr in budget.lrs[family]:
            base = Path(out) / task / column.replace("/", "-") / f"lr-{lr:g}"
            config = cell_config(task, column, budget, seed=0, lr=lr, max_test_length=top)
            if family == "transformer" and batched and seeds > 1:
                rep, status = train_replicas_into(base / "replicas", config, seeds, quiet=quiet)
                trained, statuses = rep.runs, [status] * seeds
            else:
                done = [train_into(base / f"seed-{s}", config.with_overrides([f"seed={s}"]), quiet=quiet)
                        for s in range(seeds)]
                trained, statuses = [run for run, _ in done], [status for _, status in done]
            for run, status in zip(trained, statuses):  # status: trained, resumed, or done (finished before)
                runs.append({"seed": run.config.seed, "lr": lr, "run_dir": str(run.run_dir), "status": status,
                             "config": run.config.to_dict(), "summary": run.summary, **score_run(run, top, n)})
    finally:
        torch.set_num_threads(before)
    return {"task": task, "column": column, "runs": runs, "wall_s": round(time.perf_counter() - t0, 3),
            "machine": machine_info(str(trained[0].device)), "git_rev": git_revision()}


def score_run(run, max_test_length: int, n: int) -> dict:
    """The run's score at lengths 41..``max_test_length`` and on the trained lengths 1..40 (``n``
    examples each), read from its ``chomsky_score.json`` when measured there before alike."""
    lo, hi = TRAIN_LENGTHS
    key = {"test_lengths": [hi + 1, max_test_length], "n_per_length": n, "seed": SCORE_SEED}
    path = Path(run.run_dir) / SCORE_FILE
    if path.is_file():
        cached = read_json(path)
        if {k: cached.get(k) for k in key} == key:
            return {k: cached[k] for k in ("score", "train_score", "per_length", "score_s")}
    t0 = time.perf_counter()
    heads = run.config.model.n_heads if run.config.model.family == "transformer" else 1
    predict = model_predictor(run.model, run.config.layout, run.device, run.config.data.sep, heads)
    pooled = run.config.layout in DECODING  # a decoder's steps run once for all lengths
    test = protocol_score(predict, run.task, list(range(hi + 1, max_test_length + 1)), n, SCORE_SEED, pooled)
    trained = protocol_score(predict, run.task, list(range(lo, hi + 1)), n, SCORE_SEED, pooled)
    result = {"score": test["score"], "train_score": trained["score"],
              "per_length": {str(k): v for k, v in test["per_length"].items()},
              "score_s": round(time.perf_counter() - t0, 3)}
    write_json(path, {**key, **result})
    return result
