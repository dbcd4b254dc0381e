"""The seed's loop against a real ``tarndb`` HTTP server (``requests``, as the seed is written),
training sets over HTTP, and the ``tarndb trainset`` commands."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "api"))

from _api_support import Server, start_server, stop_server  # noqa: E402
from _seed_loop import seed_source  # noqa: E402

import tarndb  # noqa: E402
from tarndb import errors as E  # noqa: E402
from tarndb.cli import main as cli_main  # noqa: E402
from tarndb.train import TrainingSet  # noqa: E402
from tarndb.train._spec import canonical  # noqa: E402

WS = "robots"
OBJECTIVES = [
    "robot arm picking up small objects from a table",
    "autonomous vehicle navigating through narrow corridors",
    "human-robot handover of tools in assembly line",
]
CAPTIONS = [
    ("a robot arm picks up a small screw from the table", "cam1", 120.0),
    ("robotic gripper grasping tiny parts on a workbench", "cam2", 30.0),
    ("industrial arm lifting small objects off a desk", "cam1", 40.0),
    ("self-driving car drives down a narrow hallway", "cam1", 150.0),
    ("autonomous robot vehicle navigating tight corridors", "cam2", 200.0),
    ("a vehicle steering through a narrow indoor passage", "cam1", 10.0),
    ("a worker hands a wrench to a robot on the assembly line", "cam1", 300.0),
    ("robot passes a screwdriver to a human in a factory", "cam2", 50.0),
    ("tool handover between person and robot at assembly station", "cam1", 110.0),
]


@dataclass
class Served:
    server: Server
    #: row id -> bytes of its clip
    clips: dict[int, bytes]

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token(self) -> str:
        return self.server.token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def sql(self, query: str, params: list[Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query}
        if params is not None:
            body["params"] = params
        res = requests.post(f"{self.url}/workspaces/{WS}/tables/query", headers=self.headers(),
                            json=body, timeout=120)
        assert res.status_code == 200, res.text
        out: dict[str, Any] = res.json()
        return out

    def encode_text(self, text: str) -> list[float]:
        """The seed's "your encoder": the server's embed() (the packaged MiniLM)."""
        vec: list[float] = self.sql("SELECT embed($1)", [text])["rows"][0][0]
        return vec


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory,
           sample_videos: list[Path]) -> Iterator[Served]:
    pytest.importorskip("sentence_transformers")
    srv = start_server(tmp_path_factory.mktemp("served") / "lake",
                       {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    try:
        s = Served(srv, {})
        s.sql("CREATE TABLE video_chunks (id BIGSERIAL PRIMARY KEY, caption TEXT, "
              "file_id FILE_ID, metadata JSONB, start_s FLOAT4, "
              "embedding FLOAT4[] GENERATED ALWAYS AS (embed(caption)) STORED)")
        for i, (caption, camera, start) in enumerate(CAPTIONS):
            clip = sample_videos[i % len(sample_videos)]
            data = clip.read_bytes()
            up = requests.post(f"{srv.url}/workspaces/{WS}/files", headers=s.headers(),
                               files={"file": (f"{i}-{clip.name}", data, "video/mp4")},
                               timeout=60)
            assert up.status_code == 201, up.text
            row = s.sql("INSERT INTO video_chunks (caption, file_id, metadata, start_s) "
                        "VALUES ($1, $2, $3, $4) RETURNING id",
                        [caption, up.json()["id"], {"camera": camera}, start])
            s.clips[row["rows"][0][0]] = data
        yield s
    finally:
        stop_server(srv)


def test_seed_loop_runs_as_written(served: Served, tmp_path: Path) -> None:
    out_dir = tmp_path / "training_data"
    code = seed_source(served.url, served.token, WS, str(out_dir))
    ns: dict[str, Any] = {"encode_text": served.encode_text}
    printed = io.StringIO()
    with redirect_stdout(printed):
        exec(compile(code, "seed_000_retrieval_to_training", "exec"), ns)  # noqa: S102
    text = printed.getvalue()
    assert text.count("Downloaded 9 files for training") == 3, text
    files = sorted(out_dir.glob("sample_*.mp4"))
    assert len(files) == 9
    for f in files:
        assert f.read_bytes() == served.clips[int(f.stem.split("_")[1])]
    # Retrieval ranks by meaning: each objective's best rows are its own captions.
    for n, objective in enumerate(OBJECTIVES):
        rows = ns["retrieve_training_set"](objective, top_k=3)
        assert {r[0] for r in rows} == {3 * n + 1, 3 * n + 2, 3 * n + 3}, (objective, rows)
        assert all(isinstance(r[2], dict) and -1 <= r[3] <= 1 for r in rows)
    filtered = ns["retrieve_filtered"](OBJECTIVES[2])
    ids = [r[0] for r in filtered["rows"]]
    assert set(ids) == {1, 4, 7, 9} and ids[:2] in ([7, 9], [9, 7]), filtered


def test_trainingset_over_http_matches_the_seed_and_reproduces(served: Served,
                                                               tmp_path: Path) -> None:
    objective = OBJECTIVES[0]
    emb = served.encode_text(objective)
    seed_rows = served.sql(
        'SELECT id, file_id, metadata, embedding <#> ARRAY[' + ",".join(str(v) for v in emb)
        + f']::float4[] AS score FROM "{WS}"."video_chunks" ORDER BY score DESC LIMIT 4')["rows"]
    ts = TrainingSet.from_objective(objective, table="video_chunks", db=served.url,
                                    token=served.token, workspace=WS, k=4,
                                    columns=["id", "file_id", "metadata"])
    assert [r["id"] for r in ts.rows] == [r[0] for r in seed_rows]
    assert [r["score"] for r in ts.rows] == pytest.approx([r[3] for r in seed_rows])
    assert ts.spec.embedding == pytest.approx(emb) and ts.spec.source["kind"] == "http"
    spec = ts.save(tmp_path / "spec.json")
    before = [ts.read_file(i) for i in range(len(ts))]
    assert before == [served.clips[r["id"]] for r in ts.rows]

    # Change rows and files behind the set's back (on a copy of the table's state: the other
    # tests share this server, so the table is restored afterwards by id).
    first = ts.files[0]
    assert first is not None
    uploaded = requests.post(f"{served.url}/workspaces/{WS}/files", headers=served.headers(),
                             files={"file": ("extra.mp4", b"\x00" * 64, "video/mp4")}, timeout=60)
    extra_id = uploaded.json()["id"]
    served.sql("INSERT INTO video_chunks (caption, file_id, metadata, start_s) VALUES "
               "($1, $2, '{}', 0) RETURNING id", [objective, extra_id])
    served.sql("UPDATE video_chunks SET metadata = '{\"camera\": \"moved\"}' WHERE id = $1",
               [ts.rows[1]["id"]])
    gone = requests.delete(f"{served.url}/workspaces/{WS}/files/{first.id}",
                           headers=served.headers(), timeout=60)
    assert gone.status_code == 200
    served.sql("DELETE FROM video_chunks WHERE file_id = $1", [first.id])
    assert requests.get(f"{served.url}/workspaces/{WS}/files/{first.id}/content",
                        headers=served.headers(), timeout=60).status_code == 404

    with tarndb.Client(served.url, served.token, WS) as client:
        again = TrainingSet.load(spec, client)
        assert again.rows == ts.rows
        assert [again.read_file(i) for i in range(len(again))] == before
        paths = again.download(tmp_path / "dl", workers=3)
        assert [p.read_bytes() for p in paths if p] == before
        # An interrupted download resumes with a range request from where it stopped.
        p0 = paths[0]
        assert p0 is not None
        p0.with_name(p0.name + ".part").write_bytes(before[0][: len(before[0]) // 2])
        p0.unlink()
        assert again.download(tmp_path / "dl") == paths and p0.read_bytes() == before[0]
        # The same spec loads from the lake directly (rows hash alike from either source),
        # including the deleted file, read from its pinned blob.
        local_db = tarndb.open(str(served.server.lake))
        try:
            embedded = TrainingSet.load(spec, local_db)
            assert canonical(embedded.rows) == canonical(ts.rows)
            assert [embedded.read_file(i) for i in range(len(embedded))] == before
        finally:
            local_db.close()
        fresh = TrainingSet.from_objective(objective, table="video_chunks", db=client, k=4,
                                           columns=["id"], file_column=None, pin=False)
        assert fresh.rows[0]["id"] not in {r["id"] for r in ts.rows}  # the new row ranks first
        again.release()
        with pytest.raises(E.NotFound):
            again.read_file(0)  # its pin is gone, so is the deleted file's content


def test_read_only_token_needs_no_pin(served: Served) -> None:
    made = requests.post(f"{served.url}/tokens", headers=served.headers(),
                         json={"role": "read", "workspaces": [WS]}, timeout=60)
    assert made.status_code == 201, made.text
    reader = made.json()["token"]
    with pytest.raises(E.InsufficientPrivilege, match="pin=False"):
        TrainingSet.from_objective(OBJECTIVES[1], table="video_chunks", db=served.url,
                                   token=reader, workspace=WS, k=2)
    ts = TrainingSet.from_objective(OBJECTIVES[1], table="video_chunks", db=served.url,
                                    token=reader, workspace=WS, k=2, pin=False)
    assert {r["id"] for r in ts.rows} <= {4, 5, 6} and ts.spec.file_pin is None
    assert ts.read_file(0) == served.clips[ts.rows[0]["id"]]


def _cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = cli_main(list(args))
    return code, out.getvalue()


def test_cli_runs_the_seed_loop_in_one_command(served: Served, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _cli("trainset", "build", "--api-url", served.url, "--api-token", served.token,
                     "--workspace", WS, "--table", "video_chunks", "--k", "3",
                     "--objective", OBJECTIVES[0], "--objective", OBJECTIVES[2],
                     "--filter", "metadata.camera=cam1", "-o", str(tmp_path / "specs"),
                     "--download", str(tmp_path / "data"))
    assert code == 0, out
    assert out.count("Downloaded") == 2 and "--- Objective: " + OBJECTIVES[2] in out
    specs = sorted((tmp_path / "specs").glob("*.json"))
    assert len(specs) == 2
    for spec in specs:
        doc = json.loads(spec.read_text())
        assert doc["filters"] == {"metadata.camera": "cam1"}
        folder = tmp_path / "data" / spec.stem
        manifest = [json.loads(x) for x in (folder / "manifest.jsonl").read_text().splitlines()]
        assert len(manifest) == len(doc["row_ids"]) > 0
        for m in manifest:
            assert (folder / m["path"]).read_bytes() == served.clips[m["row_id"]]

    # `tarndb trainset download` (the console command, in its own process) finds the server
    # from the spec; only the token comes from the environment.
    target = tmp_path / "again"
    done = subprocess.run([sys.executable, "-m", "tarndb.cli", "trainset", "download",
                           str(specs[0]), str(target)], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "TARNDB_API_TOKEN": served.token,
                                            "TARNDB_WORKSPACE": WS})
    assert done.returncode == 0, done.stderr
    assert "files verified" in done.stdout
    assert sorted(p.name for p in target.iterdir()) == sorted(
        p.name for p in (tmp_path / "data" / specs[0].stem).iterdir())

    code, out = _cli("trainset", "show", str(specs[1]), "--api-token", served.token)
    assert code == 0 and json.loads(out[:out.index("\n}") + 2])["reproduced"] is True

    (tmp_path / "broken.json").write_text("[]")
    code, _ = _cli("trainset", "download", str(tmp_path / "broken.json"), str(target))
    assert code == 1 and "not a training set spec" in capsys.readouterr().err
    code, _ = _cli("trainset", "build", "--api-url", served.url, "--api-token", served.token,
                   "--workspace", WS, "--table", "no_such_table", "--objective", "x")
    assert code == 1 and "no_such_table" in capsys.readouterr().err


def test_cli_on_an_embedded_lake(tmp_path: Path, sample_images: list[Path]) -> None:
    from _train_support import Lake, fill_items

    from tarndb.files import FileStore

    db = tarndb.open(str(tmp_path / "lake"))
    fill_items(Lake(db, FileStore.from_db(db), tmp_path / "lake", {}), sample_images, 5)
    db.close()
    code, out = _cli("trainset", "build", "--data", str(tmp_path / "lake"), "--query",
                     "SELECT id, file_id FROM ws.items WHERE start_s >= $1 ORDER BY id",
                     "--param", "20", "-o", str(tmp_path / "q.json"),
                     "--download", str(tmp_path / "files"))
    assert code == 0 and "3 rows, 3 files" in out, out
    assert len(list((tmp_path / "files").glob("*.png"))) + \
        len(list((tmp_path / "files").glob("*.jpg"))) == 3
    code, out = _cli("trainset", "release", str(tmp_path / "q.json"))
    assert code == 0 and "released" in out


@pytest.mark.filterwarnings("ignore:lance is not fork-safe")
def test_dataloader_workers_stream_from_the_server(served: Served) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("imageio_ffmpeg")
    from torch.utils.data import DataLoader

    import tarndb.train
    from tarndb.train import VideoOptions

    ts = TrainingSet.from_objective(OBJECTIVES[1], table="video_chunks", db=served.url,
                                    token=served.token, workspace=WS, k=4, pin=False)
    assert ts.read_file(0) == served.clips[ts.rows[0]["id"]]  # the parent has a connection
    ds = ts.torch_dataset(decode="video", verify=True,
                          video=VideoOptions(frames=2, size=(16, 16)))
    seen = []
    for batch in DataLoader(ds, batch_size=2, num_workers=2, collate_fn=tarndb.train.collate,
                            multiprocessing_context="fork"):
        assert batch["data"].shape == (len(batch["index"]), 2, 3, 16, 16)
        assert batch["data"].dtype == torch.uint8
        seen += batch["id"].tolist()
    assert sorted(seen) == sorted(r["id"] for r in ts.rows)
