"""The round's training rows: every verified pair the selection keeps (puzzleloop.selection), in train.jsonl."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from puzzleloop.corpus import ORIGINS
from puzzleloop.files import read_jsonl_objects, write_jsonl_atomic
from puzzleloop.selection import select_training_set, synthetic_share, training_rows
from puzzleloop.stages.context import RunContext, StageResult


@dataclass
class SelectResult(StageResult):
    STAGE = "select"
    examples: int
    puzzles: int
    examples_by_origin: dict[str, int] = field(default_factory=dict)
    synthetic_share: float = 0.0


def run(context: RunContext, round_: int) -> SelectResult:
    dataset = select_training_set(context.corpus, context.config.select, latest_round=round_)
    write_jsonl_atomic(context.layout.training_rows(round_), dataset.to_list())
    return SelectResult(
        examples=len(dataset),
        puzzles=len(set(dataset["puzzle_id"])) if len(dataset) else 0,
        examples_by_origin={o: dataset["origin"].count(o) for o in ORIGINS} if len(dataset) else {},
        synthetic_share=round(synthetic_share(dataset), 4),
    )


def selected_rows(context: RunContext, round_: int) -> list[dict[str, Any]]:
    """The training rows round `round_` selected (checked against the training-row contract)."""
    path = context.layout.training_rows(round_)
    return training_rows(read_jsonl_objects(path), str(path))
