"""The web UI in a real browser against a real server: sign in, browse a table with image
thumbnails and a video, the SQL console, uploads, BM25 search, and a phone-width layout.

The tests run in file order on one page, as a person would click through the UI; each saves a
screenshot under artifacts/web/."""

from __future__ import annotations

import re
from typing import Any

import requests
from _web_support import WS, Console, Site, shot

ROWS = "table.grid:not(.schema)"  # the rows grid of the table view (the schema tab is another)


def _image_loaded(page: Any, selector: str) -> None:
    page.wait_for_function(
        """sel => { const img = document.querySelector(sel);
                    return img && img.complete && img.naturalWidth > 0; }""",
        arg=selector)


def test_sign_in(page: Any, site: Site) -> None:
    page.goto("/")
    page.get_by_label("API token").fill("tdb_not_a_real_token")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("That token is not valid.").wait_for()
    shot(page, "01_sign_in_error")
    page.get_by_label("API token").fill(site.token)
    page.get_by_role("button", name="Sign in").click()
    card = page.locator(".table-card[data-table='docs']")
    card.wait_for()
    # Row counts arrive after the list; the card shows the real count, not a placeholder.
    page.wait_for_function(
        "() => document.querySelector(\".table-card[data-table='docs'] .badge\")"
        ".textContent.startsWith('5 rows')")
    assert "bigint" in card.inner_text() and "jsonb" in card.inner_text()
    assert "body · bm25" in card.inner_text()
    shot(page, "02_tables")
    # The session survives a reload; the page keeps no token (the HttpOnly cookie holds a
    # session id, not the token, and nothing is in localStorage).
    page.reload()
    page.locator(".table-card[data-table='docs']").wait_for()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["tarndb_session"]["httpOnly"] is True
    assert cookies["tarndb_session"]["sameSite"] == "Strict"
    assert site.token not in cookies["tarndb_session"]["value"]
    assert "tarndb_media" not in cookies
    assert page.evaluate("document.cookie") == ""
    assert site.token not in page.evaluate("JSON.stringify(Object.entries(localStorage))")


def test_table_view_thumbnails_json_embeddings(page: Any, site: Site) -> None:
    page.locator(".side-tables a", has_text="docs").click()
    page.locator(f"{ROWS} tbody tr").nth(4).wait_for()
    _image_loaded(page, "td.k-file .thumb-img")
    nat = page.evaluate("document.querySelector('td.k-file .thumb-img').naturalWidth")
    assert 0 < nat <= 128
    text = page.locator(ROWS).inner_text()
    assert "float4[8]" in text and "float4[3×4]" in text and "float4[384]" in text
    # JSONB is collapsed to one line and expands to pretty-printed JSON.
    first_json = page.locator("details.json").first
    first_json.locator("summary").click()
    assert '"source": "web-test"' in first_json.locator("pre").inner_text()
    shot(page, "03_table_rows")
    # Sorting by a column header reverses the order; the first row becomes the last title.
    page.locator("th button.sort", has_text="title").click()
    page.wait_for_function(
        "() => document.querySelector('table.grid:not(.schema) tbody tr td:nth-child(3)')"
        ".textContent === 'Boat repair'")
    page.locator("th button.sort", has_text="title").click()
    page.wait_for_function(
        "() => document.querySelector('table.grid:not(.schema) tbody tr td:nth-child(3)')"
        ".textContent === 'Robot arm'")
    # Filtering with a WHERE clause.
    page.locator(".filter-input").fill("title LIKE 'M%'")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function(f"() => document.querySelectorAll('{ROWS} tbody tr').length === 1")
    assert page.locator(".pager-label").inner_text().endswith("of 1")
    page.locator(".filter-input").fill("")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function(f"() => document.querySelectorAll('{ROWS} tbody tr').length === 5")
    page.get_by_role("tab", name="Schema").click()
    schema = page.locator("table.grid.schema").inner_text()
    assert "FLOAT4[]" in schema.upper() or "REAL[]" in schema.upper()
    assert "VIDEO" in schema and "primary key" in schema
    # versions and index state, read from the lake through SQL
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=versions] tbody tr').length >= 1")
    assert "bm25" in page.locator("[data-testid=index-state]").inner_text()
    shot(page, "04_table_schema")
    page.get_by_role("tab", name="Rows").click()


