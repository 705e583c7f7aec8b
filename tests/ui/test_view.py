"""The runs table's pages (``toyformer.ui.view``), its keys and its groups over a store of a few
hundred runs and some unrecorded run directories (``toyformer bench ui``'s fill), each checked
against the same answer worked out here in Python from the store's rows and the run
directories: the rows a filter keeps and their order, a sort, the pages put together, the groups
by every setting but the seed (the same settings inside a group, different ones between groups,
the mean and 95% interval of each), collapsed groups, and the min, max and best under the table;
and a walk of the runs folder that lists again only the folders changed since the last."""

from __future__ import annotations

import math
import re

import pytest
from ui_lab import get

from toyformer.errors import ConfigError
from toyformer.stats import mean_ci

N = 300
FILTERS = {  # the --where text, and the same question asked in Python of a row
    "": lambda r: True,
    "task.name = 'reverse'": lambda r: r["task.name"] == "reverse",
    "model.d_model >= 64 and seed < 3": lambda r: r["model.d_model"] >= 64 and r["seed"] < 3,
    "test_token_acc > 0.9": lambda r: r["test_token_acc"] > 0.9,
    "sweep = 'sweep-7'": lambda r: r.get("sweep") == "sweep-7",
    "task.name in ('copy', 'sort') and model.n_layers = 2 or train.lr < 0.002":
        lambda r: r["task.name"] in ("copy", "sort") and r["model.n_layers"] == 2 or r["train.lr"] < 0.002,
    "status = 'unrecorded' or key = '7'": lambda r: r["status"] == "unrecorded" or r["key"] == "7",
    "solved_at_step is null and not (task.length = 5)": lambda r: r["solved_at_step"] is None and r["task.length"] != 5,
}
COLUMNS = ["task.name", "model.d_model", "seed", "sweep", "test_token_acc", "wall_s", "solved_at_step"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``(source, rows)``: the browser's source over the filled folder, and every run as a dict
    (``key``, ``status`` and its fields) in the table's order: the run directories without a row
    as the walk found them, then the store's rows, the newest first."""
    from toyformer.bench.ui import fill_store
    from toyformer.experiments.store import ResultsStore
    from toyformer.ui.data import Source

    folder = tmp_path_factory.mktemp("view")
    fill_store(folder / "results.sqlite", N)
    source = Source(folder / "results.sqlite", folder)
    dirs = [{**d.row, "solved": int(d.row["solved"])} for d in source.scan()]
    stored = [{"key": str(r["id"]), "status": "recorded", **r}
              for r in reversed(ResultsStore(folder / "results.sqlite", read_only=True).query())]
    assert len(dirs) == N // 100 and len(stored) == N
    return source, dirs + stored


def natural(v):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", v.casefold())]


def pages(source, size, **kwargs):
    """Every page of ``view`` put together (asking one past the last gives the last again)."""
    from toyformer.ui.view import view

    first = view(source, size=size, **kwargs)
    items = list(first["items"])
    for p in range(1, first["pages"]):
        items += view(source, size=size, page=p, **kwargs)["items"]
    assert view(source, size=size, page=first["pages"] + 5, **kwargs)["page"] == first["pages"] - 1
    return first, items


def test_a_filter_keeps_the_rows_python_keeps_in_the_tables_order(lab):
    from toyformer.ui.view import view

    source, rows = lab
    for where, keep in FILTERS.items():
        want = [r["key"] for r in rows if keep(r)]
        assert 0 < len(want), where
        assert source.keys(where)["keys"] == want, where
        assert [r[0] for r in source.table(where, ["seed"])["rows"]] == want, where
        first, items = pages(source, 37, where=where, columns=COLUMNS)
        assert first["count"] == len(want) and first["pages"] == math.ceil(len(want) / 37)
        assert [r[0] for r in items] == want, where
        one = view(source, where, COLUMNS, size=5000)
        by_key = {r["key"]: r for r in rows}
        for item in one["items"]:  # every cell is the run's own value
            assert item[2:] == [by_key[item[0]].get(c) for c in COLUMNS]


def test_a_sort_is_pythons_stable_sort_with_no_value_last(lab):
    source, rows = lab
    where = "model.d_model >= 32"
    kept = [r for r in rows if r["model.d_model"] >= 32]
    for column, descending, key in [("test_token_acc", True, lambda r: r["test_token_acc"]),
                                    ("sweep", False, lambda r: natural(r.get("sweep") or "")),
                                    ("solved_at_step", True, lambda r: r["solved_at_step"] or 0)]:
        has = [r for r in kept if r.get(column) is not None]
        want = sorted(has, key=key, reverse=descending) + [r for r in kept if r.get(column) is None]
        _, items = pages(lab[0], 64, where=where, columns=COLUMNS, sort=column, descending=descending)
        assert [r[0] for r in items] == [r["key"] for r in want], column
    with pytest.raises(ConfigError, match="sort column 'nope' is unknown; allowed: key, status"):
        pages(source, 10, sort="nope")


def settings(row: dict) -> dict:
    from toyformer.ui.curves import is_setting

    return {k: v for k, v in row.items() if is_setting(k) and v is not None}


@pytest.mark.parametrize("where, keep", [("", lambda r: True),
                                         ("task.name = 'reverse' or status = 'unrecorded'",
                                          lambda r: r["task.name"] == "reverse" or r["status"] == "unrecorded")])
def test_groups_hold_the_runs_of_one_setting_each_with_their_mean_and_interval(lab, where, keep):
    from toyformer.ui.table import groups

    source, rows = lab
    kept = {r["key"]: r for r in rows if keep(r)}
    first, items = pages(source, 50, where=where, columns=COLUMNS, group="*settings")
    assert first["count"] == len(kept) and first["fields"] and "seed" not in first["fields"]
    found, seen = [], set()
    for item in items:
        if isinstance(item, dict):
            found.append((item, []))
        else:
            found[-1][1].append(kept[item[0]])
    assert first["groups"] == len(found) and [g["group"] for g, _ in found] == list(range(len(found)))
    for header, members in found:
        assert header["n"] == len(members) > 0 and not header["collapsed"]
        setting = settings(members[0])
        assert all(settings(m) == setting for m in members)  # one setting per group ...
        assert repr(sorted(setting.items())) not in seen  # ... and each setting in one group
        seen.add(repr(sorted(setting.items())))
        assert header["settings"] == {f: setting.get(f) for f in first["fields"]}
        for column, accuracy in [("test_token_acc", True), ("wall_s", False)]:
            values = [m[column] for m in members]
            mean, half = mean_ci(values)
            low, high = (max(0.0, mean - half), min(1.0, mean + half)) if accuracy else (mean - half, mean + half)
            want = [pytest.approx(mean), pytest.approx(low), pytest.approx(high), len(values)]
            assert header["stats"][column] == want
        assert "task.name" not in header["stats"]  # text: no mean
    assert sum(len(m) for _, m in found) == len(kept)  # every kept run in a group
    every = groups(source, where, "*settings", ["test_token_acc"])
    assert sorted(every["of"]) == sorted(kept) and every["fields"] == first["fields"]
    assert [g["n"] for g in every["groups"]] == [h["n"] for h, _ in found]
    for (header, members) in found:
        assert {every["of"][m["key"]] for m in members} == {header["group"]}


def test_a_collapsed_group_is_its_header_alone_and_a_field_groups_by_value(lab):
    from toyformer.ui.view import view

    source, rows = lab
    shut = view(source, None, COLUMNS, group="*settings", collapsed=[0, 2], size=5000)
    heads = [i for i, item in enumerate(shut["items"]) if isinstance(item, dict)]
    items = shut["items"]
    assert items[heads[0]]["collapsed"] and isinstance(items[heads[0] + 1], dict)
    assert isinstance(items[heads[1] + 1], list) and isinstance(items[heads[2] + 1], dict)
    assert len(items) == shut["groups"] + len(rows) - items[heads[0]]["n"] - items[heads[2]]["n"]
    widths = view(source, "seed = 1", ["model.d_model", "test_token_acc"], group="model.d_model", size=5000)
    heads = [item for item in widths["items"] if isinstance(item, dict)]
    assert [h["settings"]["model.d_model"] for h in heads] == [16, 32, 64, 128]  # by value
    assert [h["n"] for h in heads] == [sum(r["seed"] == 1 and r["model.d_model"] == w for r in rows)
                                       for w in (16, 32, 64, 128)]
    assert widths["fields"] == ["model.d_model"]
    with pytest.raises(ConfigError, match="group field 'model.colour' is unknown; allowed: \\*settings, key"):
        view(source, None, COLUMNS, group="model.colour")


def test_the_footer_is_the_min_max_and_best_of_the_filtered_runs(lab):
    from toyformer.ui.view import view

    source, rows = lab
    where, keep = "task.name = 'sort'", lambda r: r["task.name"] == "sort"
    kept = [r for r in rows if keep(r)]
    foot = view(source, where, COLUMNS + ["test_exact_match"], size=10)["footer"]
    for column, better in [("test_token_acc", max), ("wall_s", min), ("solved_at_step", min), ("model.d_model", None),
                           ("test_exact_match", max)]:
        values = [r[column] for r in kept if r[column] is not None]
        f = foot[column]
        assert (f["min"], f["max"]) == (min(values), max(values))
        if better is None:
            assert f["best"] is None and f["best_key"] is None
        else:
            assert f["best"] == better(values)
            assert f["best_key"] == next(r["key"] for r in kept if r[column] == f["best"])  # the first in the table
    assert "task.name" not in foot and "sweep" not in foot  # text: no min or max


def test_the_page_endpoint_and_its_bad_input(lab):
    from toyformer.ui import Background

    source, _ = lab
    with Background(store=source.store.path, runs=source.runs, port=0) as base:
        status, _, page = get(base, "/api/runs/page", where="seed = 0", columns="seed,test_exact_match", sort="seed",
                              group="*settings", page=1, size=20, collapsed="0,3")
        assert status == 200 and page["page"] == 1 and len(page["items"]) == 20
        assert page["columns"] == ["key", "status", "seed", "test_exact_match", "test_n", "test_exact_match_lo",
                                   "test_exact_match_hi"]
        for bad, allowed in [({"page": "-1"}, "a whole number >= 0"), ({"size": "0"}, "1 to 5000"),
                             ({"collapsed": "a"}, "a whole number >= 0"), ({"where": "seed >>= 1"}, "where=")]:
            status, _, answer = get(base, "/api/runs/page", **bad)
            assert status == 400 and allowed in answer["error"], (bad, answer)


def test_a_walk_lists_again_only_the_folders_changed_since_the_last(tmp_path, monkeypatch):
    import os
    import time

    from toyformer.ui import folders

    root = (tmp_path / "runs").resolve()
    for name in ("a", "b"):
        (root / "train" / name).mkdir(parents=True)
        (root / "train" / name / "config.json").write_text("{}")
    settled = time.time() - 60  # changed a minute ago: a listing of then still holds
    for folder in (root, root / "train", root / "train" / "a", root / "train" / "b"):
        os.utime(folder, (settled, settled))
    listings, read, scandir = {}, [], os.scandir

    def names():
        return [p.name for p in folders.walk(root, listings=listings)[0]]

    assert names() == ["a", "b"]
    monkeypatch.setattr(os, "scandir", lambda folder: (read.append(folder), scandir(folder))[1])
    assert names() == ["a", "b"] and read == []  # nothing changed: nothing listed again
    (root / "train" / "c").mkdir()
    (root / "train" / "c" / "config.json").write_text("{}")
    assert names() == ["a", "b", "c"] and read == [str(root / "train"), str(root / "train" / "c")]
    (root / "train" / "c" / "config.json").unlink()  # a folder changed just now is read again
    assert names() == ["a", "b"]
