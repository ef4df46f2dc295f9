"""Which proposed puzzles enter the corpus: each filter step is counted, so a round reports what it removed.

Order: not too long, parses, signature (one typed answer parameter of a P3 type, literal defaults), answer used,
no undefined names (a name that is never bound raises NameError for every answer),
not trivially satisfiable (simple candidates judged in the sandbox), not a duplicate of the corpus, not
contaminated (near any held-out instance). Model-written code is only ever run by the sandbox judge.

A puzzle built from a program (puzzleloop.construct) first passes the construction steps (the completion is a
program and a call, the program runs on the input, twice alike, and its output is short); then the same steps,
with its target among the trivial candidates (the target itself must not be an answer), its answer not written
in the puzzle, and last its solution judged: it must verify.
"""

from __future__ import annotations

import ast
import builtins
import symtable
import typing
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sandbox import Judge

from puzzleloop.puzzles import ANSWER_TYPES, NearDuplicateIndex, PuzzleError, canonical_hash, parse_puzzle

FILTER_STEPS = (
    "too_long",
    "parse",
    "call",  # construction: the completion is not a program followed by `assert f(<literal>) == ...`
    "program_failed",  # construction: the program did not return a literal-shaped value on its input
    "nondeterministic",  # construction: two judges computed different values
    "target_size",  # construction: the output is longer than max_target_chars as a literal
    "signature",
    "answer_used",
    "undefined_names",
    "trivial",
    "answer_in_puzzle",
    "duplicate",
    "contaminated",
    "unverified",  # a constructed or relabeled puzzle whose solution did not verify
)

_SCALAR_CANDIDATES: dict[str, list[object]] = {
    "int": list(range(-10, 101)),
    "float": [0.0, 1.0, -1.0, 0.5, 2.0],
    "str": ["", "a", "b", "ab", "abc", "0", "1", " ", "hello"],
    "bool": [True, False],
}


def trivial_candidates(answer_type: str) -> list[object]:
    """The paper's simple answers: small ints, short strings, short lists of those (nested lists likewise)."""
    if answer_type in _SCALAR_CANDIDATES:
        return _SCALAR_CANDIDATES[answer_type]
    if answer_type.startswith("List[") and answer_type.endswith("]"):
        items = trivial_candidates(answer_type[5:-1])[:6]
        return [[], *([x] for x in items), items[:2], items[:3]]
    return []


def answer_is_used(source: str, answer_name: str) -> bool:
    """Whether the body reads the answer parameter at all (a puzzle that ignores it cannot be solved meaningfully)."""
    function = ast.parse(source).body[0]
    body = ast.Module(body=function.body, type_ignores=[])
    return any(isinstance(node, ast.Name) and node.id == answer_name for node in ast.walk(body))


def undefined_names(source: str) -> set[str]:
    """Names the code reads but never binds (nor imports) and that are not builtins or `List`-style typing names.

    The source must compile (`_structural_problem` checks that first): symtable raises SyntaxError otherwise.
    """
    known = set(dir(builtins)) | set(typing.__all__)  # the judge provides List, Dict, ... without an import
    missing: set[str] = set()
    tables = [symtable.symtable(source, "<puzzle>", "exec")]
    while tables:
        table = tables.pop()
        tables.extend(table.get_children())
        for symbol in table.get_symbols():
            name = symbol.get_name()
            if symbol.is_referenced() and symbol.is_global() and name not in known:
                missing.add(name)
    return missing


@dataclass(frozen=True)
class Proposal:
    source: str  # `def sat(...)`
    seeds: tuple[str, ...]
    solution: str | None = None  # `def g(...)` its proposer wrote with it, or a constructed puzzle's input
    answer: str | None = None  # constructed and relabeled: the solution's value, a literal, and the puzzle's target
    target: str | None = None


@dataclass
class FilterResult:
    kept: list[tuple[Proposal, str, str]] = field(default_factory=list)  # (proposal, answer type, canonical hash)
    removed: Counter = field(default_factory=Counter)  # step -> count
    nearest_heldout: list[tuple[str, float]] = field(default_factory=list)  # per structurally valid proposal

    def counts(self, proposed: int) -> dict[str, int]:
        """Proposals left after each step, in order, for the funnel."""
        left, funnel = proposed, {"proposed": proposed}
        for step in FILTER_STEPS:
            left -= self.removed[step]
            funnel[f"after_{step}"] = left
        return funnel


