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

import _string  # the parser str.format itself uses for field names
import ast
import string

from sandbox.modules import ALLOWED_IMPORTS

MAX_SOURCE_CHARS = 100_000

# fmt: off
FORBIDDEN_NAMES = frozenset({
    "exec", "compile", "open", "globals", "locals", "vars", "dir", "getattr", "setattr", "delattr", "hasattr",
    "input", "breakpoint", "help", "memoryview", "exit", "quit", "copyright", "credits", "license",
    "printed",
})
# fmt: on

# Dunder methods a class may define: construction, comparison, printing, containers and operator overloading,
# which honest code uses for heaps, keys, vectors and grids. A program's objects never reach sat (the answer
# crosses as plain data), so these only shape the program's own computation. What changes how Python itself
# treats the object stays forbidden: __del__ (finalizers), __getattr__/__getattribute__/__setattr__,
# __init_subclass__, __class_getitem__, descriptors (__get__/__set__/__set_name__), __reduce__ and the copy and
# pickle hooks, __format__, __new__, __prepare__.
# fmt: off
_OPERATORS = ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "divmod", "pow", "lshift", "rshift",
              "and", "xor", "or")
# fmt: on
# fmt: off
ALLOWED_METHODS = frozenset({
    "__init__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__", "__repr__", "__str__",
    "__len__", "__contains__", "__iter__", "__next__", "__reversed__", "__getitem__", "__setitem__", "__delitem__",
    "__bool__", "__call__", "__index__", "__int__", "__float__", "__neg__", "__pos__", "__abs__", "__invert__",
    "__enter__", "__exit__",
    *(f"__{op}__" for op in _OPERATORS), *(f"__r{op}__" for op in _OPERATORS), *(f"__i{op}__" for op in _OPERATORS),
})
# fmt: on

INSPECT_PREFIXES = ("f_", "tb_", "gi_", "cr_", "ag_", "co_")
FORBIDDEN_ATTRS = frozenset({"format_map", "mro", "with_traceback"})


def is_super_method(node: ast.Attribute) -> bool:
    """`super().__init__` and the like: a read of an allowed method through a call of `super`."""
    value = node.value
    return (
        node.attr in ALLOWED_METHODS
        and isinstance(node.ctx, ast.Load)
        and isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "super"
    )


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


def format_walk(template: str, depth: int = 0) -> str | None:
    """Why a str.format template is unsafe (a field reads an attribute), or None when it is safe.

    Index fields (`'{0[0]}'`, `'{0[key]}'`) are allowed: they are plain subscripts, which programs may write
    anyway. Attribute fields (`'{0.real}'`) are not: they would read names no guard sees.
    """
    try:
        fields = list(string.Formatter().parse(template))
        for _, field, spec, _ in fields:
            if field is not None and any(is_attr for is_attr, _ in _string.formatter_field_name_split(field)[1]):
                return f"format field {field[:40]!r} reads an attribute"
            if spec and "{" in spec:
                if depth >= 2:
                    return "format spec nests too deeply"
                if nested := format_walk(spec, depth + 1):
                    return nested
    except ValueError as exc:
        return f"bad format string: {exc}"
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
        if not is_super_method(node) and (why := bad_attr(node.attr)):
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

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        for attr in node.kwd_attrs:  # `case C(attr=p)` reads attr with the real getattr, so check it here
            if why := bad_attr(attr):
                self.fail(node, why)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        self.name(node, node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        self.name(node, node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self.name(node, node.rest)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "format"
            and isinstance(func.value, ast.Constant)
            and isinstance(func.value.value, str)
            and (why := format_walk(func.value.value))
        ):
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
