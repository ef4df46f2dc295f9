"""Layer 2: RestrictedPython with a policy tuned so honest P3 code runs, and the runtime guards it calls.

RestrictedPython rewrites attribute reads, item writes, iteration and imports into calls of guard functions
defined here. Tuned against the stock policy: augmented item/attribute assignment (`cnt[x] += 1`), `nonlocal`
and `_x` local names are allowed; names shaped like the guards (`_getattr_`) and dunders stay forbidden.
The guards refuse underscore and introspection attributes, attribute-walking format templates, writes to
anything but plain containers and the program's own objects, and imports outside the allowlist (programs
get ModuleProxy objects). `eval` is a restricted eval: same policy, the caller's names, no namespace arguments.
It limits neither time nor memory: layer 3 does.
"""

from __future__ import annotations

import ast
import builtins
import collections
import operator
import sys
import types
from collections.abc import Callable
from typing import Any

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.transformer import RestrictingNodeTransformer, copy_locations

from sandbox.modules import ALLOWED_IMPORTS, STATIC_PROXIES, random_proxy
from sandbox.policy import (
    ALLOWED_METHODS,
    PolicyError,
    bad_attr,
    bad_name,
    format_walk,
    is_super_method,
    parse_checked,
)

PROGRAM_MODULE = "sandboxed"  # __name__ of every program namespace, so its classes are recognisable
_EVAL_CACHE_SIZE = 256


class TunedPolicy(RestrictingNodeTransformer):
    """RestrictedPython's transformer, loosened only where honest P3 code needs it."""

    def check_name(self, node: Any, name: str | None, allow_magic_methods: bool = False) -> None:
        if name is None:
            return
        if allow_magic_methods and name in ALLOWED_METHODS and node.col_offset != 0:
            return
        if why := bad_name(name):
            self.error(node, why)

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        if isinstance(node.target, (ast.Subscript, ast.Attribute)):
            return self.node_contents_visit(node)  # target becomes _write_(obj)[key] / _write_(obj).attr
        return super().visit_AugAssign(node)

    def visit_Call(self, node: ast.Call) -> Any:
        func = node.func
        is_eval = isinstance(func, ast.Name) and func.id == "eval"
        if is_eval:  # the stock policy refuses every eval call; ours is bound to restricted_eval
            func.id = "eval_call"
        node = super().visit_Call(node)
        if is_eval:
            func.id = "eval"
        return node

    def visit_Nonlocal(self, node: ast.Nonlocal) -> Any:
        for name in node.names:
            self.check_name(node, name)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        if not is_super_method(node):
            return super().visit_Attribute(node)
        node = self.node_contents_visit(node)  # the stock policy refuses every `_` name; guarded_getattr checks
        call = ast.Call(func=ast.Name("_getattr_", ast.Load()), args=[node.value, ast.Constant(node.attr)], keywords=[])
        copy_locations(call, node)
        return call

    # `match` (refused by the stock policy): its names and class-pattern attributes are checked by layer 1;
    # value patterns and guards are ordinary expressions, rewritten as usual.
    def visit_Match(self, node: ast.Match) -> Any:
        return self.node_contents_visit(node)

    visit_match_case = visit_MatchValue = visit_MatchSingleton = visit_MatchSequence = visit_Match
    visit_MatchMapping = visit_MatchClass = visit_MatchStar = visit_MatchAs = visit_MatchOr = visit_Match


# Node types RestrictingNodeTransformer only checks and never rewrites (their names are checked by layer 1,
# which is stricter than RestrictedPython's own name rule as tuned here). A tree made of these alone compiles to
# the same code with or without the transformer, so it skips the slowest step; tests assert the equivalence.
# fmt: off
_UNTOUCHED = frozenset({
    ast.Module, ast.Expression, ast.FunctionDef, ast.arguments, ast.arg, ast.Return, ast.Constant, ast.Name,
    ast.Assign, ast.Load, ast.Store, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.If, ast.While,
    ast.Pass, ast.Break, ast.Continue, ast.Expr, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.Lambda, ast.keyword,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift, ast.RShift, ast.BitOr,
    ast.BitXor, ast.BitAnd, ast.UAdd, ast.USub, ast.Not, ast.Invert, ast.And, ast.Or, ast.Eq, ast.NotEq, ast.Lt,
    ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
})
# fmt: on


