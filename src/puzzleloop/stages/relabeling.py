"""Hindsight relabeling: a wrong answer to a puzzle of target form becomes the verified solution of the same
program with the target the answer actually gives, recomputed by every judge. Such puzzles pass the same filters
as constructed ones, and at most `solve.relabel_per_puzzle` are kept per puzzle they came from."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from puzzleloop.construct import TargetForm, agreed_outputs, output_proposal, target_form
from puzzleloop.corpus import Attempt, PuzzleRow
from puzzleloop.filters import FilterResult, Proposal
from puzzleloop.stages.context import RunContext, StageResult
from puzzleloop.stages.filtering import contamination_check, filtered, store_puzzles


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
    for puzzle in corpus.puzzles(round=round_):
        form = target_form(puzzle.source) if puzzle.origin != "relabeled" else None
        if form is None:
            continue
        answers = dict.fromkeys(s.source for s in corpus.solutions(puzzle.id) if s.status == "wrong")
        wrong += [(puzzle, form, answer) for answer in list(answers)[: 2 * cap]]
    outputs = agreed_outputs(context.judges(), [(form.program, answer) for _, form, answer in wrong])
    removed: Counter = Counter()
    sources: dict[str, int] = {}  # relabeled puzzle source -> the puzzle it came from
    for (puzzle, form, _), output in zip(wrong, outputs, strict=True):
        seeds = (f"relabeled:{puzzle.id}",)
        limit = context.config.filter.max_target_chars
        proposal = output_proposal(output, form.program, form.param, seeds, limit, bound_answer=True)
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
