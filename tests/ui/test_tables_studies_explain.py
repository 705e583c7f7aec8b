"""The results browser's second part, over HTTP: the runs table's filter by keys, groups (by a
field and by every setting but the seed), export and min/max directions, checked against the
store's own queries, ``toyformer results`` and ``stats``; every test exact match with its n and
95% interval; the run page's *solved* evidence and what ``explain.json`` holds (roles, ablations
by effect, curves by layer, phases, the circuit); the tune pages over an Optuna study; nothing
written."""

from __future__ import annotations

import json
import time

import pytest
from ui_lab import CIRCUIT, explained, get, lab, row_id, server, synthetic_study, tiny, tree_digest  # noqa: F401

from toyformer.cli import main

WIDTHS = "sweep = 'widths'"


def test_a_filter_answers_with_the_keys_the_store_keeps(server, lab):
    from toyformer.experiments.store import ResultsStore

    store = ResultsStore(lab["store"], read_only=True)
    for where in (WIDTHS, "model.d_model >= 16 and task.name = 'reverse'", "test_token_acc >= 0"):
        _, _, got = get(server.base, "/api/runs/keys", where=where)
        _, _, rows = get(server.base, "/api/runs", where=where, columns="seed")
        want = sorted(str(r["id"]) for r in store.query(where))
        assert sorted(k for k in got["keys"] if not k.startswith("d:")) == want
        assert got["keys"] == [r[0] for r in rows["rows"]] and got["count"] == len(want)  # the table's order
    status, _, bad = get(server.base, "/api/runs/keys", where="model.d_model >>= 3")
    assert status == 400 and "where=" in bad["error"]


def test_every_test_exact_match_carries_its_n_and_interval(server, lab):
    from toyformer.files import read_json

    _, _, table = get(server.base, "/api/runs", columns="test_exact_match", where=WIDTHS)
    assert table["columns"] == ["key", "status", "test_exact_match", "test_n", "test_exact_match_lo",
                                "test_exact_match_hi"]
    for key, _, acc, n, lo, hi in table["rows"]:
        _, _, run = get(server.base, "/api/compare", run=key)
        summary = read_json(next(p for p in (lab["runs"] / "sweeps" / "widths" / "runs").iterdir()
                                 if row_id(lab["store"], p) == key) / "summary.json")
        assert (acc, n, [lo, hi]) == (summary["test_exact_match"], summary["test_n"], summary["test_exact_match_ci95"])
        assert 0 <= lo <= acc <= hi <= 1
        final = run["runs"][0]["final"]
        assert (final["test_n"], final["test_exact_match_lo"], final["test_exact_match_hi"]) == (n, lo, hi)
    _, _, sweep = get(server.base, "/api/sweep", name="widths")
    assert all(p["test_n"] == 64 and p["test_exact_match_lo"] <= p["test_exact_match"] for p in sweep["points"])


def test_a_summary_without_the_interval_gets_wilsons_from_its_n(tmp_path):
    from toyformer.experiments.store import ResultsStore
    from toyformer.stats import proportion_ci
    from toyformer.ui.data import Source

    store = ResultsStore(tmp_path / "results.sqlite")
    config = tiny("reverse").to_dict()
    store.record_summary(config, {"test_exact_match": 0.75, "test_n": 40}, tmp_path / "a")   # before intervals
    store.record_summary(config, {"test_exact_match": 0.5}, tmp_path / "b")                  # before test sizes
    store.record_summary(config, {"test_exact_match": 1.0, "test_n": 8, "test_exact_match_ci95": [0.7, 1.0]},
                         tmp_path / "c")
    rows = {r[0]: r[2:] for r in Source(tmp_path / "results.sqlite", None).table(None, ["test_exact_match"])["rows"]}
    assert rows["1"] == [0.75, 40, *proportion_ci(30, 40)]
    assert rows["2"] == [0.5, None, None, None]
    assert rows["3"] == [1.0, 8, 0.7, 1.0]


