"""Batched sampling of function completions, shared by proposing, solving and evaluation.

Why not ``model.generate(num_return_sequences=n)``: it prefills the same prompt n times and decodes every
sequence to ``max_new_tokens``. Here the tokens all prompts begin with (the few-shot examples) are prefilled once,
each prompt's rest once, and its KV rows are stored once for its n samples (``puzzleloop.decode_cache``); a
sequence leaves the batch as soon as its function ends and the next waiting sequence takes its slot, so the batch
stays full until the last sequences. A step writes one column of preallocated tail buffers instead of copying the
cache. Measured against ``generate``, continuous batching and this sampler's earlier versions by
``scripts/bench_sampling.py``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from puzzleloop.config import SamplingSettings
from puzzleloop.decode_cache import PrefilledPrompt, PromptTable, TailCache, decoding_with

FUNCTION_END = re.compile(r"\n(?=\S)")
PREFILL_TOKEN_BUDGET = 8192  # rows x padded length per prefill forward; bounds the attention scores' memory
CPU_MAX_BATCH = 128  # on 2 cores with the default model, 48 prompts x 8 samples: 196 tok/s, 64: 177, 256: 186
CUDA_MAX_BATCH = 512
NUCLEUS_CANDIDATES = 256  # top-p looks for its nucleus among these first
SHRINK_BELOW = 0.75  # once nothing waits, drop finished slots when fewer than this share of them still decode


def stop_position(text: str, stop_strings: Sequence[str] = (), functions: int = 1) -> int | None:
    """Index where a completion ends: its `functions`-th non-empty unindented line (the first, when it continues
    one open def; the second lets it write one more function) or a stop string; None if not yet."""
    ends = [m.start() for m in islice(FUNCTION_END.finditer(text), functions)]
    positions = ends[-1:] if len(ends) == functions else []
    positions += [i for i in (text.find(s) for s in stop_strings if s) if i >= 0]
    return min(positions, default=None)


def cut_at_function_end(text: str) -> str:
    """Keep a completion up to its first non-empty unindented line, without trailing whitespace.

    The completion continues a prompt that ends inside a def, so its first line is never a new statement.
    """
    end = stop_position(text)
    return (text if end is None else text[:end]).rstrip()


@dataclass
class SamplingConfig(SamplingSettings):
    """A stage's sampling settings plus what one call needs: ``temperature`` 0 means greedy, ``batch_size`` None
    means fit it to memory, ``seed`` seeds each sequence (sequence i of a call draws from seed + i)."""

    batch_size: int | None = None
    seed: int = 0
    stop_strings: tuple[str, ...] = ()
    functions: int = 1  # top-level functions a completion may write (1: just the open def it continues)

    def __post_init__(self) -> None:
        super().__post_init__()  # temperature, top_p, max_new_tokens and batch_size in range
        if self.functions < 1:
            raise ValueError(f"SamplingConfig.functions must be >= 1, got {self.functions}")

    @classmethod
    def of(cls, settings: SamplingSettings, **call: Any) -> SamplingConfig:
        """A stage's settings with one call's batch size, seed, stop strings or function count."""
        return cls(**dataclasses.asdict(settings), **call)


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
    decode_steps: int = 0  # batched forward passes after prefill; refilling keeps it near tokens / batch size
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds else 0.0


@dataclass
class _Row:
    """A sequence being decoded: which prompt and sample it is, its own RNG and its tokens so far."""

    prompt: int
    sample: int
    generator: torch.Generator
    tokens: list[int] = field(default_factory=list)


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero every token outside each row's nucleus: the most probable tokens up to the first that reaches top_p."""
    k = min(NUCLEUS_CANDIDATES, probs.shape[-1])
    top = probs.topk(k, dim=-1).values
    if k < probs.shape[-1] and bool((top.sum(dim=-1) < top_p).any()):
        top = probs.sort(dim=-1, descending=True).values
    inside = (top.cumsum(dim=-1) - top < top_p).sum(dim=-1, keepdim=True)  # tokens before the mass reaches top_p
    return probs.masked_fill(probs < top.gather(1, inside - 1), 0.0)


