"""A run's report: ``report.html``, one self-contained page (see ``html.py`` for its parts)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toyformer.report.html import (Html, Section, badge, cards, esc, figure, join, para, plain, table, tokens,
                                   write)
from toyformer.eval.diagnosis import reached_target
from toyformer.report.explain_section import explain_section, phase_marks
from toyformer.report.tried import final_text, tried_block
from toyformer.run import load_run
from toyformer.run.directory import read_metrics
from toyformer.stats import accuracy_text
from toyformer.tasks.base import SPECIALS

METRIC_ROWS = 60  # the metrics table shows at most this many evaluations (evenly spaced)


def write_report(run_dir: str | Path, out: str | Path | None = None, device: str | None = None) -> Path:
    """Write ``report.html`` for a run directory (finished, or in progress from its checkpoint).

    >>> toyformer.write_report("runs/rev")         # doctest: +SKIP
    PosixPath('runs/rev/report.html')
    """
    title, subtitle, headline, sections = run_page(run_dir, device)
    return write(Path(out) if out else Path(run_dir) / "report.html", title, headline, sections, subtitle)


def run_page(run_dir: str | Path, device: str | None = None) -> tuple[str, str, Html, list[Section]]:
    """Title, subtitle, headline and sections for the run in ``run_dir``."""
    run = load_run(run_dir, device=device)
    cfg, summary = run.config, run.summary
    if not run.metrics:
        run.metrics = read_metrics(Path(run_dir))
    title = f"{cfg.task.name} · {cfg.layout}"
    params = ", ".join(f"{k}={v}" for k, v in cfg.task.params.items())
    subtitle = f"task {cfg.task.name}({params}) · {cfg.layout} layout · seed {cfg.seed} · {run_dir}"
    sections = [
        diagnosis_section(summary, run_dir),
        curves_section(run),
        samples_section(run),
        explain_section(run, run_dir),
        attention_section(run),
        embeddings_section(run),
        breakdown_section(run),
        task_section(run),
        config_section(cfg),
        metrics_section(run.metrics),
    ]
    return title, subtitle, headline(run), [s for s in sections if s is not None]


def verdict(summary: dict, metrics: list[dict]) -> tuple[str, str, str]:
    """``(badge text, badge kind, sentence)`` for the headline, each built from the run's numbers:
    "solved" only when the summary says so (``eval/solved.py``), on the evidence it names; a
    summary written before it said so: when validation reached the target and test did too."""
    target = summary.get("target") or {}
    metric, goal = target.get("metric", "exact_match"), target.get("value")
    if not summary:
        step = metrics[-1]["step"] if metrics else 0
        return "in progress", "info", f"Not finished: last checkpoint at step {step}."
    test = summary.get(f"test_{metric}")
    tested = test_text(summary, metric)
    goal_text = f"target {goal:g}" if goal is not None else "goal 1.0"
    goal = 1.0 if goal is None else goal
    note = f" Note: {summary['splits']['note']}." if (summary.get("splits") or {}).get("note") else ""
    if summary.get("diverged"):
        d = summary["diverged"]
        kept = f"those of step {d['weights_from_step']}" if d.get("weights_from_step") else "the initial ones"
        return ("diverged", "bad", f"Diverged at step {d['step']}: the training loss was NaN or infinite; the weights "
                f"are {kept}. {tested[0].upper() + tested[1:]} ({goal_text}).")
    step = summary.get("solved_at_step")
    if "solved" in summary and summary["solved"]:
        evidence = evidence_text(target, summary.get("splits"))
        return "solved", "good", (f"Solved at step {step} in {_num(summary.get('solved_at_s'), '.2f')} s: "
                                  f"validation {metric} reached {goal:g} with {evidence}; {tested}.{note}")
    if step is not None and "solved" not in summary:  # a summary from before solved was decided on evidence
        seconds = _num(summary.get("solved_at_s"), ".2f")
        reached = f"Reached validation {metric} ≥ {goal:g} at step {step} in {seconds} s"
        if test is not None and test >= goal:
            return "solved", "good", f"{reached}; {tested}."
        return "not solved on test", "warn", f"{reached}, but {tested} is below it."
    steps = summary.get("steps")
    if not summary.get("diagnosis"):
        if target.get("value") is None and test is not None and test >= 1.0:
            return "finished", "info", f"Ran {steps} steps without an early-stop target; {tested}."
        return "finished", "info", f"Ran {steps} steps; {tested} ({goal_text}); no diagnosis recorded.{note}"
    first = summary["diagnosis"][0]["title"]
    return "not solved", "bad", f"{tested[0].upper() + tested[1:]} ({goal_text}) after {steps} steps. {first}.{note}"


def test_text(summary: dict, metric: str) -> str:
    """``test exact_match 0.9990 (n=2,000, 95% CI 0.9964-0.9997)``: the test number with its size and
    interval (exact match; the summary's own)."""
    value = summary.get(f"test_{metric}")
    if value is None:
        return f"no test {metric}"
    if metric == "exact_match" and summary.get("test_exact_match_ci95"):
        return f"test {metric} {accuracy_text(value, summary['test_exact_match_ci95'], summary.get('test_n'))}"
    return f"test {metric} {value:.4f}"


def evidence_text(target: dict, splits: dict | None) -> str:
    """What a solve rests on, in words, from the summary's ``target`` (``evidence``: n, errors,
    exhaustive, error_bound; ``hold``) and ``splits``: "no error in 2,995 validation rows: error
    <= 0.1% (95%)" for a sample, "all 76 held-out inputs right, counted" for a finite domain."""
    e = target.get("evidence")
    if not e:
        return "evidence not recorded"
    tokens = target.get("metric") == "token_acc"
    splits = splits or {}
    if not e["exhaustive"]:
        rows = "validation answer tokens" if tokens else "validation rows"
        errors = "no error" if e["errors"] == 0 else f"{e['errors']:,} error{'s' if e['errors'] > 1 else ''}"
        text = f"{errors} in {e['n']:,} {rows}: error <= {_percent(e['error_bound'])} (95%)"
    else:
        whole = splits.get("train") is None and splits.get("domain") is not None
        inputs = ("answer tokens of the domain's inputs" if whole else "held-out answer tokens") if tokens else (
            "inputs of the domain" if whole else "held-out inputs")
        text = (f"all {e['n']:,} {inputs} right, counted" if e["errors"] == 0 else
                f"{e['errors']:,} of {e['n']:,} {inputs} wrong, counted: error {_percent(e['error_bound'])}")
    hold = target.get("hold")
    return text + (f", held for {hold} evaluations in a row" if hold and hold > 1 else "")


def _percent(rate: float) -> str:
    return f"{100 * rate:.2g}%"


def headline(run) -> Html:
    s = run.summary
    text, kind, sentence = verdict(s, run.metrics)
    parts = [Html(f'<div class="verdict">{badge(text, kind)}<span>{esc(sentence)}</span></div>')]
    if s:
        solved = s.get("solved_at_s") if kind == "good" else None
        ci = s.get("test_exact_match_ci95")
        n_test = (f"n={s['test_n']:,}" + (f" · 95% CI {ci[0]:.4f}-{ci[1]:.4f}" if ci else "")
                  if s.get("test_n") is not None else "")
        parts.append(cards([
            ("time to solve", f"{solved:.2f} s" if solved is not None else "—",
             f"step {s['solved_at_step']}" if solved is not None
             else "no early-stop target" if (s.get("target") or {}).get("value") is None else "target not reached"),
            ("test exact match", _num(s.get("test_exact_match")), n_test),
            ("test token accuracy", _num(s.get("test_token_acc")), "per answer token"),
            ("train loss", s.get("train_loss"), f"chance {s['chance']['chance_loss']:.3g}" if s.get("chance") else ""),
            ("steps", s.get("steps"), f"diverged at step {s['diverged']['step']}" if s.get("diverged")
             else f"{_num(s.get('wall_s'), '.2f')} s wall"),
            ("parameters", f"{s['params']:,}", s.get("device", "")),
        ]))
    return join(*parts)


def _num(value, spec: str = ".4f") -> str:
    return "—" if value is None else format(value, spec)


def diagnosis_section(summary: Mapping[str, Any], run_dir: str | Path | None = None) -> Section | None:
    if not summary:
        return None
    tried = tried_block(Path(run_dir) / "try.json") if run_dir is not None else None
    findings = summary.get("diagnosis") or []
    if not findings:
        step = summary.get("solved_at_step")
        text = (f"The run reached its validation target at step {step}: nothing to diagnose." if step is not None
                else "The run reached test 1.0 with no early-stop target: nothing to diagnose."
                if reached_target(summary) else "No diagnosis was recorded for this run.")
        return Section("Diagnosis", para(text, "muted"))
    blocks = []
    for f in findings:
        evidence = table(["measurement", "value"], [[k, _show(v)] for k, v in f["evidence"].items()], "mono")
        rows = [[Html(f'<span class="suspect">{esc(r["key"])}</span>') if r["suspect"] else r["key"],
                 _show(r["value"]), _status(r), r["why"]] for r in f["settings"]]
        settings = table(["setting", "now", "suspect or measured", "why it matters"], rows)
        mild = " mild" if f["symptom"] in ("still_improving", "unexplained") else ""
        blocks.append(join(Html(f'<div class="finding{mild}"><h3>'), esc(f["title"]), Html("</h3>"),
                           para(f["detail"]), Html("<h3>Evidence</h3>"), evidence,
                           Html("<h3>Settings known to matter</h3>"), settings, Html("</div>")))
    return Section("Diagnosis", join(*blocks, *([tried] if tried is not None else [])))


def _status(setting: dict) -> str:
    """"measured: fixes it (3/3 seeds, ...)" after ``toyformer diagnose --try``, else "likely" for a suspect."""
    m = setting.get("measured")
    if m is None:
        return "likely" if setting["suspect"] else ""
    when = f", {m['solved_at_s']['mean']:.1f} s to solve over those" if m.get("solved_at_s") else ""
    return (f"measured: {m['verdict']} ({m['change']}: {m['solved']}/{m['seeds']} seeds reached the target{when}; "
            f"final {final_text(m)})")


def _show(value) -> str:
    """Plain text for a table cell (the table escapes it)."""
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value)
    return plain(value)


