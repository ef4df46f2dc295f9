"""KV storage and attention for decoding many samples of a few prompts (shared-prefix, or cascade, attention).

A decode step of S sequences over a C-token context is bound by reading keys and values, not by arithmetic, when
every sequence reads its own copy of its prompt's rows: the n samples of a prompt read the same rows n times. Here a
prompt's rows are stored once, in a ``PromptTable`` row, and only each sample's generated tail lives in its slot
of the ``TailCache``. Attention runs in two parts merged by their log-sum-exp (as flash-decoding merges splits):
the queries of all samples of a prompt against its rows in one batched product, and each sample's query against
its own tail. The result equals attention over the concatenated context up to float rounding.

(A third level, the few-shot examples every prompt begins with attended once for all sequences, measured no
faster on CPU: the prompts' product got cheaper by what the extra product and merge cost.)

The model's attention modules call ``shared_prefix_attention`` through transformers' ``AttentionInterface``
while ``decoding_with`` is active; the sampler checks after each step that every layer did.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AttentionInterface, PreTrainedModel
from transformers.cache_utils import Cache, DynamicLayer

ATTENTION_NAME = "puzzleloop_shared_prefix"


@dataclass
class PrefilledPrompt:
    """A prompt after prefill: its KV rows, its next-token logits and its samples that still wait for a slot."""

    prompt: int
    keys: list[torch.Tensor]  # per layer: kv heads x prompt length x head dim
    values: list[torch.Tensor]
    logits: torch.Tensor
    samples: deque[int]

    @property
    def length(self) -> int:
        return self.keys[0].shape[1]


class PromptTable:
    """Rows of prompts with live samples, each stored once: per layer rows x kv heads x longest prompt x dim.

    Rows in use are always rows 0..used-1, so attention reads a view of the table that batched products take
    without a copy: releasing a row moves the last row in use into its place.
    """

    def __init__(self, rows: int, longest: int, like: PrefilledPrompt) -> None:
        def buffer(t: torch.Tensor) -> torch.Tensor:
            return t.new_zeros((rows, t.shape[0], longest, t.shape[2]))

        self.keys = [buffer(k) for k in like.keys]
        self.values = [buffer(v) for v in like.values]
        self.prompts: list[PrefilledPrompt] = []  # row r holds prompts[r]
        self.users: list[int] = []  # live samples reading each row

    def row_for(self, prompt: PrefilledPrompt) -> int:
        """The row holding this prompt, copying its KV rows in if it has none yet; counts one more user."""
        for row, held in enumerate(self.prompts):
            if held is prompt:
                self.users[row] += 1
                return row
        row = len(self.prompts)
        for table, rows in ((self.keys, prompt.keys), (self.values, prompt.values)):
            for buf, layer_rows in zip(table, rows, strict=True):
                buf[row, :, : prompt.length] = layer_rows
        self.prompts.append(prompt)
        self.users.append(1)
        return row

    def release(self, row: int) -> int | None:
        """One user of ``row`` is done. Once none are left and none wait, free the row by moving the last row
        in use into it; return the moved row's old index (its users must now read ``row``), else None."""
        self.users[row] -= 1
        if self.users[row] or self.prompts[row].samples:
            return None
        last = len(self.prompts) - 1
        if row != last:
            for buf in (*self.keys, *self.values):
                buf[row] = buf[last]
            self.prompts[row], self.users[row] = self.prompts[last], self.users[last]
        self.prompts.pop()
        self.users.pop()
        return last if row != last else None

    @property
    def used(self) -> int:
        return len(self.prompts)


class _TailLayer(DynamicLayer):
    """One layer of a ``TailCache``: writes the step's keys at the shared column, returns the live window."""

    def __init__(self, cache: TailCache, index: int) -> None:
        super().__init__()
        self.cache, self.index = cache, index
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cache, window = self.cache, slice(self.cache.lo, self.cache.end + 1)
        keys, values = cache.keys[self.index], cache.values[self.index]
        keys[:, :, cache.end] = key_states[:, :, -1]  # decode steps feed one token per slot
        values[:, :, cache.end] = value_states[:, :, -1]
        return keys[:, :, window], values[:, :, window]

    def get_seq_length(self) -> int:
        return self.cache.end - self.cache.lo


