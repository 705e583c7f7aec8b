"""The sweeps page's numbers: the sweeps in the store, a sweep's pivot table (rows, columns and
value chosen on the page; mean ± 95% CI and n per cell, as ``toyformer results`` prints it), the
spec's plots as series (mean and band per line), and each point's run.
"""

from __future__ import annotations

import json
from pathlib import Path

from toyformer.errors import ConfigError
from toyformer.experiments.store.table import KEY_METRICS, NOT_SWEPT, is_accuracy, pivot, short, varying_fields
from toyformer.files import read_json
from toyformer.ui import intervals
from toyformer.ui.data import FINAL_METRICS, RunGone, Source

METRIC_CHOICES = ("test_token_acc", "test_exact_match", "test_loss", "train_loss", "val_token_acc", "val_exact_match",
                  "solved", "solved_at_step", "solved_at_s", "steps", "wall_s", "params")


def sweep_rows(source: Source, name: str) -> list[dict]:
    """The store's rows of sweep ``name`` (RunGone when there are none)."""
    if source.store is None or not source.store_columns() or "sweep" not in source.store_columns():
        raise RunGone(f"sweep {name!r} is not in the results store")
    rows = source.store.query("sweep = '" + name.replace("'", "''") + "'")
    if not rows:
        raise RunGone(f"sweep {name!r} is not in the results store")
    return rows


def list_sweeps(source: Source) -> list[dict]:
    """One entry per sweep in the store: runs, points, last recorded, the sweep directory."""
    cols = source.store_columns()
    if source.store is None or "sweep" not in cols:  # no store: no columns
        return []
    by_name: dict[str, dict] = {}
    for r in source.store.query("sweep is not null", ["sweep", "point", "recorded_at", "run_dir"]):
        s = by_name.setdefault(r["sweep"], {"name": r["sweep"], "runs": 0, "points": set(), "last": "", "dir": None})
        s["runs"] += 1
        s["points"].add(r["point"])
        s["last"] = max(s["last"], r["recorded_at"] or "")
        s["dir"] = s["dir"] or _sweep_dir(r["run_dir"])
    return [{**s, "points": len(s["points"]), "dir": str(s["dir"]) if s["dir"] else None}
            for s in sorted(by_name.values(), key=lambda s: s["last"], reverse=True)]


def _sweep_dir(run_dir: str | None) -> Path | None:
    """The sweep directory of a point's run directory (``SWEEP/runs/<point>[/replicas/<i>]``)."""
    if not run_dir:
        return None
    for parent in list(Path(run_dir).parents)[:4]:
        if (parent / "sweep.json").is_file():
            return parent
    return None


def sweep_info(source: Source, name: str) -> dict:
    """A sweep's fields (swept, and every config field), metrics, the default table and plots
    (from its ``sweep.json`` when the directory is there), and its points with their runs."""
    rows = sweep_rows(source, name)
    spec: dict = {}
    table: dict = {}
    folder = next((d for d in (_sweep_dir(r["run_dir"]) for r in rows) if d is not None), None)
    if folder is not None:
        try:
            saved = read_json(folder / "sweep.json")
            spec, table = saved.get("spec") or {}, saved.get("table") or {}
        except ConfigError:
            pass
    swept = [f for f in varying_fields(rows) if f != "seed"]
    fields = [k for k in rows[0] if ("." in k or k in ("seed", "layout", "point", "replica"))
              and any(r.get(k) is not None for r in rows)]
    fields = swept + [f for f in fields if f not in swept]
    metrics = [m for m in METRIC_CHOICES if any(isinstance(r.get(m), (int, float)) for r in rows)]
    default = {"rows": table.get("rows") or (swept[:1] or ["seed"]), "cols": table.get("cols") or swept[1:2],
               "value": table.get("value") or next((m for m in KEY_METRICS if m in metrics), metrics[0])}
    plots = spec.get("plot") or []
    points = [intervals.complete({"key": str(r["id"]), "point": r.get("point"), "seed": r.get("seed"),
                                  "replica": r.get("replica"), **{m: r.get(m) for m in FINAL_METRICS if m in r}})
              for r in rows]
    return {"name": name, "dir": str(folder) if folder else None, "runs": len(rows), "swept": swept,
            "fields": fields, "metrics": metrics, "default": default, "plots": plots, "points": points}


