"""Prompts: the paper's few-shot solve prompt and the numbered propose prompt, and turning completions into code.

A prompt always ends inside an open function (`def g(...):` or `def f8(`), so a completion continues that
function and is cut at its end by `puzzleloop.sampling.cut_at_function_end`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from puzzleloop.data import named_set
from puzzleloop.puzzles import Puzzle, PuzzleError, rename_function, solution_header

PROMPT_HEADER = "from typing import List\n\n"


@dataclass(frozen=True)
class SolvedExample:
    """A puzzle with a reference solution, shown to the model as `def f` / `def g` / `assert f(g())`."""

    sat: str
    sol: str


def tutorial_examples(p3_path: str | None = None) -> list[SolvedExample]:
    """The paper's five shots: P3's Tutorial1..Tutorial5 puzzles with their reference solutions."""
    return [SolvedExample(i.sat, i.reference_solution) for i in named_set("p3-tutorial", p3_path)]


def solved_block(sat: str, sol: str) -> str:
    """One solved pair in the paper's training and prompt format."""
    return f"{rename_function(sat, 'f').strip()}\n\n{rename_function(sol, 'g').strip()}\n\nassert f(g())\n"


def solve_prompt(puzzle: Puzzle, examples: Sequence[SolvedExample]) -> str:
    """The few-shot prompt, ending with the open `def g(...):` whose body the model writes."""
    shots = "\n".join(solved_block(e.sat, e.sol) for e in examples)
    target = rename_function(puzzle.source, "f").strip()
    return f"{PROMPT_HEADER}{shots}\n{target}\n\n{solution_header(puzzle, 'g')}"


def solution_from_completion(puzzle: Puzzle, completion: str) -> str:
    """The candidate `def g(...)` built from the prompt's open header and the model's (already cut) body."""
    return f"{solution_header(puzzle, 'g')}{completion}"


@dataclass(frozen=True)
class ProposePrompt:
    """A propose prompt and the names of the seed puzzles it showed, for provenance."""

    text: str
    seeds: tuple[str, ...]
    next_name: str


def propose_prompt(seeds: Sequence[tuple[str, str]], count: int, rng: random.Random) -> ProposePrompt:
    """`count` shuffled seed puzzles numbered f1..fk, ending with the open `def f{k+1}(` the model completes."""
    if not seeds:
        raise ValueError("propose_prompt: no seed puzzles")
    chosen = rng.sample(list(seeds), min(count, len(seeds)))
    blocks = [rename_function(sat, f"f{i}").strip() for i, (_, sat) in enumerate(chosen, start=1)]
    next_name = f"f{len(chosen) + 1}"
    text = PROMPT_HEADER + "\n\n".join(blocks) + f"\n\ndef {next_name}("
    return ProposePrompt(text=text, seeds=tuple(name for name, _ in chosen), next_name=next_name)


def proposal_from_completion(prompt: ProposePrompt, completion: str) -> str:
    """The proposal renamed `sat` when it is one function, else as written (the filters count what is wrong)."""
    source = f"def {prompt.next_name}({completion}"
    try:
        return rename_function(source, "sat")
    except PuzzleError:
        return source
