// The HTTP API client of the UI. Sign-in sends the token once (POST /ui/session); the server
// keeps it and answers with an HttpOnly session cookie, which authenticates every later request
// (and <img>/<video> fetches). The page never stores the token. Requests other than GET carry
// X-Tarndb-UI, without which the server does not accept the cookie (no cross-site writes).

// Where earlier versions kept the raw token: removed on load.
const LEGACY_TOKEN_KEY = "tarndb.token";
try { localStorage.removeItem(LEGACY_TOKEN_KEY); } catch { /* storage disabled */ }
const UI_HEADER = "X-Tarndb-UI";

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "http_error";
    this.sqlstate = err.sqlstate || null;
    this.position = err.position || null;
    this.detail = err.detail || null;
    this.hint = err.hint || null;
  }
}

export const auth = {
  me: null,
  onUnauthorized: () => {},
};

async function request(method, path, { json, body, headers = {}, raw = false, signal } = {}) {
  const h = { [UI_HEADER]: "1", ...headers };
  if (json !== undefined) { h["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  const res = await fetch(path, { method, headers: h, body, signal, credentials: "same-origin" });
  if (raw && res.ok) return res;
  let payload = null;
  const type = res.headers.get("content-type") || "";
  if (type.includes("application/json")) payload = await res.json();
  if (!res.ok) {
    const e = new ApiError(res.status, payload);
    if (res.status === 401) auth.onUnauthorized(e);
    throw e;
  }
  return payload;
}

const enc = encodeURIComponent;
const ws = (name) => `/workspaces/${enc(name)}`;

export const api = {
  async signIn(token) {
    auth.me = await request("POST", "/ui/session", { headers: { Authorization: `Bearer ${token}` } });
    return auth.me;
  },
  // The session the cookie holds, if any (a reload stays signed in without the token).
  async resume() {
    const me = await request("GET", "/ui/session");
    if (!me.signed_in) throw new ApiError(401, { error: { message: "not signed in" } });
    auth.me = me;
    return auth.me;
  },
  async signOut() {
    auth.me = null;
    await fetch("/ui/session", { method: "DELETE", headers: { [UI_HEADER]: "1" }, credentials: "same-origin" });
  },
  config: () => request("GET", "/ui/config"),
  me: () => request("GET", "/me"),
  query: (w, sql, params, signal) =>
    request("POST", `${ws(w)}/tables/query`, { json: params ? { query: sql, params } : { query: sql }, signal }),
  tables: (w) => request("GET", `${ws(w)}/tables`),
  table: (w, name) => request("GET", `${ws(w)}/tables/${enc(name)}`),
  files: (w, limit, offset) => request("GET", `${ws(w)}/files?limit=${limit}&offset=${offset}`),
  file: (w, id) => request("GET", `${ws(w)}/files/${enc(id)}`),
  deleteFile: (w, id) => request("DELETE", `${ws(w)}/files/${enc(id)}`),
  jobs: (w) => request("GET", `${ws(w)}/jobs`),
  job: (w, id) => request("GET", `${ws(w)}/jobs/${enc(id)}`),
  cancelJob: (w, id) => request("POST", `${ws(w)}/jobs/${enc(id)}/cancel`),
  // Range-limited read for text previews: a 2 GB log should not be pulled into the page.
  async fileHead(w, id, bytes) {
    const res = await request("GET", `${ws(w)}/files/${enc(id)}/content`,
      { headers: { Range: `bytes=0-${bytes - 1}` }, raw: true });
    return { text: await res.text(), partial: res.status === 206, total: res.headers.get("content-range") };
  },
  async fileBlob(w, id) {
    const res = await request("GET", `${ws(w)}/files/${enc(id)}/content`, { raw: true });
    return res.blob();
  },
  contentUrl: (w, id) => `${ws(w)}/files/${enc(id)}/content`,
  downloadUrl: (w, id) => `${ws(w)}/files/${enc(id)}/download`,
  thumbUrl: (w, id, size = 256) => `${ws(w)}/files/${enc(id)}/thumbnail?size=${size}`,

  // XMLHttpRequest rather than fetch: only XHR reports upload progress.
  upload(w, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `${ws(w)}/files`);
      xhr.setRequestHeader(UI_HEADER, "1");
      xhr.responseType = "json";
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
        else {
          const e = new ApiError(xhr.status, xhr.response);
          if (xhr.status === 401) auth.onUnauthorized(e);
          reject(e);
        }
      };
      xhr.onerror = () => reject(new ApiError(0, { error: { message: "network error" } }));
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });
  },
};

// Workspaces: the API has no listing endpoint yet, so ask the SQL catalog. The query runs in
// "public", which always exists, so a write token does not create a workspace by asking.
export async function listWorkspaces() {
  const me = auth.me;
  if (me && Array.isArray(me.workspaces)) return me.workspaces;
  const res = await api.query("public",
    "SELECT schema_name FROM information_schema.schemata " +
    "WHERE schema_name NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1");
  return res.rows.map((r) => r[0]);
}

// File metadata never changes under an id, so one lookup per id per page load is enough.
const metaCache = new Map();
export function fileMeta(w, id) {
  const key = `${w}/${id}`;
  if (!metaCache.has(key)) {
    const p = api.file(w, id).catch((e) => { metaCache.delete(key); throw e; });
    metaCache.set(key, p);
  }
  return metaCache.get(key);
}
