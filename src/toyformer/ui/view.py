"""One page of the runs table, as the runs page shows it: the runs matching a filter, sorted,
grouped (a header row per group, with the mean, 95% interval and n of each numeric column over
its runs), one page of ``size`` rows, and under it the min, max and best of each numeric column
over every matching run. The page asks for what it shows, so a filter, a sort, a group or a page
of ten thousand runs is a few SQL queries on the ``frame`` and a page of rows on the wire.

>>> view(source, "task.name = 'sort'", ["model.d_model", "test_token_acc"], sort="test_token_acc",
...      descending=True, group="*settings")                                    # doctest: +SKIP
{'columns': ['key', 'status', 'model.d_model', 'test_token_acc'], 'count': ..., 'groups': ...,
 'fields': ['model.d_model', ...], 'page': 0, 'pages': ..., 'items': [{'group': 0, 'n': ..., ...}, ['12', ...], ...],
 'footer': {'test_token_acc': {'min': ..., 'max': ..., 'best': ..., 'best_key': ...}, ...}}
"""

from __future__ import annotations

from collections.abc import Sequence

from toyformer.experiments.store.store import quote
from toyformer.ui.data import Source, _with_interval
from toyformer.ui.frame import NAME, OWN, Query, direction
from toyformer.ui.table import group_by, group_stats, ordered

PAGE = 200  # rows (and group headers) on a page
MAX_PAGE = 5000  # the most a page may ask for


def view(source: Source, where: str | None = None, columns: Sequence[str] = (), sort: str | None = None,
         descending: bool = False, group: str | None = None, page: int = 0, collapsed=(), size: int = PAGE) -> dict:
    """Page ``page`` (from 0; past the last: the last) of the runs matching ``where``: ``items``,
    each a row (``key``, ``status`` and ``columns``, with ``test_exact_match`` its n and interval)
    or, with ``group`` (a field, or ``*settings``), a group's header (``group``: its index,
    ``n``, ``settings``, ``stats``, ``collapsed``) before its rows; a group whose index is in
    ``collapsed`` shows its header alone. Also ``count`` (runs), ``groups`` (how many),
    ``fields`` (what tells the groups apart), ``pages`` and ``footer``."""
    columns = [c for c in columns if c not in OWN]
    cols = [*OWN, *_with_interval(columns)]

    def answer(q: Query) -> dict:
        cond, params = q.where(where)
        order = q.order(sort, descending)
        count, foot = footer(q, cond, params, where, columns)
        out = {"columns": cols, "count": count, "groups": None, "fields": [], "footer": foot}
        select = ", ".join(map(q.column, cols))
        if not group:
            pages = max(1, -(-count // size))
            at = min(max(page, 0), pages - 1)
            rows = q.rows(f"SELECT {select} FROM {NAME} WHERE {cond} ORDER BY {order} LIMIT ? OFFSET ?",
                          [*params, size, at * size], where)
            return {**out, "page": at, "pages": pages, "items": [list(r) for r in rows]}
        by = group_by(q, group)
        fields, found = ordered(q, by, group, cond, params, where)
        shut = set(collapsed)
        spans = [1 + (0 if i in shut else g["n"]) for i, g in enumerate(found)]
        pages = max(1, -(-sum(spans) // size))
        at = min(max(page, 0), pages - 1)
        wanted = _window(spans, at * size, (at + 1) * size)  # (group, header shown, first member, last member)
        values = [found[i]["value"] for i, *_ in wanted]
        members = _members(q, by, cond, params, where, select, order, values) if values else {}
        heads = [i for i, head, *_ in wanted if head]
        stats = group_stats(q, by, cond, params, where, [found[i]["value"] for i in heads],
                            [g["value"] for g in found], columns) if heads else []
        items = []
        for i, head, lo, hi in wanted:
            g = found[i]
            if head:
                items.append({"group": i, "n": g["n"], "settings": g["settings"], "stats": stats[i],
                              "collapsed": i in shut})
            items += members.get(g["value"], [])[lo:hi]
        return {**out, "groups": len(found), "fields": fields, "page": at, "pages": pages, "items": items}
    return source.framed(answer)


def _window(spans: list[int], start: int, end: int) -> list[tuple]:
    """The groups with an item in ``[start, end)`` of the items (a header, then its members:
    ``spans``): ``(group, header in it, first member, end of members)``."""
    out, pos = [], 0
    for i, span in enumerate(spans):
        if pos >= end:
            break
        if pos + span > start:
            out.append((i, pos >= start, max(0, start - pos - 1), max(0, min(span, end - pos) - 1)))
        pos += span
    return out


def _members(q: Query, by: str, cond: str, params: list, where: str | None, select: str, order: str,
             values: list) -> dict:
    """``value -> rows`` of the groups of those ``values`` of ``by``, each in ``order``."""
    known = [v for v in values if v is not None]
    ors = [f"{by} IN ({', '.join('?' * len(known))})"] if known else []
    if None in values:
        ors.append(f"{by} IS NULL")
    out: dict = {}
    for row in q.rows(f"SELECT {by}, {select} FROM {NAME} WHERE ({cond}) AND ({' OR '.join(ors)}) ORDER BY {order}",
                      [*params, *known], where):
        out.setdefault(row[0], []).append(list(row[1:]))
    return out


def footer(q: Query, cond: str, params: list, where: str | None, columns: list[str]) -> tuple[int, dict]:
    """How many runs match ``cond``, and per numeric column of ``columns`` over them: ``min``,
    ``max`` and, where a higher or a lower value is better (``frame.direction``), the ``best``
    and the key of the first run in the table's order that has it (``best_key``). One pass over
    the rows for the count and the extremes; the best run is found through its column's index."""
    numeric = q.numeric(list(dict.fromkeys(columns)))
    extremes = "".join(f", min({sql}), max({sql})" for sql in numeric.values())
    count, *values = q.rows(f"SELECT count(*){extremes} FROM {NAME} WHERE {cond}", params, where)[0]
    out = {}
    for j, c in enumerate(numeric):
        low, high = values[2 * j], values[2 * j + 1]
        if low is None:
            continue
        out[c] = {"min": low, "max": high, "best": None, "best_key": None}
        way = direction(c)
        best = {"max": high, "min": low}.get(way) if way is not None else None
        if best is not None:
            (key,), = q.rows(f"SELECT \"key\" FROM {NAME} WHERE {quote(c)} = ? AND ({cond}) AND "
                             f"typeof({quote(c)}) IN ('integer', 'real') ORDER BY {q.order()} LIMIT 1",
                             [best, *params], where)
            out[c].update(best=best, best_key=key)
    return count, out