def test_video_plays_and_seeks(page: Any, site: Site) -> None:
    page.locator("td.k-file .thumb:has(.play-badge)").first.click()
    video = page.locator("dialog#preview video")
    video.wait_for()
    page.wait_for_function("() => document.querySelector('dialog#preview video').readyState >= 2")
    page.evaluate("() => { const v = document.querySelector('dialog#preview video');"
                  " v.muted = true; return v.play(); }")
    page.wait_for_function(
        "() => document.querySelector('dialog#preview video').currentTime > 0.2")
    # Seek past what the first response covered: the browser fetches it with a Range request.
    page.evaluate("""() => new Promise(res => {
        const v = document.querySelector('dialog#preview video');
        v.addEventListener('seeked', res, { once: true }); v.currentTime = 4.0; })""")
    page.wait_for_function(
        "() => document.querySelector('dialog#preview video').currentTime >= 4.0")
    t = page.evaluate("document.querySelector('dialog#preview video').currentTime")
    assert 4.0 <= t < 6.1
    page.wait_for_function(
        f"() => document.querySelector('dialog#preview video').currentTime > {t + 0.1}")
    shot(page, "05_video_preview")
    page.keyboard.press("Escape")
    page.locator("dialog#preview[open]").wait_for(state="detached")


def test_sql_console(page: Any, site: Site) -> None:
    page.get_by_role("link", name="SQL console").click()
    editor = page.get_by_label("SQL editor")
    editor.fill(f'SELECT id, title, meta, emb, file_id FROM "{WS}"."docs" '
                "WHERE id <= 3 ORDER BY id")
    editor.press("Control+Enter")
    page.locator(".sql-status.ok").wait_for()
    assert re.match(r"SELECT 3 · 3 rows · \d+", page.locator(".sql-status").inner_text())
    assert page.locator(".sql-out table.grid tbody tr").count() == 3
    assert "float4[8]" in page.locator(".sql-out").inner_text()
    _image_loaded(page, ".sql-out .thumb-img")
    shot(page, "06_sql_results")

    editor.fill(f'SELECT title\nFROM "{WS}"."nope"')
    page.get_by_role("button", name="Run").click()
    err = page.locator(".sql-error")
    err.wait_for()
    assert "42P01" in err.inner_text()
    assert "Line 2, column 6" in err.inner_text()
    assert page.locator(".editor-hl mark.err-mark").inner_text().startswith('"demo"')
    shot(page, "07_sql_error")

    editor.fill("SELEC 1")
    editor.press("Control+Enter")
    page.wait_for_function(
        "() => document.querySelector('.sql-error') &&"
        " document.querySelector('.sql-error').textContent.includes('42601')")
    assert "Line 1, column 1" in page.locator(".sql-error").inner_text()
    # History keeps all three, newest first, and a click puts a query back in the editor.
    items = page.locator(".history .hist-item")
    assert items.count() >= 3
    items.nth(2).click()
    assert editor.input_value().startswith("SELECT id, title")


def test_upload_drag_and_drop_and_picker(page: Any, site: Site) -> None:
    page.get_by_role("link", name="Files").click()
    page.locator("table.grid.files").wait_for()
    # The file picker path.
    page.set_input_files("#file-picker", files=[
        {"name": "picked.txt", "mimeType": "text/plain", "buffer": b"picked by the test\n"}])
    # The drag-and-drop path: a real DataTransfer with a File, dropped on the page.
    page.evaluate("""() => {
        const dt = new DataTransfer();
        const bytes = new Uint8Array(300000).fill(65);
        dt.items.add(new File([bytes], 'dropped.bin', { type: 'application/octet-stream' }));
        const zone = document.querySelector('.dropzone');
        zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true }));
        zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true }));
    }""")
    page.wait_for_function("() => document.querySelectorAll('.uploads li.done').length === 2")
    page.locator("table.grid.files button.link", has_text="dropped.bin").wait_for()
    page.locator("table.grid.files button.link", has_text="picked.txt").wait_for()
    listed = requests.get(f"{site.url}/workspaces/{WS}/files?limit=100",
                          headers=site.headers(), timeout=30).json()["files"]
    sizes = {f["filename"]: f["size"] for f in listed}
    assert sizes["dropped.bin"] == 300000 and sizes["picked.txt"] == 19
    assert page.locator("progress").evaluate_all("bars => bars.every(b => b.value === 1)")
    _image_loaded(page, "table.grid.files .thumb-img")
    shot(page, "08_files")
    # Text preview reads the file through the API.
    page.locator("table.grid.files button.link", has_text="picked.txt").click()
    page.locator("dialog#preview pre.pv-text", has_text="picked by the test").wait_for()
    shot(page, "09_text_preview")
    page.get_by_role("button", name="Close preview").click()


