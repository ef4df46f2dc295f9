"""Self-play rounds: the stages of `puzzleloop.stages` in order (seed once; then propose, filter, solve, relabel,
select, train, eval each round), every one resumable. This module only orders them, stores each stage's result as
its done-marker, and gathers the markers into metrics.jsonl, the trackers and the model cards.

The run folder's layout is `puzzleloop.layout`'s. Under `accelerate launch` every process takes part in the
sampling stages and in training (`puzzleloop.processes`); the main process alone runs the others and writes.
A stage writes its outputs atomically (or commits them in one transaction) before its done-marker, so a run that
was killed redoes at most the stage it was in, and `--resume` skips every finished stage.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from puzzleloop.cards import CARD_FILE, command_line, model_card
from puzzleloop.config import ConfigError, RunConfig, config_to_yaml, load_config
from puzzleloop.corpus import CorpusError
from puzzleloop.data import NAMED_SETS, load_heldout
from puzzleloop.files import write_jsonl_atomic, write_text_atomic
from puzzleloop.filters import kept
from puzzleloop.layout import RunLayout
from puzzleloop.processes import is_main, wait_for_everyone
from puzzleloop.stages import evaluating, filtering, proposing, relabeling, seeding, selecting, solving, training
from puzzleloop.stages.context import RunContext, StageResult
from puzzleloop.stages.evaluating import EvalResult
from puzzleloop.stages.filtering import FilterReport
from puzzleloop.stages.selecting import SelectResult
from puzzleloop.stages.training import model_after
from puzzleloop.tracking import RoundTracker, flatten
from puzzleloop.train import training_arguments

COLLECT_STAGES = ("propose", "filter", "solve", "relabel")  # a round's new verified pairs
LEARN_STAGES = ("select", "train", "eval")  # the model trained on them, and measured
STAGES = COLLECT_STAGES + LEARN_STAGES
SHARED_STAGES = ("propose", "solve", "train", "eval")  # every process samples a share, or trains data-parallel
STAGE_RUNS: dict[str, Callable[[RunContext, int], StageResult]] = {
    "seed": seeding.run, "propose": proposing.run, "filter": filtering.run, "solve": solving.run,
    "relabel": relabeling.run, "select": selecting.run, "train": training.run, "eval": evaluating.run,
}  # fmt: skip
RESULTS: tuple[type[StageResult], ...] = (
    seeding.SeedResult, proposing.ProposeResult, FilterReport, solving.SolveResult, relabeling.RelabelResult,
    SelectResult, training.TrainStageResult, EvalResult,
)  # fmt: skip
STAGE_RESULTS = {result.STAGE: result for result in RESULTS}  # what each stage's done-marker holds


def prepare_run(config_path: Path | None, output_dir: str | None, overrides: list[str], resume: bool) -> RunConfig:
    """Resolve the configuration and freeze it into the run folder (a resumed run reads the frozen one back)."""
    if resume:
        run_dir = Path(output_dir) if output_dir else Path(load_config(config_path, overrides).output_dir)
        layout = RunLayout(run_dir)
        frozen = layout.config
        if not frozen.exists():
            raise ConfigError(f"{frozen}: nothing to resume (no frozen config in {run_dir})")
        corpus = layout.corpus
        if (
            corpus.is_file()
            and corpus.stat().st_size == 0
            and any(p.name not in (frozen.name, corpus.name) for p in run_dir.iterdir())
        ):
            raise CorpusError(
                f"{corpus}: the corpus is empty (0 bytes) though the run has stage outputs; resuming "
                "would redo them from nothing, so restore the file or start a new --output-dir"
            )
        config = load_config(frozen, overrides)
        if overrides and (changed := changed_settings(load_config(frozen), config)):
            raise ConfigError(
                f"{frozen}: --resume continues a run with its frozen settings, so --set cannot change "
                f"them ({changed}); start a new run in another --output-dir"
            )
    else:
        config = load_config(config_path, overrides + ([f"output_dir={output_dir}"] if output_dir else []))
        frozen = RunLayout(Path(config.output_dir)).config
        # compared as settings, not text: a frozen config of an earlier layout holds the same settings
        if frozen.exists() and (changed := changed_settings(load_config(frozen), config)):
            raise ConfigError(
                f"{frozen.parent} already holds a run with other settings ({changed}): add --resume to continue "
                "it, or choose another --output-dir"
            )
    if config.eval.heldout not in NAMED_SETS:  # a named set is checked when P3 is read; a file is checked now
        load_heldout(config.eval.heldout)
    try:  # a wrong passed-through TrainingArguments field fails now, not after a round of sampling
        training_arguments(config.train, frozen.parent / "checkpoint", progress=False)
    except ValueError as error:
        raise ConfigError(f"{config_path or frozen}: {error}") from None
    config.output_dir = str(frozen.parent)
    if is_main():
        write_text_atomic(frozen, config_to_yaml(config))
    return config


def changed_settings(old: RunConfig, new: RunConfig) -> str:
    """`key: old -> new` for each setting that differs, dotted for sections."""
    before, after = flatten(dataclasses.asdict(old), "."), flatten(dataclasses.asdict(new), ".")
    keys = list(after) + [key for key in before if key not in after]
    return ", ".join(f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in keys if before.get(k) != after.get(k))


class SelfPlayRun:
    """Drives one run folder through its rounds: each stage (puzzleloop.stages) runs unless its done-marker is
    stored, then its result is stored as that marker; after each evaluation, the metrics, trackers and card."""

    def __init__(self, config: RunConfig, log: Callable[[str], None] = print) -> None:
        self.context = RunContext(config, log)
        self.config, self.layout, self.corpus = config, self.context.layout, self.context.corpus
        self.log = self.context.log
        self._tracker: RoundTracker | None = None

    def tracker(self) -> RoundTracker:
        """The trackers `train.training_args.report_to` names, for the rounds' metrics lines (opened once)."""
        if self._tracker is None:
            # the Trainer's own reading of report_to (a name, a list, "all" or "none"), so both use the same trackers
            report_to = training_arguments(self.config.train, self.layout.root, progress=False).report_to
            config = dataclasses.asdict(self.config)
            self._tracker = RoundTracker(report_to, self.layout.tracking, "rounds", config)
        return self._tracker

    def close(self) -> None:
        self.context.close()
        if self._tracker is not None:
            self._tracker.close()

    # -- the loop --------------------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        try:
            self.seed()
            self._stage(0, "eval")
            for round_ in range(1, self.config.rounds + 1):
                self.collect(round_)
                for stage in LEARN_STAGES:
                    self._stage(round_, stage)
            return self.write_metrics()
        finally:
            self.close()

    def seed(self) -> None:
        """Round 0's seed pairs, when the run has any."""
        if self.config.seed_pairs != "none":
            self._stage(0, "seed")

    def collect(self, round_: int) -> None:
        """A round's new verified pairs (propose, filter, solve, relabel), without training on them: experiments
        that train their own arms on one shared corpus use this."""
        for stage in COLLECT_STAGES:
            self._stage(round_, stage)

    def _stage(self, round_: int, stage: str) -> None:
        wait_for_everyone()  # every process sees the outputs and done-markers of the stages before
        if self.corpus.stage_done(round_, stage):
            self.log(f"round {round_} {stage}: done earlier, skipped")
            return
        self.log(f"round {round_} {stage}: starting")
        started = time.time()
        if stage not in SHARED_STAGES and not self.context.main:
            return
        result = STAGE_RUNS[stage](self.context, round_)
        if not self.context.main:
            return
        result.seconds = round(time.time() - started, 1)
        info = result.to_info()
        self.corpus.mark_stage_done(round_, stage, info)
        self.log(f"round {round_} {stage}: {_brief(info)}")
        if stage == "eval":
            line = next(line for line in self.write_metrics() if line["round"] == round_)
            self.tracker().log(line)
            self._write_model_card(round_)

    def _write_model_card(self, round_: int) -> None:
        """README.md in the round's own checkpoint (none when the round kept an earlier model)."""
        checkpoint = self.layout.checkpoint(round_)
        if round_ == 0 or model_after(self.context, round_) != str(checkpoint) or not checkpoint.is_dir():
            return
        reports = [FilterReport.stored(self.corpus, r) for r in range(1, round_ + 1)]
        checks = [report.contamination for report in reports if report and report.contamination]
        highest = [c["max_similarity_kept"] for c in checks if c.get("max_similarity_kept") is not None]
        contamination = {
            "checked": sum(c["checked"] for c in checks),
            "rejected": sum(c["rejected"] for c in checks),
            "threshold": self.config.filter.contamination_threshold,
            "max_similarity_kept": max(highest, default=None),
        } if checks else {}  # fmt: skip
        selected = SelectResult.stored(self.corpus, round_)
        card = model_card(
            name=f"{self.layout.root.resolve().name}-round-{round_}",
            base_model=self.config.model_name_or_path,
            round_=round_,
            rounds=self.config.rounds,
            training_by_origin=selected.examples_by_origin if selected else {},
            evaluation=self.corpus.stage_info(round_, "eval") or {},
            contamination=contamination,
            command=command_line(),
        )
        card.save(checkpoint / CARD_FILE)

    # -- reporting -------------------------------------------------------------------------------------
    def metrics(self) -> list[dict[str, Any]]:
        """One metrics.jsonl line per evaluated round, gathered from the stages' stored results."""
        lines = []
        for round_ in range(0, self.config.rounds + 1):
            evaluation = EvalResult.stored(self.corpus, round_)
            if evaluation is None:
                continue
            line: dict[str, Any] = {"round": round_, **evaluation.to_info(), "eval_seconds": evaluation.seconds}
            if round_:
                line |= self._round_metrics(round_)
            lines.append(line)
        return lines

    def _round_metrics(self, round_: int) -> dict[str, Any]:
        """What a round collected and trained on: the proposal funnel, verified pairs, the training set."""
        stored = {stage: STAGE_RESULTS[stage].stored(self.corpus, round_) for stage in STAGES}
        propose, filter_, solve = stored["propose"], stored["filter"], stored["solve"]
        relabel, select, train_ = stored["relabel"], stored["select"], stored["train"]
        proposed, funnel = propose and propose.proposed, filter_.funnel if filter_ else {}
        return {
            "proposed": proposed,
            "funnel": funnel,
            "kept_rate": round(kept(funnel, 0) / proposed, 4) if proposed else None,
            "contamination": filter_ and filter_.contamination,
            "verified_puzzles": solve and solve.verified_puzzles,
            "verified_solutions": solve and solve.verified_solutions,
            "own_verified_by_origin": self.corpus.verified_by_origin(round_),
            "relabeled": relabel and relabel.relabeled,
            "training_examples": select and select.examples,
            "training_by_origin": select and select.examples_by_origin,
            "synthetic_share": select and select.synthetic_share,
            "train_loss": train_ and train_.train_loss,
            "stage_seconds": {stage: result and result.seconds for stage, result in stored.items()},
        }

    def write_metrics(self) -> list[dict[str, Any]]:
        lines = self.metrics()
        if self.context.main:
            write_jsonl_atomic(self.layout.metrics, lines)
        return lines


def _brief(info: dict[str, Any]) -> str:
    shown = {k: v for k, v in info.items() if isinstance(v, int | float | str) and not isinstance(v, bool)}
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