def _fields(text: str | list | None) -> list[str]:
    if not text:
        return []
    return [f.strip() for f in text.split(",")] if isinstance(text, str) else list(text)


def sweep_pivot(source: Source, name: str, rows: str | list, cols: str | list | None, value: str) -> dict:
    """The pivot of ``value`` by ``rows`` x ``cols`` over the sweep's runs: every cell's mean, its
    95% interval (``low``, ``high``: see ``_bounds``), n runs and text (the store's table's), and
    the keys of the runs in it."""
    data = sweep_rows(source, name)
    known = [k for k in data[0] if k not in NOT_SWEPT or k in ("point", "replica")]
    names = ("rows field", "columns field", "value")
    table = pivot(data, _fields(rows), _fields(cols), value, known, names=names)
    text = table.text_table()
    members: dict = {}
    for r in data:
        key = (tuple(r.get(f) for f in table.rows), tuple(r.get(f) for f in table.cols))
        members.setdefault(key, []).append(str(r["id"]))
    cells = []
    for i, rk in enumerate(table.row_keys):
        line = []
        for j, ck in enumerate(table.col_keys):
            stats = table.cell(rk, ck)
            low, high, examples = _bounds(table, rk, ck) if stats else (None, None, None)
            line.append(None if (rk, ck) not in table.cells else {
                "text": text.rows[i][len(table.rows) + j], "mean": stats[0] if stats else None,
                "low": low, "high": high, "examples": examples, "n": stats[2] if stats else 0,
                "keys": members.get((rk, ck), [])})
        cells.append(line)
    return {"rows": table.rows, "cols": table.cols, "value": table.value, "headers": text.headers,
            "row_keys": [list(k) for k in table.row_keys], "col_keys": [list(k) for k in table.col_keys],
            "cells": cells}


def _bounds(table, rk, ck) -> tuple:
    """``(low, high, test examples)``: a cell's 95% interval. An accuracy's is
    ``stats.seeds_interval`` (inside [0, 1], pooled over the runs' test examples); another
    metric's the mean ± a t-interval's half-width (examples None)."""
    if is_accuracy(table.value):
        _, low, high, examples = table.interval(rk, ck)
        return low, high, examples
    mean, half, _ = table.cell(rk, ck)
    return mean - half, mean + half, None


def sweep_plot(source: Source, name: str, x: str, y: str, lines: str | None = None) -> dict:
    """A plot of the spec: ``y`` against ``x``, one series per value of ``lines``, each point the
    mean over the runs there with its 95% interval (``low``, ``high``) and n runs. An accuracy's
    interval is ``stats.seeds_interval`` (inside [0, 1]; ``examples``: the runs' test examples),
    another metric's the mean ± a t-interval's half-width."""
    data = sweep_rows(source, name)
    table = pivot(data, x, lines, y, names=("plot x field", "plot lines field", "plot y metric"))
    series = []
    for ck in table.col_keys:
        cells = [(rk[0], table.cell(rk, ck)) for rk in table.row_keys]
        pts = [(v, c, _bounds(table, (v,), ck)) for v, c in cells if c is not None]
        label = ", ".join(f"{short(f)}={json.dumps(v) if isinstance(v, str) else v}" for f, v in zip(table.cols, ck))
        series.append({"label": label or table.value, "x": [v for v, _, _ in pts], "mean": [c[0] for _, c, _ in pts],
                       "low": [b[0] for _, _, b in pts], "high": [b[1] for _, _, b in pts],
                       "n": [c[2] for _, c, _ in pts], "examples": [b[2] for _, _, b in pts]})
    return {"x": table.rows[0], "y": table.value, "lines": table.cols[0] if table.cols else None, "series": series}
