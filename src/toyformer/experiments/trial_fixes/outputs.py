"""What ``diagnose --try`` reports: the table of every change measured, the recommendation (the
best change re-measured on fresh seeds, with its verdict; its sentence is ``report.tried``'s, the
same in the report), and the diagnosis with each setting's measurement. Every sentence is built
from the measured numbers."""

from __future__ import annotations

from toyformer.experiments.trial_fixes.measure import VERDICTS, rank
from toyformer.report.tried import final_text, recommendation_text, time_text


def ordered(rows: list[dict]) -> list[dict]:
    """The changes best first: the longest cap reached, then ``measure.rank``; refused ones last."""
    good = [r for r in rows if "error" not in r]
    return sorted(good, key=lambda r: (-r["cap_s"], *rank(r))) + [r for r in rows if "error" in r]


def format_table(result: dict) -> str:
    """The changes as a table (``toyformer diagnose --try``), then the recommendation."""
    metric = result["metric"]
    lines = [f"{'change':<40} {'from':<16} {'cap s':>6} {'solved':>7}  {'seconds to solve':<26} "
             f"{'final test ' + metric:<52} verdict"]
    for r in result["changes"]:
        if "error" in r:
            lines.append(f"{r['change']:<40} {r['source']:<16} refused: {r['error']}")
            continue
        lines.append(f"{r['change']:<40} {r['source']:<16} {r['cap_s']:>6.1f} {r['solved']:>3}/{r['seeds']:<3}  "
                     f"{time_text(r):<26} {final_text(r):<52} {r['verdict']}")
    return "\n".join(lines + ["", recommendation_text(result)])


def markdown(result: dict, command: str, machine: str) -> str:
    """``diagnose --try --markdown FILE``: the command, the machine, the search, the table."""
    metric = result["metric"]
    caps = ", ".join(f"{r['cap_s']:.1f}" for r in result["rungs"])
    head = [f"Command: `{command}`  ", f"Machine: {machine}  ",
            f"Symptoms: {', '.join(result['symptoms'])}; {result['candidates']} changes tried by successive halving "
            f"(caps per rung: {caps} s), {result['seeds']} seeds each as batched replicas; target {metric} "
            f"{result['target']:g}; {result['spent_s']:.0f} s of {result['budget_s']:g}.", "",
            recommendation_text(result), "",
            f"| change | from | rung (cap s) | seeds solved | seconds to solve (mean ± 95% CI, solved seeds) | "
            f"final test {metric} (mean, n, 95% CI) | verdict |", "|---|---|---|---|---|---|---|"]
    for r in result["changes"]:
        if "error" in r:
            head.append(f"| `{r['change']}` | {r['source']} | - | - | - | refused: {r['error']} | - |")
            continue
        head.append(f"| `{r['change']}` | {r['source']} | {r['rung']} ({r['cap_s']:.1f}) | {r['solved']}/{r['seeds']} "
                    f"| {time_text(r)} | {final_text(r)} | {r['verdict']} |")
    return "\n".join(head) + "\n"


def mark(diagnosis: list[dict], rows: list[dict]) -> list[dict]:
    """The diagnosis with each tried setting's measurement: ``measured`` holds the best change of
    that key, its verdict and numbers; settings not tried keep ``suspect`` as it was."""
    by_key: dict[str, dict] = {}
    for r in ordered(rows):
        if "error" in r:
            continue
        for key in r["overrides"]:
            by_key.setdefault(key, r)
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
