"""The circuit as a picture: a self-contained SVG drawn from ``explain.json``'s circuit (the union
over the ablation methods), for the report and the results browser's run page.

Nodes sit in columns in forward order (the input, each layer's heads and its feed-forward block,
the output; a seq2seq model's encoder above its decoder); an edge is a curve from writer to
reader, coloured by what it feeds (queries, keys, values, an MLP's input, the output), drawn
solid when every method kept it and dashed otherwise; hovering shows its name and methods.
"""

from __future__ import annotations

from toyformer.report.html import esc

COLOURS = {"q": "#2b6cb0", "k": "#2f855a", "v": "#c05621", "mlp": "#6b46c1", "output": "#4a5568", "memory": "#4a5568"}
LABELS = {"q": "queries", "k": "keys", "v": "values", "mlp": "MLP input", "output": "output",
          "memory": "encoder output"}
COL_W, ROW_H, NODE_W, NODE_H, PAD = 120, 34, 96, 24, 16


def _column(node: dict) -> float:
    """Forward order within a stream: input 0, then 3 per layer (attention, cross-attention, MLP)."""
    kind = node["kind"]
    if kind in ("input", "memory"):
        return 0 if kind == "input" else 10**6
    return node["order"]


def _short(name: str) -> str:
    """``L1 H0`` / ``L1 X0`` (cross) / ``L1 MLP`` for ``encoder.blocks.1.attn head 0`` ..."""
    if name in ("input", "output") or name.endswith((" input", " output")):
        return name
    parts = name.split(".")
    layer = parts[2] if len(parts) > 2 else "?"
    if " head " in name:
        return f"L{layer} {'X' if 'cross_attn' in name else 'H'}{name.rsplit(' ', 1)[1]}"
    return f"L{layer} MLP"


def circuit_svg(circuit: dict, roles: list[dict] | None = None) -> str:
    """The SVG of ``explain``'s ``circuit`` result; an empty string when it has no edges."""
    union = circuit.get("circuit") or {}
    if not union.get("edges"):
        return ""
    info = {n["name"]: n for n in circuit["nodes"]}
    kept = {n["name"] for n in union["nodes"]}
    role = {f"{r['module']} head {r['head']}": r["role"] for r in roles or [] if r["role"] != "mixed"}
    streams = list(dict.fromkeys(info[n]["stream"] for n in kept if n in info and info[n]["stream"] != "memory"))
    pos: dict = {}
    width, top = 0, PAD
    for stream in streams:
        mine = [info[n] for n in info if n in kept and info[n]["stream"] == stream]
        cols = sorted({_column(n) for n in mine})
        rows = 1
        for c in cols:
            here = [n for n in mine if _column(n) == c]
            rows = max(rows, len(here))
            for i, n in enumerate(sorted(here, key=lambda n: (n["head"] is None, n["head"] or 0))):
                pos[n["name"]] = (PAD + cols.index(c) * COL_W, top + i * ROW_H)
        out_x = PAD + len(cols) * COL_W
        if any(e["to"] == "output" for e in union["edges"]) and stream == streams[-1]:
            pos["output"] = (out_x, top)
        elif "encoder output" in kept and stream == "encoder":
            pos["encoder output"] = (out_x, top)
        width = max(width, out_x + NODE_W + PAD)
        top += rows * ROW_H + 2 * PAD
    every = set(circuit["by_method"])
    parts = []
    for e in union["edges"]:
        if e["from"] not in pos or e["to"] not in pos:
            continue
        (x0, y0), (x1, y1) = pos[e["from"]], pos[e["to"]]
        x0, y0, x1, y1 = x0 + NODE_W, y0 + NODE_H / 2, x1, y1 + NODE_H / 2
        mid = (x0 + x1) / 2
        dash = "" if set(e["methods"]) == every else ' stroke-dasharray="5 3"'
        title = f"{e['from']} -> {e['to']} ({LABELS.get(e['channel'], e['channel'])}; {', '.join(e['methods'])})"
        parts.append(f'<path d="M{x0:.0f},{y0:.0f} C{mid:.0f},{y0:.0f} {mid:.0f},{y1:.0f} {x1:.0f},{y1:.0f}" '
                     f'fill="none" stroke="{COLOURS.get(e["channel"], "#4a5568")}" stroke-width="2"{dash}>'
                     f'<title>{esc(title)}</title></path>')
    for name, (x, y) in pos.items():
        label = _short(name) + (f" {role[name]}" if name in role else "")
        parts.append(f'<g><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="4" fill="#f7fafc" '
                     f'stroke="#2d3748"/><text x="{x + NODE_W / 2:.0f}" y="{y + 16}" font-size="11" '
                     f'text-anchor="middle" font-family="sans-serif">{esc(label)}</text><title>{esc(name)}</title></g>')
    legend = " ".join(f'<tspan fill="{COLOURS[k]}">&#9632; {LABELS[k]}</tspan>' for k in ("q", "k", "v", "mlp",
                                                                                          "output"))
    parts.append(f'<text x="{PAD}" y="{top}" font-size="11" font-family="sans-serif">{legend} '
                 f'(dashed: kept under some ablations only)</text>')
    height = top + PAD
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="circuit" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="circuit graph">{"".join(parts)}</svg>')
