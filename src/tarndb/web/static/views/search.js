// Semantic search: pick a table and columns, type a sentence, get the top-k ranked by the
// engine's <#> operator (BM25 on a text column, cosine on a FLOAT4[] column with the server's
// embed(), MaxSim on a FLOAT4[][] column with the model's token vectors from embed_multi(), or
// both fused), with an optional SQL filter as a prefilter.

import { api } from "../api.js";
import { columnKind, fileCell, isEmbedding, renderCell } from "../cells.js";
import { clear, fmtMs, h, qident, qliteral } from "../dom.js";
import { go, pending, wsPath } from "../nav.js";
import { state } from "../state.js";

const MODES = [
  { id: "bm25", label: "BM25", needs: ["text"] },
  { id: "vector", label: "Vector", needs: ["vector"] },
  { id: "hybrid", label: "Hybrid", needs: ["text", "vector"] },
];
const memory = { table: null, mode: "bm25", k: 10, filter: "", q: "", wv: 0.5 };

// The query's embedding for an embedding column: FLOAT4[][] (multi-vector) columns get the
// model's token vectors (embed_multi), FLOAT4[] columns one vector (embed). A column
// generated with a named model is searched with that model; otherwise the workspace's default.
export function embedCall(col, lit) {
  const multi = columnKind(col.name, col.type) === "multivector";
  const fn = multi ? "embed_multi" : "embed";
  const m = /\bembed(?:_multi)?\s*\(\s*'((?:[^']|'')*)'\s*,/i.exec(col.generated || "");
  return m ? `${fn}(${qliteral(m[1].replace(/''/g, "'"))}, ${lit})` : `${fn}(${lit})`;
}

function buildSql(ws, info, f) {
  const keep = info.columns.filter((c) => !isEmbedding(columnKind(c.name, c.type))).map((c) => qident(c.name));
  const lit = qliteral(f.q);
  const t = f.text ? qident(f.text) : null;
  const v = f.vector ? qident(f.vector) : null;
  const vcol = info.columns.find((c) => c.name === f.vector);
  const q = vcol ? embedCall(vcol, lit) : `embed(${lit})`;
  let score;
  if (f.mode === "bm25") score = `${t} <#> ${lit}`;
  else if (f.mode === "vector") score = `${v} <#> ${q}`;
  else score = `(${v}, ${t}) <#> deeplake_hybrid_record(${q}, ${lit}, ${f.wv}, ${(1 - f.wv).toFixed(2)})`;
  const where = f.filter.trim() ? `\nWHERE ${f.filter.trim()}` : "";
  return `SELECT ${keep.join(", ")},\n       ${score} AS score\nFROM ${qident(ws)}.${qident(info.name)}${where}\nORDER BY score DESC\nLIMIT ${f.k}`;
}

// Wrap query terms in <mark> without building HTML from the value.
function highlighted(text, q, max = 600) {
  const s = text.length > max ? text.slice(0, max) + "…" : text;
  const terms = q.toLowerCase().match(/[\p{L}\p{N}_]{2,}/gu) || [];
  if (!terms.length) return [s];
  const re = new RegExp(`(${terms.map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})`, "giu");
  return s.split(re).map((part, i) => (i % 2 ? h("mark", null, part) : part));
}

