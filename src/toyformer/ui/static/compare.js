// The compare page: the selected runs' learning curves overlaid (or, grouped by a config field,
// the mean and 95% band per value), the config keys that differ, the final metrics side by side.
"use strict";
(() => {
  const {el, api, message, fmt, ptext, plot, band, table, COLORS} = TF;
  const main = document.getElementById("page");
  const $ = id => document.getElementById(id);
  const state = {runs: JSON.parse(main.dataset.runs || "[]"), group: main.dataset.group || "", data: null};

  function remember() {
    const u = new URL(location.href);
    u.searchParams.delete("run");
    for (const key of state.runs) u.searchParams.append("run", key);
    state.group ? u.searchParams.set("group", state.group) : u.searchParams.delete("group");
    history.replaceState(null, "", u);
  }

  async function load() {
    state.data = await api("/api/compare", {run: state.runs, group: state.group});
    message(state.data.errors.length ? state.data.errors.join(" · ") : "");
    fill();
    draw();
    tables();
    document.body.dataset.ready = "1";
  }

  function fill() {
    const d = state.data;
    const metrics = [...new Set(d.runs.flatMap(r => Object.keys(r.curves)))].filter(m => m !== "step" && m !== "wall_s");
    const metric = $("metric"), current = metric.value || (metrics.includes("val_exact_match") ? "val_exact_match" : metrics[0]);
    metric.replaceChildren(...metrics.map(m => el("option", {value: m, text: m, selected: m === current})));
    const fields = [...new Set([...d.differing, ...(state.group ? [state.group] : [])])];
    $("group").replaceChildren(el("option", {value: "", text: "(none: one line per run)"}),
      ...fields.map(f => el("option", {value: f, text: f, selected: f === state.group})));
    $("count").textContent = `${d.runs.length} run${d.runs.length === 1 ? "" : "s"}`;
  }

  function draw() {
    const d = state.data, metric = $("metric").value, x = state.group ? "step" : $("x").value;
    $("x").disabled = !!state.group;
    const traces = [];
    if (state.group) {
      d.groups.forEach((g, i) => {
        const c = g.curves[metric], color = COLORS[i % COLORS.length];
        if (!c) return;
        const name = ptext(`${state.group}=${fmt(g.value)} (n=${g.n})`);
        traces.push(band(g.curves.step, c.lo, c.hi, color, name));
        traces.push({x: g.curves.step, y: c.mean, name, type: "scatter", mode: "lines", line: {color, width: 2},
                     customdata: g.n_at_step, hovertemplate: `${name}<br>step %{x}<br>mean %{y:.4f} (n=%{customdata})<extra></extra>`});
      });
      $("curves-note").textContent = `The mean over the runs of each value of ${state.group}, with its 95% confidence band.`;
    } else {
      d.runs.forEach((r, i) => traces.push({x: r.curves[x], y: r.curves[metric], name: ptext(r.label), type: "scatter",
                                              mode: "lines+markers", marker: {size: 4}, line: {color: COLORS[i % COLORS.length]}}));
      $("curves-note").textContent = "One line per run.";
    }
    plot($("curves"), traces, {xaxis: {title: {text: x}}, yaxis: {title: {text: metric}}, title: {text: ptext(metric)}});
  }

  function tables() {
    const d = state.data;
    const heads = ["", ...d.runs.map(r => r.label)];
    const links = ["run", ...d.runs.map(r => el("a", {href: TF.runURL(r.key), text: "open"}))];
    $("differing").replaceChildren(d.differing.length
      ? table(heads, [links, ...d.differing.map(k => [k, ...d.runs.map(r => r.config[k])])], "mono")
      : el("p", {class: "muted", text: d.runs.length > 1 ? "The runs have the same config." : "Select two or more runs to compare."}));
    const metrics = Object.keys((d.runs[0] || {}).final || {});
    $("finals").replaceChildren(table(heads, metrics.map(m => [m, ...d.runs.map(r => r.final[m])]), "mono"));
  }

  for (const id of ["metric", "x"]) $(id).addEventListener("change", draw);
  $("group").addEventListener("change", e => { state.group = e.target.value; remember(); load().catch(err => message(err.message)); });
  if (!state.runs.length) message("No run selected: select runs on the runs page, then compare.", "info");
  else load().catch(err => message(err.message));
})();
