// The run page: live learning curves (with the phases explain found), test examples, the attention
// viewer (each head's role written on it), what the run learned (explain.json: sentences, roles,
// ablations by effect, probe and logit-lens curves, the circuit), embeddings, and accuracy by
// length and position. The verdict, solved with its evidence, and the diagnosis come rendered.
"use strict";
(() => {
  const {el, api, message, fmt, ptext, plot, table, COLORS} = TF;
  const main = document.getElementById("page");
  const key = main.dataset.key;
  const $ = id => document.getElementById(id);
  const POLL_MS = 1500;
  let curves = null, attention = null, polls = 0, explained = null;
  const roles = new Map();   // "module/head" -> its role in explain.json

  // --- learning curves, redrawn while the run trains ------------------------------------
  function phaseMarks(x, c) {   // the phases explain found, as vertical lines on the curves
    const p = explained && explained.phases;
    if (!p) return {shapes: [], annotations: []};
    const marks = ["memorised", "generalised"].filter(k => p[k]).map(k => {
      const i = c.step.indexOf(p[k].step);
      return {name: k, step: p[k].step, at: x === "step" ? p[k].step : (i >= 0 ? c.wall_s[i] : null)};
    }).filter(m => m.at !== null);
    return {shapes: marks.map(m => ({type: "line", xref: "x", yref: "paper", x0: m.at, x1: m.at, y0: 0, y1: 1,
                                     line: {color: "#8e44ad", dash: "dash", width: 1.5}})),
            annotations: marks.map(m => ({xref: "x", yref: "paper", x: m.at, y: 1, yanchor: "bottom", showarrow: false,
                                          text: `${m.name} (step ${m.step})`, font: {color: "#8e44ad", size: 11}}))};
  }

  function drawCurves() {
    const x = $("x").value, c = curves.curves;
    const line = (m, i, dash) => c[m] ? {x: c[x], y: c[m], name: m, type: "scatter", mode: "lines+markers",
                                        marker: {size: 4}, line: {color: COLORS[i], dash}} : null;
    const marks = phaseMarks(x, c);
    plot($("curve-loss"), [line("train_loss", 0), line("val_loss", 1)].filter(Boolean),
         {title: {text: "loss"}, xaxis: {title: {text: x}}, ...marks});
    plot($("curve-acc"), [line("train_token_acc", 0), line("val_token_acc", 1), line("train_exact_match", 2, "dot"),
                          line("val_exact_match", 3, "dot")].filter(Boolean),
         {title: {text: "accuracy"}, xaxis: {title: {text: x}}, yaxis: {range: [0, 1.02]}, ...marks});
    main.dataset.phases = marks.shapes.length;
  }

  async function pollCurves() {
    try {
      curves = await api("/api/run/curves", {run: key});
    } catch (err) {
      message(err.message);
      $("live").textContent = "";
      return;   // removed, or the server stopped: no more polling
    }
    drawCurves();
    const steps = curves.curves.step, last = steps.length ? steps[steps.length - 1] : null;
    main.dataset.lastStep = last === null ? "" : last;
    polls++;
    if (curves.finished) {
      $("live").textContent = main.dataset.status === "training" || polls > 1
        ? "finished: reload the page for its verdict and test numbers" : "";
      if (main.dataset.status !== "recorded" && polls > 1) message("The run finished: reload for its verdict.", "info");
      return;
    }
    $("live").textContent = `live: step ${last === null ? "—" : last}, updated ${new Date().toLocaleTimeString()}`;
    setTimeout(pollCurves, POLL_MS);
  }

  // --- test examples and the attention viewer -----------------------------------------
  async function loadSamples() {
    try {
      const {samples} = await api("/api/run/samples", {run: key});
      $("samples").className = "";
      $("samples").replaceChildren(table(["#", "input", "target", "model output", ""], samples.map((s, i) =>
        [i, s.input, s.target, s.output, el("span", {class: s.correct ? "ok" : "no", text: s.correct ? "✓" : "✗"})]), "mono"));
      $("example").replaceChildren(...samples.map((s, i) => el("option", {value: i, text: `${i}: ${s.input}`})));
    } catch (err) {
      $("samples").textContent = err.message;
    }
  }

  async function loadAttention(params) {
    try {
      attention = await api("/api/run/attention", Object.assign({run: key}, params));
    } catch (err) {
      message(err.message);
      return;
    }
    message("");
    const module = $("module"), keep = module.value;
    module.replaceChildren(...attention.modules.map(m => el("option", {value: m.name, text: m.name, selected: m.name === keep})));
    $("attention-io").textContent = `input: ${attention.input}   →   model output: ${attention.output}`;
    heads();
  }

  function heads() {
    const m = attention.modules.find(m => m.name === $("module").value) || attention.modules[0];
    const keep = $("head").value;
    $("head").replaceChildren(...Array.from({length: m.heads}, (_, h) => {
      const r = roles.get(`${m.name}/${h}`);
      return el("option", {value: h, selected: String(h) === keep,
                           text: r ? `${h} · ${r.role}${r.score === null ? "" : " " + r.score.toFixed(2)}` : String(h)});
    }));
    drawAttention();
  }

  function roleLine(m, h) {   // "head 1 of encoder.blocks.0.attn: mirror (score 0.93); ablating it ..."
    const r = roles.get(`${m.name}/${h}`);
    if (!r) return explained && explained.explained ? "No role measured for this head." : "";
    let text = `Head ${h} of ${m.name}: ${r.role}` + (r.score === null ? "" : ` (score ${r.score.toFixed(2)})`);
    if (r.description) text += ` — ${r.description}`;
    if (r.ablation) text += `; ablating it (${r.ablation.method}) changes exact match by ${r.ablation.d_exact_match >= 0 ? "+" : ""}` +
      `${r.ablation.d_exact_match.toFixed(3)}, token accuracy by ${r.ablation.d_token_acc >= 0 ? "+" : ""}${r.ablation.d_token_acc.toFixed(3)}`;
    return text + ` (toyformer explain, step ${explained.step}).`;
  }

  function drawAttention() {
    const m = attention.modules.find(m => m.name === $("module").value) || attention.modules[0];
    const h = +$("head").value || 0, w = m.weights[h];
    const q = m.queries.map(ptext), k = m.keys.map(ptext);
    const text = w.map((row, i) => row.map((v, j) => `query ${q[i]} (${i})<br>key ${k[j]} (${j})<br>weight ${v.toFixed(4)}`));
    const r = roles.get(`${m.name}/${h}`);
    $("head-role").textContent = roleLine(m, h);
    plot($("attention"), [{z: w, type: "heatmap", colorscale: [[0, "#f7fbff"], [0.5, "#6baed6"], [1, "#08306b"]], zmin: 0, zmax: 1, text,
                           hovertemplate: "%{text}<extra></extra>", x: k.map((_, j) => j), y: q.map((_, i) => i)}],
         {title: {text: `${ptext(m.name)} · head ${h}` + (r ? ` · ${ptext(r.role)}` : ""), x: 0.02, xanchor: "left", y: 0.98, yref: "container"},
          xaxis: {title: {text: "key"}, tickvals: k.map((_, j) => j), ticktext: k, side: "top"},
          yaxis: {title: {text: "query"}, tickvals: q.map((_, i) => i), ticktext: q, autorange: "reversed"},
          margin: {l: 80, r: 16, t: 110, b: 30}});
    main.dataset.attention = `${m.name}/${h}`;
  }

  // --- embeddings and the breakdown --------------------------------------------------------
  async function loadEmbeddings() {
    try {
      const {maps} = await api("/api/run/embeddings", {run: key});
      $("embeddings").replaceChildren(...maps.map(() => el("div", {class: "chart half"})));
      maps.forEach((m, i) => {
        const sub = m.method === "pca" ? `PCA, ${(100 * m.explained).toFixed(0)}% of the variance` : "raw";
        plot($("embeddings").children[i], [{x: m.x, y: m.y, text: m.labels.map(ptext), type: "scatter",
          mode: m.kind === "positions" ? "lines+markers+text" : "markers+text", textposition: "top center",
          marker: {size: 8, color: COLORS[i % COLORS.length]}, hovertemplate: "%{text}<extra></extra>"}],
          {title: {text: `${ptext(m.name)} (${sub})`}, showlegend: false});
      });
    } catch (err) {
      $("embeddings").textContent = err.message;
    }
  }

  async function loadBreakdown() {
    try {
      const b = await api("/api/run/breakdown", {run: key});
      if (!b.finished) { $("breakdown-note").textContent = "Measured on the test set when the run finishes."; return; }
      if (!b.by_position || !b.by_length) { $("breakdown-note").textContent = "Not in this run's summary.json."; return; }
      const p = b.by_position, l = b.by_length;
      plot($("by-position"), [{x: p.position, y: p.token_acc, type: "bar", name: "token accuracy", customdata: p.n,
                               hovertemplate: "position %{x}: %{y:.4f} (%{customdata} tokens)<extra></extra>",
                               marker: {color: COLORS[0]}}],
           {title: {text: "token accuracy by answer position"}, yaxis: {range: [0, 1.02]}, xaxis: {title: {text: "position"}}});
      plot($("by-length"), [
        {x: l.length, y: l.token_acc, name: "token accuracy", type: "scatter", mode: "lines+markers", line: {color: COLORS[0]}},
        {x: l.length, y: l.exact_match, name: "exact match", type: "scatter", mode: "lines+markers", line: {color: COLORS[1]}}],
           {title: {text: "accuracy by input length"}, yaxis: {range: [0, 1.02]}, xaxis: {title: {text: "input length"}}});
      if (l.length.length === 1) $("breakdown-note").textContent = `Every test input has ${l.length[0]} tokens.`;
    } catch (err) {
      $("breakdown-note").textContent = err.message;
    }
  }

  // --- what it learned (explain.json) -------------------------------------------------------
  async function loadExplain() {
    try {
      explained = await api("/api/run/explain", {run: key});
    } catch (err) {
      $("explain-note").textContent = err.message;
      return;
    }
    const e = explained;
    if (!e.explained) {   // no button: the page names the command that writes explain.json
      $("explain-note").replaceChildren("Not explained yet. ", el("code", {text: e.command}),
        " measures the role of each head, what ablating each component costs, what the residual stream holds layer by " +
        "layer and where the answer appears (and, where it finds one, the circuit); this section shows it then.");
      main.dataset.explained = "no";
      return;
    }
    for (const r of e.roles) roles.set(`${r.module}/${r.head}`, r);
    $("explain-note").textContent = `Measured by toyformer explain (${e.preset} preset) at step ${e.step}` +
      (e.stale ? `; the run is now at step ${e.current_step}: run ${e.command} again to update it.` : ".");
    $("sentences").replaceChildren(...e.sentences.map(t => el("li", {text: t})));
    if (e.roles.length) {
      $("roles-block").hidden = false;
      $("roles").replaceChildren(table(["module", "head", "role", "score", "largest ablation change of exact match"],
        e.roles.map(r => [r.module, r.head, r.role, r.score, r.ablation ? `${fmt(r.ablation.d_exact_match)} (${r.ablation.method})` : "—"]), "mono"));
    }
    if (e.ablation) {
      const a = e.ablation, b = a.baseline;
      $("ablation-block").hidden = false;
      $("ablation-note").textContent = `Intact model on ${a.n} test examples: exact match ${fmt(b.exact_match)}, token accuracy ` +
        `${fmt(b.token_acc)}, loss ${fmt(b.loss)}. Each component removed in turn (zero, mean, resample over ${a.n_reference} ` +
        `validation examples), sorted by the larger change of exact match and token accuracy.`;
      $("ablation").replaceChildren(table(["component", "ablation", "exact match", "change", "token accuracy", "change", "loss change"],
        a.rows.map(r => [r.component, r.method, r.exact_match, r.d_exact_match, r.token_acc, r.d_token_acc, r.d_loss]), "mono ablation"));
    }
    drawLayers(e);
    if (e.circuit) drawCircuit(e.circuit);
    if (curves) drawCurves();
    main.dataset.explained = "yes";
  }

  function drawLayers(e) {
    if (e.probes.length) {
      $("probes").hidden = false;
      const traces = [];
      e.probes.forEach((p, i) => {
        const color = COLORS[i % COLORS.length], name = ptext(`${p.stream} ${p.target}`);
        traces.push({x: p.layer, y: p.accuracy, name, type: "scatter", mode: "lines+markers", line: {color},
                     hovertemplate: `${name}<br>layer %{x}: %{y:.3f} (${p.n_test} held-out)<extra></extra>`});
        if (p.chance !== null) traces.push({x: [p.layer[0], p.layer[p.layer.length - 1]], y: [p.chance, p.chance], type: "scatter",
          mode: "lines", line: {color, dash: "dot", width: 1}, name: `${name} chance`, showlegend: false, hoverinfo: "skip"});
      });
      plot($("probes"), traces, {title: {text: "linear probes: held-out accuracy by layer (dotted: chance)"},
                                 xaxis: {title: {text: "layer (0: the embeddings)"}, dtick: 1}, yaxis: {range: [0, 1.02]}});
    }
    if (e.lens.length) {
      $("lens").hidden = false;
      const traces = e.lens.flatMap((l, i) => [
        {x: l.layer, y: l.exact_match, name: ptext(`${l.stream} exact match`), type: "scatter", mode: "lines+markers", line: {color: COLORS[2 * i % COLORS.length]}},
        {x: l.layer, y: l.token_acc, name: ptext(`${l.stream} token accuracy`), type: "scatter", mode: "lines+markers", line: {color: COLORS[(2 * i + 1) % COLORS.length], dash: "dot"}}]);
      plot($("lens"), traces, {title: {text: "logit lens: the answer read after each layer"},
                               xaxis: {title: {text: "layer"}, dtick: 1}, yaxis: {range: [0, 1.02]}});
    }
  }

  function drawCircuit(c) {
    $("circuit-block").hidden = false;
    const at = new Map(c.nodes.map(n => [n.name, n]));
    const scores = c.edges.map(e => Math.abs(e.score || 0)), top = Math.max(1e-9, ...scores);
    const edges = c.edges.map(e => {
      const a = at.get(e.source), b = at.get(e.target);
      return {x: [a.x, b.x], y: [a.y, b.y], type: "scatter", mode: "lines", hoverinfo: "skip", showlegend: false,
              line: {color: "#7f8c8d", width: e.score === null ? 1.5 : 1 + 4 * Math.abs(e.score) / top}};
    });
    const hover = c.nodes.map(n => ptext([n.name, n.kind, n.role, n.description, n.score === undefined ? null : `score ${fmt(n.score)}`]
      .filter(Boolean).join("\n")).replace(/\n/g, "<br>"));
    const nodes = {x: c.nodes.map(n => n.x), y: c.nodes.map(n => n.y), text: c.nodes.map(n => ptext(n.name)), type: "scatter",
                   mode: "markers+text", textposition: "top center", customdata: hover, hovertemplate: "%{customdata}<extra></extra>",
                   marker: {size: 16, color: COLORS[0], line: {color: "#fff", width: 1}}, showlegend: false};
    plot($("circuit"), [...edges, nodes], {title: {text: `the circuit: ${c.nodes.length} components, ${c.edges.length} edges (wider: a larger edge score)`},
      xaxis: {title: {text: "layer"}, zeroline: false}, yaxis: {visible: false}, hovermode: "closest"});
    $("circuit-facts").replaceChildren(Object.keys(c.facts).length ? table(["", ""], Object.entries(c.facts), "mono") : "");
    main.dataset.circuit = `${c.nodes.length}/${c.edges.length}`;
  }

  $("x").addEventListener("change", () => curves && drawCurves());
  $("module").addEventListener("change", heads);
  $("head").addEventListener("change", drawAttention);
  $("example").addEventListener("change", () => { $("input").value = ""; loadAttention({sample: $("example").value}); });
  $("attention-form").addEventListener("submit", e => {
    e.preventDefault();
    const text = $("input").value.trim();
    loadAttention(text ? {input: text} : {sample: $("example").value || 0});
  });

  pollCurves();
  loadBreakdown();
  loadExplain().then(loadSamples).then(() => loadAttention({sample: 0})).then(loadEmbeddings)
    .then(() => { document.body.dataset.ready = "1"; });
})();