export async function render(main, { ws }) {
  if (!state.tables.size) {
    const res = await api.tables(ws);
    for (const t of res.tables) state.tables.set(t.name, t);
  }
  const tables = [...state.tables.values()];
  if (pending.searchTable) { memory.table = pending.searchTable; pending.searchTable = null; }
  if (!tables.some((t) => t.name === memory.table)) memory.table = tables[0] ? tables[0].name : null;

  main.append(h("div", { class: "page-head" },
    h("div", null, h("h1", null, "Search"), h("p", { class: "muted" }, "Rank rows by meaning (vector), by keywords (BM25), or both."))));
  if (!tables.length) {
    main.append(h("p", { class: "empty" }, "This workspace has no tables to search."));
    return;
  }

  const tableSel = h("select", { id: "s-table" });
  const textSel = h("select", { id: "s-text" });
  const vecSel = h("select", { id: "s-vector" });
  const modeBox = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Ranking" });
  const q = h("input", { id: "s-q", type: "search", value: memory.q, placeholder: "Describe what you are looking for…",
    required: true, dataset: { slash: "" }, autocomplete: "off" });
  const k = h("input", { id: "s-k", type: "number", min: 1, max: 1000, value: memory.k, class: "num-input" });
  const filter = h("input", { id: "s-filter", type: "text", value: memory.filter, placeholder: "optional, e.g. model = 'gpt-4o'", spellcheck: false });
  const wv = h("input", { id: "s-wv", type: "range", min: 0, max: 1, step: 0.05, value: memory.wv });
  const wvLabel = h("output", { for: "s-wv" });
  const wvRow = h("div", { class: "field" }, h("label", { for: "s-wv" }, "Vector weight "), wv, wvLabel);
  const sqlBox = h("details", { class: "gen-sql" });
  const results = h("div", { class: "results", "aria-live": "polite" });

  const info = () => state.tables.get(tableSel.value);
  const colsOf = (t, kinds) => t.columns.filter((c) => kinds.includes(columnKind(c.name, c.type)));

  function fillColumns() {
    const t = info();
    const texts = colsOf(t, ["text"]);
    const vecs = colsOf(t, ["vector", "multivector"]);
    const bm25 = new Set(t.indexes.filter((i) => /bm25|inverted|text/i.test(i.index_type || "")).map((i) => i.column));
    // Prefer the columns that have an index: that is what the user set up for search.
    texts.sort((a, b) => Number(bm25.has(b.name)) - Number(bm25.has(a.name)));
    clear(textSel).append(...texts.map((c) => h("option", { value: c.name }, `${c.name}${bm25.has(c.name) ? " (indexed)" : ""}`)));
    clear(vecSel).append(...vecs.map((c) => h("option", { value: c.name }, `${c.name} · ${c.type}`)));
    textSel.disabled = !texts.length;
    vecSel.disabled = !vecs.length;
    const have = { text: texts.length > 0, vector: vecs.length > 0 };
    clear(modeBox);
    for (const m of MODES) {
      const ok = m.needs.every((n) => have[n]);
      if (!ok && memory.mode === m.id) memory.mode = MODES.find((x) => x.needs.every((n) => have[n]))?.id || "bm25";
      const input = h("input", { type: "radio", name: "s-mode", value: m.id, id: `s-mode-${m.id}`, disabled: !ok, checked: memory.mode === m.id,
        onchange: () => { memory.mode = m.id; syncMode(); } });
      modeBox.append(h("label", { for: `s-mode-${m.id}`, class: ok ? "" : "disabled",
        title: ok ? "" : `Needs a ${m.needs.join(" and a ")} column` }, input, m.label));
    }
    syncMode();
  }

  function syncMode() {
    textSel.closest(".field").hidden = memory.mode === "vector";
    vecSel.closest(".field").hidden = memory.mode === "bm25";
    wvRow.hidden = memory.mode !== "hybrid";
    wvLabel.textContent = Number(wv.value).toFixed(2);
  }
  wv.addEventListener("input", syncMode);

  clear(tableSel).append(...tables.map((t) => h("option", { value: t.name, selected: t.name === memory.table }, t.name)));
  tableSel.addEventListener("change", () => { memory.table = tableSel.value; fillColumns(); });

  async function search(e) {
    if (e) e.preventDefault();
    const t = info();
    Object.assign(memory, { table: t.name, q: q.value.trim(), k: Math.max(1, Math.min(1000, Number(k.value) || 10)),
      filter: filter.value, wv: Number(wv.value) });
    if (!memory.q) { q.focus(); return; }
    const sql = buildSql(ws, t, { ...memory, text: textSel.value, vector: vecSel.value });
    clear(sqlBox).append(h("summary", null, "SQL"), h("pre", { class: "code" }, sql),
      h("button", { type: "button", class: "btn btn-sm", onclick: () => { pending.sql = sql; go(wsPath(ws, "/sql")); } }, "Open in SQL console"));
    clear(results).append(h("p", { class: "muted" }, "Searching…"));
    const t0 = performance.now();
    try {
      const res = await api.query(ws, sql);
      drawResults(t, res, performance.now() - t0);
    } catch (err) {
      const box = h("div", { class: "error-box", role: "alert" }, h("div", null, h("strong", null, err.sqlstate ? `${err.sqlstate} · ` : ""), err.message));
      if (memory.mode !== "bm25" && /embed|dimension/i.test(err.message)) {
        box.append(h("p", { class: "small" }, /dimension/i.test(err.message)
          ? "The query's embedding and the column's vectors differ in size: the column was made with " +
            "another model than the workspace's default. Generate it with a named model (embed('model', …)) " +
            "or set the workspace's default model."
          : "Vector and hybrid search embed your sentence on the server with embed('…') (embed_multi('…') " +
            "for multi-vector columns). This server has no embedding model configured; BM25 works without one."));
      }
      clear(results).append(box);
    }
  }

  function drawResults(t, res, ms) {
    const cols = res.columns;
    const si = cols.indexOf("score");
    // The text column is the preview in every mode; in vector mode it is just not ranked on.
    const textCol = textSel.value || null;
    const fileIdx = [];
    const rest = [];
    cols.forEach((name, i) => {
      if (i === si || name === textCol) return;
      const type = (t.columns.find((c) => c.name === name) || {}).type || res.column_types[i];
      const kind = columnKind(name, type);
      (kind === "file" ? fileIdx : rest).push({ i, name, kind });
    });
    const ti = textCol ? cols.indexOf(textCol) : -1;
    // A short name-like column, when the table has one, titles each hit.
    const head = rest.find((f) => f.kind === "text" && /^(title|name|caption|label|subject|task)$/i.test(f.name));
    if (head) rest.splice(rest.indexOf(head), 1);
    const top = res.rows.length ? Math.max(...res.rows.map((r) => Number(r[si]) || 0)) : 0;
    const items = res.rows.map((r, rank) => {
      const score = Number(r[si]);
      const media = fileIdx.filter((f) => r[f.i]).map((f) => fileCell(ws, r[f.i], 256));
      return h("li", { class: "hit" },
        h("div", { class: "hit-rank" }, `#${rank + 1}`),
        media.length ? h("div", { class: "hit-media" }, media) : null,
        h("div", { class: "hit-body" },
          head && r[head.i] !== null ? h("h3", { class: "hit-title" }, String(r[head.i])) : null,
          ti >= 0 && r[ti] !== null ? h("p", { class: "hit-text" }, highlighted(String(r[ti]), memory.q)) : null,
          h("dl", { class: "hit-fields" }, rest.filter((f) => r[f.i] !== null).slice(0, 8).map((f) =>
            h("div", null, h("dt", null, f.name), h("dd", null, renderCell(f.kind, r[f.i], { ws })))))),
        h("div", { class: "hit-score", title: `score ${score}` },
          h("span", { class: "score-num" }, Number.isFinite(score) ? score.toFixed(4) : String(r[si])),
          h("span", { class: "score-bar" }, h("span", { class: "score-fill" }))));
    });
    clear(results).append(
      h("p", { class: "muted small" }, `${res.rows.length} result${res.rows.length === 1 ? "" : "s"} · ${fmtMs(ms)} · ${MODES.find((m) => m.id === memory.mode).label}`),
      res.rows.length ? h("ol", { class: "hits" }, items) : h("p", { class: "empty" }, "Nothing matched."));
    // Bar widths are set through the CSSOM: the page's CSP allows no inline style attributes.
    results.querySelectorAll(".score-fill").forEach((el, i) => {
      const s = Number(res.rows[i][si]) || 0;
      el.style.width = `${top > 0 ? Math.max(2, (100 * s) / top) : 0}%`;
    });
  }

  const field = (label, id, control, cls = "field") => h("div", { class: cls }, h("label", { for: id }, label), control);
  main.append(
    h("form", { class: "search-form card", onsubmit: search },
      h("div", { class: "search-row" }, field("Query", "s-q", q, "field grow"), h("button", { class: "btn btn-primary", type: "submit" }, "Search")),
      h("div", { class: "search-opts" },
        field("Table", "s-table", tableSel),
        h("div", { class: "field" }, h("span", { class: "label" }, "Ranking"), modeBox),
        field("Text column", "s-text", textSel),
        field("Embedding column", "s-vector", vecSel),
        wvRow,
        field("Top k", "s-k", k),
        field("Filter (SQL WHERE)", "s-filter", filter, "field grow"))),
    sqlBox, results);
  fillColumns();
  q.focus();
  if (memory.q) search();
}
