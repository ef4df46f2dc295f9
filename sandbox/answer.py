"""The answer contract: parse sat's first-parameter annotation (never evaluate it) and check a value against it.

P3 answers are int, float, str, bool and nested lists of them; the check is exact (`type(x) is int`, so bool
is not int and no subclass passes), and the value handed to sat is a fresh copy built during the check, so sat
never sees the object sol built and a lying subclass never gets near sat.
"""

from __future__ import annotations

import ast
from typing import Any, TypeAlias

Spec: TypeAlias = "type | tuple[Spec]"  # a scalar type, or a 1-tuple (element spec,) meaning "list of"

_SCALARS = {"int": int, "float": float, "str": str, "bool": bool}
_LISTS = {"List", "list"}


class AnswerTypeError(Exception):
    """The value sol returned does not have the annotated type; the message says where it differs."""


def parse_spec(annotation: ast.expr | None) -> Spec:
    """Spec for an annotation node such as `List[List[int]]`; ValueError for anything else."""
    if isinstance(annotation, ast.Name) and annotation.id in _SCALARS:
        return _SCALARS[annotation.id]
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        return parse_spec(ast.parse(annotation.value, mode="eval").body)
    if isinstance(annotation, ast.Subscript):
        base = annotation.value
        base_name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
        if base_name in _LISTS:
            return (parse_spec(annotation.slice),)
    shown = ast.unparse(annotation) if annotation is not None else "no annotation"
    raise ValueError(f"unsupported answer type {shown!r} (expected int, float, str, bool or List[...] of them)")


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