def test_groups_by_every_setting_but_the_seed_and_by_a_field(server, lab):
    from toyformer.experiments.store import ResultsStore
    from toyformer.stats import mean_ci

    rows = ResultsStore(lab["store"], read_only=True).query(WIDTHS)
    for group in ("*settings", "model.d_model"):
        _, _, g = get(server.base, "/api/runs/groups", where=WIDTHS, group=group, columns="test_token_acc,seed")
        assert g["fields"] == ["model.d_model"] and sorted(x["n"] for x in g["groups"]) == [2, 2]
        for i, grp in enumerate(g["groups"]):
            members = [r for r in rows if r["model.d_model"] == grp["settings"]["model.d_model"]]
            assert sorted(k for k, j in g["of"].items() if j == i) == sorted(str(r["id"]) for r in members)
            mean, ci = mean_ci([r["test_token_acc"] for r in members])
            low, high = max(0.0, mean - ci), min(1.0, mean + ci)  # an accuracy's interval inside [0, 1]
            assert grp["stats"]["test_token_acc"] == [pytest.approx(mean), pytest.approx(low), pytest.approx(high), 2]
    _, _, every = get(server.base, "/api/runs/groups", group="*settings", columns="test_token_acc")
    assert sum(x["n"] for x in every["groups"]) == len(every["of"]) and "seed" not in every["fields"]
    assert {"task.name", "model.d_model"} <= set(every["fields"])
    status, _, bad = get(server.base, "/api/runs/groups", group="model.colour")
    assert status == 400 and "model.colour" in bad["error"]
    _, _, compared = get(server.base, "/api/compare", run=[str(r["id"]) for r in rows], group="*settings")
    assert sorted((g["value"]["model.d_model"], g["n"]) for g in compared["groups"]) == [(8, 2), (16, 2)]


def test_export_is_what_toyformer_results_prints(server, lab, capsys):
    columns = "id,model.d_model,seed,test_token_acc"
    for kind in ("csv", "json"):
        status, headers, text = get(server.base, "/api/runs/export", where=WIDTHS, columns=columns, format=kind)
        assert status == 200 and "attachment" in headers["content-disposition"]
        assert main(["results", "--store", str(lab["store"]), "--where", WIDTHS, "--columns", columns,
                     "--format", kind]) == 0
        printed = capsys.readouterr().out
        assert (text.strip() == printed.strip()) if kind == "csv" else (text == json.loads(printed))
    _, _, with_ci = get(server.base, "/api/runs/export", where=WIDTHS, columns="id,test_exact_match", format="csv")
    assert with_ci.splitlines()[0] == "id,test_exact_match,test_n,test_exact_match_lo,test_exact_match_hi"
    status, _, bad = get(server.base, "/api/runs/export", format="xlsx")
    assert status == 400 and "xlsx" in bad["error"] and "csv" in bad["error"]


def test_best_is_the_highest_accuracy_and_the_lowest_loss(server):
    _, _, fields = get(server.base, "/api/fields")
    d = fields["directions"]
    best = (d["test_exact_match"], d["val_token_acc"], d["test_loss"], d["solved_at_step"])
    assert best == ("max", "max", "min", "min")
    assert "model.d_model" not in d and "seed" not in d


def test_the_run_page_shows_solved_with_its_evidence(server, lab):
    from toyformer.files import read_json

    key = row_id(lab["store"], lab["runs"] / "count")
    summary = read_json(lab["runs"] / "count" / "summary.json")
    _, _, page = get(server.base, f"/run/{key}")
    section = page[page.index('id="solved-section"'):page.index("</section>", page.index('id="solved-section"'))]
    lo, hi = summary["test_exact_match_ci95"]
    assert f"n={summary['test_n']}" in section and f"95% CI {lo:.4f}-{hi:.4f}" in section
    assert ("not solved" in section) == (not summary["solved"])
    assert f"validation {summary['target']['metric']} &gt;= {summary['target']['value']}" in section
    if summary["splits"].get("note"):
        assert summary["splits"]["note"][:40].replace("'", "&#x27;") in section


def test_the_run_page_explains(server, lab, explained):
    from toyformer.explain.ablation import effect
    from toyformer.files import read_json

    key = row_id(lab["store"], explained["count"])
    _, _, e = get(server.base, "/api/run/explain", run=key)
    raw = read_json(explained["count"] / "explain.json")
    assert e["explained"] and e["sentences"] == raw["sentences"] and e["step"] == raw["step"] and not e["stale"]
    assert [(r["module"], r["head"], r["role"]) for r in e["roles"]] == [(r["module"], r["head"], r["role"])
                                                                        for r in raw["roles"]]
    effects = [effect(r)[0] for r in e["ablation"]["rows"]]
    assert effects == sorted(effects, reverse=True) and len(effects) == len(raw["ablation"]["rows"])
    for curve in e["probes"]:
        layers = [r["layer"] for r in raw["probes"] if (r["stream"], r["target"]) == (curve["stream"], curve["target"])]
        assert curve["layer"] == sorted(layers)
    assert [c["layer"] for c in e["lens"]] == [[r["layer"] for r in raw["lens"]]]
    assert e["phases"] == raw["phases"] and e["circuit"] is None

    _, _, c = get(server.base, "/api/run/explain", run=row_id(lab["store"], explained["circuit"]))
    nodes = {n["name"]: n for n in c["circuit"]["nodes"]}
    assert len(c["circuit"]["edges"]) == len(CIRCUIT["edges"]) == 4
    assert nodes["encoder.embed"]["x"] == -1 and nodes["encoder.blocks.0.attn head 0"]["x"] == 0
    assert nodes["encoder.blocks.0.ff"]["x"] == 0.5 and nodes["<b>logits</b>"]["x"] == 1.5
    assert "encoder.blocks.0.attn.hook_result head 0" in nodes  # InterpBench's [hook name, head] pairs
    assert c["circuit"]["facts"] == {"faithful": True, "exact_match_kept": 0.99, "method": "edge attribution patching"}

    never = row_id(lab["store"], lab["runs"] / "evil")
    _, _, none = get(server.base, "/api/run/explain", run=never)
    assert none == {"explained": False, "command": f"toyformer explain {lab['runs'] / 'evil'}"}


