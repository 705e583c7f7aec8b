"""toyformer diagnose --try: each suspect setting measured on seeds, the verdicts written into the
diagnosis, and the report shows them."""

from __future__ import annotations

import json

import pytest

from toyformer.cli import main

FAILING = ["train", "count_ones", "--set", "model.norm=post", "--set", "model.n_layers=6", "--set", "train.warmup_steps=0",
           "--set", "train.lr=0.02", "--set", "model.pooling=flatten", "--set", "train.steps=60", "--set", "eval.every=20",
           "--set", "eval.val_size=32", "--set", "eval.test_size=32", "--set", "model.d_model=32", "--quiet",
           "--no-live-plot"]


@pytest.fixture(scope="module")
def tried(tmp_path_factory):
    run = tmp_path_factory.mktemp("try") / "run"
    assert main([*FAILING, "--out", str(run)]) == 0
    assert json.loads((run / "summary.json").read_text())["diagnosis"]
    assert main(["diagnose", str(run), "--try", "--budget-s", "40", "--seeds", "2", "--quiet"]) == 0
    return run


def test_each_suspect_setting_is_measured_on_every_seed(tried):
    result = json.loads((tried / "try.json").read_text())
    changes = {c["change"]: c for c in result["changes"]}
    assert {"model.norm=pre", "model.n_layers=2", "train.warmup_steps=100", "model.pooling=mean"} <= set(changes)
    for c in changes.values():
        assert c["seeds"] == 2 and len(c["per_seed"]) == 2
        assert c["verdict"] == ("fixes it" if c["solved"] == 2 else "partly" if c["solved"] else "does not")
        assert (tried / "try" / c["change"] / "replicas" / "1" / "summary.json").is_file()


def test_the_diagnosis_says_measured_instead_of_suspect(tried):
    summary = json.loads((tried / "summary.json").read_text())
    result = json.loads((tried / "try.json").read_text())
    verdicts = {c["change"]: c["verdict"] for c in result["changes"]}
    measured = [s for f in summary["diagnosis"] for s in f["settings"] if "measured" in s]
    assert measured and all(s["measured"]["verdict"] == verdicts[s["measured"]["change"]] for s in measured)
    first = summary["diagnosis"][0]["settings"][0]
    best = result["changes"][0]["verdict"]
    assert first.get("measured", {}).get("verdict") == best  # settings sorted: what measured best first


def test_the_report_shows_the_measurements(tried):
    assert main(["report", str(tried)]) == 0
    html = (tried / "report.html").read_text()
    assert "measured: " in html and "seeds reached the target" in html


def test_a_run_that_reached_its_target_has_nothing_to_try(tmp_path, capsys):
    assert main(["train", "count_ones", "--out", str(tmp_path / "ok"), "--set", "eval.val_size=32",
                 "--set", "eval.test_size=32", "--quiet", "--no-live-plot"]) == 0
    assert main(["diagnose", str(tmp_path / "ok"), "--try"]) == 2
    assert "nothing to fix" in capsys.readouterr().err
