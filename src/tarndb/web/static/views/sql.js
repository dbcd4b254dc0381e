// The SQL console: an editor with syntax colouring and history, Ctrl/Cmd+Enter to run (the
// selection if there is one), a results grid with timing, and errors pointing at their position.

import { api } from "../api.js";
import { columnKind, renderGrid } from "../cells.js";
import { clear, fmtMs, h } from "../dom.js";
import { pending, tablesChanged } from "../nav.js";

const HISTORY_KEY = "tarndb.sql.history";
const HISTORY_MAX = 100;
const SHOW_ROWS = 1000;
// Colouring re-tokenizes on every keystroke; past this size (inline embeddings) skip it.
const HIGHLIGHT_MAX = 20000;
const KEYWORDS = new Set(("select from where and or not in is null as on join left right inner outer full cross " +
  "group by order having limit offset insert into values update set delete create table index using with " +
  "drop alter add column if exists primary key unique default returning distinct case when then else end " +
  "begin commit rollback union all asc desc nulls first last cast explain analyze true false like ilike " +
  "between over partition extension show").split(" "));
const TOKEN = /(--[^\n]*|\/\*[\s\S]*?(?:\*\/|$))|('(?:[^']|'')*'?)|("(?:[^"]|"")*"?)|(\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b)|(<#>|::|->>|->|[<>=!]+)|([A-Za-z_][A-Za-z0-9_]*)/gi;

function loadHistory() {
  try { return JSON.parse(localStorage.getItem(HISTORY_KEY)) || []; } catch { return []; }
}

function saveHistory(list) {
  localStorage.setItem(HISTORY_KEY, JSON.stringify(list.slice(0, HISTORY_MAX)));
}

function highlight(pre, text, errorAt) {
  clear(pre);
  if (text.length > HIGHLIGHT_MAX) { pre.textContent = text + "\n"; return; }
  let last = 0;
  const push = (s, cls, start) => {
    // Split a token around the error offset so the squiggle lands on exactly that spot.
    if (errorAt !== null && errorAt >= start && errorAt < start + s.length) {
      const off = errorAt - start;
      const m = /^[\w"'.]+|^./.exec(s.slice(off))[0];
      if (off) pre.append(cls ? h("span", { class: cls }, s.slice(0, off)) : s.slice(0, off));
      pre.append(h("mark", { class: "err-mark" }, m));
      const rest = s.slice(off + m.length);
      if (rest) pre.append(cls ? h("span", { class: cls }, rest) : rest);
      return;
    }
    pre.append(cls ? h("span", { class: cls }, s) : s);
  };
  for (const m of text.matchAll(TOKEN)) {
    if (m.index > last) push(text.slice(last, m.index), null, last);
    let cls = null;
    if (m[1]) cls = "tk-comment";
    else if (m[2]) cls = "tk-string";
    else if (m[3]) cls = "tk-ident";
    else if (m[4]) cls = "tk-number";
    else if (m[5]) cls = "tk-op";
    else if (m[6] && KEYWORDS.has(m[6].toLowerCase())) cls = "tk-kw";
    push(m[0], cls, m.index);
    last = m.index + m[0].length;
  }
  if (last < text.length) push(text.slice(last), null, last);
  if (errorAt !== null && errorAt >= text.length) pre.append(h("mark", { class: "err-mark" }, " "));
  pre.append("\n");
}

function lineCol(text, offset) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { line, col: offset - before.lastIndexOf("\n") };
}

