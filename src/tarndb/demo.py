"""A small demo workspace, loaded into an empty lake by ``tarndb serve`` so the UI and the
README's queries have something to show: generated images in the file store, a table that
references them with captions and COCO-style boxes, the captions' embeddings (``emb``, one
vector; ``tok``, token vectors for MaxSim) from the default model, and a vector, a
multi-vector and a BM25 index, so vector, hybrid and MaxSim search answer on first start."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

log = logging.getLogger(__name__)

WORKSPACE = "demo"
_COLORS = {"red": (220, 50, 47), "green": (64, 160, 43), "blue": (38, 139, 210),
           "orange": (240, 140, 30), "purple": (130, 80, 180), "gray": (120, 120, 120)}
_SHAPES = ["circle", "square", "triangle"]


def _draw(shape: str, color: tuple[int, int, int], size: int = 256) -> tuple[bytes, list[float]]:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), (250, 250, 248))
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = size * 0.2, size * 0.2, size * 0.8, size * 0.8
    if shape == "circle":
        d.ellipse((x0, y0, x1, y1), fill=color)
    elif shape == "square":
        d.rectangle((x0, y0, x1, y1), fill=color)
    else:
        d.polygon([(size / 2, y0), (x1, y1), (x0, y1)], fill=color)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue(), [x0, y0, x1 - x0, y1 - y0]


def _model_ready() -> bool:
    """Load the default embedding model now (it ships with tarndb: a fraction of a second), so
    the first search does not wait for it; False, with a warning, if it cannot load."""
    from .embeddings import TOKENS_MODEL, get_model
    from .errors import TarnError

    try:
        get_model(None)
        get_model(TOKENS_MODEL)
        return True
    except (TarnError, OSError) as e:
        log.warning("demo without embeddings: the default embedding model did not load (%s)",
                    e)
        return False


def load_demo(db: Any) -> bool:
    """Create the demo workspace when the lake has no tables yet; True if it did."""
    if any(db.catalog.tables(ws) for ws in db.catalog.workspaces()):
        return False
    from .files import FileStore

    files = FileStore.from_db(db)
    vectors = _model_ready()
    s = db.session(workspace=WORKSPACE)
    try:
        emb = (", emb FLOAT4[] GENERATED ALWAYS AS (embed(caption)) STORED, "
               "tok FLOAT4[][] GENERATED ALWAYS AS (embed_multi(caption)) STORED"
               if vectors else "")
        s.execute(f'CREATE TABLE "{WORKSPACE}"."shapes" (id BIGSERIAL PRIMARY KEY, '
                  "caption TEXT, color TEXT, shape TEXT, width INT, height INT, "
                  f"bboxes JSONB, file_id IMAGE, metadata JSONB{emb}) USING deeplake")
        s.execute("BEGIN")
        for shape in _SHAPES:
            for name, rgb in _COLORS.items():
                png, box = _draw(shape, rgb)
                meta = files.put(WORKSPACE, png, f"{name}_{shape}.png", "image/png")
                s.execute(
                    f'INSERT INTO "{WORKSPACE}"."shapes" (caption, color, shape, width, height, '
                    "bboxes, file_id, metadata) VALUES ($1, $2, $3, 256, 256, $4::jsonb, "
                    "$5::uuid, $6::jsonb)",
                    [f"a {name} {shape} on a white background", name, shape,
                     json.dumps([box]), str(meta.id), json.dumps({"source": "tarndb demo"})])
        s.execute("COMMIT")
        s.execute(f'CREATE INDEX shapes_caption ON "{WORKSPACE}"."shapes" '
                  "USING deeplake_index (caption) WITH (index_type = 'bm25')")
        if vectors:
            s.execute(f'CREATE INDEX shapes_emb ON "{WORKSPACE}"."shapes" '
                      "USING deeplake_index (emb)")
            s.execute(f'CREATE INDEX shapes_tok ON "{WORKSPACE}"."shapes" '
                      "USING deeplake_index (tok)")
        log.info("loaded the demo workspace %r", WORKSPACE)
        return True
    finally:
        s.close()
