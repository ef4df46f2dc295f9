"""The verified-puzzle corpus: one SQLite file per run holding every puzzle, every attempt and stage markers.

Why SQLite: each batch is one transaction in WAL mode, so a `kill -9` at any moment leaves the file with
whole batches only, and the round pipeline can resume from what is committed. Attempts carry an index that
is unique per (puzzle, round), so replaying a batch after a crash inserts nothing twice.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from sandbox import STATUSES  # the judge's verdicts are the only statuses a stored attempt may have

log = logging.getLogger("puzzleloop")

SCHEMA_VERSION = 2

# Where a puzzle or a verified pair came from. seed: a seed puzzle and its reference solution (real data);
# proposed: a puzzle the model wrote, and the solver's attempts at any puzzle (seed puzzles too, with
# `solve.relabel_seeds`); constructed: a puzzle built from the model's program and input, whose input is its
# solution; relabeled: a puzzle whose target was recomputed from a wrong answer, whose code (or value) is its
# solution. Every origin but seed is synthetic.
ORIGINS = ("seed", "proposed", "constructed", "relabeled")
_ORIGIN_CHECK = f"CHECK (origin IN ({', '.join(repr(o) for o in ORIGINS)}))"

# Version 1 corpora had no origin: round 0 held only seed pairs and later rounds only proposals and their attempts.
_MIGRATE_FROM_1 = f"""
ALTER TABLE puzzles ADD COLUMN origin TEXT NOT NULL DEFAULT 'proposed' {_ORIGIN_CHECK};
ALTER TABLE puzzles ADD COLUMN solution TEXT;
UPDATE puzzles SET origin = 'seed' WHERE round = 0;
ALTER TABLE solutions ADD COLUMN origin TEXT NOT NULL DEFAULT 'proposed' {_ORIGIN_CHECK};
UPDATE solutions SET origin = 'seed' WHERE round = 0;
UPDATE schema_version SET version = 2
"""

_SCHEMA = f"""
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE puzzles (
    id INTEGER PRIMARY KEY,
    canonical_hash TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    answer_type TEXT NOT NULL,
    round INTEGER NOT NULL,
    proposer TEXT NOT NULL,
    prompt_seeds TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    successes INTEGER NOT NULL DEFAULT 0,
    solve_rate REAL,
    origin TEXT NOT NULL {_ORIGIN_CHECK},
    solution TEXT
);
CREATE INDEX puzzles_round ON puzzles(round);
CREATE TABLE solutions (
    id INTEGER PRIMARY KEY,
    puzzle_id INTEGER NOT NULL REFERENCES puzzles(id),
    source TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({", ".join(repr(s) for s in STATUSES)})),
    length INTEGER NOT NULL,
    round INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    origin TEXT NOT NULL {_ORIGIN_CHECK},
    UNIQUE (puzzle_id, round, attempt)
);
CREATE INDEX solutions_status ON solutions(status, round);
CREATE TABLE stages (
    round INTEGER NOT NULL,
    stage TEXT NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (round, stage)
);
"""


class CorpusError(RuntimeError):
    """The corpus file is missing, is not a puzzleloop corpus, is corrupt, or was given bad records."""


@dataclass(frozen=True)
class PuzzleRecord:
    """A new puzzle to store; `canonical_hash` decides whether it is a duplicate. `solution` is the one its proposer
    gave (a constructed puzzle's input, a with-solution proposal's answer), judged as the solve stage's first
    attempt."""

    canonical_hash: str
    source: str
    answer_type: str
    round: int
    proposer: str
    prompt_seeds: tuple[str, ...] = ()
    origin: str = "proposed"
    solution: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One solution and the sandbox's verdict on it; `origin` is one of ORIGINS."""

    source: str
    status: str
    origin: str = "proposed"


