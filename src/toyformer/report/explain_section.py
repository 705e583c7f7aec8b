"""The "What it learned" section of a run's report, from the ``explain.json`` that
``toyformer explain`` wrote: the account in sentences, the ablation table, the role of each head
(also on the attention grid) with what its attention does, the groups of heads ablated together,
the circuit (its graph and, per ablation, its size, faithfulness, completeness and cost), the
probes, the logit lens, direct logit attribution, activation patching and the analyses over
training when they were measured."""

from __future__ import annotations

from pathlib import Path

from toyformer.explain import read_explain
from toyformer.explain.ablation import effect, worst
from toyformer.explain.circuit_text import description
from toyformer.report.circuit_graph import circuit_svg
from toyformer.report.html import Html, Section, esc, figure, join, para, table

ABLATION_ROWS = 15


def phase_marks(run_dir) -> dict[str, int]:
    """``{"memorised": step, "generalised": step}`` from explain.json (those it found), for the curves."""
    data = read_explain(run_dir) if run_dir is not None else None
    phases = (data or {}).get("phases") or {}
    return {k: phases[k]["step"] for k in ("memorised", "generalised") if phases.get(k)}


def explain_section(run, run_dir: str | Path) -> Section:
    """The section for ``run`` (loaded from ``run_dir``); a note when it was not explained yet."""
    data = read_explain(run_dir)
    if data is None:
        return Section("What it learned", para(
            "Not explained yet: `toyformer explain RUN_DIR` measures the role of each head, what ablating each "
            "component costs, what the residual stream holds layer by layer and where the answer appears, and "
            "adds it here.", "muted"), "explain")
    current = run.summary.get("steps") if run.summary else (run.metrics[-1]["step"] if run.metrics else None)
    note = f"Measured by `toyformer explain` ({data['preset']} preset) at step {data['step']}"
    if current is not None and current != data["step"]:
        note += f"; the run is now at step {current}: explain it again to update this section"
    parts = [para(note + ".", "muted"),
             Html("<ul>" + "".join(f"<li>{esc(s)}</li>" for s in data["sentences"]) + "</ul>")]
    parts += (_ablation(data) + _roles(run, data) + _groups(data) + circuit_parts(data) + _probes(data) + _lens(data)
              + _patching(data) + _training(run, data))
    return Section("What it learned", join(*parts), "explain")


def _ablation(data: dict) -> list[Html]:
    ab = data.get("ablation")
    if not ab:
        return []
    base = ab["baseline"]
    rows = [[r["component"], r["method"], f"{r['exact_match']:.3f}", f"{r['d_exact_match']:+.3f}",
             f"{r['token_acc']:.3f}", f"{r['d_token_acc']:+.3f}",
             f"{r['d_loss']:+.3f}"] for r in ab["rows"][:ABLATION_ROWS]]
    head = "<h3>Ablations, largest effect first</h3>"
    text = (f"Intact model on {ab['n']} test examples: exact match {base['exact_match']:.3f}, token accuracy "
            f"{base['token_acc']:.3f}, loss {base['loss']:.3f}. Means and resamples come from {ab['n_reference']} "
            f"validation examples; {len(ab['rows'])} ablations in all, the first {min(ABLATION_ROWS, len(ab['rows']))} "
            "shown.")
    return [Html(head), para(text, "muted"), table(["component", "ablation", "exact match", "change", "token accuracy",
                                                   "change", "loss change"], rows, "mono")]


def _roles(run, data: dict) -> list[Html]:
    roles = data.get("roles") or []
    if not roles:
        return []
    ab_rows = (data.get("ablation") or {}).get("rows", [])
    rows, notes = [], {}
    for r in roles:
        w = worst(ab_rows, f"{r['module']} head {r['head']}")
        change = "" if w is None else f"{effect(w)[0]:.3f} ({w['method']})"
        score = "—" if r["score"] is None else f"{r['score']:.2f}"
        rows.append([r["module"], r["head"], r["role"], score, description(r) or "", change])
        notes[(r["module"], r["head"])] = f"{r['role']} {score}"
    out = [Html("<h3>Head roles</h3>"), table(["module", "head", "role", "score", "attention",
                                               "largest ablation change"],
                                              rows, "mono")]
    out.append(_grid(run, data, notes))
    return out


def _grid(run, data: dict, notes: dict) -> Html:
    from toyformer.inspect.capture import attention
    from toyformer.inspect.plots import attention_figure

    source = data.get("input") or run.splits.test[:1]
    maps = attention(run, source)
    what = "your input" if data.get("input") else "test example 0"
    return join(figure(attention_figure(maps, 0, notes=notes), "attention maps with head roles"),
                para(f"Attention on {what}, each head titled with its role and score.", "muted"))


def _groups(data: dict) -> list[Html]:
    found = [g for g in data.get("groups") or [] if g.get("by_method")]
    if not found:
        return []
    rows = []
    for g in found:
        m = g["by_method"][g["method"]]
        key = g["measure"]
        rows.append([g["module"], ", ".join(map(str, g["heads"])), g["label"] if g["kind"] == "role" else
                     f"{g['kind']} {g['value']}", g["method"], f"{g['baseline'][key]:.3f}",
                     f"{min(r[key] for r in m['alone']):.3f}", f"{m['joint'][key]:.3f}",
                     "yes" if g["redundant"] else "no"])
    return [Html("<h3>Heads that share a role, ablated together</h3>"),
            table(["module", "heads", "shared", "ablation", "intact", "worst alone", "together", "one job together"],
                  rows, "mono")]


