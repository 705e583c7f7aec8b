"""``toyformer diagnose RUN_DIR --try``: find the change that fixes a failed run, and measure it.

The diagnosis (``eval.diagnosis``) names the run's symptoms. ``try_fixes`` turns them into
candidate changes, each symptom's levers first (``levers.LEVERS``, a table a reader can see with
``toyformer diagnose --levers`` and extend), then the layout's default search space; spends the
budget on them by successive halving, every change on the same seeds as one batched replica run
beside the run's own config (``halving``); judges each change by its effect against that
baseline (``measure``: fixes it, partly, does not, makes it worse); re-measures the best on
fresh seeds; and writes what it found (``outputs``) into ``try.json`` and into the diagnosis of
``summary.json``, which the report shows.

::

    RUN_DIR/try/cap<C>s/<change>/  each change's replica run under cap C (replicas/<i> are its seeds)
    RUN_DIR/try/fresh/<change>/    the recommendation on fresh seeds
    RUN_DIR/try.json               every change's numbers, the rungs, the recommendation

>>> result = toyformer.try_fixes("runs/count-original", budget_s=600)          # doctest: +SKIP
>>> result["recommendation"]["change"], result["recommendation"]["verdict"]     # doctest: +SKIP
('model.n_layers=2', 'fixes it')
"""

from toyformer.experiments.trial_fixes.driver import try_fixes
from toyformer.experiments.trial_fixes.levers import LEVERS, Candidate, Lever, candidates, table_markdown
from toyformer.experiments.trial_fixes.measure import VERDICTS
from toyformer.experiments.trial_fixes.outputs import format_table, markdown, recommendation_text

__all__ = ["LEVERS", "VERDICTS", "Candidate", "Lever", "candidates", "format_table", "markdown",
           "recommendation_text", "table_markdown", "try_fixes"]