@dataclass(frozen=True)
class PuzzleRow:
    """A stored puzzle with its running solve statistics (`solve_rate` is None until attempted)."""

    id: int
    canonical_hash: str
    source: str
    answer_type: str
    round: int
    proposer: str
    prompt_seeds: tuple[str, ...]
    attempts: int
    successes: int
    solve_rate: float | None
    origin: str
    solution: str | None


@dataclass(frozen=True)
class SolutionRow:
    """A stored attempt; `length` is len(source) in characters."""

    id: int
    puzzle_id: int
    source: str
    status: str
    length: int
    round: int
    attempt: int
    origin: str


_PUZZLE_COLUMNS = (
    "p.id, p.canonical_hash, p.source, p.answer_type, p.round, p.proposer, p.prompt_seeds, "
    "p.attempts, p.successes, p.solve_rate, p.origin, p.solution"
)
_PUZZLE_WIDTH = _PUZZLE_COLUMNS.count(",") + 1
_SOLUTION_COLUMNS = "s.id, s.puzzle_id, s.source, s.status, s.length, s.round, s.attempt, s.origin"


def _puzzle_row(values: Sequence[Any]) -> PuzzleRow:
    return PuzzleRow(*values[:6], tuple(json.loads(values[6])), *values[7:_PUZZLE_WIDTH])


def _check_origin(origin: object, where: str) -> None:
    if origin not in ORIGINS:
        raise CorpusError(f"{where}: unknown origin {origin!r} (expected one of {', '.join(ORIGINS)})")