def test_bm25_search(page: Any, site: Site) -> None:
    page.get_by_role("link", name="Search").click()
    page.get_by_label("Query").fill("fishing boat harbor")
    page.get_by_role("button", name="Search", exact=True).click()
    hits = page.locator("ol.hits li.hit")
    hits.first.wait_for()
    scores = [float(s) for s in page.locator(".score-num").all_inner_texts()]
    assert len(scores) >= 2 and scores == sorted(scores, reverse=True) and scores[0] > 0
    top_two = " ".join(hits.nth(i).locator(".hit-text").inner_text() for i in range(2))
    assert "harbor" in top_two and "fishing" in top_two
    assert hits.first.locator("mark").count() >= 2
    _image_loaded(page, "ol.hits li.hit .hit-media img")
    shot(page, "10_search_bm25")
    # A SQL filter narrows the candidates.
    page.get_by_label("Filter (SQL WHERE)").fill("title = 'Boat repair'")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_function("() => document.querySelectorAll('ol.hits li.hit').length === 1")
    assert "dry dock" in hits.first.inner_text()
    # Vector mode needs an embedding column and embed(); the SQL is shown either way.
    page.get_by_text("SQL", exact=True).click()
    assert "<#> 'fishing boat harbor'" in page.locator("details.gen-sql pre").inner_text()



def test_vector_and_hybrid_search(page: Any, site: Site) -> None:
    # No word in common with the best match: only the embedding can find it.
    page.get_by_label("Filter (SQL WHERE)").fill("")
    page.get_by_label("Query").fill("a vessel sailing out to sea in the morning")
    page.locator("label[for='s-mode-vector']").click()
    page.get_by_label("Embedding column").select_option("sem")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_function(
        "() => document.querySelector('details.gen-sql pre').textContent.includes("
        "\"\\\"sem\\\" <#> embed('a vessel sailing out to sea in the morning')\")")
    hits = page.locator("ol.hits li.hit")
    page.wait_for_function("() => document.querySelectorAll('ol.hits li.hit').length === 5")
    scores = [float(s) for s in page.locator(".score-num").all_inner_texts()]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    assert hits.first.locator(".hit-title").inner_text() == "Harbor at dawn"
    _image_loaded(page, "ol.hits li.hit .hit-media img")
    shot(page, "11_search_vector")
    page.locator("label[for='s-mode-hybrid']").click()
    page.get_by_label("Query").fill("boat harbor")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_function(
        "() => document.querySelector('details.gen-sql pre').textContent"
        ".includes('deeplake_hybrid_record(embed(')")
    page.wait_for_function("() => document.querySelectorAll('ol.hits li.hit').length >= 2")
    top = page.locator("ol.hits li.hit .hit-title").first.inner_text()
    assert top in ("Harbor at dawn", "Boat repair")
    shot(page, "12_search_hybrid")


def test_phone_width(page: Any, site: Site) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/#/w/{WS}/t/docs")
    page.locator(f"{ROWS} tbody tr").first.wait_for()
    # The sidebar slides off screen (after its transition) and a menu button replaces it.
    page.wait_for_function(
        "() => document.querySelector('.sidebar').getBoundingClientRect().right <= 0")
    shot(page, "13_phone_table")
    page.get_by_role("button", name="Menu").click()
    page.wait_for_function(
        "() => document.querySelector('.sidebar').getBoundingClientRect().left >= 0")
    shot(page, "14_phone_menu")
    page.locator(".sidebar .nav-link", has_text="Files").click()
    page.locator("table.grid.files").wait_for()
    page.wait_for_function(
        "() => document.querySelector('.sidebar').getBoundingClientRect().right <= 0")
    shot(page, "15_phone_files")
    page.set_viewport_size({"width": 1366, "height": 860})


def test_no_console_errors(console: Console) -> None:
    # The deliberate failures above (bad token, bad SQL) answer 401/400; Chrome reports those
    # responses as "Failed to load resource" lines. Anything else is a bug in the page.
    expected = re.compile(r"Failed to load resource: the server responded with a status of "
                          r"(400|401|404) ")
    unexpected = [e for e in console.errors if not expected.match(e)]
    assert console.page_errors == []
    assert unexpected == []


def test_sign_out_revokes_the_session(page: Any, site: Site) -> None:
    sid = {c["name"]: c for c in page.context.cookies()}["tarndb_session"]["value"]
    url = f"{site.url}/workspaces/{WS}/files"
    assert requests.get(url, cookies={"tarndb_session": sid}, timeout=30).status_code == 200
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API token").wait_for()
    # The old cookie, replayed from elsewhere, no longer signs anyone in.
    assert requests.get(url, cookies={"tarndb_session": sid}, timeout=30).status_code == 401
    assert "tarndb_session" not in {c["name"] for c in page.context.cookies()}
    # A reload stays signed out.
    page.reload()
    page.get_by_label("API token").wait_for()

