"""The solver's attempts at the round's proposed and constructed puzzles, a block of puzzles at a time: a puzzle's
own solution (its proposer's answer, a constructed puzzle's input) is judged first, with the puzzle's origin,
then `solve.attempts` samples of the solve prompt, each judged by the sandbox and stored with its verdict (with
`solve.relabel_seeds`, the seed puzzles of target form are attempted again each round, for relabeling)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from puzzleloop.construct import target_form
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
    todo = [p for p in puzzles_to_solve(context, round_) if p.id not in attempted]
    model, tokenizer = context.model(model_after(context, round_ - 1))
    sampler = Sampler(model, tokenizer)
    examples = tutorial_examples(config.p3_dir)
    sampling = SamplingConfig.of(config.solve.sampling, batch_size=config.batch_size, seed=config.seed * 104729)
    step = max(1, config.block_sequences // config.solve.attempts)
    for start in range(0, len(todo), step):
        block = todo[start : start + step]
        label = context.main and f"solve {start + 1}-{start + len(block)}/{len(todo)}"
        work = partial(_judged_attempts, context, sampler, examples, sampling, label)
        attempts = shared([(_sample_key(row, round_), row) for row in block], work)  # the same after a resume
        if context.main:
            for row, puzzle_attempts in zip(block, attempts, strict=True):
                corpus.record_attempts(row.id, round_, puzzle_attempts)
    statuses = [  # this round's verdicts only: a seed puzzle also holds its reference and earlier rounds' attempts
        [s.status for s in corpus.solutions(p.id) if s.round == round_] for p in puzzles_to_solve(context, round_)
    ]
    return SolveResult(
        puzzles=len(statuses),
        attempts=sum(map(len, statuses)),
        verified_solutions=sum(s.count("verified") for s in statuses),
        verified_puzzles=sum("verified" in s for s in statuses),
        verified_by_origin=corpus.verified_by_origin(round_),
    )


def puzzles_to_solve(context: RunContext, round_: int) -> list[PuzzleRow]:
    """The round's proposed and constructed puzzles, and with `solve.relabel_seeds` the seed puzzles of target
    form: CodeIt relabels its training tasks too, so the solver's wrong answers to real puzzles, over the seeds'
    answer types, become pairs of its own code rather than only of the int programs the proposer favours."""
    puzzles = [p for p in context.corpus.puzzles(round=round_) if p.origin != "relabeled"]
    if context.config.solve.relabel_seeds and round_ > 0:
        seeds = context.corpus.puzzles(round=0)
        puzzles += [p for p in seeds if p.origin == "seed" and target_form(p.source) is not None]
    return puzzles


def _sample_key(row: PuzzleRow, round_: int) -> int:
    """The sampler's seed for a puzzle's attempts: its id, and for a seed puzzle attempted again each round the
    round too, so every round draws new answers to it."""
    return row.id if row.round == round_ else row.id * 1_000_003 + round_


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
