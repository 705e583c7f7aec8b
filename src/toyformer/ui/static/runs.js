// The runs page: every recorded run (and every run directory without a row) in one table,
// filtered on the server with the --where language, sorted, grouped and paged here.
"use strict";
(() => {
  const {el, api, message, fmt} = TF;
  const PAGE = 200;
  const DEFAULT_COLUMNS = ["recorded_at", "source", "sweep", "task.name", "layout", "model.d_model", "model.n_layers",
                           "seed", "test_token_acc", "test_exact_match", "solved_at_step", "wall_s"];
  const url = new URL(location.href);
  const state = {
    where: url.searchParams.get("where") || "",
    group: url.searchParams.get("group") || "",
    columns: (url.searchParams.get("columns") || localStorage.getItem("tf.columns") || DEFAULT_COLUMNS.join(","))
      .split(",").filter(Boolean),
    sort: {col: null, dir: 1}, page: 0, fields: [], table: null, collapsed: new Set(),
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
  }

  async function load() {
    const wanted = state.group && !state.columns.includes(state.group) ? [...state.columns, state.group] : state.columns;
    const table = await api("/api/runs", {where: state.where, columns: wanted.join(",")});
    message("");
    state.table = table;
    state.page = 0;
    render();
  }

  function value(row, col) { return row[state.table.columns.indexOf(col)]; }

  function compare(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;
    if (b === null || b === undefined) return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, {numeric: true});
  }

  function items() {   // rows sorted, grouped (a header row per group), as the table shows them
    const rows = state.table.rows.slice();
    const {col, dir} = state.sort;
    if (col) {
      const i = state.table.columns.indexOf(col);
      rows.sort((a, b) => (a[i] === null) - (b[i] === null) || dir * compare(a[i], b[i]));
    }
    if (!state.group) return rows.map(r => ({row: r}));
    const gi = state.table.columns.indexOf(state.group);
    const groups = new Map();
    for (const r of rows) {
      const k = JSON.stringify(r[gi] === undefined ? null : r[gi]);
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(r);
    }
    const out = [];
    for (const k of [...groups.keys()].sort((a, b) => compare(JSON.parse(a), JSON.parse(b)))) {
      const members = groups.get(k);
      out.push({group: JSON.parse(k), key: k, members});
      if (!state.collapsed.has(k)) for (const r of members) out.push({row: r});
    }
    return out;
  }

  function mean(members, i) {
    const vals = members.map(r => r[i]).filter(v => typeof v === "number");
    return vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : null;
  }

  function render() {
    const t = state.table, cols = state.columns;
    const all = items();
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
      if (item.members) {
        const label = `${state.group} = ${fmt(item.group)} · ${item.members.length} run${item.members.length === 1 ? "" : "s"}`;
        body.append(el("tr", {class: "group", dataset: {group: item.key}, onclick: () => toggle(item.key)},
          el("td", {text: state.collapsed.has(item.key) ? "▸" : "▾"}), el("td", {colspan: 2, text: label}),
          cols.map(c => { const m = mean(item.members, t.columns.indexOf(c));
                          return el("td", {class: "num", title: "mean", text: m === null ? "" : fmt(m)}); })));
        continue;
      }
      const r = item.row, key = r[0];
      const on = state.selected.has(key);
      body.append(el("tr", {class: on ? "selected" : "", dataset: {key}},
        el("td", {}, el("input", {type: "checkbox", checked: on, dataset: {key}, onchange: e => select(key, e.target.checked, e.target)})),
        el("td", {}, el("a", {href: TF.runURL(key), text: key.startsWith("d:") ? key.slice(2) : "#" + key})),
        el("td", {text: r[1]}),
        cols.map(c => { const v = value(r, c); return el("td", {class: typeof v === "number" ? "num" : "", text: fmt(v)}); })));
    }
    const table = $("runs");
    table.tHead.replaceChildren(head);
    table.tBodies[0].replaceChildren(body);
    const pager = $("pager");
    pager.replaceChildren();
    if (pages > 1) pager.append(
      el("button", {type: "button", text: "‹ previous", disabled: state.page === 0, onclick: () => { state.page--; render(); }}),
      el("span", {class: "muted", text: `page ${state.page + 1} of ${pages}`}),
      el("button", {type: "button", text: "next ›", disabled: state.page >= pages - 1, onclick: () => { state.page++; render(); }}));
    $("count").textContent = `${t.count} run${t.count === 1 ? "" : "s"}` + (state.where ? " match" : "");
    updateCompare();
    renders++;
    document.body.dataset.renders = renders;
  }

  function sortBy(c) {
    state.sort = state.sort.col === c ? {col: c, dir: -state.sort.dir} : {col: c, dir: 1};
    render();
  }
  function toggle(k) { state.collapsed.has(k) ? state.collapsed.delete(k) : state.collapsed.add(k); render(); }
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
    const box = $("columns");
    box.replaceChildren(...state.fields.filter(f => f !== "key" && f !== "status").map(f =>
      el("label", {}, el("input", {type: "checkbox", value: f, checked: state.columns.includes(f),
                                   onchange: e => { state.columns = e.target.checked ? [...state.columns, f] : state.columns.filter(c => c !== f);
                                                    remember(); load().catch(err => message(err.message)); }}), " " + f)));
    const group = $("group");
    group.replaceChildren(el("option", {value: "", text: "(none)"}),
                          ...state.fields.filter(f => f !== "key").map(f => el("option", {value: f, text: f, selected: f === state.group})));
  }

  $("where").value = state.where;
  $("filter").addEventListener("submit", e => {
    e.preventDefault();
    state.where = $("where").value.trim();
    remember();
    load().catch(err => { message(err.message); document.body.dataset.renders = ++renders; });
  });
  $("group").addEventListener("change", e => { state.group = e.target.value; state.collapsed.clear(); remember(); load().catch(err => message(err.message)); });
  $("clear").addEventListener("click", () => { state.selected.clear(); remember(); render(); });

  Promise.all([api("/api/fields"), load()]).then(([f]) => {
    state.fields = f.fields;
    const known = state.columns.filter(c => state.fields.includes(c));
    if (known.length !== state.columns.length) { state.columns = known; render(); }
    chooser();
    remember();
    performance.mark("ui-ready");   // the table, its controls and the column chooser are live
    document.body.dataset.ready = "1";
  }).catch(err => { message(err.message); });
})();
