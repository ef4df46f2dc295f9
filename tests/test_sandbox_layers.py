"""Each layer on its own: the static policy, the answer contract, the worker jail, the judge and `verify`."""

from __future__ import annotations

import argparse
import json
import os
import socket
from pathlib import Path

import pytest
from sandbox import OUTPUT_STATUSES, STATUSES, Judge, Limits, Verdict
from sandbox.answer import AnswerTypeError, checked_copy, decode_answer, encode_answer, parse_spec
from sandbox.harden import REPLY_FD, Jail, seccomp_programs
from sandbox.policy import PolicyError, parse_checked
from tests.helpers import P3_PUZZLES, needs_p3

from puzzleloop.verify import add_verify_arguments, run_verify, verify_file

SAT = "def sat(x: int):\n    return x * 3 == 12"


@pytest.mark.parametrize(
    "source",
    [
        "import os",
        "from collections import sys",
        "x = ().__class__",
        "def __del__(self): pass",
        "y = g.gi_frame",
        "s = '{0.real}'.format(1)",
        "getattr(1, 'real')",
        "_getattr_ = 1",
    ],
)
def test_policy_refuses(source: str) -> None:
    with pytest.raises(PolicyError):
        parse_checked(source)


def test_answer_contract_is_exact_and_copies() -> None:
    spec = parse_spec(parse_checked("x: List[List[int]]").body[0].annotation)
    value = [[1, 2], [3]]
    copied = checked_copy(value, spec)
    assert copied == value and copied is not value and copied[0] is not value[0]
    for bad in ([[1, True]], [(1, 2)], [[1.0]], "x"):
        with pytest.raises(AnswerTypeError):
            checked_copy(bad, spec)


def test_answer_crosses_as_exact_plain_data() -> None:
    spec = parse_spec(parse_checked("x: List[float]").body[0].annotation)
    for value in ([1.5, -0.0, float("inf"), 1e308], []):
        text = encode_answer(value, spec)
        assert "\n" not in text and "\t" not in text
        assert repr(decode_answer(text, spec)) == repr(value)
    assert decode_answer('"\\ud800x"', str) == "\ud800x"  # a lone surrogate survives the trip
    for bad in ("[1, 2]", "[1.0, true]", "{}", "[1.0", "[[1.0]]"):
        with pytest.raises(AnswerTypeError):
            decode_answer(bad, spec)


def test_check_semantics() -> None:
    shared = "def sat(x: List[int]):\n    x.append(1)\n    return len(x) == 1"
    cases = [
        ((SAT, "def g():\n    return 4"), "verified"),
        (("def f(x: int):\n    return x == 4", "def sol():\n    return 4"), "verified"),
        ((SAT, "def sol():\n    return 0"), "wrong"),
        ((SAT, "def sol():\n    return 1 / 0"), "error"),
        (("def sat(x: dict):\n    return True", "def sol():\n    return {}"), "rejected"),
        # parses, but only the compiler refuses it (seen in a real model sample): the program's fault
        ((SAT, "def sol():\n    *x[0::2] = True\n    return 4"), "rejected"),
        ((shared, "keep = []\ndef sol():\n    return keep"), "verified"),
        (("def sat(q: str):\n    return eval(q) == 7", "def sol():\n    return '3 + 4'"), "verified"),
        (("def sat(x: int):\n    return 1", "def sol():\n    return 1"), "wrong"),
    ]
    with Judge(workers=2, limits=Limits(timeout=2.0)) as judge:
        verdicts = judge.judge([pair for pair, _ in cases])
    assert [v.status for v in verdicts] == [status for _, status in cases], verdicts
    assert verdicts[-1].reason == "sat returned int"


def test_jail_holds_without_the_language_layers() -> None:
    """Layer 3 alone: a jailed process cannot fork, open files, open sockets or signal others."""
    programs = seccomp_programs()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            jail = Jail(None if isinstance(programs, str) else programs)
            jail.enter(write_end, 512, 5.0)
            outcomes = []
            for attempt in (
                os.fork,
                lambda: open("/tmp/sandbox_jail_canary", "w"),
                lambda: socket.socket(),
                lambda: os.kill(1, 0),
            ):
                try:
                    attempt()
                    outcomes.append("allowed")
                except OSError:
                    outcomes.append("refused")
            os.write(REPLY_FD, (",".join(outcomes) + "\n").encode())
        finally:
            os._exit(0)
    os.close(write_end)
    report = os.read(read_end, 1000).decode().strip()
    os.waitpid(pid, 0)
    assert report == "refused,refused,refused,refused"
    assert not os.path.exists("/tmp/sandbox_jail_canary")


def test_judge_order_progress_and_bad_pairs() -> None:
    pairs = [(SAT, f"def sol():\n    return {i}") for i in range(40)] + [(SAT, 4)]  # type: ignore[list-item]
    done: list[int] = []
    with Judge(workers=2, limits=Limits(timeout=1.0)) as judge:
        verdicts = judge.judge(pairs, progress=done.append)
    assert [v.status for v in verdicts] == ["verified" if i == 4 else "wrong" for i in range(40)] + ["rejected"]
    assert sum(done) == len(pairs)
    assert all(isinstance(v, Verdict) and v.status in STATUSES for v in verdicts)


