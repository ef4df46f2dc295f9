"""Helpers shared by the test modules: the pinned P3 copy's marker, a finished run folder built for real, and the
proposals a program-writing proposer would make."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from sandbox import Judge

from puzzleloop.corpus import Attempt, Corpus, PuzzleRecord
from puzzleloop.data import BESIDE_CHECKOUT, load_seed_puzzles, named_set
from puzzleloop.files import write_json_atomic, write_jsonl_atomic
from puzzleloop.filters import FilterResult
from puzzleloop.puzzles import canonical_hash
from puzzleloop.rounds import SelfPlayRun

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


def inject_round_one_programs(config) -> None:
    """Round 1's proposals as an abduction proposer would write them: a program and `assert f<k>(<input>) == ...`."""
    run = SelfPlayRun(config, log=lambda _: None)
    prompts = run._propose_prompts(1)
    run.close()
    rows = []
    for i, prompt in enumerate(prompts):
        for j in range(config.propose.samples_per_prompt):
            program, value = PROGRAMS[(i + j) % len(PROGRAMS)]
            completion = f"{program}\n\nassert {prompt.next_name}({value}) == 0\n"
            row = {"prompt": i, "sample": j, "seeds": list(prompt.seeds), "next_name": prompt.next_name}
            rows.append(row | {"completion": completion, "tokens": 1})
    folder = Path(config.output_dir) / "round_1"
    folder.mkdir(parents=True)
    (folder / "proposals.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
