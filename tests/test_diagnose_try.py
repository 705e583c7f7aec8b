"""toyformer diagnose --try: the symptoms' levers first, then the layout's search space, by successive
halving within the budget; verdicts from effect sizes against the run's own config on the same
seeds; the best change re-measured on fresh seeds; written into try.json, the diagnosis and the
report. The search's logic is tested with a stand-in for training (fast); one small real search
checks the whole path (slow: its budget is wall-clock seconds; the README's `diagnose --try` runs
in the fast docs tests)."""

from __future__ import annotations

import json

import pytest

from toyformer import RunConfig
from toyformer.cli import main
from toyformer.experiments.trial_fixes import LEVERS, candidates, table_markdown
from toyformer.experiments.trial_fixes.halving import BASELINE, FRESH, Search
from toyformer.experiments.trial_fixes.levers import Candidate, space_values
from toyformer.experiments.trial_fixes.measure import VERDICTS, rank, verdict

FAILING = ["train", "count_ones", "--set", "model.norm=post", "--set", "model.n_layers=6",
           "--set", "train.warmup_steps=0", "--set", "train.lr=0.02", "--set", "model.pooling=flatten",
           "--set", "train.steps=60", "--set", "eval.every=20", "--set", "eval.val_size=32",
           "--set", "eval.test_size=32", "--set", "model.d_model=32", "--quiet", "--no-live-plot"]


def _row(solved, seeds=3, low=0.0, high=0.2, val=0.1, finished=False, t=None):
    row = {"seeds": seeds, "solved": solved, "final": {"mean": (low + high) / 2, "low": low, "high": high, "n": 90},
           "val": val, "finished": finished, "wall_s": 1.0, "per_seed": [0.1] * seeds, "seed_values": [0, 1, 2]}
    if t is not None:
        row["solved_at_s"] = {"mean": t, "ci95": 0.5, "slowest": t, "solved": solved, "of": seeds}
    return row


def test_verdicts_come_from_effect_sizes_against_the_baseline():
    base = _row(0, low=0.28, high=0.34)
    assert verdict(_row(3, t=5.0), base) == "fixes it"
    assert verdict(_row(0, low=0.93, high=0.97), base) == "partly"  # a clear gain: the intervals do not overlap
    assert verdict(_row(1, low=0.2, high=0.6), base) == "partly"    # more seeds solved
    assert verdict(_row(0, low=0.30, high=0.60), base) == "does not"  # overlapping intervals: no clear gain
    assert verdict(_row(0, low=0.01, high=0.1), base) == "makes it worse"
    assert verdict(_row(0, low=0.93, high=0.97), _row(1, low=0.2, high=0.5)) == "does not"  # mixed evidence
    assert set(VERDICTS) == {"fixes it", "partly", "does not", "makes it worse"}
    ranked = sorted([_row(0, val=0.9), _row(3, t=9.0), _row(3, t=2.0), _row(1, val=0.1)], key=rank)
    assert [(r["solved"], r.get("solved_at_s", {}).get("mean")) for r in ranked] == [(3, 2.0), (3, 9.0), (1, None),
                                                                                      (0, None)]