def circuit_parts(data: dict) -> list[Html]:
    """The circuit's graph and its table per ablation (also on the results browser's run page)."""
    c = data.get("circuit")
    if not c:
        return []
    unit = "edges" if c["separable"] else "nodes"
    total = len(c["edges"]) if c["separable"] else len(c["nodes"])
    rows = [[m, f"{len(f['kept'])} of {total}", ", ".join(n for n in f["nodes"] if n not in f["backups"]),
             ", ".join(f["backups"]) or "—", f"{f['faithful']:.3f} (from {f['target']:.3f})", f"{f['ablated']:.3f}",
             "yes" if f["complete"] else "no", f"{f['cost']['forward']} / {f['cost']['backward']}"]
            for m, f in c["by_method"].items()]
    svg = circuit_svg(c, data.get("roles"))
    text = (f"The smallest set of {unit} that keeps {c['measure'].replace('_', ' ')} with everything else ablated, "
            f"on {c['n']} test examples; complete when ablating it (and its backups) destroys the answer. "
            "Edges ranked by EAP-IG and confirmed by path patching; passes are forward / backward.")
    out = [Html("<h3>Circuit</h3>"), para(text, "muted")]
    if svg:
        out.append(Html(f'<div class="circuit-graph">{svg}</div>'))
    out.append(table(["ablation", unit, "nodes", "backups", "kept with the rest ablated", "circuit ablated", "complete",
                      "passes"], rows, "mono"))
    if c["circuit"].get("interpbench"):
        edges = "; ".join(f"{a} -> {b}" for a, b in c["circuit"]["interpbench"])
        out.append(para(f"As InterpBench writes it: {edges}", "muted mono"))
    return out


def _probes(data: dict) -> list[Html]:
    probes = data.get("probes") or []
    if not probes:
        return []
    layers = sorted({r["layer"] for r in probes})
    keys = list(dict.fromkeys((r["stream"], r["target"]) for r in probes))
    by = {(r["stream"], r["target"], r["layer"]): r for r in probes}
    rows = []
    for stream, target in keys:
        cells = [f"{by[(stream, target, layer)]['accuracy']:.2f}" if (stream, target,
                                                                      layer) in by else "" for layer in layers]
        chance = next(r["chance"] for r in probes if (r["stream"], r["target"]) == (stream, target))
        rows.append([stream, target, *cells, f"{chance:.2f}"])
    return [Html("<h3>Linear probes: held-out accuracy per layer</h3>"),
            table(["stream", "quantity", *[f"layer {layer}" for layer in layers], "chance"], rows, "mono")]


def _lens(data: dict) -> list[Html]:
    out = []
    if data.get("lens"):
        rows = [[r["stream"], r["layer"], f"{r['exact_match']:.3f}", f"{r['token_acc']:.3f}", f"{r['loss']:.3f}"]
                for r in data["lens"]]
        out += [Html("<h3>Logit lens</h3>"),
                table(["stream", "layer", "exact match", "token accuracy", "loss"], rows, "mono")]
    dla = data.get("dla")
    if dla and "rows" in dla:
        rows = [[r["component"], r["kind"], f"{r['contribution']:+.3f}"] for r in dla["rows"][:12]]
        out += [Html("<h3>Direct logit attribution</h3>"),
                para(f"Mean centred logit of the correct answer: {dla['total']:.3f}; the rows add up to it "
                     f"(rounding: {dla['residual']:+.1e}).", "muted"),
                table(["component", "kind", "contribution"], rows, "mono")]
    return out


def _patching(data: dict) -> list[Html]:
    p = data.get("patching")
    if not p:
        return []
    from toyformer.explain.figures import patching_figure

    rows = [[h["component"],
             "—" if h["restored"] is None else f"{h['restored']:.2f}"] for h in p["heads"] + p["modules"]]
    return [Html("<h3>Activation patching</h3>"), figure(patching_figure(p), "activation patching heat map"),
            table(["component", "restored"], rows, "mono")]


def _training(run, data: dict) -> list[Html]:
    out = []
    ot = data.get("over_training")
    if ot:
        from toyformer.explain.figures import over_training_figure

        out += [Html("<h3>Over training</h3>"), figure(over_training_figure(ot, run.metrics), "analyses over training")]
    f = data.get("fourier")
    if f:
        rows = [[k, f"{s:.3f}", "key" if k in f["key_frequencies"] else ""] for k, s in enumerate(f["shares"], 1)]
        out += [Html("<h3>Fourier spectrum of the number embeddings</h3>"),
                para(f"Restricted loss {f['restricted_loss']:.3f}, excluded loss {f['excluded_loss']:.3f}, model loss "
                     f"{f['loss']:.3f}, chance {f['chance_loss']:.3f}.", "muted"),
                table(["frequency", "energy share", ""], rows, "mono")]
    return out
