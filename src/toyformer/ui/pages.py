"""The HTML of the results browser's pages: a shell per page, rendered on the server with every
user string escaped (``toyformer.report.html.esc``), whose tables and charts the page's own script
fills from the JSON endpoints. No inline script, no inline event handler: the Content-Security-
Policy allows scripts from the server only (``/static``: the page scripts and Plotly.js, served
from the plotly package).
"""

from __future__ import annotations

import json
import types

from toyformer.report.explain_section import circuit_parts
from toyformer.report.html import Html, badge, esc, join, para, table
from toyformer.report.run_page import diagnosis_section, headline

NAV = (("runs", "/runs", "Runs"), ("compare", "/compare", "Compare"), ("sweeps", "/sweeps", "Sweeps"))


def layout(title: str, body: Html, script: str | None, active: str = "", plotly: bool = False, data: dict | None = None,
           header: Html | None = None) -> str:
    """The whole page. ``data``: values for the page's script, as escaped ``data-*`` attributes of
    ``<main>``; ``script``: its file under ``/static``."""
    current = ' class="active"'
    nav = "".join(f'<a href="{href}"{current if name == active else ""}>{label}</a>' for name, href, label in NAV)
    attrs = "".join(f' data-{esc(k)}="{esc(v)}"' for k, v in (data or {}).items() if v is not None)
    scripts = ('<script src="/static/plotly.min.js"></script>' if plotly else "") + \
        '<script src="/static/common.js"></script>' + \
        (f'<script src="/static/{esc(script)}"></script>' if script else "")
    head = header if header is not None else Html(f"<h1>{esc(title)}</h1>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{esc(title)} · toyformer</title><link rel="stylesheet" href="/static/ui.css">'
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
    <label>group by <select id="group"><option value="">(none)</option></select></label>
    <details id="chooser"><summary>columns</summary><div id="columns" class="checks"></div></details>
    <span id="count" class="muted"></span>
    <a id="compare" class="button disabled" href="/compare">compare selected (0)</a>
    <button id="clear" type="button">clear selection</button>
  </div>
</section>
<section><div class="scroll"><table id="runs" class="runs"><thead></thead><tbody></tbody></table></div>
<div id="pager" class="pager"></div></section>""")
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
<section><h2>Config keys that differ</h2><div id="differing"></div></section>
<section><h2>Final metrics</h2><div id="finals"></div></section>""")
    return layout("Compare runs", body, "compare.js", "compare", plotly=True,
                  data={"runs": json.dumps(keys), "group": group})


def run_page(info: dict) -> str:
    """The run page: verdict, headline numbers and diagnosis rendered here; curves, examples,
    attention, embeddings and accuracy by length and position drawn by ``run.js``."""
    cfg, summary, key = info["config"], info["summary"], info["key"]
    task = cfg.get("task") or {}
    params = ", ".join(f"{k}={v}" for k, v in task.items() if k != "name")
    title = f"{task.get('name', '?')} · {cfg.get('layout', '?')}"
    sub = f"run {key} · task {task.get('name')}({params}) · seed {cfg.get('seed')} · {info['run_dir']}"
    status = {"recorded": ("recorded", "info"), "training": ("training", "warn"), "stopped": ("stopped", "warn"),
              "unrecorded": ("not in the store", "info")}[info["status"]]
    head = join(Html("<h1>"), esc(title), Html(" "), badge(*status), Html(f'</h1><div class="sub">{esc(sub)}</div>'),
                headline(types.SimpleNamespace(summary=summary, metrics=info["metrics"])))
    diagnosis = diagnosis_section(summary)
    sections = [Html('<section id="curves-section"><h2>Learning curves</h2><div class="row"><label>x <select id="x">'
                     '<option value="step">step</option><option value="wall_s">wall_s</option></select></label>'
                     '<span id="live" class="muted"></span></div><div class="charts">'
                     '<div id="curve-loss" class="chart half"></div><div id="curve-acc" class="chart half"></div>'
                     '</div></section>')]
    if diagnosis is not None:
        sections.insert(0, diagnosis.render())
    sections += [
        Html('<div class="pair"><section id="samples-section"><h2>Test examples</h2><div id="samples" '
             'class="loading">loading the model ...</div></section>'
             '<section id="attention-section"><h2>Attention</h2><form id="attention-form" class="row" '
             'autocomplete="off"><label>test example <select id="example"></select></label>'
             '<label>or your input <input id="input" type="text" spellcheck="false" placeholder="space-separated '
             'tokens"></label><button type="submit">show</button><label>module <select id="module"></select></label>'
             '<label>head <select id="head"></select></label></form>'
             '<p id="attention-io" class="mono"></p><div id="attention" class="chart square"></div>'
             '<p class="muted">Queries down, keys across; hover a cell for the query token, the key token and the '
             'weight.</p></section></div>'),
        Html('<section id="embeddings-section"><h2>Embeddings</h2><div id="embeddings" class="charts"></div>'
             '</section>'),
        Html('<section id="breakdown-section"><h2>Accuracy by length and position</h2><div class="charts">'
             '<div id="by-position" class="chart half"></div><div id="by-length" class="chart half"></div></div>'
             '<p id="breakdown-note" class="muted"></p></section>'),
        circuit_section(info.get("explain")),
        config_section(cfg),
    ]
    return layout(title, join(*sections), "run.js", "", plotly=True, header=head,
                  data={"key": key, "status": info["status"]})


def circuit_section(explained: dict | None) -> Html:
    """The circuit of ``toyformer explain --circuit`` (its graph and table), or how to get one."""
    parts = circuit_parts(explained or {})
    if not parts:
        parts = [None, para("Not measured yet: `toyformer explain RUN_DIR --circuit` finds the smallest faithful and "
                            "complete circuit under each ablation and draws it here.", "muted")]
    return join(Html('<section id="circuit-section"><h2>Circuit</h2>'), *parts[1:], Html("</section>"))


def config_section(cfg: dict) -> Html:
    """The run's config, one small table per section (from ``config.json`` as it is)."""
    groups = {"run": [[k, v] for k, v in cfg.items() if not isinstance(v, dict)]}
    groups.update({k: [[kk, vv] for kk, vv in v.items()] for k, v in cfg.items() if isinstance(v, dict)})
    blocks = "".join(f"<div><h3>{esc(name)}</h3>{table(['key', 'value'], rows, 'mono')}</div>"
                     for name, rows in groups.items())
    return Html(f'<section id="config-section"><h2>Configuration</h2><div class="grid">{blocks}</div></section>')


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


def error_page(message: str, status: int) -> str:
    body = Html(f'<section><p class="error-text">{esc(message)}</p><p><a href="/runs">back to the runs</a></p>'
                "</section>")
    return layout("Not found" if status == 404 else "Error", body, None)


def _url(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
