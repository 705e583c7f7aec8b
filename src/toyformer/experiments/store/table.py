"""Tables from result rows: a pivot (a metric by one or more row fields x column fields, mean ± 95%
CI where several runs, seeds or replicas, share a cell) or a flat list; as markdown, CSV or JSON.

An accuracy (``*_acc``, ``*exact_match``) is never shown with a t-interval, which can leave [0, 1]:
a cell shows its test size and ``stats.seeds_interval`` (for one run, Wilson's interval on its
``test_n`` examples; for several, the bootstrap over the runs with Wilson's on their pooled
examples). Token accuracy counts rows as its examples: an answer's tokens are not independent.

>>> rows = [{"task.length": 10, "seed": s, "test_token_acc": a, "test_n": 100} for s, a in [(0, 1.0), (1, 0.9)]]
>>> print(pivot(rows, "task.length", None, "test_token_acc").markdown())
| length | test_token_acc |
|---|---|
| 10 | 0.9500 (mean of 2 runs, n=200, 95% CI 0.9000-1.0000) |
<BLANKLINE>
value: test_token_acc; a cell of several runs: their mean and its 95% interval (toyformer.stats.seeds_interval)
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

from toyformer.errors import ConfigError
from toyformer.experiments.store.where import resolve_field
from toyformer.stats import accuracy_text, mean_ci, seeds_interval

FORMATS = ("markdown", "csv", "json")
KEY_METRICS = ("test_token_acc", "test_exact_match", "test_n", "test_exact_match_lo", "test_exact_match_hi", "solved",
               "solved_at_step", "wall_s")
NOT_SWEPT = {"id", "recorded_at", "run_dir", "machine", "git_rev", "point", "config_json", "summary_json",
             "replica", "n_replicas"}


def short(name: str) -> str:
    """A column's leaf name for headers: ``task.length`` -> ``length``."""
    return name.rsplit(".", 1)[-1]


def _order(value):
    if value is None:
        return (2, "")
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value))


def is_accuracy(name: str) -> bool:
    """Whether a column holds an accuracy (a proportion in [0, 1]), whose intervals must stay inside."""
    leaf = short(name)
    return leaf.endswith("_acc") or leaf.endswith("exact_match")


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


@dataclass
class TextTable:
    """Headers and rows of plain values, printable in every format."""

    headers: list[str]
    rows: list[list]
    data: object = None  # what ``json`` dumps (default: the rows as objects)

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.headers) + " |", "|" + "---|" * len(self.headers)]
        lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.headers)
        writer.writerows([["" if v is None else v for v in row] for row in self.rows])
        return buf.getvalue().rstrip("\n")

    def json(self) -> str:
        return json.dumps(self.data if self.data is not None else [dict(zip(self.headers, r)) for r in self.rows])

    def format(self, kind: str) -> str:
        if kind not in FORMATS:
            raise ConfigError(f"format={kind!r}; allowed: {', '.join(FORMATS)}")
        return getattr(self, kind)()