def test_the_memorising_levers_come_first_and_reach_grokking_weight_decay():
    cfg = RunConfig.from_dict({"task": "modular_arithmetic", "train": {"weight_decay": 0.0}})
    found = candidates(cfg, ["memorising"])
    labels = [c.label for c in found]
    longer = f"train.steps={3 * cfg.train.steps}"  # grokking comes long after memorising
    assert labels[:7] == [f"train.weight_decay=0.1 + {longer}", f"train.weight_decay=0.3 + {longer}",
                          f"train.weight_decay=1 + {longer}",
                          f"train.weight_decay=1 + data.train_share=0.8 + {longer}",  # decay with more of the domain
                          f"train.weight_decay=1 + data.train_share=0.9 + {longer}",
                          "data.train_share=0.8", "data.train_share=0.9"]
    assert {c.source for c in found[:7]} == {"memorising"} and found[-1].source == "space"
    assert len(labels) == len(set(labels))  # a key=value is tried once
    stream = RunConfig.from_dict({"task": {"name": "reverse", "length": 6}})  # no finite domain: no training share
    assert not any(c.overrides.get("data.train_share") for c in candidates(stream, ["memorising"], with_space=False))
    post = RunConfig.from_dict({"task": "count_ones", "model": {"norm": "post", "n_layers": 12},
                                "train": {"warmup_steps": 0}})
    chance = [c.label for c in candidates(post, ["chance"], with_space=False)]
    assert {"model.norm=pre", "model.n_layers=2", "train.warmup_steps=100"} <= set(chance)
    assert set(LEVERS) >= {"memorising", "chance", "diverged", "still_improving", "by_position", "by_length"}
    bag = RunConfig.from_dict({"task": "reverse", "model": {"positional": "none"}, "data": {"min_length": 1,
                                                                                          "max_length": 8}})
    schemes = [c.overrides for c in candidates(bag, ["by_length"], with_space=False)]
    assert {"model.positional": "learned", "model.positions_from": "both"} in schemes  # two overrides, one change
    too_high = RunConfig.from_dict({"task": "reverse", "train": {"lr": 0.3}})
    assert {"train.lr": 0.003} in [c.overrides for c in candidates(too_high, ["diverged"], with_space=False)]
    assert space_values("train.lr", {"log": [3e-4, 1e-2]}, 3e-3) == [0.001, 0.009]
    assert space_values("model.n_layers", {"int": [1, 4]}, 1) == [2]
    assert space_values("model.pooling", {"choices": ["mean", "first"]}, "mean") == ["first"]


class Scripted(Search):
    """A search whose training is a table: label -> row (missing: nothing solved, low validation)."""

    def __init__(self, table, candidates, budget_s=100.0, fresh=None):
        cfg = RunConfig.from_dict({"task": "count_ones"})
        super().__init__(cfg, candidates, 3, budget_s, "/nonexistent")
        self.table, self.trained, self.on_fresh = table, [], fresh or {}  # on_fresh: label -> row on fresh seeds

    def train(self, label, overrides, cap, where, seed_offset=0):
        self.trained.append((label, round(cap, 3), where, seed_offset))
        table = {**self.table, **self.on_fresh} if where == "fresh" else self.table
        return {"change": label, "overrides": overrides, **table.get(label, _row(0, val=0.01)), "cap_s": cap}


def _levers(n, source="chance"):
    return [Candidate({"train.lr": 0.001 * (i + 1)}, source) for i in range(n)]


def test_halving_keeps_a_third_with_the_pair_and_longer_caps_then_re_measures_on_fresh_seeds():
    cands = _levers(9) + [Candidate({"train.warmup_steps": 100}, "chance")]
    table = {cands[2].label: _row(0, val=0.9), cands[-1].label: _row(0, val=0.8)}
    s = Scripted(table, cands)
    result = s.run()
    rung0 = [t for t in s.trained if t[2] == s.trained[0][2]]
    assert len(rung0) == 11 and rung0[0][0] == BASELINE  # every change and the baseline, same cap
    later = [t for t in s.trained if t[2] not in (rung0[0][2], "fresh")]
    pair = f"{cands[2].label} + {cands[-1].label}"
    assert pair in {t[0] for t in later}  # the two best of different keys, together
    assert len({t[0] for t in later} - {BASELINE}) == 4 + 1  # a third of 10, and the pair
    caps = [r["cap_s"] for r in result["rungs"]]
    assert caps == sorted(caps) and caps[1] > caps[0]
    fresh = [t for t in s.trained if t[2] == "fresh"]
    assert fresh[0][3] == FRESH and fresh[1][0] == BASELINE  # no fix: the baseline beside it, same fresh seeds
    assert result["fresh"]["verdict"] in VERDICTS and not result["found"]


