"""Shared fixtures: a tiny randomly initialised causal LM with a real byte-level BPE tokenizer, built offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.helpers import P3_PUZZLES
from tokenizers import ByteLevelBPETokenizer
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

EOS = "<|endoftext|>"


def _training_text() -> list[str]:
    """A few hundred KB of Python: P3 sat sources where present, else this project's own sources."""
    if P3_PUZZLES.is_file():
        return [p["sat"] for p in json.loads(P3_PUZZLES.read_text())[:400]]
    root = Path(__file__).resolve().parents[1]
    return [f.read_text() for f in sorted(root.glob("src/**/*.py"))]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``save_pretrained`` folder holding a 2-layer Llama (hidden 64) and a 512-token byte-level BPE."""
    folder = tmp_path_factory.mktemp("tiny_model")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_training_text(), vocab_size=512, min_frequency=2, special_tokens=[EOS])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token=EOS)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        initializer_range=0.2,  # peaked logits: greedy choices are not near-ties that float noise could flip
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        pad_token_id=None,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
