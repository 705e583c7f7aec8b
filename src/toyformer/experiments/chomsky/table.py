"""The suite's table: each cell's runs summed up (the papers' maximum, the mean with its 95%
interval over seeds, ``stats.seeds_interval``: inside [0, 1], the verdict), set beside the published numbers, the goals
checked, and the figure.

Published numbers come as ``{"scores": {task: {"deletang2023": {...}, "ruoss2023": {...}}}}``
(``toyformer/bench/chomsky_published.json``), in percent, with ``checks``: which cells a printed
source confirms (the others are unverified, and every table says which is which). A column's
counterpart: ``lstm``, ``rnn``, ``stack_rnn`` and ``tape_rnn`` are Deletang et al.'s columns of
that name; ``transformer/<scheme>`` is Ruoss et al.'s column of that encoding
(``randomised`` their randomised relative one); the best published transformer of a task is the
best of Deletang et al.'s transformer and every Ruoss et al. column.

>>> cell = summarise("parity_check", "lstm", [{"score": 1.0, "train_score": 1.0, "lr": 3e-3, "seed": 0}], 0.5)
>>> cell["max"], cell["verdict"]
(1.0, 'solved')
"""

from __future__ import annotations

from toyformer.experiments.chomsky.protocol import RECURRENT, SCHEMES, borderline, verdict
from toyformer.stats import seeds_interval



def ruoss_column(scheme: str) -> str | None:
    """Ruoss et al.'s name of a transformer column: toyformer's scheme name, ``random_<base>`` with
    random positions (``randomised`` is ``random_relative``); None for settings beyond theirs."""
    settings = dict(SCHEMES.get(scheme, {}))
    base, random = settings.pop("positional", None), settings.pop("random_positions", False)
    return None if settings or base is None else ("random_" if random else "") + base


def summarise(task: str, column: str, runs: list[dict], chance: float) -> dict:
    """One cell: every run's score, the maximum (the papers' rule: over seeds and learning rates),
    and the mean with its 95% interval (``low``, ``high``: a bootstrap over the seeds; a score
    averages accuracies over lengths, so it pools no single count of examples) over the seeds of
    the learning rate whose mean is best."""
    by_lr: dict[float, list[dict]] = {}
    for r in runs:
        by_lr.setdefault(r["lr"], []).append(r)
    best_lr = max(by_lr, key=lambda lr: sum(r["score"] for r in by_lr[lr]) / len(by_lr[lr]))
    seeds = [r["score"] for r in by_lr[best_lr]]
    mean, low, high = seeds_interval(seeds)
    top = max(r["score"] for r in runs)
    return {"task": task, "column": column, "chance": chance, "max": top, "mean": mean, "low": low, "high": high,
            "n": len(seeds), "seed_scores": [r["score"] for r in sorted(by_lr[best_lr], key=lambda r: r["seed"])],
            "min_seed": min(seeds), "max_seed": max(seeds), "best_lr": best_lr, "runs": len(runs),
            "train_max": max(r["train_score"] for r in runs), "verdict": verdict(top, chance),
            "borderline": borderline(top, chance)}


def provenance(published: dict, paper: str, task: str, column: str) -> str | None:
    """The source that confirms a published cell (its text, from ``checks``), or None: unverified."""
    checks = published.get("checks", {})
    key = checks.get("confirmed", {}).get(paper, {}).get(task, {}).get(column)
    return None if key is None else checks["sources"][key]


def published_for(published: dict, task: str, column: str) -> dict | None:
    """The published counterpart of a column: ``{"value"`` (a fraction), ``"source"`` (whose column),
    ``"check"`` (the source confirming it, None when unverified)``}``, or None when there is none."""
    scores = published["scores"].get(task, {})
    key: str | None  # the published column: None for a scheme beyond Ruoss et al.'s
    if column in RECURRENT:
        paper, key, label = "deletang2023", column, f"Deletang et al. {column}"
    else:
        scheme = column.partition("/")[2]
        paper, key, label = "ruoss2023", ruoss_column(scheme), f"Ruoss et al. {ruoss_column(scheme)}"
    if key is None or key not in scores.get(paper, {}):  # None: no such column (a JSON table has no key None)
        return None
    return {"value": scores[paper][key] / 100, "source": label, "check": provenance(published, paper, task, key)}


