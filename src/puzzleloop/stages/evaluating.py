"""The round's model measured on the held-out set with the eval command's own code (puzzleloop.evaluate), into
eval/; a round that trained nothing reuses the last measurement (the same model and seed would repeat it)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Self

from puzzleloop.config import EvalConfig, HeldoutConfig
from puzzleloop.evaluate import evaluate
from puzzleloop.stages.context import RunContext, StageResult
from puzzleloop.stages.training import model_after

SCORE_PREFIXES = ("pass@", "solved_within@")  # with their _ci95 intervals: the scores results.json carries


@dataclass
class EvalResult(StageResult):
    STAGE = "eval"
    model: str
    heldout: str | None = None
    evaluated_at: str | None = None
    puzzles: int = 0
    n: int = 0
    solved_puzzles: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)  # pass@k, solved_within@k and their intervals
    reused_from: int | None = None  # the round whose measurement this is (no new model)

    def to_info(self) -> dict[str, Any]:
        """Scores at the top level, as results.json and metrics.jsonl have them."""
        info = super().to_info()
        scores = info.pop("scores")
        return info | scores

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> Self:
        scores = {key: value for key, value in info.items() if key.startswith(SCORE_PREFIXES)}
        return dataclasses.replace(super().from_info(info), scores=scores)


def run(context: RunContext, round_: int) -> EvalResult:
    model = model_after(context, round_)
    if round_ and model == model_after(context, round_ - 1):
        previous = EvalResult.stored(context.corpus, round_ - 1)
        if previous is not None:
            context.log(f"round {round_} eval: the model did not change, reusing round {round_ - 1}'s measurement")
            return dataclasses.replace(previous, reused_from=round_ - 1, seconds=None)
    return measure(context, round_, model)


def eval_config(context: RunContext, model_name: str) -> EvalConfig:
    """The eval command's settings for measuring `model_name` the way this run measures its rounds."""
    config = context.config
    heldout = {f.name: getattr(config.eval, f.name) for f in dataclasses.fields(HeldoutConfig)}
    return EvalConfig(
        **heldout,
        model=model_name,
        seed=config.seed,
        timeout=config.timeout,
        memory_mb=config.memory_mb,
        batch_size=config.batch_size,
        block_sequences=config.block_sequences,
        device=config.device,
        p3_dir=config.p3_dir,
        workers=config.workers,
    )


def measure(context: RunContext, round_: int, model_name: str) -> EvalResult:
    model, tokenizer = context.model(model_name)
    settings = eval_config(context, model_name)
    results = evaluate(
        settings, context.layout.eval_dir(round_), model=model, tokenizer=tokenizer, judge=context.judge()
    )
    return EvalResult(
        model=model_name,
        heldout=results["settings"]["heldout"],
        evaluated_at=results.get("finished_at"),
        puzzles=results["puzzles"],
        n=results["n"],
        solved_puzzles=results["solved_puzzles"],
        status_counts=results["status_counts"],
        scores={key: value for key, value in results.items() if key.startswith(SCORE_PREFIXES)},
    )
