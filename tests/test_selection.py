"""Training-set selection: k shortest distinct verified solutions, solve-rate band, all vs latest rounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from puzzleloop.config import SelectionConfig
from puzzleloop.corpus import Attempt, Corpus, PuzzleRecord
from puzzleloop.files import DamagedFileError
from puzzleloop.selection import select_training_set, training_rows

SAT = 'def sat(x: int, a=7):\n    """Find x."""\n    return x == a\n'


def sol(expr: str, var: str = "y") -> str:
    return f"def sol(a=7):\n    {var} = {expr}\n    return {var}\n"


@pytest.fixture
def corpus(tmp_path: Path):
    with Corpus(tmp_path / "corpus.sqlite") as c:
        c.add_puzzles([PuzzleRecord(f"h{i}", SAT.replace("7", str(i + 7)), "int", 0, "base") for i in range(3)])
        yield c


def test_training_row_format(corpus: Corpus) -> None:
    p0 = corpus.puzzles()[0]
    corpus.record_attempts(p0.id, 0, [Attempt(sol("a"), "verified")])
    (row,) = select_training_set(corpus, SelectionConfig(), latest_round=0).to_list()
    assert row["prompt"] == 'def f(x: int, a=7):\n    """Find x."""\n    return x == a\n\n'
    assert row["completion"] == "def g(a=7):\n    y = a\n    return y\n\nassert f(g())\n"
    namespace: dict = {}
    exec(row["prompt"] + row["completion"], namespace)  # prompt + completion is a runnable, passing check


def test_rows_of_the_earlier_text_format_are_still_read() -> None:
    old = {"text": "def f(x: int):\n    return x == 1\n\ndef g():\n    return 1\n\nassert f(g())\n", "puzzle_id": 3}
    (row,) = training_rows([old], "train.jsonl")
    assert row == {"prompt": "def f(x: int):\n    return x == 1\n\n",
                   "completion": "def g():\n    return 1\n\nassert f(g())\n", "puzzle_id": 3}  # fmt: skip
    with pytest.raises(DamagedFileError, match="train.jsonl: line 2: a `text` row without"):
        training_rows([old, {"text": "def f(x: int):\n    return True\n"}], "train.jsonl")
    with pytest.raises(DamagedFileError, match="line 1: a training row needs"):
        training_rows([{"prompt": "x"}], "train.jsonl")


def test_k_shortest_distinct_per_puzzle(corpus: Corpus) -> None:
    p0, p1, _ = corpus.puzzles()
    corpus.record_attempts(
        p0.id,
        0,
        [
            Attempt(sol("a + 0 + 0"), "verified"),
            Attempt(sol("a + 0"), "verified"),
            Attempt(sol("a + 0", var="zz"), "verified"),  # same canonical form as the one above: not distinct
            Attempt(sol("a+0"), "verified"),  # only layout differs: not distinct either
            Attempt(sol("a"), "verified"),
            Attempt(sol("0"), "wrong"),
        ],
    )
    corpus.record_attempts(p1.id, 0, [Attempt(sol("a"), "verified")])
    ds = select_training_set(corpus, SelectionConfig(max_per_puzzle=2), latest_round=0)
    assert ds.column_names == ["prompt", "completion", "puzzle_id", "solution_id", "round", "origin"]
    assert ds["puzzle_id"] == [p0.id, p0.id, p1.id]
    assert ["y = a\n" in t for t in ds["completion"]] == [True, False, True]
    assert "    y = a+0\n" in ds["completion"][1]  # "a+0" is shorter than "a + 0"; both mean the same
    full = select_training_set(corpus, SelectionConfig(), latest_round=0)
    assert full["puzzle_id"] == [p0.id] * 3 + [p1.id]
    assert all(t.endswith("assert f(g())\n") for t in full["completion"])
    again = select_training_set(corpus, SelectionConfig(), latest_round=0)
    assert again["solution_id"] == full["solution_id"]


def test_solve_rate_band(corpus: Corpus) -> None:
    p0, p1, p2 = corpus.puzzles()
    corpus.record_attempts(p0.id, 0, [Attempt(sol("a"), "verified")] + [Attempt("x", "wrong")] * 9)  # 0.1
    corpus.record_attempts(p1.id, 0, [Attempt(sol("a"), "verified"), Attempt("x", "wrong")])  # 0.5
    corpus.record_attempts(p2.id, 0, [Attempt(sol("a"), "verified")])  # 1.0
    band = SelectionConfig(min_solve_rate=0.1, max_solve_rate=0.5)
    assert select_training_set(corpus, band, latest_round=0)["puzzle_id"] == [p0.id, p1.id]
    hard = SelectionConfig(max_solve_rate=0.2)
    assert select_training_set(corpus, hard, latest_round=0)["puzzle_id"] == [p0.id]


def test_all_rounds_vs_latest(corpus: Corpus) -> None:
    p0, p1, p2 = corpus.puzzles()
    corpus.record_attempts(p0.id, 0, [Attempt(sol("a"), "verified")])
    corpus.record_attempts(p1.id, 1, [Attempt(sol("a"), "verified")])
    corpus.record_attempts(p2.id, 2, [Attempt(sol("a"), "verified")])  # a later round: not seen from round 1
    ds = select_training_set(corpus, SelectionConfig(rounds="all"), latest_round=1)
    assert list(zip(ds["puzzle_id"], ds["round"], strict=True)) == [(p0.id, 0), (p1.id, 1)]
    latest = select_training_set(corpus, SelectionConfig(rounds="latest"), latest_round=1)
    assert latest["puzzle_id"] == [p1.id]
    assert len(select_training_set(corpus, SelectionConfig(rounds="latest"), latest_round=5)) == 0


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"max_per_puzzle": 0}, "max_per_puzzle"),
        ({"min_solve_rate": 0.6, "max_solve_rate": 0.5}, "min_solve_rate"),
        ({"max_solve_rate": 1.5}, "max_solve_rate"),
        ({"rounds": "last"}, "rounds"),
    ],
)
def test_bad_config_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SelectionConfig(**kwargs)
