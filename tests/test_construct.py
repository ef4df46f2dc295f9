"""Puzzles valid by construction: syntax rewrites, parsing a proposer's program and call, and building puzzles
whose outputs the real sandbox computed (twice, in two judges), through the filters."""

import ast
import random

import pytest
from sandbox import Judge, Limits

from puzzleloop.construct import (
    abduction_prompt,
    agreed_outputs,
    answer_openings,
    constructed_proposals,
    program_call,
    program_examples,
    returning,
    target_form,
    with_target,
)
from puzzleloop.filters import filter_proposals, kept
from puzzleloop.prompts import SeedExample
from puzzleloop.puzzles import NearDuplicateIndex, PuzzleError

HELDOUT = NearDuplicateIndex([("Held:0", "def sat(s: str):\n    return s.count('q') == 17\n")])


@pytest.fixture(scope="module")
def judges():
    with Judge(workers=2, limits=Limits(timeout=1.0)) as first, Judge(workers=2, limits=Limits(timeout=1.0)) as second:
        yield [first, second]


def test_target_form_is_found_and_inverted():
    sat = "def sat(s: str, n=2, target='ace'):\n    return s[::n] == target\n"
    form = target_form(sat)
    assert form is not None and form.param == "target"
    assert form.program == "def sat(s: str, n=2):\n    return s[::n]\n"
    assert ast.dump(ast.parse(with_target(form.program, "'ace'"))) == ast.dump(ast.parse(sat))
    flipped = target_form("def sat(x: int, a=5):\n    if x > 0:\n        return a == x * 2\n    return a == -x\n")
    assert flipped is not None and "return x * 2" in flipped.program and "return -x" in flipped.program


@pytest.mark.parametrize(
    "sat",
    [
        "def sat(x: int, t=5):\n    return x == t or x == 3\n",  # not a bare comparison
        "def sat(x: int, t=5):\n    assert t > 0\n    return x * 2 == t\n",  # t read elsewhere
        "def sat(x: int, t=5):\n    if x:\n        return x == t\n    return False\n",  # one return is not `== t`
        "def sat(x: int):\n    return x == 3\n",  # no parameter to compare with
        "def sat(x: int, t=5):\n    def g():\n        return x == t\n    return g()\n",  # only a nested def compares
    ],
)
def test_other_shapes_are_not_target_form(sat):
    assert target_form(sat) is None


def test_with_target_refuses_what_cannot_become_a_puzzle():
    with pytest.raises(PuzzleError, match="already uses"):
        with_target("def f(x: int, target=1):\n    return x\n", "3")
    with pytest.raises(PuzzleError, match="returns nothing"):
        with_target("def f(x: int):\n    print(x)\n", "3")
    with pytest.raises(PuzzleError):
        with_target("def f(x, n=1):\n    return x\n", "3")  # the answer has no type
    nested = with_target("def f(x: int):\n    g = lambda: 5\n    return g() + x\n", "8")
    assert "return g() + x == target" in nested and "lambda: 5" in nested


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("x: int, a=3):\n    return x * a\n\nassert f9(7) == 21\n", ("def f(x: int, a=3):\n    return x * a\n", "7")),
        ("s: str):\n    return s[::-1]\n\nassert f9('ab') == 'ba'", ("def f(s: str):\n    return s[::-1]\n", "'ab'")),
        ("x: int, a):\n    return x * a\n\nassert f9(7, 2) == 14\n", ("def f(x: int, a=2):\n    return x * a\n", "7")),
        ("x: int, a=1, b=2):\n    return x + b\n\nassert f9(7, b=5) == 12\n",
         ("def f(x: int, a=1, b=5):\n    return x + b\n", "7")),  # a keyword binds its parameter's default
        ("x: int):\n    return x\n\nassert f9(7, 2) == 7\n", "call"),  # more arguments than parameters
        ("x: int, a):\n    return x\n\nassert f9(7) == 7\n", "call"),  # `a` gets no value
        ("x: int, a):\n    return x\n\nassert f9(7, len('ab')) == 7\n", "call"),  # not a literal
        ("x: int):\n    return x\n\nassert f9(y) == 7\n", "call"),  # not a literal
        ("x: int):\n    return x\n\nassert f8(7) == 7\n", "call"),  # another function
        ("x: int):\n    return x\n", "call"),  # no call at all
        ("x: int:\n    return x\n\nassert f9(7) == 7\n", "parse"),
    ],
)  # fmt: skip
def test_program_and_input_are_read_from_a_completion(completion, expected):
    call = program_call(f"def f9({completion}", "f9")
    assert (call if isinstance(call, str) else (call.program, call.input)) == expected


