"""Figures: attention grids, embedding maps, learning curves, accuracy by length and by position.

Matplotlib is imported lazily and used without pyplot (``matplotlib.figure.Figure`` on the Agg
canvas), so plotting never touches a notebook's backend or global figure state. Every function
returns a ``Figure``; ``save`` writes it atomically, ``png_bytes`` renders it for a report.

>>> fig = curves_figure(run.metrics, run.summary)           # doctest: +SKIP
>>> save(fig, "runs/rev/curves.png")                         # doctest: +SKIP
"""

from __future__ import annotations

import io
import math
from contextlib import contextmanager
from pathlib import Path

from toyformer.errors import ConfigError
from toyformer.files import atomic_write, read_json

WHAT = ("attention", "embeddings", "curves", "by-length", "by-position")  # what plot_run draws

TRAIN, VAL, CHANCE, TARGET = "#3b6fb6", "#e07a2f", "#c0392b", "#7f8c8d"
STYLE = {
    "font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.labelsize": 9,
    "axes.spines.top": False, "axes.spines.right": False, "axes.edgecolor": "#888888",
    "axes.grid": True, "grid.color": "#dddddd", "grid.linewidth": 0.6, "legend.frameon": False,
    "legend.fontsize": 8, "xtick.color": "#444444", "ytick.color": "#444444", "savefig.dpi": 100,
    "axes.axisbelow": True,
}


@contextmanager
def _style():
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def png_bytes(fig, dpi: int | None = None, fmt: str = "png") -> bytes:
    """Render ``fig`` to PNG bytes (or ``fmt``: svg, pdf)."""
    buf = io.BytesIO()
    with _style():
        fig.savefig(buf, format=fmt, dpi=dpi, facecolor="white")
    return buf.getvalue()


IMAGE_SUFFIXES = (".png", ".svg", ".pdf")


def check_image_path(path: Path) -> Path:
    """``path`` if its suffix names a format figures are written in, else a ConfigError."""
    if Path(path).suffix.lower() not in IMAGE_SUFFIXES:
        raise ConfigError(f"out={str(path)!r}: a figure is written as {', '.join(IMAGE_SUFFIXES)}; "
                          f"allowed suffixes: {', '.join(IMAGE_SUFFIXES)}")
    return Path(path)


def save(fig, path: str | Path, dpi: int | None = None) -> Path:
    """Write ``fig`` atomically (a reader never sees half an image) as PNG, SVG or PDF, by the suffix."""
    fmt = check_image_path(Path(path)).suffix.lower().lstrip(".")
    data = png_bytes(fig, dpi, fmt)
    atomic_write(Path(path), lambda tmp: Path(tmp).write_bytes(data))
    return Path(path)


def label(token: str, limit: int = 12) -> str:
    """A token as plot text: literal dollar signs (no mathtext), long tokens shortened.

    >>> label("$x$"), label("abcdefghijklmnop", 6)
    ('\\\\$x\\\\$', 'abcde…')
    """
    token = token if len(token) <= limit else token[: limit - 1] + "…"
    return token.replace("$", r"\$")


def _ticks(ax, axis: str, words: list[str], fontsize: float) -> None:
    """Token labels on an axis; every k-th one when there are too many to read."""
    step = max(1, math.ceil(len(words) / 40))
    idx = list(range(0, len(words), step))
    texts = [label(words[i]) for i in idx]
    if axis == "x":
        ax.set_xticks(idx, texts, rotation=90, fontsize=fontsize)
    else:
        ax.set_yticks(idx, texts, fontsize=fontsize)


