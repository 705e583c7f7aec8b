"""The results browser in a real browser: Playwright driving Debian's chromium, headless, against
the server on a free port. Every page opens without a console error and fetches nothing from
the network; a filter, a sort, a group, two runs selected and compared; the attention viewer's
tooltip read back; hostile tokens shown as text with no script run; a run that is training
updates its curves without a reload; a run directory removed while its page is open is a message.
Part 2: the runs table's min/max/best, groups by every setting but the seed, export and parallel
coordinates; compare by settings; a tune study's page and a running study that redraws itself;
an explained run (roles on the attention viewer, ablations, curves by layer, a circuit with a
hostile node name) and a run never explained (the command, no button).

Skips where chromium or playwright is missing, except with ``CI=true``, where that fails.
``UPDATE_SCREENSHOT=1`` also writes the README's screenshot, ``docs/ui.png``, and the guide's
``docs/ui-tune.png`` (a real tune) and ``docs/ui-explain.png`` (a run explained).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from hostile_pages import chromium_flags, chromium_or_skip
from ui_lab import EVIL_TOKENS, explained, lab, row_id, server, synthetic_study, tiny  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow  # a browser, a lab of runs and a run trained while its page watches: ~30 s
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_MAX_BYTES = 200_000


@pytest.fixture(scope="module")
def browser():
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True, args=chromium_flags(local_server=True))
        try:
            yield b
        finally:
            b.close()


class Watched:
    """A page with its console errors, uncaught errors, requests and dialogs recorded."""

    def __init__(self, browser, base: str):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.base, self.errors, self.requests, self.dialogs = base, [], [], []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def open(self, path: str, ready: str = "body[data-ready], body[data-renders]"):
        self.page.goto(self.base + path, wait_until="load")
        self.page.wait_for_selector(ready, state="attached", timeout=60_000)
        return self.page

    def expect_failed_load(self, status: int) -> None:
        """The browser's own console line for a response with ``status`` (bad input, a run
        removed) that the test caused on purpose: exactly one, taken out of the errors."""
        line = f"Failed to load resource: the server responded with a status of {status}"
        found = [e for e in self.errors if e.startswith(line)]
        assert len(found) == 1, self.errors
        self.errors.remove(found[0])

    def check(self):
        assert self.errors == [] and self.dialogs == [], (self.errors, self.dialogs)
        outside = [u for u in self.requests if not u.startswith(self.base + "/") and not u.startswith("data:")]
        assert outside == [], outside  # nothing from the network: Plotly.js too comes from this server
        self.page.close()


def wait_until(page, expression: str, timeout_s: float = 30.0) -> None:
    """Poll ``expression`` in the page until it is truthy. Not ``page.wait_for_function``: that
    evaluates a string inside the page, which the pages' Content-Security-Policy forbids."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(100)


@pytest.fixture
def watched(browser, server):
    pages = []

    def make():
        pages.append(Watched(browser, server.base))
        return pages[-1]

    yield make
    for w in pages:
        if not w.page.is_closed():
            w.check()


def test_every_page_opens(watched, server, lab):
    evil = row_id(lab["store"], lab["runs"] / "evil")
    count = row_id(lab["store"], lab["runs"] / "count")
    w = watched()
    page = w.open("/runs")
    assert page.locator("#runs tbody tr").count() == 7 and "7 runs" in page.inner_text("#count")
    for path in (f"/run/{count}", f"/run/{evil}", f"/compare?run={count}&run={evil}", "/sweep?name=widths"):
        w.open(path, "body[data-ready]")
        assert page.locator(".js-plotly-plot").count() >= 1, path
    assert page.locator("#pivot td.cell").count() == 2 and "(mean of 2 runs, n=" in page.inner_text("#pivot")
    page.goto(server.base + "/sweeps")
    assert page.locator("a[href='/sweep?name=widths']").count() == 1
    w.check()


