"""A tiny, randomly initialised ColQwen2 checkpoint built offline, so the ColQwen path (the
one the seeds run on a GPU with real weights) is exercised on CPU: processor, vision tower,
projection, masking of padding tokens, and tarndb's plumbing around them.

Random weights give meaningless rankings, so tests check shapes, determinism and that
tarndb's MaxSim over stored multi-vectors equals numpy's on the same vectors.
"""

from __future__ import annotations

from pathlib import Path

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
           "<|image_pad|>", "<|video_pad|>", "<pad>"]
WORDS = ("a the robot arm picking up small objects query describe image what is shown in "
         "this : ? . , < > | _ question answer document page photo cat dog red blue").split()
EMBEDDING_DIM = 16


def build(out: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        ColQwen2Config,
        ColQwen2ForRetrieval,
        ColQwen2Processor,
        Qwen2TokenizerFast,
        Qwen2VLConfig,
    )

    try:  # the PIL image processor avoids needing torchvision
        from transformers import Qwen2VLImageProcessorPil as ImageProcessor
    except ImportError:
        from transformers import Qwen2VLImageProcessor as ImageProcessor

    vocab = {t: i for i, t in enumerate([*SPECIAL, *WORDS, "[UNK]"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # type: ignore[assignment]
    fast = Qwen2TokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="<pad>",
                              eos_token="<|endoftext|>")
    fast.add_special_tokens({"additional_special_tokens": SPECIAL})  # type: ignore[dict-item]
    processor = ColQwen2Processor(
        image_processor=ImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112),
        tokenizer=fast)
    vlm = Qwen2VLConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "bos_token_id": None,
                     "eos_token_id": vocab["<|endoftext|>"],
                     "rope_scaling": {"type": "mrope", "mrope_section": [1, 1, 2]}},
        vision_config={"depth": 1, "embed_dim": 32, "hidden_size": 32, "num_heads": 2,
                       "mlp_ratio": 2, "patch_size": 14, "spatial_merge_size": 2,
                       "temporal_patch_size": 2},
        image_token_id=vocab["<|image_pad|>"], video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"],
        vision_end_token_id=vocab["<|vision_end|>"])
    torch.manual_seed(0)
    model = ColQwen2ForRetrieval(ColQwen2Config(vlm_config=vlm, embedding_dim=EMBEDDING_DIM))
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
