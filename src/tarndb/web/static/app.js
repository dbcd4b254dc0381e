// Entry point: sign-in, the app shell (sidebar + main), and a hash router. Hash routes keep
// every UI URL off the API's path space (/workspaces/... belongs to the API).

import { api, auth, listWorkspaces } from "./api.js";
import { clear, fmtCount, h, toast } from "./dom.js";
import { initPreview } from "./preview.js";
import { go, wsPath } from "./nav.js";
import { state } from "./state.js";
import * as filesView from "./views/files.js";
import * as jobsView from "./views/jobs.js";
import * as overviewView from "./views/overview.js";
import * as searchView from "./views/search.js";
import * as sqlView from "./views/sql.js";
import * as tableView from "./views/table.js";

const root = document.getElementById("root");
let shell = null;
let cleanup = null;

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] !== "w" || !parts[1]) return { view: "home" };
  const ws = parts[1];
  if (parts[2] === "t" && parts[3]) return { view: "table", ws, table: parts[3] };
  if (["sql", "search", "files", "jobs"].includes(parts[2])) return { view: parts[2], ws };
  return { view: "overview", ws };
}


// -- sign in ---------------------------------------------------------------------------

function renderSignIn(message) {
  shell = null;
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "current-password",
    placeholder: "tdb_…", required: true, spellcheck: false });
  const err = h("p", { class: "error-text", role: "alert" }, message || "");
  const button = h("button", { class: "btn btn-primary", type: "submit" }, "Sign in");
  const form = h("form", { class: "signin-card", onsubmit: async (e) => {
    e.preventDefault();
    button.disabled = true;
    err.textContent = "";
    try {
      await api.signIn(input.value.trim());
      await start();
    } catch (ex) {
      err.textContent = ex.status === 401 ? "That token is not valid." : ex.message;
      button.disabled = false;
      input.select();
    }
  } },
  h("div", { class: "brand brand-lg" }, h("img", { src: "/static/favicon.svg", alt: "" }), "tarndb"),
  h("p", { class: "muted" }, "Sign in with an API token. ", h("code", null, "tarndb serve"),
    " prints the admin token on first start; ", h("code", null, "tarndb token --data DIR create"), " makes more."),
  h("label", { for: "token" }, "API token"), input, err, button);
  clear(root).append(h("main", { class: "signin", id: "main" }, form));
  input.focus();
}

// -- the shell -------------------------------------------------------------------------

function navLink(label, href, key) {
  return h("a", { href, class: "nav-link", dataset: { nav: key } }, label);
}

function buildShell() {
  const wsSelect = h("select", { id: "ws-select", "aria-label": "Workspace", onchange: (e) => go(wsPath(e.target.value)) });
  const tablesList = h("ul", { class: "side-tables", "aria-label": "Tables" });
  const nav = h("nav", { class: "side-nav", "aria-label": "Sections" });
  const sidebar = h("aside", { class: "sidebar", id: "sidebar" },
    h("div", { class: "brand" }, h("img", { src: "/static/favicon.svg", alt: "" }), "tarndb"),
    h("label", { class: "side-label", for: "ws-select" }, "Workspace"), wsSelect, nav,
    h("div", { class: "side-label" }, "Tables"), tablesList,
    h("div", { class: "side-org muted small", id: "org-label" }),
    h("div", { class: "side-foot" },
      h("span", { class: "muted small", id: "whoami" }),
      h("button", { class: "btn btn-ghost btn-sm", type: "button", onclick: async () => {
        await api.signOut();
        renderSignIn();
      } }, "Sign out")));
  const menu = h("button", { class: "menu-btn", type: "button", "aria-controls": "sidebar", "aria-expanded": "false",
    "aria-label": "Menu", onclick: () => {
      const open = document.body.classList.toggle("nav-open");
      menu.setAttribute("aria-expanded", String(open));
    } }, "☰");
  const top = h("header", { class: "topbar" }, menu, h("div", { class: "brand" }, "tarndb"), h("span", { id: "top-ws", class: "muted" }));
  const main = h("main", { class: "main", id: "main", tabindex: "-1" });
  const scrim = h("div", { class: "scrim", onclick: () => document.body.classList.remove("nav-open") });
  clear(root).append(h("div", { class: "app" }, top, sidebar, scrim, main));
  showIdentity(sidebar.querySelector("#whoami"), sidebar.querySelector("#org-label"));
  return { wsSelect, tablesList, nav, main };
}

function fillNav(ws, route) {
  const { nav, wsSelect } = shell;
  clear(nav).append(
    navLink("Tables", wsPath(ws), "overview"),
    navLink("SQL console", wsPath(ws, "/sql"), "sql"),
    navLink("Search", wsPath(ws, "/search"), "search"),
    navLink("Files", wsPath(ws, "/files"), "files"),
    navLink("Jobs", wsPath(ws, "/jobs"), "jobs"));
  for (const a of nav.querySelectorAll("a")) {
    const on = a.dataset.nav === route.view || (a.dataset.nav === "overview" && route.view === "table");
    if (on) a.setAttribute("aria-current", "page");
  }
  clear(wsSelect).append(...state.workspaces.map((w) => h("option", { value: w, selected: w === ws }, w)));
  document.getElementById("top-ws").textContent = ws;
}

