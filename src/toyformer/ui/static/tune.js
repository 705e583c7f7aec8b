// A tune study's page: the optimisation history (each trial's objective, the best so far, pruned
// and failed trials on their own strip), the parameter importances, what each trial reported to
// the pruner, parallel coordinates over the searched keys and the objective, the best trial's
// re-measured seeds, and every trial linked to its run. A study being searched redraws itself.
"use strict";
(() => {
  const {el, api, message, fmt, ptext, plot, table, accuracy, COLORS} = TF;
  const main = document.getElementById("page");
  const dir = main.dataset.dir;
  const $ = id => document.getElementById(id);
  const POLL_MS = 2000;
  let polls = 0, clickable = false;

  const paramText = t => Object.entries(t.params).map(([k, v]) => `${k}=${fmt(v)}`).join(", ");
  const runLink = (key, text) => key ? el("a", {href: TF.runURL(key), text}) : el("span", {class: "muted", text: text + " (no run page)"});

  function history(d) {
    const done = d.trials.filter(t => t.state === "COMPLETE");
    const other = d.trials.filter(t => t.state !== "COMPLETE");
    const hover = t => ptext(`trial ${t.number} (${t.state.toLowerCase()})<br>${paramText(t)}`) +
      (t.state === "PRUNED" && t.pruned_at !== null ? `<br>pruned at step ${t.pruned_at}` : "") +
      (t.error ? "<br>" + ptext(t.error) : "");
    const symbol = {PRUNED: "x", FAIL: "triangle-down", RUNNING: "circle-open", WAITING: "circle-open"};
    const traces = [
      {x: done.map(t => t.number), y: done.map(t => t.value), customdata: done.map(t => t.run), text: done.map(hover),
       type: "scatter", mode: "markers", name: "objective of a complete trial", marker: {size: 9, color: COLORS[0]},
       hovertemplate: "%{text}<br>objective %{y:.4g}<extra></extra>"},
      {x: d.trials.filter(t => t.best_so_far !== null).map(t => t.number), y: d.trials.filter(t => t.best_so_far !== null).map(t => t.best_so_far),
       type: "scatter", mode: "lines", line: {shape: "hv", color: COLORS[1], width: 2}, name: "best so far", hoverinfo: "skip"}];
    for (const state of ["PRUNED", "FAIL", "RUNNING", "WAITING"]) {
      const ts = other.filter(t => t.state === state);
      if (ts.length) traces.push({x: ts.map(t => t.number), y: ts.map(() => state.toLowerCase()), customdata: ts.map(t => t.run),
        text: ts.map(hover), yaxis: "y2", type: "scatter", mode: "markers", name: `${state.toLowerCase()} trial`,
        marker: {size: 10, symbol: symbol[state], color: state === "PRUNED" ? "#7f8c8d" : state === "FAIL" ? "#c0392b" : "#e07a2f"},
        hovertemplate: "%{text}<extra></extra>"});
    }
    plot($("history"), traces, {title: {text: `objective by trial (${ptext(d.objective || "objective")}; lower is better)`},
      xaxis: {title: {text: "trial"}, dtick: d.trials.length <= 30 ? 1 : undefined},
      yaxis: {title: {text: "objective"}, domain: [0.25, 1]},
      yaxis2: {domain: [0, 0.15], type: "category", categoryorder: "array", categoryarray: ["waiting", "running", "fail", "pruned"]}});
    if (!clickable) {   // once: a redraw keeps the handler
      $("history").on("plotly_click", ev => {
        const key = ev.points[0] && ev.points[0].customdata;
        if (key) location.href = TF.runURL(key);
      });
      clickable = true;
    }
    $("history-note").textContent = `${done.length} complete, ${d.counts.PRUNED} pruned, ${d.counts.FAIL} failed, ` +
      `${d.counts.RUNNING} running` + (d.trials_asked ? ` of ${d.trials_asked} asked` : "") +
      `. Click a trial to open its run. Pruned trials stopped early because their ${d.reported} lagged the other trials' at the same step.`;
  }

  function importances(d) {
    const imp = d.importances, names = Object.keys(imp.values);
    if (!names.length) { $("importances").replaceChildren(); $("importances-note").textContent = `No importances: ${imp.note}.`; return; }
    const order = names.slice().reverse();
    plot($("importances"), [{type: "bar", orientation: "h", x: order.map(k => imp.values[k]), y: order.map(ptext),
                             marker: {color: COLORS[0]}, hovertemplate: "%{y}: %{x:.3f}<extra></extra>"}],
         {title: {text: "importance for the objective"}, margin: {l: 150, r: 16, t: 40, b: 40}, xaxis: {range: [0, 1]}});
    $("importances-note").textContent = `Optuna's parameter importances over ${imp.n} complete trials (its default evaluator, as toyformer tune reports them).`;
  }

  function reported(d) {
    const traces = d.trials.filter(t => t.reported.step.length).map(t => ({
      x: t.reported.step, y: t.reported.value, type: "scatter", mode: "lines", name: `trial ${t.number}`,
      line: {color: t.state === "PRUNED" ? "#7f8c8d" : COLORS[0], dash: t.state === "PRUNED" ? "dot" : "solid", width: 1.2},
      hovertemplate: `trial ${t.number} (${t.state.toLowerCase()})<br>step %{x}: %{y:.4f}<extra></extra>`, showlegend: false}));
    plot($("reported"), traces, {title: {text: ptext(d.reported) + " by step"}, xaxis: {title: {text: "step"}},
                                 yaxis: {title: {text: ptext(d.reported)}, range: [0, 1.02]}});
    $("reported-note").textContent = "Dotted grey: pruned trials, stopped where their line ends.";
  }

  function parallel(d) {
    const done = d.trials.filter(t => t.state === "COMPLETE");
    const dims = d.params.map(p => {
      const vals = done.map(t => t.params[p.name]);
      if (p.kind === "categorical") {
        const cats = p.choices.map(String);
        return {label: ptext(p.name), values: vals.map(v => cats.indexOf(String(v))), tickvals: cats.map((_, i) => i), ticktext: cats.map(ptext)};
      }
      if (p.log) {
        const ticks = [];
        for (let e = Math.floor(Math.log10(p.low)); e <= Math.ceil(Math.log10(p.high)); e++) ticks.push(e);
        return {label: ptext(p.name) + " (log)", values: vals.map(v => v === undefined ? NaN : Math.log10(v)),
                range: [Math.log10(p.low), Math.log10(p.high)], tickvals: ticks, ticktext: ticks.map(e => fmt(10 ** e))};
      }
      return {label: ptext(p.name), values: vals.map(v => v === undefined ? NaN : v), range: [p.low, p.high]};
    });
    dims.push({label: "objective", values: done.map(t => t.value)});
    plot($("parallel"), [{type: "parcoords", dimensions: dims,
      line: {color: done.map(t => t.value), colorscale: "Viridis", reversescale: true, showscale: true, colorbar: {title: {text: "objective"}}}}],
      {margin: {l: 80, r: 80, t: 60, b: 30}});
    main.dataset.parallel = String(dims.length);
  }

  function remeasured(d) {
    const m = d.remeasured;
    if (!m) {
      $("remeasured").replaceChildren(el("p", {class: "muted", text: d.running
        ? "Not yet: toyformer tune re-trains the best configuration on fresh seeds when the search ends."
        : "No re-measured seeds in this tune directory (best/seed_*)."}));
      return;
    }
    const s = m.summary, t = s.solved_at_s;
    $("remeasured").replaceChildren(
      el("p", {text: `${s.solved} of ${s.n} fresh seeds reached the target` + (t ? `, in ${fmt(t.mean)} ± ${fmt(t.ci95)} s (mean ± 95% CI over the seeds that did)` : "") +
        (s.test_exact_match ? `; test exact match ${fmt(s.test_exact_match.mean)} ± ${fmt(s.test_exact_match.ci95)} over the seeds.` : ".")}),
      table(["seed", "run", "solved", "seconds to target", "step", "test exact match [95% CI] n"], m.seeds.map(r =>
        [r.seed, runLink(r.run, r.run ? "open" : "—"), r.solved ? "yes" : "no", r.solved_at_s, r.solved_at_step,
         accuracy(r.test_exact_match, r.test_n, r.test_exact_match_lo, r.test_exact_match_hi)]), "mono"));
  }

  function trials(d) {
    const names = d.params.map(p => p.name);
    const state = t => el("span", {class: "badge " + ({COMPLETE: "good", PRUNED: "info", FAIL: "bad"}[t.state] || "warn"),
      text: t.state === "PRUNED" && t.pruned_at !== null ? `pruned at step ${t.pruned_at}` : t.state.toLowerCase()});
    $("trials").replaceChildren(table(["trial", "state", "objective", "best so far", ...names, "seconds to target",
                                       "best validation", "test exact match [95% CI] n", "seconds", "note"],
      d.trials.map(t => [runLink(t.run, `#${t.number}` + (t.number === d.best ? " (best)" : "")), state(t), t.value,
                         t.best_so_far, ...names.map(n => t.params[n]), t.solved_at_s, t.best_val,
                         accuracy(t.test_exact_match, t.test_n, t.test_exact_match_lo, t.test_exact_match_hi),
                         t.duration_s, t.error || (t.retry_of !== null && t.retry_of !== undefined ? `retry of trial ${t.retry_of}` : "")]),
      "mono trials"));
  }

  async function load() {
    let d;
    try {
      d = await api("/api/tune", {dir});
    } catch (err) {
      message(err.message);
      return;   // removed, or the server stopped: no more polling
    }
    message("");
    polls++;
    const counts = d.counts;
    $("state").replaceChildren(el("span", {class: "badge " + (d.running ? "warn" : "info"),
      text: d.running ? `searching${d.pid ? " (process " + d.pid + ")" : ""}` : "not searching"}));
    for (const draw of [history, importances, reported, parallel, remeasured, trials]) draw(d);
    main.dataset.trials = String(d.trials.length);
    main.dataset.complete = String(counts.COMPLETE);
    main.dataset.polls = String(polls);
    document.body.dataset.ready = "1";
    if (d.running) setTimeout(load, POLL_MS);
    else main.dataset.settled = "1";
  }

  load();
})();