def test_filter_sort_group_select_and_compare(watched):
    w = watched()
    page = w.open("/runs")

    def rows(expected_renders):
        page.wait_for_selector(f"body[data-renders='{expected_renders}']", state="attached")
        return page.locator("#runs tbody tr:not(.group)")

    renders = int(page.get_attribute("body", "data-renders"))
    page.fill("#where", "sweep = 'widths'")
    page.press("#where", "Enter")
    renders += 1
    assert rows(renders).count() == 4 and page.inner_text("#count") == "4 runs match"
    page.fill("#where", "model.d_model >>= 3")
    page.press("#where", "Enter")
    renders += 1
    rows(renders)
    assert page.is_visible("#message") and "where=" in page.inner_text("#message")
    assert page.locator("#runs tbody tr").count() == 4  # the last good answer stays
    w.expect_failed_load(400)
    page.fill("#where", "sweep = 'widths'")
    page.press("#where", "Enter")
    renders += 1
    rows(renders)
    assert not page.is_visible("#message")
    page.click("th[data-col='model.d_model']")
    renders += 1
    assert rows(renders).first.locator("td").nth(3 + 5).inner_text() == "8"  # checkbox, run, status, 5 columns before
    page.click("th[data-col='model.d_model']")
    renders += 1
    assert rows(renders).first.locator("td").nth(8).inner_text() == "16"
    page.select_option("#group", "model.d_model")
    renders += 1
    assert rows(renders).count() == 4 and page.locator("#runs tr.group").count() == 2
    page.locator("#runs tbody tr:not(.group) input[type=checkbox]").nth(0).check()
    page.locator("#runs tbody tr:not(.group) input[type=checkbox]").nth(2).check()
    assert page.inner_text("#compare") == "compare selected (2)"
    page.click("#compare")
    page.wait_for_selector("body[data-ready]", state="attached")
    assert "group=model.d_model" in page.url
    traces = page.evaluate("document.getElementById('curves').data.map(t => t.fill || 'line')")
    assert traces == ["toself", "line", "toself", "line"]  # per d_model: the 95% band, then the mean
    assert "model.d_model" in page.inner_text("#differing") and "test_token_acc" in page.inner_text("#finals")
    page.select_option("#group", "")
    wait_until(page, "document.getElementById('curves').data.length === 2 && !location.search.includes('group')")
    w.check()


def test_attention_tooltip_and_hostile_tokens(watched, lab):
    evil = row_id(lab["store"], lab["runs"] / "evil")
    w = watched()
    page = w.open(f"/run/{evil}", "body[data-ready]")
    assert "evil<i>copy<b>" in page.inner_text("header h1")  # the task's name, as text
    tokens = EVIL_TOKENS[:4]
    page.fill("#input", " ".join(tokens))
    page.click("#attention-form button")
    typed = json.dumps(f"input: {' '.join(tokens)} ")
    wait_until(page, f"document.getElementById('attention-io').textContent.startsWith({typed})")
    assert f"input: {' '.join(tokens)}" in page.inner_text("#attention-io")
    z = page.evaluate("document.getElementById('attention').data[0].z")
    cells = page.locator("#attention .nsewdrag")
    cells.scroll_into_view_if_needed()
    box = cells.bounding_box()
    i, j = 0, 1  # query <script>alert(1)</script>, key <b>bold</b>
    cells.hover(position={"x": (j + 0.5) * box["width"] / len(z[0]), "y": (i + 0.5) * box["height"] / len(z)},
                force=True)
    page.wait_for_selector("#attention .hoverlayer .hovertext", timeout=10_000)
    tip = page.evaluate("[...document.querySelectorAll('#attention .hoverlayer .hovertext tspan.line')]"
                        ".map(t => t.textContent)")  # the tooltip's lines, as shown (SVG text)
    assert tip == [f"query {tokens[0]} (0)", f"key {tokens[1]} (1)", f"weight {z[0][1]:.4f}"], tip
    page.select_option("#head", "1")
    assert page.get_attribute("#page", "data-attention") == "encoder.blocks.0.attn/1"
    # escaped everywhere: no element made from a token, no script run, no dialog
    assert page.locator("#samples b, #attention-io b, header i").count() == 0
    assert page.evaluate("[...document.scripts].every(s => s.src.includes('/static/'))")
    assert any(t in page.inner_text("#samples") for t in EVIL_TOKENS)
    w.check()


