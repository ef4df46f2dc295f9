"""The solver's attempts at the round's proposed and constructed puzzles, a block of puzzles at a time: a puzzle's
own solution (its proposer's answer, a constructed puzzle's input) is judged first, with the puzzle's origin,
then `solve.attempts` samples of the solve prompt, each judged by the sandbox and stored with its verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from puzzleloop.corpus import Attempt, PuzzleRow
from puzzleloop.processes import shared
from puzzleloop.prompts import SolvedExample, solution_from_completion, solve_prompt, tutorial_examples
from puzzleloop.puzzles import parse_puzzle
from puzzleloop.sampling import Sampler, SamplingConfig
from puzzleloop.stages.context import RunContext, StageResult
from puzzleloop.stages.training import model_after


@dataclass
class SolveResult(StageResult):
    STAGE = "solve"
    puzzles: int
    attempts: int
    verified_solutions: int
    verified_puzzles: int
    verified_by_origin: dict[str, int] = field(default_factory=dict)


def run(context: RunContext, round_: int) -> SolveResult:
    config, corpus = context.config, context.corpus
    attempted = corpus.attempted_puzzle_ids(round_)
    todo = [p for p in corpus.puzzles(round=round_) if p.id not in attempted and p.origin != "relabeled"]
    model, tokenizer = context.model(model_after(context, round_ - 1))
    sampler = Sampler(model, tokenizer)
    examples = tutorial_examples(config.p3_dir)
    sampling = SamplingConfig.of(config.solve.sampling, batch_size=config.batch_size, seed=config.seed * 104729)
    step = max(1, config.block_sequences // config.solve.attempts)
    for start in range(0, len(todo), step):
        block = todo[start : start + step]
        label = context.main and f"solve {start + 1}-{start + len(block)}/{len(todo)}"
        work = partial(_judged_attempts, context, sampler, examples, sampling, label)
        attempts = shared([(row.id, row) for row in block], work)  # seeded by puzzle: the same after a resume
        if context.main:
            for row, puzzle_attempts in zip(block, attempts, strict=True):
                corpus.record_attempts(row.id, round_, puzzle_attempts)
    puzzles = [p for p in corpus.puzzles(round=round_) if p.origin != "relabeled"]
    return SolveResult(
        puzzles=len(puzzles),
        attempts=sum(p.attempts for p in puzzles),
        verified_solutions=sum(p.successes for p in puzzles),
        verified_puzzles=sum(1 for p in puzzles if p.successes),
        verified_by_origin=corpus.verified_by_origin(round_),
    )


def _judged_attempts(
    context: RunContext,
    sampler: Sampler,
    examples: list[SolvedExample],
    sampling: SamplingConfig,
    label: str | bool,
    block: list[tuple[int, PuzzleRow]],
) -> list[list[Attempt]]:
    """For each (seed id, puzzle) of a block: its own solution, if it has one, and the solver's attempts, judged."""
    puzzles = [parse_puzzle(row.source, name=f"puzzle {row.id}") for _, row in block]
    prompts = [solve_prompt(p, examples) for p in puzzles]
    completions = sampler.sample(prompts, context.config.solve.attempts, sampling, label, [i for i, _ in block])
    solutions = [
        [(row.solution, row.origin)] * (row.solution is not None)
        + [(solution_from_completion(p, c.text), "proposed") for c in samples]
        for (_, row), p, samples in zip(block, puzzles, completions, strict=True)
    ]
    pairs = [(row.source, s) for (_, row), sols in zip(block, solutions, strict=True) for s, _ in sols]
    verdicts = iter(context.judge().judge(pairs))
    return [[Attempt(s, next(verdicts).status, origin) for s, origin in sols] for sols in solutions]
