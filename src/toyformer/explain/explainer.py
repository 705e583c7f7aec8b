"""``explain``: run the analyses on a run directory and write ``explain.json`` with an account in
sentences (``sentences``), each built from the measurements it cites.

The fast preset (the default) measures the head roles (and the attention statistics of every
head), the ablation of every component (zero, mean and resample), the joint ablation of the heads
that share a role (``groups``), what each used head without a named role depends on, the probes,
the logit lens and direct logit attribution, and reads the phases (and, for modular arithmetic,
the Fourier account) of the run; ``full=True`` adds activation patching on held-out pairs and
uses more examples; ``circuit=True`` adds the circuits (``circuit``: the smallest faithful and
complete set of edges under each ablation). Clean and corrupted inputs (``inputs``, ``corrupt``,
checked against the run's input tokens and lengths) add patching between them;
``over_training=True`` repeats the roles and probes at every kept checkpoint
(``train.keep_checkpoints=log``).

An unfinished run is explained from its last checkpoint (and says so); a replica run directory
(``RUN/replicas/<i>/``) is explained replica by replica.

>>> result = explain("runs/rev")                         # doctest: +SKIP
>>> print("\\n".join(result["sentences"]))                 # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path

from toyformer.errors import ConfigError
from toyformer.explain.ablation import ablate
from toyformer.explain.circuit import circuit as circuit_of
from toyformer.explain.data import check_inputs, paired
from toyformer.explain.graph import build_graph
from toyformer.explain.groups import check_descriptions, groups
from toyformer.explain.lens import direct_logit_attribution, logit_lens
from toyformer.explain.over_training import over_training as over_training_of
from toyformer.explain.patching import patch
from toyformer.explain.phases import fourier, phases
from toyformer.explain.probes import probe
from toyformer.explain.roles import head_roles
from toyformer.explain.sentences import sentences
from toyformer.files import read_json, write_json
from toyformer.inspect.capture import subject
from toyformer.run import Run, checkpoint, load_run

FILE = "explain.json"
PRESETS = {"fast": {"n": 512, "roles_n": 256, "patch_n": 0}, "full": {"n": 2000, "roles_n": 1000, "patch_n": 128}}


def replica_dirs(run_dir: Path) -> list[Path] | None:
    """The replica directories of a replica run (None for a single run)."""
    if not (run_dir / "replicas.json").is_file() or (run_dir / "config.json").is_file():
        return None
    found = [p for p in (run_dir / "replicas").iterdir() if p.name.isdigit()] if (run_dir / "replicas").is_dir() else []
    if not found:
        raise ConfigError(f"{str(run_dir)!r} is a replica run without replica directories yet")
    return sorted(found, key=lambda p: int(p.name))


def explain(source, inputs: str | None = None, corrupt: str | None = None, full: bool = False,
            over_training: bool = False, n: int | None = None, device: str | None = None, write: bool = True,
            circuit: bool = False) -> dict:
    """Explain the run in ``source`` (a run directory, or a ``Run``; see the module docstring) and
    write ``RUN_DIR/explain.json`` (``write=False``, or a run trained without a directory: only
    return it). A replica run directory returns ``{"replicas": [result, ...]}``."""
    run = source if isinstance(source, Run) else None
    run_dir = run.run_dir if run is not None else Path(source)
    reps = replica_dirs(run_dir) if run is None else None
    if reps is not None:
        return {"run_dir": str(run_dir), "replicas": [
            explain(p, inputs, corrupt, full, over_training, n, device, write, circuit) for p in reps]}
    if corrupt is not None and inputs is None:
        raise ConfigError("corrupt= needs inputs= too: patching puts activations of the clean input into the "
                          "corrupted one")
    preset = dict(PRESETS["full" if full else "fast"])
    if n is not None:
        preset.update(n=n, roles_n=min(n, preset["roles_n"]))
    t_load = time.perf_counter()
    run = load_run(run_dir, device=device) if run is None else run
    if over_training and (run_dir is None or not checkpoint.kept_checkpoints(run_dir)):  # before any analysis
        raise ConfigError(f"{str(run_dir)!r} kept no checkpoints; train it with train.keep_checkpoints=log")
    check_inputs(subject(run), inputs, corrupt)
    if circuit:  # a model without circuits fails before anything is measured
        build_graph(run.model, run.config.layout)
    finished = bool(run.summary)
    step = run.summary.get("steps") if finished else (run.metrics[-1]["step"] if run.metrics else 0)
    result = {"run_dir": None if run_dir is None else str(run_dir), "task": run.config.task.name,
              "layout": run.config.layout, "step": step,
              "finished": finished, "weights": "model.safetensors" if finished else "checkpoint.safetensors",
              "preset": "full" if full else "fast", "circuit_asked": circuit, "input": inputs, "corrupt": corrupt}
    timings = {"load_s": time.perf_counter() - t_load}

    def timed(name, fn):
        t0 = time.perf_counter()
        result[name] = fn()
        timings[f"{name}_s"] = time.perf_counter() - t0

    if corrupt is not None:  # first: bad inputs fail before the rest is measured
        timed("patching", lambda: patch(run, inputs, corrupt))
    timed("roles", lambda: head_roles(run, n=preset["roles_n"]))
    timed("ablation", lambda: ablate(run, n=preset["n"]))
    scored, refs = paired(subject(run), preset["n"])
    timed("descriptions", lambda: check_descriptions(run, result["roles"], result["ablation"], scored))
    timed("groups", lambda: groups(run, result["roles"], result["ablation"], scored, refs))
    if circuit:
        timed("circuit", lambda: circuit_of(run, n=preset["n"]))
    timed("probes", lambda: probe(run, n=preset["n"]))
    timed("lens", lambda: logit_lens(run, n=preset["n"]))
    timed("dla", lambda: direct_logit_attribution(run, n=preset["n"]))
    if corrupt is None and preset["patch_n"]:
        timed("patching", lambda: patch(run, n=preset["patch_n"]))
    timed("phases", lambda: phases(run.metrics))
    timed("fourier", lambda: fourier(run))
    if over_training:
        timed("over_training", lambda: over_training_of(run, n=min(preset["n"], 256)))
    timings["analysis_s"] = sum(v for k, v in timings.items() if k != "load_s")
    result["timings"] = timings
    result["sentences"] = sentences(result)
    if write and run_dir is not None:
        write_json(Path(run_dir) / FILE, result)
    return result


def read_explain(run_dir) -> dict | None:
    """``RUN_DIR/explain.json`` if ``toyformer explain`` wrote one, else None."""
    path = Path(run_dir) / FILE
    return read_json(path) if path.is_file() else None