def test_a_fix_stops_the_search_and_the_space_waits_for_the_levers():
    levers = _levers(4)
    space = [Candidate({"model.d_model": 32}, "space"), Candidate({"model.d_model": 128}, "space")]
    s = Scripted({levers[1].label: _row(3, t=4.0, finished=True)}, levers + space)
    result = s.run()
    assert result["found"] and result["best"][0].label == levers[1].label
    assert not any("d_model" in t[0] for t in s.trained)  # a lever fixed it: the search space is never trained
    assert [t[0] for t in s.trained if t[2] == "fresh"] == [levers[1].label]  # it fixes it: no baseline needed
    assert result["fresh"]["verdict"] == "fixes it"


def test_of_fixes_as_fast_within_their_intervals_the_one_with_fewer_overrides_is_recommended():
    lean = Candidate({"train.weight_decay": 1.0, "train.steps": 6000}, "memorising")
    rich = Candidate({"train.weight_decay": 1.0, "train.steps": 6000, "model.d_model": 32}, "pair")
    s = Scripted({lean.label: _row(3, t=18.2, finished=True), rich.label: _row(3, t=17.6, finished=True)},
                 [rich, lean])
    result = s.run()
    assert result["best"][0].label == lean.label  # 17.6 +- 0.5 and 18.2 +- 0.5 overlap: the simpler one
    assert result["fresh"]["change"] == lean.label and result["fresh"]["also_remeasured"] == []
    s = Scripted({lean.label: _row(3, t=18.2, finished=True), rich.label: _row(3, t=9.0, finished=True)},
                 [rich, lean])
    assert s.run()["best"][0].label == rich.label  # clearly faster: the extra override earns its place


def test_a_fix_that_fails_on_fresh_seeds_gives_way_to_the_next_fix_that_holds():
    first, second = _levers(2)
    table = {first.label: _row(3, t=2.0, finished=True), second.label: _row(3, t=6.0, finished=True)}
    s = Scripted(table, [first, second], budget_s=300.0, fresh={first.label: _row(1, t=2.0, finished=True)})
    result = s.run()
    fresh = [t[0] for t in s.trained if t[2] == "fresh"]
    assert fresh == [first.label, second.label]  # the next fix, on the same fresh seeds; no baseline needed
    rec = result["fresh"]
    assert rec["change"] == second.label and rec["verdict"] == "fixes it"
    assert [(o["change"], o["solved"]) for o in rec["also_remeasured"]] == [(first.label, 1)]
    from toyformer.report.tried import recommendation_text

    text = recommendation_text({"recommendation": rec, "metric": "exact_match"})
    assert f"Also re-measured on the same fresh seeds: {first.label}: 1 of 3 solved" in text
    s = Scripted(table, [first, second], budget_s=300.0,
                 fresh={first.label: _row(1, t=2.0, finished=True), second.label: _row(0, finished=True)})
    rec = s.run()["fresh"]
    assert rec["change"] == first.label and [t[0] for t in s.trained if t[2] == "fresh"][-1] == BASELINE
    assert rec["verdict"] == "partly"  # none holds: the better of the two, judged against the baseline


def test_when_no_lever_fixes_it_the_space_is_searched_with_the_best_levers_carried():
    levers = _levers(3)
    space = [Candidate({"model.d_model": d}, "space") for d in (16, 32, 128)]
    finished = _row(0, val=0.7, finished=True)
    s = Scripted({levers[0].label: finished, space[1].label: _row(3, t=2.0)}, levers + space)
    result = s.run()
    stages = [r["stage"] for r in result["rungs"]]
    assert stages[0] == "levers" and "space" in stages
    carried = [t for t in s.trained if t[0] == levers[0].label]
    assert len(carried) == 1  # finished before its cap: carried into the next stage without training again
    assert result["found"] and result["best"][0].label == space[1].label


