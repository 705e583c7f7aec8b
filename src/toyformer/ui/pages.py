"""The HTML of the results browser's pages: a shell per page, rendered on the server with every
user string escaped (``toyformer.report.html.esc``), whose tables and charts the page's own script
fills from the JSON endpoints. No inline script, no inline event handler: the Content-Security-
Policy allows scripts from the server only (``/static``: the page scripts and Plotly.js, served
from the plotly package).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from toyformer.report.html import Html, esc, join, para, table

STATIC = Path(__file__).parent / "static"

NAV = (("runs", "/runs", "Runs"), ("compare", "/compare", "Compare"), ("sweeps", "/sweeps", "Sweeps"),
       ("tunes", "/tunes", "Tune"))


@functools.cache
def static(name: str) -> str:
    """The URL of the page file ``name``, versioned by its content (``?v=`` a digest): a browser
    may keep it (``app.SecurityHeaders``), and a changed file is a new URL."""
    return f"/static/{name}?v={hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]}"


def layout(title: str, body: Html, script: str | None, active: str = "", plotly: bool = False, data: dict | None = None,
           header: Html | None = None) -> str:
    """The whole page. ``data``: values for the page's script, as escaped ``data-*`` attributes of
    ``<main>``; ``script``: its file under ``/static``."""
    current = ' class="active"'
    nav = "".join(f'<a href="{href}"{current if name == active else ""}>{label}</a>' for name, href, label in NAV)
    attrs = "".join(f' data-{esc(k)}="{esc(v)}"' for k, v in (data or {}).items() if v is not None)
    scripts = ('<script src="/static/plotly.min.js"></script>' if plotly else "") + \
        f'<script src="{static("common.js")}"></script>' + \
        (f'<script src="{esc(static(script))}"></script>' if script else "")
    head = header if header is not None else Html(f"<h1>{esc(title)}</h1>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{esc(title)} · toyformer</title><link rel="stylesheet" href="{static("ui.css")}">'
            '<link rel="icon" href="data:,"></head><body>'
            f'<nav class="top"><div class="wrap"><span class="brand">toyformer</span>{nav}</div></nav>'
            f'<header><div class="wrap">{head}</div></header>'
            f'<main id="page"{attrs}><div class="wrap"><div id="message" class="message" role="alert" hidden></div>'
            f"{body}</div></main>{scripts}</body></html>\n")


def runs_page() -> str:
    body = Html("""
<section class="controls">
  <form id="filter" autocomplete="off">
    <input id="where" name="where" type="text" spellcheck="false"
           placeholder="filter, e.g. task.name = 'reverse' and model.d_model >= 64   (as toyformer results --where)">
    <button type="submit">Filter</button>
  </form>
  <div class="row">
    <label>group by <select id="group"><option value="">(none)</option>
      <option value="*settings">every setting but the seed</option></select></label>
    <details id="chooser"><summary>columns</summary><div id="columns" class="checks"></div></details>
    <span id="count" class="muted"></span>
    <a id="compare" class="button disabled" href="/compare">compare selected (0)</a>
    <button id="clear" type="button">clear selection</button>
    <span class="muted">export the filtered runs:</span>
    <a id="export-csv" class="button" href="/api/runs/export?format=csv" download>CSV</a>
    <a id="export-json" class="button" href="/api/runs/export?format=json" download>JSON</a>
  </div>
</section>
<section><div class="scroll"><table id="runs" class="runs"><thead></thead><tbody></tbody><tfoot></tfoot></table>
</div><div id="pager" class="pager"></div>
<p class="muted">Test exact match: the value, its 95% interval (Wilson) and n, the test examples it was measured
on. Under the table: the minimum, maximum and best of each numeric column over the filtered runs (best: the
highest accuracy, the lowest loss or time); a group's row shows the mean, its 95% interval and n over its runs.</p>
</section>
<section><details id="parallel-block"><summary>Parallel coordinates of the filtered runs (the shown columns)</summary>
<div class="row"><label>colour by <select id="parallel-color"></select></label><span id="parallel-note" class="muted">
</span></div><div id="parallel" class="chart"></div></details></section>""")
    return layout("Runs", body, "runs.js", "runs")


def compare_page(keys: list[str], group: str) -> str:
    body = Html("""
<section class="controls"><div class="row">
  <label>metric <select id="metric"></select></label>
  <label>x <select id="x"><option value="step">step</option><option value="wall_s">wall_s</option></select></label>
  <label>group by <select id="group"><option value="">(none: one line per run)</option></select></label>
  <span id="count" class="muted"></span>
