// toyformer ui: helpers shared by the pages. Every user string reaches the page as text
// (textContent, or escaped for Plotly's labels), never as markup.
"use strict";
const TF = (() => {
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined)
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  async function api(path, params) {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {}))
      for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined && one !== null && one !== "") query.append(k, one);
    const url = path + (query.toString() ? "?" + query : "");
    let response;
    try { response = await fetch(url, {headers: {"Accept": "application/json"}}); }
    catch (e) { throw new Error("the toyformer ui server does not answer (stopped?)"); }
    let body = null;
    try { body = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
    return body;
  }

  function message(text, kind) {
    const box = document.getElementById("message");
    if (!box) return;
    box.textContent = text || "";
    box.className = "message" + (kind ? " " + kind : "");
    box.hidden = !text;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "—";
    if (typeof v === "number") {
      if (Number.isInteger(v)) return String(v);
      const a = Math.abs(v);
      return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : String(+v.toPrecision(4));
    }
    return String(v);
  }

  // Plotly reads labels as a little HTML (<br>, <b>): a token such as <b> must stay text
  function ptext(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  const COLORS = ["#3b6fb6", "#e07a2f", "#2e8b57", "#c0392b", "#8e44ad", "#7f8c8d", "#b8860b", "#17a2b8"];
  function plot(div, traces, layout) {
    const base = {margin: {l: 56, r: 16, t: 40, b: 70}, font: {size: 12}, paper_bgcolor: "#fff",
                  plot_bgcolor: "#fff", hovermode: "closest", legend: {orientation: "h", y: -0.28}};
    return Plotly.react(div, traces, Object.assign(base, layout || {}),
                        {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["sendDataToCloud"]});
  }

  function band(x, lo, hi, color, name) {   // a filled 95% band under a mean line
    const keep = x.map((_, i) => lo[i] !== null && hi[i] !== null);
    const xs = x.filter((_, i) => keep[i]);
    return {x: xs.concat(xs.slice().reverse()), y: hi.filter((_, i) => keep[i]).concat(lo.filter((_, i) => keep[i]).reverse()),
            fill: "toself", fillcolor: color, opacity: 0.18, line: {width: 0}, hoverinfo: "skip", showlegend: false,
            name: name, type: "scatter", mode: "lines"};
  }

  function table(headers, rows, cls) {
    return el("div", {class: "scroll"}, el("table", {class: cls || ""},
      el("thead", {}, el("tr", {}, headers.map(h => el("th", {text: h})))),
      el("tbody", {}, rows.map(r => el("tr", {}, r.map(c => el("td", {}, c instanceof Node ? c : fmt(c))))))));
  }

  // a run's page: /run/12, or /run/d:sweeps/x/runs/point for a run directory without a row
  function runURL(key) { return "/run/" + String(key).split("/").map(encodeURIComponent).join("/"); }

  // the compare page of runs ``keys`` (a key may hold commas: a sweep point's folder name)
  function compareURL(keys, group) {
    const q = new URLSearchParams();
    for (const key of keys) q.append("run", key);
    if (group) q.set("group", group);
    return "/compare?" + q;
  }

  // a test exact match as every page shows it: the value, its 95% interval and n
  function accuracy(value, n, lo, hi) {
    if (value === null || value === undefined) return el("span", {text: "—"});
    const interval = lo === null || lo === undefined ? (n ? ` n=${n}` : " (n not recorded)")
      : ` [${lo.toFixed(4)}, ${hi.toFixed(4)}] n=${n}`;
    return el("span", {class: "acc", title: "test exact match, its 95% interval (Wilson) and the test examples"},
              fmt(value), el("span", {class: "ci", text: interval}));
  }
  function accuracyText(value, n, lo, hi) {
    return value === null || value === undefined ? "—" : accuracy(value, n, lo, hi).textContent;
  }

  // Plotly.js (4.6 MB) only where a chart is asked for: the runs page loads it on demand
  let plotlyLoading = null;
  function loadPlotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    plotlyLoading = plotlyLoading || new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = "/static/plotly.min.js";
      s.onload = () => resolve(window.Plotly);
      s.onerror = () => reject(new Error("Plotly.js did not load"));
      document.head.append(s);
    });
    return plotlyLoading;
  }

  return {el, api, message, fmt, ptext, plot, band, table, runURL, compareURL, accuracy, accuracyText, loadPlotly,
          COLORS};
})();