def test_a_lever_that_solved_some_seeds_runs_longer_before_the_search_space():
    levers = _levers(4)
    space = [Candidate({"model.d_model": d}, "space") for d in (16, 32, 128)]
    s = Scripted({levers[1].label: _row(2, val=0.9)}, levers + space, budget_s=300.0)
    result = s.run()
    stages = [r["stage"] for r in result["rungs"]]
    assert "levers, longer" in stages and stages.index("levers, longer") < stages.index("space")
    first, again = [t[1] for t in s.trained if t[0] == levers[1].label][:2]
    assert again > first  # the same change under a longer cap
    carried = [t for t in s.trained if t[0] == levers[1].label and t[2].startswith("cap") and t[1] < again]
    assert len(carried) == 1  # not trained again shorter in the search space's stage
    assert result["fresh"]["cap_s"] >= again  # re-measured at the longest cap it was measured at


def test_the_runner_up_that_solved_some_seeds_runs_longer_too_and_may_fix_it():
    levers = _levers(4)
    space = [Candidate({"model.d_model": d}, "space") for d in (16, 32, 128)]

    class Slow(Scripted):  # levers[2] solves every seed only on its third, longest, run
        def train(self, label, overrides, cap, where, seed_offset=0):
            row = super().train(label, overrides, cap, where, seed_offset)
            if label == levers[2].label and sum(t[0] == label for t in self.trained) >= 3:
                row.update(_row(3, t=cap / 2), cap_s=cap)
            return row

    s = Slow({levers[1].label: _row(2, val=0.9, finished=True), levers[2].label: _row(1, val=0.8)},
             levers + space, budget_s=300.0)
    result = s.run()
    runs = [(t[0], t[1]) for t in s.trained if t[2].startswith("cap")]
    assert [label for label, _ in runs].count(levers[1].label) == 1  # finished in rung 0: carried on as it is
    caps = [cap for label, cap in runs if label == levers[2].label]
    assert len(caps) == 3 and caps == sorted(caps)  # the runner-up, under a longer cap
    assert "levers, longer" in [r["stage"] for r in result["rungs"]]
    assert result["found"] and result["best"][0].label == levers[2].label
    assert "space" not in [r["stage"] for r in result["rungs"]]  # the runner-up fixed it: no search space


def test_a_change_of_k_times_the_steps_gets_k_times_the_cap():
    cands = [Candidate({"train.steps": 3 * 2000}, "memorising")] + _levers(4)
    s = Scripted({}, cands)
    s.config = s.config.with_overrides({"train.steps": 2000})
    s.run()
    rung0 = [t for t in s.trained if t[2] == s.trained[0][2]]
    caps = {label: cap for label, cap, _, _ in rung0}
    longer = caps[cands[0].label] / 3
    assert longer == pytest.approx(caps[BASELINE], rel=1e-3) and caps[cands[1].label] == caps[BASELINE]
    assert s.scale({"train.steps": 1000}) == 1.0  # fewer steps than the run: no less than the rung's cap


