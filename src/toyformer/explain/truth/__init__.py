"""Models whose circuit is known, to score ``explain``'s circuits and head roles against:
programs compiled to toyformer weights (``programs``, ``compiler``, ``rasp``) and models trained
so that a chosen circuit carries the computation (``planted``, ``plants``); ``score`` compares a
found circuit with the truth (ROC AUC of edges and nodes, role labels). ``toyformer bench
explain-truth`` runs them all.

>>> model, task, truth = compiled("sort")                          # doctest: +SKIP
>>> c = toyformer.explain.circuit(model, task=task, layout="tagger", inputs=task.sample(256, g))  # doctest: +SKIP
>>> scored(c, truth)["resample"]["edge_auc"]                        # doctest: +SKIP
1.0
"""

from toyformer.explain.truth.planted import train_plant
from toyformer.explain.truth.plants import PLANTS
from toyformer.explain.truth.programs import PROGRAMS, compiled
from toyformer.explain.truth.score import label, roc_auc, scored

__all__ = ["PLANTS", "PROGRAMS", "compiled", "label", "roc_auc", "scored", "train_plant"]
