"""A sweep's files: ``sweep.json``, ``table.md``, its plots (PNG and SVG) and ``report.html``."""

from __future__ import annotations

import json
from pathlib import Path

from toyformer import report
from toyformer.files import write_json, write_text
from toyformer.experiments.store.table import fmt, short
from toyformer.stats import accuracy_text


def write_outputs(result) -> None:
    """Write every output of a ``SweepResult`` into its sweep directory (atomically, file by file)."""
    out = result.out
    out.mkdir(parents=True, exist_ok=True)
    figures = _plots(result)
    md = [f"# Sweep {result.spec.name}", ""]
    md += [result.table.markdown() if result.table else "No point finished.", ""]
    if result.failed:
        md += ["Failed points:", ""] + [f"- {p.point.name}: {p.error}" for p in result.failed] + [""]
    write_text(out / "table.md", "\n".join(md))
    write_json(out / "sweep.json", result.to_dict())
    write_text(out / "report.html", _page(result, figures))


def _plots(result) -> list[tuple[str, bytes]]:
    """Save the spec's plots as PNG and SVG; return (title, png bytes) for the report."""
    from toyformer.inspect.plots import png_bytes, save
    from toyformer.experiments.store.plot import metric_figure

    rows = result.rows()
    shown: list[tuple[str, bytes]] = []
    if not rows:
        return shown
    for plot in result.spec.plots:
        fig = metric_figure(rows, plot["x"], plot["y"], plot.get("lines"))
        stem = f"{short(plot['y'])}_by_{short(plot['x'])}"
        stem += f"_per_{short(plot['lines'])}" if plot.get("lines") else ""
        for suffix in (".png", ".svg"):
            result.plots.append(save(fig, result.out / f"{stem}{suffix}"))
        shown.append((stem.replace("_", " "), png_bytes(fig)))
    return shown


def _page(result, figures: list[tuple[str, bytes]]) -> str:
    counts = result.to_dict()["counts"]
    k = result.spec.replicas
    headline = report.cards([
        ("points", len(result.points), f"{len(result.spec.seeds) or 1} seed(s) each"
                                       + (f", {k} replicas per seed" if k > 1 else "")),
        ("trained now", counts["trained"] + counts["resumed"], f"{counts['resumed']} resumed"),
        ("finished before", counts["done"], "skipped"),
        ("failed", counts["failed"], "see the points"),
        ("sweep wall time", f"{result.wall_s:.0f} s", result.executor),
    ])
    sections = []
    if result.table is not None:
        t = result.table.text_table()
        several = any(len(v) > 1 for v in result.table.cells.values())
        note = f"value: {result.table.value}"
        if several:
            note += "; mean ± 95% CI over the n runs in a cell (seeds, replicas)"
        sections.append(report.Section("Table", report.join(report.table(t.headers, t.rows), report.para(note,
                                                                                                         "muted"))))
    for title, png in figures:
        sections.append(report.Section(title, report.image(png, title)))
    headers = ["point", "status", "test token acc", "test exact match", "solved at step", "steps", "wall s", "run dir"]
    rows = []
    for p in result.points:
        s = p.numbers()
        status = report.Html(f'<span class="{"no" if p.error else "ok"}">{report.esc(p.status)}</span>')
        shown = [_with_ci(s, k) for k in ("test_token_acc", "test_exact_match", "solved_at_step", "steps")]
        rows.append([p.point.name, status, *shown, s.get("wall_s"), _relative(p.run_dir, result.out)])
    sections.append(report.Section("Points", report.table(headers, rows)))
    if result.failed:
        items = report.table(["point", "error"], [[p.point.name, p.error] for p in result.failed])
        sections.append(report.Section("Failures", items))
    spec = json.dumps(result.spec.to_dict(), indent=2)
    sections.append(report.Section("Spec", report.Html(f"<pre>{report.esc(spec)}</pre>")))
    store = f" · results store {result.store}" if result.store else ""
    return report.render(f"Sweep {result.spec.name}", headline, sections, subtitle=f"{result.out}{store}")


def _with_ci(numbers: dict, key: str) -> str:
    """A point's number; an accuracy with its test size and 95% interval (for replicas, of their
    mean: ``stats.seeds_interval``), the other numbers of replicas as mean ± 95% CI."""
    value, interval = numbers.get(key), numbers.get("interval95", {}).get(key)
    if value is not None and interval is not None and None not in interval:
        of = f"{numbers['replicas']} replicas" if "replicas" in numbers else None
        return accuracy_text(value, interval, numbers.get("test_n"), of)
    ci = numbers.get("ci95", {}).get(key)
    return fmt(value) if ci is None or value is None else f"{value:.4g} ± {ci:.2g}"


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)
