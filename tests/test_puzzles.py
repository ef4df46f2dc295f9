"""Tests of the puzzle model: parsing (honest, malformed and hostile sources), headers, renaming,
canonical form and hashing, similarity; plus a check of every sat in the pinned P3 data."""

import json
import sys
import time
from pathlib import Path

import pytest

from puzzleloop.puzzles import (
    ANSWER_TYPES,
    MAX_SOURCE_CHARS,
    NearDuplicateIndex,
    Param,
    PuzzleError,
    canonical_form,
    canonical_hash,
    parse_function,
    parse_puzzle,
    rename_function,
    similarity,
    solution_header,
)

P3_PUZZLES = Path(__file__).resolve().parents[1].parent / "shared" / "p3" / "puzzles.json"

SMALL = "def sat(s: str):\n    return s.count('o') == 1000 and s.count('oo') == 0"
WITH_PARAMS = '''def sat(li: List[int], n=7, word='a b', weights=[1.5, -2], neg=-3, d={'k': (1, 2)}):
    """Find a list."""
    # a comment
    return len(li) == n and word in str(li)
'''


def test_parse_reads_name_answer_type_and_params():
    p = parse_puzzle(WITH_PARAMS, "demo:0")
    assert (p.name, p.func_name, p.answer_name, p.answer_type) == ("demo:0", "sat", "li", "List[int]")
    assert p.params == (
        Param("n", None, "7"),
        Param("word", None, "'a b'"),
        Param("weights", None, "[1.5, -2]"),
        Param("neg", None, "-3"),
        Param("d", None, "{'k': (1, 2)}"),
    )
    assert p.source == WITH_PARAMS


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        ("int", "int"),
        ("bool", "bool"),
        ("list[str]", "List[str]"),
        ("typing.List[float]", "List[float]"),
        ("List[list[List[int]]]", "List[List[List[int]]]"),
    ],
)
def test_answer_types_are_normalised(annotation, expected):
    assert parse_puzzle(f"def f(x: {annotation}):\n    return True").answer_type == expected


def test_header_repeats_defaults_and_rename_keeps_body():
    p = parse_puzzle(WITH_PARAMS)
    assert solution_header(p) == ("def sol(n=7, word='a b', weights=[1.5, -2], neg=-3, d={'k': (1, 2)}):")
    assert solution_header(parse_puzzle(SMALL), "g") == "def g():"
    renamed = rename_function("def sat(x: int):\n    return sat is not None and x == 1", "f")
    assert renamed == "def f(x: int):\n    return sat is not None and x == 1"
    assert rename_function(rename_function(SMALL, "f"), "sat") == SMALL
    assert rename_function("def é(x: int):\n    return x", "f") == "def f(x: int):\n    return x"
    assert rename_function("# é\r\ndef  sol( ):\x0c\n    return 'é'", "g") == "# é\r\ndef  g( ):\x0c\n    return 'é'"


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("def sat(x: int)\n    return x", "syntax error at line 1"),
        ("", "no function definition"),
        ("x = 1", "no function definition (found a top-level Assign"),
        ("sat = lambda x: x == 1", "no function definition"),
        ("def a(x: int):\n    return 1\ndef b(x: int):\n    return 2", "2 top-level functions (a, b)"),
        ("import os\ndef sat(x: int):\n    return x", "top-level Import statement at line 1"),
        ("def sat(x: int):\n    return x\nprint(1)", "top-level Expr statement at line 3"),
        ("def sat(x):\n    return x", "answer parameter 'x' has no type annotation"),
        ("def sat():\n    return True", "has no answer parameter"),
        ("def sat(x: dict):\n    return x", "answer type 'dict' is not one of"),
        ("def sat(x: int, n):\n    return x", "parameter 'n' has no default"),
        ("def sat(x: int=3):\n    return x", "answer parameter 'x' must not have a default"),
        ("def sat(x: int, n=len('ab')):\n    return x", "default of parameter 'n' is not a literal (Call"),
        ("def sat(x: int, n=(lambda: 1)()):\n    return x", "default of parameter 'n' is not a literal"),
        ("def sat(x: int, n=lambda: 1):\n    return x", "default of parameter 'n' is not a literal (Lambda"),
        ("def sat(x: int, n=1+2):\n    return x", "is not a literal (BinOp"),
        ("def sat(x: int, n=[1, y]):\n    return x", "is not a literal (List"),
        ("def sat(x: int, n: print('hi')=1):\n    return x", "annotation of parameter 'n' must be a plain type"),
        ("def sat(x: int) -> exec('1'):\n    return x", "return annotation must be a plain type"),
        ("@print\ndef sat(x: int):\n    return x", "has decorators"),
        ("async def sat(x: int):\n    return x", "'async def sat' is not allowed"),
        ("def sat(x: int, *rest):\n    return x", "only plain parameters"),
        ("def sat(x: int, *, k=1):\n    return x", "only plain parameters"),
        ("def sat(x: int, /):\n    return x", "only plain parameters"),
        ("def sat(x: int):\n    return x\x00", "syntax error: source code string cannot contain null bytes"),
    ],
)
def test_malformed_sources_name_puzzle_and_problem(source, problem):
    with pytest.raises(PuzzleError) as info:
        parse_puzzle(source, "bad/3")
    assert str(info.value).startswith("bad/3: ")
    assert problem in str(info.value)


