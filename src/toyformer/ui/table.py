"""The runs table's server-side answers beyond the rows: which runs share every setting but the
seed (one group each, the settings that tell the groups apart), the filtered runs exported as
``toyformer results --format`` writes them, and which way is better for each metric.

>>> direction("val_exact_match"), direction("test_loss"), direction("model.d_model")
('max', 'min', None)
"""

from __future__ import annotations

import functools
import json
import math
import sqlite3

from toyformer.errors import ConfigError
from toyformer.experiments.store.store import TABLE, quote
from toyformer.experiments.store.table import FORMATS, flat, is_accuracy
from toyformer.experiments.store.where import parse_where
from toyformer.stats import t95
from toyformer.ui import intervals
from toyformer.ui.curves import NOT_SETTINGS, SETTINGS
from toyformer.ui.data import Source, filter_rows

HIGHER = ("_token_acc", "_exact_match", "_exact_match_lo", "_exact_match_hi", "solved")
LOWER = ("_loss", "solved_at_step", "solved_at_s", "wall_s")


def direction(field: str) -> str | None:
    """``"max"`` where a higher value is better (accuracies, solved), ``"min"`` where lower is
    (losses, time and steps to solve, wall time), else None (settings, sizes)."""
    if "." in field:
        return None
    if field.endswith(HIGHER):
        return "max"
    if field.endswith(LOWER):
        return "min"
    return None


def is_setting(field: str) -> bool:
    """A config field (``model.d_model``, ``layout``), not a result, and not the seed."""
    return ("." in field or field == "layout") and field not in NOT_SETTINGS


def groups(source: Source, where: str | None, group: str, columns: list[str]) -> dict:
    """The runs matching ``where`` grouped by ``group`` (a field, or ``*settings``: every setting
    but the seed): ``of`` (each run's key -> its group's index), ``fields`` (the settings that
    tell the groups apart; ``[group]`` for a field) and ``groups``, each with ``n``, its
    ``settings`` (those fields' values) and ``stats``: per numeric column of ``columns``, the
    mean, the half-width of its 95% t-interval and how many runs had a value."""
    if not group:
        raise ConfigError(f"group is empty; allowed: {SETTINGS} or a field")
    columns = [c for c in columns if c not in ("key", "status")]
    if group != SETTINGS and group not in source.fields():
        raise ConfigError(f"group field {group!r} is unknown; allowed: {SETTINGS}, {', '.join(source.fields())}")
    shown = source.table(where, list(dict.fromkeys([*columns, *([group] if group != SETTINGS else [])])))
    at = {c: i for i, c in enumerate(shown["columns"])}
    rows = {r[0]: r for r in shown["rows"]}
    if group == SETTINGS:
        found = settings_groups(source, where)
    else:
        i = at[group]
        values = list(dict.fromkeys(json.dumps(r[i], default=str) for r in rows.values()))
        index = {v: n for n, v in enumerate(values)}
        found = {"group": group, "fields": [group], "of": {k: index[json.dumps(r[i], default=str)]
                                                            for k, r in rows.items()},
                 "groups": [{"n": 0, "settings": {group: json.loads(v)}} for v in values]}
        for n in found["of"].values():
            found["groups"][n]["n"] += 1
    members: list[list] = [[] for _ in found["groups"]]
    for key, n in found["of"].items():
        if key in rows:
            members[n].append(rows[key])
    numeric = [at[c] for c in columns if c in at]
    for g, rs in zip(found["groups"], members):
        stats = {}
        for j in numeric:
            values = [v for v in (r[j] for r in rs) if type(v) in (int, float) and math.isfinite(v)]
            if values:
                stats[shown["columns"][j]] = spread(values, is_accuracy(shown["columns"][j]))
        g["stats"] = stats
    return found


_t95 = functools.lru_cache(maxsize=None)(t95)  # one quantile per group size, not one per cell


def spread(values: list[float], accuracy: bool = False) -> list:
    """``[mean, low, high, n]``: the mean and its 95% t-interval (``stats.mean_ci``, the t quantile
    computed once per n; one value: its own interval). An accuracy's interval is cut to [0, 1]:
    the true mean lies there, so the cut interval covers it as often and never shows an accuracy
    above 1. (``stats.seeds_interval``, a bootstrap per group, would also stay inside [0, 1]; its
    cost at thousands of groups was not measured.)

    >>> [round(v, 3) for v in spread([1.0, 0.98, 1.0], accuracy=True)]
    [0.993, 0.965, 1.0, 3]
    """
    n = len(values)
    mean = sum(values) / n
    half = 0.0 if n < 2 else _t95(n - 1) * math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n)
    low, high = mean - half, mean + half
    if accuracy:
        low, high = max(0.0, low), min(1.0, high)
    return [mean, low, high, n]


def settings_groups(source: Source, where: str | None) -> dict:
    """The runs matching ``where`` grouped by every setting but the seed: ``groups`` (each its
    ``n`` and the values of ``fields``, the settings in which the groups differ) and ``of``, each
    run's key -> its group's index (groups in the order of their first run)."""
    of: dict[str, str] = {}
    for row in filter_rows([d.row for d in source.scan()], where, source.fields()):
        of[row["key"]] = _settings_text(row)
    settings = [c for c in source.store_columns() if is_setting(c)]
    if settings:
        of.update(_store_settings(source, where, settings))
    order = list(dict.fromkeys(of.values()))
    index = {text: i for i, text in enumerate(order)}
    values = [json.loads(text) for text in order]
    names = sorted({f for v in values for f in v})
    fields = [f for f in names if any(v.get(f) != values[0].get(f) for v in values)]
    groups = [{"n": 0, "settings": {f: v.get(f) for f in fields}} for v in values]
    for text in of.values():
        groups[index[text]]["n"] += 1
    return {"group": SETTINGS, "fields": fields, "groups": groups, "of": {k: index[t] for k, t in of.items()}}


def _settings_text(row: dict) -> str:
    """A run's settings (its config fields with a value, the seed left out) as one string
    (booleans as 0 and 1, as the store keeps them)."""
    return json.dumps({f: int(v) if isinstance(v, bool) else v for f,
                       v in row.items() if is_setting(f) and v is not None},
                      sort_keys=True, default=str)


def _store_settings(source: Source, where: str | None, settings: list[str]) -> dict[str, str]:
    """``key -> settings string`` of the store's rows matching ``where`` (one query: SQLite packs
    each row's settings into a JSON array)."""
    wanted = None
    sql, params = parse_where(where, source.fields()) if where and where.strip() else ("1", [])
    if '"status"' in sql or '"key"' in sql:  # fields the store has not: the rows' keys decide
        wanted = {r["key"] for r in source.rows(where, [])}
        sql, params = "1", []
    columns = ", ".join(quote(c) for c in settings)
    try:
        found = source.select(f"SELECT id, json_array({columns}) FROM {TABLE} WHERE {sql}", params)
    except sqlite3.OperationalError as exc:
        if "no such column" in str(exc):  # a field only unrecorded runs have
            return {}
        raise ConfigError(f"where={where!r}: {exc}") from None
    texts: dict[str, str] = {}  # SQLite's array -> the settings string, once per distinct array
    out = {}
    for i, array in found:
        if wanted is None or str(i) in wanted:
            if array not in texts:
                texts[array] = _settings_text(dict(zip(settings, json.loads(array))))
            out[str(i)] = texts[array]
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
