"""Draw the layers of the package from the import-linter contracts in ``pyproject.toml``.

    python scripts/draw_layers.py                      # writes docs/architecture.svg
    python scripts/draw_layers.py --out layers.png     # any format matplotlib writes

The first contract (``root_package`` layers) is the stack of boxes, top to bottom as the contract
lists it: each layer may import only the boxes below it. The contracts with ``containers`` (the
layers inside one package) are written inside that package's box. The picture is drawn from the
contract, so when the contract changes, run this again and commit the picture
(``tests/docs/test_site.py`` checks that it names every layer).
"""

from __future__ import annotations

import argparse
import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# One line per layer: its one job. A layer missing here gets the first sentence of its docstring.
JOBS = {
    "cli": "the command line: thin, one function of the API per command",
    "bench": "benchmarks users run: throughput, time to solve, replicas, kernels, the ui, the Chomsky suite, the "
             "diagnosis",
    "ui": "the results browser: a local, read-only web app over the runs",
    "experiments": "many runs: results store, sweeps, recipes R0-R4, tune, the measured diagnosis, the Chomsky suite",
    "report": "self-contained HTML pages",
    "explain": "what did it learn: hooks, ablation, patching, head roles, probes, logit lens",
    "inspect": "look inside: attention, embeddings, generation, plots, live curves, TensorBoard",
    "training": "one loop for single runs and replicas; steps, optimiser, summary",
    "eval": "metrics, evaluation, decoding, lengths, diagnosis",
    "run": "Run, build, load_run: a run directory <-> a model and its task",
    "models": "attention, blocks, positional schemes, layouts, kernels, an LSTM",
    "data": "examples -> batches per layout; held-out splits",
    "config": "typed, frozen, validated configuration",
    "tasks": "what to learn: a vocabulary and vectorised sampling",
    "values": "parsing and checking typed values",
    "files": "atomic files, JSON",
    "stats": "mean ± 95% CI",
    "errors": "ConfigError: bad input, one line",
}


def contracts(pyproject: Path = ROOT / "pyproject.toml") -> tuple[list[list[str]], dict[str, list[str]]]:
    """The root stack (each layer a list of sibling modules, top first) and, per container
    package, its inner layers (top first, siblings joined by ``|``)."""
    config = tomllib.loads(pyproject.read_text())["tool"]["importlinter"]
    root = config["root_package"]
    stack, inner = None, {}
    for contract in config["contracts"]:
        if contract.get("type") != "layers":
            continue
        layers = [[part.strip() for part in layer.split("|")] for layer in contract["layers"]]
        if "containers" in contract:
            for container in contract["containers"]:
                inner[container.removeprefix(root + ".")] = [" | ".join(layer) for layer in layers]
        elif stack is None:
            stack = [[name.removeprefix(root + ".") for name in layer] for layer in layers]
    if stack is None:
        raise SystemExit(f"{pyproject}: no layers contract over {root!r}")
    return stack, inner


def job(name: str) -> str:
    if name in JOBS:
        return JOBS[name]
    for path in (ROOT / "src" / "toyformer" / name / "__init__.py", ROOT / "src" / "toyformer" / f"{name}.py"):
        if path.is_file():
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            return doc.split(". ")[0].splitlines()[0] if doc else ""
    return ""


def draw(out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # deterministic, text-as-text SVG: the same contract gives the same file
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "toyformer", "font.family": "DejaVu Sans"})
    stack, inner = contracts()
    heights = [0.75 + 0.32 * max((len(inner.get(n, [])) for n in layer), default=0) for layer in stack]
    total = sum(heights) + 0.25 * (len(stack) - 1)
    fig = plt.figure(figsize=(9.5, total * 0.55 + 1.0))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.9, total + 0.1)
    ax.axis("off")
    y = total
    for layer, h in zip(stack, heights):
        y -= h
        width = 4.0 / len(layer)
        for i, name in enumerate(layer):
            x = 0.2 + i * width
            ax.add_patch(plt.Rectangle((x + 0.05, y), width - 0.1, h, facecolor="#e8f0fe", edgecolor="#3b5b92", lw=1.2))
            ax.text(x + 0.2, y + h - 0.37, name, fontsize=11, fontweight="bold", va="center", color="#1c2f52")
            for j, sub in enumerate(inner.get(name, [])):
                arrow = "" if j == 0 else "> "
                ax.text(x + 0.35, y + h - 0.72 - 0.32 * j, arrow + sub, fontsize=8.5, va="center",
                        family="DejaVu Sans Mono", color="#3b5b92")
        ax.text(4.45, y + h / 2, " · ".join(job(n) for n in layer) if len(layer) > 1 else job(layer[0]),
                fontsize=8.5, va="center", wrap=True, color="#333333")
        y -= 0.25
    ax.annotate("", xy=(9.8, 0.1), xytext=(9.8, total - 0.1),
                arrowprops={"arrowstyle": "->", "color": "#888888", "lw": 1.2})
    ax.text(9.65, total / 2, "imports", rotation=90, fontsize=8, color="#888888", va="center", ha="right")
    ax.text(0.2, -0.55, "Each layer imports only the layers below it (pyproject.toml [tool.importlinter], "
                        "checked by tests/test_architecture.py).\nInside a box: that package's own layers, "
                        "top first (a > b: a may import b).", fontsize=8, color="#555555", va="center")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, metadata={"Date": None} if out.suffix == ".svg" else None)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "architecture.svg")
    args = parser.parse_args(argv)
    print(draw(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
