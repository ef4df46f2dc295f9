"""Isolation by construction: no state survives from one check to the next, the judge never chokes on a program,
and honest idioms (the borderline ones included) verify."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from sandbox import Judge, Limits, Verdict
from tests.attacks.honest import BORDERLINE_REFUSED, HONEST
from tests.attacks.isolation import ATTACKS, SEQUENCES

LIMITS = Limits(timeout=2.0, memory_mb=512)


def test_the_corpora_are_large_enough() -> None:
    assert len(ATTACKS) + len(SEQUENCES) >= 30
    assert len(HONEST) >= 30


@pytest.fixture(scope="module")
def attack_verdicts() -> dict[str, Verdict]:
    with Judge(workers=2, limits=LIMITS) as judge:
        verdicts = judge.judge([(sat, sol) for _, sat, sol in ATTACKS])
    return {name: verdict for (name, _, _), verdict in zip(ATTACKS, verdicts, strict=True)}


@pytest.mark.parametrize("name", [name for name, _, _ in ATTACKS])
def test_attack_is_neither_verified_nor_crashes_the_judge(attack_verdicts: dict[str, Verdict], name: str) -> None:
    verdict = attack_verdicts[name]
    assert verdict.status not in ("verified", "crashed"), verdict
    assert len(verdict.reason) <= LIMITS.max_reason_chars


def test_attacks_get_the_verdict_their_cause_deserves(attack_verdicts: dict[str, Verdict]) -> None:
    expected = {
        "unbound_format": "error",
        "super_format": "error",
        "metaclass_build": "error",
        "metaclass_liar": "error",
        "reduce_setattr_counter": "error",
        "posonly_bool": "type_error",
        "posonly_str": "type_error",
        "kwonly_answer": "rejected",
        "describe_str_loops": "timeout",
        "describe_str_raises": "error",
        "deep_attribute_chain": "rejected",
        "deep_annotation": "rejected",
        "deep_string_annotation": "rejected",
        "sat_deep_attribute_chain": "rejected",
        "sat_nested_lambdas": "rejected",
        "answer_too_large": "error",
        "match_class_dunder": "rejected",
        "match_capture_dunder": "rejected",
        "sat_truthy_object": "wrong",
    }
    assert {name: attack_verdicts[name].status for name in expected} == expected


@pytest.fixture(scope="module")
def fresh_verdicts() -> dict[str, str]:
    """Each sequence's last pair, judged alone by a judge that has seen nothing else."""
    verdicts = {}
    for name, pairs in SEQUENCES:
        with Judge(workers=1, limits=LIMITS) as judge:
            verdicts[name] = judge.judge([pairs[-1]])[0].status
    return verdicts


@pytest.mark.parametrize("name", [name for name, _ in SEQUENCES])
def test_no_state_survives_from_one_check_to_the_next(fresh_verdicts: dict[str, str], name: str) -> None:
    """One worker slot, so a reused process would carry the preparation into the last pair."""
    pairs = dict(SEQUENCES)[name]
    with Judge(workers=1, limits=LIMITS) as judge:
        in_one_call = judge.judge(pairs)[-1].status
        for pair in pairs[:-1]:
            judge.judge([pair])
        in_later_call = judge.judge([pairs[-1]])[0].status
    assert in_one_call == in_later_call == fresh_verdicts[name]
    assert fresh_verdicts[name] != "crashed"


def test_sequence_victims_are_judged_as_if_alone(fresh_verdicts: dict[str, str]) -> None:
    assert fresh_verdicts["abc_registry_by_sol"] == "wrong"
    assert fresh_verdicts["counter_eq_patched"] == "wrong"
    assert fresh_verdicts["memory_left_behind"] == "verified"
    assert fresh_verdicts["timeout_then_honest"] == "verified"


def test_honest_idioms_verify() -> None:
    with Judge(workers=2, limits=LIMITS) as judge:
        verdicts = judge.judge([(sat, sol) for _, sat, sol in HONEST])
    failed = {name: v for (name, _, _), v in zip(HONEST, verdicts, strict=True) if v.status != "verified"}
    assert not failed


def test_borderline_idioms_refused_by_design() -> None:
    with Judge(workers=2, limits=LIMITS) as judge:
        verdicts = judge.judge([(sat, sol) for _, sat, sol in BORDERLINE_REFUSED])
    assert [v.status for v in verdicts] == ["rejected"] * len(BORDERLINE_REFUSED), verdicts


def test_a_killed_warm_parent_costs_no_verdict() -> None:
    """The warm parent dies in the middle of a run: a fresh one judges what was left, nothing is `crashed`."""
    slow = (
        "def sat(x: int):\n    return x == 3",
        "def sol():\n    for _ in range(2 * 10 ** 6):\n        pass\n    return 3",
    )
    with Judge(workers=2, limits=LIMITS) as judge:
        judge.judge([slow])
        assert judge._proc is not None
        killer = threading.Timer(0.3, os.kill, (judge._proc.pid, signal.SIGKILL))
        killer.start()
        verdicts = judge.judge([slow] * 20)
        killer.join()
    assert [v.status for v in verdicts] == ["verified"] * 20


def test_a_huge_batch_with_dying_children_gets_a_verdict_for_every_pair() -> None:
    big = "def sol():\n    s = '" + "x" * 90_000 + "'\n    return len(s)"
    dying = "def sol():\n    x = [0] * (10 ** 10)"
    pairs = [("def sat(n: int):\n    return n == 90000", big if i % 2 else dying) for i in range(40)]
    with Judge(workers=2, limits=LIMITS) as judge:
        verdicts = judge.judge(pairs)
    assert [v.status for v in verdicts] == ["verified" if i % 2 else "memory" for i in range(40)]
