"""The answer contract: parse sat's answer annotation (never evaluate it), check a value against it exactly, and
carry it from sol's process to sat's as plain data.

P3 answers are int, float, str, bool and nested lists of them; the check is exact (`type(x) is int`, so bool
is not int and no subclass passes). The answer crosses between processes as JSON text, so sat gets values
built by the JSON decoder in its own clean process: no object sol made, and nothing sol's code touched.
"""

from __future__ import annotations

import ast
import json
from typing import Any, TypeAlias

Spec: TypeAlias = "type | tuple[Spec]"  # a scalar type, or a 1-tuple (element spec,) meaning "list of"

_SCALARS = {"int": int, "float": float, "str": str, "bool": bool}
_LISTS = {"List", "list"}
MAX_DEPTH = 8  # List[List[...]] nesting; P3 uses at most 3
_TYPE_NAME = vars(type)["__name__"]


class AnswerTypeError(Exception):
    """The value sol returned does not have the annotated type; the message says where it differs."""


def parse_spec(annotation: ast.expr | None, depth: int = 0) -> Spec:
    """Spec for an annotation node such as `List[List[int]]`; ValueError for anything else."""
    if depth > MAX_DEPTH:
        raise ValueError(f"answer type nests lists more than {MAX_DEPTH} deep")
    if isinstance(annotation, ast.Name) and annotation.id in _SCALARS:
        return _SCALARS[annotation.id]
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str) and len(annotation.value) < 200:
        try:
            inner = ast.parse(annotation.value, mode="eval").body
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            raise ValueError(f"unparsable answer type {annotation.value[:60]!r}") from None
        return parse_spec(inner, depth + 1)
    if isinstance(annotation, ast.Subscript):
        base = annotation.value
        base_name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
        if base_name in _LISTS:
            return (parse_spec(annotation.slice, depth + 1),)
    raise ValueError(
        f"unsupported answer type {_shown(annotation)} (expected int, float, str, bool or List[...] of them)"
    )


def _shown(annotation: ast.expr | None) -> str:
    if annotation is None:
        return "(no annotation)"
    try:
        return repr(ast.unparse(annotation)[:60])
    except (RecursionError, MemoryError, ValueError):
        return "(an expression too deep to show)"


def class_name(value: object) -> str:
    """The real name of value's class, read past any metaclass the program may have made."""
    return _TYPE_NAME.__get__(type(value))


def spec_name(spec: Spec) -> str:
    """The spec written back as an annotation, for reasons."""
    return spec.__name__ if isinstance(spec, type) else f"List[{spec_name(spec[0])}]"


def checked_copy(value: Any, spec: Spec) -> Any:
    """A copy of `value` that sat may consume; AnswerTypeError when its type is not exactly `spec`."""
    if isinstance(spec, type):
        if type(value) is not spec:
            raise AnswerTypeError(f"expected {spec.__name__}, got {type(value).__name__}")
        return value  # int, float, str and bool are immutable
    if type(value) is not list:
        raise AnswerTypeError(f"expected {spec_name(spec)}, got {type(value).__name__}")
    inner = spec[0]
    if isinstance(inner, type):
        for i, item in enumerate(value):
            if type(item) is not inner:
                raise AnswerTypeError(f"item {i}: expected {inner.__name__}, got {type(item).__name__}")
        return value.copy()
    return [checked_copy(item, inner) for item in value]


def encode_answer(value: Any, spec: Spec) -> str:
    """sol's value as JSON text, after the exact type check (AnswerTypeError when it fails)."""
    checked_copy(value, spec)
    return json.dumps(value, ensure_ascii=True, allow_nan=True)


def encode_value(value: Any, depth: int = 0) -> str:
    """A program's return value as JSON text, if it is built only of exact int, str, bool, finite float and lists
    of them (at most MAX_DEPTH deep): values a Python literal can write back; AnswerTypeError otherwise."""
    _check_plain(value, depth)
    return json.dumps(value, ensure_ascii=True)


def _check_plain(value: Any, depth: int) -> None:
    kind = type(value)
    if kind is float and value - value != 0.0:  # inf and nan: no literal, and nan is not equal to itself
        raise AnswerTypeError("the value holds a float that is not finite")
    if kind in (int, str, bool, float):
        return
    if kind is not list:
        raise AnswerTypeError(f"the value holds a {class_name(value)}, not int, float, str, bool or list")
    if depth >= MAX_DEPTH:
        raise AnswerTypeError(f"the value nests lists more than {MAX_DEPTH} deep")
    for item in value:
        _check_plain(item, depth + 1)


def decode_answer(text: str, spec: Spec) -> Any:
    """The value for sat, decoded in sat's own process and checked again; AnswerTypeError for anything else."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise AnswerTypeError(f"answer data is not valid JSON ({type(exc).__name__})") from None
    return checked_copy(value, spec)
