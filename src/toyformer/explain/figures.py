"""Figures of an explained run: the activation-patching heat map and the analyses over training.
Each returns a matplotlib ``Figure`` (imported lazily, without pyplot); ``inspect.plots.save``
writes it."""

from __future__ import annotations

from toyformer.explain.phases import GENERALISED
from toyformer.explain.probes import READABLE


def patching_figure(p: dict):
    """Layers down, positions across: the share of the clean answer each residual patch restores."""
    import numpy as np
    from matplotlib.figure import Figure

    grid = p["residual"]
    width = max(len(row) for row in grid["restored"])
    data = np.full((len(grid["layers"]), width), np.nan)
    for i, row in enumerate(grid["restored"]):
        data[i, : len(row)] = [np.nan if v is None else v for v in row]
    fig = Figure(figsize=(min(14, 2.5 + 0.45 * width), 1.2 + 0.4 * len(grid["layers"])), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(data, cmap="RdBu", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(grid["layers"])), grid["layers"], fontsize=7)
    streams = {name.split(".", 1)[0] for name in grid["layers"]}
    if len(streams) == 1 and grid.get("tokens"):  # one stream: label the positions with the first pair's tokens
        words = grid["tokens"][streams.pop()]
        ax.set_xticks(range(len(words)), [f"{i}\n{w}" for i, w in enumerate(words)], fontsize=7)
    ax.set_xlabel("position (token of the first clean input)")
    ax.set_title(f"activation patching: share of the clean answer restored (n={p['n']})", fontsize=9)
    fig.colorbar(im, ax=ax, label="restored")
    return fig


def over_training_figure(ot: dict, metrics: list[dict]):
    """Learning curves with the memorisation and generalisation steps flagged; each head's
    final-role score; each readable probe's accuracy; the Fourier account when there is one."""
    from matplotlib.figure import Figure

    steps = ot["steps"]
    four = [p["fourier"] for p in ot["points"]]
    panels = 4 if any(f is not None for f in four) else 3
    fig = Figure(figsize=(6.5, 2.3 * panels), layout="constrained")
    axes = fig.subplots(panels, 1, sharex=True)
    xs = [max(s, 1) for s in steps]
    ax = axes[0]
    m_steps = [max(r["step"], 1) for r in metrics]
    for key, label in (("train_exact_match", "train"), ("val_exact_match", "validation")):
        ax.plot(m_steps, [r.get(key) for r in metrics], label=label)
    ph = ot["phases"]
    for what, colour in (("memorised", "#c0392b"), ("generalised", "#27ae60")):
        if ph.get(what):
            ax.axvline(max(ph[what]["step"], 1), color=colour, ls="--", lw=1, label=f"{what} (step {ph[what]['step']})")
    ax.axhline(GENERALISED, color="#7f8c8d", lw=0.6)
    ax.set_ylabel("exact match")
    _legend(ax, fontsize=7)
    ax = axes[1]
    for h in ot["heads"]:
        if h.get("scores"):
            what = h["role"] if h["role"] != "mixed" else f"mixed, best {h['pattern']}"
            ax.plot(xs, [s if s is not None else float("nan") for s in h["scores"]], marker=".",
                    label=f"{h['module']} h{h['head']}: {what}")
    ax.set_ylabel("role score")
    _legend(ax, fontsize=6)
    ax = axes[2]
    for p in ot["probes"]:
        if p["readable_from"] is not None:
            ax.plot(xs, [a if a is not None else float("nan") for a in p["accuracy"]], marker=".",
                    label=f"{p['target']} ({p['stream']} L{p['layer']})")
    ax.axhline(READABLE, color="#7f8c8d", lw=0.6)
    ax.set_ylabel("probe accuracy")
    _legend(ax, fontsize=6, ncol=2)
    if panels == 4:
        ax = axes[3]
        ax.plot(xs, [f["key_share"] if f else float("nan") for f in four], marker=".", label="key-frequency share")
        ax2 = ax.twinx()
        ax2.plot(xs, [f["restricted_loss"] if f else float("nan") for f in four], color="#27ae60",
                 label="restricted loss")
        ax2.plot(xs, [f["excluded_loss"] if f else float("nan") for f in four], color="#c0392b", label="excluded loss")
        ax.set_ylabel("energy share")
        ax2.set_ylabel("loss")
        ax.legend(fontsize=6, loc="upper left")
        ax2.legend(fontsize=6, loc="upper right")
    axes[-1].set_xscale("log")
    axes[-1].set_xlabel("step (kept checkpoints; log scale)")
    return fig


def _legend(ax, **kwargs) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)
