"""What ``toyformer diagnose --try`` measured (``RUN_DIR/try.json``), in words and as the block of
the report's diagnosis: the recommendation with its verdict on fresh seeds, and every change tried
with its numbers. The command prints the same sentences (``experiments.trial_fixes.outputs``)."""

from __future__ import annotations

from pathlib import Path

from toyformer.files import read_json
from toyformer.report.html import Html, badge, esc, join, para, table
from toyformer.stats import accuracy_text


def final_text(row: dict) -> str:
    """``0.954 (mean of 3 seeds, n=315, 95% CI 0.910-0.980)``: a change's final test metric."""
    f = row["final"]
    return accuracy_text(f["mean"], (f["low"], f["high"]), f.get("n"),
                         f"{row['seeds']} seeds" if row["seeds"] > 1 else None, digits=3)


def time_text(row: dict) -> str:
    """Seconds to solve over the seeds that solved, with how many did (``-`` when none did)."""
    t = row.get("solved_at_s")
    if not t:
        return "-"
    if t["solved"] > 1:
        return f"{t['mean']:.1f} ± {t['ci95']:.1f} s ({t['solved']} of {t['of']} seeds)"
    return f"{t['mean']:.1f} s (1 of {t['of']} seeds)"


HEADERS = ["change", "from", "cap s", "seeds solved", "seconds to solve (solved seeds)",
           "final test {metric} (n, 95% CI)",
           "verdict against the run's own config"]


def cells(row: dict) -> list[str]:
    """A change's cells, in the order of ``HEADERS`` (the command's table, its markdown, the report)."""
    if "error" in row:
        return [row["change"], row["source"], "-", "-", "-", f"refused: {row['error']}", "-"]
    return [row["change"], row["source"], f"{row['cap_s']:.1f}", f"{row['solved']}/{row['seeds']}", time_text(row),
            final_text(row), row["verdict"]]


def recommendation_text(result: dict) -> str:
    """One paragraph: the recommended change, where it came from, its verdict on fresh seeds, the numbers."""
    rec = result.get("recommendation")
    if rec is None:
        return "No change could be measured within the budget."
    if rec.get("error"):
        return f"The best change, {rec['change']}, could not be re-measured: {rec['error']}"
    src = "the layout's default search space" if rec["source"] == "space" else (
        "a pair of the two best changes" if rec["source"] == "pair" else f"the {rec['source']} levers")
    text = (f"Recommended: {rec['change']} (from {src}). On {rec['seeds']} fresh seeds "
            f"({', '.join(map(str, rec['seed_values']))}), at most {rec['cap_s']:.3g} s each: {rec['verdict']}; "
            f"{rec['solved']} of {rec['seeds']} solved")
    if rec.get("solved_at_s"):
        text += f" in {time_text(rec)}"
    text += f", test {result['metric']} {final_text(rec)}"
    base = rec.get("baseline")
    if base:
        text += (f"; the run's own config on the same seeds: {base['solved']} of {base['seeds']} solved, test "
                 f"{result['metric']} {final_text(base)}")
    others = "; ".join(f"{o['change']}: {o['solved']} of {o['seeds']} solved, test {result['metric']} {final_text(o)}"
                       for o in rec.get("also_remeasured", []))
    return text + "." + (f" Also re-measured on the same fresh seeds: {others}." if others else "")


def tried_block(path: Path) -> Html | None:
    """The report's block for ``try.json`` at ``path``; None before ``--try`` ran (or from an older one)."""
    if not path.is_file():
        return None
    result = read_json(path)
    if "recommendation" not in result:
        return None
    rec = result["recommendation"] or {}
    kind = {"fixes it": "good", "partly": "warn"}.get(rec.get("verdict", ""), "bad")
    rows = [cells(r) for r in result["changes"]]
    head = [h.format(metric=result["metric"]) for h in HEADERS]
    note = (f"Symptoms {', '.join(result['symptoms'])}: {result['candidates']} changes, the symptoms' levers first, "
            f"then the layout's search space, by successive halving on {result['seeds']} seeds each, "
            f"{result['spent_s']:.0f} s of a {result['budget_s']:g} s budget (toyformer diagnose --try)."
            + (f" Not tried, for the budget: {', '.join(result['untried'])}." if result.get("untried") else ""))
    return join(Html("<h3>Measured: what fixes it</h3>"),
                Html(f'<div class="verdict">{badge(rec.get("verdict") or "not measured", kind)}'
                     f'<span>{esc(recommendation_text(result))}</span></div>'),
                table(head, rows), para(note, "muted"))
