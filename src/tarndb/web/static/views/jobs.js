// The Jobs page: the workspace's background jobs (Deep Memory training) with their status,
// live progress and results. While any job is pending or training the list is polled every
// second; otherwise every few seconds, so a job started elsewhere (Python, HTTP) shows up.

import { api, auth } from "../api.js";
import { fmtDate, h, toast } from "../dom.js";

const ACTIVE = new Set(["pending", "training"]);
const FAST_MS = 1000;
const SLOW_MS = 5000;

function pct(x) { return `${(x * 100).toFixed(2)}%`; }

// "recall@10: 87.65% (+4.94%)": the held-out recall and its change, as Deep Lake shows it.
function recallText(d) {
  if (!d || d["recall@10"] === null || d["recall@10"] === undefined) return null;
  const r = d["recall@10"];
  const base = d["baseline_recall@10"] ?? r;
  const delta = (r - base) * 100;
  return `recall@10: ${pct(r)} (${delta >= 0 ? "+" : ""}${delta.toFixed(2)}%)`;
}

function progressCell(job) {
  const p = job.progress;
  if (!ACTIVE.has(job.status)) return [h("span", { class: "muted" }, job.phase || "—")];
  const out = [h("div", { class: "job-phase" }, job.phase || job.status)];
  if (p && p.max_epochs) {
    out.push(h("progress", { max: p.max_epochs, value: p.epoch, "aria-label": `Epoch ${p.epoch} of ${p.max_epochs}` }));
    const bits = [`eta: ${Number(p.eta_s).toFixed(1)} s`];
    const r = recallText(p);
    if (r) bits.push(r);
    out.push(h("div", { class: "muted small" }, bits.join(" · ")));
  }
  return out;
}

function resultsCell(job) {
  if (job.status === "failed") return [h("span", { class: "error-text" }, job.error || "failed")];
  if (job.status === "cancelled") return [h("span", { class: "muted" }, "cancelled")];
  const r = job.status === "completed" ? recallText(job.results) : null;
  if (!r) return [h("span", { class: "muted" }, "not available yet")];
  const res = job.results;
  const more = [`${Number(res.train_seconds).toFixed(1)} s`, `best epoch ${res.best_epoch}`];
  if (job.attempts > 1) more.push(`resumed (${job.attempts} runs)`);
  return [h("div", null, r), h("div", { class: "muted small" }, more.join(" · "))];
}

export async function render(main, { ws }) {
  const canWrite = auth.me && auth.me.role !== "read";
  const body = h("tbody");
  const holder = h("div");
  const rows = new Map(); // job id -> { tr, cells, sig }
  let timer = null;
  let stopped = false;

  async function cancel(job, button) {
    button.disabled = true;
    try {
      const res = await api.cancelJob(ws, job.id);
      toast(res.cancelled ? `Cancelling job ${job.id}` : `Job ${job.id} had already finished`);
      await load();
    } catch (e) {
      toast(e.message, "error");
      button.disabled = false;
    }
  }

  // Cells are replaced only when their content changes, so a Cancel button under the pointer
  // is not swapped out by a progress update between mousedown and click.
  function setCell(row, key, sig, build) {
    if (row.sig[key] === sig) return;
    row.sig[key] = sig;
    row.cells[key].replaceChildren(...build());
  }

  function update(job) {
    let row = rows.get(job.id);
    if (!row) {
      const cells = {};
      for (const k of ["id", "target", "status", "progress", "results", "created", "actions"]) cells[k] = h("td", { class: `j-${k}` });
      row = { tr: h("tr", { dataset: { jobId: job.id } }, Object.values(cells)), cells, sig: {} };
      rows.set(job.id, row);
    }
    row.tr.dataset.status = job.status;
    setCell(row, "id", job.id, () => [h("code", null, job.id)]);
    setCell(row, "target", `${job.table}.${job.column}`, () => [
      h("div", null, job.table), h("div", { class: "muted small" }, `${job.column} · ${job.queries} queries`)]);
    setCell(row, "status", job.status, () => [h("span", { class: `status status-${job.status}` }, job.status)]);
    setCell(row, "progress", JSON.stringify([job.status, job.phase, job.progress]), () => progressCell(job));
    setCell(row, "results", JSON.stringify([job.status, job.results, job.error]), () => resultsCell(job));
    setCell(row, "created", job.created_at, () => [fmtDate(job.created_at)]);
    setCell(row, "actions", `${job.status}`, () => (canWrite && ACTIVE.has(job.status)
      ? [h("button", { type: "button", class: "btn btn-sm btn-danger", "aria-label": `Cancel job ${job.id}`,
        onclick: (e) => cancel(job, e.currentTarget) }, "Cancel")]
      : []));
    return row.tr;
  }

  async function load() {
    clearTimeout(timer);
    let jobs = [];
    try {
      jobs = (await api.jobs(ws)).jobs;
    } catch (e) {
      if (!stopped && e.status !== 401) toast(`Could not list jobs: ${e.message}`, "error");
    }
    if (stopped) return;
    if (!jobs.length) {
      holder.replaceChildren(h("div", { class: "empty-state" },
        h("h2", null, "No jobs in this workspace yet"),
        h("p", { class: "muted" }, "Deep Memory training runs here as a job. Start one from Python:"),
        h("pre", { class: "code" }, `vs = tarndb.VectorStore(db, table="${ws}.docs", embedding_column="emb",\n                        embedding_function="minilm")\njob_id = vs.deep_memory.train(queries, relevance)`),
        h("p", { class: "muted" }, `or with POST /workspaces/${ws}/deep_memory/train.`)));
    } else {
      body.replaceChildren(...jobs.map(update));
      if (!holder.contains(body)) {
        holder.replaceChildren(h("div", { class: "grid-wrap" }, h("table", { class: "grid jobs" },
          h("caption", { class: "sr-only" }, "Jobs"),
          h("thead", null, h("tr", null, ["Job", "Table", "Status", "Progress", "Results", "Created", ""]
            .map((t) => h("th", { scope: "col" }, t)))),
          body)));
      }
    }
    const live = jobs.some((j) => ACTIVE.has(j.status));
    timer = setTimeout(load, live ? FAST_MS : SLOW_MS);
  }

  main.append(
    h("div", { class: "page-head" },
      h("div", null, h("h1", null, "Jobs"),
        h("p", { class: "muted" }, `Workspace ${ws} · Deep Memory training, updated live`))),
    holder);
  await load();
  return () => { stopped = true; clearTimeout(timer); };
}
