"""Every analysis at every kept step: when did each head take its role, when did each quantity
become readable, when did the run memorise and when did it generalise.

A run trained with ``train.keep_checkpoints=log`` keeps its weights at log-spaced steps in
``RUN_DIR/checkpoints/``; with the final weights they are the steps analysed here. At each one
the head roles (``roles``), the probes (``probes``) and, for modular arithmetic, the Fourier
account (``phases.fourier``) are measured. A head's role *appeared* at the first kept step from
which its final role's score stays at or above the threshold; a quantity became *readable* at
the first kept step from which its probe accuracy stays at or above ``probes.READABLE``.

>>> ot = over_training("runs/grok")                        # doctest: +SKIP
>>> ot["phases"]["memorised"]["step"], ot["phases"]["generalised"]["step"]   # doctest: +SKIP
(180, 1420)
"""

from __future__ import annotations

from pathlib import Path

from toyformer.errors import ConfigError
from toyformer.explain.phases import fourier, phases
from toyformer.explain.probes import READABLE, probe
from toyformer.explain.roles import THRESHOLD, head_roles, patterns
from toyformer.inspect.capture import subject
from toyformer.run import checkpoint


def steps_of(run) -> list[tuple[int, Path | None]]:
    """The kept ``(step, path)`` of a run directory, ending with its current weights (path None)."""
    kept = checkpoint.kept_checkpoints(run.run_dir)
    final = run.summary.get("steps") or (run.metrics[-1]["step"] if run.metrics else None)
    kept = [(s, p) for s, p in kept if final is None or s < final]
    return kept + [(final if final is not None else (kept[-1][0] + 1 if kept else 0), None)]


def over_training(source, n: int = 256, threshold: float = THRESHOLD, probe_iters: int = 50) -> dict:
    """Head roles, probe accuracies and (modular arithmetic) the Fourier account at every kept
    step of ``source`` (a Run or a run directory), the steps at which each appeared, and the
    run's phases. A run without kept checkpoints is a ConfigError naming the setting."""
    s = subject(source)
    run = s.run
    if run is None or run.run_dir is None:
        raise ConfigError("analysis over training needs a run directory")
    steps = steps_of(run)
    if len(steps) < 2:
        raise ConfigError(f"{str(run.run_dir)!r} kept no checkpoints; train it with train.keep_checkpoints=log")
    final_state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    points = []
    try:
        for step, path in steps:
            if path is not None:
                checkpoint.load_weights(path, run.model, run.device)
            else:
                run.model.load_state_dict(final_state)
            roles = head_roles(run, n=n, threshold=threshold)
            probes = probe(run, n=n, iters=probe_iters)
            four = fourier(run)
            points.append({"step": step, "roles": roles,
                           "probes": [{k: r[k] for k in ("stream", "layer", "target", "accuracy", "chance")}
                                      for r in probes],
                           "fourier": None if four is None else {k: four[k] for k in (
                               "key_frequencies", "key_share", "loss", "restricted_loss", "excluded_loss")}})
    finally:
        run.model.load_state_dict(final_state)
    return {"steps": [p["step"] for p in points], "points": points, "heads": _heads(points, threshold),
            "probes": _probes(points), "phases": phases(run.metrics)}


def _stays_from(steps: list[int], ok: list[bool]) -> int | None:
    """The first step from which ``ok`` holds to the end."""
    first = None
    for step, good in zip(steps, ok):
        first = (step if first is None else first) if good else None
    return first


def _heads(points: list[dict], threshold: float) -> list[dict]:
    steps = [p["step"] for p in points]
    out = []
    for i, final in enumerate(points[-1]["roles"]):
        role, best = final["role"], final.get("best")
        scores = [p["roles"][i]["scores"].get(best) for p in points] if best else []
        appeared = None
        if role != "mixed":
            limit = patterns()[role].threshold or threshold
            appeared = _stays_from(steps, [sc is not None and sc >= limit for sc in scores])
        out.append({"module": final["module"], "head": final["head"], "role": role, "pattern": best,
                    "scores": scores, "appeared_at": appeared})
    return out


def _probes(points: list[dict]) -> list[dict]:
    steps = [p["step"] for p in points]
    out = []
    for i, final in enumerate(points[-1]["probes"]):
        acc = [p["probes"][i]["accuracy"] if i < len(p["probes"]) else None for p in points]
        ok = [a is not None and a >= READABLE for a in acc]
        out.append({**{k: final[k] for k in ("stream", "layer", "target")}, "accuracy": acc,
                    "readable_from": _stays_from(steps, ok)})
    return out
