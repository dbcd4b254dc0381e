"""Server-side thumbnails and the media cookie, against the real server of the UI tests and
directly on the helpers (Pillow, ffmpeg, the lake cache)."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pyarrow.fs as pafs
import pytest
import requests
from _web_media import mp4, png
from _web_support import WS, Site
from PIL import Image

from tarndb.web import COOKIE, ThumbCache, ThumbnailUnavailable
from tarndb.web.thumbs import image_thumbnail, snap_size, video_poster


def _thumb(site: Site, file_id: str, size: int | None = None,
           headers: dict[str, str] | None = None) -> requests.Response:
    q = f"?size={size}" if size is not None else ""
    return requests.get(f"{site.url}/workspaces/{WS}/files/{file_id}/thumbnail{q}",
                        headers=site.headers() if headers is None else headers, timeout=60)


def test_image_thumbnail_is_cached_on_the_lake(site: Site) -> None:
    fid = site.files["photo_0.png"]
    r = _thumb(site, fid, 128)
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(r.content)) as img:
        assert img.size == (128, 80)  # 320x200 scaled to fit, aspect kept
        # Bottom-left corner: the fill colour (the label and the disc are elsewhere).
        assert img.convert("RGB").getpixel((2, 77)) == pytest.approx((37, 99, 235), abs=12)
    cached = list((site.lake / WS / "_thumbs").rglob(f"{fid}-128-*.webp"))
    assert len(cached) == 1 and cached[0].read_bytes() == r.content
    # A cached thumbnail is served as is; a revalidation is a 304 without a body.
    again = _thumb(site, fid, 128)
    assert again.content == r.content
    etag = r.headers["etag"]
    assert "immutable" in r.headers["cache-control"]
    nm = requests.get(f"{site.url}/workspaces/{WS}/files/{fid}/thumbnail?size=128",
                      headers={**site.headers(), "If-None-Match": etag}, timeout=30)
    assert nm.status_code == 304 and nm.content == b""


def test_video_poster(site: Site) -> None:
    r = _thumb(site, site.video_id, 256)
    assert r.status_code == 200
    with Image.open(io.BytesIO(r.content)) as img:
        assert img.size == (256, 192)
        # testsrc draws colour bars: a poster frame is anything but one flat colour.
        assert len(img.convert("RGB").getcolors(maxcolors=1 << 16) or []) > 20


def test_unsupported_and_missing(site: Site) -> None:
    r = _thumb(site, site.files["notes.txt"])
    assert r.status_code == 415 and r.json()["error"]["code"] == "thumbnail_unavailable"
    r = _thumb(site, str(uuid.uuid4()))
    assert r.status_code == 404
    r = _thumb(site, "not-a-uuid")
    assert r.status_code == 400
    r = _thumb(site, site.files["photo_0.png"], headers={})
    assert r.status_code == 401


def test_session_cookie_holds_no_token_and_sign_out_revokes_it(site: Site) -> None:
    fid = site.files["photo_1.png"]
    s = requests.Session()
    # No cookie yet: the browser-style fetch is refused.
    assert s.get(f"{site.url}/workspaces/{WS}/files/{fid}/content").status_code == 401
    assert s.get(f"{site.url}/ui/session").json() == {"signed_in": False}
    bad = s.post(f"{site.url}/ui/session", headers={"Authorization": "Bearer tdb_wrong_token"})
    assert bad.status_code == 401 and COOKIE not in s.cookies
    ok = s.post(f"{site.url}/ui/session", headers=site.headers())
    assert ok.status_code == 200 and ok.json()["role"] == "admin"
    set_cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie and "Path=/;" in set_cookie
    sid = s.cookies[COOKIE]
    assert site.token not in set_cookie and site.token not in sid and len(sid) >= 40
    # The cookie authenticates reads (media with Range, listings, who am I) ...
    content = s.get(f"{site.url}/workspaces/{WS}/files/{fid}/content",
                    headers={"Range": "bytes=0-7"})
    assert content.status_code == 206 and content.content == b"\x89PNG\r\n\x1a\n"
    assert s.get(f"{site.url}/workspaces/{WS}/files/{fid}/download").status_code == 200
    assert s.get(f"{site.url}/workspaces/{WS}/files/{fid}/thumbnail").status_code == 200
    assert s.get(f"{site.url}/workspaces/{WS}/files").status_code == 200
    assert s.get(f"{site.url}/ui/session").json()["role"] == "admin"
    # ... but a write only with the UI's header, which a cross-site form cannot send.
    assert s.post(f"{site.url}/workspaces/{WS}/tables/query",
                  json={"query": "SELECT 1"}).status_code == 401
    assert s.delete(f"{site.url}/workspaces/{WS}/files/{fid}").status_code == 401
    r = s.post(f"{site.url}/workspaces/{WS}/tables/query", json={"query": "SELECT 1"},
               headers={"X-Tarndb-UI": "1"})
    assert r.status_code == 200 and r.json()["rows"] == [[1]]
    # Signing out ends the session on the server: the same cookie, replayed, is refused.
    out = s.delete(f"{site.url}/ui/session", headers={"X-Tarndb-UI": "1"})
    assert out.status_code == 200 and out.json()["revoked"] is True
    replay = requests.get(f"{site.url}/workspaces/{WS}/files/{fid}/content",
                          cookies={COOKIE: sid}, timeout=30)
    assert replay.status_code == 401
    assert requests.get(f"{site.url}/ui/session", cookies={COOKIE: sid},
                        timeout=30).json() == {"signed_in": False}
    # A made-up session id is nobody.
    assert requests.get(f"{site.url}/workspaces/{WS}/files", cookies={COOKIE: "x" * 43},
                        timeout=30).status_code == 401


def test_page_and_assets(site: Site) -> None:
    page = requests.get(f"{site.url}/", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'self'
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "{{v}}" not in page.text and "/static/app.js?v=" in page.text
    js = requests.get(f"{site.url}/static/app.js", timeout=30)
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert requests.get(f"{site.url}/static/../_web_serve.py", timeout=30).status_code == 404
    cfg = requests.get(f"{site.url}/ui/config", timeout=30).json()
    assert cfg["video_thumbnails"] is True and cfg["thumbnail_sizes"] == [128, 256, 512]
    # The API's own routes are untouched by the mount.
    assert requests.get(f"{site.url}/health", timeout=30).json()["status"] == "ok"


# -- the helpers, without a server ----------------------------------------------------------


def test_image_thumbnail_orientation_alpha_and_garbage() -> None:
    img = Image.new("RGB", (400, 100), (200, 10, 10))
    exif = img.getexif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90 degrees on display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    buf.seek(0)
    with Image.open(io.BytesIO(image_thumbnail(buf, 128))) as out:
        assert out.size == (32, 128)  # portrait after applying the orientation
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    b2 = io.BytesIO()
    rgba.save(b2, format="PNG")
    b2.seek(0)
    with Image.open(io.BytesIO(image_thumbnail(b2, 128))) as out:
        assert out.mode == "RGBA" and out.size == (64, 64)  # never upscaled
    with pytest.raises(ThumbnailUnavailable):
        image_thumbnail(io.BytesIO(b"not an image at all"), 128)


def test_video_poster_of_a_short_clip(tmp_path: Path) -> None:
    clip = mp4(tmp_path / "short.mp4", seconds=1)
    with Image.open(io.BytesIO(video_poster(str(clip), 128))) as out:
        assert out.size == (128, 96)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    with pytest.raises(ThumbnailUnavailable):
        video_poster(str(junk), 128)


def test_snap_size_and_cache_paths(tmp_path: Path) -> None:
    assert [snap_size(x) for x in (None, "1", "128", "200", "256", "9999", "abc")] == \
        [256, 128, 128, 256, 256, 512, 256]
    cache = ThumbCache(pafs.LocalFileSystem(), str(tmp_path))
    fid = uuid.uuid4()
    path = cache.path("ws", fid, 256)
    assert path.startswith(f"{tmp_path}/ws/_thumbs/{str(fid)[:2]}/")
    assert cache.get(path) is None
    cache.put(path, png((1, 2, 3)))
    assert cache.get(path) == png((1, 2, 3))
    assert [p.name for p in Path(path).parent.iterdir()] == [Path(path).name]  # no temp left
    cache.delete_file("ws", fid)
    assert cache.get(path) is None


def test_thumbnails_are_removed_with_their_file(tmp_path: Path) -> None:
    import tarndb
    from tarndb.api import create_app
    from tarndb.files import FileStore
    from tarndb.web import mount
    from tarndb.web.thumbs import SIZES, ThumbCache

    db = tarndb.open(str(tmp_path / "lake"))
    app = mount(create_app(db))
    store: FileStore = app.state.tarn.store
    meta = store.put("ws", b"\x89PNG fake", "x.png", "image/png")
    cache = ThumbCache.from_db(db)
    path = cache.path("ws", meta.id, SIZES[0])
    cache.put(path, b"thumb")
    assert cache.get(path) == b"thumb"
    store.delete("ws", meta.id)
    assert cache.get(path) is None
