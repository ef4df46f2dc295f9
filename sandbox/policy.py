"""Layer 1: a static policy on the syntax tree, checked before anything is compiled or run.

It stops, by construction rather than by substring matching: imports outside the allowlist (and so ctypes,
os, sys, subprocess, socket, threading, signal, ...); every dunder name or attribute (the `__class__`,
`__subclasses__`, `__globals__`, `__builtins__` walks); frame, generator, code and traceback attributes
(`f_back`, `gi_frame`, `tb_frame`, `co_code`, ...); format strings that walk attributes or items
(`"{0.__class__}".format(x)`); and the builtins that reach outside the language (exec, compile, open,
globals, locals, vars, dir, getattr, setattr, delattr, hasattr, __import__, input, breakpoint, ...).
Identifiers are checked after the parser's NFKC normalisation, so look-alike Unicode spellings are caught too.
"""

from __future__ import annotations

import ast
import string

from sandbox.modules import ALLOWED_IMPORTS

MAX_SOURCE_CHARS = 100_000

FORBIDDEN_NAMES = frozenset({
    "exec", "compile", "open", "globals", "locals", "vars", "dir", "getattr", "setattr", "delattr", "hasattr",
    "input", "breakpoint", "help", "memoryview", "exit", "quit", "copyright", "credits", "license",
    "printed",
})

# Dunder methods a class may define (used by honest code for heaps, keys and printing). __del__, __getattr__,
# __getattribute__, __init_subclass__, __reduce__, __format__ and friends stay forbidden.
ALLOWED_METHODS = frozenset({
    "__init__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__", "__repr__", "__str__",
    "__len__", "__contains__", "__iter__", "__next__",
})

INSPECT_PREFIXES = ("f_", "tb_", "gi_", "cr_", "ag_", "co_")
FORBIDDEN_ATTRS = frozenset({"format_map", "mro", "with_traceback"})


class PolicyError(Exception):
    """A program broke the static policy; the message says where and how."""


def bad_name(name: str) -> str | None:
    if name.startswith("__") or (name.startswith("_") and name.endswith("_") and name != "_"):
        return f"name {name!r} is reserved (dunder or RestrictedPython helper)"
    if name in FORBIDDEN_NAMES:
        return f"name {name!r} is not allowed"
    return None


def bad_attr(attr: str) -> str | None:
    if attr.startswith("_"):
        return f"attribute {attr!r} is not allowed (leading underscore)"
    if attr.startswith(INSPECT_PREFIXES) or attr in FORBIDDEN_ATTRS:
        return f"attribute {attr!r} is not allowed (introspection)"
    return None


def format_walk(template: str) -> str | None:
    """Why a str.format template is unsafe (a field walks attributes or items), or None when it is safe."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"bad format string: {exc}"
    for _, field, spec, _ in fields:
        if field is not None and ("." in field or "[" in field):
            return f"format field {field!r} walks attributes or items"
        if spec and "{" in spec:
            nested = format_walk(spec)
            if nested:
                return nested
    return None


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.class_depth = 0

    def fail(self, node: ast.AST, why: str) -> None:
        raise PolicyError(f"line {getattr(node, 'lineno', '?')}: {why}")

    def name(self, node: ast.AST, name: str | None) -> None:
        if name is not None and (why := bad_name(name)):
            self.fail(node, why)

    def visit_Name(self, node: ast.Name) -> None:
        self.name(node, node.id)

    def visit_arg(self, node: ast.arg) -> None:
        self.name(node, node.arg)
        self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> None:
        self.name(node, node.arg)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if why := bad_attr(node.attr):
            self.fail(node, why)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if not (self.class_depth and node.name in ALLOWED_METHODS):
            self.name(node, node.name)
        saved, self.class_depth = self.class_depth, 0
        self.generic_visit(node)
        self.class_depth = saved

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.name(node, node.name)
        for keyword in node.keywords:
            self.fail(node, f"class keyword {keyword.arg!r} is not allowed")
        for expr in node.bases + node.decorator_list:
            self.visit(expr)
        self.class_depth += 1
        for stmt in node.body:
            self.visit(stmt)
        self.class_depth -= 1

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            self.name(node, name)

    visit_Nonlocal = visit_Global  # type: ignore[assignment]

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self.name(node, node.name)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name not in ALLOWED_IMPORTS:
                self.fail(node, f"import of {alias.name!r} is not allowed")
            self.name(node, alias.asname)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or node.module not in ALLOWED_IMPORTS:
            self.fail(node, f"import from {'.' * node.level}{node.module or ''!s} is not allowed")
        allowed = ALLOWED_IMPORTS[node.module or ""]
        for alias in node.names:
            if alias.name not in allowed:
                self.fail(node, f"name {alias.name!r} of module {node.module!r} is not allowed")
            self.name(node, alias.asname)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr == "format"
                and isinstance(func.value, ast.Constant) and isinstance(func.value.value, str)
                and (why := format_walk(func.value.value))):
            self.fail(node, why)
        self.generic_visit(node)


def parse_checked(source: str, mode: str = "exec") -> ast.AST:
    """Parse `source` and apply the policy; raise PolicyError naming the line and the rule broken."""
    if not isinstance(source, str):
        raise PolicyError(f"source must be a string, got {type(source).__name__}")
    if len(source) > MAX_SOURCE_CHARS:
        raise PolicyError(f"source is {len(source)} characters; the limit is {MAX_SOURCE_CHARS}")
    try:
        tree = ast.parse(source, mode=mode)
    except SyntaxError as exc:
        raise PolicyError(f"line {exc.lineno}: syntax error: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        raise PolicyError(f"unparsable source: {type(exc).__name__}") from None
    try:
        _Checker().visit(tree)
    except RecursionError:
        raise PolicyError("source nests too deeply") from None
    return tree
