"""What ``diagnose --try`` reports: the table of every change measured, the recommendation (the
best change re-measured on fresh seeds, with its verdict; its sentence is ``report.tried``'s, the
same in the report), and the diagnosis with each setting's measurement. Every sentence is built
from the measured numbers."""

from __future__ import annotations

from toyformer.experiments.trial_fixes.measure import VERDICTS, rank
from toyformer.report.tried import HEADERS, cells, recommendation_text


def ordered(rows: list[dict]) -> list[dict]:
    """The changes best first: the furthest rung reached (the longest rung cap), then
    ``measure.rank``; refused ones last."""
    good = [r for r in rows if "error" not in r]
    return sorted(good, key=lambda r: (-r["rung_cap_s"], *rank(r))) + [r for r in rows if "error" in r]


def format_table(result: dict) -> str:
    """The changes as a table (``toyformer diagnose --try``), then the recommendation."""
    widths = (40, 10, 6, 12, 30, 50)
    lines = []
    for row in [[h.format(metric=result["metric"]) for h in HEADERS], *(cells(r) for r in result["changes"])]:
        lines.append(" ".join(f"{c:<{w}}" for c, w in zip(row, widths)) + " " + row[-1])
    untried = [f"Not tried, for the budget: {', '.join(result['untried'])}."] if result.get("untried") else []
    return "\n".join(lines + untried + ["", recommendation_text(result)])


def markdown(result: dict, command: str, machine: str) -> str:
    """``diagnose --try --markdown FILE``: the command, the machine, the search, the table."""
    metric = result["metric"]
    caps = ", ".join(f"{r['cap_s']:.1f}" for r in result["rungs"])
    head = [f"Command: `{command}`  ", f"Machine: {machine}  ",
            f"Symptoms: {', '.join(result['symptoms'])}; {result['candidates']} changes tried by successive halving "
            f"(caps per rung: {caps} s), {result['seeds']} seeds each as batched replicas; target {metric} "
            f"{result['target']:g}; {result['spent_s']:.0f} s of {result['budget_s']:g}."
            + (f" Not tried, for the budget: {', '.join(result['untried'])}." if result.get("untried") else ""), "",
            recommendation_text(result), "", "| " + " | ".join(h.format(metric=metric) for h in HEADERS) + " |",
            "|---" * len(HEADERS) + "|"]
    head += ["| " + " | ".join(cells(r)) + " |" for r in result["changes"]]
    return "\n".join(head) + "\n"


def mark(diagnosis: list[dict], rows: list[dict]) -> list[dict]:
    """The diagnosis with each tried setting's measurement: ``measured`` holds the best change of
    that key, its verdict and numbers; settings not tried keep ``suspect`` as it was."""
    by_key: dict[str, dict] = {}
    for row in ordered(rows):
        if "error" in row:
            continue
        for key in row["overrides"]:
            by_key.setdefault(key, row)
    out = []
    for f in diagnosis:
        settings = []
        for s in f.get("settings", []):
            r = by_key.get(s["key"])
            measured = None if r is None else {k: r[k] for k in ("change", "verdict", "solved", "seeds", "final")} | (
                {"solved_at_s": r["solved_at_s"]} if "solved_at_s" in r else {})
            settings.append({**s, **({"measured": measured} if measured else {})})
        settings.sort(key=lambda s: (VERDICTS.index(s["measured"]["verdict"]) if "measured" in s else 2.5,
                                     not s["suspect"]))
        out.append({**f, "settings": settings})
    return out