@dataclass
class PivotTable:
    """``value`` by ``rows`` x ``cols``; ``cells[(row_key, col_key)]`` holds every run's value."""

    rows: list[str]
    cols: list[str]
    value: str
    row_keys: list[tuple] = field(default_factory=list)
    col_keys: list[tuple] = field(default_factory=list)
    cells: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)  # each run's test_n, beside its value in ``cells``

    @staticmethod
    def _key(row_key, col_key) -> tuple[tuple, tuple]:
        """A key is a tuple of field values, or the value itself for a single field."""
        return (row_key if isinstance(row_key, tuple) else (row_key,), col_key if isinstance(col_key,
                                                                                             tuple) else (col_key,))

    def cell(self, row_key, col_key=()) -> tuple[float, float, int] | None:
        """(mean, 95% t-interval half-width, n runs) of a cell, or None when no run has a value there.
        For an accuracy, ``interval`` gives the interval that stays inside [0, 1]."""
        values = [v for v in self.cells.get(self._key(row_key, col_key), []) if v is not None]
        if not values:
            return None
        mean, ci = mean_ci(values)
        return mean, ci, len(values)

    def interval(self, row_key, col_key=()) -> tuple[float, float, float, int | None] | None:
        """(mean, low, high, test examples) of an accuracy cell (``stats.seeds_interval``, pooled
        over the runs' ``test_n`` when each run knows it; examples None otherwise), or None."""
        key = self._key(row_key, col_key)
        pairs = [(v, n) for v, n in zip(self.cells.get(key, []), self.sizes.get(key, [])) if v is not None]
        if not pairs:
            return None
        sizes = [n for _, n in pairs]
        known = all(isinstance(n, int) and n > 0 for n in sizes)
        return (*seeds_interval([v for v, _ in pairs], sizes if known else None), sum(sizes) if known else None)

    def _accuracy_text(self, key_row, key_col) -> str:
        interval = self.interval(key_row, key_col)
        assert interval is not None  # _text asks only for a cell with a value: it has an interval
        mean, lo, hi, examples = interval
        stats = self.cell(key_row, key_col)
        assert stats is not None  # a cell with an interval has its statistics
        n, runs = stats[2], len(self.cells[(key_row, key_col)])
        of = None if runs == 1 else f"{n} runs" if n == runs else f"{n} of {runs} runs"
        return accuracy_text(mean, (lo, hi) if examples or n > 1 else None, examples, of)

    def _text(self, key_row, key_col) -> str:
        stats = self.cell(key_row, key_col)
        if stats is None:
            return "-"
        if is_accuracy(self.value):
            return self._accuracy_text(key_row, key_col)
        mean, ci, n = stats
        runs = len(self.cells[(key_row, key_col)])
        ints = all(isinstance(v, int) for v in self.cells[(key_row, key_col)] if v is not None)
        if n == 1:
            text = f"{mean:.0f}" if ints else f"{mean:.4f}"
        else:
            text = f"{mean:.1f} ± {ci:.1f}" if ints else f"{mean:.4f} ± {ci:.4f}"
        if runs > 1:
            text += f" (n={n})" if n == runs else f" (n={n} of {runs})"
        return text

    def _col_label(self, key: tuple) -> str:
        if not self.cols:
            return self.value
        return ", ".join(f"{short(f)}={fmt(v)}" for f, v in zip(self.cols, key))

    def text_table(self) -> TextTable:
        """Cells as text (``mean ± ci (n=k)``), for markdown and reports."""
        headers = [short(r) for r in self.rows] + [self._col_label(c) for c in self.col_keys]
        rows = [list(rk) + [self._text(rk, ck) for ck in self.col_keys] for rk in self.row_keys]
        return TextTable(headers, rows, self.to_dict())

    def markdown(self) -> str:
        several = any(len(v) > 1 for v in self.cells.values())
        what = ("a cell of several runs: their mean and its 95% interval (toyformer.stats.seeds_interval)"
                if is_accuracy(self.value) else "mean ± 95% CI over n runs")
        return self.text_table().markdown() + (f"\n\nvalue: {self.value}; {what}" if several else "")

    def csv(self) -> str:
        """Wide: a mean column per column key, plus ``ci95`` and ``n`` columns when cells hold several
        runs; for an accuracy, ``lo``, ``hi``, ``runs`` and ``examples`` columns instead."""
        several, accuracy = any(len(v) > 1 for v in self.cells.values()), is_accuracy(self.value)
        headers = list(self.rows)
        for ck in self.col_keys:
            label = self._col_label(ck)
            extra = ["lo", "hi", "runs", "examples"] if accuracy else ["ci95", "n"] if several else []
            headers += [label] + [f"{label} {e}" for e in extra]
        rows = []
        for rk in self.row_keys:
            row = list(rk)
            for ck in self.col_keys:
                stats = self.cell(rk, ck) or (None, None, 0)
                if accuracy:
                    mean, lo, hi, examples = self.interval(rk, ck) or (None, None, None, None)
                    row += [mean, lo, hi, stats[2], examples]
                else:
                    row += list(stats) if several else [stats[0]]
            rows.append(row)
        return TextTable(headers, rows).csv()

    def json(self) -> str:
        return json.dumps(self.to_dict())

    def format(self, kind: str) -> str:
        if kind not in FORMATS:
            raise ConfigError(f"format={kind!r}; allowed: {', '.join(FORMATS)}")
        return getattr(self, kind)()

    def to_dict(self) -> dict:
        out = []
        for rk in self.row_keys:
            for ck in self.col_keys:
                if (rk, ck) not in self.cells:
                    continue
                mean, ci, n = self.cell(rk, ck) or (None, None, 0)
                cell = {"row": dict(zip(self.rows, rk)), "col": dict(zip(self.cols, ck)), "mean": mean, "ci95": ci,
                        "n": n, "values": self.cells[(rk, ck)]}
                if is_accuracy(self.value):  # no t-interval: the interval inside [0, 1], and the test examples
                    _, lo, hi, examples = self.interval(rk, ck) or (None, None, None, None)
                    cell.update(ci95=None, low=lo, high=hi, examples=examples)
                out.append(cell)
        return {"rows": self.rows, "cols": self.cols, "value": self.value, "cells": out}


