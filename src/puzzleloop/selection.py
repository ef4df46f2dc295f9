"""Choosing a round's training set from the corpus: the k shortest distinct verified solutions per puzzle.

Shortest first because the paper found short solutions the better teachers; "distinct" compares canonical
forms (names, layout, comments and docstrings ignored), so renamed copies of one solution count once. Synthetic
rows (every origin but seed pairs) are capped to a share of the set, keeping those whose solutions hash lowest:
a fixed choice spread over puzzles and rounds rather than the first puzzles stored.
"""

from __future__ import annotations

from datasets import Dataset, Features, Value

from puzzleloop.config import SelectionConfig
from puzzleloop.corpus import Corpus
from puzzleloop.files import DamagedFileError
from puzzleloop.prompts import solved_parts
from puzzleloop.puzzles import canonical_hash

# A training row: the puzzle as `def f` (prompt) and its verified solution as `def g` plus `assert f(g())`
# (completion), with the ids they came from and the round the solution was found in.
FEATURES = Features(
    {
        "prompt": Value("string"),
        "completion": Value("string"),
        "puzzle_id": Value("int64"),
        "solution_id": Value("int64"),
        "round": Value("int64"),
        "origin": Value("string"),
    }
)
_LEGACY_SOLUTION_START = "\ndef g("  # rows written before prompt/completion held one `text`


def training_rows(rows: list[dict], where: str) -> list[dict]:
    """train.jsonl rows as prompt/completion rows; rows of the earlier `text` format are split where the
    solution's top-level `def g(` begins (the only place that format marked), so older runs stay readable."""
    converted = []
    for number, row in enumerate(rows, start=1):
        if "prompt" not in row and isinstance(row.get("text"), str):
            cut = row["text"].find(_LEGACY_SOLUTION_START) + 1
            if cut == 0:
                raise DamagedFileError(f"{where}: line {number}: a `text` row without a top-level 'def g('")
            row = {"prompt": row["text"][:cut], "completion": row["text"][cut:]} | {
                k: v for k, v in row.items() if k != "text"
            }
        if not (isinstance(row.get("prompt"), str) and isinstance(row.get("completion"), str)):
            raise DamagedFileError(f"{where}: line {number}: a training row needs string 'prompt' and 'completion'")
        converted.append(row)
    return converted


def select_training_set(corpus: Corpus, config: SelectionConfig, latest_round: int) -> Dataset:
    """The training set for `latest_round`, ordered by puzzle id then solution length (deterministic).

    The solve-rate band applies to each puzzle's rate over all its attempts; rows keep the ids of the puzzle
    and solution they came from, and the round the solution was found in.
    """
    rounds = [latest_round] if config.rounds == "latest" else list(range(latest_round + 1))
    rows: list[dict] = []
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
        prompt, completion = solved_parts(puzzle.source, solution.source)
        row = {"prompt": prompt, "completion": completion, "puzzle_id": puzzle.id, "solution_id": solution.id}
        rows.append(row | {"round": solution.round, "origin": solution.origin, "_key": key})
    rows = _capped_synthetic(rows, config.max_synthetic_share)
    columns = {name: [row[name] for row in rows] for name in FEATURES}
    return Dataset.from_dict(columns, features=FEATURES)


def _capped_synthetic(rows: list[dict], share: float) -> list[dict]:
    """The rows with at most `share` of them synthetic, in their original order."""
    real = sum(row["origin"] == "seed" for row in rows)
    synthetic = [i for i, row in enumerate(rows) if row["origin"] != "seed"]
    allowed = len(synthetic) if share >= 1.0 else int(share * real / (1.0 - share))
    if allowed >= len(synthetic):
        return rows
    dropped = set(sorted(synthetic, key=lambda i: (rows[i]["_key"], i))[allowed:])
    return [row for i, row in enumerate(rows) if i not in dropped]


def synthetic_share(dataset: Dataset) -> float:
    """The share of a training set's rows that are not seed pairs."""
    return sum(origin != "seed" for origin in dataset["origin"]) / len(dataset) if len(dataset) else 0.0
