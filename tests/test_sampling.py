"""Sampler tests on the tiny random model: stop rules, determinism, batching, and a reference decoder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tests.helpers import needs_p3

from puzzleloop.data import BESIDE_CHECKOUT
from puzzleloop.models import load_model
from puzzleloop.sampling import (
    Completion,
    Sampler,
    SamplingConfig,
    cut_at_function_end,
    shared_prefix_length,
    stop_position,
)

P3_PUZZLES = BESIDE_CHECKOUT / "puzzles.json"
HAND_PROMPTS = [
    "def f(x: int):\n    return x == 3\n\ndef g():",
    "from typing import List\n\ndef f(li: List[int], n=4):\n    return len(li) == n\n\ndef g(n=4):",
    "def f(s: str):\n    return s.count('a') == 2\n\ndef g():",
]


def _prompts(count: int, offset: int = 520) -> list[str]:
    """Puzzle-shaped prompts: P3 sat sources renamed to f, then an open ``def g():``."""
    if not P3_PUZZLES.is_file():
        return (HAND_PROMPTS * count)[:count]
    puzzles = json.loads(P3_PUZZLES.read_text())[offset : offset + count]
    return [p["sat"].replace("def sat(", "def f(", 1).rstrip() + "\n\ndef g():" for p in puzzles]


@pytest.fixture(scope="module")
def sampler(tiny_model_dir: Path) -> Iterator[Sampler]:
    model, tokenizer = load_model(str(tiny_model_dir), device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small runs faster on one thread, much faster on a busy machine
    yield Sampler(model, tokenizer)
    torch.set_num_threads(threads)


def _texts(result: list[list[Completion]]) -> list[list[str]]:
    return [[c.text for c in row] for row in result]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\n    return 3\n\nassert f(g())\n", "\n    return 3"),
        (" x: int):\n    return x > 2\ndef f8(", " x: int):\n    return x > 2"),
        ("\n    return 3\n   \n\t\n    ", "\n    return 3"),
        ("\n    s = 'a'\n\n    return s * 2\n#c", "\n    s = 'a'\n\n    return s * 2"),
        ("\nreturn 1", ""),
        ("", ""),
    ],
)
def test_cut_at_function_end(text: str, expected: str) -> None:
    assert cut_at_function_end(text) == expected


def test_stop_position_takes_the_earliest_stop() -> None:
    assert stop_position("\n    return 1\n    # END\nx") == len("\n    return 1\n    # END")
    assert stop_position("\n    return 1\n    # END\nx", ("# END",)) == len("\n    return 1\n    ")
    assert stop_position("\n    return 1\n    ", ("# END",)) is None  # a function end needs the next line's start
    assert stop_position("abc", ("",)) is None


def test_stop_position_can_let_a_completion_write_one_more_function() -> None:
    text = "x: int):\n    return x\n\ndef g():\n    return 1\n\nassert f(g())"
    assert stop_position(text) == text.index("\ndef g")
    assert stop_position(text, functions=2) == text.index("\n\nassert") + 1
    assert stop_position(text[: text.index("\n\nassert")], functions=2) is None  # g may go on


def _reference(sampler: Sampler, prompt: str, config: SamplingConfig) -> tuple[Completion, str]:
    """Greedy completion by HF ``generate`` at full length, cut afterwards; also say why it stopped."""
    tok, model = sampler.tokenizer, sampler.model
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**ids, max_new_tokens=config.max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)[
        0, ids.input_ids.shape[1] :
    ].tolist()
    for k in range(1, len(out) + 1):
        if out[k - 1] in sampler.eos_ids:
            return Completion(tok.decode(out[: k - 1], skip_special_tokens=True).rstrip(), k, True), "eos"
        text = tok.decode(out[:k], skip_special_tokens=True)
        end = stop_position(text, config.stop_strings)
        if end is not None:
            reason = "function end" if end == stop_position(text) else "stop string"
            return Completion(text[:end].rstrip(), k, True), reason
    return Completion(tok.decode(out, skip_special_tokens=True).rstrip(), len(out), False), "budget"


@needs_p3
def test_greedy_matches_reference_decoder_and_stops_early(sampler: Sampler) -> None:
    """Batched, one-at-a-time and HF generate agree under greedy decoding, stops included."""
    prompts = _prompts(6, offset=525)  # the tiny model's greedy text hits every kind of stop on these
    config = SamplingConfig(temperature=0.0, max_new_tokens=64, stop_strings=("])",))
    references = [_reference(sampler, p, config) for p in prompts]
    reasons = {reason for _, reason in references}
    assert {"function end", "stop string", "budget"} <= reasons, f"test prompts no longer cover {reasons}"
    expected = [[ref] for ref, _ in references]
    assert sampler.sample(prompts, 1, config, progress=False) == expected
    one_at_a_time = SamplingConfig(**{**config.__dict__, "batch_size": 1})
    assert sampler.sample(prompts, 1, one_at_a_time, progress=False) == expected
    shared = SamplingConfig(**{**config.__dict__, "batch_size": 4})  # samples share prompt rows that then move
    assert sampler.sample(prompts, 3, shared, progress=False) == [row * 3 for row in expected]


def test_samples_share_their_prompt_and_prompts_their_common_start(sampler: Sampler) -> None:
    """A prompt is prefilled once for all its samples, and the tokens all prompts begin with once for all."""
    example = "def f1(s: str):\n    return s == 'a'\n\ndef g1():\n    return 'a'\n\nassert f1(g1())\n\n"
    prompts = [example + prompt for prompt in _prompts(3)]
    encoded = [sampler.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    shared = shared_prefix_length(encoded)
    assert shared >= len(sampler.tokenizer(example, add_special_tokens=False)["input_ids"]) - 1
    before = sampler.stats.prefill_tokens
    result = sampler.sample(prompts, 5, SamplingConfig(temperature=1.0, max_new_tokens=8), progress=False)
    assert [len(row) for row in result] == [5, 5, 5]
    assert sampler.stats.prefill_tokens - before == sum(len(ids) for ids in encoded) - 2 * shared
    alone = [
        sampler.sample([p], 5, SamplingConfig(temperature=0.0, max_new_tokens=8), progress=False)[0] for p in prompts
    ]
    together = sampler.sample(prompts, 5, SamplingConfig(temperature=0.0, max_new_tokens=8), progress=False)
    assert together == alone


def test_shared_prefix_leaves_each_prompt_a_token() -> None:
    assert shared_prefix_length([[1, 2, 3], [1, 2, 4, 5]]) == 2
    assert shared_prefix_length([[1, 2], [1, 2, 3]]) == 1  # the shorter prompt keeps its last token
    assert shared_prefix_length([[1, 2, 3]]) == 0
    assert shared_prefix_length([[1], [2]]) == 0


def test_seeded_determinism_independent_of_batching(sampler: Sampler) -> None:
    prompts = _prompts(4)
    config = SamplingConfig(temperature=1.0, max_new_tokens=12, seed=7)
    first = _texts(sampler.sample(prompts, 3, config, progress=False))
    assert _texts(sampler.sample(prompts, 3, config, progress=False)) == first
    small_batches = SamplingConfig(**{**config.__dict__, "batch_size": 5})
    assert _texts(sampler.sample(prompts, 3, small_batches, progress=False)) == first
    other_seed = SamplingConfig(**{**config.__dict__, "seed": 8})
    assert _texts(sampler.sample(prompts, 3, other_seed, progress=False)) != first
    assert len({text for row in first for text in row}) > 1, "samples of one prompt should differ"


@needs_p3
def test_sequences_stop_as_soon_as_the_function_ends(sampler: Sampler) -> None:
    """Rerun each stopped sample with one token less: it must then be unfinished, with the budget used."""
    prompts = _prompts(6)
    config = SamplingConfig(temperature=3.0, max_new_tokens=32, seed=1)
    result = sampler.sample(prompts, 4, config, progress=False)
    stopped = [(i, j, c) for i, row in enumerate(result) for j, c in enumerate(row) if c.finished]
    assert len(stopped) >= 3, "expected some samples to stop early at this temperature"
    for i, j, completion in stopped[:3]:
        assert completion.num_tokens < config.max_new_tokens
        assert stop_position(completion.text) is None
        if completion.num_tokens == 1:
            continue
        shorter = SamplingConfig(**{**config.__dict__, "max_new_tokens": completion.num_tokens - 1})
        again = sampler.sample(prompts, 4, shorter, progress=False)[i][j]
        assert not again.finished and again.num_tokens == completion.num_tokens - 1


@needs_p3
def test_finished_slots_are_refilled(sampler: Sampler) -> None:
    """With fewer slots than sequences, a slot takes the next sequence as soon as its own one ends."""
    prompts = _prompts(3)
    config = SamplingConfig(max_new_tokens=24, seed=1, batch_size=4, stop_strings=("e",))  # lengths 1 to 24
    before = sampler.stats.decode_steps
    result = sampler.sample(prompts, 4, config, progress=False)
    steps = sampler.stats.decode_steps - before
    order = sorted(range(len(prompts)), key=lambda i: len(sampler.tokenizer(prompts[i])["input_ids"]))
    lengths = [result[i][j].num_tokens for i in order for j in range(4)]
    free_at = [0] * 4  # each slot takes the next sequence once its own has decoded its tokens after the first
    for length in lengths:  # (the first token of each sequence comes from its prefill)
        slot = free_at.index(min(free_at))
        free_at[slot] += length - 1
    chunked = sum(max(lengths[c : c + 4]) - 1 for c in range(0, len(lengths), 4))  # batches decoded until empty
    assert steps == max(free_at) < chunked, f"{steps} decode steps, {chunked} without refilling: {lengths}"
    one_at_a_time = SamplingConfig(**{**config.__dict__, "batch_size": 1})
    assert sampler.sample(prompts, 4, one_at_a_time, progress=False) == result


def test_tiny_top_p_is_greedy(sampler: Sampler) -> None:
    prompts = _prompts(3)
    greedy = sampler.sample(prompts, 1, SamplingConfig(temperature=0.0, max_new_tokens=16), progress=False)
    nucleus = SamplingConfig(temperature=1.0, top_p=1e-6, max_new_tokens=16)
    assert sampler.sample(prompts, 2, nucleus, progress=False) == [row * 2 for row in greedy]


def test_stats_count_every_generated_token(sampler: Sampler) -> None:
    before = sampler.stats.generated_tokens
    result = sampler.sample(_prompts(2), 3, SamplingConfig(max_new_tokens=12), progress="test")
    assert sampler.stats.generated_tokens - before == sum(c.num_tokens for row in result for c in row)
    assert all(1 <= c.num_tokens <= 12 for row in result for c in row)


def test_out_of_memory_backs_off_to_a_smaller_batch(sampler: Sampler) -> None:
    """A batch over 2 rows raises OOM (as a full GPU would); sampling halves the batch and finishes."""

    def limit(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        if kwargs["input_ids"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    prompts = _prompts(2)
    config = SamplingConfig(temperature=0.0, max_new_tokens=10, batch_size=8)
    handle = sampler.model.register_forward_pre_hook(limit, with_kwargs=True)
    before = sampler.stats.generated_tokens
    try:
        backed_off = sampler.sample(prompts, 3, config, progress=False)
    finally:
        handle.remove()
    assert sampler.stats.generated_tokens - before == sum(c.num_tokens for row in backed_off for c in row)
    assert backed_off == sampler.sample(prompts, 3, config, progress=False)


@pytest.mark.parametrize("kwargs", [{"temperature": -1.0}, {"top_p": 0.0}, {"max_new_tokens": 0}, {"batch_size": 0}])
def test_config_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SamplingConfig(**kwargs)


def test_bad_prompts_are_named(sampler: Sampler) -> None:
    with pytest.raises(ValueError, match="prompt 1 ends with a space"):
        sampler.sample(["def g():", "def g(): "], 1, SamplingConfig(), progress=False)
    with pytest.raises(ValueError, match="prompt 0 is empty"):
        sampler.sample([""], 1, SamplingConfig(), progress=False)
    with pytest.raises(ValueError, match="n must be"):
        sampler.sample(["def g():"], 0, SamplingConfig(), progress=False)
