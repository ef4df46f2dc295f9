"""The proposal filters, each step on its own, with the real sandbox judge and the real held-out index."""

import pytest
from sandbox import Judge

from puzzleloop.filters import Proposal, answer_is_used, filter_proposals, kept, trivial_candidates, undefined_names
from puzzleloop.puzzles import NearDuplicateIndex, canonical_hash

GOOD = "def sat(n: int, k=7):\n    return n % k == 3 and n > 1000"


@pytest.fixture(scope="module")
def judge():
    with Judge(workers=2) as j:
        yield j


def test_undefined_names_sees_through_scopes():
    assert undefined_names(GOOD) == set()
    assert undefined_names("def sat(s: str):\n    return s[i:j] == target") == {"i", "j", "target"}
    nested = (
        "def sat(x: List[int]):\n    import math\n    def h(y):\n        return math.gcd(y, x[0])\n"
        "    return all(h(v) for v in x)"
    )
    assert undefined_names(nested) == set()


def test_answer_used_and_trivial_candidates():
    assert answer_is_used(GOOD, "n") and not answer_is_used("def sat(n: int):\n    return 3 > 2", "n")
    assert -10 in trivial_candidates("int") and 100 in trivial_candidates("int")
    assert [] in trivial_candidates("List[List[str]]") and [[""]] in trivial_candidates("List[List[str]]")


def test_each_step_removes_what_it_should(judge):
    heldout_sat = "def sat(s: str):\n    return s.count('o') == 1000 and s.count('oo') == 0"
    index = NearDuplicateIndex([("Held:0", heldout_sat)])
    proposals = [
        GOOD,
        GOOD.replace("n %", "n  %"),  # same canonical form: duplicate
        "def sat(n: int, k=7):\n    return n % k == 3 and n > 1000 and n < 99999",  # known already below
        "def sat(n: int):\n    return n > 5",  # trivial: 6 satisfies it
        "def sat(n: int:\n    return n",  # parse
        "def sat(n: int, n=3):\n    return n",  # parse: only the compiler refuses a duplicate argument
        "def sat(n, k=7):\n    return n == k",  # signature: no answer type
        "def sat(n: int):\n    return 3 > 2",  # answer not used
        "def sat(s: str):\n    return s == target",  # undefined name
        heldout_sat.replace("s:", "t:").replace("s.", "t."),  # contaminated: a renamed held-out puzzle
        "def sat(x: int):\n" + "    y = x\n" * 1000 + "    return y == 3",  # too long
    ]
    known = {canonical_hash(proposals[2])}
    result = filter_proposals([Proposal(p, ("seed",)) for p in proposals], judge=judge, known_hashes=known,
                              heldout_index=index, contamination_threshold=0.8)  # fmt: skip
    assert [p.source for p, _, _ in result.kept] == [GOOD]
    assert dict(result.removed) == {"duplicate": 2, "trivial": 1, "parse": 2, "signature": 1, "answer_used": 1,
                                    "undefined_names": 1, "contaminated": 1, "too_long": 1}  # fmt: skip
    funnel = result.counts(len(proposals))
    assert funnel["proposed"] == 11 and kept(funnel) == 1
    assert list(funnel.values()) == sorted(funnel.values(), reverse=True)
