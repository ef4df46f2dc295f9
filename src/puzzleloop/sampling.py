"""Batched sampling of function completions, shared by proposing, solving and evaluation.

Why not ``model.generate(num_return_sequences=n)``: it prefills the same prompt n times and decodes every
sequence to ``max_new_tokens``. Here each prompt is prefilled once, its KV cache is copied to its n samples,
and a sequence leaves the batch (its cache rows are pruned) as soon as its function ends.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

FUNCTION_END = re.compile(r"\n(?=\S)")
PREFILL_TOKEN_BUDGET = 8192  # rows x padded length per prefill forward; bounds the attention scores' memory
CPU_MAX_BATCH = 64  # decode throughput on 2 cores stops growing here (GUIDE section 4)
CUDA_MAX_BATCH = 512


def stop_position(text: str, stop_strings: Sequence[str] = ()) -> int | None:
    """Index where a completion ends: the first non-empty unindented line or stop string; None if not yet."""
    positions = [m.start() for m in [FUNCTION_END.search(text)] if m]
    positions += [i for i in (text.find(s) for s in stop_strings if s) if i >= 0]
    return min(positions, default=None)


def cut_at_function_end(text: str) -> str:
    """Keep a completion up to its first non-empty unindented line, without trailing whitespace.

    The completion continues a prompt that ends inside a def, so its first line is never a new statement.
    """
    end = stop_position(text)
    return (text if end is None else text[:end]).rstrip()


@dataclass
class SamplingConfig:
    """How to sample; ``temperature`` 0 means greedy, ``batch_size`` None means fit it to memory."""

    temperature: float = 0.8
    top_p: float = 1.0
    max_new_tokens: int = 128
    batch_size: int | None = None
    seed: int = 0
    stop_strings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"SamplingConfig.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingConfig.top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"SamplingConfig.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"SamplingConfig.batch_size must be >= 1 or None, got {self.batch_size}")


@dataclass
class Completion:
    """One sample: ``text`` already cut at the stop; ``num_tokens`` generated up to the stop."""

    text: str
    num_tokens: int
    finished: bool  # False when max_new_tokens ran out before the function ended


@dataclass
class SamplingStats:
    """Running totals of a sampler, for tokens/s reports."""

    sequences: int = 0
    generated_tokens: int = 0
    prefill_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds else 0.0


class SamplingBackend(Protocol):
    """What stages need from a sampler; another engine (e.g. vLLM) can be plugged in by implementing it."""

    def sample(
        self, prompts: Sequence[str], n: int, config: SamplingConfig, progress: bool | str = True
    ) -> list[list[Completion]]: ...


@dataclass
class _Row:
    """A sequence being decoded: which prompt and sample it is, its own RNG and its tokens so far."""

    prompt: int
    sample: int
    generator: torch.Generator
    tokens: list[int] = field(default_factory=list)


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA OOM, or a CPU allocator failure (which torch raises as a plain RuntimeError)."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and ("out of memory" in str(exc) or "can't allocate" in str(exc))


def kv_bytes_per_token(model: PreTrainedModel) -> int:
    """Bytes of KV cache one token of one sequence takes, from the model's config."""
    cfg = model.config.get_text_config(decoder=True)
    heads = cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    return 2 * cfg.num_hidden_layers * kv_heads * head_dim * model.dtype.itemsize