def _untouched(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        cls = type(node)
        if cls not in _UNTOUCHED:
            if cls is not ast.Call or any(type(a) is ast.Starred for a in node.args):  # type: ignore[attr-defined]
                return False
            if any(k.arg is None for k in node.keywords):  # type: ignore[attr-defined]
                return False
        elif cls is ast.Name and node.id in ("print", "printed"):  # type: ignore[attr-defined]
            return False
        elif cls is ast.Assign and not all(type(t) is ast.Name for t in node.targets):  # type: ignore[attr-defined]
            return False
    return True


def restrict(tree: ast.AST, filename: str, mode: str = "exec") -> types.CodeType:
    """Layer 2 on a tree that already passed layer 1 (the tree is rewritten in place)."""
    try:
        if _untouched(tree):
            return compile(tree, filename, mode)
        compiler = compile_restricted_exec if mode == "exec" else compile_restricted_eval
        result = compiler(tree, filename=filename, policy=TunedPolicy)
    except SyntaxError as exc:  # errors only the compiler sees, e.g. a starred assignment target
        raise PolicyError(f"line {exc.lineno}: syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError) as exc:  # the transformer or compiler on hostile depth
        raise PolicyError(f"cannot be compiled: {type(exc).__name__}") from None
    if result.errors or result.code is None:
        raise PolicyError("; ".join(result.errors) or "RestrictedPython refused the program")
    return result.code


def guarded_format(template: str, *args: object, **kwargs: object) -> str:
    """str.format, refusing templates (also those built at run time) whose fields read attributes."""
    if not isinstance(template, str):
        raise TypeError("format needs a str template")
    if why := format_walk(template):
        raise ValueError(why)
    return str.format(template, *args, **kwargs)


class _FormatGuard:
    """Stands in for the bound `template.format`."""

    __slots__ = ("_template",)

    def __init__(self, template: str) -> None:
        self._template = template

    def __call__(self, *args: object, **kwargs: object) -> str:
        return guarded_format(self._template, *args, **kwargs)


_STR_FORMAT = str.format


def guarded_getattr(obj: object, name: str, *default: object) -> Any:
    """Attribute reads: no underscore or introspection names, no real modules, and str.format only guarded.

    The format check looks at what was found, not at how: `s.format`, `str.format`, `type(s).format`, a
    subclass's inherited `format` and `super().format` all end in the one real method, and each becomes the
    guarded one."""
    if type(obj) is super and name in ALLOWED_METHODS:  # super().__init__(...) and friends
        return getattr(obj, name)
    if type(name) is not str or (why := bad_attr(name)):
        raise AttributeError(why if type(name) is str else "attribute names must be str")
    if isinstance(obj, types.ModuleType):
        raise AttributeError("module objects are not reachable in the sandbox")
    value = getattr(obj, name, *default)
    if name == "format":
        if value is _STR_FORMAT:
            return guarded_format
        if type(value) is types.BuiltinMethodType and isinstance(value.__self__, str) and value.__name__ == name:
            return _FormatGuard(value.__self__)
    return value


_WRITABLE_TYPES = (
    list,
    dict,
    set,
    bytearray,
    collections.deque,
    collections.Counter,
    collections.OrderedDict,
    collections.defaultdict,
)


def guarded_write(obj: Any) -> Any:
    """Item/attribute writes: plain containers, and objects, classes and functions the program made itself."""
    if isinstance(obj, _WRITABLE_TYPES) and not isinstance(obj, type):
        return obj
    owner = obj if isinstance(obj, (type, types.FunctionType)) else type(obj)
    if getattr(owner, "__module__", None) == PROGRAM_MODULE:
        return obj
    raise TypeError(f"the sandbox does not allow modifying objects of type {type(obj).__name__}")


def guarded_import(
    name: str, globals: dict[str, Any] | None = None, locals: object = None, fromlist: object = (), level: int = 0
) -> Any:
    """`import x` / `from x import y`: allowlisted modules only, as proxies; `random` is per namespace."""
    if level or name not in ALLOWED_IMPORTS:
        raise ImportError(f"import of {name!r} is not allowed")
    if name != "random":
        return STATIC_PROXIES[name]
    if globals is None:
        return random_proxy()
    proxy = globals.get("__random__")
    if proxy is None:
        proxy = globals["__random__"] = random_proxy()
    return proxy


def _one_arg_type(obj: object) -> Any:
    """`type(x)` only. The three-argument form, and any metaclass, would build classes with any dunder method
    (a `__reduce_ex__` that makes `copy` call setattr anywhere, say), so `type(C)` for a class C is this
    function again, and other metaclasses are refused."""
    cls = type(obj)
    if cls is type:
        return _one_arg_type
    if issubclass(cls, type):
        raise TypeError("the sandbox does not hand out metaclasses")
    return cls


class _DiscardPrints:
    """RestrictedPython's print collector, minus the collecting: output floods go nowhere."""

    def __init__(self, _getattr: object = None) -> None:
        pass

    def __call__(self) -> str:
        return ""

    def _call_print(self, *args: object, **kwargs: object) -> None:
        pass


# fmt: off
_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
    ">>=": operator.irshift, "|=": operator.ior, "^=": operator.ixor, "&=": operator.iand, "@=": operator.imatmul,
}
# fmt: on

# fmt: off
_SAFE_BUILTIN_NAMES = (
    "abs", "all", "any", "ascii", "bin", "bool", "bytearray", "bytes", "callable", "chr", "classmethod", "complex",
    "dict", "divmod", "enumerate", "filter", "float", "format", "frozenset", "hash", "hex", "id", "int",
    "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next", "object", "oct", "ord", "pow",
    "property", "range", "repr", "reversed", "round", "set", "slice", "sorted", "staticmethod", "str", "sum",
    "super", "tuple", "zip", "None", "True", "False", "Ellipsis", "NotImplemented",
    "ArithmeticError", "AssertionError", "AttributeError", "Exception", "IndexError", "KeyError", "LookupError",
    "NameError", "NotImplementedError", "OverflowError", "RecursionError", "RuntimeError", "StopIteration",
    "TypeError", "UnboundLocalError", "ValueError", "ZeroDivisionError", "UnicodeError", "MemoryError",
    "SyntaxError", "FloatingPointError", "UnicodeDecodeError", "UnicodeEncodeError",
)
# fmt: on


def _builtins() -> dict[str, Any]:
    table = {name: getattr(builtins, name) for name in _SAFE_BUILTIN_NAMES}
    table.update(
        {
            "__build_class__": builtins.__build_class__,
            "__import__": guarded_import,
            "type": _one_arg_type,
            "eval": restricted_eval,
        }
    )
    return table


_eval_cache: dict[str, types.CodeType] = {}


def restricted_eval(expression: str, *namespaces: object) -> Any:
    """eval() for programs: the expression passes both policy layers and, as in P3, sees its caller's names.

    The caller's namespace is used only when it is a program namespace (built by new_namespace, so its
    guards are ours and unassignable); otherwise the expression gets a fresh one.
    """
    if namespaces:
        raise TypeError("the sandbox's eval takes no globals/locals")
    if type(expression) is not str:
        raise TypeError("the sandbox's eval takes a str")
    code = _eval_cache.get(expression)
    if code is None:
        try:
            code = restrict(parse_checked(expression, "eval"), "<eval>", "eval")
        except PolicyError as exc:
            raise SyntaxError(f"eval refused: {exc}") from None
        if len(_eval_cache) >= _EVAL_CACHE_SIZE:
            _eval_cache.clear()
        _eval_cache[expression] = code
    caller = sys._getframe(1)
    program_globals = caller.f_globals
    if program_globals.get("__name__") == PROGRAM_MODULE and program_globals.get("_getattr_") is guarded_getattr:
        return builtins.eval(code, program_globals, caller.f_locals)
    return builtins.eval(code, new_namespace())


_BASE: dict[str, Any] = {
    "__builtins__": _builtins(),
    "__name__": PROGRAM_MODULE,
    "__metaclass__": type,
    "_getattr_": guarded_getattr,
    "_getitem_": operator.getitem,
    "_write_": guarded_write,
    "_getiter_": iter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_apply_": lambda func, *args, **kwargs: func(*args, **kwargs),
    "_inplacevar_": lambda op, x, y: _INPLACE[op](x, y),
    "_print_": _DiscardPrints,
    "List": STATIC_PROXIES["typing"].List,  # P3 annotations use List without importing it
}


def new_namespace() -> dict[str, Any]:
    """A fresh globals dict for one program run; the builtins table is shared but unreachable from programs."""
    return dict(_BASE)