def _fields(spec, known: list[str] | None, what: str) -> list[str]:
    if spec is None:
        return []
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    return [resolve_field(n, known, what) if known is not None else n for n in names if n]


PIVOT_NAMES = ("rows field", "cols field", "value metric")  # what errors call by (store.pivot's rows), cols, value


def pivot(rows: list[dict], by: str | list[str], cols: str | list[str] | None, value: str,
          known: list[str] | None = None, names: tuple[str, str, str] = PIVOT_NAMES) -> PivotTable:
    """Group ``rows`` (dicts) into a ``PivotTable`` of ``value``. Field names may be leaf names
    when ``known`` (the available columns) is given; default: the keys of the rows. ``names``:
    what an error calls ``by``, ``cols`` and ``value`` (the caller's own options)."""
    known = known if known is not None else sorted({k for r in rows for k in r})
    table = PivotTable(_fields(by, known, names[0]), _fields(cols, known, names[1]),
                       resolve_field(value, known, names[2]))
    if not table.rows:
        raise ConfigError(f"a pivot needs at least one {names[0]}")
    for r in rows:
        v = r.get(table.value)
        if v is not None and (isinstance(v, (str, bool)) or not isinstance(v, (int, float))):
            raise ConfigError(f"{names[2]} {table.value!r} is not a number ({v!r}); choose a metric such as "
                              "test_token_acc")
        key = (tuple(r.get(f) for f in table.rows), tuple(r.get(f) for f in table.cols))
        table.cells.setdefault(key, []).append(v)
        table.sizes.setdefault(key, []).append(r.get("test_n") if table.value.startswith("test_") else None)
    table.row_keys = sorted({k[0] for k in table.cells}, key=lambda t: tuple(map(_order, t)))
    table.col_keys = sorted({k[1] for k in table.cells}, key=lambda t: tuple(map(_order, t)))
    return table


def varying_fields(rows: list[dict]) -> list[str]:
    """Config fields whose value differs between ``rows`` (what a sweep swept), in column order."""
    names = [k for k in (rows[0] if rows else {}) if k not in NOT_SWEPT and ("." in k or k in ("layout", "seed",
                                                                                               "device"))]
    return [k for k in names if len({json.dumps(r.get(k)) for r in rows}) > 1]


def flat(rows: list[dict], columns: list[str] | str | None = None, known: list[str] | None = None) -> TextTable:
    """A plain table of ``columns`` (default: id, source, the fields that vary, the key metrics)."""
    known = known if known is not None else (list(rows[0]) if rows else [])
    if columns:
        chosen = _fields(columns, known, "columns field")
    else:
        base = [c for c in ("id", "source", "sweep") if c in known]
        chosen = base + (varying_fields(rows) or [c for c in ("task.name", "layout") if c in known])
        chosen += [m for m in KEY_METRICS if m in known]
    return TextTable(chosen, [[r.get(c) for c in chosen] for r in rows])
