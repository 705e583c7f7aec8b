// The runs page: every recorded run (and every run directory without a row) in one table, of
// which the page holds only what it shows, and draws only the rows near the view. Each view (a filter in the --where language, a sort, a
// group by a field or by every setting but the seed, a page of 200, a group collapsed) is one
// request, answered by the server with that page of rows, the groups' headers on it (the mean,
// its 95% interval and n of each numeric column over the group's runs), the count, and the min,
// max and best of each numeric column over every run the filter keeps. The filtered runs export
// as CSV or JSON, and draw as parallel coordinates (fetched, all of them, when that is opened).
"use strict";
(() => {
  const {el, api, message, fmt, accuracy} = TF;
  const SETTINGS = "*settings";
  const DEFAULT_COLUMNS = ["recorded_at", "source", "sweep", "task.name", "layout", "model.d_model", "model.n_layers",
                           "seed", "test_token_acc", "test_exact_match", "solved_at_step", "wall_s"];
  const url = new URL(location.href);
  const state = {
    where: url.searchParams.get("where") || "",
    group: url.searchParams.get("group") || "",
    columns: (url.searchParams.get("columns") || localStorage.getItem("tf.columns") || DEFAULT_COLUMNS.join(","))
      .split(",").filter(Boolean),
    sort: {col: null, dir: 1}, page: 0, collapsed: new Set(), fields: [],
    view: null,   // the server's last answer: one page of the table (see toyformer.ui.view)
    selected: new Set(JSON.parse(sessionStorage.getItem("tf.selected") || "[]")),
  };
  let renders = 0, asked = 0;
  const $ = id => document.getElementById(id);

  function remember() {
    const u = new URL(location.href);
    for (const [k, v] of [["where", state.where], ["group", state.group], ["columns", state.columns.join(",")]])
      v ? u.searchParams.set(k, v) : u.searchParams.delete(k);
    history.replaceState(null, "", u);
    localStorage.setItem("tf.columns", state.columns.join(","));
    sessionStorage.setItem("tf.selected", JSON.stringify([...state.selected]));
    for (const kind of ["csv", "json"]) {
      const q = new URLSearchParams({format: kind, columns: ["key", "status", ...state.columns].join(",")});
      if (state.where) q.set("where", state.where);
      $(`export-${kind}`).href = "/api/runs/export?" + q;
    }
  }

  // --- what the server answers ------------------------------------------------------------
  async function load() {   // the page the state asks for; false when a later request overtook it
    const q = {columns: state.columns.join(","), page: state.page, where: state.where, group: state.group};
    if (state.sort.col) Object.assign(q, {sort: state.sort.col, desc: state.sort.dir < 0 ? 1 : ""});
    if (state.group && state.collapsed.size) q.collapsed = [...state.collapsed].join(",");
    const ticket = ++asked;
    const view = await api("/api/runs/page", q);
    if (ticket !== asked) return false;
    view.at = new Map(view.columns.map((c, i) => [c, i]));
    state.view = view;
    state.page = view.page;
    return true;
  }

  async function refresh(undo) {   // ask, then render the answer (or keep the last good one and say why)
    const ticket = asked + 1;
    try {
      if (!await load()) return;
      message("");
    } catch (err) {
      if (ticket !== asked) return;
      if (undo) undo();
      message(err.message);
    }
    render();
  }

  // --- the page as shown --------------------------------------------------------------------
  function value(row, col) { const i = state.view.at.get(col); return i === undefined ? undefined : row[i]; }

  function cell(row, c) {
    const v = value(row, c);
    if (c === "test_exact_match")
      return el("td", {class: "num"}, accuracy(v, value(row, "test_n"), value(row, "test_exact_match_lo"),
                                               value(row, "test_exact_match_hi")));
    return el("td", {class: typeof v === "number" ? "num" : "", text: fmt(v)});
  }

  function groupRow(g, cols) {
    const fields = state.view.fields;
    const label = (fields.map(f => `${f} = ${fmt(g.settings[f])}`).join(", ") || "the same settings") +
      ` · ${g.n} run${g.n === 1 ? "" : "s"}`;
    return el("tr", {class: "group", dataset: {group: g.group}, onclick: () => toggle(g.group)},
      el("td", {text: g.collapsed ? "▸" : "▾"}), el("td", {colspan: 2, text: label}),
      cols.map(c => {
        const s = g.stats[c];
        return el("td", {class: "num", title: s ? `mean and its 95% interval over ${s[3]} runs` : "",
                         text: s ? `${fmt(s[0])} [${fmt(s[1])}, ${fmt(s[2])}] n=${s[3]}` : ""});
      }));
  }

  function footer(cols) {   // min, max and best of each numeric column over the filtered runs (from the server)
    const f = state.view.footer;
    return ["min", "max", "best"].map(stat => el("tr", {class: "stat", dataset: {stat}},
      el("td"), el("td", {colspan: 2, text: stat === "best" ? "best (run)" : stat}),
      cols.map(c => {
        const s = f[c], v = s ? s[stat] : null, key = s && stat === "best" ? s.best_key : null;
        return el("td", {class: "num"}, v === null ? "" : fmt(v),
                  key ? el("a", {class: "ci", href: TF.runURL(key), text: " " + label(key)}) : null);
      })));
  }
  function label(key) { return key.startsWith("d:") ? key.slice(2) : "#" + key; }

  // Only the rows near the view are drawn (a page has up to 200): the others are two spacer rows
  // of their height, and scrolling draws the rows it brings into view.
  const AROUND = 30;   // rows drawn above and below the view
  let drawn = {from: 0, to: 0, n: 0}, rowPx = 29, measured = false;   // a row's height: measured at the first scroll
  function itemRow(item, cols) {
    if (!Array.isArray(item)) return groupRow(item, cols);
    const key = item[0], on = state.selected.has(key);
    return el("tr", {class: on ? "selected" : "", dataset: {key}},
      el("td", {}, el("input", {type: "checkbox", checked: on, dataset: {key}, onchange: e => select(key, e.target.checked, e.target)})),
      el("td", {}, el("a", {href: TF.runURL(key), text: label(key)})),
      el("td", {text: item[1]}), cols.map(c => cell(item, c)));
  }
  function inView(n) {   // [first, last) of a page of n rows: those on the screen
    const top = $("runs").tBodies[0].getBoundingClientRect().top;
    const first = Math.min(n, Math.max(0, Math.floor(-top / rowPx)));
    return [first, Math.min(n, Math.max(first + 1, Math.ceil((innerHeight - top) / rowPx)))];
  }
  function drawRows(cols, [first, last]) {
    const items = state.view.items, n = items.length;
    const from = Math.max(0, first - AROUND), to = Math.min(n, last + AROUND), span = cols.length + 3;
    const spacer = rows => el("tr", {class: "spacer"}, el("td", {colspan: span, style: `height:${rows * rowPx}px`}));
    const body = document.createDocumentFragment();
    if (from > 0) body.append(spacer(from));
    for (let i = from; i < to; i++) body.append(itemRow(items[i], cols));
    if (to < n) body.append(spacer(n - to));
    $("runs").tBodies[0].replaceChildren(body);
    drawn = {from, to, n};
  }
  let scrolling = false;
  addEventListener("scroll", () => {
    if (scrolling || !state.view) return;
    scrolling = true;
    requestAnimationFrame(() => {
      scrolling = false;
      if (!measured) {
        const row = $("runs").tBodies[0].querySelector("tr:not(.spacer)");
        rowPx = (row && row.getBoundingClientRect().height) || rowPx;
        measured = true;
      }
      const [first, last] = inView(drawn.n);
      if ((drawn.from > 0 && first < drawn.from + 10) || (drawn.to < drawn.n && last > drawn.to - 10))
        drawRows(state.columns.filter(c => state.view.at.has(c)), [first, last]);
    });
  }, {passive: true});

  function render() {
    const v = state.view;
    if (!v) return;
    const range = inView(v.items.length);   // before the page changes: no layout forced
    const cols = state.columns.filter(c => v.at.has(c));
    const keys = rowKeys(), all = keys.length > 0 && keys.every(k => state.selected.has(k));
    const head = el("tr", {}, el("th", {}, el("input", {type: "checkbox", id: "select-page", title: "select the runs on this page",
                                                         checked: all, onchange: e => selectPage(e.target.checked)})),
      el("th", {text: "run"}), el("th", {text: "status"}),
      cols.map(c => el("th", {text: c, class: "sortable" + (state.sort.col === c ? (state.sort.dir > 0 ? " sorted-asc" : " sorted-desc") : ""),
                              dataset: {col: c}, onclick: () => sortBy(c)})));
    const table = $("runs");
    table.tHead.replaceChildren(head);
    drawRows(cols, range);
    table.tFoot.replaceChildren(...(v.count ? footer(cols) : []));
    const pager = $("pager");
    pager.replaceChildren();
    if (v.pages > 1) pager.append(
      el("button", {type: "button", text: "‹ previous", disabled: v.page === 0, onclick: () => turn(-1)}),
      el("span", {class: "muted", text: `page ${v.page + 1} of ${v.pages}`}),
      el("button", {type: "button", text: "next ›", disabled: v.page >= v.pages - 1, onclick: () => turn(1)}));
    $("count").textContent = `${v.count} run${v.count === 1 ? "" : "s"}` + (state.where ? " match" : "") +
      (v.groups !== null ? ` in ${v.groups} groups` : "");
    updateCompare();
    if ($("parallel-block").open) parallel(false);
    renders++;
    document.body.dataset.renders = renders;
  }

  // --- interactions -------------------------------------------------------------------------
  function sortBy(c) {
    state.sort = state.sort.col === c ? {col: c, dir: -state.sort.dir} : {col: c, dir: 1};
    state.page = 0;
    refresh();
  }
  function turn(by) { state.page += by; refresh(); }
  function toggle(i) { state.collapsed.has(i) ? state.collapsed.delete(i) : state.collapsed.add(i); refresh(); }
  function rowKeys() { return state.view.items.filter(Array.isArray).map(r => r[0]); }
  function select(key, on, box) {
    on ? state.selected.add(key) : state.selected.delete(key);
    box.closest("tr").classList.toggle("selected", on);
    remember();
    updateCompare();
  }
  function selectPage(on) {
    for (const key of rowKeys()) on ? state.selected.add(key) : state.selected.delete(key);
    remember();
    render();
  }
  function updateCompare() {
    const link = $("compare"), keys = [...state.selected];
    link.textContent = `compare selected (${keys.length})`;
    link.classList.toggle("disabled", keys.length === 0);
    link.href = TF.compareURL(keys, state.group);
  }

  function chooser() {
    $("columns").replaceChildren(...state.fields.filter(f => f !== "key" && f !== "status").map(f =>
      el("label", {}, el("input", {type: "checkbox", value: f, checked: state.columns.includes(f),
                                   onchange: e => { state.columns = e.target.checked ? [...state.columns, f] : state.columns.filter(c => c !== f);
                                                    remember(); refresh(); }}), " " + f)));
    $("group").replaceChildren(el("option", {value: "", text: "(none)"}),
      el("option", {value: SETTINGS, text: "every setting but the seed", selected: state.group === SETTINGS}),
      ...state.fields.filter(f => f !== "key").map(f => el("option", {value: f, text: f, selected: f === state.group})));
  }

  // --- parallel coordinates of the filtered runs (all of them; Plotly.js loaded when opened) --
  let charted = null;   // the filter and columns of the runs last charted
  async function parallel(again) {   // again: draw the same runs again (another colour)
    const wanted = JSON.stringify([state.where, state.columns]);
    if (charted && charted.wanted === wanted && !again) return;
    try {
      await TF.loadPlotly();
      const t = charted && charted.wanted === wanted ? charted.table
        : await api("/api/runs", {where: state.where, columns: state.columns.join(",")});
      if (JSON.stringify([state.where, state.columns]) !== wanted) return;   // the filter changed meanwhile
      charted = {wanted, table: t};
      draw(t);
    } catch (err) { message(err.message); }
  }
  function draw(t) {
    const rows = t.rows, at = new Map(t.columns.map((c, i) => [c, i]));
    const dims = [], numeric = [];
    for (const c of state.columns) {
      const i = at.get(c);
      if (i === undefined) continue;
      const vals = rows.map(r => r[i]);
      if (vals.every(v => v === null || typeof v === "number")) {
        if (vals.some(v => v !== null)) { dims.push({label: TF.ptext(c), values: vals.map(v => v === null ? NaN : v)}); numeric.push(c); }
      } else {
        const cats = [...new Set(vals.map(v => v === null ? "—" : String(v)))].sort();
        const index = new Map(cats.map((c, j) => [c, j]));
        if (cats.length > 1 && cats.length <= 40)
          dims.push({label: TF.ptext(c), values: vals.map(v => index.get(v === null ? "—" : String(v))),
                     tickvals: cats.map((_, j) => j), ticktext: cats.map(TF.ptext)});
      }
    }
    const pick = $("parallel-color"), keep = pick.value || (numeric.includes("test_exact_match") ? "test_exact_match" : numeric[0]);
    pick.replaceChildren(...numeric.map(c => el("option", {value: c, text: c, selected: c === keep})));
    const ci = at.get(pick.value);
    $("parallel-note").textContent = `${rows.length} runs, ${dims.length} axes: the shown columns (text columns with at most 40 values).`;
    TF.plot($("parallel"), [{type: "parcoords", dimensions: dims,
      line: ci === undefined ? {} : {color: rows.map(r => r[ci] === null ? NaN : r[ci]), colorscale: "Viridis", showscale: true,
                                     colorbar: {title: {text: TF.ptext(pick.value)}}}}], {margin: {l: 70, r: 70, t: 60, b: 30}});
    document.body.dataset.parallel = String(dims.length);
  }

  $("where").value = state.where;
  $("filter").addEventListener("submit", e => {
    e.preventDefault();
    const before = {where: state.where, page: state.page, collapsed: new Set(state.collapsed)};
    state.where = $("where").value.trim();
    state.page = 0;
    state.collapsed.clear();
    refresh(() => Object.assign(state, before)).then(remember);
  });
  $("group").addEventListener("change", e => {
    state.group = e.target.value;
    state.collapsed.clear();
    state.page = 0;
    remember();
    refresh();
  });
  $("clear").addEventListener("click", () => { state.selected.clear(); remember(); render(); });
  $("parallel-block").addEventListener("toggle", () => { if ($("parallel-block").open && state.view) parallel(true); });
  $("parallel-color").addEventListener("change", () => parallel(true));

  Promise.all([api("/api/fields"), load()]).then(([f]) => {
    state.fields = f.fields;
    state.columns = state.columns.filter(c => state.fields.includes(c));
    chooser();
    remember();
    render();
    performance.mark("ui-ready");   // the table, its controls and the column chooser are live
    document.body.dataset.ready = "1";
  }).catch(err => { message(err.message); document.body.dataset.renders = ++renders; });
})();