def curves_section(run) -> Section | None:
    from toyformer.inspect.plots import curves_figure

    if not run.metrics:
        return None
    fig = curves_figure(run.metrics, run.summary, run.config.layout, phase_marks(run.run_dir))
    note = para("Training numbers are running averages since the previous evaluation (dropout on); "
                "validation numbers come from the held-out set. For the decoders validation exact match is "
                "measured on greedy decoding. After `toyformer explain` the steps at which the run memorised and "
                "generalised are flagged.", "muted")
    return Section("Learning curves", join(figure(fig, "learning curves"), note))


def samples_section(run) -> Section:
    from toyformer.inspect.capture import samples

    rows = [[r["input"], r["target"], r["output"],
             Html('<span class="ok">✓</span>' if r["correct"] else '<span class="no">✗</span>')]
            for r in samples(run, 8)]
    return Section("Test examples", table(["input", "target", "model output", ""], rows, "mono"))


def attention_section(run) -> Section | None:
    from toyformer.inspect.capture import attention
    from toyformer.inspect.plots import attention_figure

    if run.config.model.family != "transformer":  # an LSTM has no attention to draw
        return None
    maps = attention(run, run.splits.test[:1])
    note = para("Test example 0. One row per attention module (layer), one column per head. Draw another example "
                "with `toyformer plot RUN_DIR --what attention --sample I` or `--input \"...\"`.", "muted")
    return Section("Attention", join(figure(attention_figure(maps, 0), "attention maps"), note))


