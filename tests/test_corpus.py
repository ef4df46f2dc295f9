"""The corpus store: dedup, idempotent attempt replay, solve rates, stage markers, crash safety, bad files."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from puzzleloop.corpus import Attempt, Corpus, CorpusError, PuzzleRecord


def record(h: str, round: int = 0, answer_type: str = "int") -> PuzzleRecord:
    return PuzzleRecord(
        canonical_hash=h,
        source=f"def sat(x: int):\n    return x == {len(h)}\n",
        answer_type=answer_type,
        round=round,
        proposer="base",
        prompt_seeds=("Study_1:0", "Tutorial1:0"),
    )


@pytest.fixture
def corpus(tmp_path: Path):
    with Corpus(tmp_path / "run" / "corpus.sqlite") as c:
        yield c


def test_duplicates_by_hash_are_skipped(corpus: Corpus) -> None:
    assert corpus.add_puzzles([record("a"), record("b"), record("a")]) == 2
    assert corpus.add_puzzles([record("b"), record("c", round=1)]) == 1
    assert corpus.known_hashes() == {"a", "b", "c"}
    rows = corpus.puzzles()
    assert [r.canonical_hash for r in rows] == ["a", "b", "c"]
    assert rows[0].prompt_seeds == ("Study_1:0", "Tutorial1:0")
    assert rows[0].solve_rate is None and rows[0].attempts == 0
    assert [r.canonical_hash for r in corpus.puzzles(round=1)] == ["c"]


def test_attempts_update_solve_rate_and_replay_inserts_nothing(corpus: Corpus) -> None:
    corpus.add_puzzles([record("a"), record("b")])
    a, b = corpus.puzzles()
    batch = [
        Attempt("def sol():\n    return 3\n", "verified"),
        Attempt("def sol():\n    return 4\n", "wrong"),
        Attempt("def sol():\n    while True: pass\n", "timeout"),
        Attempt("def sol(): return 5", "verified"),
    ]
    assert corpus.record_attempts(a.id, 0, batch) == 4
    assert corpus.record_attempts(a.id, 0, batch) == 0  # replay after a crash
    a = corpus.puzzle(a.id)
    assert (a.attempts, a.successes, a.solve_rate) == (4, 2, 0.5)
    sols = corpus.solutions(a.id)
    assert [s.attempt for s in sols] == [0, 1, 2, 3]
    assert sols[0].length == len(batch[0].source)
    # a later chunk of the same round continues the attempt indices; another round counts too
    corpus.record_attempts(a.id, 0, [Attempt("x", "error")], first_attempt=4)
    corpus.record_attempts(a.id, 1, [Attempt("def sol(): return 9", "verified")])
    a = corpus.puzzle(a.id)
    assert (a.attempts, a.successes) == (6, 3)
    assert a.solve_rate == pytest.approx(0.5)
    assert corpus.attempted_puzzle_ids(0) == {a.id}
    assert corpus.attempted_puzzle_ids(1) == {a.id}
    corpus.record_attempts(b.id, 1, [Attempt("y", "wrong")])
    assert corpus.puzzle(b.id).solve_rate == 0.0


def test_verified_solutions_are_ordered_shortest_first_and_filter_rounds(corpus: Corpus) -> None:
    corpus.add_puzzles([record("a")])
    (a,) = corpus.puzzles()
    corpus.record_attempts(a.id, 0, [Attempt("bbbb", "verified"), Attempt("aaaa", "verified"), Attempt("c", "wrong")])
    corpus.record_attempts(a.id, 1, [Attempt("zz", "verified")])
    pairs = corpus.verified_solutions()
    assert [s.source for _, s in pairs] == ["zz", "aaaa", "bbbb"]
    assert all(p.id == a.id for p, _ in pairs)
    assert [s.source for _, s in corpus.verified_solutions(rounds=[0])] == ["aaaa", "bbbb"]
    assert corpus.verified_solutions(rounds=[]) == []


def test_bad_input_is_named(corpus: Corpus) -> None:
    corpus.add_puzzles([record("a")])
    (a,) = corpus.puzzles()
    with pytest.raises(CorpusError, match="attempt 1: unknown status 'passed'"):
        corpus.record_attempts(a.id, 0, [Attempt("x", "verified"), Attempt("y", "passed")])
    assert corpus.solutions(a.id) == []  # nothing of the bad batch was written
    with pytest.raises(CorpusError, match="no puzzle with id 999"):
        corpus.record_attempts(999, 0, [Attempt("x", "verified")])
    with pytest.raises(CorpusError, match="record 1: field 'answer_type'"):
        corpus.add_puzzles([record("b"), record("c", answer_type="")])
    assert corpus.known_hashes() == {"a"}


def test_stage_markers_and_stats(corpus: Corpus) -> None:
    assert not corpus.stage_done(0, "propose") and corpus.stage_info(0, "propose") is None
    corpus.mark_stage_done(0, "propose", {"proposed": 10, "kept": 3})
    assert corpus.stage_done(0, "propose") and not corpus.stage_done(1, "propose")
    assert corpus.stage_info(0, "propose") == {"proposed": 10, "kept": 3}
    with pytest.raises(CorpusError, match="round 0 stage 'solve': info is not JSON"):
        corpus.mark_stage_done(0, "solve", {"path": Path("x")})
    corpus.add_puzzles([record("a"), record("bb", answer_type="str"), record("c", round=1)])
    a = corpus.puzzles()[0]
    corpus.record_attempts(a.id, 0, [Attempt("x", "verified"), Attempt("y", "timeout")])
    stats = corpus.stats()
    assert stats["puzzles"] == 3 and stats["solutions"] == 2 and stats["solved_puzzles"] == 1
    assert stats["puzzles_per_round"] == {0: 2, 1: 1}
    assert stats["puzzles_per_answer_type"] == {"int": 2, "str": 1}
    assert stats["solutions_per_status"] == {"timeout": 1, "verified": 1}
    assert stats["verified_per_round"] == {0: 1}


def test_reopen_keeps_data_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "corpus.sqlite"
    with Corpus(path) as c:
        c.add_puzzles([record("a")])
    with Corpus(path, create=False) as c:
        assert c.known_hashes() == {"a"}
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_bad_files_raise_corpus_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite"
    with pytest.raises(CorpusError, match="missing.sqlite: no corpus file"):
        Corpus(missing, create=False)
    assert not missing.exists()
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(CorpusError, match="garbage.sqlite: not a readable SQLite corpus"):
        Corpus(garbage)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(CorpusError, match="other.sqlite: an SQLite file but not a puzzleloop corpus"):
        Corpus(other)
    newer = tmp_path / "newer.sqlite"
    Corpus(newer).close()
    db = sqlite3.connect(newer)
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    with pytest.raises(CorpusError, match="newer.sqlite: corpus schema version 99 is newer"):
        Corpus(newer)


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from puzzleloop.corpus import Attempt, Corpus, PuzzleRecord

    BATCH = 40
    with Corpus(Path(sys.argv[1])) as c:
        start = len(c.known_hashes())
        for b in range(start // BATCH, 10_000):
            recs = [PuzzleRecord(f"h{b}-{i}", "def sat(x: int):\\n    return x == 1\\n", "int", 0, "m", ())
                    for i in range(BATCH)]
            c.add_puzzles(recs)
            attempted = c.attempted_puzzle_ids(0)
            for p in [p for p in c.puzzles() if p.id not in attempted]:
                c.record_attempts(p.id, 0, [Attempt("def sol(): return 1", "verified"),
                                            Attempt("def sol(): return 2", "wrong")] * 5)
            if b == 2:
                print("ready", flush=True)
    """
)