@pytest.mark.parametrize("value", [None, 42, b"def sat(x: int): return x", ["def sat(x: int): pass"]])
def test_non_string_input_is_refused(value):
    with pytest.raises(PuzzleError, match="bad: source must be a str, got"):
        parse_puzzle(value, "bad")
    with pytest.raises(PuzzleError, match="source must be a str"):
        canonical_hash(value)


@pytest.mark.parametrize(
    "source",
    [
        "def sat(x: int):\n    return " + "(" * 5000 + "x" + ")" * 5000,
        "def sat(x: int):\n    return " + "-" * 20000 + "x",
        "def sat(x: int):\n    return " + "[" * 150 + "]" * 150,
        "def sat(x: int):\n    return " + " + ".join(["x"] * 3000),
        "def sat(x: int):\n    return x == " + "9" * (MAX_SOURCE_CHARS + 1),
    ],
)
def test_huge_and_deep_sources_fail_fast_and_cleanly(source):
    start = time.perf_counter()
    with pytest.raises(PuzzleError, match="<puzzle>: "):
        parse_puzzle(source)
    assert time.perf_counter() - start < 2


def test_big_integer_literals_are_accepted_without_leaking_the_digit_limit():
    big = "7" * 9000
    p = parse_puzzle(f"def sat(x: int, n={big}):\n    return x > n")
    assert p.params[0].default_source == big
    assert big in canonical_form(p.source)
    assert sys.get_int_max_str_digits() in (0, 4300)


def test_wrong_new_name_is_refused():
    for bad in ("", "1f", "def", "a b", None):
        with pytest.raises(PuzzleError, match="not a valid function name"):
            rename_function(SMALL, bad)


def test_parse_function_accepts_solutions():
    func = parse_function("def sol(n=3):\n    return [1] * n", "sol/1")
    assert func.name == "sol"
    assert [a.arg for a in func.args.args] == ["n"]


def test_canonical_form_and_pinned_hash():
    assert canonical_form(SMALL) == "def f(v0: str):\n    return v0.count('o') == 1000 and v0.count('oo') == 0"
    assert canonical_hash(SMALL) == "8a8bbbd60ca607b3663cc8e9dc3ddffa48c15beebea585c1fe929acd5900f876"


def test_canonical_form_keeps_builtins_modules_attributes_and_drops_docstrings():
    source = '''def sat(nums: list[int], target=5):
    """Docstring."""
    import math
    def helper(y):
        "nested doc"
        return math.sqrt(y)
    total = sum(helper(n) for n in nums)  # comment
    return total.real > target
'''
    assert canonical_form(source) == (
        "def f(v0: List[int], v1=5):\n"
        "    import math\n\n"
        "    def v2(v3):\n"
        "        return math.sqrt(v3)\n"
        "    v4 = sum((v2(v5) for v5 in v0))\n"
        "    return v4.real > v1"
    )


def test_renaming_reformatting_and_docstrings_give_equal_hashes():
    variant = '''def f7( text :str ):
    """Find a string with 1000 'o's."""
    # count them
    return (text.count( 'o' )==1000
            and text.count("oo") == 0)
'''
    assert canonical_hash(variant) == canonical_hash(SMALL)
    assert similarity(variant, SMALL) == 1.0
    changed = SMALL.replace("1000", "1001")
    assert canonical_hash(changed) != canonical_hash(SMALL)
    assert 0.8 < similarity(changed, SMALL) < 1.0
    other = "def sat(li: List[int]):\n    return sorted(li) == list(range(999))"
    assert similarity(other, SMALL) < 0.3


def test_near_duplicate_index_finds_the_closest_reference():
    refs = [
        ("sq", "def sat(x: int):\n    return x * x == 49"),
        ("str", SMALL),
        ("list", "def sat(li: List[int], n=10):\n    return len(li) == n and all(a < b for a, b in zip(li, li[1:]))"),
    ]
    index = NearDuplicateIndex(refs)
    assert len(index) == 3
    assert index.nearest("def g(y: int):\n    '''doc'''\n    return y*y==49") == ("sq", 1.0)
    query = "def f(l: List[int], m=12):\n    return len(l) == m and all(p < q for p, q in zip(l, l[1:]))"
    name, score = index.nearest(query)
    assert name == "list" and 0.8 < score < 1.0
    assert score == pytest.approx(similarity(refs[2][1], query))
    with pytest.raises(PuzzleError, match="query: syntax error"):
        index.nearest("def f(:", "query")
    with pytest.raises(PuzzleError, match="ref9: no function definition"):
        NearDuplicateIndex([("ref9", "x = 1")])


@pytest.mark.skipif(not P3_PUZZLES.exists(), reason="pinned P3 copy not beside the checkout")
def test_every_p3_sat_parses_with_its_declared_type_and_header():
    puzzles = json.loads(P3_PUZZLES.read_text())
    assert len(puzzles) == 1715
    types = set()
    for entry in puzzles:
        p = parse_puzzle(entry["sat"], entry["name"])
        assert p.answer_type == entry["ans_type"], entry["name"]
        assert {param.name for param in p.params} == {
            a.arg for a in parse_function(entry["sol_header"] + "\n    pass").args.args
        }, entry["name"]
        types.add(p.answer_type)
    assert types == ANSWER_TYPES