def test_outputs_report_a_programs_value_on_sols_answer_or_why_not() -> None:
    program = "def f(x: List[int], n=2):\n    return sorted(x)[:n]"
    cases = [
        (program, "def sol():\n    return [5, 1, 3]", "ok", "[5, 1, 3]", "[1, 3]"),
        (program, "def sol():\n    return (5, 1)", "type_error", "", ""),  # sol's answer has the wrong type
        ("def f(x: int):\n    return (x, 1)", "def sol():\n    return 1", "type_error", "", ""),  # no literal
        ("def f(x: int):\n    return float('nan')", "def sol():\n    return 1", "type_error", "", ""),
        ("def f(x: int):\n    return [True, 'a', [2.5]]", "def sol():\n    return 1", "ok", "1", '[true, "a", [2.5]]'),
        ("def f(x: str):\n    return x * 10 ** 6", "def sol():\n    return 'ab'", "error", "", ""),  # over the cap
        ("def f(x: int):\n    while True:\n        pass", "def sol():\n    return 1", "timeout", "", ""),
        ("def f(x: int):\n    return x == 1", "def sol():\n    return 1", "ok", "1", "true"),  # never `verified`
        ("import os\ndef f(x: int):\n    return x", "def sol():\n    return 1", "rejected", "", ""),
    ]
    with Judge(workers=2, limits=Limits(timeout=1.0)) as judge:
        outputs = judge.outputs([(program, sol) for program, sol, *_ in cases])
    assert [(o.status, o.answer, o.value) for o in outputs] == [tuple(case[2:]) for case in cases]
    assert all(o.status in OUTPUT_STATUSES for o in outputs)


def test_a_timeout_does_not_hold_up_the_other_checks() -> None:
    loop = (SAT, "def sol():\n    while True:\n        pass")
    pairs = [loop] + [(SAT, "def sol():\n    return 4")] * 20 + [loop, (SAT, "def sol():\n    return 4")]
    with Judge(workers=1, limits=Limits(timeout=0.5)) as judge:
        verdicts = judge.judge(pairs)
    assert [v.status for v in verdicts] == ["timeout"] + ["verified"] * 20 + ["timeout", "verified"]
    assert 0.3 < verdicts[0].seconds <= 0.6


def test_verify_file_and_cli_hooks(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "sat": SAT, "sol": "def sol():\n    return 4"},
        {"id": "b", "f": "def f(x: int):\n    return x == 1", "g": "def g():\n    return 2"},
        {"id": "c", "sat": SAT},
        "not json {",
    ]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "out" / "verdicts.jsonl"
    counts = verify_file(pairs, out, timeout=1.0, memory_mb=512, workers=1, progress=False)
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(g["id"], g["status"]) for g in got] == [
        ("a", "verified"),
        ("b", "wrong"),
        ("c", "rejected"),
        (None, "rejected"),
    ]
    assert "line 3" in got[2]["reason"] and "line 4" in got[3]["reason"]
    assert counts == {"verified": 1, "wrong": 1, "rejected": 2}
    parser = argparse.ArgumentParser()
    add_verify_arguments(parser)
    args = parser.parse_args([str(pairs), "--out", str(out), "--timeout", "1", "--workers", "1"])
    assert run_verify(args) == 0


def _reference_pairs() -> list[tuple[str, str]]:
    puzzles = json.loads(P3_PUZZLES.read_text())
    return [(p["sat"], p["sol_header"] + "\n" + p["sol_bodies"][0]) for p in puzzles if p["sol_bodies"]]


@needs_p3
def test_p3_reference_sample_verifies() -> None:
    pairs = _reference_pairs()[::20]
    with Judge(workers=2) as judge:
        verdicts = judge.judge(pairs)
    misses = [v for v in verdicts if v.status != "verified"]
    assert len(misses) <= 1, misses


@pytest.mark.slow
@needs_p3
def test_p3_reference_set_verifies() -> None:
    with Judge(workers=2) as judge:
        verdicts = judge.judge(_reference_pairs())
    assert sum(v.status == "verified" for v in verdicts) >= 1650


@pytest.mark.parametrize(
    "source",
    [
        "def sol():\n    return 5 * 3 + 2",
        "def sol(a=1, b=[1, 2]):\n    x = a + 1\n    while x < 10 and not b:\n        x = x * 2\n"
        "    return f(x, k=1) if x else (lambda y: y)(3)",
    ],
)
def test_transformer_fast_path_is_equivalent(source: str) -> None:
    """Trees restrict() compiles without RestrictedPython are exactly those it would leave unchanged."""
    import ast

    from RestrictedPython import compile_restricted_exec
    from sandbox.restricted import TunedPolicy, _untouched

    tree = parse_checked(source)
    assert _untouched(tree)
    before = ast.dump(tree)
    assert not compile_restricted_exec(tree, policy=TunedPolicy).errors
    assert ast.dump(tree) == before


def test_only_sats_process_can_say_verified() -> None:
    """A sol child that claims `verified` (as one whose process the program subverted might) is not believed."""
    from sandbox import pool

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the warm parent's setup changes the process it runs in, so run it in a throwaway child
        try:
            pool.run_sol = lambda source, spec: ("verified", "", "")
            workers = pool.Pool(1, Limits(timeout=2.0).as_dict(), Jail(None), warn=lambda text: None)
            rows: list = []
            workers.run("judge", [(SAT, "def sol():\n    return 4")], rows.extend)
            os.write(write_end, json.dumps(rows).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    rows = json.loads(os.read(read_end, 10000))
    os.waitpid(pid, 0)
    assert [row[1] for row in rows] == ["error"] and "unknown status" in rows[0][2]