def test_kill_9_leaves_only_whole_batches_and_resume_adds_no_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "corpus.sqlite"
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    time.sleep(0.3)
    child.send_signal(signal.SIGKILL)
    child.wait()

    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Corpus(path, create=False) as c:
        rows = c.puzzles()
        assert len(rows) >= 3 * 40 and len(rows) % 40 == 0
        for p in rows:
            assert p.attempts == len(c.solutions(p.id)) and p.attempts in (0, 10)
            assert p.successes == p.attempts // 2
        pending = [p.id for p in rows if p.id not in c.attempted_puzzle_ids(0)]
        assert len(pending) <= 40
        for pid in pending:  # the interrupted stage finishes; a replay of done puzzles inserts nothing
            c.record_attempts(pid, 0, [Attempt("def sol(): return 1", "verified")] * 10)
        assert c.record_attempts(rows[0].id, 0, [Attempt("def sol(): return 1", "verified")] * 10) == 0
        assert c.stats()["solutions"] == 10 * len(rows)
    duplicates = "SELECT COUNT(*) FROM (SELECT 1 FROM solutions GROUP BY puzzle_id, round, attempt HAVING COUNT(*) > 1)"
    assert sqlite3.connect(path).execute(duplicates).fetchone()[0] == 0


_SCHEMA_1 = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE puzzles (id INTEGER PRIMARY KEY, canonical_hash TEXT NOT NULL UNIQUE, source TEXT NOT NULL,
    answer_type TEXT NOT NULL, round INTEGER NOT NULL, proposer TEXT NOT NULL, prompt_seeds TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, successes INTEGER NOT NULL DEFAULT 0, solve_rate REAL);