def auto_batch_size(model: PreTrainedModel, tokens_per_sequence: int) -> int:
    """Sequences to decode together so their KV cache (kept twice while it grows) fits a share of memory.

    Uses total, not free, memory so the choice and hence the batching are the same from run to run.
    """
    device = model.device
    if device.type == "cuda":
        budget = torch.cuda.get_device_properties(device).total_memory * 0.5
        budget -= sum(p.numel() * p.element_size() for p in model.parameters())
        cap = CUDA_MAX_BATCH
    else:
        budget = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.25
        cap = CPU_MAX_BATCH
    per_sequence = 2 * kv_bytes_per_token(model) * tokens_per_sequence
    per_sequence += 4 * 4 * model.config.get_text_config(decoder=True).vocab_size  # logits and their sort
    return max(1, min(cap, int(budget // per_sequence)))


class Sampler:
    """Samples n completions per prompt with a hand-written decode loop over a shared-prefix KV cache."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        if tokenizer.pad_token_id is None:
            raise ValueError("tokenizer has no pad token; load it with puzzleloop.models.load_model")
        self.model = model
        self.tokenizer = tokenizer
        self.stats = SamplingStats()
        eos = model.generation_config.eos_token_id
        eos_ids = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {i for i in [*eos_ids, tokenizer.eos_token_id] if i is not None}

    def sample(
        self, prompts: Sequence[str], n: int, config: SamplingConfig, progress: bool | str = True
    ) -> list[list[Completion]]:
        """Return ``result[i][j]``, the j-th sample for ``prompts[i]``; progress may be a label for the bar."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        for i, prompt in enumerate(prompts):
            if prompt != prompt.rstrip(" \t"):
                raise ValueError(f"prompt {i} ends with a space or tab; byte-level BPE samples worse after it")
        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        for i, ids in enumerate(encoded):
            if not ids:
                raise ValueError(f"prompt {i} is empty")
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))  # similar lengths pad less
        pending = [(i, j) for i in order for j in range(n)]
        longest = max((len(ids) for ids in encoded), default=0)
        batch_size = config.batch_size or auto_batch_size(self.model, longest + config.max_new_tokens)
        results: dict[tuple[int, int], Completion] = {}
        bar = tqdm(
            total=len(pending), desc=progress if isinstance(progress, str) else "sampling",
            disable=not progress, unit="seq", dynamic_ncols=True,
        )
        start, start_tokens = time.perf_counter(), self.stats.generated_tokens
        try:
            while pending:
                chunks = math.ceil(len(pending) / batch_size)
                size = math.ceil(len(pending) / chunks)  # equal chunks, none left nearly empty
                before = (bar.n, self.stats.generated_tokens, self.stats.prefill_tokens)
                try:
                    results.update(self._run_chunk(pending[:size], encoded, config, bar, start, start_tokens))
                except Exception as exc:
                    if not is_out_of_memory(exc) or batch_size == 1:
                        raise
                    batch_size = max(1, min(batch_size, size) // 2)
                    bar.n, self.stats.generated_tokens, self.stats.prefill_tokens = before  # the chunk reruns
                    if self.model.device.type == "cuda":
                        torch.cuda.empty_cache()
                    continue
                pending = pending[size:]
        finally:
            bar.close()
            self.stats.seconds += time.perf_counter() - start
        self.stats.sequences += len(prompts) * n
        return [[results[i, j] for j in range(n)] for i in range(len(prompts))]

    @torch.inference_mode()
    def _run_chunk(
        self,
        chunk: list[tuple[int, int]],
        encoded: list[list[int]],
        config: SamplingConfig,
        bar: tqdm,
        start: float,
        start_tokens: int,
    ) -> dict[tuple[int, int], Completion]:
        """Prefill the chunk's distinct prompts once, copy each prompt's cache to its rows, decode them all."""
        prompt_ids = list(dict.fromkeys(i for i, _ in chunk))
        cache, mask, logits = self._prefill([encoded[i] for i in prompt_ids])
        slot = {i: k for k, i in enumerate(prompt_ids)}
        index = torch.tensor([slot[i] for i, _ in chunk], device=self.model.device)
        cache.batch_select_indices(index)
        mask, logits = mask[index], logits[index]
        rows = [_Row(i, j, self._generator(config.seed, i, j)) for i, j in chunk]
        done: dict[tuple[int, int], Completion] = {}
        for step in range(config.max_new_tokens):
            next_ids = self._choose(logits.float(), rows, config)
            self.stats.generated_tokens += len(rows)
            keep: list[int] = []
            last = step == config.max_new_tokens - 1
            for k, (row, token) in enumerate(zip(rows, next_ids.tolist(), strict=True)):
                row.tokens.append(token)
                completion = self._completion(row, config.stop_strings, last)
                if completion is None:
                    keep.append(k)
                else:
                    done[row.prompt, row.sample] = completion
            if len(keep) < len(rows):
                bar.update(len(rows) - len(keep))
                elapsed = time.perf_counter() - start
                bar.set_postfix(tok_s=f"{(self.stats.generated_tokens - start_tokens) / elapsed:.0f}")
                if not keep:
                    break
                index = torch.tensor(keep, device=self.model.device)
                cache.batch_select_indices(index)
                mask, next_ids = mask[index], next_ids[index]
                rows = [rows[k] for k in keep]
            mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
            out = self.model(
                input_ids=next_ids[:, None], attention_mask=mask, position_ids=mask.sum(dim=1, keepdim=True) - 1,
                past_key_values=cache, use_cache=True,
            )
            logits = out.logits[:, -1, :]
        return done

    def _prefill(self, prompts: list[list[int]]) -> tuple[DynamicCache, torch.Tensor, torch.Tensor]:
        """Run left-padded prompts through the model in slices; return their cache, mask and last logits."""
        device, width = self.model.device, max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for k, p in enumerate(prompts):
            ids[k, width - len(p):] = torch.tensor(p)
            mask[k, width - len(p):] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        rows_per_forward = max(1, PREFILL_TOKEN_BUDGET // width)
        keys: list[list[torch.Tensor]] = []
        values: list[list[torch.Tensor]] = []
        logits = []
        for lo in range(0, len(prompts), rows_per_forward):
            part = slice(lo, lo + rows_per_forward)
            cache = DynamicCache(config=self.model.config)
            out = self.model(
                input_ids=ids[part], attention_mask=mask[part], position_ids=positions[part],
                past_key_values=cache, use_cache=True, logits_to_keep=1,
            )
            logits.append(out.logits[:, -1, :])
            for layer, (k, v, *_) in enumerate(cache):
                if lo == 0:
                    keys.append([])
                    values.append([])
                keys[layer].append(k)
                values[layer].append(v)
        self.stats.prefill_tokens += sum(len(p) for p in prompts)
        merged = DynamicCache(
            ((torch.cat(k), torch.cat(v)) for k, v in zip(keys, values, strict=True)), config=self.model.config
        )
        return merged, mask, torch.cat(logits)

    @staticmethod
    def _generator(seed: int, prompt: int, sample: int) -> torch.Generator:
        """Each sequence draws from its own stream, so its sample does not depend on how rows are batched."""
        return torch.Generator().manual_seed((seed * 1_000_003 + prompt) * 1_000_003 + sample)

    @staticmethod
    def _choose(logits: torch.Tensor, rows: list[_Row], config: SamplingConfig) -> torch.Tensor:
        """Pick one token per row: argmax at temperature 0, else top-p sampling by inverse CDF."""
        if config.temperature == 0:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits / config.temperature, dim=-1)
        sorted_probs, sorted_ids = probs.sort(dim=-1, descending=True)
        cdf = sorted_probs.cumsum(dim=-1)
        if config.top_p < 1:
            sorted_probs = sorted_probs.masked_fill(cdf - sorted_probs >= config.top_p, 0.0)
            cdf = sorted_probs.cumsum(dim=-1)
        u = torch.stack([torch.rand((), generator=row.generator) for row in rows]).to(logits.device)
        pick = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).clamp(max=cdf.shape[1] - 1)
        return sorted_ids.gather(1, pick).squeeze(1)

    def _completion(self, row: _Row, stop_strings: Sequence[str], last: bool) -> Completion | None:
        """The row's completion if it has stopped (function end, stop string, EOS or budget), else None."""
        ended = row.tokens[-1] in self.eos_ids
        tokens = row.tokens[:-1] if ended else row.tokens
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        end = stop_position(text, stop_strings)
        if end is not None:
            return Completion(text[:end].rstrip(), len(row.tokens), True)
        if ended or last:
            return Completion(text.rstrip(), len(row.tokens), ended)
        return None
