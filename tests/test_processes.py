"""One run across two CPU processes (`accelerate launch --cpu`, gloo) against the same run in one process."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from tests.helpers import (
    check_finished_run,
    corpus_rows,
    inject_round_one_proposals,
    needs_p3,
    write_run_config,
)

from puzzleloop.cli import main
from puzzleloop.config import load_config
from puzzleloop.processes import requested_cpu_processes, shared
from puzzleloop.train import RESULT_FILE

pytestmark = needs_p3
_SCRIPT = Path(sys.executable).with_name("accelerate")  # `accelerate launch`, as a user types it
ACCELERATE_LAUNCH = (
    [str(_SCRIPT), "launch"] if _SCRIPT.is_file() else [sys.executable, "-m", "accelerate.commands.launch"]
)


def _launch(*args: str) -> subprocess.Popen:
    """`accelerate launch --num_processes 2 --cpu -m puzzleloop ARGS` on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [*ACCELERATE_LAUNCH, "--num_processes", "2", "--cpu", "--num_machines", "1"]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port)]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [*command, "-m", "puzzleloop", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def _prepared(config_path: Path, run_dir: Path) -> Path:
    inject_round_one_proposals(load_config(config_path, [f"output_dir={run_dir}"]))
    return run_dir


def _puzzles(run_dir: Path, last_round: int) -> list[tuple]:
    return corpus_rows(
        run_dir / "corpus.sqlite",
        "SELECT canonical_hash, source, round, origin, solution, attempts, successes FROM puzzles "
        f"WHERE round <= {last_round} ORDER BY id",
    )


def _attempts(run_dir: Path, last_round: int) -> list[tuple]:
    return corpus_rows(
        run_dir / "corpus.sqlite",
        "SELECT p.canonical_hash, s.round, s.attempt, s.source, s.status, s.origin FROM solutions s "
        f"JOIN puzzles p ON p.id = s.puzzle_id WHERE s.round <= {last_round} ORDER BY p.id, s.round, s.attempt",
    )


def _samples(eval_dir: Path) -> list[dict]:
    """An evaluation's samples without their judging times."""
    rows = [json.loads(line) for line in (eval_dir / "samples.jsonl").read_text().splitlines()]
    return sorted(
        ({k: v for k, v in row.items() if k != "seconds"} for row in rows), key=lambda r: (r["puzzle"], r["sample"])
    )


@pytest.fixture(scope="module")
def config_path(tiny_model_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("processes")
    path = write_run_config(folder / "c.yaml", tiny_model_dir, folder / "unused")
    settings = yaml.safe_load(path.read_text()) | {"seed_pairs": "ours"}  # something to train on in round 1
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.fixture(scope="module")
def one_process(config_path) -> Path:
    run_dir = _prepared(config_path, config_path.parent / "one")
    assert main(["run", str(config_path), "--output-dir", str(run_dir)]) == 0
    return run_dir


@pytest.fixture(scope="module")
def two_processes(config_path) -> Path:
    run_dir = _prepared(config_path, config_path.parent / "two")
    child = _launch("run", str(config_path), "--output-dir", str(run_dir))
    output, _ = child.communicate(timeout=900)
    assert child.returncode == 0, output[-3000:]
    return run_dir


def test_shared_work_keeps_the_order_of_its_items_in_one_process() -> None:
    assert shared(list("abc"), lambda share: [x.upper() for x in share]) == ["A", "B", "C"]
    with pytest.raises(ValueError, match="a share of 3 items gave 2 results"):
        shared(list("abc"), lambda share: share[:2])
    assert requested_cpu_processes() == 1  # not started by accelerate's CPU launcher


def test_two_processes_collect_what_one_process_collects(one_process, two_processes) -> None:
    one, two = check_finished_run(one_process), check_finished_run(two_processes)
    # Before any training the two runs sample with the same seeds: the same baseline samples, proposals,
    # kept puzzles and judged attempts, each prompt sampled exactly its n times.
    assert _samples(one_process / "baseline" / "eval") == _samples(two_processes / "baseline" / "eval")
    assert one[0]["pass@1"] == two[0]["pass@1"]
    for name in ("proposals.jsonl", "filter.json"):
        assert (one_process / "round_1" / name).read_text() == (two_processes / "round_1" / name).read_text()
    assert _puzzles(one_process, 1) == _puzzles(two_processes, 1)
    assert _attempts(one_process, 1) == _attempts(two_processes, 1)
    assert one[1]["funnel"] == two[1]["funnel"] and one[1]["verified_solutions"] == two[1]["verified_solutions"]
    # Training is data-parallel: the same steps, each on a batch per process, so twice the tokens (and another
    # model, hence other samples from round 1's evaluation on).
    assert one[1]["training_examples"] == two[1]["training_examples"]
    trained = [json.loads((run / "round_1" / "checkpoint" / RESULT_FILE).read_text())["result"]
               for run in (one_process, two_processes)]  # fmt: skip
    assert trained[0]["steps"] == trained[1]["steps"] == 2
    assert trained[1]["tokens"] > trained[0]["tokens"]


def test_eval_across_two_processes_judges_the_same_samples(tiny_model_dir, tmp_path) -> None:
    settings = ["--model", str(tiny_model_dir), "--heldout", "p3-test228", "--limit", "5", "--n", "3", "--k", "1,3"]
    settings += ["--max-new-tokens", "32", "--block-sequences", "9"]  # blocks of 3 puzzles: shares of 2 and 1
    # One sequence decoded at a time in both runs: the split must not change any sample, while batches of other
    # sizes may round differently (on AVX2 machines a near-uniform tiny model then flips a token).
    settings += ["--batch-size", "1"]
    assert main(["eval", *settings, "--output-dir", str(tmp_path / "one")]) == 0
    child = _launch("eval", *settings, "--output-dir", str(tmp_path / "two"))
    output, _ = child.communicate(timeout=600)
    assert child.returncode == 0, output[-3000:]
    assert output.count("held-out set: p3-test228") == 1  # the main process reports, once
    assert _samples(tmp_path / "one") == _samples(tmp_path / "two")
    one, two = (json.loads((tmp_path / run / "results.json").read_text()) for run in ("one", "two"))
    assert one["per_puzzle"] == two["per_puzzle"] and one["pass@3"] == two["pass@3"]


def _rank_one_pid(run_dir: Path) -> int | None:
    """The process of rank 1 among those running on `run_dir`."""
    for proc in Path("/proc").iterdir():
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"RANK=1" in environ and str(run_dir).encode() in cmdline:
            return int(proc.name)
    return None


def test_a_process_killed_mid_stage_resumes_and_loses_nothing(config_path, two_processes) -> None:
    run_dir = _prepared(config_path, config_path.parent / "killed")
    child = _launch("run", str(config_path), "--output-dir", str(run_dir))
    deadline = time.time() + 600
    for line in child.stdout:
        if "round 1 solve: starting" in line or time.time() > deadline:
            break
    pid = _rank_one_pid(run_dir)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    child.communicate(timeout=300)
    assert child.returncode != 0  # the launch ends with its killed process
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1  # the baseline's

    resumed = _launch("run", "--resume", "--output-dir", str(run_dir))
    output, _ = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, output[-3000:]
    assert "round 1 propose: done earlier, skipped" in output
    check_finished_run(run_dir)
    assert _puzzles(run_dir, 2) == _puzzles(two_processes, 2)
    assert _attempts(run_dir, 2) == _attempts(two_processes, 2)