def attention_figure(maps, row: int = 0, names: list[str] | None = None, notes: dict | None = None):
    """A grid of attention maps for one example: one row per attention module (layers, in
    order: encoder, decoder self-attention, cross-attention), one column per head; queries down,
    keys across, each labelled with its tokens. ``notes`` ``{(module, head): text}`` (a head's
    role, from ``toyformer explain``) go into the title of each panel.

    The grid is laid out by hand (constrained layout costs seconds on a hundred panels); in a
    big grid only the first head of each row carries the key labels (the heads share them).
    """
    from matplotlib.figure import Figure

    names = names or maps.names()
    cells = [maps.sample(n, row) for n in names]
    rows, heads = len(names), cells[0][0].shape[0]
    longest = max(max(len(q), len(k)) for _, q, k in cells)
    side = min(4.0, max(1.7, 0.11 * longest + 0.9))  # inches per panel
    fontsize = 7 if longest <= 20 else 5
    every_head = rows * heads <= 24
    chars = max(len(label(t)) for _, q, k in cells for t in q + k)
    text = chars * fontsize * 0.62 / 72 + 0.15  # inches taken by the longest tick label
    left, right, top, bottom, gap_x, gap_y = 0.45 + text, 1.1, 0.8, text + 0.15, 0.12, text + 0.25
    width = left + heads * side + (heads - 1) * gap_x + right
    height = top + rows * side + (rows - 1) * gap_y + bottom
    with _style():
        fig = Figure(figsize=(width, height))
        for r, (name, (w, queries, keys)) in enumerate(zip(names, cells)):
            y0 = height - top - (r + 1) * side - r * gap_y
            for h in range(heads):
                x0 = left + h * (side + gap_x)
                ax = fig.add_axes((x0 / width, y0 / height, side / width, side / height))
                im = ax.imshow(w[h].numpy(), cmap="magma", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
                ax.grid(False)
                if h == 0 or every_head:
                    _ticks(ax, "x", keys, fontsize)
                else:
                    ax.set_xticks([])
                if h == 0:
                    _ticks(ax, "y", queries, fontsize)
                    ax.set_ylabel(name, fontsize=8, fontweight="bold")
                else:
                    ax.set_yticks([])
                note = (notes or {}).get((name, h))
                if note is not None:
                    ax.set_title(f"head {h}: {note}", fontsize=7)
                elif r == 0:
                    ax.set_title(f"head {h}", fontsize=9)
        bar_height = min(3.0, height - top - bottom)
        cax = fig.add_axes(((width - right + 0.3) / width, (height - top - bar_height) / height, 0.15 / width,
                            bar_height / height))
        fig.colorbar(im, cax=cax, label="attention weight")
        given, answer = maps.describe(row)
        fig.text(0.5, 1 - 0.15 / height, label(f"{given}  →  {answer}",
                                               max(40, int(width * 11))) + "\nrows: queries, columns: keys",
                 ha="center", va="top", fontsize=10)
    return fig


def embeddings_figure(maps):
    """One panel per embedding table: tokens as labelled points, positions as a labelled path."""
    with _style():
        fig = _figure(4.6 * len(maps), 4.4)
        axes = fig.subplots(1, len(maps), squeeze=False)[0]
        for ax, m in zip(axes, maps):
            x, y = m.points[:, 0].numpy(), m.points[:, 1].numpy()
            if m.kind == "positions":
                ax.plot(x, y, color="#bbbbbb", linewidth=0.8, zorder=1)
                ax.scatter(x, y, c=range(len(x)), cmap="viridis", s=22, zorder=2)
                step = max(1, math.ceil(len(x) / 25))
                shown = range(0, len(x), step)
            else:
                special = [t.startswith("<") and t.endswith(">") and t in ("<bos>", "<eos>", "<sep>") for t in m.labels]
                ax.scatter(x, y, c=[CHANCE if s else TRAIN for s in special], s=26, zorder=2)
                shown = range(len(x))
            for i in shown:
                ax.annotate(label(m.labels[i]), (x[i], y[i]), xytext=(3, 3), textcoords="offset points", fontsize=8,
                            annotation_clip=False)
            how = "raw (d_model = 2)" if m.method == "raw" else f"PCA, {m.explained:.0%} of variance"
            ax.set_title(f"{m.name} ({how})")
            ax.margins(0.15)
            ax.locator_params(nbins=5)
    return fig


def _clean(values) -> list[float]:
    return [v if isinstance(v, (int, float)) and math.isfinite(v) else float("nan") for v in values]


def curves_figure(metrics: list[dict], summary: dict | None = None, layout: str | None = None,
                  marks: dict[str, int] | None = None):
    """Loss, per-token accuracy and exact match for train and validation over steps.

    With a ``summary`` the chance level (ln C, 1/C), the target and the solving step are drawn.
    For the decoders the training exact match is teacher forced, validation's is greedy.
    ``marks`` ``{label: step}`` flags steps on every panel (the phases ``toyformer explain``
    found: memorised, generalised).
    """
    summary = summary or {}
    steps = [r["step"] for r in metrics]
    chance = summary.get("chance") or {}
    target = (summary.get("target") or {})
    panels = [("loss", "Loss"), ("token_acc", "Per-token accuracy"), ("exact_match", "Exact match")]
    with _style():
        fig = _figure(12, 3.4)
        axes = fig.subplots(1, 3)
        for ax, (key, title) in zip(axes, panels):
            train, val = _clean(r.get(f"train_{key}") for r in metrics), _clean(r.get(f"val_{key}") for r in metrics)
            forced = " (teacher forced)" if key == "exact_match" and layout in ("causal", "seq2seq") else ""
            dots = 3 if len(steps) <= 40 else 0
            ax.plot(steps, train, color=TRAIN, linewidth=1.6, marker="s", markersize=dots, label=f"train{forced}")
            ax.plot(steps, val, color=VAL, linewidth=1.6, marker="o", markersize=dots, label="validation")
            if key == "loss":
                finite = [v for v in train + val if v == v and v > 0]
                if finite and max(finite) / min(finite) > 30:
                    ax.set_yscale("log")
                if chance.get("chance_loss"):
                    ax.axhline(chance["chance_loss"], color=CHANCE, linestyle=":", linewidth=1.2,
                               label=f"chance ln {chance['classes']}")
            else:
                ax.set_ylim(-0.03, 1.03)
                if key == "token_acc" and chance.get("classes"):
                    ax.axhline(1 / chance["classes"], color=CHANCE, linestyle=":", linewidth=1.2, label="chance 1/C")
                if target.get("value") is not None and target.get("metric") == key:
                    ax.axhline(target["value"], color=TARGET, linestyle="--", linewidth=1, label="target")
            if summary.get("solved_at_step") is not None:
                ax.axvline(summary["solved_at_step"], color=TARGET, linestyle="--", linewidth=0.8, label="solved")
            for (label, step), colour in zip((marks or {}).items(), ("#8e44ad", "#27ae60", "#2c3e50")):
                ax.axvline(step, color=colour, linestyle="-.", linewidth=1, label=f"{label} (step {step})")
            ax.set_title(title)
            ax.set_xlabel("step")
            ax.legend(loc="best")
    return fig


def by_position_figure(bp: dict, chance: dict | None = None):
    """Per-token accuracy by answer position (teacher forced), with the chance level 1/C."""
    with _style():
        fig = _figure(7, 3.2)
        ax = fig.subplots()
        xs, ys = bp["position"], bp["token_acc"]
        if len(xs) <= 40:
            ax.bar(xs, ys, color=TRAIN, width=0.75, label="per-token accuracy")
        else:
            ax.plot(xs, ys, color=TRAIN, linewidth=1.4, label="per-token accuracy")
        if chance and chance.get("classes"):
            ax.axhline(1 / chance["classes"], color=CHANCE, linestyle=":", linewidth=1.2, label="chance 1/C")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("answer position")
        ax.set_title("Test accuracy by answer position")
        fig.legend(loc="outside right upper")
    return fig


def by_length_figure(bl: dict):
    """Per-token accuracy and exact match by input length, with the number of test examples."""
    with _style():
        fig = _figure(7, 3.2)
        ax = fig.subplots()
        xs = bl["length"]
        if len(xs) <= 40:
            width = 0.4
            ax.bar([x - width / 2 for x in xs], bl["token_acc"], width, color=TRAIN, label="per-token accuracy")
            ax.bar([x + width / 2 for x in xs], bl["exact_match"], width, color=VAL, label="exact match")
            if len(xs) <= 20:
                for x, k in zip(xs, bl["n"]):
                    ax.annotate(f"n={k}", (x, 1.0), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7)
        else:
            ax.plot(xs, bl["token_acc"], color=TRAIN, label="per-token accuracy")
            ax.plot(xs, bl["exact_match"], color=VAL, label="exact match")
        ax.set_ylim(0, 1.12)
        ax.set_xlabel("input length (tokens)")
        ax.set_title("Test accuracy by input length")
        fig.legend(loc="outside right upper")
    return fig


def plot_run(run_dir: str | Path, what: str = "curves", sample: int | None = None, input_text: str | None = None,
             out: str | Path | None = None, device: str = "auto") -> Path:
    """Draw one figure of a run (``what``: one of ``WHAT``) and write it as a PNG; returns its path.

    ``sample`` (a test example) or ``input_text`` (space-separated tokens) choose what the
    attention maps are drawn for. The curves need no model, so they can be drawn mid-run.

    >>> toyformer.plot_run("runs/rev", "attention", input_text="3 1 4 1")     # doctest: +SKIP
    PosixPath('runs/rev/attention.png')
    """
    from toyformer.run.directory import read_config, read_metrics

    if what not in WHAT:
        raise ConfigError(f"what={what!r} is not allowed; allowed: {', '.join(WHAT)}")
    if what != "attention" and (sample is not None or input_text is not None):
        raise ConfigError("sample= and input_text= apply to what='attention' only")
    if sample is not None and input_text is not None:
        raise ConfigError("give sample= or input_text=, not both")
    run_dir = Path(run_dir)
    config = read_config(run_dir)  # a clear error when it is not a run directory
    out = check_image_path(Path(out) if out else run_dir / f"{what}.png")
    if what == "curves":  # needs no model: works while the run trains
        metrics = read_metrics(run_dir)
        if not metrics:
            raise ConfigError(f"{str(run_dir)!r} has no metrics.jsonl yet (no evaluation so far)")
        summary = read_json(run_dir / "summary.json") if (run_dir / "summary.json").is_file() else None
        return save(curves_figure(metrics, summary, config.get("layout")), out)
    from toyformer.run import load_run

    run = load_run(run_dir, device=device)
    if what == "attention":
        from toyformer.inspect.capture import attention

        if input_text is not None:
            maps = attention(run, input_text)
        else:
            i = sample or 0
            n = len(run.splits.test)
            if not 0 <= i < n:
                raise ConfigError(f"sample={i} is out of range; allowed: 0..{n - 1} (the test set)")
            maps = attention(run, run.splits.test[i : i + 1])
        return save(attention_figure(maps, 0), out)
    if what == "embeddings":
        from toyformer.inspect.capture import embeddings

        return save(embeddings_figure(embeddings(run)), out)
    from toyformer.eval.evaluate import by_length, by_position, evaluate_examples

    cfg = run.config
    test = evaluate_examples(run.model, run.splits.test, cfg.layout, cfg.data.sep, cfg.eval.batch_size, run.device)
    if what == "by-length":
        return save(by_length_figure(by_length(test)), out)
    return save(by_position_figure(by_position(test), run.summary.get("chance")), out)


def lengths_figure(result: dict):
    """Exact match and token accuracy against length (``eval.evaluate_lengths``), the trained
    range shaded."""
    x = [r["length"] for r in result["rows"]]
    fig = _figure(7, 4)
    ax = fig.add_subplot()
    if result["trained"]:
        lo, hi = result["trained"]
        ax.axvspan(lo - 0.5, hi + 0.5, color="tab:green", alpha=0.15, label=f"trained ({lo}..{hi})")
    ax.plot(x, [r["exact_match"] for r in result["rows"]], "o-", label="exact match")
    ax.plot(x, [r["token_acc"] for r in result["rows"]], "s--", label="token accuracy")
    ax.set(xlabel="length", ylabel="accuracy", ylim=(-0.02, 1.02),
           title=f"{result['task']} ({result['layout']}, {result['positional']})")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_lengths(result: dict, path: str | Path) -> Path:
    """``lengths_figure(result)`` written to ``path`` (PNG, SVG or PDF by the suffix)."""
    return save(lengths_figure(result), path)
