"""Choosing a round's training set from the corpus: the k shortest distinct verified solutions per puzzle.

Shortest first because the paper found short solutions the better teachers; "distinct" compares canonical
forms (names, layout, comments and docstrings ignored), so renamed copies of one solution count once.
"""

from __future__ import annotations

from dataclasses import dataclass

from datasets import Dataset, Features, Value

from puzzleloop.corpus import Corpus
from puzzleloop.prompts import solved_block
from puzzleloop.puzzles import canonical_hash

FEATURES = Features(
    {"text": Value("string"), "puzzle_id": Value("int64"), "solution_id": Value("int64"), "round": Value("int64")}
)


@dataclass
class SelectionConfig:
    """Which verified pairs train the model: per-puzzle cap, a solve-rate band, and which rounds' solutions."""

    max_per_puzzle: int = 8
    min_solve_rate: float = 0.0
    max_solve_rate: float = 1.0
    rounds: str = "all"  # "all": every round up to the current one; "latest": the current round only

    def __post_init__(self) -> None:
        if not isinstance(self.max_per_puzzle, int) or self.max_per_puzzle < 1:
            raise ValueError(f"selection.max_per_puzzle must be an int >= 1, got {self.max_per_puzzle!r}")
        if not 0.0 <= self.min_solve_rate <= self.max_solve_rate <= 1.0:
            raise ValueError(
                "selection needs 0 <= min_solve_rate <= max_solve_rate <= 1, got "
                f"min_solve_rate={self.min_solve_rate!r}, max_solve_rate={self.max_solve_rate!r}"
            )
        if self.rounds not in ("all", "latest"):
            raise ValueError(f"selection.rounds must be 'all' or 'latest', got {self.rounds!r}")


def training_text(puzzle_source: str, solution_source: str) -> str:
    """`def f ...`, `def g ...`, `assert f(g())`: the same block the few-shot solve prompt shows."""
    return solved_block(puzzle_source, solution_source)


def select_training_set(corpus: Corpus, config: SelectionConfig, latest_round: int) -> Dataset:
    """The training set for `latest_round`, ordered by puzzle id then solution length (deterministic).

    The solve-rate band applies to each puzzle's rate over all its attempts; rows keep the ids of the puzzle
    and solution they came from, and the round the solution was found in.
    """
    rounds = [latest_round] if config.rounds == "latest" else list(range(latest_round + 1))
    columns: dict[str, list] = {name: [] for name in FEATURES}
    kept: dict[int, set[str]] = {}
    for puzzle, solution in corpus.verified_solutions(rounds=rounds):
        rate = puzzle.solve_rate
        if rate is None or not config.min_solve_rate <= rate <= config.max_solve_rate:
            continue
        seen = kept.setdefault(puzzle.id, set())
        if len(seen) >= config.max_per_puzzle:
            continue
        key = canonical_hash(solution.source, f"puzzle {puzzle.id} solution {solution.id}")
        if key in seen:
            continue
        seen.add(key)
        columns["text"].append(training_text(puzzle.source, solution.source))
        columns["puzzle_id"].append(puzzle.id)
        columns["solution_id"].append(solution.id)
        columns["round"].append(solution.round)
    return Dataset.from_dict(columns, features=FEATURES)