def test_a_trial_evaluates_a_bounded_number_of_times(tmp_path, monkeypatch):
    import toyformer.training as training
    from toyformer.experiments.trial_fixes.halving import EVALS

    seen = []

    def fake(folder, config, k, quiet=True):
        seen.append(config)
        raise RuntimeError("stop")

    monkeypatch.setattr(training, "train_replicas_into", fake)
    cfg = RunConfig.from_dict({"task": "count_ones", "train": {"steps": 40}, "eval": {"every": 10}})
    s = Search(cfg, [], 3, 10.0, tmp_path)
    for steps in (40, 1200):
        with pytest.raises(RuntimeError):
            s.train("x", {"train.steps": steps}, 1.0, "cap1s")
    assert [c.eval.every for c in seen] == [10, 1200 // EVALS]  # as often as the run did, at most EVALS times


def test_a_floor_keeps_the_first_changes_long_enough_to_show_something():
    cands = _levers(9)
    s = Scripted({}, cands, budget_s=100.0)
    s.floor_s = 10.0
    result = s.run()
    tried = {t[0] for t in s.trained} - {BASELINE}
    assert 2 <= len(tried) < 9 and result["rungs"][0]["cap_s"] >= 10.0
    assert result["untried"] == [c.label for c in cands[len(tried):]]  # the table's last ones wait


def test_the_report_and_the_browser_show_the_verdicts(tmp_path):
    from toyformer.experiments.trial_fixes.outputs import mark, ordered
    from toyformer.report.run_page import diagnosis_section
    from toyformer.ui.run_page import run_page

    fix = {**_row(3, low=0.97, high=1.0, t=4.0), "change": "train.weight_decay=1", "overrides":
           {"train.weight_decay": 1.0}, "source": "memorising", "why": "", "cap_s": 20.0, "rung_cap_s": 20.0,
           "verdict": "fixes it"}
    worse = {**_row(0, low=0.05, high=0.2), "change": "model.dropout=0.1", "overrides": {"model.dropout": 0.1},
             "source": "memorising", "why": "", "cap_s": 20.0, "rung_cap_s": 20.0, "verdict": "makes it worse"}
    rows = ordered([worse, fix])
    result = {"metric": "exact_match", "symptoms": ["memorising"], "candidates": 2, "seeds": 3, "spent_s": 50.0,
              "budget_s": 60.0, "untried": [], "changes": rows,
              "recommendation": {**fix, "seed_values": [FRESH, FRESH + 1, FRESH + 2], "baseline": None}}
    (tmp_path / "try.json").write_text(json.dumps(result))
    settings = [{"key": k, "value": 0.0, "suspect": True, "why": "w"} for k in ("model.dropout", "train.weight_decay")]
    summary = {"test_exact_match": 0.31, "test_n": 90, "test_exact_match_ci95": [0.22, 0.41], "steps": 100,
               "params": 1000,
               "diagnosis": mark([{"symptom": "memorising", "title": "Memorising", "detail": "d", "evidence": {},
                                   "settings": settings}], rows)}
    measured = [s["measured"]["verdict"] for s in summary["diagnosis"][0]["settings"]]
    assert measured == ["fixes it", "makes it worse"]  # the fix first
    report = diagnosis_section(summary, tmp_path).render()
    page = run_page({"key": "1", "run_dir": tmp_path, "status": "recorded", "metrics": [], "summary": summary,
                     "config": {"task": {"name": "modular_arithmetic"}, "layout": "classifier", "seed": 0}})
    for html in (report, page):
        assert "Measured: what fixes it" in html and "Recommended: train.weight_decay=1" in html
        assert "measured: fixes it" in html and "measured: makes it worse" in html
        assert "95% CI 0.970-1.000" in html and "n=90" in html and "(3 of 3 seeds)" in html


@pytest.fixture(scope="module")
def tried(tmp_path_factory):
    run = tmp_path_factory.mktemp("try") / "run"
    assert main([*FAILING, "--out", str(run)]) == 0
    assert json.loads((run / "summary.json").read_text())["diagnosis"]
    assert main(["diagnose", str(run), "--try", "--budget-s", "30", "--seeds", "2", "--quiet"]) == 0
    return run


@pytest.mark.slow  # a real search: its budget is wall-clock seconds
def test_a_real_search_measures_the_levers_on_every_seed(tried):
    from toyformer.run.directory import run_config

    result = json.loads((tried / "try.json").read_text())
    changes = {c["change"]: c for c in result["changes"] if "error" not in c}
    assert result["symptoms"] and result["rungs"][0]["stage"] == "levers"
    config = run_config(tried).with_overrides({"eval.target": 0.999})
    levers = [c.label for c in candidates(config, result["symptoms"], with_space=False)]
    first = [c for c in levers if c in changes]
    assert first and first == levers[: len(first)]  # the symptoms' levers, in the table's order
    assert {"model.norm=pre", "model.n_layers=2", "train.warmup_steps=100"} & set(levers) == {
        "model.norm=pre", "model.n_layers=2", "train.warmup_steps=100"}
    for c in changes.values():
        assert c["seeds"] == 2 and len(c["per_seed"]) == 2 and c["source"]
        assert c["verdict"] == verdict(c, c["baseline"])
        assert 0 <= c["final"]["low"] <= c["final"]["mean"] <= c["final"]["high"] <= 1
        t = c.get("solved_at_s")
        assert (t is None) == (c["solved"] == 0) and (t is None or t["solved"] == c["solved"])
    rec = result["recommendation"]
    assert rec["change"] in changes and rec["seed_values"] == [FRESH, FRESH + 1] and rec["verdict"] in VERDICTS
    cap_dirs = [p.name for p in (tried / "try").iterdir()]
    assert "fresh" in cap_dirs and any(d.startswith("cap") for d in cap_dirs)


@pytest.mark.slow  # a real search: its budget is wall-clock seconds
def test_the_diagnosis_and_the_report_show_the_measurements(tried):
    summary = json.loads((tried / "summary.json").read_text())
    result = json.loads((tried / "try.json").read_text())
    verdicts = {c["change"]: c["verdict"] for c in result["changes"] if "error" not in c}
    measured = [s for f in summary["diagnosis"] for s in f["settings"] if "measured" in s]
    assert measured and all(s["measured"]["verdict"] == verdicts[s["measured"]["change"]] for s in measured)
    assert main(["report", str(tried)]) == 0
    html = (tried / "report.html").read_text()
    assert "Measured: what fixes it" in html and "Recommended: " in html and "measured: " in html
    assert result["recommendation"]["change"] in html


def test_the_lever_table_is_printed(capsys):
    assert main(["diagnose", "--levers"]) == 0
    out = capsys.readouterr().out
    assert all(f"| {symptom} (" in out for symptom in LEVERS) and "`train.weight_decay`" in out
    assert main(["diagnose"]) == 2
    assert "needs a run directory" in capsys.readouterr().err
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "tune.md").read_text()
    assert table_markdown() in guide  # the guide shows the table the code tries


