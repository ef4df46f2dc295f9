"""Hindsight relabeling: a wrong answer to a puzzle of target form becomes the verified solution of the same
program with the target the answer actually gives, recomputed by every judge; the solver's code is its solution
(its value, as a literal, when the code reads the target). Such puzzles pass the same filters as constructed
ones, and at most `solve.relabel_per_puzzle` are kept per puzzle they came from (the round's own puzzles, and
with `solve.relabel_seeds` the seed puzzles of target form)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from puzzleloop.construct import TargetForm, agreed_outputs, output_proposal, target_form
from puzzleloop.corpus import Attempt, PuzzleRow
from puzzleloop.filters import FilterResult, Proposal
from puzzleloop.stages.context import RunContext, StageResult
from puzzleloop.stages.filtering import contamination_check, filtered, store_puzzles
from puzzleloop.stages.solving import puzzles_to_solve


@dataclass
class RelabelResult(StageResult):
    STAGE = "relabel"
    relabeled: int
    wrong_answers: int = 0
    funnel: dict[str, int] = field(default_factory=dict)
    over_cap: int = 0  # relabeled puzzles past the per-puzzle cap
    contamination: dict[str, Any] | None = None


def run(context: RunContext, round_: int) -> RelabelResult:
    corpus, cap = context.corpus, context.config.solve.relabel_per_puzzle
    if not cap:
        return RelabelResult(relabeled=0)
    proposals: list[Proposal] = []
    wrong: list[tuple[PuzzleRow, TargetForm, str]] = []
    for puzzle in puzzles_to_solve(context, round_):
        form = target_form(puzzle.source)
        if form is None:
            continue
        solutions = corpus.solutions(puzzle.id)
        answers = dict.fromkeys(s.source for s in solutions if s.status == "wrong" and s.round == round_)
        wrong += [(puzzle, form, answer) for answer in list(answers)[: 2 * cap]]
    outputs = agreed_outputs(context.judges(), [(form.program, answer) for _, form, answer in wrong])
    removed: Counter = Counter()
    sources: dict[str, int] = {}  # relabeled puzzle source -> the puzzle it came from
    for (puzzle, form, answer), output in zip(wrong, outputs, strict=True):
        seeds = (f"relabeled:{puzzle.id}",)
        limit = context.config.filter.max_target_chars
        proposal = output_proposal(output, form.program, form.param, seeds, limit, solver_code=answer)
        if isinstance(proposal, str):
            removed[proposal] += 1
            continue
        sources[proposal.source] = puzzle.id
        proposals.append(proposal)
    result = filtered(context, round_, proposals, removed, "relabeled")
    per_source: Counter = Counter()
    capped = FilterResult(removed=result.removed, nearest_heldout=result.nearest_heldout)
    for row in result.kept:
        per_source[sources[row[0].source]] += 1
        if per_source[sources[row[0].source]] <= cap:
            capped.kept.append(row)
    store_puzzles(context, round_, capped, "relabeled", "relabeled")
    for puzzle in corpus.puzzles(round=round_):
        if puzzle.origin == "relabeled" and puzzle.attempts == 0:
            corpus.record_attempts(puzzle.id, round_, [Attempt(puzzle.solution or "", "verified", "relabeled")])
    return RelabelResult(
        relabeled=len(capped.kept),
        wrong_answers=len(wrong),
        funnel=result.counts(len(wrong)),
        over_cap=len(result.kept) - len(capped.kept),
        contamination=contamination_check(result, context.config.filter.contamination_threshold),
    )
