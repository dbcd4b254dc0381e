// One table: its rows (paginated, sortable, filterable with a SQL WHERE clause) and its schema.
// Embedding columns are fetched as their shape (array_length), not their values: a page of
// 50 ColQwen bags would otherwise be tens of megabytes of JSON the grid would never show.

import { api } from "../api.js";
import { columnKind, isEmbedding, renderGrid } from "../cells.js";
import { clear, fmtCount, fmtDate, fmtMs, h, qident, qliteral } from "../dom.js";
import { pending, wsPath } from "../nav.js";
import { state } from "../state.js";

// View settings per table survive navigating away and back within the session.
const memory = new Map();

function settingsFor(ws, table, info) {
  const key = `${ws}.${table}`;
  if (!memory.has(key)) {
    const pk = info.primary_key && info.primary_key[0];
    memory.set(key, { page: 0, size: 50, filter: "", sort: pk ? { column: pk, desc: false } : null, tab: "rows" });
  }
  return memory.get(key);
}

function errorBox(e) {
  return h("div", { class: "error-box", role: "alert" },
    h("div", null, h("strong", null, e.sqlstate ? `${e.sqlstate} · ` : ""), e.message),
    e.hint ? h("div", { class: "muted small" }, e.hint) : null);
}

function buildQuery(ws, info, cfg, shapes) {
  const from = `${qident(ws)}.${qident(info.name)}`;
  const where = cfg.filter.trim() ? ` WHERE ${cfg.filter.trim()}` : "";
  const extra = [];
  const list = info.columns.map((c) => {
    const q = qident(c.name);
    const kind = columnKind(c.name, c.type);
    if (!shapes || !isEmbedding(kind)) return q;
    if (kind === "multivector") extra.push(`array_length(${q}[1], 1)`);
    return `array_length(${q}, 1) AS ${q}`;
  });
  const order = cfg.sort ? ` ORDER BY ${qident(cfg.sort.column)} ${cfg.sort.desc ? "DESC" : "ASC"} NULLS LAST` : "";
  const sql = `SELECT ${[...list, ...extra].join(", ")} FROM ${from}${where}${order} ` +
    `LIMIT ${cfg.size} OFFSET ${cfg.page * cfg.size}`;
  return { sql, count: `SELECT count(*) FROM ${from}${where}` };
}

function schemaView(info) {
  const indexed = new Map(info.indexes.map((i) => [i.column, i]));
  const pk = new Set(info.primary_key || []);
  return h("div", { class: "stack" },
    h("div", { class: "grid-wrap" }, h("table", { class: "grid schema" },
      h("thead", null, h("tr", null, ["Column", "Type", "Nullable", "Default", "Key / index"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", null, info.columns.map((c) => h("tr", null,
        h("td", null, h("span", { class: "col-name" }, c.name)),
        h("td", null, h("code", null, c.type)),
        h("td", null, c.not_null ? "NOT NULL" : h("span", { class: "muted" }, "null")),
        h("td", null, c.default ? h("code", null, c.default) : (c.serial ? h("code", null, "serial") : "")),
        h("td", null,
          pk.has(c.name) ? h("span", { class: "chip chip-key" }, "primary key") : null,
          indexed.has(c.name) ? h("span", { class: "chip" }, `${indexed.get(c.name).index_type || "index"} · ${indexed.get(c.name).name}`) : null)))))));
}

