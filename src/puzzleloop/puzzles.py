"""The puzzle model: parse P3-style ``sat`` functions, render headers, rename, canonicalise and compare.

Everything here works on source text through :mod:`ast` and never executes it: puzzles arrive from a
language model and from users, so parsing must reject hostile input with a clear :class:`PuzzleError`
instead of crashing, looping or running code (annotations and defaults are evaluated at ``def`` time,
hence the strict rules on them).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import hashlib
import io
import keyword
import re
import sys
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_SOURCE_CHARS = 100_000
"""Longest source accepted (the longest P3 sat has 14,157 characters)."""
MAX_AST_DEPTH = 100
"""Deepest syntax tree accepted (P3 sats reach 16); keeps the recursive ast helpers far from the limit."""

BASE_TYPES = ("int", "float", "str", "bool")
ANSWER_TYPES: frozenset[str] = frozenset(
    {
        "int",
        "float",
        "str",
        "bool",
        "List[int]",
        "List[float]",
        "List[str]",
        "List[bool]",
        "List[List[int]]",
        "List[List[float]]",
        "List[List[str]]",
        "List[List[List[int]]]",
    }
)
"""Every answer type that occurs in P3's puzzles.json. parse_puzzle accepts any nesting of List over
the base types; this set is what the data actually uses."""

_KEPT_NAMES = frozenset(dir(builtins)) | frozenset(typing.__all__) | {"typing"}


class PuzzleError(ValueError):
    """A puzzle source that cannot be accepted; the message names the puzzle and the problem."""


@dataclass(frozen=True)
class Param:
    """An extra parameter of a puzzle: it always has a literal default (kept as its source text)."""

    name: str
    annotation: str | None
    default_source: str


@dataclass(frozen=True)
class Puzzle:
    """A parsed puzzle: ``def <func_name>(<answer_name>: <answer_type>, <params with defaults>)``."""

    name: str
    source: str
    func_name: str
    answer_name: str
    answer_type: str
    params: tuple[Param, ...]


@contextlib.contextmanager
def _big_int_digits(source: str) -> Iterator[None]:
    """Allow integer literals as long as the source itself (one P3 sat holds an 8,844-digit number).

    Python refuses int<->str conversions over 4,300 digits by default; the cost of converting is bounded
    here by MAX_SOURCE_CHARS, which is checked before this is entered.
    """
    old = sys.get_int_max_str_digits()
    needed = max(old, len(source) + 1) if old else 0
    sys.set_int_max_str_digits(needed)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(old)


def _tree_depth(tree: ast.AST) -> int:
    """Depth of the syntax tree, computed without recursion."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def parse_module(source: object, name: str = "<puzzle>") -> ast.Module:
    """Parse untrusted source into a module, enforcing type, size and depth limits."""
    if not isinstance(source, str):
        raise PuzzleError(f"{name}: source must be a str, got {type(source).__name__}")
    if len(source) > MAX_SOURCE_CHARS:
        raise PuzzleError(f"{name}: source has {len(source):,} characters (limit {MAX_SOURCE_CHARS:,})")
    try:
        with _big_int_digits(source):
            tree = ast.parse(source)
    except SyntaxError as e:
        where = f" at line {e.lineno}" if e.lineno else ""
        raise PuzzleError(f"{name}: syntax error{where}: {e.msg}") from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise PuzzleError(f"{name}: cannot parse: {type(e).__name__}: {e}") from None
    depth = _tree_depth(tree)
    if depth > MAX_AST_DEPTH:
        raise PuzzleError(f"{name}: syntax tree is {depth} levels deep (limit {MAX_AST_DEPTH})")
    return tree