def embeddings_section(run) -> Section | None:
    from toyformer.inspect.capture import embeddings
    from toyformer.inspect.plots import embeddings_figure

    if run.config.model.family != "transformer":  # an LSTM reads one-hot tokens: no embedding table
        return None
    return Section("Embeddings", figure(embeddings_figure(embeddings(run)), "embeddings in 2-D"))


def breakdown_section(run) -> Section:
    from toyformer.eval.evaluate import by_length, by_position, evaluate_examples
    from toyformer.inspect.plots import by_length_figure, by_position_figure

    s, cfg = run.summary, run.config
    bp, bl = s.get("test_by_position"), s.get("test_by_length")
    if bp is None or bl is None:  # an unfinished run: measure now
        test = evaluate_examples(run.model, run.splits.test, cfg.layout, cfg.data.sep, cfg.eval.batch_size, run.device)
        bp, bl = by_position(test), by_length(test)
    parts = [figure(by_position_figure(bp, s.get("chance")), "accuracy by answer position")]
    if len(bp["position"]) <= 40:
        acc = [f"{a:.3f}" for a in bp["token_acc"]]
        parts.append(table(["position", *bp["position"]], [["token accuracy", *acc], ["tokens", *bp["n"]]]))
    if len(bl["length"]) > 1:
        parts.append(figure(by_length_figure(bl), "accuracy by input length"))
    rows = [[n, k, f"{a:.4f}", f"{e:.4f}"] for n, k, a, e in zip(bl["length"], bl["n"], bl["token_acc"],
                                                                 bl["exact_match"])]
    parts.append(Html("<h3>By input length</h3>"))
    parts.append(table(["input length", "examples", "token accuracy", "exact match"], rows[:100]))
    if len(bl["length"]) == 1:
        parts.append(para(f"Every test input has {bl['length'][0]} tokens.", "muted"))
    return Section("Accuracy by position and length", join(*parts), "breakdown")


