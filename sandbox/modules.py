"""The import allowlist: which modules a program may import and which of their names it gets.

Programs never receive a real module object (a module leads to its own `sys`, `os`, loaders, ...): they get a
read-only ModuleProxy holding only the names listed here. `random` is special: every namespace gets a proxy
over its own `random.Random(0)`, so one program cannot steer the random numbers another one sees.
"""

from __future__ import annotations

import bisect
import cmath
import collections
import copy
import fractions
import functools
import heapq
import itertools
import math
import operator
import random
import re
import statistics
import string
import typing
from types import MappingProxyType
from typing import Any

# fmt: off
RANDOM_NAMES = frozenset({
    "random", "randint", "randrange", "choice", "choices", "shuffle", "sample", "uniform", "seed",
    "gauss", "getrandbits", "triangular", "betavariate", "expovariate", "normalvariate",
})
# fmt: on

# fmt: off
_CHOSEN: dict[str, tuple[Any, frozenset[str]]] = {
    "math": (math, frozenset(n for n in dir(math) if not n.startswith("_"))),
    "cmath": (cmath, frozenset(n for n in dir(cmath) if not n.startswith("_"))),
    "itertools": (itertools, frozenset(n for n in dir(itertools) if not n.startswith("_"))),
    "collections": (collections, frozenset({
        "Counter", "defaultdict", "deque", "OrderedDict", "namedtuple", "ChainMap"})),
    "heapq": (heapq, frozenset({
        "heappush", "heappop", "heapify", "heappushpop", "heapreplace", "nlargest", "nsmallest", "merge"})),
    "bisect": (bisect, frozenset({"bisect", "bisect_left", "bisect_right", "insort", "insort_left", "insort_right"})),
    "functools": (functools, frozenset({"reduce", "lru_cache", "cache", "cmp_to_key", "partial", "total_ordering"})),
    "re": (re, frozenset({
        "compile", "match", "fullmatch", "search", "findall", "finditer", "split", "sub", "subn", "escape",
        "IGNORECASE", "I", "MULTILINE", "M", "DOTALL", "S", "VERBOSE", "X", "ASCII", "A", "error"})),
    "string": (string, frozenset({
        "ascii_letters", "ascii_lowercase", "ascii_uppercase", "digits", "hexdigits", "octdigits",
        "punctuation", "printable", "whitespace", "capwords"})),
    "typing": (typing, frozenset({
        "List", "Dict", "Set", "FrozenSet", "Tuple", "Optional", "Union", "Callable", "Any", "Iterable",
        "Iterator", "Sequence", "Generator", "DefaultDict", "Deque"})),
    "copy": (copy, frozenset({"copy", "deepcopy"})),
    "fractions": (fractions, frozenset({"Fraction"})),
    "statistics": (statistics, frozenset({"mean", "median", "mode", "stdev", "pstdev", "variance", "pvariance"})),
    # no attrgetter / methodcaller: they walk attributes named by strings
    "operator": (operator, frozenset({
        "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos", "abs", "and_", "or_", "xor",
        "not_", "eq", "ne", "lt", "le", "gt", "ge", "itemgetter", "index", "invert", "lshift", "rshift"})),
}
# fmt: on

ALLOWED_IMPORTS: dict[str, frozenset[str]] = {name: names for name, (_, names) in _CHOSEN.items()}
ALLOWED_IMPORTS["random"] = RANDOM_NAMES | {"Random"}


class ModuleProxy:
    """A read-only stand-in for a module that exposes a fixed set of names and nothing else."""

    __slots__ = ("_module_name", "_names")

    def __init__(self, module_name: str, names: dict[str, Any]) -> None:
        object.__setattr__(self, "_module_name", module_name)
        object.__setattr__(self, "_names", MappingProxyType(dict(names)))

    def __getattr__(self, attr: str) -> Any:
        try:
            return self._names[attr]
        except KeyError:
            raise AttributeError(f"module {self._module_name!r} has no allowed name {attr!r}") from None

    def __setattr__(self, attr: str, value: object) -> None:
        raise AttributeError(f"module {self._module_name!r} is read-only in the sandbox")

    def __delattr__(self, attr: str) -> None:
        raise AttributeError(f"module {self._module_name!r} is read-only in the sandbox")

    def __repr__(self) -> str:
        return f"<sandboxed module {self._module_name!r}>"


STATIC_PROXIES: dict[str, ModuleProxy] = {
    name: ModuleProxy(name, {n: getattr(module, n) for n in names}) for name, (module, names) in _CHOSEN.items()
}


def random_proxy() -> ModuleProxy:
    """A fresh `random` stand-in over its own generator seeded with 0 (reproducible verdicts)."""
    rng = random.Random(0)
    names: dict[str, Any] = {n: getattr(rng, n) for n in RANDOM_NAMES}
    names["Random"] = random.Random
    return ModuleProxy("random", names)
