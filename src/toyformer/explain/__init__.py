"""What did it learn: hooks and an activation cache, ablation, activation patching, head roles
(and what a head's attention does), groups of heads that share a job, circuits (path patching
and EAP-IG over the graph of heads and MLPs), linear probes, the logit lens and direct logit
attribution, analyses over training, and ``explain``, which runs them and writes an account in
sentences, each built from a measurement. ``toyformer.explain.truth`` builds models whose
circuit is known (compiled programs, planted circuits) to score all this against.

>>> result = toyformer.explain.explain("runs/rev")       # doctest: +SKIP
>>> print("\\n".join(result["sentences"]))                 # doctest: +SKIP
"""

from toyformer.explain.ablation import METHODS, ablate, components
from toyformer.explain.circuit import circuit
from toyformer.explain.explainer import explain, read_explain
from toyformer.explain.graph import build_graph
from toyformer.explain.groups import groups, role_groups
from toyformer.explain.hooks import hook_names, run_with_cache, run_with_hooks
from toyformer.explain.lens import direct_logit_attribution, logit_lens
from toyformer.explain.over_training import over_training
from toyformer.explain.patching import patch
from toyformer.explain.phases import fourier, phases
from toyformer.explain.probes import TARGETS, fit_probe, probe
from toyformer.explain.roles import PatternContext, head_roles, patterns, register_pattern
from toyformer.explain.sentences import sentences

__all__ = ["METHODS", "PatternContext", "TARGETS", "ablate", "build_graph", "circuit", "components",
           "direct_logit_attribution", "explain", "fit_probe", "fourier", "groups", "head_roles", "hook_names",
           "logit_lens", "over_training", "patch", "patterns", "phases", "probe", "read_explain", "register_pattern",
           "role_groups", "run_with_cache", "run_with_hooks", "sentences"]