def parse_function(source: object, name: str = "<puzzle>") -> ast.FunctionDef:
    """Parse source that must be exactly one top-level ``def`` without decorators; return that def."""
    tree = parse_module(source, name)
    if not tree.body:
        raise PuzzleError(f"{name}: no function definition (empty source)")
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    if not defs:
        kind = type(tree.body[0]).__name__
        raise PuzzleError(f"{name}: no function definition (found a top-level {kind} statement)")
    if len(defs) > 1:
        raise PuzzleError(
            f"{name}: {len(defs)} top-level functions ({', '.join(d.name for d in defs)}); expected exactly one"
        )
    if len(tree.body) > 1:
        other = next(node for node in tree.body if node is not defs[0])
        raise PuzzleError(
            f"{name}: top-level {type(other).__name__} statement at line {other.lineno} "
            "besides the function; expected the function alone"
        )
    func = defs[0]
    if isinstance(func, ast.AsyncFunctionDef):
        raise PuzzleError(f"{name}: 'async def {func.name}' is not allowed")
    if func.decorator_list:
        raise PuzzleError(f"{name}: function {func.name!r} has decorators; they are not allowed")
    return func


def _type_string(node: ast.expr) -> str | None:
    """The normalised P3 type of an annotation ('List[int]' for list[int] / typing.List[int]), or None."""
    if isinstance(node, ast.Name) and node.id in BASE_TYPES:
        return node.id
    if isinstance(node, ast.Subscript):
        base = node.value
        is_list = (isinstance(base, ast.Name) and base.id in ("List", "list")) or (
            isinstance(base, ast.Attribute)
            and base.attr == "List"
            and isinstance(base.value, ast.Name)
            and base.value.id == "typing"
        )
        inner = _type_string(node.slice) if is_list else None
        return f"List[{inner}]" if inner else None
    return None


def _is_safe_annotation(node: ast.expr) -> bool:
    """Annotations run at def time: allow only names, dotted names, subscripts of those, None."""
    if isinstance(node, ast.Name):
        return True
    if isinstance(node, ast.Attribute):
        return _is_safe_annotation(node.value)
    if isinstance(node, ast.Subscript):
        return _is_safe_annotation(node.value) and _is_safe_annotation(node.slice)
    if isinstance(node, ast.Tuple | ast.List):
        return all(_is_safe_annotation(e) for e in node.elts)
    return isinstance(node, ast.Constant) and node.value is None


