"""A metric against a swept field: one line per value of another field, the mean over seeds (and
replicas) with a 95% confidence band. Made from result rows (a sweep's, or the store's).

>>> rows = store.query(where="sweep = 'rev'")                                            # doctest: +SKIP
>>> fig = metric_figure(rows, x="task.length", y="test_token_acc", lines="model.d_model")  # doctest: +SKIP
>>> save(fig, "runs/sweeps/rev/acc_by_length.svg")                                      # doctest: +SKIP
"""

from __future__ import annotations

from toyformer.errors import ConfigError
from toyformer.inspect.plots import _figure, _style
from toyformer.experiments.store.table import is_accuracy, pivot, short

COLORS = ["#3b6fb6", "#e07a2f", "#2e8b57", "#c0392b", "#8e44ad", "#7f8c8d", "#b8860b", "#17a2b8"]


def parse_plot(text: str) -> dict:
    """``x=task.length,y=test_token_acc,lines=model.d_model`` -> a dict (x and y required).

    >>> parse_plot("x=length,y=test_token_acc")
    {'x': 'length', 'y': 'test_token_acc'}
    """
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in ("x", "y", "lines") or not value.strip():
            raise ConfigError(f"plot={text!r}: write x=FIELD,y=METRIC[,lines=FIELD]")
        out[key.strip()] = value.strip()
    if "x" not in out or "y" not in out:
        raise ConfigError(f"plot={text!r}: x and y are required, e.g. x=task.length,y=test_token_acc")
    return out


PLOT_NAMES = ("x field", "lines field", "y metric")  # what errors call x, lines and y


def metric_figure(rows: list[dict], x: str, y: str, lines: str | None = None, known: list[str] | None = None,
                  title: str | None = None, names: tuple[str, str, str] = PLOT_NAMES):
    """A matplotlib Figure of ``y`` against ``x`` (numeric x on a numeric axis, else categories);
    ``names``: what an error calls ``x``, ``lines`` and ``y``."""
    if not rows:
        raise ConfigError("nothing to plot: no results match")
    table = pivot(rows, x, lines, y, known, names=names)
    xs = [k[0] for k in table.row_keys]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs)
    pos = xs if numeric else list(range(len(xs)))
    with _style():
        fig = _figure(6.4, 4.0)
        ax = fig.add_subplot()
        drawn = 0
        for j, ck in enumerate(table.col_keys):
            cells = [(p, table.cell(rk, ck)) for p, rk in zip(pos, table.row_keys)]
            points = [(p, c) for p, c in cells if c is not None]
            if not points:
                continue
            px = [p for p, _ in points]
            mean = [c[0] for _, c in points]
            if is_accuracy(table.value):  # the band of an accuracy stays inside [0, 1] (stats.seeds_interval)
                bands = []
                for rk in table.row_keys:
                    if table.cell(rk, ck) is not None:
                        interval = table.interval(rk, ck)
                        assert interval is not None  # a cell with a value has an interval
                        bands.append(interval[1:3])
            else:
                bands = [(c[0] - c[1], c[0] + c[1]) for _, c in points]
            color = COLORS[j % len(COLORS)]
            label = ", ".join(f"{short(f)}={v}" for f, v in zip(table.cols, ck)) if table.cols else None
            ax.plot(px, mean, marker="o", markersize=4, color=color, label=label)
            drawn += 1
            if any(hi > lo for lo, hi in bands):
                ax.fill_between(px, [lo for lo, _ in bands], [hi for _, hi in bands], color=color, alpha=0.18,
                                linewidth=0)
        if not numeric or len(xs) <= 12:  # a tick at every swept value
            ax.set_xticks(pos, [str(v) for v in xs])
        ax.set_xlabel(table.rows[0])
        ax.set_ylabel(table.value)
        several = any(len(v) > 1 for v in table.cells.values())
        ax.set_title(title or f"{table.value} by {short(table.rows[0])}" + (" (mean, 95% CI band)" if several else ""))
        if not drawn:
            ax.text(0.5, 0.5, f"no run has a value of {table.value}", transform=ax.transAxes, ha="center",
                    color="#888888")
        elif table.cols:
            ax.legend()
    return fig