def task_section(run) -> Section:
    task, cfg = run.task, run.config
    vocab = task.vocab.tokens[len(SPECIALS):]
    rows = [["name", cfg.task.name], ["kind", getattr(task, "kind", "")],
            ["description", getattr(task, "description", "")]] + [[k, v] for k, v in cfg.task.params.items()]
    return Section("Task", join(table(None, rows), Html(f"<h3>Vocabulary ({len(vocab)} tokens)</h3>"), tokens(vocab)))


def config_section(cfg) -> Section:
    """The complete config, one small table per section side by side."""
    groups = {"run": [["layout", cfg.layout], ["seed", cfg.seed], ["device", cfg.device]]}
    for section, values in cfg.to_dict().items():
        if isinstance(values, dict):
            groups[section] = [[k, v] for k, v in values.items()]
    blocks = "".join(f"<div><h3>{esc(name)}</h3>{table(['key', 'value'], rows, 'mono')}</div>"
                     for name, rows in groups.items())
    return Section("Configuration", Html(f'<div class="grid">{blocks}</div>'))


def metrics_section(metrics: list[dict]) -> Section | None:
    if not metrics:
        return None
    step = max(1, -(-len(metrics) // METRIC_ROWS))
    shown = metrics[::step] if metrics[-1] is metrics[::step][-1] else metrics[::step] + [metrics[-1]]
    keys = [k for k in metrics[0] if k != "wall_s"] + ["wall_s"]
    rows = [[r.get(k) for k in keys] for r in shown]
    plural = "s" if len(metrics) != 1 else ""
    note = (f"{len(shown)} of {len(metrics)} evaluations" if len(shown) < len(metrics)
            else f"{len(metrics)} evaluation{plural}")
    body = Html(f"<details><summary>{esc(note)}</summary>{table(keys, rows, 'mono')}</details>")
    return Section("Metrics log", body, "metrics")
