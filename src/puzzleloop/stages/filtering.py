"""Proposals become puzzles: each passes the filters (puzzleloop.filters: parse, signature, size, trivial,
duplicate, contamination; in abduction mode construction first, puzzleloop.construct) or is dropped with its
reason. Kept puzzles enter the corpus with their origin; the funnel goes to filter.json and the done-marker."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from puzzleloop.construct import constructed_proposals
from puzzleloop.corpus import PuzzleRecord
from puzzleloop.files import write_json_atomic
from puzzleloop.filters import FilterResult, Proposal, filter_proposals
from puzzleloop.prompts import open_header, proposal_from_completion
from puzzleloop.stages.context import RunContext, StageResult
from puzzleloop.stages.proposing import proposal_rows, proposer


@dataclass
class FilterReport(StageResult):
    """filter.json, and the filter stage's done-marker."""

    STAGE = "filter"
    funnel: dict[str, int]  # proposals left after each filter, in order (puzzleloop.filters.FilterResult.counts)
    removed: dict[str, int]  # proposals dropped, by reason
    kept: int
    contamination: dict[str, Any] | None = None  # see contamination_check


def run(context: RunContext, round_: int) -> FilterReport:
    config = context.config
    rows = proposal_rows(context, round_)
    removed: Counter = Counter()
    if config.propose.mode == "abduction":
        proposals, removed = constructed_proposals(
            (
                (open_header(r["next_name"], r["opening"]) + r["completion"], r["next_name"], tuple(r["seeds"]))
                for r in rows
            ),
            context.judges(),
            max_source_chars=config.filter.max_source_chars,
            max_target_chars=config.filter.max_target_chars,
        )
    else:
        proposals = []
        for row in rows:
            source, solution = proposal_from_completion(
                row["next_name"], row["completion"], config.propose.with_solution
            )
            proposals.append(Proposal(source=source, seeds=tuple(row["seeds"]), solution=solution))
    origin = "constructed" if config.propose.mode == "abduction" else "proposed"
    result = filtered(context, round_, proposals, removed, origin)
    store_puzzles(context, round_, result, origin, proposer(context, round_))
    report = FilterReport(
        funnel=result.counts(len(rows)),
        removed=dict(result.removed),
        kept=len(result.kept),
        contamination=contamination_check(result, config.filter.contamination_threshold),
    )
    write_json_atomic(context.layout.filter_report(round_), report.to_info())  # untimed: rounds times the stage
    return report


def filtered(
    context: RunContext, round_: int, proposals: list[Proposal], removed: Counter, origin: str
) -> FilterResult:
    """`proposals` through every filter, against the corpus as it was before this round's puzzles of `origin`."""
    corpus, settings = context.corpus, context.config.filter
    this_round = {p.canonical_hash for p in corpus.puzzles(round=round_) if p.origin == origin}
    return filter_proposals(
        proposals,
        judge=context.judge(),
        known_hashes=corpus.known_hashes() - this_round,  # a rerun after a kill re-finds its own rows
        heldout_index=context.heldout_index,
        contamination_threshold=settings.contamination_threshold,
        trivial_check=settings.trivial_check,
        max_source_chars=settings.max_source_chars,
        removed=removed,
    )


def store_puzzles(context: RunContext, round_: int, result: FilterResult, origin: str, proposer: str) -> None:
    context.corpus.add_puzzles(
        [
            PuzzleRecord(
                canonical_hash=digest,
                source=p.source,
                answer_type=answer_type,
                round=round_,
                proposer=proposer,
                prompt_seeds=p.seeds,
                origin=origin,
                solution=p.solution,
            )
            for p, answer_type, digest in result.kept
        ]
    )


def contamination_check(result: FilterResult, threshold: float) -> dict[str, Any]:
    """How many proposals were compared with P3's test instances, how many were too near, and the nearest kept."""
    similarities = [score for _, score in result.nearest_heldout]
    return {
        "checked": len(similarities),
        "rejected": result.removed["contaminated"],
        "threshold": threshold,
        "max_similarity_kept": max((s for s in similarities if s < threshold), default=None),
    }
