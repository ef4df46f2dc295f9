"""The layout of a run folder: every path a run writes and every reader looks for, in one place.

    config.yaml            the frozen configuration
    corpus.sqlite          puzzles, every attempt with its verdict, and the stage done-markers
    baseline/eval/         held-out evaluation of the starting model (once)
    round_<r>/proposals.jsonl, filter.json, train.jsonl, checkpoint/, eval/
    metrics.jsonl          one line per evaluated model (rewritten from the done-markers, so never torn)
    tracking/              TensorBoard events, when train.training_args.report_to names it: rounds/ and
                           round_<r>_train/

Round 0 is the baseline: its folder is `baseline/`, the rounds' are `round_<r>/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "config.yaml"
CORPUS_FILE = "corpus.sqlite"
METRICS_FILE = "metrics.jsonl"
PROPOSALS_FILE = "proposals.jsonl"
FILTER_FILE = "filter.json"
TRAIN_FILE = "train.jsonl"
CHECKPOINT_DIR = "checkpoint"
EVAL_DIR = "eval"
TRACKING_DIR = "tracking"
_ROUND_DIR = re.compile(r"round_(\d+)")


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run folder (nothing is created here)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def corpus(self) -> Path:
        return self.root / CORPUS_FILE

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def tracking(self) -> Path:
        return self.root / TRACKING_DIR

    def training_logs(self, round_: int) -> Path:
        return self.tracking / f"round_{round_}_train"

    def round_dir(self, round_: int) -> Path:
        return self.root / ("baseline" if round_ == 0 else f"round_{round_}")

    def proposals(self, round_: int) -> Path:
        return self.round_dir(round_) / PROPOSALS_FILE

    def filter_report(self, round_: int) -> Path:
        return self.round_dir(round_) / FILTER_FILE

    def training_rows(self, round_: int) -> Path:
        return self.round_dir(round_) / TRAIN_FILE

    def checkpoint(self, round_: int) -> Path:
        return self.round_dir(round_) / CHECKPOINT_DIR

    def eval_dir(self, round_: int) -> Path:
        return self.round_dir(round_) / EVAL_DIR

    def rounds_with(self, name: str) -> list[tuple[int, Path]]:
        """(round, path) of round_<r>/NAME for every round that has one, in round order."""
        found = []
        for path in self.root.glob(f"round_*/{name}"):
            if match := _ROUND_DIR.fullmatch(path.parent.name):
                found.append((int(match.group(1)), path))
        return sorted(found)