def best_published_transformer(published: dict, task: str) -> dict:
    """The best published transformer of ``task``: Deletang et al.'s or any Ruoss et al. column."""
    scores = published["scores"][task]
    options = [(scores["deletang2023"]["transformer"], "Deletang et al. transformer", "deletang2023", "transformer")]
    options += [(v, f"Ruoss et al. {k}", "ruoss2023", k) for k, v in scores["ruoss2023"].items()]
    value, source, paper, key = max(options, key=lambda o: o[0])
    return {"value": value / 100, "source": source, "check": provenance(published, paper, task, key)}


def compare(cells: list[dict], published: dict) -> dict:
    """Each cell beside its published counterpart, and the issue's goals: (1) every cell's verdict
    as published, and the published number within the seed spread where the seeds allow it;
    (2) the best toyformer transformer of each task above the best published transformer (a
    score at chance never counts as above: there the difference is noise)."""
    rows = []
    for c in cells:
        pub = published_for(published, c["task"], c["column"])
        row = {**c, "published": None, "source": None, "check": None, "published_verdict": None, "reproduced": None,
               "within_spread": None}
        if pub is not None:
            value = pub["value"]
            row.update(published=value, source=pub["source"], check=pub["check"],
                       published_verdict=verdict(value, c["chance"]), published_borderline=borderline(value,
                                                                                                      c["chance"]))
            row["reproduced"] = row["published_verdict"] == c["verdict"]
            if c["n"] >= 2:
                row["within_spread"] = c["min_seed"] - 1e-9 <= value <= c["max_seed"] + 1e-9
        rows.append(row)
    judged = [r for r in rows if r["reproduced"] is not None]
    spread = [r for r in rows if r["within_spread"] is not None]
    best = []
    for task in dict.fromkeys(c["task"] for c in cells):
        mine = [c for c in cells if c["task"] == task and c["column"].startswith("transformer/")]
        if not mine:
            continue
        top = max(mine, key=lambda c: c["max"])
        pub = best_published_transformer(published, task)
        deletang = published["scores"][task]["deletang2023"]["transformer"] / 100
        # a score at chance above a published score at chance is noise, not a better model
        learned = top["verdict"] != "chance"
        best.append({"task": task, "column": top["column"], "score": top["max"], "published": pub["value"],
                     "source": pub["source"], "check": pub["check"], "beats": learned and top["max"] > pub["value"],
                     "deletang": deletang, "beats_deletang": learned and top["max"] > deletang})
    confirmed = [r for r in judged if r["check"] is not None]
    return {"rows": rows, "best": best,
            "verdicts": {"reproduced": sum(r["reproduced"] for r in judged), "cells": len(judged),
                         "confirmed_reproduced": sum(r["reproduced"] for r in confirmed),
                         "confirmed_cells": len(confirmed)},
            "spread": {"within": sum(r["within_spread"] for r in spread), "cells": len(spread)},
            "beats": {"tasks": sum(b["beats"] for b in best), "of": len(best),
                      "beats_deletang": sum(b["beats_deletang"] for b in best)}}


def figure(cells: list[dict], published: dict, path, title: str) -> None:
    """Two heat maps side by side, tasks x columns: the measured maximum and the published score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from toyformer.files import atomic_write

    tasks = list(dict.fromkeys(c["task"] for c in cells))
    columns = list(dict.fromkeys(c["column"] for c in cells))
    measured = {(c["task"], c["column"]): c["max"] for c in cells}
    pub = {(t, k): published_for(published, t, k) for t in tasks for k in columns}
    panels = [("measured (max over runs)", lambda t, k: measured.get((t, k)), lambda t, k: ""),
              ("published (? unverified)", lambda t, k: (pub[(t, k)] or {}).get("value"),
               lambda t, k: "?" if (p := pub[(t, k)]) is not None and p["check"] is None else "")]
    fig, axes = plt.subplots(1, 2, figsize=(2.2 + 1.1 * len(columns) * 2, 1.2 + 0.42 * len(tasks)), squeeze=False)
    for ax, (name, value, mark) in zip(axes[0], panels):
        grid = [[value(t, k) for k in columns] for t in tasks]
        shown = [[float("nan") if v is None else v for v in row] for row in grid]
        ax.imshow(shown, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                ax.text(j, i, "-" if v is None else f"{100 * v:.0f}{mark(tasks[i], columns[j])}", ha="center",
                        va="center", fontsize=7,
                        color="white" if v is not None and v < 0.6 else "black")
        ax.set_xticks(range(len(columns)), [k.replace("transformer/", "T/") for k in columns], rotation=45,
                      ha="right", fontsize=8)
        ax.set_yticks(range(len(tasks)), tasks, fontsize=8)
        ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
    plt.close(fig)