// Versions and index state come from SQL (tarndb_versions / tarndb_indexes), loaded when the
// Schema tab is first opened so the rows view never waits for them.
async function lakeState(ws, table) {
  const name = qliteral(`${ws}.${table}`);
  const [versions, indexes] = await Promise.all([
    api.query(ws, `SELECT version, timestamp, rows, tags FROM tarndb_versions(${name}) ORDER BY version DESC LIMIT 20`),
    api.query(ws, `SELECT name, column_name, index_type, pending_rows FROM tarndb_indexes(${name})`),
  ]);
  return h("div", { class: "stack" },
    h("h3", null, "Indexes"),
    indexes.rows.length
      ? h("ul", { class: "plain", "data-testid": "index-state" }, indexes.rows.map(([n, col, type, pend]) => h("li", null,
        h("code", null, n), " on ", h("strong", null, col), " ", h("span", { class: "chip" }, type || "index"), " ",
        pend ? h("span", { class: "muted" }, `${fmtCount(pend)} new rows searched exactly until the next fold`)
          : h("span", { class: "muted" }, "up to date"))))
      : h("p", { class: "muted" }, "No indexes. Create one with CREATE INDEX … USING deeplake_index (column)."),
    h("h3", null, "Versions"),
    h("p", { class: "muted small" }, "Read an older version with ", h("code", null, `SELECT … FROM "${table}@<version or tag>"`), "."),
    h("div", { class: "grid-wrap" }, h("table", { class: "grid versions", "data-testid": "versions" },
      h("thead", null, h("tr", null, ["Version", "Committed", "Rows", "Tags"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", null, versions.rows.map(([v, ts, rows, tags]) => h("tr", null,
        h("td", null, String(v)), h("td", null, fmtDate(ts)), h("td", null, fmtCount(rows)),
        h("td", null, (tags || []).map((t) => h("span", { class: "chip" }, t)))))))));
}

