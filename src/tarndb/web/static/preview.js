// The file preview dialog: images, video and audio stream straight from /content (the browser
// seeks with Range requests, authenticated by the media cookie); PDFs go through a blob: URL
// because the API serves file bytes with a sandboxing CSP that Chrome's PDF viewer refuses;
// text and JSON read only the first 256 KB.

import { api } from "./api.js";
import { clear, fmtBytes, fmtDate, h, toast } from "./dom.js";

const TEXT_PREVIEW_BYTES = 256 * 1024;
let revoke = null;
let onClose = null;

function dialog() { return document.getElementById("preview"); }

function kindOf(meta) {
  const t = (meta.content_type || "").toLowerCase();
  if (t.startsWith("image/")) return "image";
  if (t.startsWith("video/")) return "video";
  if (t.startsWith("audio/")) return "audio";
  if (t === "application/pdf") return "pdf";
  if (t.includes("json")) return "json";
  if (t.startsWith("text/") || t.includes("xml") || t.includes("yaml") || t.includes("csv") ||
      t.includes("javascript")) return "text";
  return "other";
}

async function body(ws, meta, kind) {
  const url = api.contentUrl(ws, meta.id);
  switch (kind) {
    case "image":
      return h("img", { class: "pv-media", src: url, alt: meta.filename });
    case "video":
      return h("video", { class: "pv-media", src: url, controls: true, preload: "metadata",
        playsInline: true, "aria-label": meta.filename });
    case "audio":
      return h("audio", { class: "pv-audio", src: url, controls: true, preload: "metadata" });
    case "pdf": {
      const blob = await api.fileBlob(ws, meta.id);
      const obj = URL.createObjectURL(new Blob([blob], { type: "application/pdf" }));
      revoke = () => URL.revokeObjectURL(obj);
      return h("iframe", { class: "pv-pdf", src: obj, title: meta.filename });
    }
    case "json":
    case "text": {
      const { text, partial } = await api.fileHead(ws, meta.id, TEXT_PREVIEW_BYTES);
      let shown = text;
      if (kind === "json" && !partial) {
        try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* show as text */ }
      }
      return h("div", null,
        partial ? h("p", { class: "muted small" }, `Showing the first ${fmtBytes(TEXT_PREVIEW_BYTES)}.`) : null,
        h("pre", { class: "pv-text" }, shown));
    }
    default:
      return h("p", { class: "empty" }, `No preview for ${meta.content_type}. Download it instead.`);
  }
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast("File id copied");
  } catch {
    toast(text);
  }
}

export async function openPreview(ws, meta, { onDelete } = {}) {
  const dlg = dialog();
  closePreview();
  const kind = kindOf(meta);
  const content = h("div", { class: "pv-body" }, h("p", { class: "muted" }, "Loading…"));
  const actions = h("div", { class: "pv-actions" },
    h("a", { class: "btn", href: api.downloadUrl(ws, meta.id), download: meta.filename }, "Download"),
    h("button", { class: "btn", type: "button", onclick: () => copy(meta.id) }, "Copy id"),
    onDelete ? h("button", { class: "btn btn-danger", type: "button", onclick: async () => {
      if (!confirm(`Delete ${meta.filename}?`)) return;
      await onDelete(meta);
      dlg.close();
    } }, "Delete") : null,
    h("button", { class: "btn btn-ghost", type: "button", "aria-label": "Close preview",
      onclick: () => dlg.close() }, "Close"));
  clear(dlg).append(
    h("header", { class: "pv-head" },
      h("div", null,
        h("h2", { id: "preview-title" }, meta.filename),
        h("p", { class: "muted small" },
          `${meta.content_type} · ${fmtBytes(meta.size)} · ${fmtDate(meta.created_at)}`),
        h("code", { class: "small muted" }, meta.id)),
      actions),
    content);
  dlg.dataset.kind = kind;
  if (!dlg.open) dlg.showModal();
  try {
    content.replaceChildren(await body(ws, meta, kind));
  } catch (e) {
    content.replaceChildren(h("p", { class: "error-text" }, `Could not load the preview: ${e.message}`));
  }
}

export function closePreview() {
  const dlg = dialog();
  for (const m of dlg.querySelectorAll("video, audio")) { m.pause(); m.removeAttribute("src"); m.load(); }
  if (revoke) { revoke(); revoke = null; }
  if (onClose) onClose();
}

export function initPreview() {
  const dlg = dialog();
  dlg.addEventListener("close", () => { closePreview(); clear(dlg); });
  // A click on the backdrop (outside the dialog box) closes it, as users expect of a modal.
  dlg.addEventListener("click", (e) => { if (e.target === dlg) dlg.close(); });
}
