"""The HTML report: self-contained, escaped, small, and checked in a real headless Chromium."""

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hostile_pages import EVIL_TASK, EVIL_TOKENS, chromium_flags, chromium_or_skip

from toyformer.cli import main

SMALL = ["--set", "model.d_model=32", "--set", "model.n_heads=2", "--set", "model.n_layers=1",
         "--set", "eval.val_size=64", "--set", "eval.test_size=128", "--set", "eval.every=10", "--quiet"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Two reports: a solved run of the hostile task, and a run made to fail (a diagnosis)."""
    root = tmp_path_factory.mktemp("report")
    (root / "evil_task.py").write_text(EVIL_TASK)
    task_file = ["--task-file", str(root / "evil_task.py")]
    assert main(["train", "evil<i>copy<b>", *task_file, "--out", str(root / "evil"), "--set", "steps=60", *SMALL]) == 0
    assert main(["report", str(root / "evil"), *task_file]) == 0
    assert main(["train", "reverse", "--out", str(root / "fail"), "--set", "length=5", "--set", "steps=30",
                 "--set", "lr=1e-6", *SMALL]) == 0
    assert main(["report", str(root / "fail")]) == 0
    return {"evil": root / "evil" / "report.html", "fail": root / "fail" / "report.html"}


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]


def parse(text):
    p = Tags()
    p.feed(text)
    return p


def test_the_report_is_self_contained_and_small(reports):
    for path in reports.values():
        text = path.read_text()
        assert path.stat().st_size < 2_000_000
        tags = parse(text)
        assert "script" not in tags.tags and "link" not in tags.tags and "iframe" not in tags.tags
        for tag, key, value in tags.attrs:
            assert not key.startswith("on"), (tag, key)  # no event handlers
            if key in ("src", "href"):
                assert value.startswith(("data:image/png;base64,", "#")), value
        assert not re.search(r"https?://", text)


def test_user_strings_are_escaped(reports):
    text = reports["evil"].read_text()
    tags = parse(text)
    assert set(tags.tags) <= {"html", "head", "meta", "title", "style", "body", "header", "div", "h1", "h2", "h3",
                              "span", "nav", "a", "main", "section", "p", "figure", "img", "table", "thead",
                              "tbody", "tr", "th", "td", "code", "details", "summary", "footer"}
    for token in EVIL_TOKENS:
        assert html.escape(token) in text
    assert "evil&lt;i&gt;copy&lt;b&gt;" in text and "&lt;img src=x onerror=alert(2)&gt;" in text


def test_the_report_shows_the_verdict_and_the_diagnosis(reports):
    solved, failed = reports["evil"].read_text(), reports["fail"].read_text()
    assert "badge good" in solved and "nothing to diagnose" in solved
    assert "badge bad" in failed and "Nothing learned: the loss is at chance level" in failed
    for section in ("Learning curves", "Attention", "Embeddings", "Accuracy by position and length", "Configuration"):
        assert f">{section}</h2>" in solved
    assert solved.count("<img ") >= 4


def test_the_report_in_headless_chromium(reports):
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=chromium_flags())
        try:
            for name, path in reports.items():
                page = browser.new_page()
                errors, requests, dialogs = [], [], []
                page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.on("request", lambda r, requests=requests: requests.append(r.url))
                page.on("dialog", lambda d, dialogs=dialogs: (dialogs.append(d.message), d.dismiss()))
                page.goto(Path(path).resolve().as_uri(), wait_until="load")
                images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
                assert images and all(done and width > 0 for done, width in images), images
                assert page.locator("table").count() >= 5
                assert page.locator("section h2").count() >= 8
                assert errors == [] and dialogs == []
                assert all(u.startswith(("file://", "data:")) for u in requests), requests
                if name == "evil":
                    text = page.inner_text("body")
                    for token in EVIL_TOKENS:
                        assert token in text  # shown as text, not interpreted
                page.close()
        finally:
            browser.close()


def test_a_run_in_progress_is_reported_from_its_checkpoint(tmp_path):
    from conftest import small_config
    from toyformer import train, write_report

    class Stop(Exception):
        pass

    def stop_at_20(record):
        if record["step"] == 20:
            raise Stop

    with pytest.raises(Stop):
        train(small_config(), out_dir=tmp_path / "cut", on_eval=stop_at_20)
    text = write_report(tmp_path / "cut").read_text()
    assert "badge info" in text and "Not finished: last checkpoint at step 20." in text
    assert ">Learning curves</h2>" in text and ">Diagnosis</h2>" not in text


# ---- the verdict follows the numbers; a failed or diverged run never reads as solved -------------

def _verdict_summary(**extra):
    return {"target": {"metric": "exact_match", "value": 1.0}, "test_exact_match": 0.42, "steps": 20,
            "solved_at_step": None, "solved_at_s": None, "diagnosis": [{"title": "Nothing learned"}], **extra}


def test_the_verdict_follows_the_numbers():
    from toyformer.report.run_page import verdict

    badge, kind, text = verdict(_verdict_summary(), [])
    assert (badge, kind) == ("not solved", "bad") and "0.4200" in text and "20 steps" in text
    badge, kind, text = verdict(_verdict_summary(test_exact_match=1.0, solved_at_step=60, solved_at_s=1.5,
                                                 diagnosis=[]), [])
    assert (badge, kind) == ("solved", "good") and "step 60" in text and "1.50 s" in text
    # validation met the target at step 60 but the test did not: no success badge
    badge, kind, text = verdict(_verdict_summary(test_exact_match=0.97, solved_at_step=60, solved_at_s=1.5,
                                                 diagnosis=[]), [])
    assert kind != "good" and "0.9700 is below it" in text
    # no diagnosis recorded and no target: only a test at 1.0 reads as finished without a caveat
    badge, kind, text = verdict(_verdict_summary(target={"metric": "exact_match", "value": None}, diagnosis=[]), [])
    assert kind != "good" and "no diagnosis recorded" in text
    badge, kind, text = verdict(_verdict_summary(diverged={"step": 7, "weights_from_step": 0}), [])
    assert (badge, kind) == ("diverged", "bad") and "Diverged at step 7" in text and "initial ones" in text
    assert "None" not in text


def test_solved_is_the_summarys_and_names_its_evidence():
    from toyformer.report.run_page import verdict

    stream = _verdict_summary(
        solved=True, solved_at_step=400, solved_at_s=3.2, diagnosis=[], test_exact_match=1.0, test_n=2000,
        test_exact_match_ci95=[0.998, 1.0],
        target={"metric": "exact_match", "value": 0.999, "hold": 2,
                "evidence": {"n": 2995, "errors": 0, "exhaustive": False, "error_bound": 0.0009998}},
        splits={"domain": None, "train": None, "val": 512, "test": 2000, "confirm": 2995, "exhaustive": False,
                "note": None})
    badge, kind, text = verdict(stream, [])
    assert (badge, kind) == ("solved", "good") and "step 400" in text and "3.20 s" in text
    assert "no error in 2,995 validation rows: error <= 0.1% (95%), held for 2 evaluations in a row" in text
    assert "test exact_match 1.0000 (n=2,000, 95% CI 0.9980-1.0000)" in text
    domain = {**stream, "target": {**stream["target"], "evidence": {"n": 76, "errors": 0, "exhaustive": True,
                                                                     "error_bound": 0.0}},
              "splits": {**stream["splits"], "domain": 256, "train": 180, "note": "the held-out part is 76 inputs"}}
    badge, kind, text = verdict(domain, [])
    assert kind == "good" and "all 76 held-out inputs right, counted" in text and "the held-out part is 76" in text
    # validation reached the target but the evidence did not confirm it: the summary says not solved
    missed = {**stream, "solved": False, "solved_at_step": None, "diagnosis": [{"title": "Memorising"}],
              "test_exact_match": 0.98, "target": {**stream["target"], "evidence": None}}
    badge, kind, text = verdict(missed, [])
    assert (badge, kind) == ("not solved", "bad") and "Memorising" in text and "n=2,000" in text


def _page_text(path):
    return re.sub(r"<style>.*?</style>", "", Path(path).read_text(), flags=re.S)


def test_a_failed_run_has_no_success_verdict(tmp_path):
    from conftest import small_config
    from toyformer import train, write_report

    run = train(small_config(train={"steps": 5}, eval={"every": 5, "target": 1.0}), out_dir=tmp_path / "r")
    assert run.summary["solved_at_step"] is None
    text = _page_text(write_report(tmp_path / "r"))
    assert "badge good" not in text and "badge bad" in text and "Reached validation" not in text
    assert "nothing to diagnose" not in text and "target not reached" in text
    assert not re.search(r"\bNone\b", text)


def test_a_diverged_run_is_reported_as_diverged(tmp_path):
    import json

    from conftest import small_config
    from toyformer import train, write_report
    from toyformer.eval.diagnosis import diagnose

    cfg = small_config(train={"lr": 1000.0, "steps": 40, "warmup_steps": 0})
    run = train(cfg, out_dir=tmp_path / "nan")
    step = run.summary["diverged"]["step"]
    text = _page_text(write_report(tmp_path / "nan"))
    assert "badge bad" in text and ">diverged</span>" in text and f"Diverged at step {step}:" in text
    assert f"Training diverged at step {step}" in text and "badge good" not in text
    assert not re.search(r"\bNone\b", text)
    # a metrics log with missing (null) losses: the report and the diagnosis still read it
    rows = [{"step": 10, "wall_s": 0.1, "lr": 1000.0, "train_loss": 2.4, "val_loss": 2.3, "val_exact_match": 0.0},
            {"step": 20, "wall_s": 0.2, "lr": 1000.0, "train_loss": None, "val_loss": None, "val_exact_match": 0.0}]
    (tmp_path / "nan" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = _page_text(write_report(tmp_path / "nan"))
    assert f"Diverged at step {step}:" in text and ">Learning curves</h2>" in text
    assert diagnose(cfg, rows, run.summary)[0]["symptom"] == "diverged"
