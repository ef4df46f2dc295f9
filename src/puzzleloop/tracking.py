"""A run's round metrics on the experiment trackers that `train.training_args.report_to` names.

The Trainer already sends its loss curves to those trackers (TensorBoard, trackio, wandb, ... where installed);
this sends each evaluated round's held-out pass@k, filter funnel and corpus counts to the same ones, through
accelerate's tracker classes, with the round as the step. TensorBoard writes under the run's `tracking/` folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelerate.tracking import LOGGER_TYPE_TO_CLASS, GeneralTracker, filter_trackers


def flatten(values: dict[str, Any], sep: str, prefix: str = "") -> dict[str, Any]:
    """The leaves of a nested record, keyed by their `sep`-joined path."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        flat |= flatten(value, sep, name + sep) if isinstance(value, dict) else {name: value}
    return flat


def scalars(values: dict[str, Any]) -> dict[str, float]:
    """The numbers of a nested metrics record, with `/`-joined keys; an interval [low, high] becomes two."""
    numbers: dict[str, float] = {}
    for key, value in flatten(values, "/").items():
        if isinstance(value, list | tuple) and len(value) == 2 and key.endswith("_ci95"):
            numbers |= {f"{key}/low": float(value[0]), f"{key}/high": float(value[1])}
        elif isinstance(value, int | float) and not isinstance(value, bool):
            numbers[key] = float(value)
    return numbers


class RoundTracker:
    """One tracker run per self-play run; `log` sends one round's metrics line."""

    def __init__(self, report_to: list[str], logging_dir: Path, run_name: str, config: dict[str, Any]):
        """`report_to` as TrainingArguments normalised it (a list of tracker names, "all" resolved)."""
        self.trackers: list[GeneralTracker] = []
        settings = {k: v if isinstance(v, int | float | str) else str(v) for k, v in flatten(config, ".").items()}
        for name in filter_trackers(report_to, str(logging_dir)):
            cls = LOGGER_TYPE_TO_CLASS[str(name)]
            tracker = cls(run_name, str(logging_dir)) if cls.requires_logging_directory else cls(run_name)
            tracker.start()
            tracker.store_init_configuration(settings)
            self.trackers.append(tracker)

    def log(self, line: dict[str, Any]) -> None:
        values = scalars({k: v for k, v in line.items() if k != "round"})
        for tracker in self.trackers:
            tracker.log(values, step=line["round"])

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.finish()
        self.trackers = []
