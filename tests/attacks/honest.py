"""Honest idioms that must verify: what P3 code and model samples really write, including the borderline ones
the sandbox decided to allow (match statements, SyntaxError in an eval fallback, operator-overloading classes,
index fields in format strings, positional-only answers, super().__init__).

The borderline idioms it refuses, in BORDERLINE_REFUSED, are documented in docs/SANDBOX.md.
"""

from textwrap import dedent


def _src(text: str) -> str:
    return dedent(text).strip("\n") + "\n"


# (name, sat source, sol source): each must be `verified`
HONEST: list[tuple[str, str, str]] = [
    (
        "match_sequence",
        _src("""
            def sat(x: List[int]):
                match x:
                    case [a, b, *rest]:
                        return a + b == 3 and len(rest) == 1
                    case _:
                        return False
        """),
        _src("""
            def sol():
                return [1, 2, 9]
        """),
    ),
    (
        "match_class_and_guard",
        _src("""
            def sat(x: int):
                match x:
                    case int(n) if n > 5:
                        return n % 7 == 0
                return False
        """),
        _src("""
            def sol():
                return 14
        """),
    ),
    (
        "match_mapping",
        _src("""
            def sat(s: str):
                match {'k': s}:
                    case {'k': 'yes', **rest}:
                        return not rest
                return False
        """),
        _src("""
            def sol():
                return 'yes'
        """),
    ),
    (
        "eval_syntax_fallback",
        _src("""
            def sat(s: str):
                try:
                    return eval(s) == 4
                except SyntaxError:
                    return False
        """),
        _src("""
            def sol():
                try:
                    eval('2 +')
                except SyntaxError:
                    pass
                return '2 + 2'
        """),
    ),
    (
        "positional_only_answer",
        _src("""
            def sat(x: List[int], /, n: int = 3):
                return len(x) == n
        """),
        _src("""
            def sol():
                return [0, 0, 0]
        """),
    ),
    (
        "format_index_field",
        _src("""
            def sat(s: str):
                return s == '7-b'
        """),
        _src("""
            def sol():
                return '{0[0]}-{1[x]}'.format([7], {'x': 'b'})
        """),
    ),
    (
        "unbound_str_format",
        _src("""
            def sat(s: str):
                return s == '1 2'
        """),
        _src("""
            def sol():
                return str.format('{} {}', 1, 2)
        """),
    ),
    (
        "format_spec_nested",
        _src("""
            def sat(s: str):
                return s == '   ab'
        """),
        _src("""
            def sol():
                return '{:>{w}}'.format('ab', w=5)
        """),
    ),
    (
        "operator_overloading",
        _src("""
            def sat(x: List[int]):
                return x == [4, 6]
        """),
        _src("""
            class V:
                def __init__(self, a, b):
                    self.a, self.b = a, b
                def __add__(self, o):
                    return V(self.a + o.a, self.b + o.b)
                def __mul__(self, k):
                    return V(self.a * k, self.b * k)
                def __getitem__(self, i):
                    return (self.a, self.b)[i]
            def sol():
                v = (V(1, 2) + V(1, 1)) * 2
                return [v[0], v[1]]
        """),
    ),
    (
        "dunder_ordering_heap",
        _src("""
            def sat(x: List[int]):
                return x == [1, 2, 3]
        """),
        _src("""
            import heapq
            class Job:
                def __init__(self, p):
                    self.p = p
                def __lt__(self, o):
                    return self.p < o.p
            def sol():
                h = []
                for p in (3, 1, 2):
                    heapq.heappush(h, Job(p))
                return [heapq.heappop(h).p for _ in range(3)]
        """),
    ),
    (
        "super_init",
        _src("""
            def sat(x: int):
                return x == 5
        """),
        _src("""
            class A:
                def __init__(self):
                    self.v = 2
            class B(A):
                def __init__(self):
                    super().__init__()
                    self.v += 3
            def sol():
                return B().v
        """),
    ),
    (
        "namedtuple",
        _src("""
            def sat(x: int):
                return x == 3
        """),
        _src("""
            from collections import namedtuple
            P = namedtuple('P', 'x y')
            def sol():
                p = P(1, 2)
                return p.x + p.y
        """),
    ),
    (
        "counter_and_defaultdict",
        _src("""
            def sat(s: str):
                return len(s) == 4 and s.count('a') == 2
        """),
        _src("""
            from collections import Counter, defaultdict
            def sol():
                c = Counter('ab')
                d = defaultdict(int)
                d['a'] += 1
                c['a'] += d['a']
                return ''.join(sorted(c.elements())) + 'b'
        """),
    ),
    (
        "lru_cache_recursion",
        _src("""
            def sat(n: int):
                return n == 832040
        """),
        _src("""
            from functools import lru_cache
            @lru_cache(maxsize=None)
            def fib(k):
                return k if k < 2 else fib(k - 1) + fib(k - 2)
            def sol():
                return fib(30)
        """),
    ),
    (
        "nonlocal_and_underscore_names",
        _src("""
            def sat(x: int):
                return x == 3
        """),
        _src("""
            def sol():
                _n = 0
                def inc():
                    nonlocal _n
                    _n += 1
                for _ in range(3):
                    inc()
                return _n
        """),
    ),
    (
        "itertools_permutations",
        _src("""
            def sat(x: List[int]):
                return sorted(x) == [1, 2, 3] and x[0] == 3
        """),
        _src("""
            from itertools import permutations
            def sol():
                return list(max(permutations([1, 2, 3])))
        """),
    ),
    (
        "reduce_and_lambda",
        _src("""
            def sat(x: int):
                return x == 120
        """),
        _src("""
            from functools import reduce
            def sol():
                return reduce(lambda a, b: a * b, range(1, 6))
        """),
    ),
    (
        "fraction_math",
        _src("""
            def sat(x: List[int]):
                return x == [7, 6]
        """),
        _src("""
            from fractions import Fraction
            def sol():
                f = Fraction(1, 2) + Fraction(2, 3)
                return [f.numerator, f.denominator]
        """),
    ),
    (
        "bisect_sorted",
        _src("""
            def sat(x: int):
                return x == 2
        """),
        _src("""
            import bisect
            def sol():
                return bisect.bisect_left([1, 3, 5], 4)
        """),
    ),
    (
        "generator_and_comprehension",
        _src("""
            def sat(x: List[int]):
                return x == [0, 4, 16]
        """),
        _src("""
            def sol():
                def squares(n):
                    for i in range(n):
                        yield i * i
                return [v for v in squares(5) if v % 2 == 0]
        """),
    ),
    (
        "sort_with_key",
        _src("""
            def sat(x: List[str]):
                return x == ['a', 'bb', 'ccc']
        """),
        _src("""
            def sol():
                return sorted(['ccc', 'a', 'bb'], key=len)
        """),
    ),
    (
        "try_finally_while_else",
        _src("""
            def sat(x: int):
                return x == 10
        """),
        _src("""
            def sol():
                t = 0
                i = 0
                while i < 4:
                    try:
                        t += i
                    finally:
                        i += 1
                else:
                    t += 4
                return t
        """),
    ),
    (
        "big_int_and_pow_mod",
        _src("""
            def sat(x: int):
                return x > 10 ** 500 and x % 7 == pow(10, 600, 7)
        """),
        _src("""
            def sol():
                return 10 ** 600
        """),
    ),
    (
        "float_answer",
        _src("""
            def sat(x: float):
                return abs(x * x - 2) < 1e-9
        """),
        _src("""
            import math
            def sol():
                return math.sqrt(2)
        """),
    ),
    (
        "nan_answer",
        _src("""
            def sat(x: float):
                return x != x
        """),
        _src("""
            def sol():
                return float('nan')
        """),
    ),
    (
        "bool_answer",
        _src("""
            def sat(b: bool):
                return b is True
        """),
        _src("""
            def sol():
                return 1 < 2
        """),
    ),
    (
        "unicode_string",
        _src("""
            def sat(s: str):
                return len(s) == 3 and s[1] == 'é'
        """),
        _src("""
            def sol():
                return 'aéb'
        """),
    ),
    (
        "nested_lists",
        _src("""
            def sat(m: List[List[int]]):
                return len(m) == 2 and all(sum(r) == 3 for r in m)
        """),
        _src("""
            def sol():
                return [[1, 2], [3, 0]]
        """),
    ),
    (
        "f_strings_and_percent",
        _src("""
            def sat(s: str):
                return s == '3:04 x'
        """),
        _src("""
            def sol():
                m = 4
                return f'{3}:{m:02d} ' + '%s' % 'x'
        """),
    ),
    (
        "regex",
        _src("""
            def sat(x: List[str]):
                return x == ['12', '7']
        """),
        _src("""
            import re
            def sol():
                return re.findall('[0-9]+', 'a12b7')
        """),
    ),
    (
        "string_module",
        _src("""
            def sat(s: str):
                return s == 'abc'
        """),
        _src("""
            import string
            def sol():
                return string.ascii_lowercase[:3]
        """),
    ),
    (
        "random_with_seed",
        _src("""
            def sat(x: int):
                return 0 <= x < 10
        """),
        _src("""
            import random
            def sol():
                r = random.Random(4)
                return r.randrange(10)
        """),
    ),
    (
        "statistics_median",
        _src("""
            def sat(x: float):
                return x == 2.5
        """),
        _src("""
            import statistics
            def sol():
                return statistics.median([1, 2, 3, 4])
        """),
    ),
    (
        "class_with_property_and_staticmethod",
        _src("""
            def sat(x: int):
                return x == 9
        """),
        _src("""
            class Sq:
                def __init__(self, s):
                    self.s = s
                @property
                def area(self):
                    return self.s ** 2
                @staticmethod
                def make(s):
                    return Sq(s)
            def sol():
                return Sq.make(3).area
        """),
    ),
    (
        "walrus_and_unpacking",
        _src("""
            def sat(x: List[int]):
                return x == [2, 3]
        """),
        _src("""
            def sol():
                first, *rest = [1, 2, 3]
                if (n := len(rest)) == 2:
                    return rest
                return []
        """),
    ),
    (
        "context_manager_class",
        _src("""
            def sat(x: int):
                return x == 2
        """),
        _src("""
            class Ctx:
                def __init__(self):
                    self.n = 0
                def __enter__(self):
                    self.n += 1
                    return self
                def __exit__(self, *exc):
                    self.n += 1
                    return False
            def sol():
                c = Ctx()
                with c:
                    pass
                return c.n
        """),
    ),
    (
        "type_check_in_sat",
        _src("""
            def sat(x: List[int]):
                return all(type(i) is int for i in x) and len(x) == 2
        """),
        _src("""
            def sol():
                return [1, 2]
        """),
    ),
    (
        "eval_in_sat_uses_its_names",
        _src("""
            def sat(e: str, a: int = 3):
                return eval(e) == 9
        """),
        _src("""
            def sol():
                return 'a * a'
        """),
    ),
]


# Borderline idioms the sandbox refuses, with why in docs/SANDBOX.md.
BORDERLINE_REFUSED: list[tuple[str, str, str]] = [
    (
        "private_attribute",
        _src("""
            def sat(x: int):
                return x == 1
        """),
        _src("""
            class C:
                def __init__(self):
                    self._v = 1
            def sol():
                return C()._v
        """),
    ),
    (
        "init_subclass_via_super",
        _src("""
            def sat(x: int):
                return x == 1
        """),
        _src("""
            class A:
                pass
            def sol():
                super(A, A).__init_subclass__()
                return 1
        """),
    ),
]
