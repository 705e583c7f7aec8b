"""Learning curves while a run trains: ``curves.png`` in the run directory and a live notebook plot.

Both are ``on_eval`` callbacks for ``toyformer.train``. Redrawing costs a few hundred
milliseconds, so each redraws at most every ``min_interval_s`` seconds; ``finish(summary)``
(called by ``train`` when the run ends) draws the final state with the chance level, the target
and the solving step. Their time is not counted in the run's ``wall_s``.

>>> run = toyformer.train(cfg, out_dir="runs/x", on_eval=toyformer.live_curves("runs/x"))  # doctest: +SKIP
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from collections.abc import Callable

from toyformer.files import read_json
from toyformer.run.directory import read_metrics


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's ZMQ shell). Never imports IPython itself."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class _Throttled:
    """Collects records; redraws when ``min_interval_s`` has passed since the last drawing."""

    def __init__(self, min_interval_s: float, layout: str | None):
        self.records: list[dict] = []
        self.min_interval_s, self.layout = min_interval_s, layout
        self._last: float | None = None
        self.draws = 0

    def __call__(self, record: dict) -> None:
        self.records.append(record)
        now = time.monotonic()
        if self._last is None or now - self._last >= self.min_interval_s:
            self._draw(None)
            self._last = time.monotonic()

    def finish(self, summary: dict | None = None) -> None:
        self._draw(summary)

    def _draw(self, summary) -> None:
        from toyformer.inspect.plots import curves_figure

        metrics = self._metrics()
        if metrics:
            self._show(curves_figure(metrics, summary, self.layout))
            self.draws += 1

    def _metrics(self) -> list[dict]:
        return self.records

    _show: Callable[[object], None]  # each kind draws the figure its own way


class CurvesFile(_Throttled):
    """Keep ``RUN_DIR/curves.png`` up to date (written atomically) while the run trains.

    The curves come from ``metrics.jsonl``, so a resumed run's figure shows its whole history.
    """

    def __init__(self, run_dir: str | Path, min_interval_s: float = 2.0, layout: str | None = None):
        super().__init__(min_interval_s, layout)
        self.path = Path(run_dir) / "curves.png"

    def _metrics(self) -> list[dict]:
        run_dir = self.path.parent
        if self.layout is None and (run_dir / "config.json").is_file():
            self.layout = read_json(run_dir / "config.json").get("layout")
        return read_metrics(run_dir) or self.records

    def _show(self, fig) -> None:
        from toyformer.inspect.plots import save

        save(fig, self.path)


class NotebookCurves(_Throttled):
    """Redraw the curves in place in a Jupyter notebook output cell.

    ``show(png_bytes)`` displays one frame; the default updates one IPython display in place.
    """

    def __init__(self, min_interval_s: float = 0.5, layout: str | None = None, show: Callable[[bytes],
                                                                                              None] | None = None):
        super().__init__(min_interval_s, layout)
        self.show = show or self._ipython_show
        self._handle = None

    def _ipython_show(self, png: bytes) -> None:
        from IPython.display import Image, display

        if self._handle is None:
            self._handle = display(Image(data=png), display_id=True)
        else:
            self._handle.update(Image(data=png))

    def _show(self, fig) -> None:
        from toyformer.inspect.plots import png_bytes

        self.show(png_bytes(fig))


class LiveCurves:
    """Several live-curve callbacks as one ``on_eval`` callback."""

    def __init__(self, parts: list):
        self.parts = parts

    def __call__(self, record: dict) -> None:
        for part in self.parts:
            part(record)

    def finish(self, summary: dict | None = None) -> None:
        for part in self.parts:
            part.finish(summary)


def live_curves(run_dir: str | Path | None = None, notebook: bool | None = None,
                layout: str | None = None) -> LiveCurves:
    """An ``on_eval`` callback: ``curves.png`` in ``run_dir`` (when given) and, in a Jupyter
    notebook (or with ``notebook=True``), a plot redrawn in place at each evaluation."""
    parts: list = []
    if run_dir is not None:
        parts.append(CurvesFile(run_dir, layout=layout))
    if in_notebook() if notebook is None else notebook:
        parts.append(NotebookCurves(layout=layout))
    return LiveCurves(parts)
