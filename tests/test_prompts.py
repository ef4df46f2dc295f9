"""Propose prompts with and without solutions, and reading a puzzle (and its proposer's answer) back."""

import random

import pytest

from puzzleloop.prompts import SeedExample, proposal_from_completion, propose_prompt

SEEDS = [
    SeedExample("gt", "def sat(x: int):\n    return x > 3", "def sol():\n    return 4"),
    SeedExample("len", "def sat(s: str, n=2):\n    return len(s) == n", "def sol(n=2):\n    return 'ab'"),
    SeedExample("bare", "def sat(y: float):\n    return y < 0"),
]


def test_with_solution_prompt_shows_solved_seeds_and_opens_the_next_puzzle():
    prompt = propose_prompt(SEEDS, 5, random.Random(0), with_solution=True)
    assert prompt.next_name == "f3" and set(prompt.seeds) == {"gt", "len"}  # "bare" has no solution to show
    assert prompt.text.count("assert f") == 2 and "def g1(" in prompt.text and "def g2(" in prompt.text
    assert prompt.text.endswith("\n\ndef f3(")
    plain = propose_prompt(SEEDS, 5, random.Random(0))
    assert "def g1" not in plain.text and plain.next_name == "f4"


def test_with_solution_needs_a_seed_with_a_solution():
    with pytest.raises(ValueError, match="with solutions"):
        propose_prompt(SEEDS[2:], 2, random.Random(0), with_solution=True)


@pytest.mark.parametrize(
    ("completion", "solution"),
    [
        ("y: int, t=5):\n    return y * 2 == t + 1\n\ndef g3(t=5):\n    return 3\n\nassert f3(g3())\n",
         "def g(t=5):\n    return 3"),
        ("y: int, t=5):\n    return y * 2 == t + 1\n\nassert f3(3)\n", None),  # no solution function
        ("y: int, t=5):\n    return y * 2 == t + 1\n\ndef g7():\n    return 3\n", None),  # not the puzzle's g
        ("y: int, t=5):\n    return y * 2 == t + 1\n\ndef g3(:\n    return 3\n", None),  # does not parse
    ],
)  # fmt: skip
def test_proposal_and_its_solution_are_read_back(completion, solution):
    puzzle = "def sat(y: int, t=5):\n    return y * 2 == t + 1"
    assert proposal_from_completion("f3", completion, with_solution=True) == (puzzle, solution)


def test_plain_proposal_keeps_what_does_not_parse_for_the_filters():
    puzzle = "def sat(x: int):\n    return x == 2"
    assert proposal_from_completion("f3", "x: int):\n    return x == 2", False) == (puzzle, None)
    assert proposal_from_completion("f3", "x: int, = 3):\n    return", False) == (
        "def f3(x: int, = 3):\n    return",
        None,
    )