def test_a_training_run_updates_without_a_reload(watched, lab):
    from toyformer import train

    gate, done = threading.Semaphore(0), threading.Event()

    def wait_for_the_page(record):
        if not done.is_set():
            gate.acquire(timeout=60)

    out = lab["runs"] / "live"
    trainer = threading.Thread(target=train, args=(tiny("reverse"),), daemon=True,
                               kwargs={"out_dir": out, "on_eval": wait_for_the_page})
    trainer.start()
    try:
        w = watched()
        page = w.open("/runs")
        wait_until(page, """(async () => {   // the runs folder is scanned again every 2 s
            const r = await (await fetch('/api/runs?where=' + encodeURIComponent("key = 'd:live'"))).json();
            return r.rows.length === 1 && r.rows[0][1] === 'training'; })()""")
        page.goto(w.base + "/run/d:live")
        page.wait_for_selector("#page[data-last-step='10']", state="attached", timeout=30_000)
        assert "in progress" in page.inner_text("header").lower()
        page.evaluate("window.notReloaded = true")
        gate.release()  # one more evaluation
        page.wait_for_selector("#page[data-last-step='20']", state="attached", timeout=30_000)
        assert page.evaluate("window.notReloaded === true")
        assert page.evaluate("document.getElementById('curve-loss').data[0].x.length") == 2
        done.set()
        gate.release()
        wait_until(page, "document.getElementById('live').textContent.includes('finished')", 60)
        assert page.evaluate("window.notReloaded === true")
        w.check()
    finally:
        done.set()
        gate.release()
        trainer.join(60)


def test_a_removed_run_is_a_message_on_its_page(watched, lab, server):
    from toyformer import train

    train(tiny("reverse"), out_dir=lab["runs"] / "removed-in-the-browser", store=lab["store"])
    doomed = row_id(lab["store"], lab["runs"] / "removed-in-the-browser")
    w = watched()
    page = w.open(f"/run/{doomed}", "body[data-ready]")
    shutil.rmtree(lab["runs"] / "removed-in-the-browser")
    page.click("#attention-form button")
    page.wait_for_selector("#message:not([hidden])")
    assert "was removed" in page.inner_text("#message")
    w.expect_failed_load(404)
    page.goto(server.base + "/runs")
    page.wait_for_selector("body[data-renders]", state="attached")
    assert page.locator(f"#runs tbody tr[data-key='{doomed}']").count() == 1  # the store still has its row
    w.check()


def test_the_screenshot(watched, lab, tmp_path):
    """The README's picture: a run page (written to docs/ui.png with UPDATE_SCREENSHOT=1)."""
    from toyformer import train

    run = lab["runs"] / "sweeps" / "widths" / "runs" / "d_model=16,seed=0"
    if os.environ.get("UPDATE_SCREENSHOT") == "1":  # a run that learned something, for a picture worth a look
        run = lab["runs"] / "shown"
        train(tiny("reverse", model={"d_model": 32, "n_layers": 2, "d_ff": 64}, train={"steps": 400},
                   eval={"every": 25, "val_size": 128, "test_size": 256}), out_dir=run)
    w = watched()
    page = w.open(f"/run/d:{run.relative_to(lab['runs']).as_posix()}", "body[data-ready]")
    page.set_viewport_size({"width": 1200, "height": 760})
    page.evaluate("document.getElementById('samples-section').scrollIntoView()")
    page.evaluate("window.scrollBy(0, -12)")
    cells = page.locator("#attention .nsewdrag")
    box = cells.bounding_box()
    n = page.evaluate("document.getElementById('attention').data[0].z.length")
    cells.hover(position={"x": 1.5 * box["width"] / n, "y": (n - 1.5) * box["height"] / n}, force=True)
    page.wait_for_selector("#attention .hoverlayer .hovertext", state="attached")
    shot = tmp_path / "ui.png"
    page.screenshot(path=str(shot))
    assert 10_000 < shot.stat().st_size < SCREENSHOT_MAX_BYTES, shot.stat().st_size
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "ui.png")
    w.check()