def test_outputs_must_agree_across_judges(judges):
    pairs = [
        ("def f(x: int):\n    return x * 2\n", returning(None, "21")),
        ("def f(s: str):\n    return list({c for c in s})\n", returning(None, "'abcdefghijklmnop'")),  # hash order
        ("def f(x: int):\n    return x // 0\n", returning(None, "1")),
    ]
    results = agreed_outputs(judges, pairs)
    assert results[0].value == "42" and results[0].answer == "21"
    assert results[1:] == ["nondeterministic", "failed"]


def _completion(program: str, call: str) -> tuple[str, str, tuple[str, ...]]:
    return f"def f9({program}\n\nassert f9({call}) == 0\n", "f9", ("seed:a",)


def test_constructed_puzzles_pass_the_filters_with_a_verified_input(judges):
    completions = [
        _completion("li: List[int], n=3):\n    return [x * 2 for x in li if x > n]", "[9, 4, 7, 1]"),  # kept
        _completion("li: List[int], n=2):\n    return sorted(li)[-n:]", "[9, 4, 7, 1]"),  # the target [7, 9] solves it
        _completion("s: str):\n    return len(s) % 2", "'abcd'"),  # target 0: '' satisfies it, trivial
        _completion("x: int):\n    return x", "12345"),  # the answer is the target: trivially the target
        _completion("x: int):\n    return x + 1", "4321"),  # kept
        _completion("x: str):\n    return x * 1000", "'ab'"),  # target longer than the limit
        _completion("x: int):\n    return x / 0", "5"),  # raises
        _completion("x: int):\n    return str(x) + ''.join(sorted('ba'))", "3"),  # trivial: 3 is a candidate
        ("x: int):\n    return x", "f9", ("seed:a",)),  # no `def`: does not parse
    ]
    proposals, removed = constructed_proposals(completions, judges, max_source_chars=2000, max_target_chars=100)
    assert removed == {"target_size": 1, "program_failed": 1, "parse": 1}
    result = filter_proposals(
        proposals,
        judge=judges[0],
        known_hashes=(),
        heldout_index=HELDOUT,
        contamination_threshold=0.8,
        removed=removed,
    )
    kept_sources = [p.source for p, _, _ in result.kept]
    assert kept_sources == [
        "def sat(li: List[int], n=3, target=[18, 8, 14]):\n    return [x * 2 for x in li if x > n] == target\n",
        "def sat(x: int, target=4322):\n    return x + 1 == target\n",
    ]
    assert [p.solution for p, _, _ in result.kept] == [
        "def sol(n=3, target=[18, 8, 14]):\n    return [9, 4, 7, 1]\n",
        "def sol(target=4322):\n    return 4321\n",
    ]
    assert result.removed["trivial"] == 4 and kept(result.counts(len(completions))) == 2


def test_an_answer_written_in_the_puzzle_is_removed(judges):
    completions = [_completion("s: str):\n    return s.replace('hello world', 'yz') + '!'", "'hello world'")]
    proposals, removed = constructed_proposals(completions, judges, max_source_chars=2000, max_target_chars=100)
    result = filter_proposals(
        proposals, judge=judges[0], known_hashes=(), heldout_index=HELDOUT, contamination_threshold=0.8
    )
    assert result.removed["answer_in_puzzle"] == 1 and not result.kept


def test_seeds_of_target_form_become_program_examples_and_prompts(judges):
    seeds = [
        SeedExample("a", "def sat(x: int, n=12):\n    return x * 3 == n\n", "def sol(n=12):\n    return n // 3\n"),
        SeedExample("b", "def sat(x: int):\n    return x > 3\n", "def sol():\n    return 4\n"),  # other shape
        SeedExample("c", "def sat(x: int, n=5):\n    return x // 0 == n\n", "def sol():\n    return 1\n"),  # raises
    ]
    examples = program_examples(seeds, judges[0])
    assert [(e.name, e.input, e.output) for e in examples] == [("a", "4", "12")]
    prompt = abduction_prompt(examples, 3, random.Random(0))
    assert prompt.text.endswith("assert f1(4) == 12\n\ndef f2(") and prompt.next_name == "f2"
    assert prompt.seeds == ("a",)
    openings = answer_openings([*seeds, SeedExample("d", "def sat(li: List[int]):\n    return li\n")])
    assert openings == ["x: int", "x: int", "x: int", "li: List[int]"]
    prompt = abduction_prompt(examples, 3, random.Random(0), openings[-1:])
    assert prompt.text.endswith("assert f1(4) == 12\n\ndef f2(li: List[int]") and prompt.opening == "li: List[int]"
