"""Every hostile program ends not verified, the judge survives, and nothing is written outside scratch space."""

from __future__ import annotations

import os

import pytest
from sandbox import Judge, Limits, Verdict
from tests.attacks.programs import ATTACKS, CANARY

HONEST = ("def sat(x: int):\n    return x * 3 == 12", "def sol():\n    return 4")


@pytest.fixture(scope="module")
def attack_verdicts() -> dict[str, Verdict]:
    if os.path.exists(CANARY):
        os.remove(CANARY)
    with Judge(workers=2, limits=Limits(timeout=1.0, memory_mb=512)) as judge:
        verdicts = judge.judge([(sat, sol) for _, sat, sol in ATTACKS])
        assert judge.judge([HONEST])[0].status == "verified", "the judge must stay alive after the attacks"
    return {name: verdict for (name, _, _), verdict in zip(ATTACKS, verdicts, strict=True)}


def test_there_are_enough_attacks() -> None:
    assert len(ATTACKS) >= 50


@pytest.mark.parametrize("name", [name for name, _, _ in ATTACKS])
def test_attack_is_not_verified(attack_verdicts: dict[str, Verdict], name: str) -> None:
    verdict = attack_verdicts[name]
    assert verdict.status not in ("verified", "crashed"), verdict
    assert len(verdict.reason) <= 200


def test_nothing_written_outside_scratch(attack_verdicts: dict[str, Verdict]) -> None:
    assert not os.path.exists(CANARY)
    assert not os.path.exists("/tmp/x")


def test_expected_statuses(attack_verdicts: dict[str, Verdict]) -> None:
    assert attack_verdicts["infinite_loop"].status == "timeout"
    assert attack_verdicts["catch_timeout"].status == "timeout"
    assert attack_verdicts["memory_bomb"].status == "memory"
    assert attack_verdicts["open_write"].status == "rejected"
    assert attack_verdicts["int_subclass_eq"].status == "type_error"
    assert attack_verdicts["bool_not_int"].status == "type_error"
    assert attack_verdicts["sat_returns_truthy"].status == "wrong"
