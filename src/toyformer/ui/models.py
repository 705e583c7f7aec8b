"""The run page's looks inside a model: test examples with the model's answers, attention on a
test example or a typed input, embeddings. Each loads the run once: an LRU of a few loaded runs,
keyed by the run directory and the time its weights were written (a run still training is
loaded again after its next checkpoint), so hovering and switching heads never reload.

Inference runs under one lock: the inspectors switch a model between train and eval mode, and
the server answers requests from several threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from toyformer.errors import ConfigError

CACHE_SIZE = 4
N_SAMPLES = 12  # test examples on the run page (the attention viewer picks among them)
DIGITS = 4  # weights and coordinates are rounded for the page


class Models:
    """Loaded runs, the least recently used dropped beyond ``size``."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self._runs: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # how many times a run was loaded (tests check that hovering does not reload)

    def _stamp(self, run_dir: Path) -> tuple:
        for name in ("model.safetensors", "checkpoint.safetensors"):
            try:
                return name, (run_dir / name).stat().st_mtime_ns
            except OSError:
                continue
        raise ConfigError(f"{str(run_dir)!r} has no weights yet (no model.safetensors or checkpoint); "
                          "wait for its first evaluation")

    def _get(self, run_dir: Path):
        from toyformer.run import load_run

        key = (str(run_dir), self._stamp(run_dir))
        if key in self._runs:
            self._runs.move_to_end(key)
            return self._runs[key]
        run = load_run(run_dir, device="cpu")
        self.loads += 1
        for old in [k for k in self._runs if k[0] == key[0]]:  # an older checkpoint of the same run
            del self._runs[old]
        self._runs[key] = run
        while len(self._runs) > self.size:
            self._runs.popitem(last=False)
        return run

    def samples(self, run_dir: Path, n: int = N_SAMPLES) -> list[dict]:
        """The first ``n`` test examples: input, target, the model's output, correct."""
        from toyformer.inspect import samples

        with self._lock:
            return samples(self._get(run_dir), n=n)

    def attention(self, run_dir: Path, sample: int | None = None, text: str | None = None) -> dict:
        """Every attention map of test example ``sample``, or of ``text`` (space-separated tokens):
        per module its weights ``[heads][queries][keys]`` and the query and key tokens."""
        from toyformer.inspect import attention

        with self._lock:
            run = self._get(run_dir)
            if text is not None and text.strip():
                inputs = text
            else:
                i = sample or 0
                n = len(run.splits.test)
                if not 0 <= i < n:
                    raise ConfigError(f"test example {i} does not exist; allowed: 0 to {n - 1}")
                inputs = run.splits.test[i:i + 1]
            maps = attention(run, inputs)
        source, answer = maps.describe(0)
        modules = []
        for name in maps.names():
            w, queries, keys = maps.sample(name, 0)
            modules.append({"name": name, "heads": int(w.shape[0]), "queries": queries, "keys": keys,
                            "weights": [[[round(x, DIGITS) for x in row] for row in head] for head in w.tolist()]})
        return {"input": source, "output": answer, "layout": maps.layout, "modules": modules}

    def embeddings(self, run_dir: Path) -> list[dict]:
        """Each embedding table in 2-D (token and learned position embeddings)."""
        from toyformer.inspect import embeddings

        with self._lock:
            maps = embeddings(self._get(run_dir))
        return [{"name": m.name, "kind": m.kind, "method": m.method, "explained": m.explained, "labels": m.labels,
                 "x": [round(float(p), DIGITS) for p in m.points[:, 0]],
                 "y": [round(float(p), DIGITS) for p in m.points[:, 1]]} for m in maps]
