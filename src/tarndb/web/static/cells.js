// How values look: one renderer per column kind, shared by the table view, the SQL console
// and search results.

import { api, fileMeta } from "./api.js";
import { h, icon, limiter } from "./dom.js";
import { openPreview } from "./preview.js";
import { state } from "./state.js";

const NUMERIC = new Set(["smallint", "integer", "bigint", "real", "double precision", "numeric",
  "int2", "int4", "int8", "float4", "float8", "oid", "double", "float", "decimal", "hugeint"]);
const FILE_TYPES = new Set(["file_id", "image", "video", "file"]);
// A plain UUID column is treated as a file reference when its name says so (the seeds'
// `file_id UUID` columns); any UUID column could be, but guessing wider would make every id a
// broken thumbnail.
const FILE_NAME = /(^|_)(file_id|file|image_id|img|image|video)$/i;

export function columnKind(name, type) {
  const t = String(type || "").toLowerCase();
  if (FILE_TYPES.has(t)) return "file";
  if (t === "uuid" && FILE_NAME.test(name)) return "file";
  if (t === "embedding" || t === "real[]" || t === "float4[]") return "vector";
  if (t === "embedding_2d" || t === "real[][]" || t === "float4[][]") return "multivector";
  if (t === "json" || t === "jsonb") return "json";
  if (t === "bytea") return "bytes";
  if (t === "boolean" || t === "bool") return "bool";
  if (NUMERIC.has(t) || t.startsWith("numeric")) return "number";
  if (t.startsWith("timestamp") || t === "date") return "time";
  if (t.endsWith("[]")) return "array";
  return "text";
}

export function isEmbedding(kind) { return kind === "vector" || kind === "multivector"; }

// Shape of a vector value: [n] or [rows, dims]; ragged bags of vectors report the widest row.
export function shapeOf(value) {
  if (!Array.isArray(value)) return null;
  if (value.length && Array.isArray(value[0])) {
    return [value.length, Math.max(...value.map((r) => (Array.isArray(r) ? r.length : 0)))];
  }
  return [value.length];
}

export function shapeLabel(shape, base = "float4") {
  if (!shape) return "NULL";
  return `${base}[${shape.join("×")}]`;
}

function nullCell() { return h("span", { class: "null" }, "NULL"); }

// Float noise from binary arithmetic (153.60000000000002) is shown as the decimal it stands
// for: 15 significant digits is what a double holds exactly.
export function tidyNumber(x) {
  return Number.isFinite(x) && !Number.isInteger(x) ? Number.parseFloat(x.toPrecision(15)) : x;
}

const tidyJson = (k, v) => (typeof v === "number" ? tidyNumber(v) : v);

export function formatNumber(x) {
  if (typeof x !== "number" || !Number.isFinite(x)) return String(x);
  const t = tidyNumber(x);
  // Tiny magnitudes would round to 0 at six decimals: those keep their digits.
  return t !== 0 && Math.abs(t) < 1e-4 ? String(t) : t.toLocaleString(undefined, { maximumFractionDigits: 6 });
}

function jsonCell(value) {
  const compact = JSON.stringify(value, tidyJson);
  if (compact.length <= 48 && (typeof value !== "object" || value === null)) {
    return h("code", { class: "json-inline" }, compact);
  }
  return h("details", { class: "json" },
    h("summary", null, h("code", null, compact.length > 60 ? compact.slice(0, 57) + "…" : compact)),
    h("pre", null, JSON.stringify(value, tidyJson, 2)));
}

function vectorCell(value, shape) {
  const s = shape || shapeOf(value);
  const attrs = { class: "shape" };
  if (Array.isArray(value)) {
    const flat = value.flat().slice(0, 8).map((x) => (typeof x === "number" ? x.toFixed(4) : x));
    attrs.title = `[${flat.join(", ")}${value.flat().length > 8 ? ", …" : ""}]`;
  }
  return h("span", attrs, shapeLabel(s));
}

const metaSlots = limiter(6);

function fileTile(label, kind, title) {
  return h("span", { class: `file-tile file-${kind}`, title }, icon(kind), h("small", null, label));
}

function fileKind(meta) {
  const t = (meta.content_type || "").toLowerCase();
  if (t.startsWith("image/")) return "image";
  if (t.startsWith("video/")) return "video";
  if (t.startsWith("audio/")) return "audio";
  if (t === "application/pdf") return "pdf";
  if (t.includes("json")) return "json";
  if (t.startsWith("text/") || t.includes("xml") || t.includes("yaml") || t.includes("csv")) return "text";
  return "file";
}
export { fileKind };

