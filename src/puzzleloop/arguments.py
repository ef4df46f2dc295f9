"""argparse from the settings dataclasses: value types that refuse a bad setting while the command line is
parsed, before anything loads, and options, help and commented YAML generated from the fields."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

import yaml

from puzzleloop.config import help_text


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """A number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def positive_ints(text: str) -> tuple[int, ...]:
    """Comma-separated integers >= 1, e.g. pass@k values `1,10,100`."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _value_type(annotation: Any) -> Any:
    """The annotation without `| None`."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def inline(value: Any) -> str:
    """A setting's value as one line of YAML (flow style: `[1, 8]`, `{}`, `null`)."""
    plain = list(value) if isinstance(value, tuple) else value
    return yaml.safe_dump([plain], default_flow_style=True, width=10**6).strip()[1:-1]


def add_settings_arguments(parser: argparse.ArgumentParser, defaults: Any) -> None:
    """One `--option` per field of the settings dataclass instance `defaults` (a nested section's fields by
    their own names: `--temperature`), typed by its annotation, with its help and default, so the command line
    and the dataclass cannot drift apart."""
    hints = typing.get_type_hints(type(defaults))
    for field_ in dataclasses.fields(defaults):
        kind, default = _value_type(hints[field_.name]), getattr(defaults, field_.name)
        if dataclasses.is_dataclass(kind):
            add_settings_arguments(parser, default)
            continue
        option = "--" + field_.name.replace("_", "-")
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else inline(default)
        described = f"{help_text(field_)} (default: {shown})"
        if kind is bool:
            parser.add_argument(option, action=argparse.BooleanOptionalAction, default=default, help=described)
        else:
            value_type = positive_ints if typing.get_origin(kind) is tuple else kind
            parser.add_argument(option, type=value_type, default=default, help=described)


def settings_from_arguments(cls: type, args: argparse.Namespace) -> Any:
    """The settings dataclass built from the options `add_settings_arguments` added."""
    hints = typing.get_type_hints(cls)
    values = {}
    for field_ in dataclasses.fields(cls):
        kind = _value_type(hints[field_.name])
        values[field_.name] = (
            settings_from_arguments(kind, args) if dataclasses.is_dataclass(kind) else getattr(args, field_.name)
        )
    return cls(**values)


def describe_settings(settings: Any, prefix: str = "") -> list[str]:
    """`section.key = default  help` for every setting, sections expanded (the `--set` keys)."""
    lines = []
    for field_ in dataclasses.fields(settings):
        value = getattr(settings, field_.name)
        if dataclasses.is_dataclass(value):
            lines += describe_settings(value, f"{prefix}{field_.name}.")
        else:
            lines.append(f"  {prefix}{field_.name} = {inline(value)}\n      {help_text(field_)}")
    return lines


def commented_yaml(settings: Any, indent: int = 0) -> str:
    """The settings as YAML that loads back to them, each key with its help as a comment."""
    pad = " " * indent
    lines = []
    for field_ in dataclasses.fields(settings):
        value = getattr(settings, field_.name)
        if dataclasses.is_dataclass(value):
            lines += [f"{pad}{field_.name}:  # {help_text(field_)}", commented_yaml(value, indent + 2)]
        else:
            lines.append(f"{pad}{field_.name}: {inline(value)}  # {help_text(field_)}")
    return "\n".join(lines)