# ---- part 2: the runs table's tools, tune studies, explained runs --------------------------------

def test_a_page_of_many_runs_draws_the_rows_in_view_and_pages_on(browser, tmp_path_factory):
    from toyformer.bench.ui import fill_store
    from toyformer.ui import Background

    folder = tmp_path_factory.mktemp("many")
    fill_store(folder / "results.sqlite", 400)  # 400 recorded (ids 1..400) and 4 unrecorded runs
    with Background(store=folder / "results.sqlite", runs=folder, port=0) as base:
        w = Watched(browser, base)
        page = w.open("/runs", "body[data-ready]")
        assert page.inner_text("#count") == "404 runs" and "page 1 of 3" in page.inner_text("#pager")
        drawn = "[...document.querySelectorAll('#runs tbody tr[data-key]')].map(r => r.dataset.key)"
        keys = page.evaluate(drawn)
        assert keys[:5] == ["d:unrecorded/00400", "d:unrecorded/00401", "d:unrecorded/00402", "d:unrecorded/00403",
                            "400"] and 20 < len(keys) < 200  # the rows near the view, not the page's 200
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        wait_until(page, f"{drawn}.pop() === '205'")  # the page's last row (4 directories, then ids 400..205)
        page.check("#select-page")
        assert page.inner_text("#compare") == "compare selected (200)"  # the page's rows, drawn or not
        page.click("#pager button:has-text('next')")
        wait_until(page, "document.getElementById('pager').textContent.includes('page 2 of 3')")
        page.evaluate("window.scrollTo(0, 0)")
        wait_until(page, f"{drawn}[0] === '204'")
        w.check()


def test_the_runs_table_stats_groups_export_and_parallel_coordinates(watched, lab, server):
    w = watched()
    page = w.open("/runs", "body[data-ready]")
    page.fill("#where", "sweep = 'widths'")
    page.press("#where", "Enter")
    wait_until(page, "document.getElementById('count').textContent === '4 runs match'")
    cols = page.evaluate("[...document.querySelectorAll('#runs thead th')].map(th => th.textContent)")
    acc = cols.index("test_token_acc") + 1
    accs = [float(t) for t in page.locator(f"#runs tbody tr td:nth-child({acc})").all_inner_texts()]
    best = page.locator("#runs tfoot tr[data-stat='best'] td").nth(acc - 2)  # its label cell spans two columns
    assert float(best.inner_text().split()[0]) == pytest.approx(max(accs), abs=5e-4)
    assert best.locator("a").count() == 1  # the best run, linked
    em = page.locator("#runs tbody tr td").nth(cols.index("test_exact_match")).inner_text()
    assert "n=64" in em and "[" in em  # the value, its 95% interval and n
    page.select_option("#group", "*settings")
    wait_until(page, "document.querySelectorAll('#runs tr.group').length === 2")
    first_group = page.locator("#runs tr.group").first.inner_text()
    assert "model.d_model = 8" in page.inner_text("#runs") and "n=2" in first_group
    page.locator("#runs tr.group").first.click()  # collapsed: its header alone, the other group's runs still shown
    wait_until(page, "document.querySelectorAll('#runs tbody tr:not(.group)').length === 2")
    assert page.locator("#runs tr.group td").first.inner_text() == "▸" and "2 runs" in page.inner_text("#runs tr.group")
    page.locator("#runs tr.group").first.click()
    wait_until(page, "document.querySelectorAll('#runs tbody tr:not(.group)').length === 4")
    with page.expect_download() as download:
        page.click("#export-csv")
    text = open(download.value.path()).read()
    assert text.splitlines()[0].startswith("key,status,recorded_at") and len(text.splitlines()) == 5
    page.click("#parallel-block summary")
    wait_until(page, "+document.body.dataset.parallel >= 3")
    dims = page.evaluate("document.getElementById('parallel').data[0].dimensions.map(d => d.label)")
    assert page.evaluate("document.getElementById('parallel').data[0].type") == "parcoords"
    assert {"model.d_model", "seed", "test_token_acc"} <= set(dims)
    w.check()


