// Navigation helpers shared by the views (kept apart from app.js so views do not import the
// entry module).

export function go(path) { location.hash = path; }
export function wsPath(ws, rest = "") { return `#/w/${encodeURIComponent(ws)}${rest}`; }
export function tablePath(ws, table) { return wsPath(ws, `/t/${encodeURIComponent(table)}`); }

// Views ask the shell to reload the sidebar's table list (after DDL in the console, say).
export function tablesChanged() { document.dispatchEvent(new CustomEvent("tarn:tables-changed")); }

// One-shot hand-offs between views: "open this SQL in the console", "search this table".
export const pending = { sql: null, searchTable: null };