CREATE TABLE solutions (id INTEGER PRIMARY KEY, puzzle_id INTEGER NOT NULL REFERENCES puzzles(id),
    source TEXT NOT NULL, status TEXT NOT NULL, length INTEGER NOT NULL, round INTEGER NOT NULL,
    attempt INTEGER NOT NULL, UNIQUE (puzzle_id, round, attempt));
CREATE TABLE stages (round INTEGER NOT NULL, stage TEXT NOT NULL, info TEXT NOT NULL, PRIMARY KEY (round, stage));
INSERT INTO puzzles VALUES (1, 'h1', 'def sat(x: int):\n    return x == 1\n', 'int', 0, 'seed', '[]', 1, 1, 1.0);
INSERT INTO puzzles VALUES (2, 'h2', 'def sat(x: int):\n    return x == 2\n', 'int', 1, 'm', '["a"]', 1, 0, 0.0);
INSERT INTO solutions VALUES (1, 1, 'def sol():\n    return 1\n', 'verified', 24, 0, 0);
INSERT INTO solutions VALUES (2, 2, 'def sol():\n    return 3\n', 'wrong', 24, 1, 0);
"""


def test_a_schema_1_corpus_is_migrated_with_origins(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "corpus.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(_SCHEMA_1)
    with caplog.at_level("WARNING"), Corpus(path) as corpus:
        assert [(p.id, p.origin, p.solution) for p in corpus.puzzles()] == [(1, "seed", None), (2, "proposed", None)]
        assert [s.origin for s in corpus.solutions(1) + corpus.solutions(2)] == ["seed", "proposed"]
        assert corpus.stats()["verified_per_origin"] == {"seed": 1}
        corpus.record_attempts(2, 1, [Attempt("def sol():\n    return 2\n", "verified", "proposed")], first_attempt=1)
    assert "migrated from schema 1 to 2" in caplog.text
    with Corpus(path) as corpus:  # opened again: already version 2, nothing migrated twice
        assert corpus.verified_by_origin(1) == {"seed": 0, "proposed": 1, "constructed": 0, "relabeled": 0}
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(2,)]


def test_an_unknown_origin_is_refused(corpus: Corpus) -> None:
    with pytest.raises(CorpusError, match="unknown origin 'borrowed'"):
        corpus.add_puzzles(
            [PuzzleRecord("h", "def sat(x: int):\n    return x == 1\n", "int", 1, "m", origin="borrowed")]
        )
