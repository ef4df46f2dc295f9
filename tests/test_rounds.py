"""Self-play rounds end to end on a tiny model that was taught the seed puzzles, with the real sandbox."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from tests.helpers import (
    check_finished_run,
    corpus_rows,
    inject_round_one_programs,
    inject_round_one_proposals,
    needs_p3,
    write_run_config,
)

from puzzleloop.cli import main
from puzzleloop.config import ConfigError, SelectionConfig, load_config
from puzzleloop.construct import literal, target_form
from puzzleloop.corpus import Attempt
from puzzleloop.data import load_seed_puzzles, named_set
from puzzleloop.filters import kept
from puzzleloop.puzzles import parse_puzzle, solution_header
from puzzleloop.rounds import SelfPlayRun, prepare_run
from puzzleloop.selection import select_training_set
from puzzleloop.stages import filtering, relabeling, seeding, solving
from puzzleloop.stages.context import RunContext
from puzzleloop.stages.proposing import propose_prompts
from puzzleloop.stages.seeding import seed_examples
from puzzleloop.stages.solving import puzzles_to_solve


@needs_p3
def test_two_rounds_produce_every_stage_output(tiny_model_dir, tmp_path):
    config = load_config(write_run_config(tmp_path / "c.yaml", tiny_model_dir, tmp_path / "run"))
    inject_round_one_proposals(config)
    SelfPlayRun(config, log=lambda _: None).run()
    metrics = check_finished_run(tmp_path / "run")
    report = json.loads((tmp_path / "run" / "round_1" / "filter.json").read_text())
    assert report["removed"]["parse"] == 1 and report["removed"]["duplicate"] >= 4
    assert report["kept"] >= 3 and kept(metrics[1]["funnel"]) == report["kept"]
    # the noise the random model proposed itself in round 2 is all filtered out, so round 2 would retrain on
    # round 1's examples: it keeps round 1's model and measurement instead
    assert kept(metrics[2]["funnel"]) == 0
    assert not (tmp_path / "run" / "round_2" / "checkpoint").exists() and metrics[2]["reused_from"] == 1


@needs_p3
def test_with_solution_proposals_are_judged_first_and_train_the_model(tiny_model_dir, tmp_path):
    path = write_run_config(tmp_path / "c.yaml", tiny_model_dir, tmp_path / "run")
    config = load_config(path, ["rounds=1", "propose.with_solution=true"])
    inject_round_one_proposals(config, with_solutions=True)
    SelfPlayRun(config, log=lambda _: None).run()
    db = tmp_path / "run" / "corpus.sqlite"
    kept = corpus_rows(db, "SELECT id FROM puzzles WHERE round = 1")
    assert len(kept) >= 3
    for (puzzle_id,) in kept:  # the proposer's answer, then the solve stage's 3 attempts
        statuses = corpus_rows(db, f"SELECT status FROM solutions WHERE puzzle_id = {puzzle_id} ORDER BY attempt")
        assert len(statuses) == 4 and statuses[0] == ("verified",)
    assert (tmp_path / "run" / "round_1" / "checkpoint").exists()


@needs_p3
def test_seed_pairs_are_verified_into_round_zero_and_trained_on(tiny_model_dir, tmp_path):
    path = write_run_config(tmp_path / "c.yaml", tiny_model_dir, tmp_path / "run")
    config = load_config(path, ["rounds=1", "seed_pairs=ours"])
    SelfPlayRun(config, log=lambda _: None).run()
    db = tmp_path / "run" / "corpus.sqlite"
    seeds = load_seed_puzzles()
    assert corpus_rows(db, "SELECT COUNT(*), MIN(proposer), MAX(proposer) FROM puzzles WHERE round = 0") == [
        (len(seeds), "seed", "seed")
    ]
    assert corpus_rows(db, "SELECT status, COUNT(*) FROM solutions WHERE round = 0 GROUP BY status") == [
        ("verified", len(seeds))
    ]
    train = (tmp_path / "run" / "round_1" / "train.jsonl").read_text().splitlines()
    assert sum(json.loads(row)["round"] == 0 for row in train) == len(seeds)
    # the checkpoint's model card names what made it and how it measured
    card = ModelCard.load(tmp_path / "run" / "round_1" / "checkpoint" / "README.md")
    (result,) = [r for r in card.data.eval_results if r.metric_type == "pass@1"]
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert result.dataset_name == "p3-test228" and result.metric_value == round(100 * metrics[1]["pass@1"], 2)
    assert f"| seed | {len(seeds)} |" in card.text and "round 1 of 1" in card.text
    assert str(tiny_model_dir) in card.text and "## Contamination" in card.text and "## Reproduce" in card.text
    assert (tmp_path / "run" / "round_1" / "checkpoint").exists()


def _scalars(folder):
    """Every scalar tag TensorBoard event files under `folder` hold, with its steps."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = {}
    for events in folder.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            tags.setdefault(tag, set()).update(event.step for event in accumulator.Scalars(tag))
    return tags


