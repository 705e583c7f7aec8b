"""The runs table's server-side answers beyond the rows: which runs share every setting but the
seed (one group each, the settings that tell the groups apart), the filtered runs exported as
``toyformer results --format`` writes them.
"""

from __future__ import annotations

import functools

import numpy as np

from toyformer.errors import ConfigError
from toyformer.experiments.store.store import quote
from toyformer.experiments.store.table import FORMATS, flat, is_accuracy
from toyformer.stats import t95
from toyformer.ui import intervals
from toyformer.ui.curves import SETTINGS
from toyformer.ui.data import Source
from toyformer.ui.frame import NAME, OWN, Query, natural


def groups(source: Source, where: str | None, group: str, columns: list[str]) -> dict:
    """The runs matching ``where`` grouped by ``group`` (a field, or ``*settings``: every setting
    but the seed): ``of`` (each run's key -> its group's index), ``fields`` (the settings that
    tell the groups apart; ``[group]`` for a field) and ``groups`` (in ``ordered``'s order), each
    with ``n``, its ``settings`` (those fields' values) and ``stats``: per numeric column of
    ``columns``, the mean, its 95% t-interval and how many runs had a value (``spreads``)."""
    columns = [c for c in columns if c not in OWN]

    def answer(q: Query) -> dict:
        cond, params = q.where(where)
        by = group_by(q, group)
        fields, found = ordered(q, by, group, cond, params, where)
        index = {g["value"]: i for i, g in enumerate(found)}
        keyed = q.rows(f"SELECT \"key\", {by} FROM {NAME} WHERE {cond} ORDER BY {q.order()}", params, where)
        stats = group_stats(q, by, cond, params, where, None, [g["value"] for g in found], columns)
        return {"group": group, "fields": fields, "of": {k: index[v] for k, v in keyed},
                "groups": [{"n": g["n"], "settings": g["settings"], "stats": s} for g, s in zip(found, stats)]}
    return source.framed(answer)


def group_by(q: Query, group: str) -> str:
    """SQL of what groups the runs: the settings text (``*settings``) or the field ``group``."""
    if not group:
        raise ConfigError(f"group is empty; allowed: {SETTINGS} or a field")
    if group == SETTINGS:
        return q.settings()
    if group not in q.columns:
        raise ConfigError(f"group field {group!r} is unknown; allowed: {SETTINGS}, {', '.join(q.columns)}")
    return quote(group)


def ordered(q: Query, by: str, group: str, cond: str, params: list, where: str | None) -> tuple[list[str], list[dict]]:
    """``(fields, groups)`` of the runs matching ``cond``, grouped by ``by``: the fields that tell
    the groups apart, and each group's ``value`` (of ``by``), ``n`` and ``settings`` (those
    fields' values), ordered by them (numbers by value, then text naturally, then no value)."""
    names = q.varying() if group == SETTINGS else []  # a setting the same in every run tells no group apart
    rows = q.rows(f"SELECT {by}, count(*), min(rowid){''.join(', ' + quote(c) for c in names)} FROM {NAME} "
                  f"WHERE {cond} GROUP BY {by}", params, where)  # a setting's value: its first run's (min(rowid))
    if group == SETTINGS:
        settings = [{c: v for c, v in zip(names, r[3:]) if v is not None} for r in rows]
        fields = [f for f in names if any(s.get(f) != settings[0].get(f) for s in settings)]
        found = [{"value": r[0], "n": r[1], "settings": {f: s.get(f) for f in fields}} for r, s in zip(rows, settings)]
    else:
        fields = [group]
        found = [{"value": r[0], "n": r[1], "settings": {group: r[0]}} for r in rows]
    found.sort(key=lambda g: tuple(_rank(g["settings"][f]) for f in fields))
    return fields, found


def _rank(v) -> tuple:
    if v is None:
        return (2, "")
    return (0, v) if isinstance(v, (int, float)) else (1, natural(str(v)))


