"""The self-play ablation end to end on a tiny model: one shared corpus, two arms trained for the same steps,
per-puzzle tables and the paired comparison, resumed without retraining."""

import csv
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers import P3_PUZZLES, inject_round_one_programs, needs_p3

from puzzleloop.ablation import ablation, arm_settings, read_arm_counts
from puzzleloop.config import ConfigError, load_config
from puzzleloop.data import DataError
from puzzleloop.rounds import SelfPlayRun
from puzzleloop.train import RESULT_FILE

REPO = Path(__file__).resolve().parents[1]


def test_own_pairs_on_top_grow_the_batch_by_the_sequences_they_add(tiny_model_dir, tmp_path):
    config = load_config(None, [f"output_dir={tmp_path}", f"model_name_or_path={tiny_model_dir}",
                                "train.batch_size=3", "train.packing=false", "train.seed=9"])  # fmt: skip
    run = SelfPlayRun(config)
    pair = {"prompt": "def f(x: int):\n    return x == 3\n\n", "completion": "def g():\n    return 3\n"}
    rows = [pair | {"origin": "seed"}] * 2 + [pair | {"origin": "constructed"}] * 3
    on_top = arm_settings(run, "self-play-added", rows, seed=1, steps=5)
    assert (on_top.batch_size, on_top.seed, on_top.max_steps) == (round(3 * 5 / 2), 1, 5)
    substituted = arm_settings(run, "self-play", rows, seed=1, steps=5)
    assert substituted == dataclasses.replace(on_top, batch_size=3)


@needs_p3
def test_two_arms_share_the_corpus_and_are_compared_per_puzzle(tiny_model_dir, tmp_path):
    overrides = [
        f"output_dir={tmp_path / 'run'}", f"model_name_or_path={tiny_model_dir}", "rounds=1", "seed_pairs=ours",
        "propose.mode=abduction", "propose.model=base", "propose.seeds=ours", "propose.prompts=2",
        "propose.samples_per_prompt=3", "propose.shots=2", "solve.attempts=2", "solve.sampling.max_new_tokens=16",
        "train.batch_size=2", "train.block_size=256", "eval.heldout=p3-dev", "eval.n=2", "eval.k=[1, 2]",
        "eval.limit=3", "eval.sampling.max_new_tokens=16", "timeout=1.0",
    ]  # fmt: skip
    config = load_config(None, overrides)
    inject_round_one_programs(config)
    logged: list[str] = []
    summary = ablation(SelfPlayRun(config, log=logged.append), tmp_path / "results", [0, 1], steps=2, log=logged.append)
    assert summary["seeds-only"]["own_pairs_trained"] == [0, 0]
    assert summary["self-play"]["own_pairs_trained"] == [3, 3]  # the three constructed pairs, in both seeds
    comparison = summary["self-play minus seeds-only, pass@2"]
    assert comparison["whole"]["puzzles"] == 3 and -1 <= comparison["whole"]["difference"] <= 1
    with open(tmp_path / "results" / "per_puzzle.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 2 * 3 and {(r["arm"], r["seed"]) for r in rows} == {
        (arm, seed) for arm in ("seeds-only", "self-play") for seed in ("0", "1")
    }
    assert all(r["n"] == "2" and 0 <= int(r["c"]) <= 2 for r in rows)
    assert json.loads((tmp_path / "results" / "ablation.json").read_text()) == summary
    assert load_config(tmp_path / "results" / "config.yaml") == config
    recorded = json.loads((tmp_path / "results" / "provenance.json").read_text())
    assert recorded["command"] and "torch" in recorded["versions"] and recorded["cpus"] >= 1
    for arm in ("seeds-only", "self-play"):
        assert (tmp_path / "run" / f"{arm}-seed1" / "checkpoint" / "config.json").is_file()

    checkpoint = tmp_path / "run" / "self-play-seed0" / "checkpoint" / "model.safetensors"
    before = checkpoint.stat().st_mtime_ns
    again = ablation(SelfPlayRun(config, log=logged.append), tmp_path / "results", [0, 1], steps=2, log=logged.append)
    assert checkpoint.stat().st_mtime_ns == before  # resumed: nothing retrained
    assert {k: v for k, v in again.items() if k != "recorded_at"} == {
        k: v for k, v in summary.items() if k != "recorded_at"
    }

    # an arm that changes how it trains, not what on: packed examples that see each other
    third = ablation(SelfPlayRun(config, log=logged.append), tmp_path / "results", [0], steps=2,
                     arms=("packing-unisolated", "self-play"), log=logged.append)  # fmt: skip
    trained = json.loads((tmp_path / "run" / "packing-unisolated-seed0" / "checkpoint" / RESULT_FILE).read_text())
    assert trained["config"]["isolate_examples"] is False and trained["result"]["steps"] == 2
    assert third["self-play minus packing-unisolated, pass@2"]["whole"]["puzzles"] == 3

    # own pairs on top: the batch the ablation reports is the one the checkpoint was trained with
    fourth = ablation(SelfPlayRun(config, log=logged.append), tmp_path / "results", [0], steps=2,
                      arms=("seeds-only", "self-play-added"), log=logged.append)  # fmt: skip
    trained = json.loads((tmp_path / "run" / "self-play-added-seed0" / "checkpoint" / RESULT_FILE).read_text())
    assert fourth["self-play-added"]["batch_size"] == [trained["config"]["batch_size"]]
    assert fourth["seeds-only"]["batch_size"] == [2] and trained["result"]["steps"] == 2

    # a new machine: the run folder is gone, the results folder is not; the corpus is collected again, and a model
    # the tables record for the same rows is not trained again
    shutil.rmtree(tmp_path / "run")
    inject_round_one_programs(config)
    fifth = ablation(SelfPlayRun(config, log=logged.append), tmp_path / "results", [0], steps=2,
                     arms=("seeds-only", "self-play-added"), log=logged.append)  # fmt: skip
    assert not list((tmp_path / "run").glob("*-seed0"))
    assert {k: v for k, v in fifth.items() if k != "recorded_at"} == {
        k: v for k, v in fourth.items() if k != "recorded_at"
    }
    with pytest.raises(ConfigError, match=r"results holds an ablation with other settings \(steps: 2 -> 3\)"):
        ablation(SelfPlayRun(config, log=logged.append), tmp_path / "results", [0], steps=3, log=logged.append)