export async function render(main, { ws, table }) {
  const info = await api.table(ws, table);
  state.tables.set(table, info);
  const cfg = settingsFor(ws, table, info);
  const columns = info.columns.map((c) => {
    const kind = columnKind(c.name, c.type);
    return { name: c.name, type: c.type, kind, sortable: !isEmbedding(kind) && kind !== "json" };
  });

  const status = h("span", { class: "muted small", "aria-live": "polite" });
  const body = h("div", { class: "table-body" });
  const filter = h("input", { type: "search", class: "filter-input", value: cfg.filter, "aria-label": "Filter rows (SQL WHERE clause)",
    placeholder: "e.g. width > 200 AND metadata->>'dataset' = 'coco'", dataset: { slash: "" }, spellcheck: false });
  const sizeSel = h("select", { "aria-label": "Rows per page", onchange: () => { cfg.size = Number(sizeSel.value); cfg.page = 0; load(); } },
    [25, 50, 100, 200].map((n) => h("option", { value: n, selected: n === cfg.size }, `${n} / page`)));
  const pager = h("div", { class: "pager" });
  let total = null;
  let useShapes = true;

  const tabRows = h("button", { type: "button", role: "tab", class: "tab", onclick: () => switchTab("rows") }, "Rows");
  const tabSchema = h("button", { type: "button", role: "tab", class: "tab", onclick: () => switchTab("schema") }, "Schema");
  const rowsPanel = h("div", { role: "tabpanel" },
    h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); cfg.filter = filter.value; cfg.page = 0; load(); } },
      h("span", { class: "where", "aria-hidden": "true" }, "WHERE"), filter,
      h("button", { class: "btn", type: "submit" }, "Apply"), sizeSel),
    body, h("div", { class: "table-foot" }, status, pager));
  const schemaPanel = h("div", { role: "tabpanel" }, schemaView(info));
  let lakeLoaded = false;
  async function loadLakeState() {
    if (lakeLoaded) return;
    lakeLoaded = true;
    try {
      schemaPanel.append(await lakeState(ws, table));
    } catch (e) {
      lakeLoaded = false;
      schemaPanel.append(errorBox(e));
    }
  }

  function switchTab(tab) {
    cfg.tab = tab;
    tabRows.setAttribute("aria-selected", String(tab === "rows"));
    tabSchema.setAttribute("aria-selected", String(tab === "schema"));
    rowsPanel.hidden = tab !== "rows";
    schemaPanel.hidden = tab !== "schema";
    if (tab === "schema") loadLakeState();
  }

  function drawPager() {
    const pages = total === null ? null : Math.max(1, Math.ceil(total / cfg.size));
    const first = total === 0 ? 0 : cfg.page * cfg.size + 1;
    const last = total === null ? cfg.page * cfg.size + cfg.size : Math.min(total, (cfg.page + 1) * cfg.size);
    const btn = (label, aria, page, disabled) => h("button", { type: "button", class: "btn btn-sm", "aria-label": aria, disabled,
      onclick: () => { cfg.page = page; load(); } }, label);
    clear(pager).append(
      btn("«", "First page", 0, cfg.page === 0),
      btn("‹", "Previous page", cfg.page - 1, cfg.page === 0),
      h("span", { class: "pager-label" }, `${fmtCount(first)}–${fmtCount(last)} of ${fmtCount(total)}`),
      btn("›", "Next page", cfg.page + 1, pages !== null && cfg.page >= pages - 1),
      btn("»", "Last page", (pages || 1) - 1, pages === null || cfg.page >= pages - 1));
  }

  async function load() {
    const { sql, count } = buildQuery(ws, info, cfg, useShapes);
    body.classList.add("loading");
    const t0 = performance.now();
    api.query(ws, count).then((r) => { total = Number(r.rows[0][0]); drawPager(); }).catch(() => { total = null; drawPager(); });
    try {
      const res = await api.query(ws, sql);
      const extra = { shapes: {} };
      if (useShapes) {
        let k = info.columns.length;
        columns.forEach((c, j) => {
          if (c.kind === "vector") extra.shapes[c.name] = res.rows.map((r) => (r[j] === null ? null : [r[j]]));
          if (c.kind === "multivector") {
            const col = k++;
            extra.shapes[c.name] = res.rows.map((r) => (r[j] === null ? null : [r[j], r[col]]));
          }
        });
      }
      const rows = res.rows.map((r) => r.slice(0, columns.length));
      clear(body).append(rows.length
        ? renderGrid({ columns, rows, ws, sort: cfg.sort, offset: cfg.page * cfg.size, extra,
          onSort: (name) => {
            cfg.sort = cfg.sort && cfg.sort.column === name ? { column: name, desc: !cfg.sort.desc } : { column: name, desc: false };
            cfg.page = 0;
            load();
          } })
        : h("p", { class: "empty" }, cfg.filter ? "No rows match this filter." : "This table is empty."));
      status.textContent = `${fmtMs(performance.now() - t0)}`;
    } catch (e) {
      // The engine may not take array_length on some embedding column; fall back to values.
      if (useShapes && columns.some((c) => isEmbedding(c.kind)) && !cfg.filter) {
        useShapes = false;
        return load();
      }
      clear(body).append(errorBox(e));
    } finally {
      body.classList.remove("loading");
    }
    drawPager();
  }

  main.append(
    h("div", { class: "page-head" },
      h("div", null,
        h("h1", null, info.name),
        h("p", { class: "muted" }, `${ws} · ${info.columns.length} columns · `,
          h("span", { id: "row-count" }, `${fmtCount(info.row_count)} rows`),
          info.indexes.length ? ` · ${info.indexes.length} index${info.indexes.length > 1 ? "es" : ""}` : "")),
      h("div", { class: "head-actions" },
        h("a", { class: "btn", href: wsPath(ws, "/sql"), onclick: () => {
          pending.sql = `SELECT *\nFROM ${qident(ws)}.${qident(info.name)}\nLIMIT 100;`;
        } }, "Query in SQL"),
        h("a", { class: "btn", href: wsPath(ws, "/search"), onclick: () => { pending.searchTable = info.name; } }, "Search"))),
    h("div", { class: "tabs", role: "tablist" }, tabRows, tabSchema),
    rowsPanel, schemaPanel);
  switchTab(cfg.tab);
  drawPager();
  await load();
}
