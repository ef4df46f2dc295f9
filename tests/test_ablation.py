"""The self-play ablation end to end on a tiny model: one shared corpus, two arms trained for the same steps,
per-puzzle tables and the paired comparison, resumed without retraining."""

import csv
import dataclasses
import json

from tests.helpers import inject_round_one_programs, needs_p3

from puzzleloop.ablation import ablation, arm_settings
from puzzleloop.config import load_config
from puzzleloop.rounds import SelfPlayRun
from puzzleloop.train import RESULT_FILE


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