def shared_prefix_length(encoded: Sequence[Sequence[int]]) -> int:
    """Tokens every prompt begins with (the few-shot examples), leaving each prompt at least its last token, whose
    logits start its samples; 0 for a single prompt, which has nothing to share."""
    if len(encoded) < 2:
        return 0
    shared = 0
    for column in zip(*encoded, strict=False):
        if len(set(column)) > 1:
            break
        shared += 1
    return min(shared, min(len(ids) for ids in encoded) - 1)


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
    """Sequences to decode together so their KV buffers fit a share of memory: each its tail's buffer (twice its
    new tokens) and, when no two share a prompt, a prompt row each; ``tokens_per_sequence`` counts both.

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
    per_sequence = kv_bytes_per_token(model) * tokens_per_sequence
    per_sequence += 4 * 4 * model.config.get_text_config(decoder=True).vocab_size  # logits, probabilities, CDF
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
        self,
        prompts: Sequence[str],
        n: int,
        config: SamplingConfig,
        progress: bool | str = True,
        seed_ids: Sequence[int] | None = None,
    ) -> list[list[Completion]]:
        """Return ``result[i][j]``, the j-th sample for ``prompts[i]``; progress may be a label for the bar.

        Sample j of prompt i draws from ``config.seed``, ``seed_ids[i]`` (default i) and j, so a prompt sampled
        in a share of the call's prompts (another process's, or what a resumed stage has left) keeps its samples.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        seed_ids = list(range(len(prompts))) if seed_ids is None else list(seed_ids)
        if len(seed_ids) != len(prompts):
            raise ValueError(f"{len(seed_ids)} seed ids for {len(prompts)} prompts")
        for i, prompt in enumerate(prompts):
            if prompt != prompt.rstrip(" \t"):
                raise ValueError(f"prompt {i} ends with a space or tab; byte-level BPE samples worse after it")
        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        for i, ids in enumerate(encoded):
            if not ids:
                raise ValueError(f"prompt {i} is empty")
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))  # similar lengths pad less
        shared = shared_prefix_length(encoded)
        longest = max((len(ids) for ids in encoded), default=0)
        batch_size = config.batch_size or auto_batch_size(self.model, longest + 2 * config.max_new_tokens)
        results: dict[tuple[int, int], Completion] = {}
        unfinished = dict.fromkeys(range(len(prompts)), n)
        bar = tqdm(
            total=len(prompts) * n,
            desc=progress if isinstance(progress, str) else "sampling",
            disable=not progress,
            unit="seq",
            dynamic_ncols=True,
        )
        start, start_tokens = time.perf_counter(), self.stats.generated_tokens

        def finish(row: _Row, completion: Completion) -> None:
            """Keep a completion and count its tokens (so a batch rerun after OOM counts nothing twice)."""
            results[row.prompt, row.sample] = completion
            self.stats.generated_tokens += completion.num_tokens
            unfinished[row.prompt] -= 1
            if not unfinished[row.prompt]:
                self.stats.prefill_tokens += len(encoded[row.prompt]) - shared
            bar.update(1)
            elapsed = time.perf_counter() - start
            bar.set_postfix(tok_s=f"{(self.stats.generated_tokens - start_tokens) / elapsed:.0f}")

        try:
            while len(results) < len(prompts) * n:
                queue = [(i, [j for j in range(n) if (i, j) not in results]) for i in order]
                queue = [(i, samples) for i, samples in queue if samples]
                slots = min(batch_size, sum(len(samples) for _, samples in queue))
                try:
                    self._decode(deque(queue), encoded, shared, seed_ids, config, slots, longest, finish)
                except Exception as exc:
                    if not is_out_of_memory(exc) or slots == 1:
                        raise
                    batch_size = max(1, slots // 2)  # unfinished sequences restart in smaller batches
                    if self.model.device.type == "cuda":
                        torch.cuda.empty_cache()
        finally:
            bar.close()
            self.stats.seconds += time.perf_counter() - start
        self.stats.sequences += len(prompts) * n
        self.stats.prefill_tokens += shared
        return [[results[i, j] for j in range(n)] for i in range(len(prompts))]

    @torch.inference_mode()
    def _decode(
        self,
        queue: deque[tuple[int, list[int]]],
        encoded: list[list[int]],
        shared: int,
        seed_ids: list[int],
        config: SamplingConfig,
        slots: int,
        longest: int,
        finish: Callable[[_Row, Completion], None],
    ) -> None:
        """Decode every queued (prompt, samples) in ``slots`` slots, refilling each slot as its sequence ends.

        The first ``shared`` tokens, which every prompt begins with, are prefilled once for all of them.
        """
        device, prompts, total = self.model.device, len(queue), sum(len(samples) for _, samples in queue)
        waiting: deque[PrefilledPrompt] = deque()
        rows: list[_Row | None] = [None] * slots
        tokens = torch.zeros(slots, dtype=torch.long, device=device)
        positions = torch.zeros(slots, dtype=torch.long, device=device)
        logits: torch.Tensor | None = None
        cache: TailCache | None = None
        head = self._run_prompt(torch.tensor([encoded[0][:shared]], device=device))[0] if shared else []

        def admit() -> list[int]:
            """Fill free slots with waiting sequences, prefilling the next prompts when too few wait."""
            nonlocal cache, logits
            free = [k for k, row in enumerate(rows) if row is None]
            short = len(free) - sum(len(p.samples) for p in waiting)
            if short > 0 and queue:
                batch: list[tuple[int, list[int]]] = []
                while queue and short > 0:
                    batch.append(queue.popleft())
                    short -= len(batch[-1][1])
                waiting.extend(self._prefill(batch, encoded, head))
            if cache is None and waiting:
                table = PromptTable(min(slots, prompts), longest, waiting[0])
                joins_later = slots < total  # a sequence that joins later may need columns past the oldest one's
                cache = TailCache(slots, config.max_new_tokens * (2 if joins_later else 1), table)
                logits = waiting[0].logits.new_empty((slots, waiting[0].logits.shape[0]))
            filled = []
            for k in free[: sum(len(p.samples) for p in waiting)]:
                prompt = waiting[0]
                j = prompt.samples.popleft()
                rows[k] = _Row(prompt.prompt, j, self._generator(config.seed, seed_ids[prompt.prompt], j))
                if not prompt.samples:
                    waiting.popleft()
                cache.join(k, prompt)
                logits[k], positions[k] = prompt.logits, prompt.length
                filled.append(k)
            return filled

        choose = admit()
        while True:
            while choose:  # new sequences get their first token before the next forward pass
                index = torch.tensor(choose, device=device)
                picked = self._choose(logits[index].float(), [rows[k] for k in choose], config)
                tokens[index] = picked
                for k, token in zip(choose, picked.tolist(), strict=True):
                    row = rows[k]
                    row.tokens.append(token)
                    completion = self._completion(row, config, len(row.tokens) == config.max_new_tokens)
                    if completion is not None:
                        finish(row, completion)
                        rows[k] = None
                        cache.leave(k)
                choose = admit()
            live = [k for k, row in enumerate(rows) if row is not None]
            if not live:
                return
            if not queue and not waiting and len(live) < SHRINK_BELOW * len(rows):
                index = torch.tensor(live, device=device)
                cache.keep(index, room=config.max_new_tokens - min(len(rows[k].tokens) for k in live))
                rows = [rows[k] for k in live]
                tokens, positions, logits = tokens[index], positions[index], logits[index]
                live = list(range(len(live)))
            cache.open_column(live)
            with decoding_with(self.model):
                out = self.model(
                    input_ids=tokens[:, None], position_ids=positions[:, None], cache=cache, tail_cache=cache
                )
            if cache.step.layers_done != len(cache.layers):
                raise NotImplementedError(
                    f"{type(self.model).__name__} attended in {cache.step.layers_done} of {len(cache.layers)} "
                    "layers through transformers' AttentionInterface; puzzleloop's sampler needs all of them"
                )
            self.stats.decode_steps += 1
            cache.end += 1
            positions += 1
            logits = out.logits[:, -1, :]
            choose = live

    def _run_prompt(
        self,
        ids: torch.Tensor,
        head: list[tuple[torch.Tensor, torch.Tensor]] = (),
        mask: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
    ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
        """Prefill rows of prompt tokens after the KV rows ``head`` (shared by all rows); return each layer's KV
        rows, head included, and the last position's logits."""
        cache = DynamicCache(config=self.model.config)
        for layer, (keys, values) in enumerate(head):
            cache.update(keys.expand(len(ids), -1, -1, -1), values.expand(len(ids), -1, -1, -1), layer)
        out = self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1
        )
        return [(k, v) for k, v, *_ in cache], out.logits[:, -1, :]

    def _prefill(
        self,
        batch: list[tuple[int, list[int]]],
        encoded: list[list[int]],
        head: list[tuple[torch.Tensor, torch.Tensor]],
    ) -> list[PrefilledPrompt]:
        """Run the prompts' tokens after the prefilled ``head``, left-padded, through the model in slices; return
        each prompt's KV rows (head included) and last logits."""
        shared = head[0][0].shape[2] if head else 0
        rests = [encoded[i][shared:] for i, _ in batch]
        device, width = self.model.device, max(len(rest) for rest in rests)
        ids = torch.full((len(rests), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rests), shared + width), dtype=torch.long)
        mask[:, :shared] = 1
        for k, rest in enumerate(rests):
            ids[k, width - len(rest) :] = torch.tensor(rest)
            mask[k, shared + width - len(rest) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)[:, shared:]
        rows_per_forward = max(1, PREFILL_TOKEN_BUDGET // width)
        prefixes = []
        for lo in range(0, len(rests), rows_per_forward):
            part = slice(lo, lo + rows_per_forward)
            layers, logits = self._run_prompt(ids[part], head, mask[part], positions[part])
            for r, (i, samples) in enumerate(batch[part]):
                cut = shared + width - len(rests[lo + r])
                keys = [torch.cat([k[r, :, :shared], k[r, :, cut:]], dim=1) for k, _ in layers]
                values = [torch.cat([v[r, :, :shared], v[r, :, cut:]], dim=1) for _, v in layers]
                prefixes.append(PrefilledPrompt(i, keys, values, logits[r], deque(samples)))
        return prefixes

    @staticmethod
    def _generator(seed: int, prompt: int, sample: int) -> torch.Generator:
        """Each sequence draws from its own stream, so its sample does not depend on how rows are batched."""
        return torch.Generator().manual_seed((seed * 1_000_003 + prompt) * 1_000_003 + sample)

    @staticmethod
    def _choose(logits: torch.Tensor, rows: list[_Row], config: SamplingConfig) -> torch.Tensor:
        """Pick one token per row: argmax at temperature 0, else top-p sampling by inverse CDF in vocabulary order.

        Sorting the whole vocabulary for every row was a quarter of a decode step on CPU; the nucleus is found
        among the top tokens instead (all of them only for rows whose top tokens hold less than top_p).
        """
        if config.temperature == 0:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits / config.temperature, dim=-1)
        if config.top_p < 1:
            probs = _nucleus(probs, config.top_p)
        cdf = probs.cumsum(dim=-1)
        u = torch.stack([torch.rand((), generator=row.generator) for row in rows]).to(logits.device)
        return torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).clamp(max=cdf.shape[1] - 1).squeeze(1)

    def _completion(self, row: _Row, config: SamplingConfig, last: bool) -> Completion | None:
        """The row's completion if it has stopped (function end, stop string, EOS or budget), else None."""
        ended = row.tokens[-1] in self.eos_ids
        tokens = row.tokens[:-1] if ended else row.tokens
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        end = stop_position(text, config.stop_strings, config.functions)
        if end is not None:
            return Completion(text[:end].rstrip(), len(row.tokens), True)
        if ended or last:
            return Completion(text.rstrip(), len(row.tokens), ended)
        return None