class TailCache(Cache):
    """Generated tokens' KV in buffers of slots x kv heads x capacity x dim, plus the prompt table they extend.

    Every slot's sequence ends at column ``end``; a sequence joins with an empty tail starting there. Attention
    reads columns ``lo`` (the oldest live tail's start) to ``end``; when the columns run out, the live window
    moves back to column 0.
    """

    def __init__(self, slots: int, capacity: int, table: PromptTable) -> None:
        self.table = table
        self.keys = [k.new_zeros((slots, k.shape[1], capacity, k.shape[3])) for k in table.keys]
        self.values = [v.new_zeros((slots, v.shape[1], capacity, v.shape[3])) for v in table.values]
        device = table.keys[0].device
        self.mask = torch.zeros((slots, capacity), dtype=torch.bool, device=device)
        self.start = [0] * slots
        self.row: list[int | None] = [None] * slots  # each slot's prompt-table row, None while it is free
        self.lo = self.end = 0
        self.step: _Step | None = None
        super().__init__(layers=[_TailLayer(self, i) for i in range(len(self.keys))])

    def join(self, slot: int, prompt: PrefilledPrompt) -> None:
        """Start a sample of ``prompt`` in ``slot``: it reads the prompt's table row and an empty tail."""
        self.row[slot] = self.table.row_for(prompt)
        self.mask[slot] = False
        self.start[slot] = self.end

    def leave(self, slot: int) -> None:
        """The slot's sample is done; its prompt row is released and the slot reads no prompt until it rejoins."""
        moved = self.table.release(self.row[slot])
        if moved is not None:
            self.row = [self.row[slot] if r == moved else r for r in self.row]
        self.row[slot] = None

    def open_column(self, live: list[int]) -> None:
        """Make room for one more column, mark it attended, and lay out this step's attention."""
        self.lo = min(self.start[k] for k in live)
        if self.end == self.mask.shape[1]:
            width = self.end - self.lo
            for buf in (*self.keys, *self.values):
                buf[:, :, :width] = buf[:, :, self.lo : self.end].clone()
            self.mask[:, :width] = self.mask[:, self.lo : self.end].clone()
            self.start = [s - self.lo for s in self.start]
            self.lo, self.end = 0, width
        self.mask[:, self.end] = True
        self.step = _Step.of(self, live)

    def keep(self, slots: torch.Tensor, room: int) -> None:
        """Keep only these slots, in this order, once no sequence will join: copy just their live window into
        buffers with ``room`` columns after it, as many as the longest of them may still decode."""
        width = self.end - self.lo

        def kept(buf: torch.Tensor) -> torch.Tensor:
            new = buf.new_zeros((len(slots), buf.shape[1], width + room, buf.shape[3]))
            new[:, :, :width] = buf[slots, :, self.lo : self.end]
            return new

        self.keys = [kept(buf) for buf in self.keys]
        self.values = [kept(buf) for buf in self.values]
        mask = self.mask.new_zeros((len(slots), width + room))
        mask[:, :width] = self.mask[slots, self.lo : self.end]
        self.mask = mask
        self.start = [self.start[k] - self.lo for k in slots.tolist()]
        self.row = [self.row[k] for k in slots.tolist()]
        self.lo, self.end = 0, width


@dataclass
class _Step:
    """One decode step's layout, shared by all layers: which slots read which prompt row, and the masks.

    Live slots are laid out row by row, ``width`` places per row (the most samples any row has), so one batched
    product covers every prompt's samples: place p holds slot ``queries[p]`` (an arbitrary slot where a row has
    fewer samples), and slot k reads its result at place ``results[k]`` (dead slots read place 0 and drop it
    through ``dead_bias``).
    """

    queries: torch.Tensor
    results: torch.Tensor
    width: int
    prompt_bias: torch.Tensor  # rows x 1 x 1 x longest live prompt: 0 inside the prompt, -inf after it
    tail_bias: torch.Tensor  # slots x 1 x 1 x window: 0 where the slot's tail is, -inf elsewhere
    dead_bias: torch.Tensor  # slots x 1 x 1 x 1: 0 for live slots, -inf for free ones
    layers_done: int = 0

    @classmethod
    def of(cls, cache: TailCache, live: list[int]) -> _Step:
        table, device, slots = cache.table, cache.mask.device, cache.mask.shape[0]
        members: list[list[int]] = [[] for _ in range(table.used)]
        for k in live:
            members[cache.row[k]].append(k)
        width = max(len(m) for m in members)
        queries, results = [], [0] * slots
        for row, slots_of_row in enumerate(members):
            for place, k in enumerate(slots_of_row):
                results[k] = row * width + place
            queries += slots_of_row + [live[0]] * (width - len(slots_of_row))
        lengths = torch.tensor([prompt.length for prompt in table.prompts], device=device)
        inside = torch.arange(int(lengths.max()), device=device) < lengths[:, None]
        alive = torch.zeros(slots, dtype=torch.bool, device=device)
        alive[live] = True
        return cls(
            queries=torch.tensor(queries, device=device),
            results=torch.tensor(results, device=device),
            width=width,
            prompt_bias=_bias(inside)[:, None, None, :],
            tail_bias=_bias(cache.mask[:, cache.lo : cache.end + 1])[:, None, None, :],
            dead_bias=_bias(alive)[:, None, None, None],
        )


