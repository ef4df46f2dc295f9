"""The second red-team corpus: programs that fooled or crashed a judge whose workers were reused.

ATTACKS are single pairs on unsatisfiable puzzles (so `verified` means the judge was fooled) or on the judge's
own paths (so `crashed` means it choked). SEQUENCES are runs of pairs where the first ones try to leave state
behind (ABC registries, patched classes, finalizers, memory) and the last one would profit: its verdict must be
the one it gets from a fresh judge.
"""

from tests.attacks.programs import UNSAT_INT, UNSAT_LIST, UNSAT_STR, sol

# A class with any dunder, built through the metaclass `type(int)` used to hand out.
_META_REDUCE = (
    "P = type(int)('P', (), {'__reduce_ex__': lambda self, proto: "
    "(lambda: TARGET, (), (None, {'NAME': VALUE}))})\ncopy.copy(P())"
)


def _reduce_setattr(target: str, name: str, value: str) -> str:
    """A sol that uses copy's reduce protocol to setattr(target, name, value) on the program's behalf."""
    return "import copy\nfrom collections import Counter\nimport math\n" + sol(
        _META_REDUCE.replace("TARGET", target).replace("NAME", name).replace("VALUE", value) + "\nreturn 0"
    )


DEEP_ATTRS = "def sol():\n    x = 1\n    return x" + ".real" * 30000 + "\n"
DEEP_ITEMS = "def sol():\n    x = [0]\n    return x" + "[0]" * 30000 + "\n"
DEEP_CALLS = "def sol():\n    f = lambda: f\n    return f" + "()" * 30000 + "\n"

# (name, sat source, sol source)
ATTACKS: list[tuple[str, str, str]] = [
    # every path to the unguarded str.format
    ("unbound_format", UNSAT_STR, sol("return str.format('{0.__class__.__mro__}', 1)")),
    ("type_format", UNSAT_STR, sol("return type('').format('{0.__class__}', 1)")),
    (
        "partial_format",
        UNSAT_STR,
        "import functools\n" + sol("return functools.partial(str.format, '{0.__class__}')(1)"),
    ),
    ("map_format", UNSAT_STR, sol("return ''.join(map(str.format, ['{0.__class__}'], [1]))")),
    (
        "super_format",
        UNSAT_STR,
        "class S(str):\n    def f(self):\n        return super().format(1)\n" + sol("return S('{0.__class__}').f()"),
    ),
    ("subclass_format", UNSAT_STR, "class S(str):\n    pass\n" + sol("return S.format('{0.__class__}', 1)")),
    ("eval_format", UNSAT_STR, sol("return eval(\"str.format('{0.__class__}', 1)\")")),
    ("format_globals_walk", UNSAT_STR, sol("def f():\n    pass\nreturn str.format('{0.__globals__}', f)")),
    # the real metaclass
    ("metaclass_build", UNSAT_INT, sol("C = type(int)('C', (), {'__del__': lambda s: None})\nreturn 0")),
    ("metaclass_liar", UNSAT_INT, sol("L = type(int)('L', (int,), {'__eq__': lambda a, b: True})\nreturn L(0)")),
    (
        "metaclass_of_abc",
        UNSAT_INT,
        "from fractions import Fraction\n" + sol("M = type(Fraction)\nreturn M('C', (), {})"),
    ),
    ("metaclass_exception", UNSAT_INT, sol("raise type(int)('E', (Exception,), {'__str__': lambda s: 1/0})()")),
    ("reduce_setattr_counter", UNSAT_INT, _reduce_setattr("Counter", "__eq__", "lambda a, b: True")),
    ("reduce_setattr_proxy", UNSAT_INT, _reduce_setattr("math", "sqrt", "lambda x: 0")),
    # the answer contract: positional-only and keyword-only answers
    ("posonly_bool", "def sat(x: bool, /, y: int = 0):\n    return x == 2", sol("return 2")),
    ("posonly_str", "def sat(s: str, /, n: int = 3):\n    return s * n == s + 'x'", sol("return 3")),
    ("kwonly_answer", "def sat(*, x: int):\n    return True", sol("return 1")),
    # the judge's own paths on program code
    (
        "describe_str_loops",
        UNSAT_INT,
        "class E:\n    def __str__(self):\n        while True:\n            pass\n" + sol("raise ValueError(E())"),
    ),
    (
        "describe_str_raises",
        UNSAT_INT,
        "class E:\n    def __str__(self):\n        raise KeyError(1)\n" + sol("raise ValueError(E())"),
    ),
    (
        "describe_repr_huge",
        UNSAT_INT,
        "class E:\n    def __repr__(self):\n        return 'x' * 10 ** 7\n" + sol("raise KeyError(E())"),
    ),
    ("deep_attribute_chain", UNSAT_INT, DEEP_ATTRS),
    ("deep_subscript_chain", UNSAT_INT, DEEP_ITEMS),
    ("deep_call_chain", UNSAT_INT, DEEP_CALLS),
    ("deep_annotation", "def sat(x: " + "List[" * 2000 + "int" + "]" * 2000 + "):\n    return False", sol("return 1")),
    (
        "deep_string_annotation",
        "def sat(x: '" + "List[" * 60 + "int" + "]" * 60 + "'):\n    return False",
        sol("return 1"),
    ),
    ("annotation_bomb", "def sat(x: '" + "(" * 190 + "int" + ")" * 190 + "'):\n    return False", sol("return 1")),
    # the same bombs in a puzzle, which the warm parent compiles
    ("sat_deep_attribute_chain", "def sat(x: int):\n    return x" + ".real" * 19000, sol("return 1")),
    ("sat_deep_binops", "def sat(x: int):\n    return x" + "+1" * 49000, sol("return 1")),
    ("sat_nested_lambdas", "def sat(x: int):\n    return " + "lambda: " * 5000 + "x", sol("return 1")),
    ("answer_too_large", UNSAT_STR, sol("return 'x' * (40 << 20)")),
    ("match_class_dunder", UNSAT_INT, sol("match 1:\n    case int(__class__=c):\n        return c\nreturn 0")),
    ("match_capture_dunder", UNSAT_LIST, sol("match [1]:\n    case [*__builtins__]:\n        pass\nreturn [1, 2]")),
    (
        "sat_truthy_object",
        "class T:\n    def __bool__(self):\n        return True\ndef sat(x: int):\n    return T()",
        sol("return 1"),
    ),
]