def _write_per_puzzle(path: Path, rows: list[tuple[str, int, str, int, int]]) -> None:
    path.mkdir(parents=True)
    with open(path / "per_puzzle.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arm", "seed", "puzzle", "n", "c"])
        writer.writerows(rows)


def test_recorded_arms_are_read_per_seed_and_a_missing_arm_names_the_file(tmp_path):
    _write_per_puzzle(tmp_path / "a", [("seeds-only", 0, "P:0", 8, 1), ("seeds-only", 1, "P:0", 8, 0),
                                       ("self-play", 0, "P:0", 8, 3)])  # fmt: skip
    table = tmp_path / "a" / "per_puzzle.csv"
    assert read_arm_counts(table, "seeds-only") == {"P:0": [(8, 1), (8, 0)]}
    assert read_arm_counts(table, "seeds-only", seeds=[1]) == {"P:0": [(8, 0)]}
    with pytest.raises(ValueError, match=r"per_puzzle.csv: no row of arm 'self-play' with a training seed in \[1\]"):
        read_arm_counts(table, "self-play", seeds=[1])
    with pytest.raises(DataError, match=r"b/per_puzzle.csv: no such file"):
        read_arm_counts(tmp_path / "b" / "per_puzzle.csv", "self-play")


@needs_p3
def test_arms_of_two_results_folders_are_compared_by_half(tmp_path):
    """scripts/compare_arms.py: a control in one folder, an arm in another, paired over the puzzles of both; a
    train class's instance counts in the train-class half, a class in neither split in the clean half."""
    train_class, clean_class = "Study_1:1", "RemoveVowels:0"  # Study_1 is a P3 train class, RemoveVowels in neither
    _write_per_puzzle(
        tmp_path / "control", [("seeds-only", s, p, 8, 0) for s in (0, 1) for p in (train_class, clean_class)]
    )
    _write_per_puzzle(tmp_path / "arm", [("self-play", 0, train_class, 8, 8), ("self-play", 0, clean_class, 8, 0)])
    command = [sys.executable, str(REPO / "scripts" / "compare_arms.py"), str(tmp_path / "control"), "seeds-only",
               str(tmp_path / "arm"), "self-play", "--k", "8", "--p3-dir", str(P3_PUZZLES.parent)]  # fmt: skip
    printed = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    halves = printed["arm/self-play minus control/seeds-only, pass@8"]
    assert halves["whole"]["puzzles"] == 2 and halves["whole"]["difference"] == 0.5
    assert halves["train-class half"]["difference"] == 1.0 and halves["train-class half"]["puzzles"] == 1
    assert halves["clean half"]["difference"] == 0.0 and halves["clean half"]["puzzles"] == 1
