"""puzzleloop.record's helpers on real inputs: training texts made by the training-set builder from
our seed puzzles (and from P3 test puzzles, where the pinned copy is present), and sample rows as the held-out
evaluation writes them (statuses and reasons copied from a real samples.jsonl)."""

from __future__ import annotations

import pytest
from tests.helpers import needs_p3

from puzzleloop import record as rr
from puzzleloop.data import load_seed_puzzles, named_set
from puzzleloop.prompts import solved_parts
from puzzleloop.puzzles import NearDuplicateIndex, canonical_hash, rename_function


def _prompt(sat: str, sol: str) -> str:
    return solved_parts(sat, sol)[0]


def test_the_puzzle_of_every_seed_training_prompt_is_recovered_exactly() -> None:
    seeds = load_seed_puzzles()
    assert seeds
    for seed in seeds:
        puzzle = rr.puzzle_from_training_prompt(_prompt(seed.sat, seed.sol), seed.name)
        assert puzzle == seed.sat.strip()
        assert canonical_hash(puzzle) == canonical_hash(seed.sat)


def test_the_puzzle_is_compared_under_its_own_name_because_the_canonical_form_depends_on_it() -> None:
    (seed,) = [s for s in load_seed_puzzles() if s.name == "comma_separated_table"]  # it has a local `f`
    assert canonical_hash(rename_function(seed.sat, "f")) != canonical_hash(seed.sat)
    assert canonical_hash(rr.puzzle_from_training_prompt(_prompt(seed.sat, seed.sol))) == canonical_hash(seed.sat)


def test_a_def_f_inside_the_solution_stays_in_the_completion() -> None:
    seed = load_seed_puzzles()[0]
    sol = "def sol(a=1234567, m=1000003):\n    def f(x):\n        return x\n    return f(pow(a, m - 2, m))"
    prompt, completion = solved_parts(seed.sat, sol)
    assert "def f(" in completion and prompt.count("def f(") == 1
    assert rr.puzzle_from_training_prompt(prompt) == seed.sat.strip()


@pytest.mark.parametrize("text", ["def g():\n    return 1\n\nassert g()\n", "def f(:\n", ""])
def test_a_training_prompt_without_one_parsable_def_f_is_an_error_naming_it(text: str) -> None:
    with pytest.raises(rr.RecordError, match="train.jsonl: line 3"):
        rr.puzzle_from_training_prompt(text, "train.jsonl: line 3")


@needs_p3
def test_a_test_puzzle_in_a_training_prompt_is_found_at_similarity_one() -> None:
    test = named_set("p3-test-all")[:40]
    index = NearDuplicateIndex((i.name, i.sat) for i in test)
    leaked = test[7]
    puzzle = rr.puzzle_from_training_prompt(_prompt(leaked.sat, leaked.reference_solution))
    assert index.nearest(puzzle) == (leaked.name, 1.0)
    assert canonical_hash(puzzle) == canonical_hash(leaked.sat)
    seed = load_seed_puzzles()[0]
    assert index.nearest(rr.puzzle_from_training_prompt(_prompt(seed.sat, seed.sol)))[1] < 0.8


def _sample(status: str, reason: str) -> dict[str, object]:
    return {"puzzle": "AllCubicRoots:0", "module": "algebra.py", "sample": 0, "completion": "...", "tokens": 9,
            "status": status, "reason": reason, "seconds": 0.0}  # fmt: skip


REAL_SAMPLES = [
    _sample("type_error", "expected List[float], got str"),
    _sample("type_error", "expected int, got list"),
    _sample("rejected", "sol: line 2: syntax error: '[' was never closed"),
    _sample("rejected", "sol: line 1: syntax error: expected an indented block after function definition on line 1"),
    _sample("rejected", "sol: line 2: import of 'numpy' is not allowed"),  # rejected, but it parsed
    _sample("error", "sat raised SyntaxError: eval refused: line 1: syntax error: invalid syntax"),  # at run time
    _sample("error", "sol raised NameError: name 'coefficients' is not defined"),
    _sample("verified", ""),
]


def test_rates_count_type_errors_and_only_rejected_syntax_errors() -> None:
    rates = rr.sample_rates(REAL_SAMPLES)
    assert rates == {"samples": 8, "type_error_rate": 2 / 8, "parse_error_rate": 2 / 8}


def test_rates_need_samples_with_a_status() -> None:
    with pytest.raises(rr.RecordError, match="samples.jsonl: no samples"):
        rr.sample_rates([], "samples.jsonl")
    broken = [dict(REAL_SAMPLES[0]), {"puzzle": "X:0", "sample": 0}]
    with pytest.raises(rr.RecordError, match="samples.jsonl: sample 2: field 'status' is missing"):
        rr.sample_rates(broken, "samples.jsonl")


def test_solved_names_are_the_puzzles_with_a_verified_sample_in_set_order() -> None:
    results = {"per_puzzle": {"Median:0": 1, "AllCubicRoots:0": 0, "IsEven:0": 3}}
    assert rr.solved_puzzle_names(results) == ["Median:0", "IsEven:0"]
    with pytest.raises(rr.RecordError, match="results.json: field 'per_puzzle' is missing"):
        rr.solved_puzzle_names({}, "results.json")


def test_seed_origins_and_round_labels() -> None:
    tests, train = {"Study_1", "IsEven"}, {"Nash:0"}
    origins = [rr.seed_origin(n, tests, train) for n in ("seed:few_coins_payment", "IsEven:3", "Nash:0", "Odd:1")]
    assert origins == ["ours", "p3_test", "p3_train", "other"]
    assert [rr.label_round(x) for x in ("test228@round0", "dev@round12", "test228", "x@round")] == [0, 12, None, None]
