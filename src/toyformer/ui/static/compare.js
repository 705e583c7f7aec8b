// The compare page: the selected runs' learning curves overlaid (or, grouped by a config field or
// by every setting but the seed, the mean and 95% band per group), their settings side by side
// (only those that differ, or all), the final metrics (test exact match with its n and interval).
"use strict";
(() => {
  const {el, api, message, fmt, ptext, plot, band, table, COLORS} = TF;
  const main = document.getElementById("page");
  const $ = id => document.getElementById(id);
  const SETTINGS = "*settings";
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
    const fields = [...new Set([...d.differing, ...(state.group && state.group !== SETTINGS ? [state.group] : [])])];
    $("group").replaceChildren(el("option", {value: "", text: "(none: one line per run)"}),
      el("option", {value: SETTINGS, text: "every setting but the seed", selected: state.group === SETTINGS}),
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
        const label = state.group === SETTINGS
          ? (Object.entries(g.value).map(([k, v]) => `${k}=${fmt(v)}`).join(", ") || "the same settings")
          : `${state.group}=${fmt(g.value)}`;
        const name = ptext(`${label} (n=${g.n})`);
        traces.push(band(g.curves.step, c.lo, c.hi, color, name));
        traces.push({x: g.curves.step, y: c.mean, name, type: "scatter", mode: "lines", line: {color, width: 2},
                     customdata: g.n_at_step, hovertemplate: `${name}<br>step %{x}<br>mean %{y:.4f} (n=%{customdata})<extra></extra>`});
      });
      $("curves-note").textContent = state.group === SETTINGS
        ? "The mean over the runs that share every setting but the seed, with its 95% confidence band (Student's t over the runs that have the step)."
        : `The mean over the runs of each value of ${state.group}, with its 95% confidence band.`;
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
    const only = $("only-differing").checked;
    const keys = only ? d.differing : [...new Set(d.runs.flatMap(r => Object.keys(r.config)))];
    $("differing").replaceChildren(keys.length
      ? table(heads, [links, ...keys.map(k => [k, ...d.runs.map(r => r.config[k])])], "mono")
      : el("p", {class: "muted", text: d.runs.length > 1 ? "The runs have the same config." : "Select two or more runs to compare."}));
    const hidden = new Set(["test_n", "test_exact_match_lo", "test_exact_match_hi"]);
    const metrics = Object.keys((d.runs[0] || {}).final || {}).filter(m => !hidden.has(m));
    $("finals").replaceChildren(table(heads, metrics.map(m => [m, ...d.runs.map(r => m === "test_exact_match"
      ? TF.accuracy(r.final[m], r.final.test_n, r.final.test_exact_match_lo, r.final.test_exact_match_hi) : r.final[m])]), "mono"));
  }

  for (const id of ["metric", "x"]) $(id).addEventListener("change", draw);
  $("only-differing").addEventListener("change", () => state.data && tables());
  $("group").addEventListener("change", e => { state.group = e.target.value; remember(); load().catch(err => message(err.message)); });
  if (!state.runs.length) message("No run selected: select runs on the runs page, then compare.", "info");
  else load().catch(err => message(err.message));
})();
