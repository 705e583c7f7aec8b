"""The results browser, ``toyformer ui``: a local, read-only web app over the results store and
the run directories. Runs (filter, sort, choose columns, group by a field or by every setting
but the seed, min/max/best per column, select, export, parallel coordinates; fast at ten
thousand runs), Compare (overlaid curves, a mean and 95% band per group, the settings side by
side, final metrics), Run (verdict, solved with its evidence, diagnosis, live curves with the
phases, test examples, an attention viewer with each head's role, what ``toyformer explain``
found, the circuit, embeddings, accuracy by length and position), Sweeps (a pivot with mean ±
95% CI and n per cell, the plots, the points) and Tune (each Optuna study: its history, the
importances, parallel coordinates, pruned trials, the re-measured seeds, live while it searches).
Every test exact match is shown with its n and 95% interval.

Starlette and uvicorn serve it; Plotly.js, from the plotly Python package, draws the charts. All
three are the optional extra ``toyformer[ui]``, imported only when the browser starts, so that
nothing else in toyformer needs them.

>>> toyformer.ui.serve(store="runs/results.sqlite", runs="runs", port=8765)   # doctest: +SKIP
toyformer ui: http://127.0.0.1:8765/runs  (...)
"""

from toyformer.ui.server import Background, serve

__all__ = ["Background", "serve"]
