"""The round's model: the start model (or the last round's) fine-tuned on the selected rows, in checkpoint/."""

from __future__ import annotations

from dataclasses import dataclass

from puzzleloop.stages.context import RunContext, StageResult
from puzzleloop.stages.selecting import selected_rows


@dataclass
class TrainStageResult(StageResult):
    STAGE = "train"
    checkpoint: str | None  # None: nothing to train on, the last model stays
    examples: int
    start: str | None = None
    train_loss: float | None = None
    steps: int | None = None
    tokens: int | None = None
    resumed_from_step: int | None = None
    reused_from: int | None = None  # the round whose model this one is (the same rows from the same start)


def model_after(context: RunContext, round_: int) -> str:
    """The checkpoint that round `round_` produced (the start model for round 0 or an untrained round)."""
    if round_ == 0:
        return context.config.model_name_or_path
    result = TrainStageResult.stored(context.corpus, round_)
    return (result and result.checkpoint) or model_after(context, round_ - 1)


def run(context: RunContext, round_: int) -> TrainStageResult:
    from datasets import Dataset

    from puzzleloop.train import train

    config = context.config
    rows = selected_rows(context, round_)
    if not rows:
        context.log(f"round {round_} train: no verified examples, the model stays {model_after(context, round_ - 1)}")
        return TrainStageResult(checkpoint=None, examples=0)
    if config.train_from == "base" and round_ > 1 and selected_rows(context, round_ - 1) == rows:
        # The same examples from the same start with the same seed: training again would rebuild that model.
        context.log(f"round {round_} train: the examples are round {round_ - 1}'s, so its model stays")
        return TrainStageResult(checkpoint=model_after(context, round_ - 1), examples=len(rows), reused_from=round_ - 1)
    start = config.model_name_or_path if config.train_from == "base" else model_after(context, round_ - 1)
    context.release_model()
    output = context.layout.checkpoint(round_)
    logs = context.layout.training_logs(round_)
    result = train(start, Dataset.from_list(rows), output, config.train, logging_dir=logs)
    return TrainStageResult(
        checkpoint=str(output),
        start=start,
        examples=len(rows),
        train_loss=result.train_loss,
        steps=result.steps,
        tokens=result.tokens,
        resumed_from_step=result.resumed_from_step,
    )
