"""Shared-prefix attention's parts on plain tensors: the log-sum-exp merge and the prompt table's rows."""

from __future__ import annotations

from collections import deque

import torch

from puzzleloop.decode_cache import PrefilledPrompt, PromptTable, TailCache, _attend, _attend_written_out


def _bias(length: int, attended: int) -> torch.Tensor:
    bias = torch.zeros(length)
    bias[attended:] = float("-inf")
    return bias


def test_parts_merged_by_log_sum_exp_equal_attention_over_the_whole_context() -> None:
    torch.manual_seed(0)
    query, keys, values = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 10, 8), torch.randn(2, 3, 10, 8)
    bias = torch.stack([_bias(10, 10), _bias(10, 7)])[:, None, None, :]  # the second row ends after 7 keys
    whole = torch.nn.functional.scaled_dot_product_attention(query, keys, values, attn_mask=bias, scale=1.0)
    first, second = slice(0, 6), slice(6, 10)
    out_a, lse_a = _attend(query, keys[:, :, first], values[:, :, first], bias[..., first])
    out_b, lse_b = _attend(query, keys[:, :, second], values[:, :, second], bias[..., second])
    lse = torch.logaddexp(lse_a, lse_b)
    merged = out_a * (lse_a - lse).exp() + out_b * (lse_b - lse).exp()
    torch.testing.assert_close(merged, whole)
    for fused, written_out in zip(
        _attend(query, keys, values, bias), _attend_written_out(query, keys, values, bias), strict=True
    ):
        torch.testing.assert_close(fused, written_out)


def _prompt(index: int, length: int) -> PrefilledPrompt:
    rows = [torch.full((2, length, 4), float(index))]  # one layer, 2 kv heads, head dim 4
    return PrefilledPrompt(index, rows, [r + 0.5 for r in rows], torch.zeros(5), deque())


def test_a_released_prompt_row_is_filled_by_the_last_row_and_its_readers_follow() -> None:
    a, b, c = _prompt(0, 3), _prompt(1, 5), _prompt(2, 4)
    table = PromptTable(rows=3, longest=5, like=a)
    cache = TailCache(slots=4, capacity=8, table=table)
    for slot, prompt in enumerate([a, b, c, c]):
        cache.join(slot, prompt)
    assert cache.row == [0, 1, 2, 2] and table.users == [1, 1, 2]
    cache.leave(0)  # a's only sample is done: c's row moves into row 0
    assert table.prompts == [c, b] and cache.row == [None, 1, 0, 0]
    assert torch.equal(table.keys[0][0, :, :4], c.keys[0]) and torch.equal(table.values[0][0, :, :4], c.values[0])
    cache.leave(2)  # c keeps its row while another of its samples decodes
    assert table.prompts == [c, b] and table.users == [1, 1]
    c.samples.append(7)  # one more sample of c waits for a slot, so its row stays after its last reader leaves
    cache.leave(3)
    assert table.prompts == [c, b] and table.users == [0, 1]
    cache.join(0, c)
    assert cache.row[0] == 0 and table.users == [1, 1]