async function refreshTables(ws, { counts = false } = {}) {
  const res = await api.tables(ws);
  const prev = state.tables;
  state.tables = new Map(res.tables.map((t) => [t.name, { ...t, row_count: prev.get(t.name)?.row_count }]));
  renderTableList(ws);
  if (counts) loadCounts(ws);
  return state.tables;
}

function loadCounts(ws) {
  for (const name of state.tables.keys()) {
    api.table(ws, name).then((t) => {
      if (state.workspace !== ws) return;
      state.tables.set(name, t);
      renderTableList(ws);
      document.dispatchEvent(new CustomEvent("tarn:table", { detail: t }));
    }).catch(() => {});
  }
}

function renderTableList(ws) {
  const route = parseRoute();
  const list = clear(shell.tablesList);
  if (!state.tables.size) list.append(h("li", { class: "muted small" }, "No tables yet"));
  for (const t of state.tables.values()) {
    const a = h("a", { href: wsPath(ws, `/t/${encodeURIComponent(t.name)}`), title: t.name },
      h("span", { class: "t-name" }, t.name), h("span", { class: "t-count" }, fmtCount(t.row_count)));
    if (route.view === "table" && route.table === t.name) a.setAttribute("aria-current", "page");
    list.append(h("li", null, a));
  }
}

const views = { overview: overviewView, table: tableView, sql: sqlView, search: searchView, files: filesView, jobs: jobsView };

async function route() {
  if (!auth.me) return;
  const r = parseRoute();
  if (r.view === "home") {
    const ws = state.workspace && state.workspaces.includes(state.workspace) ? state.workspace
      : state.workspaces[0] || "default";
    go(wsPath(ws));
    return;
  }
  if (!shell) shell = buildShell();
  document.body.classList.remove("nav-open");
  if (cleanup) { try { cleanup(); } catch { /* the old view is gone either way */ } cleanup = null; }
  const wsChanged = state.workspace !== r.ws;
  state.workspace = r.ws;
  if (!state.workspaces.includes(r.ws)) state.workspaces = [...state.workspaces, r.ws].sort();
  fillNav(r.ws, r);
  if (wsChanged) {
    state.tables = new Map();
    try { await refreshTables(r.ws, { counts: true }); } catch (e) { toast(e.message, "error"); }
  } else {
    renderTableList(r.ws);
  }
  const main = clear(shell.main);
  document.title = `${r.view === "table" ? r.table : r.view} · ${r.ws} · tarndb`;
  try {
    cleanup = (await views[r.view].render(main, r)) || null;
  } catch (e) {
    if (e.status !== 401) main.append(h("div", { class: "error-box", role: "alert" }, e.message));
  }
  main.focus({ preventScroll: true });
}

async function start() {
  try {
    state.config = await api.config();
  } catch { /* keep defaults: the UI still works without video posters */ }
  try {
    state.workspaces = await listWorkspaces();
  } catch (e) {
    state.workspaces = [];
    toast(`Could not list workspaces: ${e.message}`, "error");
  }
  shell = null;
  await route();
}

// Who is signed in, and the org this token belongs to with the id clients send as
// X-Activeloop-Org-Id (the name works too). Filled whenever the shell is built: the first
// route after sign-in may only redirect, building the shell later.
async function showIdentity(label, box) {
  if (!auth.me) return;
  label.textContent = `${auth.me.name || auth.me.org} · ${auth.me.role}`;
  try {
    const me = await api.me();
    clear(box).append("Org ", h("strong", null, me.org),
      h("code", { class: "org-id", title: "X-Activeloop-Org-Id (the org name works too)" }, me.org_id || ""));
  } catch {
    clear(box).append(`Org ${auth.me.org}`);
  }
}

async function boot() {
  initPreview();
  // A 401 while signed in means the token was revoked: back to sign-in. A 401 during sign-in
  // itself is handled by the form.
  auth.onUnauthorized = () => {
    if (!auth.me) return;
    auth.me = null;
    renderSignIn("Your session ended. Sign in again.");
  };
  window.addEventListener("hashchange", route);
  document.addEventListener("tarn:tables-changed", () => {
    if (state.workspace && shell) refreshTables(state.workspace, { counts: true }).catch(() => {});
  });
  document.addEventListener("keydown", (e) => {
    // "/" jumps to the page's main input (filter, search box), as on most data tools.
    const t = e.target;
    if (e.key === "/" && !(t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement)) {
      const target = document.querySelector("[data-slash]");
      if (target) { e.preventDefault(); target.focus(); }
    }
  });
  try {
    await api.resume();
  } catch (e) {
    return renderSignIn(e.status === 401 ? undefined : e.message);
  }
  await start();
}

boot();
