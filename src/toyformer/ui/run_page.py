"""The run page's HTML: the verdict and headline numbers, *solved* with its evidence, the
diagnosis and the config rendered here (every user string escaped); the learning curves (with
the phases ``toyformer explain`` found), test examples, the attention viewer (with each head's
role), embeddings, accuracy by length and position, and what the run learned (sentences,
ablations by effect, probe and logit-lens curves by layer, the circuit) drawn by ``run.js``.
"""

from __future__ import annotations

import types

from toyformer.report.html import Html, badge, esc, join, para, table
from toyformer.report.run_page import diagnosis_section, headline
from toyformer.ui import intervals
from toyformer.ui.pages import layout

STATUS = {"recorded": ("recorded", "info"), "training": ("training", "warn"), "stopped": ("stopped", "warn"),
          "unrecorded": ("not in the store", "info")}


def run_page(info: dict) -> str:
    cfg, summary, key = info["config"], info["summary"], info["key"]
    task = cfg.get("task") or {}
    params = ", ".join(f"{k}={v}" for k, v in task.items() if k != "name")
    title = f"{task.get('name', '?')} · {cfg.get('layout', '?')}"
    sub = f"run {key} · task {task.get('name')}({params}) · seed {cfg.get('seed')} · {info['run_dir']}"
    head = join(Html("<h1>"), esc(title), Html(" "), badge(*STATUS[info["status"]]),
                Html(f'</h1><div class="sub">{esc(sub)}</div>'),
                headline(types.SimpleNamespace(summary=summary, metrics=info["metrics"])))
    sections = [s for s in (solved_section(summary), diagnosis_section(summary)) if s is not None]
    sections = [s if isinstance(s, Html) else s.render() for s in sections]
    sections += [
        Html('<section id="curves-section"><h2>Learning curves</h2><div class="row"><label>x <select id="x">'
             '<option value="step">step</option><option value="wall_s">wall_s</option></select></label>'
             '<span id="live" class="muted"></span></div><div class="charts">'
             '<div id="curve-loss" class="chart half"></div><div id="curve-acc" class="chart half"></div>'
             '</div><p id="phases-note" class="muted"></p></section>'),
        Html('<div class="pair"><section id="samples-section"><h2>Test examples</h2><div id="samples" '
             'class="loading">loading the model ...</div></section>'
             '<section id="attention-section"><h2>Attention</h2><form id="attention-form" class="row" '
             'autocomplete="off"><label>test example <select id="example"></select></label>'
             '<label>or your input <input id="input" type="text" spellcheck="false" placeholder="space-separated '
             'tokens"></label><button type="submit">show</button><label>module <select id="module"></select></label>'
             '<label>head <select id="head"></select></label></form>'
             '<p id="attention-io" class="mono"></p><p id="head-role" class="role"></p>'
             '<div id="attention" class="chart square"></div>'
             '<p class="muted">Queries down, keys across; hover a cell for the query token, the key token and the '
             'weight.</p></section></div>'),
        Html('<section id="explain-section"><h2>What it learned</h2><div id="explain-note" class="muted">'
             'loading explain.json ...</div><ul id="sentences"></ul>'
             '<div id="circuit-block" hidden><h3>Circuit</h3><div id="circuit" class="chart"></div>'
             '<div id="circuit-facts"></div></div>'
             '<div id="roles-block" hidden><h3>Head roles</h3><div id="roles"></div></div>'
             '<div id="ablation-block" hidden><h3>Ablations, largest effect first</h3><p id="ablation-note" '
             'class="muted"></p><div id="ablation" class="tall"></div></div>'
             '<div class="charts"><div id="probes" class="chart half" hidden></div>'
             '<div id="lens" class="chart half" hidden></div></div></section>'),
        Html('<section id="embeddings-section"><h2>Embeddings</h2><div id="embeddings" class="charts"></div>'
             '</section>'),
        Html('<section id="breakdown-section"><h2>Accuracy by length and position</h2><div class="charts">'
             '<div id="by-position" class="chart half"></div><div id="by-length" class="chart half"></div></div>'
             '<p id="breakdown-note" class="muted"></p></section>'),
        config_section(cfg),
    ]
    return layout(title, join(*sections), "run.js", "", plotly=True, header=head,
                  data={"key": key, "status": info["status"]})


