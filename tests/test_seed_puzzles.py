"""The project's seed puzzles: enough of them, every P3 answer type, each reference solution verified (fast) by
the real sandbox judge, each sat a real condition, and none equal or near to a held-out P3 test instance."""

from __future__ import annotations

import pytest
from sandbox import Judge

from puzzleloop.config import FilterConfig
from puzzleloop.data import DataError, P3Instance, SeedPuzzle, load_p3, load_seed_puzzles, named_set
from puzzleloop.filters import trivial_candidates
from puzzleloop.puzzles import NearDuplicateIndex, canonical_hash, parse_puzzle, solution_header

MIN_SEEDS = 60
FAST_SECONDS = 0.1  # CPU seconds a reference check may take: seeds double as fast test data
CONTAMINATION_THRESHOLD = FilterConfig().contamination_threshold


@pytest.fixture(scope="module")
def seeds() -> list[SeedPuzzle]:
    return load_seed_puzzles()


@pytest.fixture(scope="module")
def p3() -> list[P3Instance]:
    try:
        return load_p3()
    except DataError as e:
        pytest.skip(f"P3 data unavailable: {e}")


@pytest.fixture(scope="module")
def test_instances(p3: list[P3Instance]) -> list[P3Instance]:
    return named_set("p3-test-all")


def test_enough_uniquely_named_seeds(seeds: list[SeedPuzzle]) -> None:
    names = [s.name for s in seeds]
    assert len(set(names)) == len(names) >= MIN_SEEDS


def test_every_p3_answer_type_is_covered(seeds: list[SeedPuzzle], p3: list[P3Instance]) -> None:
    missing = {p.ans_type for p in p3} - {s.answer_type for s in seeds}
    assert not missing, f"no seed puzzle has answer type(s) {sorted(missing)}"


def test_reference_solutions_verify_quickly(seeds: list[SeedPuzzle]) -> None:
    with Judge() as judge:
        verdicts = judge.judge([(s.sat, s.sol) for s in seeds])
    failed = {s.name: (v.status, v.reason) for s, v in zip(seeds, verdicts, strict=True) if v.status != "verified"}
    assert not failed
    slow = {s.name: v.seconds for s, v in zip(seeds, verdicts, strict=True) if v.seconds >= FAST_SECONDS}
    assert not slow, f"reference checks over {FAST_SECONDS} CPU seconds: {slow}"


def _constant_solution(seed: SeedPuzzle, value: object) -> str:
    return f"{solution_header(parse_puzzle(seed.sat, seed.name))}\n    return {value!r}\n"


def test_every_sat_rejects_a_simple_answer(seeds: list[SeedPuzzle]) -> None:
    """A sat that accepted every simple answer of its type would not be a puzzle (e.g. `return True`)."""
    pairs, owners = [], []
    for seed in seeds:
        for value in trivial_candidates(seed.answer_type)[:4]:
            pairs.append((seed.sat, _constant_solution(seed, value)))
            owners.append(seed.name)
    with Judge() as judge:
        verdicts = judge.judge(pairs)
    rejected = {owner for owner, v in zip(owners, verdicts, strict=True) if v.status != "verified"}
    accepts_all = sorted({s.name for s in seeds} - rejected)
    assert not accepts_all, f"these sats accept every simple answer tried: {accepts_all}"


def test_no_seed_equals_a_p3_test_instance(seeds: list[SeedPuzzle], test_instances: list[P3Instance]) -> None:
    assert len(test_instances) == 1009
    test_hashes = {canonical_hash(p.sat, p.name): p.name for p in test_instances}
    equal = {s.name: test_hashes[h] for s in seeds if (h := canonical_hash(s.sat, s.name)) in test_hashes}
    assert not equal


def test_no_seed_is_near_a_p3_test_instance(seeds: list[SeedPuzzle], test_instances: list[P3Instance]) -> None:
    index = NearDuplicateIndex((p.name, p.sat) for p in test_instances)
    nearest = {s.name: index.nearest(s.sat, s.name) for s in seeds}
    worst_seed, (worst_ref, worst) = max(nearest.items(), key=lambda item: item[1][1])
    assert worst < CONTAMINATION_THRESHOLD, f"{worst_seed} is {worst:.3f} similar to {worst_ref}"