def test_compare_by_every_setting_but_the_seed(watched, lab):
    keys = [row_id(lab["store"], p) for p in sorted((lab["runs"] / "sweeps" / "widths" / "runs").iterdir())]
    w = watched()
    page = w.open("/compare?" + "&".join(f"run={k}" for k in keys) + "&group=*settings", "body[data-ready]")
    names = page.evaluate("document.getElementById('curves').data.filter(t => !t.fill).map(t => t.name)")
    assert sorted(names) == ["model.d_model=16 (n=2)", "model.d_model=8 (n=2)"]
    rows = page.locator("#differing tbody tr").count()
    page.uncheck("#only-differing")
    assert page.locator("#differing tbody tr").count() > rows + 20  # every setting, side by side
    assert "n=64" in page.inner_text("#finals")
    w.check()


def test_a_study_page(watched, lab, server):
    runs = sorted((lab["runs"] / "sweeps" / "widths" / "runs").iterdir())
    folder = lab["runs"] / "tune" / "browsed"
    synthetic_study(folder, runs, name="browsed")
    for i, run in enumerate(runs[:3]):  # the best configuration re-measured on fresh seeds
        (folder / "best" / f"seed_{i}").mkdir(parents=True)
        shutil.copy(run / "summary.json", folder / "best" / f"seed_{i}" / "summary.json")
    w = watched()
    page = w.open("/tunes", "nav.top")
    wait_until(page, """(async () => (await (await fetch('/api/tunes')).json()).studies
                        .some(s => s.name === 'browsed'))()""")
    page.goto(w.base + "/tunes")
    href = "/tune?dir=" + urllib.parse.quote(str(folder.resolve()), safe="")
    assert page.locator(f"a[href='{href}']").inner_text() == "browsed"
    page.goto(w.base + href)
    page.wait_for_selector("#page[data-settled]", state="attached", timeout=90_000)
    traces = page.evaluate("document.getElementById('history').data.map(t => t.name)")
    assert traces == ["objective of a complete trial", "best so far", "pruned trial", "fail trial"]
    assert page.get_attribute("#page", "data-parallel") == "3"  # two searched keys and the objective
    assert "pruned at step 20" in page.text_content("#trials")
    assert "<script>alert('trial')</script> refused" in page.inner_text("#trials")  # as text
    assert page.locator("#trials script").count() == 0
    link = page.locator("#trials tbody tr").nth(1).locator("a")
    assert link.get_attribute("href") == f"/run/{row_id(lab['store'], runs[1])}" and "(best)" in link.inner_text()
    assert page.evaluate("document.getElementById('importances').data[0].y.length") == 2
    remeasured = page.inner_text("#remeasured")  # the seeds' mean exact match with its interval and examples
    assert "of 3 fresh seeds reached the target" in remeasured and "n=192" in remeasured
    assert "undefined" not in remeasured
    w.check()


def test_a_running_study_updates_without_a_reload(watched, lab):
    runs = sorted((lab["runs"] / "sweeps" / "widths" / "runs").iterdir())
    folder = lab["runs"] / "tune" / "live-study"
    study = synthetic_study(folder, runs, name="live-study", running=True)
    w = watched()
    page = w.open("/runs")
    wait_until(page, """(async () => (await (await fetch('/api/tunes')).json()).studies
                        .some(s => s.name === 'live-study'))()""")
    page.goto(w.base + "/tune?dir=" + str(folder.resolve()))
    page.wait_for_selector("#page[data-complete='3']", state="attached")
    assert "searching" in page.text_content("#state")
    page.evaluate("window.notReloaded = true")
    running = next(t for t in study.get_trials() if t.state.name == "RUNNING")
    study.tell(running.number, 8.0)
    page.wait_for_selector("#page[data-settled]", state="attached", timeout=30_000)
    assert page.evaluate("window.notReloaded === true") and page.get_attribute("#page", "data-complete") == "4"
    assert page.evaluate("document.getElementById('history').data[1].y.slice(-1)[0]") == 8.0  # the new best so far
    w.check()


