"""The solver's attempts at the round's proposed and constructed puzzles, a block of puzzles at a time: a puzzle's
own solution (its proposer's answer, a constructed puzzle's input) is judged first, with the puzzle's origin,
then `solve.attempts` samples of the solve prompt, each judged by the sandbox and stored with its verdict (with
`solve.relabel_seeds`, the seed puzzles of target form are attempted again each round, for relabeling). With
`solve.more_attempts`, puzzles whose first attempts came close get that many more: attempts spent where they
teach, and more wrong answers of target-form puzzles to relabel."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from puzzleloop.construct import target_form
from puzzleloop.corpus import Attempt, PuzzleRow, SolutionRow
from puzzleloop.processes import shared, wait_for_everyone
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
    came_close: int = 0  # puzzles given `solve.more_attempts` (a wrong but well-typed answer, none verified)


def run(context: RunContext, round_: int) -> SolveResult:
    config, corpus = context.config, context.corpus
    puzzles = puzzles_to_solve(context, round_)
    attempted = corpus.attempted_puzzle_ids(round_)
    model, tokenizer = context.model(model_after(context, round_ - 1))
    solver = _Solver(context, Sampler(model, tokenizer), tutorial_examples(config.p3_dir), round_)
    solver.attempt([p for p in puzzles if p.id not in attempted], config.solve.attempts, 0)
    wait_for_everyone()  # the main process has stored the first pass: every process picks the same puzzles from it
    tries = _this_round(context, puzzles, round_)
    close = [p for p in puzzles if _came_close(tries[p.id], _first_pass(context, p))]
    if config.solve.more_attempts:  # those whose extra attempts are stored already (a resumed stage) are skipped
        todo = [p for p in close if len(tries[p.id]) == _first_pass(context, p)]
        solver.attempt(todo, config.solve.more_attempts, 1)
        tries = _this_round(context, puzzles, round_)
    statuses = [[s.status for s in tries[p.id]] for p in puzzles]
    return SolveResult(
        puzzles=len(statuses),
        attempts=sum(map(len, statuses)),
        verified_solutions=sum(s.count("verified") for s in statuses),
        verified_puzzles=sum("verified" in s for s in statuses),
        verified_by_origin=corpus.verified_by_origin(round_),
        came_close=len(close),
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


def _this_round(context: RunContext, puzzles: list[PuzzleRow], round_: int) -> dict[int, list[SolutionRow]]:
    """Each puzzle's solutions stored in this round (a seed puzzle also holds its reference and earlier rounds')."""
    return {p.id: [s for s in context.corpus.solutions(p.id) if s.round == round_] for p in puzzles}


def _came_close(tries: list[SolutionRow], first_pass: int) -> bool:
    """Whether a puzzle earns `solve.more_attempts`: this round's first attempts gave a wrong but well-typed answer
    and no verified one (a puzzle the solver already solves, or only answers with errors, teaches less)."""
    statuses = {s.status for s in tries if s.attempt < first_pass and s.origin == "proposed"}
    return "wrong" in statuses and "verified" not in statuses


def _first_pass(context: RunContext, puzzle: PuzzleRow) -> int:
    """How many solutions the first pass stores for a puzzle: its own, if it has one, and `solve.attempts`."""
    return context.config.solve.attempts + (puzzle.solution is not None)


class _Solver:
    """Samples and judges attempts at puzzles, a block at a time, and stores them after each block (the resume
    granularity). Pass 0 also judges each puzzle's own solution first, with the puzzle's origin; pass 1 (the extra
    attempts) draws from another sampling seed, so its answers are new."""

    def __init__(self, context: RunContext, sampler: Sampler, examples: list[SolvedExample], round_: int) -> None:
        self.context, self.sampler, self.examples, self.round = context, sampler, examples, round_

    def attempt(self, rows: list[PuzzleRow], attempts: int, pass_: int) -> None:
        config, corpus = self.context.config, self.context.corpus
        seed = config.seed * 104729 + pass_
        sampling = SamplingConfig.of(config.solve.sampling, batch_size=config.batch_size, seed=seed)
        step = max(1, config.block_sequences // attempts)
        name = "solve" if pass_ == 0 else "solve more"
        for start in range(0, len(rows), step):
            block = rows[start : start + step]
            label = self.context.main and f"{name} {start + 1}-{start + len(block)}/{len(rows)}"
            work = partial(self._judged_attempts, sampling, attempts, pass_ == 0, label)
            results = shared([(_sample_key(row, self.round), row) for row in block], work)  # the same after a resume
            if self.context.main:
                for row, puzzle_attempts in zip(block, results, strict=True):
                    first = _first_pass(self.context, row) if pass_ else 0
                    corpus.record_attempts(row.id, self.round, puzzle_attempts, first_attempt=first)

    def _judged_attempts(
        self,
        sampling: SamplingConfig,
        attempts: int,
        own_solution: bool,
        label: str | bool,
        block: list[tuple[int, PuzzleRow]],
    ) -> list[list[Attempt]]:
        """For each (seed id, puzzle) of a block: its own solution (if asked and it has one), and `attempts` of
        the solver, judged."""
        puzzles = [parse_puzzle(row.source, name=f"puzzle {row.id}") for _, row in block]
        prompts = [solve_prompt(p, self.examples) for p in puzzles]
        completions = self.sampler.sample(prompts, attempts, sampling, label, [i for i, _ in block])
        solutions = [
            [(row.solution, row.origin)] * (own_solution and row.solution is not None)
            + [(solution_from_completion(p, c.text), "proposed") for c in samples]
            for (_, row), p, samples in zip(block, puzzles, completions, strict=True)
        ]
        pairs = [(row.source, s) for (_, row), sols in zip(block, solutions, strict=True) for s, _ in sols]
        verdicts = iter(self.context.judge().judge(pairs))
        return [[Attempt(s, next(verdicts).status, origin) for s, origin in sols] for sols in solutions]
