"""Samples produced elsewhere (a vLLM server, an API model, another harness), read for our held-out judge.

A JSONL file, one sample per line, in the shape EvalPlus and bigcode-evaluation-harness users already write:
`task_id` or `puzzle` names a held-out puzzle ("StudyPuzzle:0"), and either `completion` continues our solve
prompt's open `def g(...)` header (as our own samples.jsonl stores it) or `solution` is a whole program defining
`sol` or `g`. Every puzzle of the held-out set needs the same number of samples, so pass@k means one thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from puzzleloop.data import P3Instance
from puzzleloop.files import read_jsonl_objects
from puzzleloop.prompts import solution_from_completion
from puzzleloop.puzzles import Puzzle

NAME_FIELDS = ("task_id", "puzzle")
TEXT_FIELDS = ("completion", "solution")


class SamplesError(ValueError):
    """A samples file that cannot be scored; the message names the file and line."""


@dataclass(frozen=True)
class ExternalSample:
    """One sample as given (`field` is "completion" or "solution") and the program the judge runs."""

    field: str
    text: str
    program: str


def read_samples(path: Path, puzzles: Sequence[tuple[P3Instance, Puzzle]]) -> dict[str, list[ExternalSample]]:
    """The samples of each held-out puzzle, in file order; SamplesError for a row or a count that is wrong."""
    if not path.is_file():
        raise SamplesError(f"{path}: no such samples file")
    by_name = {instance.name: puzzle for instance, puzzle in puzzles}
    samples: dict[str, list[ExternalSample]] = {name: [] for name in by_name}
    for line, row in enumerate(read_jsonl_objects(path, SamplesError), start=1):
        _, name = _one_of(row, NAME_FIELDS, path, line)
        field, text = _one_of(row, TEXT_FIELDS, path, line)
        if name not in by_name:
            raise SamplesError(f"{path}:{line}: puzzle {name!r} is not in the held-out set")
        program = text if field == "solution" else solution_from_completion(by_name[name], text)
        samples[name].append(ExternalSample(field, text, program))
    missing = [name for name, rows in samples.items() if not rows]
    if missing:
        raise SamplesError(f"{path}: no samples for {len(missing)} of {len(samples)} puzzles, e.g. {missing[0]!r}")
    counts = {len(rows) for rows in samples.values()}
    if len(counts) > 1:
        low = min(samples, key=lambda name: len(samples[name]))
        raise SamplesError(
            f"{path}: every puzzle needs the same number of samples; counts range over {sorted(counts)} "
            f"({low!r} has {len(samples[low])})"
        )
    return samples


def _one_of(row: dict, fields: tuple[str, ...], path: Path, line: int) -> tuple[str, str]:
    """(field, value) of the one of `fields` the row has, a string."""
    present = [f for f in fields if f in row]
    if len(present) != 1:
        raise SamplesError(f"{path}:{line}: needs exactly one of the fields {' or '.join(fields)}")
    value = row[present[0]]
    if not isinstance(value, str):
        raise SamplesError(f"{path}:{line}: field {present[0]!r} must be a string, got {type(value).__name__}")
    return present[0], value
