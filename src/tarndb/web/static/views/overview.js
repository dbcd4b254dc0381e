// The workspace page: every table with its row count, columns (Postgres types) and indexes.

import { fmtCount, h } from "../dom.js";
import { pending, tablePath, wsPath } from "../nav.js";
import { state } from "../state.js";

function card(ws, t) {
  const count = h("span", { class: "badge" }, `${fmtCount(t.row_count)} rows`);
  const cols = t.columns.slice(0, 8).map((c) => h("li", null,
    h("span", { class: "col-name" }, c.name), h("span", { class: "col-type" }, c.type)));
  if (t.columns.length > 8) cols.push(h("li", { class: "muted" }, `+ ${t.columns.length - 8} more`));
  return h("li", { class: "card table-card", dataset: { table: t.name } },
    h("div", { class: "card-head" },
      h("a", { class: "card-title", href: tablePath(ws, t.name) }, t.name), count),
    h("ul", { class: "col-list" }, cols),
    t.indexes.length
      ? h("div", { class: "chips" }, t.indexes.map((i) =>
        h("span", { class: "chip", title: i.name }, `${i.column} · ${i.index_type || "index"}`)))
      : h("p", { class: "muted small" }, "No indexes"));
}

export function render(main, { ws }) {
  const list = h("ul", { class: "cards" });
  const draw = () => {
    list.replaceChildren(...[...state.tables.values()].map((t) => card(ws, t)));
  };
  draw();
  const onTable = () => draw();
  document.addEventListener("tarn:table", onTable);
  const empty = !state.tables.size
    ? h("div", { class: "empty-state" },
      h("h2", null, "No tables in this workspace yet"),
      h("p", { class: "muted" }, "Create one in the SQL console, for example:"),
      h("pre", { class: "code" }, `CREATE TABLE "${ws}"."docs" (\n  id BIGSERIAL PRIMARY KEY,\n  body TEXT,\n  emb FLOAT4[],\n  file_id UUID\n);`),
      h("a", { class: "btn btn-primary", href: wsPath(ws, "/sql"), onclick: () => {
        pending.sql = `CREATE TABLE "${ws}"."docs" (\n  id BIGSERIAL PRIMARY KEY,\n  body TEXT,\n  emb FLOAT4[],\n  file_id UUID\n);`;
      } }, "Open the SQL console"))
    : null;
  main.append(
    h("div", { class: "page-head" },
      h("div", null, h("h1", null, "Tables"), h("p", { class: "muted" }, `Workspace ${ws}`))),
    empty || list);
  return () => document.removeEventListener("tarn:table", onTable);
}
