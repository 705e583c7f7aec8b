"""The lever table: for each symptom of the diagnosis (``eval.diagnosis``), the settings that the
field's tuning guides tie to it, and the values to try from a run's config. ``toyformer diagnose
--levers`` prints it; a lever added to ``LEVERS`` is tried by ``toyformer diagnose --try``.

After a symptom's levers come the layout's default search space (``tune.space``): a value on
each side of the run's own for every key, so a fix the table does not know is still found.

>>> cfg = RunConfig.from_dict({"task": "modular_arithmetic", "train": {"weight_decay": 0.0}})
>>> [c.label for c in candidates(cfg, ["memorising"], with_space=False)][:2]
['train.weight_decay=0.1 + train.steps=6000', 'train.weight_decay=0.3 + train.steps=6000']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections.abc import Callable

from toyformer.config import RunConfig, positional
from toyformer.errors import ConfigError

# how the diagnosis names a symptom -> how the table's reader knows it
SYMPTOMS = {"memorising": "memorising", "chance": "stuck at chance", "diverged": "unstable",
            "still_improving": "slow", "by_position": "limited to some positions",
            "by_length": "limited to some lengths", "unexplained": "no single symptom"}


@dataclass(frozen=True)
class Lever:
    """A setting to change for a symptom: ``key`` (a dotted config key), ``values(config)`` (the
    values to try, given the run's config; none when the lever does not apply; a dict is several
    overrides at once) and ``why``."""

    key: str
    values: Callable[[RunConfig], list]
    why: str
    shown: str = ""  # the values in words, for the printed table


@dataclass(frozen=True)
class Candidate:
    """One change to try: its ``overrides`` and where it came from (``symptom``, or ``space``)."""

    overrides: dict
    source: str
    why: str = ""
    label: str = field(default="")

    def __post_init__(self):
        if not self.label:
            object.__setattr__(self, "label", " + ".join(f"{k}={_text(v)}" for k, v in self.overrides.items()))


def _text(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else "none" if value is None else str(value)


def _scaled(get: Callable[[RunConfig], float], *factors: float, lo: float = 0.0, hi: float = math.inf,
            digits: int = 3) -> Callable[[RunConfig], list]:
    """The value times each factor, rounded to ``digits`` significant digits, kept in [lo, hi]."""
    def values(c: RunConfig) -> list:
        now = get(c)
        out = [float(f"{now * f:.{digits}g}") for f in factors]
        return [v for v in out if lo <= v <= hi and v != now]
    return values


def _steps(*factors: int) -> Callable[[RunConfig], list]:
    return lambda c: [c.train.steps * f for f in factors]


def _decay_and_time(c: RunConfig) -> list:
    """Each weight decay of the grokking range above the run's, with three times its steps (a value
    of two overrides at once): decay alone within the steps that memorised rarely generalises. On
    a finite domain, also the strongest decay with each larger share of the domain: the time to
    generalise falls steeply as the training share grows, so the two together grok within steps
    that neither reaches alone (a half share may not grok at all within ten times the steps)."""
    out = [{"train.weight_decay": wd, "train.steps": 3 * c.train.steps} for wd in (0.1, 0.3, 1.0)
           if wd > (c.train.weight_decay or 0)]
    if out:
        out += [{"train.weight_decay": 1.0, "data.train_share": share, "train.steps": 3 * c.train.steps}
                for share in _shares(c)]
    return out


def finite_share(c: RunConfig) -> bool:
    """A finite domain cut into training and held-out parts (where ``data.train_share`` applies)."""
    holdout = c.data.holdout == "yes" or (c.data.holdout == "auto" and type(c.task.build()).holdout)
    return holdout and c.data.min_length is None and c.task.build().domain() is not None


def _shares(c: RunConfig) -> list:
    if not finite_share(c):
        return []
    now = c.data.train_share if c.data.train_share is not None else 0.7
    return [s for s in (0.8, 0.9) if s > now]


def _narrower(c: RunConfig) -> list:
    half = c.model.d_model // 2
    return [half] if half >= 16 and half % c.model.n_heads == 0 else []


BOTH_ENDS = {"model.positional": positional.DEFAULT, "model.positions_from": "both"}  # one rule for every length


def _no_positions(c: RunConfig) -> bool:
    return c.model.positions.scheme.plug == "none"


def _both_ends(c: RunConfig) -> list:
    """From no positions, on a range of lengths: learned positions counted from both ends (a value
    of several overrides at once)."""
    return [BOTH_ENDS] if _no_positions(c) and c.data.min_length is not None else []


def _other_schemes(c: RunConfig) -> list:
    """Every other positional scheme on sequence positions (and, from none, learned from both ends)."""
    if c.model.family != "transformer":
        return []
    return [s for s in positional.candidates() if s != c.model.positional] + _both_ends(c)


def _positions(c: RunConfig) -> list:
    """From no positions in a layout that reads positions: learned ones (and from both ends)."""
    return [positional.DEFAULT, *_both_ends(c)] if _no_positions(c) and c.layout != "classifier" else []


LEVERS: dict[str, list[Lever]] = {
    "memorising": [
        Lever("train.weight_decay", _decay_and_time, "decay pulls memorised weights towards a simpler rule; "
              "grokking needs 0.1-1 with AdamW, and steps: it comes long after memorising",
              "0.1, 0.3, 1 (with x3 steps; 1 also with each larger training share)"),
        Lever("data.train_share", _shares, "more of a finite domain to learn from, fewer inputs left to guess",
              "0.8, 0.9 of the domain"),
        Lever("data.train_size", lambda c: [None] if c.data.train_size is not None else [],
              "a fresh stream instead of a fixed pool to memorise", "none (a stream)"),
        Lever("model.dropout", lambda c: [0.1] if c.model.dropout < 0.1 else [],
              "dropout makes memorising single examples harder", "0.1"),
        Lever("model.d_model", _narrower, "a narrower model has less room to memorise", "half"),
        Lever("model.n_layers", lambda c: [c.model.n_layers - 1] if c.model.n_layers > 1 else [],
              "a shallower model has less room to memorise", "one fewer"),
        Lever("train.steps", _steps(3), "generalisation can come long after memorising (grokking)", "x3"),
    ],
    "chance": [
        Lever("model.norm", lambda c: ["pre"] if c.model.norm == "post" else [],
              "a post-norm stack deeper than a couple of layers often never leaves chance; pre-norm keeps the "
              "residual path clean", "pre"),
        Lever("model.n_layers", lambda c: [2] if c.model.n_layers > 2 else [c.model.n_layers + 1],
              "deep stacks are hard to start; one layer may be too few", "2 (or one more)"),
        Lever("train.warmup_steps", lambda c: [100] if c.train.warmup_steps < 100 else [],
              "warm-up lets Adam's moments settle before full-size steps", "100"),
        Lever("train.lr", lambda c: _scaled(lambda c: c.train.lr, 1 / 3, 3, lo=1e-5, hi=0.03)(c)
              + ([3e-3] if not 1e-4 <= c.train.lr <= 1e-2 else []),
              "too low and nothing moves in the steps given; too high and updates overshoot",
              "/3, x3 (and 3e-3 from outside 1e-4..1e-2)"),
        Lever("model.positional", _positions, "without positions an encoder sees a bag of tokens",
              "learned (and from both ends)"),
        Lever("train.steps", _steps(4), "too few steps to leave the plateau", "x4"),
    ],
    "diverged": [
        Lever("train.lr", lambda c: _scaled(lambda c: c.train.lr, 1 / 3, 1 / 10, lo=1e-5)(c)
              + ([3e-3] if c.train.lr > 0.03 else []),
              "the usual cause of a blow-up: smaller steps", "/3, /10 (and 3e-3 from above 0.03)"),
        Lever("train.warmup_steps", lambda c: [max(100, 4 * c.train.warmup_steps)] if c.train.warmup_steps < 400
              else [], "full-size steps on fresh Adam moments blow up", "100 (or x4)"),
        Lever("train.grad_clip", lambda c: [1.0] if c.train.grad_clip is None or c.train.grad_clip > 1.0 else [],
              "clipping the gradient norm bounds each step", "1"),
        Lever("model.norm", lambda c: ["pre"] if c.model.norm == "post" else [], "pre-norm is more stable", "pre"),
    ],
    "still_improving": [
        Lever("train.steps", _steps(2, 4), "validation was still rising: train longer", "x2, x4"),
        Lever("train.lr", _scaled(lambda c: c.train.lr, 3, hi=0.03), "larger steps get there sooner", "x3"),
        Lever("data.batch_size", lambda c: [2 * c.data.batch_size] if c.data.batch_size <= 256 else [],
              "a larger batch gives cleaner gradients per step", "x2"),
        Lever("train.schedule", lambda c: ["constant"] if c.train.schedule != "constant" else ["cosine"],
              "a decayed learning rate may have stopped the run short of its target", "constant (or cosine)"),
    ],
    "by_position": [
        Lever("model.positional", _other_schemes, "the model must know where each token is",
              "the other schemes (from none: also learned from both ends)"),
        Lever("model.causal_encoder", lambda c: [False] if c.model.causal_encoder else [],
              "a causal encoder cannot see later tokens", "false"),
        Lever("model.n_layers", lambda c: [c.model.n_layers + 1], "routing by position may need another layer",
              "one more"),
        Lever("train.steps", _steps(2), "some positions are learned later than others", "x2"),
    ],
    "by_length": [
        Lever("model.positional", _other_schemes, "positions beyond those seen in training have untrained encodings",
              "the other schemes (from none: also learned from both ends)"),
        Lever("model.positions_from", lambda c: ["both"] if c.model.positions_from == "start"
              and c.model.positions.scheme.both_ends else [], "counting from both ends makes one rule for every length",
              "both"),
        Lever("model.n_layers", lambda c: [c.model.n_layers + 1], "longer inputs may need more depth", "one more"),
        Lever("train.steps", _steps(2), "the longer inputs are often learned last", "x2"),
    ],
    "unexplained": [
        Lever("model.positional", _positions, "without positions an encoder sees a bag of tokens: order-dependent "
              "tasks fail", "learned (and from both ends)"),
        Lever("train.steps", _steps(2), "train longer", "x2"),
        Lever("train.lr", _scaled(lambda c: c.train.lr, 1 / 3, 3, lo=1e-5, hi=0.03),
              "try a learning rate on each side of the run's", "/3, x3"),
    ],  # then the default search space
}


def space_values(key: str, spec: dict, now) -> list:
    """A value on each side of ``now`` in a search-space entry (``{"log": [lo, hi]}`` ...): a third
    and three times (log), one step (int), the ends (float), every other choice."""
    kind, values = next(iter(spec.items()))
    if kind == "choices":
        return [v for v in values if v != now]
    lo, hi = values
    if kind == "log":
        if now is None or not now > 0:
            return [float(f"{math.sqrt(lo * hi):.3g}")]
        return [v for v in (float(f"{max(lo, now / 3):.3g}"), float(f"{min(hi, now * 3):.3g}")) if v != now]
    if kind == "int":
        step = max(1, (hi - lo) // 4)
        return [v for v in dict.fromkeys((max(lo, now - step), min(hi, now + step))) if v != now]
    return [v for v in (lo, hi) if v != now]


def candidates(config: RunConfig, symptoms: list[str], space: dict | None = None,
               with_space: bool = True) -> list[Candidate]:
    """The changes to try, in order: each symptom's levers (``LEVERS``), then ``space`` (default:
    the layout's default search space); each valid for ``config`` (a value the config refuses is
    left out) and new (a key=value tried once)."""
    out: dict[str, Candidate] = {}

    def add(key: str, value, source: str, why: str) -> None:
        overrides = value if isinstance(value, dict) else {key: value}
        if repr(overrides) in out:
            return
        try:
            config.with_overrides(overrides)
        except ConfigError:
            return
        out[repr(overrides)] = Candidate(overrides, source, why)

    for symptom in dict.fromkeys(symptoms):
        for lever in LEVERS.get(symptom, []):
            for value in lever.values(config):
                add(lever.key, value, symptom, lever.why)
    if with_space:
        from toyformer.experiments.tune.space import default_space

        full = config.to_dict()
        for key, spec in (space or default_space(config.layout)).items():
            section, leaf = key.split(".", 1)
            for value in space_values(key, spec, full[section][leaf]):
                add(key, value, "space", "the layout's default search space")
    return list(out.values())


def table_markdown() -> str:
    """The lever table as markdown (``toyformer diagnose --levers``)."""
    lines = ["| symptom | setting | values tried | why |", "|---|---|---|---|"]
    for symptom, levers in LEVERS.items():
        for lever in levers or [Lever("(none)", lambda c: [], "the layout's default search space only", "-")]:
            lines.append(f"| {symptom} ({SYMPTOMS[symptom]}) | `{lever.key}` | {lever.shown} | {lever.why} |")
    lines += ["", "Then, for every symptom, the layout's default search space (`toyformer tune`'s): a value on each "
                  "side of the run's own for every key."]
    return "\n".join(lines)
