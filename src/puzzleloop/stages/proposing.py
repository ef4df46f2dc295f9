"""The model writes puzzles: few-shot prompts of seed puzzles (or, in abduction mode, of programs with inputs),
each sampled `samples_per_prompt` times, appended to proposals.jsonl a block of prompts at a time."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from functools import partial
from typing import Any

from puzzleloop.construct import abduction_prompt, answer_openings, program_examples
from puzzleloop.files import append_jsonl, read_jsonl_objects, write_jsonl_atomic
from puzzleloop.processes import shared
from puzzleloop.prompts import ProposePrompt, propose_prompt
from puzzleloop.sampling import Completion, Sampler, SamplingConfig
from puzzleloop.stages.context import RunContext, StageResult
from puzzleloop.stages.seeding import seed_examples
from puzzleloop.stages.training import model_after


@dataclass
class ProposeResult(StageResult):
    STAGE = "propose"
    proposed: int
    proposer: str


def proposer(context: RunContext, round_: int) -> str:
    """The model that proposes in `round_`: the last round's, or the start model with `propose.model: base`."""
    config = context.config
    return config.model_name_or_path if config.propose.model == "base" else model_after(context, round_ - 1)


def propose_prompts(context: RunContext, round_: int) -> list[ProposePrompt]:
    """The round's prompts, drawn from the run's seed (the same on every process and after a resume)."""
    cfg = context.config.propose
    rng = random.Random(f"{context.config.seed}-propose-{round_}")
    seeds = seed_examples(cfg.seeds, context.config.p3_dir)
    if cfg.mode == "abduction":
        examples = program_examples(seeds, context.judge())
        openings = answer_openings(seeds) if cfg.answer_types == "seeds" else []
        return [abduction_prompt(examples, cfg.shots, rng, openings) for _ in range(cfg.prompts)]
    return [propose_prompt(seeds, cfg.shots, rng, cfg.with_solution) for _ in range(cfg.prompts)]


def run(context: RunContext, round_: int) -> ProposeResult:
    cfg = context.config.propose
    path = context.layout.proposals(round_)
    rows = read_jsonl_objects(path, torn_tail=True)
    per_prompt = Counter(row["prompt"] for row in rows)
    done = {i for i, count in per_prompt.items() if count == cfg.samples_per_prompt}
    if context.main:
        write_jsonl_atomic(path, [row for row in rows if row["prompt"] in done])  # drop what a kill left half-done
    prompts = propose_prompts(context, round_)
    model, tokenizer = context.model(proposer(context, round_))
    sampler = Sampler(model, tokenizer)
    block = max(1, context.config.block_sequences // cfg.samples_per_prompt)
    for start in range(0, len(prompts), block):
        pending = [i for i in range(start, min(start + block, len(prompts))) if i not in done]
        if not pending:
            continue
        sampling = SamplingConfig.of(
            cfg.sampling,
            batch_size=context.config.batch_size,
            seed=context.config.seed * 7919 + round_ * 131 + start,
            functions=2 if cfg.with_solution or cfg.mode == "abduction" else 1,
        )
        label = context.main and f"propose {start + 1}-{pending[-1] + 1}/{len(prompts)}"
        share = partial(_sample_seeded, sampler, cfg.samples_per_prompt, sampling, label)
        completions = shared([(i - start, prompts[i].text) for i in pending], share)
        if not context.main:
            continue
        append_jsonl(
            path,
            [
                {
                    "prompt": i,
                    "sample": j,
                    "seeds": list(prompts[i].seeds),
                    "next_name": prompts[i].next_name,
                    "opening": prompts[i].opening,
                    "completion": c.text,
                    "tokens": c.num_tokens,
                }
                for i, samples in zip(pending, completions, strict=True)
                for j, c in enumerate(samples)
            ],
        )
    return ProposeResult(proposed=len(prompts) * cfg.samples_per_prompt, proposer=proposer(context, round_))


def proposal_rows(context: RunContext, round_: int) -> list[dict[str, Any]]:
    """The round's proposals, each with the name and the opening its prompt left open, `def <next_name>(<opening>`.

    Rows written before the name was stored get it from their prompt, rebuilt from the run's seed; rows written
    before openings existed had none, so they need no rebuild for it."""
    rows = [{"opening": ""} | row for row in read_jsonl_objects(context.layout.proposals(round_))]
    if any("next_name" not in row for row in rows):
        prompts = propose_prompts(context, round_)
        rows = [{"next_name": prompts[row["prompt"]].next_name} | row for row in rows]
    return rows


def _sample_seeded(
    sampler: Sampler, n: int, sampling: SamplingConfig, label: str | bool, prompts: list[tuple[int, str]]
) -> list[list[Completion]]:
    """n samples of each (seed id, prompt)."""
    return sampler.sample([text for _, text in prompts], n, sampling, label, [i for i, _ in prompts])
