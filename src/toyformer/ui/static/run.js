// The run page: live learning curves, test examples, the attention viewer, embeddings, and
// accuracy by length and position. The verdict, numbers and diagnosis come rendered.
"use strict";
(() => {
  const {el, api, message, fmt, ptext, plot, table, COLORS} = TF;
  const main = document.getElementById("page");
  const key = main.dataset.key;
  const $ = id => document.getElementById(id);
  const POLL_MS = 1500;
  let curves = null, attention = null, polls = 0;

  // --- learning curves, redrawn while the run trains ------------------------------------
  function drawCurves() {
    const x = $("x").value, c = curves.curves;
    const line = (m, i, dash) => c[m] ? {x: c[x], y: c[m], name: m, type: "scatter", mode: "lines+markers",
                                        marker: {size: 4}, line: {color: COLORS[i], dash}} : null;
    plot($("curve-loss"), [line("train_loss", 0), line("val_loss", 1)].filter(Boolean),
         {title: {text: "loss"}, xaxis: {title: {text: x}}});
    plot($("curve-acc"), [line("train_token_acc", 0), line("val_token_acc", 1), line("train_exact_match", 2, "dot"),
                          line("val_exact_match", 3, "dot")].filter(Boolean),
         {title: {text: "accuracy"}, xaxis: {title: {text: x}}, yaxis: {range: [0, 1.02]}});
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
    $("head").replaceChildren(...Array.from({length: m.heads}, (_, h) => el("option", {value: h, text: h, selected: String(h) === keep})));
    drawAttention();
  }

  function drawAttention() {
    const m = attention.modules.find(m => m.name === $("module").value) || attention.modules[0];
    const h = +$("head").value || 0, w = m.weights[h];
    const q = m.queries.map(ptext), k = m.keys.map(ptext);
    const text = w.map((row, i) => row.map((v, j) => `query ${q[i]} (${i})<br>key ${k[j]} (${j})<br>weight ${v.toFixed(4)}`));
    plot($("attention"), [{z: w, type: "heatmap", colorscale: [[0, "#f7fbff"], [0.5, "#6baed6"], [1, "#08306b"]], zmin: 0, zmax: 1, text,
                           hovertemplate: "%{text}<extra></extra>", x: k.map((_, j) => j), y: q.map((_, i) => i)}],
         {title: {text: `${ptext(m.name)} · head ${h}`, x: 0.02, xanchor: "left", y: 0.98, yref: "container"},
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
  loadSamples().then(() => loadAttention({sample: 0})).then(loadEmbeddings).then(() => { document.body.dataset.ready = "1"; });
})();
