"""What every recipe shares: running its configurations, tables, and the files it writes.

A recipe is a function ``run(ctx) -> RecipeResult``. ``ctx.train(name, config)`` trains one
configuration into ``OUT/runs/<name>`` (skipped when that run already finished, so a killed
recipe resumes), and the result's tables become ``summary.md`` and ``result.json``.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import torch

from toyformer.files import write_json, write_text
from toyformer.config import RunConfig
from toyformer.experiments.store import record_run
from toyformer.stats import accuracy_text, proportion_ci
from toyformer.run import Run
from toyformer.training import train_into


QUICK_NOTE = ("--quick: every run trains for a few steps only, to check the pipeline; the numbers below are "
              "measured, but they are not the experiment as described.")


@dataclass
class Table:
    """A titled table; ``rows`` hold plain values (floats are formatted when printed)."""

    title: str
    headers: list[str]
    rows: list[list]
    note: str = ""

    def markdown(self) -> str:
        fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else ("-" if v is None else str(v))  # noqa: E731
        lines = [f"### {self.title}", "", "| " + " | ".join(self.headers) + " |",
                 "|" + "---|" * len(self.headers)]
        lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in self.rows]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"title": self.title, "headers": self.headers, "rows": self.rows, "note": self.note}


@dataclass
class RecipeResult:
    name: str
    title: str
    tables: list[Table] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # what the measurements show, in words
    numbers: dict = field(default_factory=dict)  # every number printed, for --json
    figures: list[str] = field(default_factory=list)  # paths relative to the recipe directory

    def markdown(self, command: str, seconds: float, training_s: float, quick: bool = False) -> str:
        parts = [f"# {self.title}", "", f"Command: `{command}`  ", f"Machine: {machine()}  ",
                 f"Wall time of this invocation: {seconds:.0f} s; training time of its runs: {training_s:.0f} s "
                 f"(finished runs are reused, so the first is small when they already existed)", ""]
        if quick:
            parts += [QUICK_NOTE, ""]
        if self.findings:
            parts += ["## What the measurements show", ""] + [f"- {f}" for f in self.findings] + [""]
        parts += [t.markdown() + "\n" for t in self.tables]
        parts += [f"![{Path(f).stem}]({f})\n" for f in self.figures]
        return "\n".join(parts)


def num(value, spec: str = ".3f") -> str:
    """A measured number for a sentence; ``"n/a"`` when it was not measured (never ``None``)."""
    return "n/a" if value is None else format(value, spec)


def exact(value, n: int | None) -> str:
    """An exact match over ``n`` examples as every table shows it: with n and Wilson's 95% interval.

        >>> exact(0.95, 100)
        '0.9500 (n=100, 95% CI 0.8883-0.9785)'
    """
    if value is None or not n:
        return num(value, ".4f")
    return accuracy_text(value, proportion_ci(round(value * n), n), n)


def solved(value, target: float, solved_at_step) -> bool:
    """A run solved its task when it stopped at its validation target (``solved_at_step``) and its
    test metric ``value`` reaches ``target`` too."""
    return solved_at_step is not None and value is not None and value >= target


def outcome(what: str, value, target: float, solved_at_step, solved_at_s, steps, diverged: dict | None = None) -> str:
    """How a run ended, in words built from its numbers only (``diverged``: the summary's entry)::

        >>> outcome("test accuracy", 1.0, 1.0, 120, 3.21, 120)
        'test accuracy 1.000, solved at step 120 (3.2 s)'
        >>> outcome("test accuracy", 0.42, 1.0, None, None, 20)
        'test accuracy 0.420 after 20 steps, not solved (target 1.000)'
    """
    if solved(value, target, solved_at_step):
        return f"{what} {value:.3f}, solved at step {solved_at_step} ({num(solved_at_s, '.1f')} s)"
    early = f" (validation met it at step {solved_at_step}, test did not)" if solved_at_step is not None else ""
    nan = f"; diverged at step {diverged['step']} (the loss was NaN or infinite)" if diverged else ""
    return f"{what} {num(value)} after {steps} steps, not solved (target {target:.3f}){early}{nan}"


def machine() -> str:
    """The machine in one line, with its load (timings taken on a busy machine are inflated)."""
    cores = torch.get_num_threads()
    load = f", load average {os.getloadavg()[1]:.1f} on {os.cpu_count()} cores" if hasattr(os, "getloadavg") else ""
    return (f"{platform.machine()}, {cores} torch threads, Python {platform.python_version()}, "
            f"torch {torch.__version__}{load}")


class Context:
    """Where a recipe trains and what budget it runs under (``quick``: a pipeline check)."""

    def __init__(self, out: Path, quick: bool, quiet: bool = True, budget_s: float | None = None, store=None,
                 name: str | None = None, preset: str | None = None):
        self.out, self.quick, self.quiet = Path(out), quick, quiet
        self.preset = preset  # one of the recipe's PRESETS (None: its first)
        self.budget_s = budget_s  # training seconds per configuration, for recipes that take one
        self.name = name or self.out.name  # recorded as the runs' sweep name
        self.store = store  # a results store path (or ResultsStore): every run trained here is recorded
        self.costs: dict[str, float] = {}  # run name -> wall seconds

    def config(self, data: dict, quick: dict | None = None) -> RunConfig:
        """A RunConfig from nested dicts; with ``--quick`` the ``quick`` overrides shrink it."""
        cfg = RunConfig.from_dict(data)
        if self.quick:
            small = {"train.steps": 4, "eval.every": 2, "eval.val_size": 16, "eval.test_size": 32}
            small.update(quick or {})
            cfg = cfg.with_overrides([f"{k}={v}" for k, v in small.items()])
        return cfg

    def train(self, name: str, config: RunConfig) -> Run:
        """Train ``config`` into ``OUT/runs/name``, or load it when it already finished."""
        run, status = train_into(self.out / "runs" / name, config, quiet=self.quiet)
        if self.store is not None:  # a run finished before is recorded only if it has no row (killed before recording)
            record_run(self.store, run, source="recipe", sweep=f"recipe {self.name}", if_missing=status == "done")
        self.costs[name] = run.summary["wall_s"]
        return run


def write_outputs(ctx: Context, result: RecipeResult, command: str, seconds: float) -> None:
    """``summary.md``, ``result.json`` and a self-contained ``report.html`` in the recipe directory."""
    ctx.out.mkdir(parents=True, exist_ok=True)
    write_text(ctx.out / "summary.md", result.markdown(command, seconds, sum(ctx.costs.values()), ctx.quick))
    write_html(ctx, result, command, seconds)
    payload = {"recipe": result.name, "title": result.title, "quick": ctx.quick, "wall_s": round(seconds, 1),
               "training_s": round(sum(ctx.costs.values()), 1),
               "machine": machine(), "numbers": result.numbers, "findings": result.findings,
               "tables": [t.to_dict() for t in result.tables]}
    write_json(ctx.out / "result.json", payload)


def write_html(ctx: Context, result: RecipeResult, command: str, seconds: float) -> None:
    from toyformer import report

    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else ("-" if v is None else str(v))  # noqa: E731
    sections = []
    if result.findings:
        items = "".join(f"<li>{report.esc(f)}</li>" for f in result.findings)
        sections.append(report.Section("What the measurements show", report.Html(f"<ul>{items}</ul>")))
    for t in result.tables:
        body = report.join(report.table(t.headers, [[fmt(v) for v in row] for row in t.rows]),
                           report.para(t.note, "muted") if t.note else "")
        sections.append(report.Section(t.title, body))
    for f in result.figures:
        sections.append(report.Section(Path(f).stem.replace("_", " "), report.image((ctx.out / f).read_bytes(), f)))
    headline = report.para(f"{command} · {seconds:.0f} s · {machine()}" + (f" · {QUICK_NOTE}" if ctx.quick else ""))
    report.write(ctx.out / "report.html", result.title, headline, sections)