def test_text(summary: dict) -> str:
    """``0.9840 (95% CI 0.9712-0.9915, n=1000)``: a test exact match with its n and interval."""
    row = intervals.add_interval({intervals.METRIC: summary.get(intervals.METRIC)}, summary)
    value, n, lo, hi = row[intervals.METRIC], row[intervals.N], row[intervals.LO], row[intervals.HI]
    if value is None:
        return "—"
    if n is None:
        return f"{value:.4f} (n not recorded: a run from before test sizes were kept)"
    return f"{value:.4f} (95% CI {lo:.4f}-{hi:.4f}, n={n})"


def solved_section(summary: dict) -> Html | None:
    """Whether the run is *solved*, and the evidence: the confirmation set's size and errors and
    the bound they put on the error, the hold, the splits (with the note on a small domain), and
    the test exact match with its n and 95% interval."""
    if not summary:
        return None
    target = summary.get("target") or {}
    evidence = target.get("evidence") or {}
    splits = summary.get("splits") or {}
    solved = summary.get("solved")
    if solved is None:
        solved = summary.get("solved_at_step") is not None
    kind = "good" if solved else "bad"
    goal = (f"validation {target.get('metric')} >= {target.get('value')}" if target.get("value") is not None
            else "no target set (eval.target)")
    if target.get("hold"):
        goal += f", held for {target['hold']} evaluations in a row"
    rows = [["target", goal], ["test exact match", test_text(summary)]]
    if evidence:
        how = ("every held-out input, counted" if evidence.get("exhaustive")
               else "a sample: one-sided 95% Clopper-Pearson bound of the error")
        bound = evidence.get("error_bound")
        rows += [["confirmation set", f"{evidence.get('n')} examples, {evidence.get('errors')} wrong ({how})"],
                 ["error at most", "—" if bound is None else f"{bound:.5f}"]]
    elif solved is False and target.get("value") is not None:
        rows.append(["evidence", "the target was not confirmed at any evaluation"])
    if solved and summary.get("solved_at_step") is not None:
        at_s = summary.get("solved_at_s")
        rows.append(["solved at", f"step {summary['solved_at_step']}"
                     + (f", {at_s:.2f} s" if isinstance(at_s, (int, float)) else "")])
    if splits:
        sizes = ", ".join(f"{k} {v}" for k, v in splits.items() if k not in ("note", "exhaustive") and v is not None)
        rows.append(["splits", sizes + (" (a finite domain: held-out inputs counted)" if splits.get("exhaustive")
                                        else "")])
    parts = [Html(f'<p class="verdict">{badge("solved" if solved else "not solved", kind)}</p>'),
             table(["", ""], rows, "mono")]
    if splits.get("note"):
        parts.append(para(splits["note"], "note"))
    return Html(f'<section id="solved-section"><h2>Solved?</h2>{join(*parts)}</section>')


def config_section(cfg: dict) -> Html:
    """The run's config, one small table per section (from ``config.json`` as it is)."""
    groups = {"run": [[k, v] for k, v in cfg.items() if not isinstance(v, dict)]}
    groups.update({k: [[kk, vv] for kk, vv in v.items()] for k, v in cfg.items() if isinstance(v, dict)})
    blocks = "".join(f"<div><h3>{esc(name)}</h3>{table(['key', 'value'], rows, 'mono')}</div>"
                     for name, rows in groups.items())
    return Html(f'<section id="config-section"><h2>Configuration</h2><div class="grid">{blocks}</div></section>')
