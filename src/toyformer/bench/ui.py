"""The results browser's speed: ``toyformer bench ui [--quick] [--runs N] [--rounds R]``.

Fills a fresh runs folder with ``N`` runs (10,000 by default): each a run directory with its
config, its learning curves (``metrics.jsonl``) and its summary, recorded in a results store
in one transaction (``ResultsStore.record_summaries``: the rows training records, every config
field a column),
and ``N // 100`` more finished but not recorded; starts ``toyformer ui`` on them, and measures in
headless chromium (Playwright, as the tests drive it), over ``R`` fresh page loads:

- **the runs page to interactive**: from the navigation's start to the table rendered with its
  rows and controls live (the page's ``ui-ready`` performance mark); target < 1 s;
- **a filter's answer**: from submitting a ``--where`` filter to the table re-rendered with the
  rows that match (the server's query and the page's rendering, measured in the page); target
  < 200 ms, every filter of ``FILTERS``;
- for reference: a sort of the whole table by a column, and grouping it by every setting but the
  seed (the server's groups with their mean and 95% CI per column, and the page's rendering).

Times are medians (and maxima) over the rounds. Run it on a quiet machine: the browser, the
server and Python share the CPU.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from toyformer.errors import ConfigError

TARGET_READY_MS, TARGET_FILTER_MS = 1000.0, 200.0
FILTERS = ["task.name = 'reverse'", "model.d_model >= 64 and seed < 3", "test_token_acc > 0.9",
           "sweep = 'sweep-7'", "task.name in ('copy', 'sort') and model.n_layers = 2 or train.lr < 0.002"]
TASKS = ("reverse", "copy", "sort", "count_ones", "parity", "addition")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
MEASURE_FILTER = """async (where) => {
  const before = +document.body.dataset.renders;
  const t0 = performance.now();
  document.getElementById('where').value = where;
  document.getElementById('filter').requestSubmit();
  while (+document.body.dataset.renders === before) await new Promise(r => requestAnimationFrame(r));
  return [performance.now() - t0, document.querySelectorAll('#runs tbody tr').length,
          document.getElementById('count').textContent];
}"""
MEASURE_GROUP = """async (group) => {
  const before = +document.body.dataset.renders;
  const t0 = performance.now();
  const select = document.getElementById('group');
  select.value = group;
  select.dispatchEvent(new Event('change'));
  while (+document.body.dataset.renders === before) await new Promise(r => requestAnimationFrame(r));
  return [performance.now() - t0, document.querySelectorAll('#runs tbody tr.group').length];
}"""
MEASURE_SORT = """async (col) => {
  const before = +document.body.dataset.renders;
  const t0 = performance.now();
  document.querySelector(`th[data-col='${col}']`).click();
  while (+document.body.dataset.renders === before) await new Promise(r => requestAnimationFrame(r));
  return performance.now() - t0;
}"""


def fill_store(path: Path, n: int, seed: int = 0) -> None:
    """``n`` runs in a new store at ``path`` and their run directories beside it (``train/<i>`` or
    ``sweeps/<name>/runs/<point>``), and ``n // 100`` unrecorded ones (``unrecorded/<i>``): varied
    tasks, widths, depths, learning rates and seeds, half of them in sweeps, with plausible
    learning curves and final metrics (test exact match with its n and Wilson interval). The
    runs are drawn first; their files are written by a few threads (creating a file waits on the
    disk, not the CPU), and the rows recorded in one transaction."""
    from toyformer.config import RunConfig
    from toyformer.experiments.store import ResultsStore
    from toyformer.stats import proportion_ci

    interval = functools.lru_cache(maxsize=None)(proportion_ci)  # one per count of right answers
    rng = random.Random(seed)
    base = RunConfig.from_dict({"task": {"name": "reverse"}}).to_dict()
    entries, files = [], []
    for i in range(n + n // 100):
        config = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
        config["task"] = {"name": rng.choice(TASKS), "length": rng.choice([5, 10, 20])}
        config["model"].update(d_model=rng.choice([16, 32, 64, 128]), n_layers=rng.choice([1, 2, 4]))
        config["train"].update(lr=rng.choice([1e-3, 3e-3]))
        config["seed"] = rng.randrange(5)
        acc, test_n, steps = rng.random(), 2000, rng.choice([500, 1000, 2000])
        right = round(acc ** 3 * test_n)
        summary = {"test_token_acc": acc, "test_exact_match": right / test_n, "test_loss": 2 * (1 - acc),
                   "train_loss": 2 - acc, "val_token_acc": acc, "val_exact_match": acc ** 3, "steps": steps,
                   "solved_at_step": rng.choice([None, 300, 700]), "wall_s": rng.uniform(1, 60),
                   "params": 1000 * config["model"]["d_model"], "test_n": test_n,
                   "test_exact_match_ci95": list(interval(right, test_n))}
        summary["solved"] = summary["solved_at_step"] is not None
        sweep = f"sweep-{i % 20}" if i % 2 else None
        folder = "unrecorded" if i >= n else f"sweeps/{sweep}/runs" if sweep else "train"
        run_dir = path.parent / folder / f"{i:05d}"
        files.append((run_dir, config, summary, _curves(summary, rng)))
        if i < n:
            entries.append({"config": config, "summary": summary, "run_dir": run_dir, "sweep": sweep,
                            "source": "sweep" if sweep else "train", "point": f"p{i}" if sweep else None,
                            "machine": "bench", "git_rev": "bench"})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda f: _run_dir(*f), files))
    ResultsStore(path).record_summaries(entries)  # one transaction, as an import would


def _curves(summary: dict, rng) -> str:
    """``metrics.jsonl`` of a run that ends at ``summary``: ten evaluations."""
    every = summary["steps"] // 10
    lines = []
    for k in range(1, 11):
        p = summary["test_token_acc"] * k / 10
        lines.append(json.dumps({"step": k * every, "wall_s": summary["wall_s"] * k / 10, "train_loss": 2 - p,
                                 "val_loss": 2 - p + rng.uniform(0, 0.1), "train_token_acc": p, "val_token_acc": p,
                                 "train_exact_match": p ** 3, "val_exact_match": p ** 3}))
    return "\n".join(lines) + "\n"


def _run_dir(run_dir: Path, config: dict, summary: dict, curves: str) -> None:
    """A finished run directory: config, learning curves, summary."""
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "metrics.jsonl").write_text(curves)
    (run_dir / "summary.json").write_text(json.dumps(summary))


def _chromium() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise ConfigError("toyformer bench ui drives chromium with playwright: pip install playwright") from None
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise ConfigError("toyformer bench ui needs a chromium executable (apt-get install -y chromium)")
    return path


def run(args) -> dict:
    """Fill the store, serve it, and time the runs page and its filters in the browser."""
    from playwright.sync_api import sync_playwright

    from toyformer.ui import Background

    chromium = _chromium()
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    n, rounds = (200, 2) if args.quick else (args.n_runs, args.rounds)
    folder = Path(tempfile.mkdtemp(prefix="toyformer-bench-ui-"))
    try:
        t0 = time.perf_counter()
        fill_store(folder / "results.sqlite", n)
        fill_s = time.perf_counter() - t0
        ready, sort, group = [], [], []
        filters: dict[str, list[float]] = {w: [] for w in FILTERS}
        matched = {}
        with Background(store=folder / "results.sqlite", runs=folder, port=0) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
            try:
                for _ in range(rounds):
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    page.goto(base + "/runs", wait_until="load")
                    page.wait_for_selector("body[data-renders]", state="attached", timeout=60_000)
                    ready.append(page.evaluate("performance.getEntriesByName('ui-ready')[0].startTime"))
                    for where in FILTERS:
                        ms, shown, count = page.evaluate(MEASURE_FILTER, where)
                        filters[where].append(ms)
                        matched[where] = count
                    page.evaluate(MEASURE_FILTER, "")
                    sort.append(page.evaluate(MEASURE_SORT, "test_token_acc"))
                    ms, groups = page.evaluate(MEASURE_GROUP, "*settings")
                    group.append(ms)
                    page.close()
            finally:
                browser.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    med = {w: statistics.median(v) for w, v in filters.items()}
    return {"n_runs": n, "rounds": rounds, "fill_s": round(fill_s, 2), "load_avg_at_start": load,
            "ready_ms": ready, "ready_median_ms": statistics.median(ready), "ready_max_ms": max(ready),
            "filters": [{"where": w, "matched": matched[w], "median_ms": med[w], "max_ms": max(filters[w]),
                         "ms": filters[w]} for w in FILTERS],
            "filter_max_median_ms": max(med.values()), "sort_median_ms": statistics.median(sort),
            "group_median_ms": statistics.median(group), "groups_on_first_page": groups,
            "targets": {"ready_ms": TARGET_READY_MS, "filter_ms": TARGET_FILTER_MS},
            "ready_met": statistics.median(ready) < TARGET_READY_MS,
            "filter_met": max(med.values()) < TARGET_FILTER_MS}


def render(res: dict) -> str:
    ok = lambda met: "met" if met else "NOT met"  # noqa: E731
    lines = ["| measurement | median ms | max ms | target |", "|---|---|---|---|",
             f"| runs page to interactive ({res['n_runs']:,} runs) | {res['ready_median_ms']:.0f} | "
             f"{res['ready_max_ms']:.0f} | < {TARGET_READY_MS:.0f} ms: {ok(res['ready_met'])} |"]
    for f in res["filters"]:
        lines.append(f"| filter `{f['where']}` ({f['matched']}) | {f['median_ms']:.0f} | {f['max_ms']:.0f} | "
                     f"< {TARGET_FILTER_MS:.0f} ms: {ok(f['median_ms'] < TARGET_FILTER_MS)} |")
    lines.append(f"| sort {res['n_runs']:,} rows by a column | {res['sort_median_ms']:.0f} | | |")
    if "group_median_ms" in res:
        lines.append(f"| group {res['n_runs']:,} rows by every setting but the seed (mean ± 95% CI per column) | "
                     f"{res['group_median_ms']:.0f} | | |")
    lines.append(f"\n{res['rounds']} fresh page loads of `/runs` in headless chromium; each filter submitted in the "
                 "page and timed to the table re-rendered (the server's query included); the runs folder filled with "
                 f"{res['n_runs']:,} recorded run directories (curves and summaries) and {res['n_runs'] // 100:,} "
                 f"unrecorded ones in {res['fill_s']:.1f} s."
                 + (f" Load average at the start (1, 5, 15 min): {', '.join(map(str, res['load_avg_at_start']))}."
                    if res.get("load_avg_at_start") else ""))
    return "\n".join(lines)