class Corpus:
    """An open corpus file. Every write method is one transaction; use as a context manager to close it."""

    def __init__(self, path: Path, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise CorpusError(f"{self.path}: no corpus file there")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so a batch is exactly one transaction.
        self._db = sqlite3.connect(self.path, isolation_level=None)
        try:
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._check_or_create_schema()
            damage = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if damage != "ok":  # a header that opens says nothing of the pages behind it
                raise CorpusError(f"{self.path}: the corpus is damaged ({damage})")
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise CorpusError(f"{self.path}: not a readable SQLite corpus ({e})") from e
        except CorpusError:
            self._db.close()
            raise

    def _check_or_create_schema(self) -> None:
        with self._transaction() as db:  # inside the lock, so two processes cannot both create the schema
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
                return
        if "schema_version" not in tables:
            raise CorpusError(f"{self.path}: an SQLite file but not a puzzleloop corpus (no schema_version)")
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            raise CorpusError(f"{self.path}: corpus has an empty schema_version table")
        if row[0] > SCHEMA_VERSION:
            raise CorpusError(
                f"{self.path}: corpus schema version {row[0]} is newer than this puzzleloop ({SCHEMA_VERSION})"
            )
        if row[0] == 1:
            with self._transaction() as db:
                for statement in _MIGRATE_FROM_1.split(";"):
                    db.execute(statement)
            log.warning(
                "%s: corpus migrated from schema 1 to 2 (round 0 pairs are seeds, the rest proposed)", self.path
            )
        elif row[0] < SCHEMA_VERSION:
            raise CorpusError(f"{self.path}: corpus schema version {row[0]} is older than {SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error: all of a batch or none of it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Corpus:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- puzzles -------------------------------------------------------------------------------------

    def add_puzzles(self, records: Sequence[PuzzleRecord]) -> int:
        """Insert a batch in one transaction, skipping hashes already stored; return how many were new."""
        for i, rec in enumerate(records):
            for name in ("canonical_hash", "source", "answer_type"):
                if not isinstance(getattr(rec, name), str) or not getattr(rec, name):
                    raise CorpusError(f"{self.path}: puzzle record {i}: field {name!r} must be a non-empty string")
            if not isinstance(rec.round, int) or rec.round < 0:
                raise CorpusError(f"{self.path}: puzzle record {i}: field 'round' must be an int >= 0")
            _check_origin(rec.origin, f"{self.path}: puzzle record {i}")
        inserted = 0
        with self._transaction() as db:
            for rec in records:
                cur = db.execute(
                    "INSERT OR IGNORE INTO puzzles "
                    "(canonical_hash, source, answer_type, round, proposer, prompt_seeds, origin, solution) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        rec.canonical_hash,
                        rec.source,
                        rec.answer_type,
                        rec.round,
                        rec.proposer,
                        json.dumps(list(rec.prompt_seeds)),
                        rec.origin,
                        rec.solution,
                    ),
                )
                inserted += cur.rowcount
        return inserted

    def known_hashes(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT canonical_hash FROM puzzles")}

    def puzzle(self, puzzle_id: int) -> PuzzleRow:
        row = self._db.execute(f"SELECT {_PUZZLE_COLUMNS} FROM puzzles p WHERE p.id = ?", (puzzle_id,)).fetchone()
        if row is None:
            raise CorpusError(f"{self.path}: no puzzle with id {puzzle_id}")
        return _puzzle_row(row)

    def puzzles(self, round: int | None = None) -> list[PuzzleRow]:
        """Puzzles in id order, optionally only those proposed in `round`."""
        sql = f"SELECT {_PUZZLE_COLUMNS} FROM puzzles p"
        params: list[int] = []
        if round is not None:
            sql += " WHERE p.round = ?"
            params.append(round)
        return [_puzzle_row(r) for r in self._db.execute(sql + " ORDER BY p.id", params)]

    # -- attempts ------------------------------------------------------------------------------------

    def record_attempts(self, puzzle_id: int, round: int, attempts: Sequence[Attempt], first_attempt: int = 0) -> int:
        """Store attempts `first_attempt, first_attempt+1, ...` of a puzzle in a round, in one transaction.

        Attempt indices already stored for (puzzle, round) are skipped, so replaying a batch after a crash
        changes nothing. The puzzle's attempts/successes/solve_rate are recounted from all its stored
        attempts. Returns how many rows were inserted.
        """
        for i, att in enumerate(attempts):
            if att.status not in STATUSES:
                raise CorpusError(
                    f"{self.path}: puzzle {puzzle_id} attempt {first_attempt + i}: unknown status "
                    f"{att.status!r} (expected one of {', '.join(STATUSES)})"
                )
            if not isinstance(att.source, str):
                raise CorpusError(f"{self.path}: puzzle {puzzle_id} attempt {first_attempt + i}: source not a str")
            _check_origin(att.origin, f"{self.path}: puzzle {puzzle_id} attempt {first_attempt + i}")
        inserted = 0
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM puzzles WHERE id = ?", (puzzle_id,)).fetchone() is None:
                raise CorpusError(f"{self.path}: no puzzle with id {puzzle_id}")
            for i, att in enumerate(attempts):
                cur = db.execute(
                    "INSERT OR IGNORE INTO solutions (puzzle_id, source, status, length, round, attempt, origin) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (puzzle_id, att.source, att.status, len(att.source), round, first_attempt + i, att.origin),
                )
                inserted += cur.rowcount
            db.execute(
                "UPDATE puzzles SET "
                "attempts = (SELECT COUNT(*) FROM solutions WHERE puzzle_id = :id), "
                "successes = (SELECT COUNT(*) FROM solutions WHERE puzzle_id = :id AND status = 'verified') "
                "WHERE id = :id",
                {"id": puzzle_id},
            )
            db.execute(
                "UPDATE puzzles SET solve_rate = CASE WHEN attempts > 0 THEN CAST(successes AS REAL) / attempts "
                "END WHERE id = ?",
                (puzzle_id,),
            )
        return inserted

    def attempted_puzzle_ids(self, round: int) -> set[int]:
        return {r[0] for r in self._db.execute("SELECT DISTINCT puzzle_id FROM solutions WHERE round = ?", (round,))}

    def solutions(self, puzzle_id: int) -> list[SolutionRow]:
        rows = self._db.execute(
            f"SELECT {_SOLUTION_COLUMNS} FROM solutions s WHERE s.puzzle_id = ? ORDER BY s.round, s.attempt",
            (puzzle_id,),
        )
        return [SolutionRow(*r) for r in rows]

    def verified_solutions(self, rounds: Sequence[int] | None = None) -> list[tuple[PuzzleRow, SolutionRow]]:
        """Verified (puzzle, solution) pairs, optionally only solutions found in `rounds`.

        Ordered by puzzle id, then shortest first (ties broken by source text), so callers can rely on it.
        """
        sql = (
            f"SELECT {_PUZZLE_COLUMNS}, {_SOLUTION_COLUMNS} FROM solutions s JOIN puzzles p ON p.id = s.puzzle_id "
            "WHERE s.status = 'verified'"
        )
        params: list[int] = []
        if rounds is not None:
            params = [int(r) for r in rounds]
            sql += f" AND s.round IN ({', '.join('?' * len(params))})"
        sql += " ORDER BY p.id, s.length, s.source, s.id"
        return [
            (_puzzle_row(r[:_PUZZLE_WIDTH]), SolutionRow(*r[_PUZZLE_WIDTH:])) for r in self._db.execute(sql, params)
        ]

    # -- stage markers -------------------------------------------------------------------------------

    def stage_done(self, round: int, stage: str) -> bool:
        return self.stage_info(round, stage) is not None

    def mark_stage_done(self, round: int, stage: str, info: dict[str, Any]) -> None:
        """Record that a stage of a round finished, with JSON-serialisable `info` (counts, paths, timings)."""
        try:
            text = json.dumps(info, sort_keys=True)
        except TypeError as e:
            raise CorpusError(f"{self.path}: round {round} stage {stage!r}: info is not JSON ({e})") from e
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO stages (round, stage, info) VALUES (?, ?, ?)", (round, stage, text))

    def stage_info(self, round: int, stage: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT info FROM stages WHERE round = ? AND stage = ?", (round, stage)).fetchone()
        return None if row is None else json.loads(row[0])

    # -- reporting -----------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts for reports: puzzles per round and answer type, attempts per status and per round."""

        def grouped(sql: str) -> dict[Any, int]:
            return {k: n for k, n in self._db.execute(sql)}

        return {
            "puzzles": self._db.execute("SELECT COUNT(*) FROM puzzles").fetchone()[0],
            "solved_puzzles": self._db.execute("SELECT COUNT(*) FROM puzzles WHERE successes > 0").fetchone()[0],
            "solutions": self._db.execute("SELECT COUNT(*) FROM solutions").fetchone()[0],
            "puzzles_per_round": grouped("SELECT round, COUNT(*) FROM puzzles GROUP BY round ORDER BY round"),
            "puzzles_per_answer_type": grouped(
                "SELECT answer_type, COUNT(*) FROM puzzles GROUP BY answer_type ORDER BY answer_type"
            ),
            "solutions_per_status": grouped("SELECT status, COUNT(*) FROM solutions GROUP BY status ORDER BY status"),
            "solutions_per_round": grouped("SELECT round, COUNT(*) FROM solutions GROUP BY round ORDER BY round"),
            "verified_per_round": grouped(
                "SELECT round, COUNT(*) FROM solutions WHERE status = 'verified' GROUP BY round ORDER BY round"
            ),
            "puzzles_per_origin": grouped("SELECT origin, COUNT(*) FROM puzzles GROUP BY origin ORDER BY origin"),
            "verified_per_origin": grouped(
                "SELECT origin, COUNT(*) FROM solutions WHERE status = 'verified' GROUP BY origin ORDER BY origin"
            ),
        }

    def verified_by_origin(self, round: int) -> dict[str, int]:
        """Verified pairs found in `round`, per origin (every origin listed, zeros included)."""
        rows = self._db.execute(
            "SELECT origin, COUNT(*) FROM solutions WHERE status = 'verified' AND round = ? GROUP BY origin", (round,)
        )
        return {origin: 0 for origin in ORIGINS} | dict(rows.fetchall())