export function render(main, { ws }) {
  let history = loadHistory();
  let errorAt = null;
  let running = null;
  const initial = pending.sql || (history.find((x) => x.ws === ws) || {}).sql ||
    "SELECT table_name FROM information_schema.tables\nWHERE table_schema = '" + ws.replace(/'/g, "''") + "';";
  pending.sql = null;

  const pre = h("pre", { class: "editor-hl", "aria-hidden": "true" });
  const ta = h("textarea", { class: "editor-input", spellcheck: false, autocapitalize: "off", autocomplete: "off",
    "aria-label": "SQL editor", value: initial, dataset: { slash: "" } });
  const editor = h("div", { class: "editor" }, pre, ta);
  const runBtn = h("button", { class: "btn btn-primary", type: "button", onclick: () => run() }, "Run");
  const statusEl = h("div", { class: "sql-status", role: "status" });
  const out = h("div", { class: "sql-out" });
  const histList = h("ol", { class: "history", "aria-label": "Query history" });

  const repaint = () => { highlight(pre, ta.value, errorAt); pre.scrollTop = ta.scrollTop; pre.scrollLeft = ta.scrollLeft; };
  ta.addEventListener("input", () => { errorAt = null; repaint(); });
  ta.addEventListener("scroll", () => { pre.scrollTop = ta.scrollTop; pre.scrollLeft = ta.scrollLeft; });
  let escaped = false;
  ta.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); run(); return; }
    if (e.key === "Escape") { escaped = true; return; }
    // Tab indents, except right after Escape, so keyboard users can still leave the editor.
    if (e.key === "Tab" && !e.shiftKey && !escaped) {
      e.preventDefault();
      ta.setRangeText("  ", ta.selectionStart, ta.selectionEnd, "end");
      ta.dispatchEvent(new Event("input"));
    }
    escaped = false;
  });

  function drawHistory() {
    const mine = history.filter((x) => x.ws === ws);
    clear(histList).append(...(mine.length ? mine.slice(0, 50).map((x) => h("li", null,
      h("button", { type: "button", class: `hist-item ${x.ok ? "" : "hist-err"}`, title: x.sql,
        onclick: () => { ta.value = x.sql; errorAt = null; repaint(); ta.focus(); } },
      h("code", null, x.sql.length > 140 ? x.sql.slice(0, 137) + "…" : x.sql),
      h("span", { class: "muted small" }, `${x.ok ? "✓" : "✗"} ${fmtMs(x.ms)} · ${new Date(x.at).toLocaleTimeString()}`))))
      : [h("li", { class: "muted small" }, "Queries you run appear here.")]));
  }

  function remember(sql, ok, ms) {
    history = [{ sql, ws, ok, ms, at: Date.now() }, ...history.filter((x) => !(x.sql === sql && x.ws === ws))];
    saveHistory(history);
    drawHistory();
  }

  function showError(e, sql, base) {
    const box = h("div", { class: "error-box sql-error", role: "alert" },
      h("div", { class: "err-title" }, h("span", { class: "err-code" }, e.sqlstate || e.code), e.message));
    if (e.position) {
      const abs = base + e.position - 1;
      errorAt = abs;
      repaint();
      const { line, col } = lineCol(ta.value, abs);
      const srcLine = ta.value.split("\n")[line - 1] || "";
      box.append(
        h("div", { class: "err-where" }, `Line ${line}, column ${col}`,
          h("button", { type: "button", class: "btn btn-sm", onclick: () => { ta.focus(); ta.setSelectionRange(abs, abs + 1); } }, "Go to error")),
        h("pre", { class: "err-snippet" }, srcLine + "\n" + " ".repeat(Math.max(0, col - 1)) + "^"));
    }
    if (e.detail) box.append(h("div", { class: "small" }, `Detail: ${e.detail}`));
    if (e.hint) box.append(h("div", { class: "small" }, `Hint: ${e.hint}`));
    clear(out).append(box);
  }

  async function run() {
    if (running) running.abort();
    const selected = ta.selectionEnd > ta.selectionStart ? ta.value.slice(ta.selectionStart, ta.selectionEnd) : "";
    const sql = (selected.trim() ? selected : ta.value);
    const base = selected.trim() ? ta.selectionStart : 0;
    if (!sql.trim()) return;
    errorAt = null;
    repaint();
    running = new AbortController();
    runBtn.disabled = true;
    statusEl.className = "sql-status running";
    statusEl.textContent = "Running…";
    const t0 = performance.now();
    try {
      const res = await api.query(ws, sql, null, running.signal);
      const ms = performance.now() - t0;
      remember(sql.trim(), true, ms);
      statusEl.className = "sql-status ok";
      const n = res.rows ? res.rows.length : 0;
      statusEl.textContent = `${res.command || "OK"} · ${res.columns.length ? `${n.toLocaleString()} row${n === 1 ? "" : "s"} · ` : ""}${fmtMs(ms)}`;
      const parts = [];
      if (res.notices) parts.push(...res.notices.map((m) => h("div", { class: "notice" }, `NOTICE: ${m}`)));
      if (res.columns.length) {
        const columns = res.columns.map((name, i) => ({ name, type: res.column_types[i], kind: columnKind(name, res.column_types[i]) }));
        parts.push(renderGrid({ columns, rows: res.rows.slice(0, SHOW_ROWS), ws }));
        if (n > SHOW_ROWS) parts.push(h("p", { class: "muted small" }, `Showing the first ${SHOW_ROWS} of ${n} rows.`));
      } else {
        parts.push(h("p", { class: "muted" }, `${res.command}${res.row_count ? ` · ${res.row_count} rows affected` : ""}`));
      }
      clear(out).append(...parts);
      if (/^\s*(create|drop|alter)\b/i.test(sql) || /\b(create|drop|alter)\s+(table|index)/i.test(sql)) tablesChanged();
    } catch (e) {
      if (e.name === "AbortError") return;
      const ms = performance.now() - t0;
      remember(sql.trim(), false, ms);
      statusEl.className = "sql-status err";
      statusEl.textContent = `Error · ${fmtMs(ms)}`;
      showError(e, sql, base);
    } finally {
      runBtn.disabled = false;
      running = null;
    }
  }

  main.append(
    h("div", { class: "page-head" },
      h("div", null, h("h1", null, "SQL console"), h("p", { class: "muted" }, `Workspace ${ws} · unqualified names resolve here`))),
    h("div", { class: "sql-layout" },
      h("section", { class: "sql-main", "aria-label": "Editor and results" },
        editor,
        h("div", { class: "sql-bar" }, runBtn,
          h("span", { class: "muted small kbd-hint" }, h("kbd", null, "Ctrl"), "+", h("kbd", null, "Enter"), " runs · selection runs alone"),
          statusEl),
        out),
      h("aside", { class: "sql-side" },
        h("div", { class: "side-head" }, h("h2", null, "History"),
          h("button", { type: "button", class: "btn btn-ghost btn-sm", onclick: () => {
            history = history.filter((x) => x.ws !== ws); saveHistory(history); drawHistory();
          } }, "Clear")),
        histList)));
  repaint();
  drawHistory();
  ta.focus();
  return () => { if (running) running.abort(); };
}