def kept(funnel: dict[str, int], missing: typing.Any = None) -> typing.Any:
    """How many proposals a funnel (FilterResult.counts) kept: what is left after its last step (or `missing`).

    Funnels stored before a step existed lack it, so the last step present counts."""
    for step in reversed(FILTER_STEPS):
        if f"after_{step}" in funnel:
            return funnel[f"after_{step}"]
    return missing


def filter_proposals(
    proposals: Sequence[Proposal],
    *,
    judge: Judge,
    known_hashes: Iterable[str],
    heldout_index: NearDuplicateIndex,
    contamination_threshold: float,
    trivial_check: bool = True,
    max_source_chars: int = 2000,
    removed: Counter | None = None,
) -> FilterResult:
    """Run the steps in order; `removed` holds counts of steps already run (construction's)."""
    result = FilterResult(removed=Counter(removed or {}))
    structural: list[tuple[Proposal, str]] = []
    for proposal in proposals:
        step = _structural_problem(proposal.source, max_source_chars)
        if step:
            result.removed[step] += 1
        else:
            structural.append((proposal, parse_puzzle(proposal.source).answer_type))

    trivial = _trivially_solved(judge, structural) if trivial_check else set()
    seen = set(known_hashes)
    for index, (proposal, answer_type) in enumerate(structural):
        if index in trivial:
            result.removed["trivial"] += 1
            continue
        if proposal.answer is not None and answer_in_puzzle(proposal.source, ast.literal_eval(proposal.answer)):
            result.removed["answer_in_puzzle"] += 1
            continue
        digest = canonical_hash(proposal.source)
        if digest in seen:
            result.removed["duplicate"] += 1
            continue
        seen.add(digest)
        nearest = heldout_index.nearest(proposal.source)
        result.nearest_heldout.append(nearest)
        if nearest[1] >= contamination_threshold:
            result.removed["contaminated"] += 1
            continue
        result.kept.append((proposal, answer_type, digest))
    constructed = [i for i, (p, _, _) in enumerate(result.kept) if p.answer is not None]
    if constructed:
        verdicts = judge.judge([(result.kept[i][0].source, result.kept[i][0].solution or "") for i in constructed])
        failed = {i for i, verdict in zip(constructed, verdicts, strict=True) if verdict.status != "verified"}
        result.removed["unverified"] += len(failed)
        result.kept = [row for i, row in enumerate(result.kept) if i not in failed]
    return result


def answer_in_puzzle(sat: str, answer: object) -> bool:
    """Whether the puzzle writes its answer out (its repr, or a string answer of 3+ characters verbatim)."""
    return repr(answer) in sat or (isinstance(answer, str) and len(answer) >= 3 and answer in sat)


def _structural_problem(source: str, max_source_chars: int) -> str | None:
    """The first filter step a proposal fails without running it, or None."""
    if len(source) > max_source_chars:
        return "too_long"
    try:
        symtable.symtable(source, "<puzzle>", "exec")  # parses, and catches what only the compiler sees
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "parse"
    try:
        puzzle = parse_puzzle(source)
    except PuzzleError:
        return "signature"
    if puzzle.answer_type not in ANSWER_TYPES:
        return "signature"
    if not answer_is_used(source, puzzle.answer_name):
        return "answer_used"
    if undefined_names(source):
        return "undefined_names"
    return None


def _trivially_solved(judge: Judge, puzzles: Sequence[tuple[Proposal, str]]) -> set[int]:
    """Indexes of puzzles that some trivial candidate satisfies, judged in one sandbox batch."""
    owners: list[int] = []
    pairs: list[tuple[str, str]] = []
    for index, (proposal, answer_type) in enumerate(puzzles):
        candidates = [repr(c) for c in trivial_candidates(answer_type)]
        if proposal.target is not None:  # the target itself must not be an answer
            candidates.append(proposal.target)
        for candidate in candidates:
            owners.append(index)
            pairs.append((proposal.source, f"def sol():\n    return {candidate}\n"))
    verdicts = judge.judge(pairs) if pairs else []
    return {owner for owner, verdict in zip(owners, verdicts, strict=True) if verdict.status == "verified"}