// A thumbnail button for a file id; clicking opens the preview with a player for videos.
export function fileCell(ws, id, size = 128) {
  const box = h("button", { class: "thumb", type: "button", title: id, "aria-label": `Preview file ${id}` },
    h("span", { class: "thumb-skeleton" }));
  metaSlots(() => fileMeta(ws, id)).then((meta) => {
    const kind = fileKind(meta);
    box.replaceChildren();
    box.setAttribute("aria-label", `Preview ${meta.filename}`);
    box.title = `${meta.filename} · ${meta.content_type}`;
    const canThumb = kind === "image" || (kind === "video" && state.config.video_thumbnails);
    if (canThumb) {
      // The placeholder stays until the picture has arrived: a video's poster is cut by ffmpeg
      // on first view (seconds), and an empty box then looked like a broken file.
      const skel = h("span", { class: "thumb-skeleton thumb-pending", role: "progressbar",
        "aria-label": `Loading the preview of ${meta.filename}` });
      const img = h("img", { src: api.thumbUrl(ws, id, size), alt: meta.filename, loading: "lazy",
        decoding: "async", class: "thumb-img is-loading" });
      const done = () => { skel.remove(); box.removeAttribute("aria-busy"); };
      img.addEventListener("load", () => { img.classList.remove("is-loading"); done(); });
      img.addEventListener("error", () => { done(); img.replaceWith(fileTile(meta.filename, kind, meta.filename)); });
      box.setAttribute("aria-busy", "true");
      box.append(img, skel);
      if (img.complete && img.naturalWidth > 0) { img.classList.remove("is-loading"); done(); }
      if (kind === "video") box.append(h("span", { class: "play-badge", "aria-hidden": "true" }, "▶"));
    } else {
      const ext = meta.filename.includes(".") ? meta.filename.split(".").pop().toLowerCase() : kind;
      box.append(fileTile(ext.slice(0, 6), kind, meta.filename));
    }
    box.addEventListener("click", () => openPreview(ws, meta));
  }).catch((e) => {
    box.replaceChildren(h("span", { class: "missing", title: e.message }, "missing file"));
    box.disabled = true;
  });
  return box;
}

export function renderCell(kind, value, ctx = {}) {
  if (kind === "vector" || kind === "multivector") {
    if (ctx.shape !== undefined) return ctx.shape ? vectorCell(null, ctx.shape) : nullCell();
  }
  if (value === null || value === undefined) return nullCell();
  switch (kind) {
    case "file":
      return typeof value === "string" && ctx.ws ? fileCell(ctx.ws, value, ctx.thumbSize) : h("code", null, String(value));
    case "vector":
    case "multivector":
      return vectorCell(value);
    case "json":
      return jsonCell(value);
    case "bool":
      return h("span", { class: `bool bool-${value}` }, value ? "true" : "false");
    case "number":
      return h("span", { class: "num", title: typeof value === "number" ? String(value) : undefined }, formatNumber(value));
    case "time":
      return h("time", { datetime: String(value), title: String(value) }, String(value).replace("T", " ").replace(/\.\d+/, ""));
    case "bytes":
      return h("span", { class: "muted" }, `bytea · ${Math.floor((String(value).length * 3) / 4)} B`);
    case "array":
      if (Array.isArray(value) && value.some((v) => Array.isArray(v))) return vectorCell(value);
      return jsonCell(value);
    default: {
      const text = typeof value === "number" ? formatNumber(value) : String(value);
      return h("span", { class: "text", title: text.length > 80 ? text : undefined }, text);
    }
  }
}

// A results grid. `columns`: [{name, type, kind, sortable}], `rows`: arrays of values.
export function renderGrid({ columns, rows, ws, sort, onSort, offset = 0, extra = {} }) {
  const head = h("tr", null, h("th", { class: "rownum", scope: "col" }, "#"),
    columns.map((c) => {
      const active = sort && sort.column === c.name;
      const label = [h("span", { class: "col-name" }, c.name), h("span", { class: "col-type" }, c.type)];
      if (!onSort || c.sortable === false) return h("th", { scope: "col" }, label);
      return h("th", { scope: "col", "aria-sort": active ? (sort.desc ? "descending" : "ascending") : "none" },
        h("button", { type: "button", class: "sort", onclick: () => onSort(c.name) }, label,
          h("span", { class: "sort-mark", "aria-hidden": "true" }, active ? (sort.desc ? "▼" : "▲") : "")));
    }));
  const body = h("tbody", null, rows.map((row, i) =>
    h("tr", null, h("td", { class: "rownum" }, String(offset + i + 1)),
      columns.map((c, j) => {
        const ctx = { ws, thumbSize: 128 };
        if (extra.shapes && extra.shapes[c.name]) ctx.shape = extra.shapes[c.name][i];
        return h("td", { class: `k-${c.kind}` }, renderCell(c.kind, row[j], ctx));
      }))));
  return h("div", { class: "grid-wrap", tabindex: "0", role: "region", "aria-label": "Results" },
    h("table", { class: "grid" }, h("thead", null, head), body));
}