_REGISTER = "from typing import Iterable\n" + sol("Iterable.register(int)\nreturn 0")
_IS_ITERABLE = "def sat(x: int):\n    from typing import Iterable\n    return isinstance(x, Iterable)"
_COUNTER_SAT = "def sat(x: int):\n    from collections import Counter\n    return Counter([x]) == Counter([x, x])"
_BLOB = "from typing import Iterable\nclass H:\n    pass\n" + sol(
    "H.blob = 'x' * (300 << 20)\nIterable.register(H)\nreturn 0"
)
_HONEST = ("def sat(x: List[int]):\n    return sorted(x) == list(range(1000))", sol("return list(range(999, -1, -1))"))

# (name, [(sat, sol), ...]): every pair but the last prepares; the last must get the verdict a fresh judge gives.
SEQUENCES: list[tuple[str, list[tuple[str, str]]]] = [
    ("abc_registry_by_sol", [(UNSAT_INT, _REGISTER), (_IS_ITERABLE, sol("return 1"))]),
    (
        "abc_registry_by_sat",
        [
            (
                "def sat(x: int):\n    from typing import Iterable\n    Iterable.register(int)\n    return False",
                sol("return 1"),
            ),
            (_IS_ITERABLE, sol("return 1")),
        ],
    ),
    (
        "counter_eq_patched",
        [(UNSAT_INT, _reduce_setattr("Counter", "__eq__", "lambda a, b: True")), (_COUNTER_SAT, sol("return 1"))],
    ),
    (
        "proxy_patched",
        [
            (UNSAT_INT, _reduce_setattr("math", "isqrt", "lambda x: 0")),
            ("def sat(x: int):\n    import math\n    return x > 1 and math.isqrt(x) == 0", sol("return 5")),
        ],
    ),
    (
        "finalizer_left_in_cycle",
        [(UNSAT_INT, sol("D = type(int)('D', (), {'__del__': lambda s: None})\nd = D()\nd.me = d\nreturn 0")), _HONEST],
    ),
    (
        "memory_left_behind",
        [(UNSAT_INT, _BLOB), ("def sat(n: int):\n    return n == 250 << 20", sol("return len('y' * (250 << 20))"))],
    ),
    (
        "answer_kept_for_later",
        [
            (UNSAT_LIST, "keep = []\n" + sol("keep.append(1)\nreturn keep")),
            ("def sat(x: List[int]):\n    return x == [1, 2] and x != [1, 2]", sol("return [1]")),
        ],
    ),
    (
        "random_state_for_later",
        [
            (UNSAT_INT, "import random\n" + sol("random.seed(7)\nreturn 0")),
            (
                "def sat(x: int):\n    import random\n    return random.randrange(10 ** 9) == x",
                "import random\n" + sol("random.seed(7)\nreturn random.randrange(10 ** 9)"),
            ),
        ],
    ),
    ("timeout_then_honest", [(UNSAT_INT, sol("while True:\n    pass")), _HONEST]),
    ("memory_then_honest", [(UNSAT_INT, sol("x = [0] * (10 ** 10)")), _HONEST]),
]