def _bias(attend: torch.Tensor) -> torch.Tensor:
    return torch.zeros(attend.shape, device=attend.device).masked_fill(~attend, float("-inf"))


def _attend(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor):
    """Attention of (already scaled) queries to keys: the output and the log-sum-exp of the scores, in float32.

    On CPU this is torch's fused flash kernel, which returns the log-sum-exp that ``scaled_dot_product_attention``
    drops; elsewhere the same computation written out.
    """
    if query.device.type != "cpu":
        return _attend_written_out(query, keys, values, bias)
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        query, keys, values, attn_mask=bias.to(query.dtype), scale=1.0
    )
    return out.float(), lse[..., None]


def _attend_written_out(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor):
    scores = (query @ keys.transpose(-1, -2)).float()
    scores += bias
    peak = scores.amax(dim=-1, keepdim=True)
    weights = scores.sub_(peak).exp_()
    total = weights.sum(dim=-1, keepdim=True)
    return (weights.to(values.dtype) @ values).float() / total, peak + total.log()


def shared_prefix_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """One decode step of one layer: each slot attends to its prompt's table row and to its own tail.

    ``query`` is slots x heads x 1 x dim; ``key``/``value`` are the tail window ``TailLayer.update`` returned.
    """
    cache: TailCache = kwargs["tail_cache"]
    for unsupported in ("softcap", "s_aux"):
        if kwargs.get(unsupported) is not None:
            raise NotImplementedError(f"puzzleloop's sampler does not support attention with {unsupported}")
    step, table, layer = cache.step, cache.table, module.layer_idx
    slots, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    window = kwargs.get("sliding_window")
    if window is not None and window < step.prompt_bias.shape[-1] + key.shape[2]:
        raise NotImplementedError(f"puzzleloop's sampler does not support contexts beyond the sliding window {window}")
    scaling = dim**-0.5 if scaling is None else scaling
    grouped = (query * scaling).view(slots, kv_heads, heads // kv_heads, dim)  # head h reads kv head h // group

    tail_out, tail_lse = _attend(grouped, key, value, step.tail_bias)

    rows, length = table.used, step.prompt_bias.shape[-1]
    placed = grouped.index_select(0, step.queries).view(rows, step.width, kv_heads, -1, dim).transpose(1, 2)
    keys, values = table.keys[layer][:rows, :, :length], table.values[layer][:rows, :, :length]
    prompt_out, prompt_lse = _attend(placed.reshape(rows, kv_heads, -1, dim), keys, values, step.prompt_bias)

    def unplace(t: torch.Tensor) -> torch.Tensor:
        """rows x kv heads x (width x group) x n back to slots x kv heads x group x n."""
        t = t.view(rows, kv_heads, step.width, -1, t.shape[-1]).transpose(1, 2)
        return t.reshape(rows * step.width, kv_heads, -1, t.shape[-1]).index_select(0, step.results)

    prompt_out, prompt_lse = unplace(prompt_out), unplace(prompt_lse) + step.dead_bias

    lse = torch.logaddexp(tail_lse, prompt_lse)
    out = tail_out * (tail_lse - lse).exp() + prompt_out * (prompt_lse - lse).exp()
    step.layers_done += 1
    return out.to(query.dtype).reshape(slots, 1, heads, dim), None


AttentionInterface.register(ATTENTION_NAME, shared_prefix_attention)


@contextmanager
def decoding_with(model: PreTrainedModel) -> Iterator[None]:
    """Route the model's attention through ``shared_prefix_attention`` for one decode step, then restore it."""
    before = model.config._attn_implementation
    model.config._attn_implementation = ATTENTION_NAME
    try:
        yield
    finally:
        model.config._attn_implementation = before
