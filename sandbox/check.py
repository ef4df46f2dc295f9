"""One check, inside a worker: compile (sat cached), run sol, check and copy the answer, run sat, judge.

Both programs run in their own fresh namespace. Exceptions are reported by class name (and message for
built-in exception classes only, so a program's own __str__ never runs outside its check).
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass
from types import CodeType
from typing import Any

from sandbox.answer import AnswerTypeError, Spec, checked_copy, parse_spec
from sandbox.policy import PolicyError, parse_checked
from sandbox.restricted import new_namespace, restrict

SAT_NAMES = ("sat", "f")
SOL_NAMES = ("sol", "g")
_SAT_CACHE_SIZE = 512


@dataclass(frozen=True)
class Program:
    """A compiled program and the name of the function it must define."""

    code: CodeType
    function: str
    spec: Spec | None = None  # sat only: the answer type


def _find_function(tree: ast.Module, names: tuple[str, ...]) -> ast.FunctionDef:
    defs = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    for name in names:
        if name in defs:
            return defs[name]
    raise PolicyError(f"no top-level function named {' or '.join(names)}")


def compile_sat(source: str) -> Program:
    """Layers 1-2 for a puzzle, plus its answer type; PolicyError when refused."""
    tree = parse_checked(source)
    func = _find_function(tree, SAT_NAMES)
    if not func.args.args:
        raise PolicyError(f"{func.name} takes no answer parameter")
    try:
        spec = parse_spec(func.args.args[0].annotation)
    except (ValueError, SyntaxError) as exc:
        raise PolicyError(str(exc)) from None
    return Program(restrict(tree, "<sat>"), func.name, spec)


def compile_sol(source: str) -> Program:
    """Layers 1-2 for a solution; PolicyError when refused."""
    tree = parse_checked(source)
    func = _find_function(tree, SOL_NAMES)
    return Program(restrict(tree, "<sol>"), func.name)


def describe(exc: BaseException) -> str:
    """`Class: message` for built-in exceptions, just the class name for a program's own classes."""
    cls = type(exc)
    name = cls.__name__ if isinstance(cls.__name__, str) else "Exception"
    if getattr(builtins, name, None) is cls:
        message = str(exc)
        return f"{name}: {message}" if message else name
    return name


def _run(program: Program, *args: Any) -> Any:
    namespace = new_namespace()
    exec(program.code, namespace)
    return namespace[program.function](*args)


def warm_up() -> None:
    """Run one check in the warm parent so lazy imports (the parser's NFKC `unicodedata`, regex and random
    internals) happen before forking: workers cannot open files."""
    checker = Checker()
    checker.check("def sat(x: List[int]):\n    return x == sorted(x)",
                  "import re, random\ndef sol():\n    ｎ = re.findall('[0-9]', '12') + [random.choice('3')]\n"
                  "    return [int(c) for c in ｎ]")


class Checker:
    """Judges (sat, sol) pairs one at a time, caching compiled puzzles: one puzzle meets many solutions."""

    def __init__(self) -> None:
        self._sats: dict[str, Program | str] = {}

    def _sat(self, source: str) -> Program | str:
        cached = self._sats.get(source)
        if cached is None:
            try:
                cached = compile_sat(source)
            except PolicyError as exc:
                cached = f"sat: {exc}"
            if len(self._sats) >= _SAT_CACHE_SIZE:
                self._sats.clear()
            self._sats[source] = cached
        return cached

    def check(self, sat_source: str, sol_source: str) -> tuple[str, str]:
        """(status, reason) for one pair; only MemoryError escapes as `memory`, everything else is a verdict."""
        sat = self._sat(sat_source)
        if isinstance(sat, str):
            return "rejected", sat
        try:
            sol = compile_sol(sol_source)
        except PolicyError as exc:
            return "rejected", f"sol: {exc}"
        stage = "sol"
        try:
            answer = _run(sol)
            stage = "answer"
            copy = checked_copy(answer, sat.spec)
            stage = "sat"
            result = _run(sat, copy)
        except AnswerTypeError as exc:
            return "type_error", str(exc)
        except MemoryError:
            return "memory", f"{stage} ran out of memory"
        except BaseException as exc:  # the program's exceptions, SystemExit and KeyboardInterrupt included
            return "error", f"{stage} raised {describe(exc)}"
        if result is True:
            return "verified", ""
        return "wrong", f"sat returned {type(result).__name__}" if type(result) is not bool else "sat returned False"