def test_an_explained_run_page(watched, lab, explained):
    w = watched()
    page = w.open(f"/run/{row_id(lab['store'], explained['count'])}", "body[data-ready]")
    assert page.get_attribute("#page", "data-explained") == "yes"
    heads = page.locator("#head option").all_inner_texts()
    assert all(" · " in h for h in heads)  # each head with its role
    assert page.inner_text("#head-role").startswith("Head 0 of encoder.blocks.0.attn: ")
    changes = [abs(float(t)) for t in page.locator("#ablation tbody tr td:nth-child(4)").all_inner_texts()]
    assert len(changes) >= 3 and page.locator("#sentences li").count() >= 2
    assert page.evaluate("document.getElementById('probes').data.length") >= 2
    assert page.evaluate("document.getElementById('lens').data.length") == 2
    page.goto(w.base + f"/run/{row_id(lab['store'], explained['circuit'])}")
    page.wait_for_selector("body[data-ready]", state="attached")
    assert page.get_attribute("#page", "data-circuit") == "6/4"
    assert page.locator("#circuit b").count() == 0 and "<b>logits</b>" in page.inner_text("#circuit")
    assert "edge attribution patching" in page.inner_text("#circuit-facts")
    w.check()


def test_a_run_never_explained_names_the_command(watched, lab):
    w = watched()
    page = w.open(f"/run/{row_id(lab['store'], lab['runs'] / 'evil')}", "body[data-ready]")
    note = page.inner_text("#explain-note")
    assert f"toyformer explain {lab['runs'] / 'evil'}" in note
    assert page.locator("#explain-section button").count() == 0
    assert page.get_attribute("#page", "data-explained") == "no"
    w.check()


def test_the_docs_screenshots(watched, lab, explained, tmp_path):
    """The guide's pictures of a study page and an explained run page (written to docs/ with
    UPDATE_SCREENSHOT=1, from a real tune and a run that learned something)."""
    from toyformer import train
    from toyformer.experiments.tune import tune

    update = os.environ.get("UPDATE_SCREENSHOT") == "1"
    run, study = explained["count"], lab["runs"] / "tune" / "shots"
    if update:
        from toyformer.explain import explain

        run = lab["runs"] / "explained-shot"
        train(tiny("reverse", model={"d_model": 32, "n_layers": 2, "d_ff": 64}, train={"steps": 400},
                   eval={"every": 25, "val_size": 128, "test_size": 256}), out_dir=run, store=lab["store"])
        explain(run)
        tune(tiny("reverse", train={"steps": 300}, eval={"every": 25}), budget_s=240, trials=10,
             space={"train.lr": {"log": [3e-4, 3e-2]}, "model.d_model": {"choices": [16, 32]},
                    "train.warmup_steps": {"int": [0, 50]}}, out=study, store=lab["store"])
    else:
        synthetic_study(study, sorted((lab["runs"] / "sweeps" / "widths" / "runs").iterdir()), name="shots")
    w = watched()
    page = w.open("/runs")
    wait_until(page, """(async () => (await (await fetch('/api/tunes')).json()).studies
                        .some(s => s.dir.endsWith('/shots')))()""")
    key = row_id(lab["store"], run) if update else row_id(lab["store"], explained["count"])
    page.set_viewport_size({"width": 1200, "height": 900})  # before the charts are drawn: they fit it
    for path, ready, name, section in [(f"/tune?dir={study.resolve()}", "#page[data-settled]", "ui-tune.png", None),
                                       (f"/run/{key}", "body[data-ready]", "ui-explain.png", "attention-section")]:
        page.goto(w.base + path)
        page.wait_for_selector(ready, state="attached", timeout=60_000)
        if section:  # the attention viewer with the head's role, and what it learned below it
            page.evaluate(f"document.getElementById('{section}').scrollIntoView()")
        shot = tmp_path / name
        page.screenshot(path=str(shot))
        assert 10_000 < shot.stat().st_size < 2 * SCREENSHOT_MAX_BYTES, (name, shot.stat().st_size)
        if update:
            shutil.copyfile(shot, ROOT / "docs" / name)
    w.check()
