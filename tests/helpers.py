"""Helpers shared by the test modules: the pinned P3 copy's marker, a finished run folder built for real, and the
proposals a program-writing proposer would make."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
import yaml
from sandbox import Judge

from puzzleloop.corpus import Attempt, Corpus, PuzzleRecord
from puzzleloop.data import BESIDE_CHECKOUT, load_seed_puzzles, named_set
from puzzleloop.files import write_json_atomic, write_jsonl_atomic
from puzzleloop.filters import FilterResult, kept
from puzzleloop.puzzles import canonical_hash
from puzzleloop.stages.context import RunContext
from puzzleloop.stages.proposing import propose_prompts

P3_PUZZLES = BESIDE_CHECKOUT / "puzzles.json"
needs_p3 = pytest.mark.skipif(not P3_PUZZLES.is_file(), reason="no pinned P3 copy")

NEAR_COPY_OF = "modular_inverse"


def seed_choice() -> tuple[list, list]:
    """Round 1 and round 2 seed puzzles: one of each answer type first, so the type mix is wide."""
    seeds = load_seed_puzzles()
    first_of_type = list({s.answer_type: s for s in reversed(seeds)}.values())
    rest = [s for s in seeds if s not in first_of_type]
    chosen = first_of_type[:6] + rest[:2] + [s for s in seeds if s.name == NEAR_COPY_OF]
    round1 = list(dict.fromkeys(chosen))
    round2 = [s for s in first_of_type[6:] + rest[2:5] if s not in round1]
    return round1, round2


def build_run_folder(folder: Path) -> Path:
    """A finished two-round run: puzzles, judged attempts, filter reports, stage markers, metrics, config.

    Round 2 also holds a near-copy of a round-1 puzzle (another constant) and a P3 held-out instance, the
    two things `corpus stats` must flag. Puzzle i gets i % 4 wrong attempts besides the reference solution,
    every fifth puzzle none of it right, and the last one is never attempted.
    """
    if not P3_PUZZLES.is_file():
        pytest.skip("no pinned P3 copy (the folder holds a P3 held-out instance)")
    round1, round2 = seed_choice()
    original = next(s for s in round1 if s.name == NEAR_COPY_OF)
    near_copy = (original.sat.replace("1234567", "7654321"), original.sol.replace("1234567", "7654321"))
    heldout = named_set("p3-test-all")[1]
    plan = [(1, s.sat, s.sol, s.answer_type) for s in round1]
    plan += [(2, s.sat, s.sol, s.answer_type) for s in round2]
    plan += [(2, *near_copy, original.answer_type), (2, heldout.sat, heldout.reference_solution, heldout.ans_type)]
    folder.mkdir(parents=True)
    with Corpus(folder / "corpus.sqlite") as corpus, Judge(workers=1) as judge:
        for round_ in (1, 2):
            mine = [p for p in plan if p[0] == round_]
            records = [
                PuzzleRecord(canonical_hash(sat), sat, answer_type, round_, f"model-round-{round_ - 1}", ("seed:a",))
                for _, sat, _, answer_type in mine
            ]
            assert corpus.add_puzzles(records) == len(records)
            removed = Counter({"parse": 3, "trivial": 2 * round_, "duplicate": round_})
            info = {"funnel": FilterResult(removed=removed).counts(len(mine) + sum(removed.values())),
                    "removed": dict(removed), "kept": len(mine)}  # fmt: skip
            write_json_atomic(folder / f"round_{round_}" / "filter.json", info)
            corpus.mark_stage_done(round_, "filter", info)
        rows = corpus.puzzles()
        for i, (row, (_, sat, sol, _)) in enumerate(zip(rows[:-1], plan, strict=False)):
            header = sol.split("\n", 1)[0]
            wrong = [f"{header}\n    return None\n", f"{header}\n    return {i}\n", f"{header}\n    1 / 0\n"]
            sols = ([] if i % 5 == 4 else [sol]) + [wrong[j % 3] for j in range(i % 4)] or [wrong[0]]
            verdicts = judge.judge([(sat, s) for s in sols])
            attempts = [Attempt(s, v.status) for s, v in zip(sols, verdicts, strict=True)]
            corpus.record_attempts(row.id, row.round, attempts)
        rows = corpus.puzzles()  # now with their solve counts
    metrics = []
    for round_, (p1, p2) in enumerate([(0.01, 0.02), (0.03, 0.05), (0.04, 0.07)]):
        line = {"round": round_, "pass@1": p1, "pass@1_ci95": [0.0, 2 * p1], "pass@2": p2,
                "pass@2_ci95": [p2 / 2, 2 * p2], "solved_within@1": p1, "solved_puzzles": round_}  # fmt: skip
        if round_:
            line["funnel"] = json.loads((folder / f"round_{round_}" / "filter.json").read_text())["funnel"]
            solved = [p for p in rows if p.round == round_ and p.successes]
            line |= {"verified_puzzles": len(solved), "training_examples": sum(p.successes for p in solved)}
        metrics.append(line)
    write_jsonl_atomic(folder / "metrics.jsonl", metrics)
    config = {"output_dir": str(folder), "rounds": 2, "p3_dir": None,
              "filter": {"trivial_check": True, "contamination_threshold": 0.8, "max_source_chars": 2000}}  # fmt: skip
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


PROGRAMS = [  # what a proposer that writes programs might write: (program after `def f<k>(`, the call's input)
    ("li: List[int], n=3):\n    return [x * 2 for x in li if x > n]", "[9, 4, 7, 1]"),
    ("s: str, k=2):\n    return s[::k] + s[1::k].upper()", "'puzzle'"),
    ("x: int):\n    return x * x - 7 * x", "12345"),
    ("s: str):\n    return len(s) % 2", "'abcd'"),  # trivial: '' gives the same target
    ("x: int):\n    return x // 0", "5"),  # raises: no output, no puzzle
]


def inject_round_one_programs(config, opening: bool = False) -> None:
    """Round 1's proposals as an abduction proposer would write them: a program and `assert f<k>(<input>) == ...`.

    opening: each row's prompt ended with the program's answer parameter (`def f<k>(li: List[int]`), and its
    completion holds only the rest."""
    context = RunContext(config, log=lambda _: None)
    prompts = propose_prompts(context, 1)
    context.close()
    rows = []
    for i, prompt in enumerate(prompts):
        for j in range(config.propose.samples_per_prompt):
            program, value = PROGRAMS[(i + j) % len(PROGRAMS)]
            completion = f"{program}\n\nassert {prompt.next_name}({value}) == 0\n"
            row = {"prompt": i, "sample": j, "seeds": list(prompt.seeds), "next_name": prompt.next_name}
            if opening:
                cut = min(completion.index(c) for c in ",)" if c in completion)
                row["opening"], completion = completion[:cut], completion[cut:]
            rows.append(row | {"completion": completion, "tokens": 1})
    folder = Path(config.output_dir) / "round_1"
    folder.mkdir(parents=True)
    (folder / "proposals.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


RUN_ROUNDS = 2


def inject_round_one_proposals(config, with_solutions: bool = False) -> None:
    """Stand in for a model that can already write puzzles: round 1's proposals are copies of seed puzzles.

    A tiny random model only writes noise, which the filters rightly drop; with these, every later stage has
    real work. Some proposals repeat (the duplicate filter), one is broken (the parse filter).
    """
    context = RunContext(config, log=lambda _: None)
    prompts = propose_prompts(context, 1)
    context.close()
    seeds = load_seed_puzzles()
    rows = []
    for i, prompt in enumerate(prompts):
        for j in range(config.propose.samples_per_prompt):
            sat = seeds[(i * 3 + j) % 7].sat
            completion = "x: int, = 3):\n    return" if (i, j) == (0, 0) else sat.split("(", 1)[1]
            if with_solutions:  # the proposer's answer: the seed's reference solution, as the prompt's g<k>
                sol, k = seeds[(i * 3 + j) % 7].sol, prompt.next_name[1:]
                completion += f"\n\ndef g{k}({sol.split('(', 1)[1].rstrip()}\n\nassert f{k}(g{k}())\n"
            rows.append({"prompt": i, "sample": j, "seeds": list(prompt.seeds), "completion": completion, "tokens": 1})
    folder = Path(config.output_dir) / "round_1"
    folder.mkdir(parents=True)
    (folder / "proposals.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def write_run_config(path: Path, model: Path, output_dir: Path) -> Path:
    """A two-round run of a tiny model on small budgets, every stage with some work."""
    settings = {
        "output_dir": str(output_dir), "model_name_or_path": str(model), "rounds": RUN_ROUNDS, "timeout": 1.0,
        "block_sequences": 6,
        "propose": {"seeds": "ours", "prompts": 3, "samples_per_prompt": 4, "shots": 3,
                    "sampling": {"temperature": 0.6, "max_new_tokens": 120}},
        "solve": {"attempts": 3, "sampling": {"temperature": 0.6, "max_new_tokens": 80}},
        "train": {"learning_rate": 1e-4, "max_steps": 2, "batch_size": 2, "block_size": 256},
        "eval": {"heldout": "p3-test228", "n": 2, "k": [1, 2], "limit": 2, "sampling": {"max_new_tokens": 24}},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(settings))
    return path


def corpus_rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def check_finished_run(run_dir: Path) -> list[dict]:
    """Assert what every finished run of `write_run_config` holds; return its metrics lines."""
    db = run_dir / "corpus.sqlite"
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["round"] for m in metrics] == list(range(RUN_ROUNDS + 1))
    assert (run_dir / "baseline" / "eval" / "results.json").exists()
    for round_ in range(1, RUN_ROUNDS + 1):
        folder = run_dir / f"round_{round_}"
        proposals = (folder / "proposals.jsonl").read_text().splitlines()
        assert len(proposals) == 3 * 4
        report = json.loads((folder / "filter.json").read_text())
        funnel = report["funnel"]
        assert funnel["proposed"] == 12 and sum(report["removed"].values()) + report["kept"] == 12
        assert kept(funnel) == report["kept"]
        stored = corpus_rows(db, f"SELECT COUNT(*) FROM puzzles WHERE round = {round_}")[0][0]
        assert stored == report["kept"]
        attempts = corpus_rows(db, f"SELECT COUNT(*) FROM solutions WHERE round = {round_}")[0][0]
        assert attempts == 3 * stored  # every kept puzzle attempted exactly `attempts` times, nothing twice
        line = metrics[round_]
        trained = (folder / "checkpoint").exists()
        assert (folder / "eval" / "results.json").exists() == trained
        assert trained or line["reused_from"] == round_ - 1
        assert line["funnel"] == funnel and "pass@2" in line and line["stage_seconds"]["solve"] is not None
    hashes = corpus_rows(db, "SELECT canonical_hash FROM puzzles")
    assert len(hashes) == len(set(hashes))
    return metrics
