"""The Jobs view in a real browser: Deep Memory training jobs started over the HTTP API appear
without a reload, their progress updates live, Cancel stops one, and a finished job shows its
results. Runs in its own browser context, so the walk-through in test_web_ui.py is unaffected;
screenshots go to artifacts/web/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests

pytest.importorskip("torch")

# The fixtures (site, browser) come from this folder's conftest.py. Its constants are not
# imported by name: "conftest" may resolve to another folder's when several folders run.
WS = "demo"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "web"
Site = Any


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def _train(site: Site, config: dict[str, Any]) -> str:
    rows = site.sql(f'SELECT id, title FROM "{WS}"."docs" ORDER BY id')["rows"]
    queries, relevance = [], []
    for doc_id, title in rows:
        for q in (f"a photo of {title.lower()}", f"{title} scene"):
            queries.append(q)
            relevance.append([[doc_id, 1.0]])
    r = requests.post(f"{site.url}/workspaces/{WS}/deep_memory/train", headers=site.headers(),
                      json={"table": "docs", "embedding_column": "sem", "queries": queries,
                            "relevance": relevance, "config": config}, timeout=120)
    assert r.status_code == 202, r.text
    job_id: str = r.json()["id"]
    return job_id


def _cancel(site: Site, job_id: str) -> None:
    requests.post(f"{site.url}/workspaces/{WS}/jobs/{job_id}/cancel", headers=site.headers(),
                  timeout=60)


def test_jobs_view_live_progress_cancel_and_results(browser: Any, site: Site) -> None:
    ctx = browser.new_context(viewport={"width": 1366, "height": 860}, base_url=site.url)
    page = ctx.new_page()
    page.set_default_timeout(30000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    long_job = None
    try:
        page.goto("/")
        page.get_by_label("API token").fill(site.token)
        page.get_by_role("button", name="Sign in").click()
        page.locator(".table-card[data-table='docs']").wait_for()
        page.get_by_role("link", name="Jobs").click()
        page.get_by_text("No jobs in this workspace yet").wait_for()

        # A job that would train for minutes: started after the page loaded, it must appear
        # and move on its own (the view polls).
        long_job = _train(site, {"max_epochs": 100000, "patience": 100000})
        row = page.locator(f"tr[data-job-id='{long_job}']")
        row.wait_for()
        page.wait_for_function(
            f"() => /epoch \\d+\\/100000/.test(document.querySelector("
            f"\"tr[data-job-id='{long_job}'] .j-progress\").textContent)")
        first = row.locator(".j-progress").inner_text()
        epoch = int(re.search(r"epoch (\d+)/", first).group(1))  # type: ignore[union-attr]
        page.wait_for_function(
            f"() => {{ const m = document.querySelector(\"tr[data-job-id='{long_job}'] "
            f".j-progress\").textContent.match(/epoch (\\d+)\\//); "
            f"return m && Number(m[1]) > {epoch}; }}")
        assert row.locator(".j-status").inner_text() == "training"
        assert re.search(r"eta: [\d.]+ s · recall@10: [\d.]+% \([+-][\d.]+%\)",
                         row.locator(".j-progress").inner_text())
        assert row.locator("progress").count() == 1
        shot(page, "20_jobs_training")
        row.get_by_role("button", name=f"Cancel job {long_job}").click()
        page.wait_for_function(
            f"() => document.querySelector(\"tr[data-job-id='{long_job}']\")"
            ".dataset.status === 'cancelled'")
        assert row.get_by_role("button").count() == 0
        long_job = None

        short_job = _train(site, {"max_epochs": 20, "patience": 20})
        done = page.locator(f"tr[data-job-id='{short_job}']")
        page.wait_for_function(
            f"() => document.querySelector(\"tr[data-job-id='{short_job}']\")"
            "?.dataset.status === 'completed'", timeout=120000)
        assert re.search(r"recall@10: [\d.]+% \([+-][\d.]+%\)",
                         done.locator(".j-results").inner_text())
        # Newest first; the cancelled job stays listed.
        ids = page.locator("table.jobs tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.jobId)")
        assert ids[:2] == [short_job, row.get_attribute("data-job-id")]
        shot(page, "21_jobs_done")
        assert errors == []
    finally:
        if long_job is not None:
            _cancel(site, long_job)
        ctx.close()
