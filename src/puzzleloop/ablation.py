"""The self-play ablation: does training on the model's own pairs add held-out gain over seed pairs alone?
(And any other pair of training arms over one corpus, e.g. packed examples isolated or not.)

1. One run folder collects the corpus: the seed pairs, then `rounds` rounds of propose, filter, solve and relabel
   (the run's own stages, resumable), with no training in between, so both arms draw on the same pairs.
2. Each arm trains the start model for the same number of optimizer steps (`--steps`), once per training seed:
   `seeds-only` on the seed pairs, `self-play` on the seed pairs plus the model's own verified pairs (the run's
   selection, its synthetic cap included), which at a fixed batch take the place of some seed passes.
   `self-play-added` trains on the same rows with the batch grown by the sequences the own pairs add, so the
   seed pairs get the passes they get in seeds-only and the own pairs come on top (more compute per step).
3. Each model is evaluated on the run's held-out set (p3-dev while choosing) with the run's eval settings.

It writes results/<name>/per_puzzle.csv (arm,seed,puzzle,n,c), config.yaml (the run's), provenance.json (command,
commit, versions, cores) and ablation.json: own pairs trained, batch size and the training rows' sha256 per seed,
each arm's pass@k, and the paired bootstrap over puzzles of the difference for the whole set, its clean half (the
classes in neither P3 split) and its train-class half: the second arm named minus the first.

Every step resumes: a finished model or evaluation is reused, and so is a measurement the results folder records
for the same training rows (by sha256), steps and batch where the run folder is gone, so an ablation longer than
one machine's life goes on elsewhere: the corpus is collected again (deterministic on one kind of machine) and only
the seeds not yet measured are trained. Arms recorded in different results folders (a control measured once,
reused) are compared the same way by scripts/compare_arms.py.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from puzzleloop.cards import command_line
from puzzleloop.config import ConfigError, TrainConfig, config_to_yaml, load_config
from puzzleloop.data import DataError, class_of, named_set
from puzzleloop.evaluate import evaluate
from puzzleloop.metrics import paired_difference
from puzzleloop.provenance import provenance
from puzzleloop.rounds import SelfPlayRun, changed_settings
from puzzleloop.selection import select_training_set
from puzzleloop.stages.evaluating import eval_config


@dataclass(frozen=True)
class Arm:
    """What one arm trains on (the seed pairs alone, or the run's whole selection) and how (train overrides)."""

    own_pairs: bool
    train: dict[str, Any] = field(default_factory=dict)
    # Own pairs added, not substituted: the batch grows by the share of sequences the own pairs add, so in the
    # same steps the seed pairs get as many passes as in seeds-only (more compute per step, said so in the tables).
    own_pairs_on_top: bool = False


ARMS = {
    "seeds-only": Arm(own_pairs=False),
    "self-play": Arm(own_pairs=True),
    "self-play-added": Arm(own_pairs=True, own_pairs_on_top=True),
    "packing-unisolated": Arm(own_pairs=True, train={"isolate_examples": False}),  # packed examples see each other
}


def arm_rows(run: SelfPlayRun, arm: str) -> list[dict]:
    """The training rows of one arm, from the collected corpus."""
    rows = select_training_set(run.corpus, run.config.select, latest_round=run.config.rounds).to_list()
    return rows if ARMS[arm].own_pairs else [row for row in rows if row["origin"] == "seed"]


def arm_settings(run: SelfPlayRun, arm: str, rows: list[dict], seed: int, steps: int) -> TrainConfig:
    """The run's train settings for one arm: its training seed, `steps` steps, the arm's overrides, and for an arm
    with own pairs on top a batch of round(batch x sequences of all rows / sequences of the seed rows)."""
    settings = dataclasses.replace(run.config.train, seed=seed, max_steps=steps, **ARMS[arm].train)
    if not ARMS[arm].own_pairs_on_top:
        return settings
    from puzzleloop.models import load_tokenizer
    from puzzleloop.train import sequence_count

    tokenizer = load_tokenizer(run.config.model_name_or_path)
    seed_rows = [row for row in rows if row["origin"] == "seed"]
    sequences = [
        sequence_count([r["prompt"] for r in part], [r["completion"] for r in part], tokenizer, settings)
        for part in (rows, seed_rows)
    ]
    return dataclasses.replace(settings, batch_size=max(1, round(settings.batch_size * sequences[0] / sequences[1])))


def trained_and_measured(run: SelfPlayRun, folder: Path, rows: list[dict], settings: TrainConfig) -> dict:
    """Train the start model on `rows` with `settings` (reused when already saved), then evaluate it with the
    run's eval settings; results.json's contents."""
    from datasets import Dataset

    from puzzleloop.train import train

    checkpoint = folder / "checkpoint"
    if not (checkpoint / "config.json").is_file():
        train(run.config.model_name_or_path, Dataset.from_list(rows), checkpoint, settings)
    return evaluate(eval_config(run.context, str(checkpoint)), folder / "eval", judge=run.context.judge())


def ablation(
    run: SelfPlayRun,
    results_dir: Path,
    seeds: Sequence[int],
    steps: int,
    arms: Sequence[str] = ("seeds-only", "self-play"),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Collect the corpus, then train and measure every (seed, arm), rewriting the tables after each one so an
    interrupted ablation keeps what it measured. A (seed, arm) that results_dir already records for the same
    training rows, steps and batch is not trained again, even where the run folder is gone (a new machine: the
    corpus is collected again and its rows compared by digest). Returns ablation.json's contents."""
    earlier = recorded_measurements(results_dir, run, steps)
    run.seed()
    for round_ in range(1, run.config.rounds + 1):
        run.collect(round_)
    table: list[dict[str, Any]] = []
    trained: dict[str, dict[str, list]] = {
        arm: {"own_pairs_trained": [], "batch_size": [], "rows_sha256": []} for arm in arms
    }
    summary: dict[str, Any] = {}
    for seed in seeds:
        for arm in arms:
            rows = arm_rows(run, arm)
            settings = arm_settings(run, arm, rows, seed, steps)
            own, digest = sum(row["origin"] != "seed" for row in rows), rows_digest(rows)
            for key, value in zip(trained[arm], (own, settings.batch_size, digest), strict=True):
                trained[arm][key].append(value)
            log(
                f"{arm}, training seed {seed}: {len(rows)} pairs, {own} of the model's own making, "
                f"batch {settings.batch_size}"
            )
            recorded = earlier.get((arm, seed))
            if recorded is not None and recorded.matches(digest, settings.batch_size):
                log(f"{arm}, training seed {seed}: measured before on the same rows ({results_dir}), not retrained")
                per_puzzle = recorded.per_puzzle
            else:
                if recorded is not None:
                    log(f"{arm}, training seed {seed}: {results_dir} measured it on other rows or another batch; "
                        "trained again, and the tables will hold this run's measurement")  # fmt: skip
                folder = Path(run.config.output_dir) / f"{arm}-seed{seed}"
                results = trained_and_measured(run, folder, rows, settings)
                per_puzzle = {puzzle: (results["n"], c) for puzzle, c in results["per_puzzle"].items()}
            table += [
                {"arm": arm, "seed": seed, "puzzle": puzzle, "n": n, "c": c} for puzzle, (n, c) in per_puzzle.items()
            ]
            summary = _summary(run, table, trained, seeds, steps)
            _write(results_dir, table, summary, run)
    return summary


def rows_digest(rows: Sequence[Mapping[str, Any]]) -> str:
    """sha256 of the training rows as training reads them (prompt and completion, in order): two machines that
    collected the same corpus give the same digest, so a measurement recorded on one stands for the other."""
    text = json.dumps([[row["prompt"], row["completion"]] for row in rows], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class RecordedMeasurement:
    """One (arm, seed) as results/<name>/ records it: what it trained on and its per-puzzle (n, c)."""

    rows_sha256: str
    batch_size: int
    per_puzzle: dict[str, tuple[int, int]]

    def matches(self, rows_sha256: str, batch_size: int) -> bool:
        return (self.rows_sha256, self.batch_size) == (rows_sha256, batch_size)


def recorded_measurements(
    results_dir: Path, run: SelfPlayRun, steps: int
) -> dict[tuple[str, int], RecordedMeasurement]:
    """The measurements results_dir records with their training rows' digest (tables written before digests were
    recorded give none). Tables of other settings or steps are an error, not overwritten: they are another
    ablation's, under the same name."""
    summary_file, table_file = results_dir / "ablation.json", results_dir / "per_puzzle.csv"
    if not (summary_file.is_file() and table_file.is_file()):
        return {}
    recorded_config = load_config(results_dir / "config.yaml")
    summary = json.loads(summary_file.read_text())
    changed = changed_settings(recorded_config, run.config)
    if summary.get("steps") != steps:
        changed = ", ".join(filter(None, [changed, f"steps: {summary.get('steps')!r} -> {steps!r}"]))
    if changed:
        raise ConfigError(f"{results_dir} holds an ablation with other settings ({changed}); choose another --name")
    with open(table_file, newline="") as handle:
        table = list(csv.DictReader(handle))
    measurements = {}
    for arm, record in summary.items():
        if not (isinstance(record, dict) and "rows_sha256" in record):
            continue
        # each list holds one entry per seed measured, in the order of seeds_planned (an interrupted run: fewer)
        measured = zip(summary["seeds_planned"], record["rows_sha256"], record["batch_size"], strict=False)
        for seed, digest, batch in measured:
            counts = {
                row["puzzle"]: (int(row["n"]), int(row["c"]))
                for row in table
                if row["arm"] == arm and int(row["seed"]) == seed
            }
            measurements[(arm, seed)] = RecordedMeasurement(digest, batch, counts)
    return measurements


def _summary(
    run: SelfPlayRun,
    table: list[dict[str, Any]],
    trained: dict[str, dict[str, list]],
    seeds: Sequence[int],
    steps: int,
) -> dict[str, Any]:
    k = max(run.config.eval.k)
    summary: dict[str, Any] = {
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "heldout": run.config.eval.heldout,
        "n": run.config.eval.n,
        "steps": steps,
        "seeds_planned": list(seeds),
        **trained,
    }
    arms = list(trained)
    first, second = (arm_counts(table, arm) for arm in arms[:2]) if len(arms) >= 2 else ({}, {})
    if first and second:
        summary[f"{arms[1]} minus {arms[0]}, pass@{k}"] = paired_by_half(first, second, k, run.config.p3_dir)
    return summary


def arm_counts(table: Iterable[Mapping[str, Any]], arm: str) -> dict[str, list[tuple[int, int]]]:
    """One arm's (n, c) per puzzle, one per training seed, from per_puzzle.csv's rows (`arm,seed,puzzle,n,c`)."""
    counts: dict[str, list[tuple[int, int]]] = {}
    for row in table:
        if row["arm"] == arm:
            counts.setdefault(row["puzzle"], []).append((int(row["n"]), int(row["c"])))
    return counts


def paired_by_half(
    first: Mapping[str, Sequence[tuple[int, int]]],
    second: Mapping[str, Sequence[tuple[int, int]]],
    k: int,
    p3_dir: str | Path | None = None,
) -> dict[str, dict[str, object]]:
    """second minus first (metrics.paired_difference) over the whole set and its two halves: the clean half (classes
    in neither P3 split, which no seed pair teaches) and the train-class half (classes of the seed pairs), since own
    pairs and more seed passes have so far pulled the two halves in opposite directions."""
    train_classes = {class_of(i.name) for i in named_set("p3-train155", p3_dir)}
    clean = {p for p in first if class_of(p) not in train_classes}
    halves = {"whole": set(first), "clean half": clean, "train-class half": set(first) - clean}
    return {
        half: paired_difference({p: first[p] for p in puzzles}, {p: second[p] for p in puzzles if p in second}, k)
        for half, puzzles in halves.items()
        if puzzles
    }


def read_arm_counts(
    per_puzzle_csv: Path, arm: str, seeds: Iterable[int] | None = None
) -> dict[str, list[tuple[int, int]]]:
    """arm_counts of one arm (of these training seeds, or all) in a results folder's per_puzzle.csv; a clear error
    naming the file when it holds no such row."""
    if not per_puzzle_csv.is_file():
        raise DataError(f"{per_puzzle_csv}: no such file (an ablation's results folder holds one)")
    wanted = None if seeds is None else {int(seed) for seed in seeds}
    with open(per_puzzle_csv, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if wanted is None or int(row["seed"]) in wanted]
    counts = arm_counts(rows, arm)
    if not counts:
        chosen = "" if wanted is None else f" with a training seed in {sorted(wanted)}"
        raise DataError(f"{per_puzzle_csv}: no row of arm {arm!r}{chosen}")
    return counts


def _write(folder: Path, table: list[dict[str, Any]], summary: dict[str, Any], run: SelfPlayRun) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(config_to_yaml(run.config))
    record = {"recorded_at": summary["recorded_at"], "command": command_line(), **provenance(), "cpus": os.cpu_count()}
    (folder / "provenance.json").write_text(json.dumps(record, indent=2) + "\n")
    with open(folder / "per_puzzle.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["arm", "seed", "puzzle", "n", "c"])
        writer.writeheader()
        writer.writerows(table)
    (folder / "ablation.json").write_text(json.dumps(summary, indent=2) + "\n")
