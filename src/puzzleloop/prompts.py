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
from puzzleloop.sampling import FUNCTION_END, cut_at_function_end

PROMPT_HEADER = "from typing import List\n\n"


@dataclass(frozen=True)
class SolvedExample:
    """A puzzle with a reference solution, shown to the model as `def f` / `def g` / `assert f(g())`."""

    sat: str
    sol: str


def tutorial_examples(p3_path: str | None = None) -> list[SolvedExample]:
    """The paper's five shots: P3's Tutorial1..Tutorial5 puzzles with their reference solutions."""
    return [SolvedExample(i.sat, i.reference_solution) for i in named_set("p3-tutorial", p3_path)]


def solved_parts(sat: str, sol: str) -> tuple[str, str]:
    """One solved pair in the paper's format, split where the solution begins: (`def f ...`, `def g ... assert`).

    A training row is exactly these two parts (prompt, completion), so the loss can be masked by the prompt's
    length rather than by finding the solution in the text."""
    return f"{rename_function(sat, 'f').strip()}\n\n", f"{rename_function(sol, 'g').strip()}\n\nassert f(g())\n"


def solved_block(sat: str, sol: str) -> str:
    """One solved pair in the paper's training and prompt format."""
    return "".join(solved_parts(sat, sol))


def solve_prompt(puzzle: Puzzle, examples: Sequence[SolvedExample]) -> str:
    """The few-shot prompt, ending with the open `def g(...):` whose body the model writes."""
    shots = "\n".join(solved_block(e.sat, e.sol) for e in examples)
    target = rename_function(puzzle.source, "f").strip()
    return f"{PROMPT_HEADER}{shots}\n{target}\n\n{solution_header(puzzle, 'g')}"


def solution_from_completion(puzzle: Puzzle, completion: str) -> str:
    """The candidate `def g(...)` built from the prompt's open header and the model's (already cut) body."""
    return f"{solution_header(puzzle, 'g')}{completion}"


@dataclass(frozen=True)
class SeedExample:
    """A seed puzzle shown in propose prompts; `sol` (a reference solution) is shown in with-solution prompts."""

    name: str
    sat: str
    sol: str | None = None


@dataclass(frozen=True)
class ProposePrompt:
    """A propose prompt and the names of the seed puzzles it showed, for provenance; the prompt ends with
    `def <next_name>(<opening>`, which the completion continues."""

    text: str
    seeds: tuple[str, ...]
    next_name: str
    with_solution: bool = False
    opening: str = ""


def propose_prompt(
    seeds: Sequence[SeedExample], count: int, rng: random.Random, with_solution: bool = False
) -> ProposePrompt:
    """`count` shuffled seed puzzles numbered f1..fk, ending with the open `def f{k+1}(` the model completes.

    With `with_solution`, each seed is followed by its solution `g<i>` and `assert f<i>(g<i>())`, so the model
    writes a puzzle together with an answer it believes in (seeds without a solution are not shown).
    """
    pool = [s for s in seeds if s.sol is not None] if with_solution else list(seeds)
    if not pool:
        raise ValueError("propose_prompt: no seed puzzles" + (" with solutions" if with_solution else ""))
    chosen = rng.sample(pool, min(count, len(pool)))
    blocks = []
    for i, seed in enumerate(chosen, start=1):
        block = rename_function(seed.sat, f"f{i}").strip()
        if with_solution:
            block += f"\n\n{rename_function(seed.sol, f'g{i}').strip()}\n\nassert f{i}(g{i}())"
        blocks.append(block)
    text, next_name = prompt_ending_open(blocks)
    return ProposePrompt(text, tuple(s.name for s in chosen), next_name, with_solution)


def prompt_ending_open(blocks: Sequence[str], opening: str = "") -> tuple[str, str]:
    """A propose prompt of numbered example blocks f1..fk, and the name f{k+1} of the function it leaves open."""
    next_name = f"f{len(blocks) + 1}"
    return PROMPT_HEADER + "\n\n".join(blocks) + "\n\n" + open_header(next_name, opening), next_name


def open_header(next_name: str, opening: str = "") -> str:
    """The unfinished first line a propose prompt ends with, which its completion continues."""
    return f"def {next_name}({opening}"


def proposal_from_completion(next_name: str, completion: str, with_solution: bool) -> tuple[str, str | None]:
    """The puzzle a completion of a propose prompt ending in `def <next_name>(` wrote and, for a with-solution
    prompt, its proposer's solution renamed `g` (None if absent).

    The puzzle is renamed `sat` when it is one function, else kept as written (the filters count what is wrong).
    """
    text, solution = open_header(next_name) + completion, None
    split = FUNCTION_END.search(text) if with_solution else None
    if split is not None:
        text, rest = text[: split.start()].rstrip(), cut_at_function_end(text[split.start() + 1 :])
        if rest.startswith(f"def g{next_name[1:]}("):
            solution = _renamed(rest, "g")
    return _renamed(text, "sat") or text, solution


def _renamed(source: str, name: str) -> str | None:
    try:
        return rename_function(source, name)
    except PuzzleError:
        return None