def test_report_to_tensorboard_tracks_the_loss_and_every_rounds_metrics(tiny_model_dir, tmp_path):
    path = write_run_config(tmp_path / "c.yaml", tiny_model_dir, tmp_path / "run")
    overrides = ["rounds=1", "seed_pairs=ours", "train.training_args={report_to: [tensorboard], logging_steps: 1}"]
    with pytest.raises(ConfigError, match="train.training_args.logging_steps: set train.logging_steps instead"):
        prepare_run(path, None, overrides, resume=False)
    overrides[-1] = "train.training_args={report_to: [tensorboard]}"
    SelfPlayRun(prepare_run(path, None, overrides + ["train.logging_steps=1"], resume=False), log=print).run()
    tracking = tmp_path / "run" / "tracking"
    assert "train/loss" in _scalars(tracking / "round_1_train")
    rounds = _scalars(tracking / "rounds")
    assert rounds["pass@1"] == {0, 1} and rounds["pass@1_ci95/high"] == {0, 1}
    assert rounds["training_examples"] == {1} and "funnel/proposed" in rounds
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {line["heldout"] for line in metrics} == {"p3-test228"}
    assert all(line["evaluated_at"].startswith("20") for line in metrics)


@needs_p3
def test_seed_pairs_all_adds_the_other_train_instances(tiny_model_dir, tmp_path):
    path = write_run_config(tmp_path / "c.yaml", tiny_model_dir, tmp_path / "run")
    p3_dir = load_config(path, ["seed_pairs=all"]).p3_dir
    names = [seed.name for seed in seed_examples("all", p3_dir)]
    both = [seed.name for seed in seed_examples("both", p3_dir)]
    rest = [i.name for i in named_set("p3-train-rest")]
    assert sorted(names) == sorted(both + rest) and len(set(names)) == len(names)


