// Small DOM helpers. Everything is built with createElement and textContent, never innerHTML,
// so values from the database cannot inject markup (and the page's CSP forbids inline code).

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "value") el.value = v; // a property: textarea has no value attribute
      else if (k in el && typeof v !== "string") el[k] = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function qident(name) {
  return '"' + String(name).replace(/"/g, '""') + '"';
}

export function qliteral(text) {
  return "'" + String(text).replace(/'/g, "''") + "'";
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? String(v) : v.toFixed(v < 10 ? 1 : 0)) + " " + units[i];
}

export function fmtCount(n) {
  return n === null || n === undefined ? "…" : Number(n).toLocaleString();
}

export function fmtDate(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function fmtMs(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const t = h("div", { class: `toast toast-${kind}` }, message);
  box.append(t);
  setTimeout(() => t.remove(), kind === "error" ? 6000 : 3000);
}

// Runs async tasks with at most `limit` in flight: a page of 50 thumbnails or row counts
// should not open 50 requests against a server that has a bounded worker pool.
export function limiter(limit) {
  let active = 0;
  const queue = [];
  const next = () => {
    if (active >= limit || !queue.length) return;
    active++;
    const { fn, resolve, reject } = queue.shift();
    fn().then(resolve, reject).finally(() => { active--; next(); });
  };
  return (fn) => new Promise((resolve, reject) => { queue.push({ fn, resolve, reject }); next(); });
}

export function icon(name) {
  // Monochrome glyphs keep the asset set tiny and inherit currentColor.
  const glyphs = {
    table: "▦", sql: "⌘", search: "⌕", files: "▤", video: "▶", audio: "♪", pdf: "PDF",
    text: "TXT", json: "{ }", file: "◇", up: "▲", down: "▼", menu: "☰", close: "✕",
  };
  return h("span", { class: "icon", "aria-hidden": "true" }, glyphs[name] || "•");
}
