// The file browser: drag-and-drop (or pick) uploads with progress, a paginated list with
// thumbnails, a filter and a delete button, and the preview dialog (image, video with seeking, audio, PDF, text, JSON).

import { api, auth } from "../api.js";
import { fileCell, fileKind } from "../cells.js";
import { clear, fmtBytes, fmtCount, fmtDate, h, limiter, qident, toast } from "../dom.js";
import { openPreview } from "../preview.js";

const PAGE = 50;
const uploadSlots = limiter(3);

export async function render(main, { ws }) {
  let offset = 0;
  let total = null;
  const canWrite = auth.me && auth.me.role !== "read";
  const picker = h("input", { type: "file", multiple: true, hidden: true, id: "file-picker" });
  const queue = h("ul", { class: "uploads", "aria-label": "Uploads" });
  const list = h("div", { class: "file-list" });
  const pager = h("div", { class: "pager" });
  const drop = h("div", { class: "dropzone", tabindex: "0", role: "button", "aria-describedby": "drop-hint",
    onclick: () => picker.click(),
    onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); picker.click(); } } },
  h("strong", null, "Drop files here"), h("span", { id: "drop-hint", class: "muted" }, " or press to choose · any type, streamed to the lake"));

  let refreshTimer = null;
  const refreshSoon = () => { clearTimeout(refreshTimer); refreshTimer = setTimeout(load, 150); };

  function upload(file) {
    const bar = h("progress", { max: 1, value: 0 });
    const label = h("span", { class: "small muted" }, "waiting");
    const item = h("li", { class: "upload" }, h("span", { class: "up-name" }, file.name), h("span", { class: "small muted" }, fmtBytes(file.size)), bar, label);
    queue.prepend(item);
    uploadSlots(() => {
      label.textContent = "uploading";
      return api.upload(ws, file, (p) => { bar.value = p; label.textContent = `${Math.round(p * 100)}%`; });
    }).then((meta) => {
      bar.value = 1;
      label.textContent = "done";
      item.classList.add("done");
      item.dataset.fileId = meta.id;
      offset = 0;
      refreshSoon();
    }).catch((e) => {
      label.textContent = e.message;
      item.classList.add("failed");
      toast(`${file.name}: ${e.message}`, "error");
    });
  }

  function take(files) {
    if (!canWrite) { toast("This token can only read.", "error"); return; }
    for (const f of files) upload(f);
  }

  picker.addEventListener("change", () => { take([...picker.files]); picker.value = ""; });
  for (const ev of ["dragenter", "dragover"]) {
    main.addEventListener(ev, (e) => { if (e.dataTransfer && [...e.dataTransfer.types].includes("Files")) { e.preventDefault(); drop.classList.add("over"); } });
  }
  main.addEventListener("dragleave", (e) => { if (!main.contains(e.relatedTarget)) drop.classList.remove("over"); });
  main.addEventListener("drop", (e) => {
    if (!e.dataTransfer || !e.dataTransfer.files.length) return;
    e.preventDefault();
    drop.classList.remove("over");
    take([...e.dataTransfer.files]);
  });

  const onDelete = async (meta) => {
    await api.deleteFile(ws, meta.id);
    toast(`Deleted ${meta.filename}`);
    load();
  };

  // Delete from the list: asks first, as deleting cannot be undone (a training set that
  // pinned the file keeps its bytes; everyone else stops seeing it).
  async function askDelete(meta, btn) {
    if (!window.confirm(`Delete ${meta.filename}? Tables that reference it will show a missing file.`)) return;
    btn.disabled = true;
    try {
      await onDelete(meta);
    } catch (e) {
      btn.disabled = false;
      toast(`${meta.filename}: ${e.message}`, "error");
    }
  }

  // The filter matches names, content types and ids (case-insensitive), through SQL on the
  // workspace's read-only _files table, so it covers every file, not just this page.
  const filterBox = h("input", { type: "search", id: "f-filter", placeholder: "Filter by name, type or id…",
    "aria-label": "Filter files", autocomplete: "off", spellcheck: false });
  let filterTimer = null;
  filterBox.addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => { offset = 0; load(); }, 200);
  });

  async function filtered(text) {
    const q = `SELECT CAST(id AS TEXT) AS id, filename, content_type, size, sha256, created_at, count(*) OVER () AS total
FROM ${qident(ws)}."_files"
WHERE strpos(lower(filename), $1) > 0 OR strpos(lower(content_type), $1) > 0 OR strpos(CAST(id AS TEXT), $1) > 0
ORDER BY created_at DESC, id
LIMIT ${PAGE} OFFSET ${offset}`;
    const res = await api.query(ws, q, [text.toLowerCase()]);
    const col = (name) => res.columns.indexOf(name);
    const files = res.rows.map((r) => ({ id: r[col("id")], filename: r[col("filename")], content_type: r[col("content_type")],
      size: Number(r[col("size")]), sha256: r[col("sha256")], created_at: String(r[col("created_at")]) }));
    const all = res.rows.length ? Number(res.rows[0][col("total")]) : 0;
    return { files, total: all, next_offset: offset + files.length < all ? offset + files.length : null };
  }

  function row(meta) {
    const open = () => openPreview(ws, meta, { onDelete: canWrite ? onDelete : undefined });
    return h("tr", { dataset: { fileId: meta.id } },
      h("td", { class: "f-thumb" }, fileCell(ws, meta.id, 128)),
      h("td", { class: "f-name" },
        h("button", { type: "button", class: "link", onclick: open }, meta.filename),
        h("div", { class: "muted small f-id" }, meta.id)),
      h("td", { class: "f-type" }, h("span", { class: `chip chip-${fileKind(meta)}` }, meta.content_type)),
      h("td", { class: "num f-size" }, fmtBytes(meta.size)),
      h("td", { class: "f-date" }, fmtDate(meta.created_at)),
      h("td", { class: "f-actions" }, h("a", { class: "btn btn-sm", href: api.downloadUrl(ws, meta.id), download: meta.filename,
        "aria-label": `Download ${meta.filename}` }, "Download"),
      canWrite ? h("button", { type: "button", class: "btn btn-sm btn-danger", "aria-label": `Delete ${meta.filename}`,
        onclick: (e) => askDelete(meta, e.currentTarget) }, "Delete") : null));
  }

  async function load() {
    const text = filterBox.value.trim();
    const res = text ? await filtered(text) : await api.files(ws, PAGE, offset);
    total = res.total;
    clear(list).append(res.files.length
      ? h("div", { class: "grid-wrap" }, h("table", { class: "grid files" },
        h("thead", null, h("tr", null, ["", "Name", "Type", "Size", "Uploaded", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", null, res.files.map(row))))
      : h("p", { class: "empty" }, text ? `No file matches “${text}”.` : "No files yet. Upload some to see them here."));
    const btn = (label, aria, to, disabled) => h("button", { type: "button", class: "btn btn-sm", "aria-label": aria, disabled,
      onclick: () => { offset = to; load(); } }, label);
    clear(pager).append(
      btn("‹", "Previous page", Math.max(0, offset - PAGE), offset === 0),
      h("span", { class: "pager-label" }, total ? `${fmtCount(offset + 1)}–${fmtCount(offset + res.files.length)} of ${fmtCount(total)}` : "0 files"),
      btn("›", "Next page", offset + PAGE, res.next_offset === null || res.next_offset === undefined));
  }

  main.append(
    h("div", { class: "page-head" },
      h("div", null, h("h1", null, "Files"), h("p", { class: "muted" }, `Workspace ${ws} · reference a file from a table by its id (a UUID column)`))),
    canWrite ? drop : h("p", { class: "muted" }, "This token can only read: uploads are disabled."), picker, queue,
    h("div", { class: "files-tools" }, filterBox), list,
    h("div", { class: "table-foot" }, h("span"), pager));
  await load();
  return () => { clearTimeout(refreshTimer); clearTimeout(filterTimer); };
}