@pytest.fixture(scope="session")
def studies(lab, server):
    """Two synthetic tune directories under the runs folder: ``synthetic`` (trials linked to the
    sweep's runs) and ``evil<i>`` (a hostile name); waits until the browser lists them."""
    runs = sorted((lab["runs"] / "sweeps" / "widths" / "runs").iterdir())
    study = synthetic_study(lab["runs"] / "tune" / "synthetic", runs)
    synthetic_study(lab["runs"] / "tune" / "evil<i>", runs, name="evil<i>study</i>")
    deadline = time.monotonic() + 30
    while len(get(server.base, "/api/tunes")[2]["studies"]) < 2:  # the runs folder is walked again every 2 s
        assert time.monotonic() < deadline
        time.sleep(0.5)
    return {"study": study, "dir": str((lab["runs"] / "tune" / "synthetic").resolve()), "runs": runs}


def test_a_study_page_has_its_trials_history_and_importances(server, lab, studies):
    import optuna

    _, _, listed = get(server.base, "/api/tunes")
    mine = next(s for s in listed["studies"] if s["dir"] == studies["dir"])
    assert mine["counts"] == {"COMPLETE": 3, "PRUNED": 1, "FAIL": 1, "RUNNING": 0,
                              "WAITING": 0} and mine["best"] == 12.5
    _, _, d = get(server.base, "/api/tune", dir=studies["dir"])
    assert [t["state"] for t in d["trials"]] == ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED", "FAIL"]
    assert [t["best_so_far"] for t in d["trials"]] == [30.0, 12.5, 12.5, 12.5, 12.5] and d["best"] == 1
    assert d["trials"][3]["pruned_at"] == 20 and d["trials"][3]["reported"] == {"step": [10, 20], "value": [0.95, 0.93]}
    assert "<script>" in d["trials"][4]["error"]  # JSON; the page shows it as text
    assert [t["run"] for t in d["trials"][:3]] == [row_id(lab["store"], p) for p in studies["runs"][:3]]
    assert all(t["test_n"] == 64 for t in d["trials"][:3])  # read from each trial's run
    assert {p["name"]: p["kind"] for p in d["params"]} == {"train.lr": "float", "model.d_model": "categorical"}
    want = optuna.importance.get_param_importances(studies["study"])
    assert d["importances"]["values"] == {k: pytest.approx(v, abs=1e-6) for k, v in want.items()}
    assert d["remeasured"] is None and d["running"] is False
    assert get(server.base, "/api/tune", dir="/etc")[0] == 404
    status, _, page = get(server.base, "/tunes")
    assert status == 200 and "evil&lt;i&gt;study&lt;/i&gt;" in page and "<i>study" not in page


def test_nothing_is_written_by_the_new_pages(lab, explained, studies):
    from toyformer.ui import Background

    before = tree_digest(lab["runs"])
    with Background(store=lab["store"], runs=lab["runs"], port=0) as base:
        key = row_id(lab["store"], explained["count"])
        for path, params in [("/tunes", {}), ("/tune", {"dir": studies["dir"]}), ("/api/tune", {"dir": studies["dir"]}),
                             ("/api/tunes", {}), ("/api/run/explain", {"run": key}), ("/api/runs/keys",
                                                                                      {"where": WIDTHS}),
                             ("/api/runs/groups", {"group": "*settings"}), ("/api/runs/export", {"format": "json"}),
                             (f"/run/{key}", {})]:
            assert get(base, path, **params)[0] == 200, path
    assert tree_digest(lab["runs"]) == before
