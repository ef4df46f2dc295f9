"""The two halves of one check, each run in its own freshly forked child: sol's (run sol, check and encode its
answer) and sat's (decode the answer, run sat, judge its result). Compilation lives here too: the warm parent
compiles each puzzle once (it never runs it), sol children compile their solution.

Every failure of the program, including RecursionError or MemoryError while parsing, compiling or describing an
exception, is a verdict about the program. Exceptions are described by class name, and with their message only
for built-in exception classes, inside a guard, so a program's own `__str__` cannot break the description.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass
from types import CodeType
from typing import Any

from sandbox.answer import AnswerTypeError, Spec, class_name, decode_answer, encode_answer, encode_value, parse_spec
from sandbox.policy import PolicyError, parse_checked
from sandbox.restricted import new_namespace, restrict

SAT_NAMES = ("sat", "f")
SOL_NAMES = ("sol", "g")
_BUILTIN_EXCEPTIONS = {
    id(value): name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}
Outcome = tuple[str, str]  # (status, reason)


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


def _compile(source: str, names: tuple[str, ...], filename: str, answer_type: bool) -> Program:
    try:
        tree = parse_checked(source)
        func = _find_function(tree, names)
        spec = None
        if answer_type:
            positional = func.args.posonlyargs + func.args.args  # the answer is sat's first positional parameter
            if not positional:
                raise PolicyError(f"{func.name} takes no positional answer parameter")
            try:
                spec = parse_spec(positional[0].annotation)
            except ValueError as exc:
                raise PolicyError(str(exc)) from None
        return Program(restrict(tree, filename), func.name, spec)
    except PolicyError:
        raise
    except Exception as exc:  # the compiler's own limits on hostile input are the program's fault
        raise PolicyError(f"cannot be compiled: {type(exc).__name__}") from None


def compile_sat(source: str) -> Program:
    """Layers 1-2 for a puzzle, plus its answer type; PolicyError when refused."""
    return _compile(source, SAT_NAMES, "<sat>", answer_type=True)


def compile_sol(source: str) -> Program:
    """Layers 1-2 for a solution; PolicyError when refused."""
    return _compile(source, SOL_NAMES, "<sol>", answer_type=False)


def describe(exc: BaseException) -> str:
    """`Class: message` for built-in exceptions, a generic name for a program's own exception classes."""
    name = _BUILTIN_EXCEPTIONS.get(id(type(exc)))
    if name is None:
        return "an exception of the program's own class"
    try:
        message = builtins.str(exc)
    except BaseException:  # the message is the program's: whatever it raises, keep the name
        return name
    return f"{name}: {message}" if message else name


def _run(program: Program, *args: Any) -> Any:
    namespace = new_namespace()
    exec(program.code, namespace)
    return namespace[program.function](*args)


def run_sol(source: str, spec: Spec) -> tuple[str, str, str]:
    """sol's half: (status, reason, answer as JSON); the answer is "" unless status is "ok"."""
    try:
        program = compile_sol(source)
    except PolicyError as exc:
        return "rejected", f"sol: {exc}", ""
    try:
        return "ok", "", encode_answer(_run(program), spec)
    except AnswerTypeError as exc:
        return "type_error", str(exc), ""
    except MemoryError:
        return "memory", "sol ran out of memory", ""
    except BaseException as exc:  # the program's exceptions, SystemExit and KeyboardInterrupt too
        return "error", f"sol raised {describe(exc)}", ""


def run_sat(program: Program, answer: str) -> Outcome:
    """sat's half: decode the answer in this clean process, run sat on it, and judge what it returned."""
    assert program.spec is not None
    try:
        value = decode_answer(answer, program.spec)
    except AnswerTypeError as exc:
        return "type_error", str(exc)
    try:
        result = _run(program, value)
    except MemoryError:
        return "memory", "sat ran out of memory"
    except BaseException as exc:
        return "error", f"sat raised {describe(exc)}"
    if result is True:
        return "verified", ""
    return "wrong", "sat returned False" if result is False else f"sat returned {class_name(result)}"


def run_program(program: Program, answer: str) -> tuple[str, str, str]:
    """A program's half of Judge.outputs: like sat's, but it reports what the program returned, as JSON."""
    assert program.spec is not None
    try:
        value = decode_answer(answer, program.spec)
    except AnswerTypeError as exc:
        return "type_error", str(exc), ""
    try:
        return "ok", "", encode_value(_run(program, value))
    except AnswerTypeError as exc:
        return "type_error", f"the program returned what no literal writes: {exc}", ""
    except MemoryError:
        return "memory", "the program ran out of memory", ""
    except BaseException as exc:
        return "error", f"the program raised {describe(exc)}", ""


def warm_up() -> None:
    """Run one honest check in the warm parent so lazy imports (the parser's NFKC `unicodedata`, regex, random
    and JSON internals) happen before any fork: children cannot open files."""
    sat = compile_sat("def sat(x: List[int]):\n    return x == sorted(x)")
    status, _, answer = run_sol(
        "import re, random\ndef sol():\n    ｎ = re.findall('[0-9]', '12') + "
        "[random.choice('3')]\n    return [int(c) for c in ｎ]",
        sat.spec,
    )
    assert status == "ok" and run_sat(sat, answer) == ("verified", "")
