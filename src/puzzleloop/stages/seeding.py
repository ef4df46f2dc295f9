"""Round 0: seed puzzles with their reference solutions, each judged by the sandbox, as the corpus's first pairs.

Their verified pairs join every round's training set (select.rounds: all), so the model learns the format and the
answer types from correct examples before its own puzzles give it any. A seed as near to a P3 test instance as the
contamination threshold is left out, like a proposal would be.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sandbox import Judge, Limits

from puzzleloop.corpus import Attempt, PuzzleRecord
from puzzleloop.data import load_seed_puzzles, named_set
from puzzleloop.prompts import SeedExample
from puzzleloop.puzzles import canonical_hash, parse_puzzle
from puzzleloop.stages.context import RunContext, StageResult

SEED_TIMEOUT = 20.0  # seconds per reference solution
# What each `propose.seeds` / `seed_pairs` value draws from: P3 named sets, and "ours" (seed_puzzles/).
SEED_SOURCES: dict[str, tuple[str, ...]] = {
    "p3-train155": ("p3-train155",),
    "ours": ("ours",),
    "both": ("p3-train155", "ours"),
    "all": ("p3-train155", "p3-train-rest", "ours"),
}


@dataclass
class SeedResult(StageResult):
    STAGE = "seed"
    seeds: int  # seeds with a reference solution
    near_heldout: int  # left out as too near a P3 test instance
    verified: int
    statuses: dict[str, int] = field(default_factory=dict)


def seed_examples(which: str, p3_dir: str | None) -> list[SeedExample]:
    """The seeds `which` names (a key of SEED_SOURCES) with their reference solutions."""
    seeds: list[SeedExample] = []
    for source in SEED_SOURCES[which]:
        if source == "ours":
            seeds += [SeedExample(f"seed:{s.name}", s.sat, s.sol) for s in load_seed_puzzles()]
        else:
            seeds += [SeedExample(i.name, i.sat, i.reference_solution) for i in named_set(source, p3_dir)]
    return seeds


def run(context: RunContext, round_: int = 0) -> SeedResult:
    config = context.config
    threshold = config.filter.contamination_threshold
    seeds = [s for s in seed_examples(config.seed_pairs, config.p3_dir) if s.sol is not None]
    kept = [s for s in seeds if context.heldout_index.nearest(s.sat, s.name)[1] < threshold]
    # A generous limit of its own: at the run's limit the slowest reference solutions (about 1 s here) passed
    # or not with the machine's load, so two runs of one preset trained on different seed sets.
    limits = Limits(timeout=max(SEED_TIMEOUT, config.timeout), memory_mb=config.memory_mb)
    with Judge(workers=config.workers, limits=limits) as judge:
        verdicts = judge.judge([(s.sat, s.sol) for s in kept])
    records = [
        PuzzleRecord(
            canonical_hash(s.sat, s.name), s.sat, parse_puzzle(s.sat, s.name).answer_type, round_, "seed",
            (s.name,), origin="seed",
        )
        for s in kept
    ]  # fmt: skip
    context.corpus.add_puzzles(records)
    ids = {row.canonical_hash: row.id for row in context.corpus.puzzles(round=round_)}
    for record, seed, verdict in zip(records, kept, verdicts, strict=True):
        context.corpus.record_attempts(ids[record.canonical_hash], round_, [Attempt(seed.sol, verdict.status, "seed")])
    return SeedResult(
        seeds=len(seeds),
        near_heldout=len(seeds) - len(kept),
        verified=sum(v.status == "verified" for v in verdicts),
        statuses=dict(Counter(v.status for v in verdicts)),
    )
