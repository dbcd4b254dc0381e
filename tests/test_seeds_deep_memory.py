"""Seed 002 (Deep Memory) as written against a real ``tarndb serve``: its doctest statements
with what it leaves to the reader given first, and the status box, job list and recalls in the
seed's shapes. Skips when ``../shared/seeds`` is absent."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest

# pytest runs with --import-mode=importlib, which does not put test folders on sys.path; the
# seeds tests share their server and helpers through _seeds_support.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _seeds_support import (  # noqa: E402
    TOKEN,
    Server,
    deeplake_to_tarndb,
    doctest_code,
    needs_seeds,
    seed,
    server,
)

pytestmark = needs_seeds
__all__ = ["server"]  # the module-scoped fixture, one server per file


def test_002_deep_memory(server: Server) -> None:
    """Seed 002's doctest lines as written, with what it leaves to the reader (``token``,
    ``embedding_function``, ``corpus``, ``queries``) given first and its placeholders
    ``{$ORG_ID}``/``{$DATASET_ID}`` filled in. The seed writes keyword arguments with type
    annotations (``corpus: List[...] = corpus``), which Python does not parse: those are read
    as ``corpus = corpus``."""
    pytest.importorskip("torch", reason="training an adapter needs tarndb[embeddings]")
    text = seed("002")
    statements = [doctest_code(text, s) for s in (
        ">>> from deeplake import VectorStore", ">>> db = VectorStore(",
        ">>> job_id = db.deep_memory.train(", ">>> db.deep_memory.status(job_id)",
        ">>> db.deep_memory.list_jobs()", ">>> recalls = db.deep_memory.evaluate(",
        ">>> results = db.search(")]
    code = "\n".join(statements)
    code = re.sub(r"^(\s+)(\w+): [\w\[\], ]+ = ", r"\1\2 = ", code, flags=re.M)
    code = code.replace("{$ORG_ID}", "default").replace("{$DATASET_ID}", "seed002_docs")
    setup = textwrap.dedent(f'''
        import json, os, time
        os.environ["TARNDB_API_URL"] = {server.url!r}
        import tarndb
        token = {TOKEN!r}
        def embedding_function(texts):  # the reader's own function, run in this process
            return tarndb.embeddings.embed(texts)
        words = ["robot", "cake", "bank", "football", "plants", "gripper", "ocean", "music"]
        texts = [f"note {{i}} about {{words[i % 8]}} number {{i}}" for i in range(48)]
        queries = [f"what about {{words[i % 8]}} {{i}}" for i in range(48)]
        corpus = [[(f"doc-{{i}}", 1.0)] for i in range(48)]
        store = tarndb.VectorStore(path="hub://default/seed002_docs", token=token,
                                   embedding_function="minilm")
        store.add(text=texts, id=[f"doc-{{i}}" for i in range(48)])
        store.close()
    ''')
    # the seed's "after some time": wait for the job between status() and evaluate()
    wait = "db.deep_memory.wait(job_id, timeout=240)\n"
    code = code.replace("db.deep_memory.list_jobs()", wait + "db.deep_memory.list_jobs()")
    check = textwrap.dedent('''
        print("JOB", job_id)
        print("RECALLS", sorted(recalls))
        print("WITH", json.dumps(recalls["with_model"]))  # the keys as the seed spells them
        print("WITHOUT", json.dumps(recalls["without_model"]))
        print("RESULTS", [r["id"][:4] for r in results][:3])
    ''')
    out = server.run(deeplake_to_tarndb(setup + code + check), timeout=300)
    job_id = re.search(r"JOB ([0-9a-f]{24})", out)
    assert job_id, out
    job = job_id.group(1)
    # status(): the seed's box, 62 wide; pending (as here, right after train()) exactly as shown
    box = out[:out.index("\nID ")].splitlines()
    assert all(len(line) == 62 for line in box), box
    seed_box = _seed_boxes(text)
    if box[3].startswith("| status                     | pending"):
        assert box == [line.replace("6508464cd80cab681bfcfff3", job) for line in seed_box[0]]
    else:  # training already: the seed's second box's rows, its id, status, progress, results
        assert box[:3] == [line.replace("6508464cd80cab681bfcfff3", job)
                           for line in seed_box[1][:3]], box
        assert [line[:30] for line in box if line[2:3].strip()] == [
            line[:30] for line in seed_box[1] if line[2:3].strip()], box
    # list_jobs(): the seed's columns (ID 28, STATUS 11, RESULTS 29, PROGRESS)
    jobs = out[out.index("\nID ") + 1:].splitlines()
    head = next(line for line in text.splitlines() if line.startswith("ID  "))
    assert jobs[0] == head.rstrip(), (jobs[0], head)
    assert re.fullmatch(rf"{job}    completed  recall@10: \d+\.\d\d% \([+-]\d+\.\d\d%\) *"
                        r"eta: \d+\.\d seconds", jobs[1]), jobs
    assert jobs[1].index("eta:") == head.index("PROGRESS"), jobs
    assert re.fullmatch(r" {68}recall@10: \d+\.\d\d% \([+-]\d+\.\d\d%\)", jobs[2]), jobs
    # evaluate(): with_model / without_model, recall metrics for different k values
    assert re.search(r"^RECALLS \[.*'with model', 'without model'\]$", out, re.M), out
    for key in ("WITH", "WITHOUT"):
        got = json.loads(re.search(rf"^{key} (.*)$", out, re.M).group(1))  # type: ignore[union-attr]
        assert sorted(got, key=lambda k: int(k.split("@")[1])) == [
            "recall@1", "recall@3", "recall@5", "recall@10", "recall@50", "recall@100"], got
        assert all(0.0 <= v <= 1.0 for v in got.values()), got
    res = re.search(r"^RESULTS (\[\[.*)$", out, re.M)
    assert res and res.group(1).startswith("[['doc-0'"), out


def _seed_boxes(text: str) -> list[list[str]]:
    """The status boxes seed 002 shows (pending, then training), line by line."""
    boxes: list[list[str]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line == ">>> db.deep_memory.status(job_id)":
            box = []
            for b in lines[i + 1:]:
                if not b.startswith(("-", "|")):
                    break
                box.append(b)
            boxes.append(box)
    return boxes


def test_002_status_box_training_as_seed() -> None:
    """The training box seed 002 shows, character for character, from a job record with the
    seed's figures (ETA 2.5 s, held-out recall@10 0.62%, up 0.62 from 0): the layout
    ``status()`` prints while a job trains (a fast job on a real server can finish before a
    test sees it training; the pending box is checked through the server above)."""
    from tarndb.deepmemory import format_status

    job = {"id": "6508464cd80cab681bfcfff3", "status": "training",
           "progress": {"eta_s": 2.5, "recall@10": 0.0062, "baseline_recall@10": 0.0}}
    assert format_status(job).splitlines() == _seed_boxes(seed("002"))[1]
    pending = {"id": "6508464cd80cab681bfcfff3", "status": "pending", "progress": None}
    assert format_status(pending).splitlines() == _seed_boxes(seed("002"))[0]
