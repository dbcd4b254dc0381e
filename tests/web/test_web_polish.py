"""The web UI's first-hour polish in a real browser (issue 19): vector search on a FLOAT4[][]
column with the model's token vectors, the org shown, floats without binary noise, result
text wrapped at word boundaries, long table names that leave the row counts in place at
1280 and 1920 px, and the Files view's filter and delete.

Its tables are named zz_* so that the walk-through in test_web_ui.py still opens "docs"
first."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from _web_support import ARTIFACTS, BODIES, WS, Site, shot

# 63 characters: the longest name PostgreSQL keeps (NAMEDATALEN - 1)
LONG = ("zz_" + "a_table_with_a_rather_long_descriptive_name_" * 2)[:63]


@pytest.fixture(scope="module")
def ui(browser: Any, site: Site) -> Iterator[Any]:
    site.sql(f'CREATE TABLE IF NOT EXISTS "{WS}"."zz_tokens" (id BIGSERIAL PRIMARY KEY, '
             "title TEXT, body TEXT, tok FLOAT4[][] GENERATED ALWAYS AS (embed_multi(body)) "
             "STORED)")
    for title, body in BODIES:
        site.sql(f'INSERT INTO "{WS}"."zz_tokens" (title, body) VALUES ($1, $2)', [title, body])
    site.sql(f'CREATE TABLE IF NOT EXISTS "{WS}"."{LONG}" (id INT)')
    site.sql(f'INSERT INTO "{WS}"."{LONG}" VALUES (1), (2), (3)')
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=site.url)
    page = ctx.new_page()
    page.set_default_timeout(20000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto("/")
    page.get_by_label("API token").fill(site.token)
    page.get_by_role("button", name="Sign in").click()
    page.locator(".table-card[data-table='docs']").wait_for()
    yield page
    ctx.close()
    assert errors == []


def test_org_shown(ui: Any, site: Site) -> None:
    me = requests.get(f"{site.url}/me", headers=site.headers(), timeout=30).json()
    assert re.fullmatch(r"org-[0-9a-f-]{36}", me["org_id"])
    ui.locator("#org-label .org-id", has_text=me["org_id"]).wait_for()
    assert ui.locator("#org-label").inner_text().split() == ["Org", me["org"], me["org_id"]]


def test_multivector_search_with_token_vectors(ui: Any) -> None:
    ui.get_by_role("link", name="Search").click()
    ui.get_by_label("Table", exact=True).select_option("zz_tokens")
    ui.locator("label[for='s-mode-vector']").click()
    ui.get_by_label("Embedding column").select_option("tok")
    ui.get_by_label("Query").fill("boats leaving the harbor")
    ui.get_by_role("button", name="Search", exact=True).click()
    ui.wait_for_function("() => document.querySelectorAll('ol.hits li.hit').length === 5")
    sql = ui.locator("details.gen-sql pre").text_content() or ""
    assert "\"tok\" <#> embed_multi('boats leaving the harbor') AS score" in sql
    assert ui.locator(".error-box").count() == 0
    scores = [float(s) for s in ui.locator(".score-num").all_inner_texts()]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    assert "Harbor at dawn" in ui.locator("ol.hits li.hit").first.inner_text()
    shot(ui, "20_search_multivector")
    # Hybrid on the same column fuses the token vectors with BM25.
    ui.locator("label[for='s-mode-hybrid']").click()
    ui.get_by_role("button", name="Search", exact=True).click()
    ui.wait_for_function(
        "() => document.querySelector('details.gen-sql pre').textContent"
        ".includes('deeplake_hybrid_record(embed_multi(')")
    ui.wait_for_function("() => document.querySelectorAll('ol.hits li.hit').length >= 1")
    assert ui.locator(".error-box").count() == 0


def test_floats_and_word_wrapping_in_the_console(ui: Any) -> None:
    ui.get_by_role("link", name="SQL console").click()
    editor = ui.get_by_label("SQL editor")
    long_text = "searchable " * 60
    editor.fill("SELECT 0.1::float8 + 0.2::float8 AS f, 153.6::float8 * 3 AS g, "
                "'{\"x\": 0.30000000000000004, \"y\": [153.60000000000002]}'::jsonb AS j, "
                f"'{long_text.strip()}' AS t")
    editor.press("Control+Enter")
    ui.locator(".sql-status.ok").wait_for()
    out = ui.locator(".sql-out table.grid tbody tr").first
    cells = out.locator("td").all_inner_texts()
    assert cells[1:3] == ["0.3", "460.8"]
    assert cells[3] == '{"x":0.3,"y":[153.6]}'
    assert "0000000" not in ui.locator(".sql-out").inner_text()
    style = out.locator("td .text").evaluate(
        "el => [getComputedStyle(el).overflowWrap, getComputedStyle(el).wordBreak]")
    assert style == ["break-word", "normal"]
    # every line of the long text ends at a word boundary
    lines = out.locator("td .text").evaluate("""el => {
        const node = el.firstChild, r = document.createRange(), tops = [];
        for (let i = 0; i < node.length; i++) {
            r.setStart(node, i); r.setEnd(node, i + 1);
            const rect = r.getClientRects()[0];
            if (rect) tops.push([rect.top, node.data[i]]);
        }
        const breaks = [];
        for (let i = 1; i < tops.length; i++)
            if (tops[i][0] > tops[i - 1][0] + 1) breaks.push(tops[i - 1][1] + tops[i][1]);
        return breaks; }""")
    assert lines and all(pair[0] == " " or pair[1] == "s" for pair in lines), lines
    shot(ui, "21_console_floats")


@pytest.mark.parametrize("width", [1280, 1920])
def test_long_table_names_keep_row_counts_in_the_sidebar(ui: Any, width: int) -> None:
    ui.set_viewport_size({"width": width, "height": 900})
    ui.reload()
    link = ui.locator(".side-tables a", has_text="zz_a_table")
    link.wait_for()
    ui.wait_for_function(
        "() => [...document.querySelectorAll('.side-tables a')].some(a => "
        "a.title.startsWith('zz_a_table') && /\\d/.test(a.querySelector('.t-count')"
        ".textContent))")  # counts load after the list: "…" until then
    box = ui.evaluate("""() => {
        const a = [...document.querySelectorAll('.side-tables a')]
            .find(x => x.title.startsWith('zz_a_table'));
        const side = document.querySelector('.sidebar').getBoundingClientRect();
        const count = a.querySelector('.t-count').getBoundingClientRect();
        const name = a.querySelector('.t-name');
        return { sideRight: side.right, countRight: count.right, countWidth: count.width,
                 cut: name.scrollWidth > name.clientWidth, title: a.title,
                 text: a.querySelector('.t-count').textContent }; }""")
    assert box["countWidth"] > 0 and box["countRight"] <= box["sideRight"], box
    assert box["cut"] is True and box["title"] == LONG
    assert box["text"].startswith("3")
    shot(ui, f"22_sidebar_{width}")


def test_files_filter_and_delete(ui: Any, site: Site) -> None:
    ui.set_viewport_size({"width": 1280, "height": 860})
    fid = site.upload("polish-delete-me.txt", b"delete me\n", "text/plain")
    ui.get_by_role("link", name="Files").click()
    ui.locator("table.grid.files").wait_for()
    ui.get_by_label("Filter files").fill("NOTES")
    ui.wait_for_function(
        "() => [...document.querySelectorAll('table.grid.files button.link')]"
        ".map(b => b.textContent).join('|') === 'notes.txt'")
    ui.get_by_label("Filter files").fill("delete-me")
    row = ui.locator("table.grid.files tbody tr")
    ui.wait_for_function(
        "() => [...document.querySelectorAll('table.grid.files button.link')]"
        ".map(b => b.textContent).join('|') === 'polish-delete-me.txt'")
    assert row.first.get_attribute("data-file-id") == fid
    ui.once("dialog", lambda d: d.accept())
    ui.get_by_role("button", name="Delete polish-delete-me.txt").click()
    ui.locator("p.empty", has_text="No file matches").wait_for()
    listed = requests.get(f"{site.url}/workspaces/{WS}/files?limit=1000",
                          headers=site.headers(), timeout=30).json()["files"]
    assert fid not in {f["id"] for f in listed} and "notes.txt" in {f["filename"]
                                                                     for f in listed}
    ui.get_by_label("Filter files").fill("")
    ui.locator("table.grid.files button.link", has_text="notes.txt").wait_for()
    shot(ui, "23_files_filter")


def test_video_poster_placeholder_and_media_columns_in_view(browser: Any, site: Site) -> None:
    """A video's poster is cut on first view: until it arrives the cell shows a moving
    placeholder (a progressbar), not an empty box. The poster is held back here so that the
    waiting state is seen for sure. Then, at 1440 and 1920 px, every image and video cell of the
    grid can be scrolled fully into view (none is cut off at the grid's edge)."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=site.url)
    page = ctx.new_page()
    page.set_default_timeout(20000)
    held: list[Any] = []

    def hold_poster(route: Any) -> None:
        if site.video_id in route.request.url:
            held.append(route)
        else:
            route.continue_()

    try:
        page.route("**/thumbnail?*", hold_poster)
        page.goto("/")
        page.get_by_label("API token").fill(site.token)
        page.get_by_role("button", name="Sign in").click()
        page.locator(".table-card[data-table='docs']").wait_for()
        page.get_by_role("link", name="docs", exact=True).first.click()
        box = page.locator(".thumb[title^='clip.mp4']")
        box.locator(".thumb-pending[role='progressbar']").wait_for()
        assert box.get_attribute("aria-busy") == "true"
        assert box.locator("img.thumb-img").evaluate("e => getComputedStyle(e).opacity") == "0"
        shot(page, "poster-pending-1440")
        assert held, "the poster request was not made"
        for route in held:
            route.continue_()
        page.wait_for_function(
            "() => { const i = document.querySelector(\".thumb[title^='clip.mp4'] img\");"
            " return i && i.naturalWidth > 0 && !i.classList.contains('is-loading'); }")
        assert box.locator(".thumb-pending").count() == 0
        assert box.get_attribute("aria-busy") is None
        for width in (1440, 1920):
            page.set_viewport_size({"width": width, "height": 900})
            thumbs = page.locator(".grid-wrap .thumb")
            assert thumbs.count() >= 5
            for i in range(thumbs.count()):
                t = thumbs.nth(i)
                t.scroll_into_view_if_needed()
                clipped = t.evaluate(
                    "t => { const w = t.closest('.grid-wrap').getBoundingClientRect();"
                    " const r = t.getBoundingClientRect();"
                    " return r.left < w.left - 1 || r.right > w.right + 1; }")
                assert not clipped, (width, i)
            shot(page, f"media-columns-{width}")
    finally:
        ctx.close()