def test_a_run_that_reached_its_target_has_nothing_to_try(tmp_path, capsys):
    assert main(["train", "count_ones", "--out", str(tmp_path / "ok"), "--set", "eval.val_size=32",
                 "--set", "eval.test_size=32", "--quiet", "--no-live-plot"]) == 0
    assert main(["diagnose", str(tmp_path / "ok"), "--try"]) == 2
    assert "nothing to fix" in capsys.readouterr().err


@pytest.mark.slow  # a real search: its budget is wall-clock seconds
def test_bench_diagnose_reports_each_case(tmp_path, capsys):
    from toyformer.bench.main import main as bench

    out = tmp_path / "d.json"
    assert bench(["diagnose", "--quick", "--cases", "lr_too_high", "--budget-s", "8", "--seeds", "2",
                  "--runs-dir", str(tmp_path / "runs"), "--out", str(out), "--markdown", str(tmp_path / "d.md")]) == 0
    result = json.loads(out.read_text())["diagnose"]
    (case,) = result["cases"]
    assert case["case"] == "lr_too_high" and case["known"] == ["train.lr"]
    assert (tmp_path / "runs" / "lr_too_high" / "try.json").is_file()
    if case["fixed"] is not None:  # the broken run missed its target, so the search ran
        assert case["try_s"] > 0 and case["candidates"] > 0 and case["recommendation"]["verdict"] in VERDICTS
        assert result["tried"] == 1 and result["fixed"] == int(case["fixed"])
    table = (tmp_path / "d.md").read_text()
    assert "| lr_too_high |" in table and "The top recommendation fixes" in table
    assert bench(["diagnose", "--cases", "nope", "--out", str(out)]) == 2
    assert "unknown case 'nope'; allowed: r0_as_described" in capsys.readouterr().err
