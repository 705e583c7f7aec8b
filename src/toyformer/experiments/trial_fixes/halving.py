"""Successive halving over the candidate changes, within a budget of wall-clock seconds.

Two stages: the symptoms' levers first (two thirds of the budget, or all of it when the layout's
search space adds nothing), then, when no lever fixed the run, the search space's values with the two
best levers carried over (what is left). In a stage, rung 0 trains every candidate and the
baseline (the run's own config) for ``cap_0`` seconds each, every one on the same ``seeds``
seeds as one batched replica run; the best third goes on to rung 1 at three times the cap, with
the pair of the best two changes (their overrides together), and so on while more than three
are left. Ranked by seeds solved, then time to solve, then validation (``measure.rank``).

- **Caps from the budget**: each rung's cap is what is left of the stage's budget divided by the
  cap-units the remaining rungs and the re-measure will use (a rung-``r`` run counts ``3^r``),
  after the measured overhead of the runs still to come (building, testing); a rung that ends
  early leaves more for the next.
- **A floor**: when the budget would cap the first rung's runs below a quarter of the broken
  run's own training time, the last candidates in the table's order wait (``untried``), so the
  ones tried run long enough to show something; at least two are tried.
- **Caps in proportion to a change's steps**: a change that trains for ``k`` times the run's
  steps (``train.steps=6000`` from 2,000: grokking's weight decay, "train longer") gets ``k`` times
  the rung's cap and counts ``k`` cap-units, so every change is cut at the same share of its own
  schedule; with one cap for all, the changes that need more steps were ranked on runs cut off
  before they could show their effect, and pruned.
- **Evaluation in proportion too**: a trial evaluates at most ``EVALS`` times over its steps (or
  as often as the run did, when that is rarer), so a broken run that evaluated every few steps
  does not spend its changes' caps on evaluation.
- **No run twice**: each rung trains afresh under its longer cap (the loop ends a capped run for
  good), except a change whose seeds all ended before their cap (solved, diverged or at
  ``train.steps``): a longer cap would give the same run, so its result goes on as it is.
- **A lever that solved some seeds runs longer**: when the levers' stage ends with no fix but its
  best change solved some of its seeds, what is left of the budget first trains that change, and
  the next best when it solved some too, under a longer cap, before the search space (on three
  seeds the best may be the lucky one, and the runner-up the one that needed more time); and a
  change carried into a stage keeps its measurement from a longer cap rather than being trained
  again shorter.
- **Stop at a fix**: after a rung in which some change solved every seed, the fastest of them is
  the recommendation, or, of those as fast within their intervals, the one with the fewest
  overrides (``measure.simplest_first``); the budget left is not spent.
- **Re-measured**: the recommendation trains again on fresh seeds (``seed + 1000 ..``) under the
  last cap (up to three times it when a fix stopped the search early); when it does not fix the
  run there, the search's next fix is re-measured on the same fresh seeds while the budget allows,
  and the first that holds is recommended (the others' numbers go with it); when none holds, the
  baseline trains on the same fresh seeds for the verdict.

::

    RUN_DIR/try/cap<C>s/<change>/   a change (or baseline) on its seeds under cap C
    RUN_DIR/try/fresh/<change>/     the recommendation (and the baseline) on fresh seeds
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import cast

from toyformer.errors import ConfigError
from toyformer.experiments.trial_fixes.levers import Candidate
from toyformer.experiments.trial_fixes.measure import measure, rank, simplest_first, verdict
from toyformer.experiments.trial_fixes.outputs import ordered

ETA = 3
FRESH = 1000  # the re-measure's seeds start this far above the run's
EVALS = 12  # a trial evaluates at most this many times over its steps
LEVERS_SHARE = 2 / 3  # of the budget, for the symptoms' levers when the search space follows
BASELINE = "baseline (the run's own config)"


def folder_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", label)[:120]


def survivors(n: int) -> list[int]:
    """Candidates per rung: ``n``, then a third of the previous (rounded up) while more than 3 are left."""
    out = [n]
    while out[-1] > ETA:
        out.append(math.ceil(out[-1] / ETA))
    return out


class Search:
    """One ``diagnose --try`` search (see the module doc); ``run()`` returns its record."""

    def __init__(self, config, candidates: list[Candidate], seeds: int, budget_s: float, folder: Path,
                 quiet: bool = True, log=None, floor_s: float = 0.0):
        self.config, self.seeds, self.budget_s, self.folder = config, seeds, budget_s, Path(folder)
        self.floor_s = floor_s  # the shortest first cap worth training (see ``first_rung``)
        self.untried: list[str] = []
        self.candidates, self.quiet, self.log = candidates, quiet, log or (lambda line: None)
        self.metric = config.eval.target_metric
        self.start = time.perf_counter()
        self.runs_done, self.overhead_s, self.until_s = 0, 0.0, budget_s
        self.rungs: list[dict] = []
        self.baseline: dict | None = None  # the run's own config at the last cap

    # --- budget -----------------------------------------------------------------------------------
    def left(self) -> float:
        """Seconds left of the current stage (``until_s`` after the start)."""
        return self.until_s - (time.perf_counter() - self.start)

    def per_run_overhead(self) -> float:
        return self.overhead_s / self.runs_done if self.runs_done else 1.0

    def scale(self, overrides: dict) -> float:
        """A change's steps over the run's (at least 1): its cap and its cap-units are this many times
        the rung's."""
        steps = overrides.get("train.steps", self.config.train.steps)
        return max(1.0, steps / self.config.train.steps) if steps and self.config.train.steps else 1.0

    def cap(self, plan: list[int], pairs: bool, scale: float = 1.0) -> float:
        """This rung's cap: the budget left, after the overhead of the runs still to come, over the
        cap-units of the rungs in ``plan`` (candidates per rung from this one on, each rung with a
        baseline and, from rung 1, a pair) and the re-measure (two runs at the last rung's cap); a
        change counts ``scale`` units (the mean over the changes of the rung)."""
        units = sum((scale * n + 1 + scale * (pairs or j > 0)) * ETA ** j for j, n in enumerate(plan)) \
            + (scale + 1) * ETA ** (len(plan) - 1)
        runs = sum(plan) + 2 * len(plan) + 2
        return max(0.5, (self.left() - runs * self.per_run_overhead()) / units)

    def mean_scale(self, alive: list) -> float:
        return sum(self.scale(c.overrides) for c, _ in alive) / len(alive) if alive else 1.0

    def first_rung(self, alive: list) -> list:
        """The candidates of a stage's first rung: all of them, or, when the budget would cap them
        below ``floor_s`` (a share of the broken run's own training time: a change cut off long
        before that shows nothing yet), the first ones in the table's order, at least two."""
        keep = len(alive)
        while keep > 2 and self.cap(survivors(keep), False, self.mean_scale(alive[:keep])) < self.floor_s:
            keep -= 1
        self.untried += [c.label for c, _ in alive[keep:]]
        return alive[:keep]

    # --- training ---------------------------------------------------------------------------------
    def train(self, label: str, overrides: dict, cap: float, where: str, seed_offset: int = 0) -> dict:
        """Train ``overrides`` on the seeds as one batched replica run under ``cap``, evaluating at
        most ``EVALS`` times; its measurement (``error`` instead when the config or the machine refuses it)."""
        from toyformer.training import train_replicas_into

        t0 = time.perf_counter()
        try:
            trial = self.config.with_overrides(overrides)
            every = max(trial.eval.every, math.ceil(trial.train.steps / EVALS)) if trial.train.steps else None
            trial = trial.with_overrides({"train.max_time_s": cap, "seed": self.config.seed + seed_offset,
                                          **({"eval.every": every} if every else {})})
            rep, _ = train_replicas_into(self.folder / where / folder_name(label), trial, self.seeds, quiet=self.quiet)
        except ConfigError as exc:
            return {"change": label, "overrides": overrides, "error": str(exc)}
        row = {"change": label, "overrides": overrides, **measure(rep.runs, self.metric, cap),
               "runs": rep.runs}
        self.runs_done += 1
        self.overhead_s += max(0.0, time.perf_counter() - t0 - row["wall_s"])
        return row

    # --- the search -------------------------------------------------------------------------------
    def run(self) -> dict:
        """The levers' stage, then (when no lever fixed the run) the search space's stage with the
        levers' two best carried over; then the re-measure of the best on fresh seeds."""
        levers = [c for c in self.candidates if c.source != "space"]
        space = [c for c in self.candidates if c.source == "space"]
        rows: dict[str, dict] = {}
        best, found, cap = None, False, None
        if levers:
            share = self.budget_s * (LEVERS_SHARE if space else 1.0)
            best, found, cap = self.halve([(c, None) for c in levers], rows, share, "levers")
        if space and not found and best is not None and best[1]["solved"]:
            # a lever solved some seeds: the budget left runs it (and the next best, if it did too)
            # longer before the search space
            partial = [cr for cr in self.top(rows, 2) if cr[1]["solved"]]
            longer = self.halve(partial, rows, self.budget_s, "levers, longer", after=cap)
            best, found, cap = longer if longer[0] is not None else (best, found, cap)
        if space and not found:
            carried = [] if best is None else self.top(rows, 2)
            best, found, cap = self.halve(carried + [(c, None) for c in space], rows, self.budget_s, "space")
        others = [] if best is None else [cr for cr in simplest_first(self.fixes(rows)) if cr[0].label != best[0].label]
        return {"rungs": self.rungs, "rows": rows, "best": best, "found": found, "untried": self.untried,
                # a best means a rung trained it: cap is that rung's
                "fresh": self.fresh([best, *others], found, cast(float, cap)) if best is not None else None,
                "spent_s": time.perf_counter() - self.start}

    @staticmethod
    def fixes(rows: dict) -> list:
        """Every change that solved all its seeds, as ``(candidate, row)``."""
        return [_measured(r) for r in rows.values() if "error" not in r and r["solved"] == r["seeds"]]

    def top(self, rows: dict, k: int) -> list:
        """The ``k`` best measured changes so far, as ``(candidate, row)``, to carry into the next stage."""
        return [_measured(r) for r in ordered(list(rows.values())) if "error" not in r][:k]

    def halve(self, alive: list, rows: dict, until_s: float, stage: str, after: float | None = None):
        """Successive halving of ``alive`` (``(candidate, measurement or None)``) until ``until_s``
        seconds after the start, at caps longer than ``after``; returns the best ``(candidate, row)``
        (``None`` when nothing trained), whether it fixes the run, and the last rung's cap. A
        measurement carried in at a cap at least this rung's is kept as it is, not trained again
        shorter."""
        self.until_s = until_s
        alive = self.first_rung(list(alive))
        best, found, cap, r, paired = None, False, after, 0, False
        while alive:
            plan = survivors(len(alive) - (r > 0 and paired))  # the pair rides along: it adds no rung
            rung_cap = self.cap(plan, r > 0, self.mean_scale(alive))
            if cap is not None and rung_cap <= cap:  # the budget left allows no longer runs than the last rung's
                self.log(f"{stage} rung {r}: the budget left ({self.left():.0f} s) allows no longer runs; stopping")
                break
            cap, where = rung_cap, f"cap{rung_cap:.3g}s"
            self.log(f"{stage} rung {r}: {len(alive)} change(s) and the baseline, {self.seeds} seeds each, "
                     f"at most {cap:.1f} s (k times that for k times the run's steps)")
            if self.baseline is None or not self.baseline["finished"]:  # a finished one is the same at any cap
                self.baseline = self.train(BASELINE, {}, cap, where)
            base = None if "error" in self.baseline else self.baseline
            measured: list = []  # (candidate, row) of each change this rung measured
            for c, before in alive:
                if self.left() <= 0 and measured:  # a rung trains one change at least
                    left = len(alive) - len(measured)
                    self.log(f"{stage} rung {r}: its budget ran out; {left} change(s) not trained")
                    break
                if before is not None and before["rung_cap_s"] >= cap:  # measured at this cap or longer already
                    row = before
                else:
                    row = before if before is not None and before["finished"] else self.train(
                        c.label, c.overrides, cap * self.scale(c.overrides), where)
                    if "error" in row:
                        rows[c.label] = {**row, "source": c.source, "why": c.why, "rung": r}
                        continue
                    row = {**row, "source": c.source, "why": c.why, "rung": r, "stage": stage, "rung_cap_s": cap,
                           "verdict": verdict(row, base), "baseline": _numbers(base) if base else None}
                rows[c.label] = row
                measured.append((c, row))
                self.log(f"  {c.label}: {row['solved']}/{row['seeds']} seeds solved, final {self.metric} "
                         f"{row['final']['mean']:.3f} ({row['verdict']})")
            self.rungs.append({"stage": stage, "rung": r, "cap_s": cap, "trained": len(measured),
                               "baseline": _numbers(base) if base else None})
            if not measured:
                break
            measured.sort(key=lambda cr: rank(cr[1]))
            fixes = simplest_first([cr for cr in measured if cr[1]["solved"] == cr[1]["seeds"]])
            best, found = (fixes[0], True) if fixes else (measured[0], False)
            if found or len(plan) == 1:
                break
            alive = measured[: max(1, math.ceil(len(measured) / ETA))]
            pair = self._pair(measured) if r == 0 else None
            paired = pair is not None
            alive += [(pair, None)] if paired else []
            r += 1
        return best, found, cap

    def _pair(self, measured) -> Candidate | None:
        """The two best changes of different keys together (``None`` when there are no two)."""
        first = measured[0][0]
        for c, _ in measured[1:]:
            if not set(c.overrides) & set(first.overrides):
                return Candidate({**first.overrides, **c.overrides}, "pair", "the two best changes together")
        return None

    def fresh(self, choices: list, found: bool, cap: float) -> dict:
        """The recommendation on fresh seeds: ``choices[0]`` (the search's best), and, when it does
        not fix the run there, the next of the search's other fixes while the budget allows one
        more, until one holds; then (when none did) the baseline on the same seeds for the verdict."""
        self.until_s = self.budget_s
        tried = []
        for i, (c, row) in enumerate(choices):
            k = self.scale(c.overrides)
            at = max(cap, row["rung_cap_s"])  # the longest cap it was measured at
            at = min(ETA * at, max(at, self.left() / (k + 1))) if found else at
            if i and self.left() < k * at + self.per_run_overhead():
                self.log(f"the budget left ({self.left():.0f} s) allows no re-measure of {c.label}")
                break
            self.log(f"re-measuring {c.label} on {self.seeds} fresh seeds, at most {k * at:.1f} s")
            mine = self.train(c.label, c.overrides, k * at, "fresh", FRESH)
            tried.append((c, mine, k, at))
            if "error" not in mine and mine["solved"] == mine["seeds"]:
                break
        good = [t for t in tried if "error" not in t[1]]
        holds = [t for t in good if t[1]["solved"] == t[1]["seeds"]]
        c, mine, k, at = holds[0] if holds else min(good, key=lambda t: rank(t[1])) if good else tried[0]
        out = {"change": c.label, "overrides": c.overrides, "source": c.source, "why": c.why, "cap_s": k * at,
               "also_remeasured": [{"change": o.label, **{key: r[key] for key in ("seeds", "solved", "final")}}
                                   for o, r, _, _ in good if o is not c]}
        if "error" in mine:
            return {**out, "error": mine["error"], "verdict": None}
        base = None
        if mine["solved"] < mine["seeds"]:
            self.log(f"and the baseline on the same seeds, at most {at:.1f} s")
            base = self.train(BASELINE, {}, at, "fresh", FRESH)
            base = None if "error" in base else base
        return {**out, **_numbers(mine), "verdict": verdict(mine, base), "baseline": _numbers(base) if base else None}


def _measured(row: dict) -> tuple:
    """A measured row as ``(candidate, row)``, the form the stages pass changes on in."""
    return Candidate(row["overrides"], row["source"], row["why"]), row


def _numbers(row: dict) -> dict:
    """A measurement without its ``Run`` objects (what ``try.json`` keeps)."""
    return {k: v for k, v in row.items() if k not in ("runs", "change", "overrides")}
