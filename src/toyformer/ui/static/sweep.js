// A sweep's page: the pivot table (rows, columns and value chosen here; mean ± 95% CI and n per
// cell, each cell a link comparing its runs), the spec's plots, and the points with their runs.
"use strict";
(() => {
  const {el, api, message, fmt, ptext, plot, table, COLORS} = TF;
  const name = document.getElementById("page").dataset.name;
  const $ = id => document.getElementById(id);
  let info = null;

  function options(select, values, current, blank) {
    select.replaceChildren(...(blank ? [el("option", {value: "", text: "(none)"})] : []),
      ...values.map(v => el("option", {value: v, text: v, selected: v === current})));
  }

  async function pivot() {
    let p;
    try {
      p = await api("/api/sweep/pivot", {name, rows: $("rows").value, cols: $("cols").value, value: $("value").value});
    } catch (err) { message(err.message); return; }
    message("");
    const nr = p.rows.length;
    const rows = p.row_keys.map((rk, i) => [...rk.map(fmt), ...p.cells[i].map(c => c === null ? "—" :
      el("a", {href: TF.compareURL(c.keys), title: `compare these ${c.n} runs`,
               text: c.text}))]);
    $("pivot").replaceChildren(table(p.headers, rows, "pivot mono"));
    $("pivot").querySelectorAll("td").forEach((td, i) => { if (i % (nr + p.col_keys.length) >= nr) td.classList.add("cell"); });
    document.body.dataset.pivot = `${p.rows.join(",")}|${p.cols.join(",")}|${p.value}`;
  }

  async function plots() {
    const specs = info.plots.length ? info.plots
      : info.swept.length ? [{x: info.swept[0], y: info.default.value, lines: info.swept[1]}] : [];
    $("plots").replaceChildren(...specs.map(() => el("div", {class: "chart half"})));
    if (!specs.length) $("plots").append(el("p", {class: "muted", text: "Nothing was swept: no plot."}));
    for (const [i, s] of specs.entries()) {
      try {
        const d = await api("/api/sweep/plot", {name, x: s.x, y: s.y, lines: s.lines});
        plot($("plots").children[i], d.series.map((sr, j) => ({
          x: sr.x, y: sr.mean, name: ptext(sr.label), type: "scatter", mode: "lines+markers", line: {color: COLORS[j % COLORS.length]},
          error_y: {type: "data", array: sr.ci95, visible: sr.ci95.some(c => c > 0), color: COLORS[j % COLORS.length]},
          customdata: sr.n, hovertemplate: `${ptext(sr.label)}<br>%{x}: %{y:.4f} ± %{error_y.array:.4f} (n=%{customdata})<extra></extra>`})),
          {title: {text: ptext(`${d.y} by ${d.x}`) + " (mean, 95% CI)"}, xaxis: {title: {text: ptext(d.x)}},
           yaxis: {title: {text: ptext(d.y)}}});
      } catch (err) { $("plots").children[i].textContent = err.message; }
    }
  }

  function points() {
    const metrics = ["test_token_acc", "test_exact_match", "solved_at_step", "steps", "wall_s"];
    $("points").replaceChildren(table(["run", "point", "seed", "replica", ...metrics], info.points.map(p =>
      [el("a", {href: TF.runURL(p.key), text: "#" + p.key}), p.point, p.seed, p.replica, ...metrics.map(m => m === "test_exact_match"
        ? TF.accuracy(p[m], p.test_n, p.test_exact_match_lo, p.test_exact_match_hi) : p[m])]), "mono"));
  }

  api("/api/sweep", {name}).then(i => {
    info = i;
    const d = info.default;
    options($("rows"), info.fields, d.rows[0]);
    options($("cols"), info.fields, d.cols[0] || "", true);
    options($("value"), info.metrics, d.value);
    for (const id of ["rows", "cols", "value"]) $(id).addEventListener("change", pivot);
    points();
    return Promise.all([pivot(), plots()]);
  }).then(() => { document.body.dataset.ready = "1"; }).catch(err => message(err.message));
})();
