// The runs page: every recorded run (and every run directory without a row) in one table, loaded
// once. A filter (the --where language) is answered by the server with the keys it keeps; the
// page sorts, groups (by a field, or by every setting but the seed, each group with the mean ±
// 95% CI of its columns from the server), pages, and shows the min, max and best of each numeric
// column. The filtered runs export as CSV or JSON, and draw as parallel coordinates.
"use strict";
(() => {
  const {el, api, message, fmt, accuracy} = TF;
  const PAGE = 200;
  const SETTINGS = "*settings";
  const DEFAULT_COLUMNS = ["recorded_at", "source", "sweep", "task.name", "layout", "model.d_model", "model.n_layers",
                           "seed", "test_token_acc", "test_exact_match", "solved_at_step", "wall_s"];
  const url = new URL(location.href);
  const state = {
    where: url.searchParams.get("where") || "",
    group: url.searchParams.get("group") || "",
    columns: (url.searchParams.get("columns") || localStorage.getItem("tf.columns") || DEFAULT_COLUMNS.join(","))
      .split(",").filter(Boolean),
    sort: {col: null, dir: 1}, page: 0, fields: [], directions: {}, table: null, col: null, index: null,
    keys: null, groups: null, collapsed: new Set(),
    selected: new Set(JSON.parse(sessionStorage.getItem("tf.selected") || "[]")),
  };
  let renders = 0;
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
  async function loadTable() {
    const wanted = state.group && state.group !== SETTINGS && !state.columns.includes(state.group)
      ? [...state.columns, state.group] : state.columns;
    const t = await api("/api/runs", {columns: wanted.join(",")});
    state.table = t;
    state.col = new Map(t.columns.map((c, i) => [c, i]));
    state.index = new Map(t.rows.map(r => [r[0], r]));
  }

  async function applyFilter() {
    if (!state.where) { state.keys = null; return; }
    const {keys} = await api("/api/runs/keys", {where: state.where});
    if (keys.some(k => !state.index.has(k))) await loadTable();   // a run recorded since the table was loaded
    state.keys = keys;
  }

  async function loadGroups() {
    state.groups = state.group
      ? await api("/api/runs/groups", {where: state.where, group: state.group, columns: state.columns.join(",")}) : null;
  }

  async function refresh(steps, undo) {   // steps: what changed, in order; then one render
    try {
      for (const step of steps) await step();
      message("");
    } catch (err) {
      if (undo) undo();
      message(err.message);   // the last good answer stays on the page
    }
    render();
  }

  // --- the rows as shown ------------------------------------------------------------------
  function filtered() {
    return state.keys ? state.keys.map(k => state.index.get(k)).filter(Boolean) : state.table.rows;
  }
  function value(row, col) { const i = state.col.get(col); return i === undefined ? undefined : row[i]; }

  function compare(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;
    if (b === null || b === undefined) return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, {numeric: true});
  }

  function items(rows) {   // rows sorted, grouped (a header row per group), as the table shows them
    rows = rows.slice();
    const {col, dir} = state.sort;
    if (col && state.col.has(col)) {
      const i = state.col.get(col);
      rows.sort((a, b) => (a[i] === null) - (b[i] === null) || dir * compare(a[i], b[i]));
    }
    const g = state.groups;
    if (!g) return rows.map(r => ({row: r}));
    const members = g.groups.map(() => []);
    for (const r of rows) { const i = g.of[r[0]]; if (i !== undefined) members[i].push(r); }
    const order = g.groups.map((_, i) => i).filter(i => members[i].length)
      .sort((a, b) => compare(JSON.stringify(g.fields.map(f => g.groups[a].settings[f])),
                              JSON.stringify(g.fields.map(f => g.groups[b].settings[f]))));
    const out = [];
    for (const i of order) {
      out.push({group: i, members: members[i]});
      if (!state.collapsed.has(i)) for (const r of members[i]) out.push({row: r});
    }
    return out;
  }

  function cell(row, c) {
    const v = value(row, c);
    if (c === "test_exact_match")
      return el("td", {class: "num"}, accuracy(v, value(row, "test_n"), value(row, "test_exact_match_lo"),
                                               value(row, "test_exact_match_hi")));
    return el("td", {class: typeof v === "number" ? "num" : "", text: fmt(v)});
  }

  function groupRow(item) {
    const g = state.groups, grp = g.groups[item.group];
    const label = (g.fields.map(f => `${f} = ${fmt(grp.settings[f])}`).join(", ") || "the same settings") +
      ` · ${item.members.length} run${item.members.length === 1 ? "" : "s"}`;
    return el("tr", {class: "group", dataset: {group: item.group}, onclick: () => toggle(item.group)},
      el("td", {text: state.collapsed.has(item.group) ? "▸" : "▾"}), el("td", {colspan: 2, text: label}),
      state.columns.map(c => {
        const s = grp.stats[c];
        return el("td", {class: "num", title: s ? `mean ± 95% CI half-width over ${s[2]} runs` : "",
                         text: s ? `${fmt(s[0])} ± ${fmt(s[1])}` : ""});
      }));
  }

  function footer(rows) {   // min, max and best of each numeric column over the filtered runs
    const stats = state.columns.map(c => {
      const i = state.col.get(c);
      let min = null, max = null;
      if (i !== undefined) for (const r of rows) {
        const v = r[i];
        if (typeof v !== "number") continue;
        if (min === null || v < min[i]) min = r;
        if (max === null || v > max[i]) max = r;
      }
      if (min === null) return {min: null, max: null, best: null};
      const d = state.directions[c], best = d === "max" ? max : d === "min" ? min : null;
      return {min: {v: min[i]}, max: {v: max[i]}, best: best && {v: best[i], key: best[0]}};
    });
    return ["min", "max", "best"].map(stat => el("tr", {class: "stat", dataset: {stat}},
      el("td"), el("td", {colspan: 2, text: stat === "best" ? "best (run)" : stat}),
      stats.map(s => { const x = s[stat];
        return el("td", {class: "num"}, x ? fmt(x.v) : "",
                  x && x.key ? el("a", {class: "ci", href: TF.runURL(x.key), text: " " + label(x.key)}) : null); })));
  }
  function label(key) { return key.startsWith("d:") ? key.slice(2) : "#" + key; }

  function render() {
    if (!state.table) return;
    const cols = state.columns, rows = filtered();
    const all = items(rows);
    const pages = Math.max(1, Math.ceil(all.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    const shown = all.slice(state.page * PAGE, (state.page + 1) * PAGE);
    const head = el("tr", {}, el("th", {}, el("input", {type: "checkbox", id: "select-page", title: "select the runs on this page",
                                                         onchange: e => selectPage(shown, e.target.checked)})),
      el("th", {text: "run"}), el("th", {text: "status"}),
      cols.map(c => el("th", {text: c, class: "sortable" + (state.sort.col === c ? (state.sort.dir > 0 ? " sorted-asc" : " sorted-desc") : ""),
                              dataset: {col: c}, onclick: () => sortBy(c)})));
    const body = document.createDocumentFragment();
    for (const item of shown) {
      if (item.members) { body.append(groupRow(item)); continue; }
      const r = item.row, key = r[0], on = state.selected.has(key);
      body.append(el("tr", {class: on ? "selected" : "", dataset: {key}},
        el("td", {}, el("input", {type: "checkbox", checked: on, dataset: {key}, onchange: e => select(key, e.target.checked, e.target)})),
        el("td", {}, el("a", {href: TF.runURL(key), text: label(key)})),
        el("td", {text: r[1]}), cols.map(c => cell(r, c))));
    }
    const table = $("runs");
    table.tHead.replaceChildren(head);
    table.tBodies[0].replaceChildren(body);
    table.tFoot.replaceChildren(...(rows.length ? footer(rows) : []));
    const pager = $("pager");
    pager.replaceChildren();
    if (pages > 1) pager.append(
      el("button", {type: "button", text: "‹ previous", disabled: state.page === 0, onclick: () => { state.page--; render(); }}),
      el("span", {class: "muted", text: `page ${state.page + 1} of ${pages}`}),
      el("button", {type: "button", text: "next ›", disabled: state.page >= pages - 1, onclick: () => { state.page++; render(); }}));
    $("count").textContent = `${rows.length} run${rows.length === 1 ? "" : "s"}` + (state.where ? " match" : "") +
      (state.groups ? ` in ${new Set(rows.map(r => state.groups.of[r[0]])).size} groups` : "");
    updateCompare();
    if ($("parallel-block").open) parallel(rows);
    renders++;
    document.body.dataset.renders = renders;
  }

  // --- interactions -------------------------------------------------------------------------
  function sortBy(c) {
    state.sort = state.sort.col === c ? {col: c, dir: -state.sort.dir} : {col: c, dir: 1};
    render();
  }
  function toggle(i) { state.collapsed.has(i) ? state.collapsed.delete(i) : state.collapsed.add(i); render(); }
  function select(key, on, box) {
    on ? state.selected.add(key) : state.selected.delete(key);
    box.closest("tr").classList.toggle("selected", on);
    remember();
    updateCompare();
  }
  function selectPage(shown, on) {
    for (const item of shown) if (item.row) on ? state.selected.add(item.row[0]) : state.selected.delete(item.row[0]);
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
                                                    remember(); refresh([loadTable, loadGroups]); }}), " " + f)));
    $("group").replaceChildren(el("option", {value: "", text: "(none)"}),
      el("option", {value: SETTINGS, text: "every setting but the seed", selected: state.group === SETTINGS}),
      ...state.fields.filter(f => f !== "key").map(f => el("option", {value: f, text: f, selected: f === state.group})));
  }

  // --- parallel coordinates of the filtered runs (Plotly.js loaded when opened) ------------
  function parallel(rows) {
    TF.loadPlotly().then(() => {
      const dims = [], numeric = [];
      for (const c of state.columns) {
        const i = state.col.get(c);
        const vals = rows.map(r => r[i]);
        if (vals.every(v => v === null || typeof v === "number")) {
          if (vals.some(v => v !== null)) { dims.push({label: TF.ptext(c), values: vals.map(v => v === null ? NaN : v)}); numeric.push(c); }
        } else {
          const cats = [...new Set(vals.map(v => v === null ? "—" : String(v)))].sort();
          if (cats.length > 1 && cats.length <= 40)
            dims.push({label: TF.ptext(c), values: vals.map(v => cats.indexOf(v === null ? "—" : String(v))),
                       tickvals: cats.map((_, j) => j), ticktext: cats.map(TF.ptext)});
        }
      }
      const pick = $("parallel-color"), keep = pick.value || (numeric.includes("test_exact_match") ? "test_exact_match" : numeric[0]);
      pick.replaceChildren(...numeric.map(c => el("option", {value: c, text: c, selected: c === keep})));
      const ci = state.col.get(pick.value);
      $("parallel-note").textContent = `${rows.length} runs, ${dims.length} axes: the shown columns (text columns with at most 40 values).`;
      TF.plot($("parallel"), [{type: "parcoords", dimensions: dims,
        line: ci === undefined ? {} : {color: rows.map(r => r[ci] === null ? NaN : r[ci]), colorscale: "Viridis", showscale: true,
                                       colorbar: {title: {text: TF.ptext(pick.value)}}}}], {margin: {l: 70, r: 70, t: 60, b: 30}});
      document.body.dataset.parallel = String(dims.length);
    }).catch(err => message(err.message));
  }

  $("where").value = state.where;
  $("filter").addEventListener("submit", e => {
    e.preventDefault();
    const before = state.where;
    state.where = $("where").value.trim();
    refresh([applyFilter, loadGroups], () => { state.where = before; }).then(remember);
  });
  $("group").addEventListener("change", e => {
    state.group = e.target.value;
    state.collapsed.clear();
    remember();
    refresh([loadTable, loadGroups]);
  });
  $("clear").addEventListener("click", () => { state.selected.clear(); remember(); render(); });
  $("parallel-block").addEventListener("toggle", () => { if ($("parallel-block").open && state.table) parallel(filtered()); });
  $("parallel-color").addEventListener("change", () => parallel(filtered()));

  Promise.all([api("/api/fields"), loadTable()]).then(async ([f]) => {
    state.fields = f.fields;
    state.directions = f.directions;
    state.columns = state.columns.filter(c => state.fields.includes(c));
    if (state.where) await applyFilter();
    if (state.group) await loadGroups();
    chooser();
    remember();
    render();
    performance.mark("ui-ready");   // the table, its controls and the column chooser are live
    document.body.dataset.ready = "1";
  }).catch(err => { message(err.message); document.body.dataset.renders = ++renders; });
})();