def group_stats(q: Query, by: str, cond: str, params: list, where: str | None, only: list | None, values: list,
                columns: list[str]) -> list[dict]:
    """Per group (``values``: the groups' values of ``by``), ``spreads`` of each numeric column of
    ``columns`` over its runs matching ``cond``; ``only``: the values of the groups wanted
    (None: every group), the others' stats are left empty."""
    numeric = q.numeric(columns)
    extra, more = "", []
    if only is not None:
        known = [v for v in only if v is not None]
        ors = [f"{by} IN ({', '.join('?' * len(known))})"] if known else []
        extra = " AND (" + " OR ".join(ors + ([f"{by} IS NULL"] if None in only else []) or ["0"]) + ")"
        more = known
    rows = q.rows(f"SELECT {by}{''.join(', ' + sql for sql in numeric.values())} FROM {NAME} WHERE ({cond}){extra}",
                  [*params, *more], where)
    index = {v: i for i, v in enumerate(values)}
    of = np.fromiter((index[r[0]] for r in rows), dtype=np.intp, count=len(rows))
    # [runs, columns]; None: NaN
    numbers = np.array([r[1:] for r in rows], dtype=float).reshape(len(rows), len(numeric))
    return spreads(of, numbers, len(values), list(numeric))


_t95 = functools.lru_cache(maxsize=None)(t95)  # one quantile per group size, not one per cell


def spreads(of: np.ndarray, values: np.ndarray, n_groups: int, columns: list[str]) -> list[dict]:
    """Per group, ``{column: [mean, low, high, n]}`` over the finite values of each column
    (``values``: [runs, columns]; ``of``: [runs], each run's group; a column with no value in a
    group left out): the mean and its 95% t-interval (``stats.mean_ci``; one value: its own
    interval), for every group at once (sums per group with ``numpy.bincount``, the t quantile
    once per n). An accuracy's interval is cut to [0, 1]: the true mean lies there, so the cut
    interval covers it as often and never shows an accuracy above 1. (``stats.seeds_interval``,
    a bootstrap per group, would also stay inside [0, 1], at a bootstrap's cost per group.)

    >>> got = spreads(np.array([0, 0, 0, 1]), np.array([[1.0], [0.98], [1.0], [np.nan]]), 2, ["test_token_acc"])
    >>> [round(v, 3) for v in got[0]["test_token_acc"]], got[1]
    ([0.993, 0.965, 1.0, 3], {})
    """
    out: list[dict] = [{} for _ in range(n_groups)]
    for j, column in enumerate(columns):
        ok = np.isfinite(values[:, j])
        g, v = of[ok], values[ok, j]
        n = np.bincount(g, minlength=n_groups)
        mean = np.bincount(g, weights=v, minlength=n_groups) / np.maximum(n, 1)
        squares = np.bincount(g, weights=(v - mean[g]) ** 2, minlength=n_groups)
        t = np.array([_t95(int(k) - 1) if k > 1 else 0.0 for k in n])
        half = t * np.sqrt(squares / np.maximum(n - 1, 1)) / np.sqrt(np.maximum(n, 1))
        low, high = mean - half, mean + half
        if is_accuracy(column):
            low, high = np.maximum(low, 0.0), np.minimum(high, 1.0)
        for i in np.flatnonzero(n):
            out[i][column] = [float(mean[i]), float(low[i]), float(high[i]), int(n[i])]
    return out


def export(source: Source, where: str | None, columns: list[str], kind: str) -> str:
    """The runs matching ``where`` as ``toyformer results --where W --columns C --format F``
    prints them: the store's rows oldest first, then the unrecorded run directories; with
    ``test_exact_match`` also its ``test_n`` and interval."""
    if kind not in FORMATS:
        raise ConfigError(f"format {kind!r} is not allowed; allowed: {', '.join(FORMATS)}")
    known = source.fields()
    wanted = list(dict.fromkeys(columns or ["key"]))
    if intervals.METRIC in wanted:
        wanted += [c for c in intervals.EXTRA if c not in wanted]
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise ConfigError(f"unknown column {unknown[0]!r}; allowed: {', '.join(known)}")
    rows = source.rows(where, [c for c in wanted if c not in ("key", "status")])
    stored = sorted((r for r in rows if r["key"].isdigit()), key=lambda r: int(r["key"]))
    return flat(stored + [r for r in rows if not r["key"].isdigit()], wanted, known).format(kind)
