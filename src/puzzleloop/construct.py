"""Puzzles valid by construction: a program, an input, and the output the sandbox computed become a P3 puzzle.

A 135M model on a CPU budget almost never solves its own new puzzles, so its proposals gave no training pair.
Abduction (Absolute Zero's task) needs no solver: the model writes a program `f(x: T, ...)` and a call
`assert f(<input>) == ...`; the sandbox runs the program on the input twice, in two separate judges, and the
output both agree on becomes the puzzle's target:

    def sat(x: T, ..., target=<output>):
        return <program's expression> == target

The input is its solution, judged like any other pair. About a fifth of P3's puzzles have this
`... == parameter` shape already (`target_form`), which is how seeds become program examples and how a wrong
answer to such a puzzle becomes a verified pair of a new one (hindsight relabeling: the target recomputed from
that answer). Every program runs only inside the sandbox; this module only rewrites syntax trees.
"""

from __future__ import annotations

import ast
import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sandbox import Judge, Output

from puzzleloop.filters import Proposal
from puzzleloop.prompts import ProposePrompt, SeedExample, prompt_ending_open
from puzzleloop.puzzles import PuzzleError, parse_function, parse_puzzle, rename_function, solution_header

TARGET = "target"  # the parameter a constructed puzzle's output is bound to
MAX_EXAMPLE_LITERAL = 120  # seeds whose input or output is written longer are not shown as examples


@dataclass(frozen=True)
class TargetForm:
    """A puzzle `sat(x, ..., p=V)` whose every return is `E == p`: the program `f(x, ...)` returning E, and p."""

    program: str
    param: str


