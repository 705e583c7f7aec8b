"""The results browser, ``toyformer ui``: a local, read-only web app over the results store and
the run directories. Runs (filter, sort, choose columns, group, select), Compare (overlaid
curves, a mean and 95% band per group, the config keys that differ, final metrics), Run (verdict,
diagnosis, live curves, test examples, an interactive attention viewer, embeddings, accuracy by
length and position) and Sweeps (a pivot with mean ± 95% CI and n per cell, the plots, the points).

Starlette and uvicorn serve it; Plotly.js, from the plotly Python package, draws the charts. All
three are the optional extra ``toyformer[ui]``, imported only when the browser starts, so that
nothing else in toyformer needs them.

>>> toyformer.ui.serve(store="runs/results.sqlite", runs="runs", port=8765)   # doctest: +SKIP
toyformer ui: http://127.0.0.1:8765/runs  (...)
"""

from toyformer.ui.server import Background, serve

__all__ = ["Background", "serve"]