</div></section>
<section><h2>Learning curves</h2><div id="curves" class="chart"></div>
<p class="muted" id="curves-note"></p></section>
<section><h2>Settings side by side</h2><label><input id="only-differing" type="checkbox" checked> only the settings
that differ</label><div id="differing"></div></section>
<section><h2>Final metrics</h2><div id="finals"></div></section>""")
    return layout("Compare runs", body, "compare.js", "compare", plotly=True,
                  data={"runs": json.dumps(keys), "group": group})


def sweeps_page(sweeps: list[dict]) -> str:
    if not sweeps:
        body = para("No sweep in the results store yet: run `toyformer sweep SPEC` to make one.", "muted")
    else:
        rows = [[Html(f'<a href="/sweep?name={esc(_url(s["name"]))}">{esc(s["name"])}</a>'), s["points"], s["runs"],
                 s["last"], s["dir"] or "(directory not found)"] for s in sweeps]
        body = table(["sweep", "points", "runs", "last recorded", "directory"], rows)
    return layout("Sweeps", Html(f'<section>{body}</section>'), None, "sweeps")


def sweep_page(info: dict) -> str:
    body = Html("""
<section class="controls"><div class="row">
  <label>rows <select id="rows"></select></label>
  <label>columns <select id="cols"><option value="">(none)</option></select></label>
  <label>value <select id="value"></select></label>
</div></section>
<section><h2>Table</h2><div id="pivot"></div>
<p class="muted">Each cell: the mean over its runs (seeds, replicas) ± the half-width of the 95% confidence
interval, and n. Click a cell to compare its runs.</p></section>
<section><h2>Plots</h2><div id="plots" class="charts"></div></section>
<section><h2>Points</h2><div id="points"></div></section>""")
    sub = f"{info['runs']} runs · {info['dir'] or 'sweep directory not found'}"
    head = join(Html("<h1>Sweep "), esc(info["name"]), Html(f'</h1><div class="sub">{esc(sub)}</div>'))
    return layout(f"Sweep {info['name']}", body, "sweep.js", "sweeps", plotly=True, header=head,
                  data={"name": info["name"]})


def tunes_page(studies: list[dict]) -> str:
    if not studies:
        body = para("No tune study here yet: run `toyformer tune TASK --out runs/tune/NAME` (a tune directory "
                    "under the runs folder, or recorded in the results store) to make one.", "muted")
    else:
        rows = []
        for s in studies:
            counts = s.get("counts") or {}
            state = "searching" if s["running"] else ("unreadable" if s.get("error") else "finished or stopped")
            rows.append([Html(f'<a href="/tune?dir={esc(_url(s["dir"]))}">{esc(s["name"])}</a>'), s.get("task"),
                         s.get("layout"), counts.get("COMPLETE"), counts.get("PRUNED"), counts.get("FAIL"),
                         counts.get("RUNNING"), s.get("best"), s.get("error") or state, s["dir"]])
        body = table(["study", "task", "layout", "complete", "pruned", "failed", "running", "best value", "state",
                      "directory"], rows, "mono")
    return layout("Tune studies", Html(f"<section>{body}</section>"), None, "tunes")


def tune_page(info: dict) -> str:
    body = Html("""
<section><h2>Optimisation history</h2><div id="history" class="chart"></div>
<p class="muted" id="history-note"></p></section>
<div class="charts"><section class="half"><h2>Parameter importances</h2><div id="importances" class="chart"></div>
<p class="muted" id="importances-note"></p></section>
<section class="half"><h2>What each trial reported to the pruner</h2><div id="reported" class="chart"></div>
<p class="muted" id="reported-note"></p></section></div>
<section><h2>Parallel coordinates</h2><div id="parallel" class="chart"></div>
<p class="muted">One line per complete trial: its searched values and its objective (colour). Drag along an axis
to keep the trials in a range.</p></section>
<section><h2>The best trial, re-measured on fresh seeds</h2><div id="remeasured"></div></section>
<section><h2>Trials</h2><div id="trials"></div></section>""")
    counts = info["counts"]
    objective = info.get("objective") or "(not known until tune.json is written)"
    sub = (f"{info.get('task')} · {info.get('layout')} · objective {objective} · {counts['COMPLETE']} complete, "
           f"{counts['PRUNED']} pruned, {counts['FAIL']} failed, {counts['RUNNING']} running · {info['dir']}")
    head = join(Html("<h1>Tune "), esc(info["name"]), Html(' <span id="state"></span>'),
                Html(f'</h1><div class="sub">{esc(sub)}</div>'))
    return layout(f"Tune {info['name']}", body, "tune.js", "tunes", plotly=True, header=head,
                  data={"dir": info["dir"]})


def error_page(message: str, status: int) -> str:
    body = Html(f'<section><p class="error-text">{esc(message)}</p><p><a href="/runs">back to the runs</a></p>'
                "</section>")
    return layout("Not found" if status == 404 else "Error", body, None)


def _url(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