@needs_p3
def test_killed_run_resumes_without_loss_or_duplicates(tiny_model_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    config_path = write_run_config(tmp_path / "c.yaml", tiny_model_dir, run_dir)
    inject_round_one_proposals(load_config(config_path))
    command = [sys.executable, "-m", "puzzleloop", "run", str(config_path)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    for line in child.stdout:
        if "round 1 solve: starting" in line or time.time() > deadline:
            time.sleep(0.3)
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (run_dir / "metrics.jsonl").exists() or len((run_dir / "metrics.jsonl").read_text().splitlines()) < 3

    with pytest.raises(Exception, match="--resume"):
        prepare_run(config_path, None, ["rounds=3"], resume=False)
    assert main(["run", "--resume", "--output-dir", str(run_dir)]) == 0
    check_finished_run(run_dir)
    final = capsys.readouterr().out.splitlines()[-1].removeprefix("final model: ")
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert final == last["model"] and Path(final, "config.json").is_file()  # the model to evaluate, even if reused


ABDUCTION = ["rounds=1", "propose.mode=abduction", "propose.model=base", "seed_pairs=ours"]


@needs_p3
def test_abduction_round_stores_constructed_pairs_by_origin_and_trains_on_them(tiny_model_dir, tmp_path):
    path = write_run_config(tmp_path / "c.yaml", tiny_model_dir, tmp_path / "run")
    config = load_config(path, ABDUCTION)
    inject_round_one_programs(config)
    metrics = SelfPlayRun(config, log=lambda _: None).run()
    db = tmp_path / "run" / "corpus.sqlite"
    report = json.loads((tmp_path / "run" / "round_1" / "filter.json").read_text())
    assert report["kept"] == 3 and report["removed"]["program_failed"] >= 1 and report["removed"]["trivial"] >= 1
    assert corpus_rows(db, "SELECT DISTINCT origin FROM puzzles WHERE round = 1") == [("constructed",)]
    for (puzzle_id,) in corpus_rows(db, "SELECT id FROM puzzles WHERE round = 1"):  # its input first, then 3 attempts
        rows = corpus_rows(db, f"SELECT status, origin FROM solutions WHERE puzzle_id = {puzzle_id} ORDER BY attempt")
        assert rows[0] == ("verified", "constructed") and {o for _, o in rows[1:]} == {"proposed"} and len(rows) == 4
    line = metrics[1]
    assert line["own_verified_by_origin"]["constructed"] == 3 and line["kept_rate"] == 3 / 12
    assert line["training_by_origin"]["constructed"] == 3 and line["training_by_origin"]["seed"] > 0
    assert 0 < line["synthetic_share"] < 1


@needs_p3
def test_abduction_prompts_can_open_with_a_seed_answer_type_which_the_filter_puts_back(tiny_model_dir, tmp_path):
    path = write_run_config(tmp_path / "c.yaml", tiny_model_dir, tmp_path / "run")
    config = load_config(path, [*ABDUCTION, "propose.answer_types=seeds"])
    context = RunContext(config, log=lambda _: None)
    prompts = propose_prompts(context, 1)
    seeds = seed_examples(config.propose.seeds, config.p3_dir)
    seed_types = {f"{p.answer_name}: {p.answer_type}" for p in (parse_puzzle(s.sat) for s in seeds)}
    assert all(p.opening in seed_types and p.text.endswith(f"def {p.next_name}({p.opening}") for p in prompts)
    inject_round_one_programs(config, opening=True)  # the completions continue after `li: List[int]` and the like
    seeding.run(context)
    report = filtering.run(context, 1)
    assert report.kept == 3 and all("def sat(" in p.source for p in context.corpus.puzzles(round=1))
    context.close()


@needs_p3
def test_wrong_answers_to_target_puzzles_are_relabeled_into_verified_pairs(tiny_model_dir, tmp_path):
    path = write_run_config(tmp_path / "c.yaml", tiny_model_dir, tmp_path / "run")
    config = load_config(path, [*ABDUCTION, "solve.relabel_per_puzzle=1"])
    inject_round_one_programs(config)
    context = RunContext(config, log=lambda _: None)
    seeding.run(context)
    filtering.run(context, 1)
    puzzles = context.corpus.puzzles(round=1)
    wrong = {  # two wrong answers per puzzle, as a solver might give them, judged like the solve stage would
        p.id: [p.solution.replace("return ", "return 2 * "), p.solution.replace("return ", "return 3 * ")]
        for p in puzzles
    }
    for p in puzzles:
        verdicts = context.judge().judge([(p.source, s) for s in wrong[p.id]])
        attempts = [Attempt(s, v.status) for s, v in zip(wrong[p.id], verdicts, strict=True)]
        context.corpus.record_attempts(p.id, 1, attempts)
    result = relabeling.run(context, 1)
    relabeled = [p for p in context.corpus.puzzles(round=1) if p.origin == "relabeled"]
    assert result.relabeled == len(relabeled) == 3 and result.over_cap == 3  # a cap of 1 per puzzle
    for puzzle in relabeled:
        (solution,) = context.corpus.solutions(puzzle.id)
        assert (solution.status, solution.origin) == ("verified", "relabeled")
        assert context.judge().judge([(puzzle.source, solution.source)])[0].status == "verified"
    capped = select_training_set(context.corpus, SelectionConfig(max_synthetic_share=0.05), latest_round=1)
    real = capped["origin"].count("seed")
    assert real > 0 and len(capped) - real == int(0.05 * real / 0.95)
    context.close()


@needs_p3
def test_relabel_seeds_relabels_this_rounds_wrong_answers_to_seed_puzzles_keeping_the_solvers_code(
    tiny_model_dir, tmp_path
):
    path = write_run_config(tmp_path / "c.yaml", tiny_model_dir, tmp_path / "run")
    config = load_config(path, [*ABDUCTION, "rounds=2", "solve.relabel_per_puzzle=2", "solve.relabel_seeds=true"])
    context = RunContext(config, log=lambda _: None)
    seeding.run(context)
    targets = [p for p in context.corpus.puzzles(round=0) if target_form(p.source) is not None]
    assert targets and [p.id for p in puzzles_to_solve(context, 1)] == [p.id for p in targets]  # no proposals yet
    for p in targets:  # two wrong answers each: code that reads the puzzle's parameters, and code that does not
        (reference,) = context.corpus.solutions(p.id)
        (value,) = context.judge().outputs([(target_form(p.source).program, reference.source)])
        computed = f"{solution_header(parse_puzzle(p.source))}\n    return 3 * {literal(value.answer)}\n"
        wrong = [reference.source.replace("return ", "return 2 * "), computed]
        verdicts = context.judge().judge([(p.source, w) for w in wrong])
        context.corpus.record_attempts(p.id, 1, [Attempt(w, v.status) for w, v in zip(wrong, verdicts, strict=True)])
    result = relabeling.run(context, 1)
    relabeled = [p for p in context.corpus.puzzles(round=1) if p.origin == "relabeled"]
    assert result.relabeled == len(relabeled) >= 2
    bodies = set()
    for puzzle in relabeled:
        (solution,) = context.corpus.solutions(puzzle.id)
        assert solution.source.startswith(solution_header(parse_puzzle(puzzle.source)))
        assert context.judge().judge([(puzzle.source, solution.source)])[0].status == "verified"
        bodies.add(solution.source.splitlines()[-1].strip().startswith("return 3 * "))
    assert bodies == {True, False}  # the solver's code is kept unless it reads the target relabeling changed
    assert relabeling.run(context, 2).relabeled == 0  # round 1's wrong answers are not relabeled again
    context.close()


@needs_p3
def test_more_attempts_go_to_puzzles_that_came_close_once_even_after_a_rerun(tiny_model_dir, tmp_path):
    path = write_run_config(tmp_path / "c.yaml", tiny_model_dir, tmp_path / "run")
    config = load_config(path, [*ABDUCTION, "solve.attempts=2", "solve.more_attempts=3"])
    inject_round_one_programs(config)
    context = RunContext(config, log=lambda _: None)
    seeding.run(context)
    filtering.run(context, 1)
    puzzles = context.corpus.puzzles(round=1)
    assert len(puzzles) == 3
    raising = [f"{solution_header(parse_puzzle(p.source))}\n    return 1 // 0\n" for p in puzzles]
    doubled = [p.solution.replace("return ", "return 2 * ") for p in puzzles]
    first_tries = [  # close (a wrong answer), solved (a verified one too), errors only
        [doubled[0], raising[0]],
        [doubled[1], puzzles[1].solution],
        [raising[2], raising[2]],
    ]
    for p, tries in zip(puzzles, first_tries, strict=True):
        sources = [p.solution, *tries]
        verdicts = context.judge().judge([(p.source, s) for s in sources])
        origins = [p.origin] + ["proposed"] * len(tries)
        context.corpus.record_attempts(
            p.id, 1, [Attempt(s, v.status, o) for s, v, o in zip(sources, verdicts, origins, strict=True)]
        )
    statuses = [[s.status for s in context.corpus.solutions(p.id)][1:] for p in puzzles]
    assert statuses == [["wrong", "error"], ["wrong", "verified"], ["error", "error"]]
    assert solving.run(context, 1).came_close == 1
    solving.run(context, 1)  # a rerun of the finished stage adds nothing
    extra = [[s for s in context.corpus.solutions(p.id) if s.attempt >= 3] for p in puzzles]
    assert [len(e) for e in extra] == [3, 0, 0] and {s.origin for s in extra[0]} == {"proposed"}
    context.close()