def _is_literal(node: ast.expr) -> bool:
    """A plain data literal: numbers, strings, bools, None, and lists/tuples/sets/dicts of them."""
    if isinstance(node, ast.Constant):
        return node.value is not Ellipsis
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float, complex)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return all(_is_literal(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_literal(k) for k in node.keys) and all(map(_is_literal, node.values))
    return False


def parse_puzzle(source: str, name: str = "<puzzle>") -> Puzzle:
    """Parse a puzzle: one top-level def whose first parameter is the typed answer, the rest literal defaults."""
    func = parse_function(source, name)
    args = func.args
    where = f"{name}: function {func.name!r}"
    if args.posonlyargs or args.vararg or args.kwonlyargs or args.kwarg:
        raise PuzzleError(f"{where}: only plain parameters are allowed (no /, *args, keyword-only, **kwargs)")
    if not args.args:
        raise PuzzleError(f"{where}: has no answer parameter")
    answer, extras = args.args[0], args.args[1:]
    if len(args.defaults) != len(extras):
        if len(args.defaults) > len(extras):
            raise PuzzleError(f"{where}: answer parameter {answer.arg!r} must not have a default")
        missing = extras[len(extras) - len(args.defaults) - 1].arg
        raise PuzzleError(
            f"{where}: parameter {missing!r} has no default; every parameter after the answer needs a literal default"
        )
    if answer.annotation is None:
        raise PuzzleError(f"{where}: answer parameter {answer.arg!r} has no type annotation")
    answer_type = _type_string(answer.annotation)
    if answer_type is None:
        raise PuzzleError(
            f"{where}: answer type {ast.unparse(answer.annotation)!r} is not one of "
            f"{', '.join(BASE_TYPES)} or a List of them"
        )
    if func.returns is not None and not _is_safe_annotation(func.returns):
        raise PuzzleError(f"{where}: return annotation must be a plain type")
    params = []
    for arg, default in zip(extras, args.defaults, strict=True):
        if arg.annotation is not None and not _is_safe_annotation(arg.annotation):
            raise PuzzleError(f"{where}: annotation of parameter {arg.arg!r} must be a plain type")
        if not _is_literal(default):
            raise PuzzleError(
                f"{where}: default of parameter {arg.arg!r} is not a literal "
                f"({type(default).__name__} at line {default.lineno})"
            )
        annotation = (
            None
            if arg.annotation is None
            else (_type_string(arg.annotation) or ast.get_source_segment(source, arg.annotation))
        )
        params.append(Param(arg.arg, annotation, ast.get_source_segment(source, default) or ""))
    return Puzzle(name, source, func.name, answer.arg, answer_type, tuple(params))


def _check_identifier(new_name: str) -> None:
    if not isinstance(new_name, str) or not new_name.isidentifier() or keyword.iskeyword(new_name):
        raise PuzzleError(f"{new_name!r} is not a valid function name")


def solution_header(puzzle: Puzzle, func_name: str = "sol") -> str:
    """The header of a solution, e.g. ``def sol(a=1, b='x'):``, repeating the puzzle's defaults."""
    _check_identifier(func_name)
    params = ", ".join(f"{p.name}={p.default_source}" for p in puzzle.params)
    return f"def {func_name}({params}):"


def rename_function(source: str, new_name: str, name: str = "<puzzle>") -> str:
    """Rename the single top-level def (``sat`` <-> ``f``, ``sol`` <-> ``g``); the body is left unchanged."""
    _check_identifier(new_name)
    func = parse_function(source, name)
    lines = io.StringIO(source, newline="").readlines()  # the line breaks Python's tokenizer knows
    line = lines[func.lineno - 1]
    start = len(line.encode()[: func.col_offset].decode())  # ast column offsets count UTF-8 bytes
    match = re.compile(r"def\s+(\w+)").match(line, start)
    if match is None or match.group(1) != func.name:
        raise PuzzleError(f"{name}: cannot locate the name of function {func.name!r} on line {func.lineno}")
    lines[func.lineno - 1] = line[: match.start(1)] + new_name + line[match.end(1) :]
    return "".join(lines)


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


class _Canonicaliser(ast.NodeTransformer):
    """Rename identifiers v0, v1, ... by first use, drop bare strings, normalise answer-style annotations."""

    def __init__(self, func_name: str, kept: frozenset[str]):
        self.names = {func_name: "f"}
        self.kept = kept

    def rename(self, identifier: str) -> str:
        if identifier in self.kept:
            return identifier
        if identifier not in self.names:
            self.names[identifier] = f"v{len(self.names) - 1}"
        return self.names[identifier]

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for field in ("body", "orelse", "finalbody"):
            stmts = getattr(node, field, None)
            if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
                kept = [s for s in stmts if not _is_docstring(s)]
                setattr(node, field, kept or ([ast.Pass()] if field == "body" else []))
        return super().generic_visit(node)

    def _annotation(self, node: ast.expr | None) -> ast.expr | None:
        if node is None:
            return None
        normal = _type_string(node)
        return ast.parse(normal, mode="eval").body if normal else self.visit(node)

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.rename(node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self.rename(node.arg)
        node.annotation = self._annotation(node.annotation)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name = self.rename(node.name)
        returns, node.returns = self._annotation(node.returns), None  # keep generic_visit off it
        self.generic_visit(node)
        node.returns = returns
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.name = self.rename(node.name)
        return self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        node.target = self.visit(node.target)
        node.annotation = self._annotation(node.annotation)
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_Global(self, node: ast.Global) -> ast.AST:
        node.names = [self.rename(n) for n in node.names]
        return node

    visit_Nonlocal = visit_Global

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        if node.name:
            node.name = self.rename(node.name)
        return self.generic_visit(node)


def _imported_names(tree: ast.AST) -> frozenset[str]:
    """Names bound by imports (module names are kept, like builtins)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                found.add(alias.asname or alias.name.split(".")[0])
    return frozenset(found)


def canonical_form(source: str, name: str = "<puzzle>") -> str:
    """A normal form for dedup: function named f, other identifiers v0, v1, ... by first use (builtins,
    imported modules and attribute names kept), docstrings/bare strings and comments dropped, and the
    layout of ``ast.unparse``. Renaming variables or reformatting leaves it unchanged; constants stay."""
    func = parse_function(source, name)
    kept = _KEPT_NAMES | _imported_names(func)
    try:
        with _big_int_digits(source):
            return ast.unparse(_Canonicaliser(func.name, kept).visit(func))
    except (RecursionError, ValueError) as e:
        raise PuzzleError(f"{name}: cannot canonicalise: {type(e).__name__}: {e}") from None


def canonical_hash(source: str, name: str = "<puzzle>") -> str:
    """sha256 (hex) of the canonical form: equal for sources that differ only in names, layout, comments."""
    return hashlib.sha256(canonical_form(source, name).encode()).hexdigest()


_TOKEN = re.compile(r"(\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?j?)|('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|\w+|\S")
_NGRAM = 3


def _shingles(canonical: str) -> frozenset[int]:
    """Features of a canonical form: hashed token 3-grams with every literal replaced by a placeholder
    (the shape of the code), plus the literals themselves. P3 makes instances of one puzzle by changing
    its constants, so such variants share the whole shape and score high, yet below an exact copy."""
    shape: list[str] = []
    features: set[int] = set()
    for match in _TOKEN.finditer(canonical):
        number, string = match.group(1), match.group(2)
        if number or string:
            features.add(hash(("literal", match.group())))
        shape.append("<num>" if number else "<str>" if string else match.group())
    features.update(hash(tuple(shape[i : i + _NGRAM])) for i in range(max(len(shape) - _NGRAM, 0) + 1))
    return frozenset(features)


def _jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


_BELOW_ONE = 0.999
"""Cap for sources whose canonical forms differ, so that 1.0 always means an exact canonical duplicate."""


def similarity(a: str, b: str) -> float:
    """Similarity in [0, 1] of two sources: 1.0 iff their canonical forms are equal, otherwise the
    Jaccard index of their canonical token 3-grams (capped just below 1)."""
    ca, cb = canonical_form(a, "first source"), canonical_form(b, "second source")
    if ca == cb:
        return 1.0
    return min(_jaccard(_shingles(ca), _shingles(cb)), _BELOW_ONE)


class NearDuplicateIndex:
    """Reference sources (e.g. all 1,009 P3 test instances) prepared once for many similarity queries."""

    def __init__(self, sources: Iterable[tuple[str, str]]):
        self._names: list[str] = []
        self._shingles: list[frozenset[int]] = []
        self._exact: dict[str, str] = {}
        for ref_name, source in sources:
            canonical = canonical_form(source, ref_name)
            self._exact.setdefault(canonical, ref_name)
            self._names.append(ref_name)
            self._shingles.append(_shingles(canonical))
        if not self._names:
            raise ValueError("NearDuplicateIndex needs at least one reference source")

    def __len__(self) -> int:
        return len(self._names)

    def nearest(self, source: str, name: str = "<puzzle>") -> tuple[str, float]:
        """The most similar reference (first one on ties) and the similarity, as :func:`similarity`."""
        canonical = canonical_form(source, name)
        if canonical in self._exact:
            return self._exact[canonical], 1.0
        query = _shingles(canonical)
        best_name, best = self._names[0], -1.0
        for ref_name, ref in zip(self._names, self._shingles, strict=True):
            smaller, larger = sorted((len(query), len(ref)))
            if smaller / larger <= best:  # Jaccard cannot exceed the size ratio
                continue
            score = _jaccard(query, ref)
            if score > best:
                best_name, best = ref_name, score
        return best_name, min(max(best, 0.0), _BELOW_ONE)