class _Returns(ast.NodeVisitor):
    """The return statements of one function's own body (not of the functions or classes it defines)."""

    def __init__(self) -> None:
        self.found: list[ast.Return] = []

    def visit_Return(self, node: ast.Return) -> None:
        self.found.append(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        pass

    visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = visit_FunctionDef  # type: ignore[assignment]


def _own_returns(func: ast.FunctionDef) -> list[ast.Return]:
    visitor = _Returns()
    for statement in func.body:
        visitor.visit(statement)
    return visitor.found


def _compared_side(node: ast.expr | None, param: str) -> ast.expr | None:
    """E for a return value `E == param` or `param == E`, else None."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq)):
        return None
    left, right = node.left, node.comparators[0]
    if isinstance(right, ast.Name) and right.id == param:
        return left
    if isinstance(left, ast.Name) and left.id == param:
        return right
    return None


def target_form(sat: str) -> TargetForm | None:
    """The program inside a puzzle of target form, or None when the puzzle has another shape."""
    try:
        puzzle = parse_puzzle(sat)
        func = parse_function(sat)
    except PuzzleError:
        return None
    returns = _own_returns(func)
    for param in reversed(puzzle.params):
        sides = [_compared_side(r.value, param.name) for r in returns]
        if not returns or any(side is None for side in sides):
            continue
        uses = sum(isinstance(n, ast.Name) and n.id == param.name for n in ast.walk(func))
        if uses != len(returns):  # the target is read somewhere besides the comparison
            continue
        for statement, side in zip(returns, sides, strict=True):
            statement.value = side
        names = [a.arg for a in func.args.args]
        index, first_default = names.index(param.name), len(names) - len(func.args.defaults)
        del func.args.args[index], func.args.defaults[index - first_default]
        return TargetForm(ast.unparse(func) + "\n", param.name)
    return None


def with_target(program: str, literal: str, param: str = TARGET, name: str = "sat") -> str:
    """The puzzle `name(x, ..., param=literal)` whose returns compare the program's value with `param`.

    PuzzleError when the program is not one function with a typed answer, or already uses `param`.
    """
    parse_puzzle(program)
    func = parse_function(program)
    if param in _names(func):
        raise PuzzleError(f"the program already uses the name {param!r}")
    returns = _own_returns(func)
    if not returns:
        raise PuzzleError("the program returns nothing")
    for statement in returns:
        value = statement.value if statement.value is not None else ast.Constant(None)
        statement.value = ast.Compare(value, [ast.Eq()], [ast.Name(param, ast.Load())])
    func.args.args.append(ast.arg(param))
    func.args.defaults.append(ast.parse(literal, mode="eval").body)
    func.name = name
    return ast.unparse(ast.fix_missing_locations(func)) + "\n"


def _names(func: ast.FunctionDef) -> set[str]:
    """Every variable and parameter name the function mentions."""
    return {n.id for n in ast.walk(func) if isinstance(n, ast.Name)} | {
        a.arg for a in ast.walk(func) if isinstance(a, ast.arg)
    }


def literal(value_json: str) -> str:
    """A sandbox value (Output.value or .answer, JSON of int/float/str/bool/lists) as a Python literal."""
    return repr(json.loads(value_json))


def returning(sat: str | None, value: str) -> str:
    """A solution of `sat` that returns the literal `value`, its header repeating the puzzle's defaults as P3's
    solutions do (a bare `def sol():` when there is no puzzle yet)."""
    header = solution_header(parse_puzzle(sat)) if sat is not None else "def sol():"
    return f"{header}\n    return {value}\n"


@dataclass(frozen=True)
class ProgramCall:
    """A proposed program and the literal input the proposer called it with."""

    program: str
    input: str


def program_call(text: str, name: str) -> ProgramCall | str:
    """Split an abduction completion (`def name(...)...` then `assert name(<input>, ...) == ...`) into the program
    and its input literal; a string says which step failed ("parse" or "call").

    Literal arguments after the input become the defaults of the parameters they bind, so `def f(x: int, a)` called
    as `f(3, 5)` is the program `def f(x: int, a=5)`: the answer first, every other parameter a literal default.
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "parse"
    if len(tree.body) != 2 or not isinstance(tree.body[0], ast.FunctionDef):
        return "call"
    func, check = tree.body
    call = check.test.left if isinstance(check, ast.Assert) and isinstance(check.test, ast.Compare) else None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == name and call.args):
        return "call"
    params = func.args.args
    if func.args.posonlyargs or func.args.kwonlyargs or func.args.vararg or func.args.kwarg:
        return "call"
    bound: dict[str, ast.expr] = dict(zip((p.arg for p in params), call.args, strict=False))
    bound |= {k.arg: k.value for k in call.keywords if k.arg is not None}
    if len(call.args) > len(params) or len(bound) != len(call.args) + len(call.keywords):
        return "call"  # more arguments than parameters, or one bound twice
    first_default = len(params) - len(func.args.defaults)
    defaults = dict(zip((p.arg for p in params[first_default:]), func.args.defaults, strict=True))
    try:
        value = ast.literal_eval(bound.pop(params[0].arg))
        for node in bound.values():
            ast.literal_eval(node)
    except (KeyError, ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return "call"
    defaults |= bound
    if any(p.arg not in defaults for p in params[1:]):
        return "call"  # a parameter the call leaves without a value
    func.args.defaults = [defaults[p.arg] for p in params[1:]]
    func.name = "f"  # the name the judge looks for
    return ProgramCall(ast.unparse(func) + "\n", repr(value))


def agreed_outputs(judges: Sequence[Judge], pairs: Sequence[tuple[str, str]]) -> list[Output | str]:
    """Each (program, sol) pair's Output where every judge computed the same answer and value, else why not:
    "failed" (not `ok` in some judge) or "nondeterministic". Each judge is a separate warm parent, so hash
    seeds and random state differ between them, and a program that depends on them is caught."""
    runs = [judge.outputs(pairs) for judge in judges]
    results: list[Output | str] = []
    for outputs in zip(*runs, strict=True):
        if any(o.status != "ok" for o in outputs):
            results.append("failed")
        elif len({(o.answer, o.value) for o in outputs}) != 1:
            results.append("nondeterministic")
        else:
            results.append(outputs[0])
    return results


@dataclass(frozen=True)
class ProgramExample:
    """A seed of target form shown as a program with an input and the output the sandbox computed for it."""

    name: str
    program: str
    input: str
    output: str


def program_examples(seeds: Sequence[SeedExample], judge: Judge) -> list[ProgramExample]:
    """The seeds of target form with a reference solution, as programs called on that solution's answer.

    The answer and the output are both computed by the judge (seed code is untrusted too); seeds whose program
    fails on it, or whose literals are long, are left out."""
    forms = [(seed, target_form(seed.sat)) for seed in seeds if seed.sol is not None]
    chosen = [(seed, form) for seed, form in forms if form is not None]
    outputs = judge.outputs([(form.program, seed.sol) for seed, form in chosen])
    examples = []
    for (seed, form), output in zip(chosen, outputs, strict=True):
        if output.status != "ok":
            continue
        shown = literal(output.answer), literal(output.value)
        if max(map(len, shown)) <= MAX_EXAMPLE_LITERAL:
            examples.append(ProgramExample(seed.name, form.program, *shown))
    return examples


def abduction_prompt(
    examples: Sequence[ProgramExample], count: int, rng: random.Random, openings: Sequence[str] = ()
) -> ProposePrompt:
    """`count` shuffled program examples `f<i>` each with `assert f<i>(<input>) == <output>`, ending with the open
    `def f{k+1}(`: the model writes a program and the call that gives its input.

    With `openings` (answer parameters such as `li: List[int]`), the open header also names one of them, drawn at
    random, so the program's input has that type: left to itself the model writes programs over an int.
    """
    if not examples:
        raise ValueError("abduction_prompt: no seed of target form to show")
    chosen = rng.sample(list(examples), min(count, len(examples)))
    opening = rng.choice(list(openings)) if openings else ""
    blocks = [
        f"{rename_function(e.program, f'f{i}').strip()}\n\nassert f{i}({e.input}) == {e.output}"
        for i, e in enumerate(chosen, start=1)
    ]
    text, next_name = prompt_ending_open(blocks, opening)
    return ProposePrompt(text, tuple(e.name for e in chosen), next_name, opening=opening)


def answer_openings(seeds: Iterable[SeedExample]) -> list[str]:
    """Each parseable seed's answer parameter as written in a header, `name: type` (one entry per seed, so types
    come up as often as the seeds have them)."""
    openings = []
    for seed in seeds:
        try:
            puzzle = parse_puzzle(seed.sat, seed.name)
        except PuzzleError:
            continue
        openings.append(f"{puzzle.answer_name}: {puzzle.answer_type}")
    return openings


def constructed_proposals(
    completions: Iterable[tuple[str, str, tuple[str, ...]]],
    judges: Sequence[Judge],
    max_source_chars: int,
    max_target_chars: int,
) -> tuple[list[Proposal], Counter]:
    """Puzzles built from (program text, its name, prompt seeds) completions, and how many each step removed.

    Steps in FILTER_STEPS order: too_long, parse and call (the text is a program and `assert name(<literal>)`),
    program_failed and nondeterministic (judged by every judge), target_size, signature (no puzzle can be made).
    The rest of the filters run on the proposals returned, which carry their solution, answer and target.
    """
    removed: Counter = Counter()
    calls: list[tuple[ProgramCall, tuple[str, ...]]] = []
    for text, name, seeds in completions:
        call = program_call(text, name) if len(text) <= max_source_chars else "too_long"
        if isinstance(call, str):
            removed[call] += 1
        else:
            calls.append((call, seeds))
    outputs = (
        agreed_outputs(judges, [(call.program, returning(None, call.input)) for call, _ in calls]) if calls else []
    )
    proposals = []
    for (call, seeds), output in zip(calls, outputs, strict=True):
        proposal = output_proposal(output, call.program, TARGET, seeds, max_target_chars)
        if isinstance(proposal, str):
            removed[proposal] += 1
        else:
            proposals.append(proposal)
    return proposals, removed


def output_proposal(
    output: Output | str,
    program: str,
    param: str,
    seeds: tuple[str, ...],
    max_target_chars: int,
    solver_code: str | None = None,
) -> Proposal | str:
    """The puzzle `program` makes with its agreed output (agreed_outputs) as the target of `param`, solved by the
    answer as a literal, or by `solver_code` (relabeling: the code that gave the answer, see `relabeled_solution`);
    or the FILTER_STEPS step that removes it: program_failed, nondeterministic, target_size (the target, and with
    `solver_code` the answer too, longer than max_target_chars), signature."""
    if isinstance(output, str):
        return "program_failed" if output == "failed" else output
    target, answer = literal(output.value), literal(output.answer)
    if max(len(target), len(answer) if solver_code is not None else 0) > max_target_chars:
        return "target_size"
    try:
        sat = with_target(program, target, param)
        code = relabeled_solution(solver_code, sat, param) if solver_code is not None else None
    except PuzzleError:
        return "signature"
    return Proposal(sat, seeds, solution=code or returning(sat, answer), answer=answer, target=target)


def relabeled_solution(solver_code: str, sat: str, param: str) -> str | None:
    """The solver's code under the header of `sat`'s solutions (`def sol(<sat's defaults>):`), or None when its
    body reads `param`, whose value relabeling changed (the code would compute another answer).

    A relabeled pair keeps the code the solver wrote, not only the value it returned: CodeIt keeps the program,
    and a literal teaches nothing about computing an answer."""
    func = parse_function(solver_code, "the solver's answer")
    if any(isinstance(n, ast.Name) and n.id == param for statement in func.body for n in ast.walk(statement)):
        return None
    header = parse_function(f"{solution_header(parse_puzzle(sat))}\n    pass\n")
    func.name, func.args = header.name, header.args
    return ast.unparse(func) + "\n"
