"""Inspecting a run folder: stats, list, show, export and the errors for missing, empty or corrupt folders.

The run folder is built through the real APIs (Corpus, the sandbox judge, FilterResult, metrics lines) from the
project's seed puzzles, so the numbers checked here are the ones a real two-round run would produce.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard
from tests.helpers import build_run_folder, seed_choice

from puzzleloop.inspection import (
    PuzzleQuery,
    RunFolderError,
    add_corpus_arguments,
    corpus_stats,
    export_corpus,
    heldout_index,
    list_puzzles,
    open_run,
    puzzle_summary,
    run_corpus,
    skeleton,
    solve_rate_bin,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run_folder(tmp_path_factory.mktemp("inspect") / "run")


@pytest.fixture
def copy_of_run(run_dir: Path, tmp_path: Path) -> Path:
    """A private copy, for tests that break the folder."""
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


def _corpus_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="puzzleloop corpus")
    add_corpus_arguments(parser)
    return run_corpus(parser.parse_args(list(argv)))


# -- errors --------------------------------------------------------------------------------------------


def test_missing_empty_and_wrong_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match=r"nowhere: no such run folder"):
        open_run(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(RunFolderError, match=r"file.txt: not a folder"):
        open_run(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match=r"empty: is empty"):
        open_run(tmp_path / "empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(RunFolderError, match=r"other: holds no corpus.sqlite"):
        open_run(tmp_path / "other")


def test_empty_corpus_file_is_refused_and_left_untouched(copy_of_run: Path) -> None:
    corpus = copy_of_run / "corpus.sqlite"
    corpus.unlink()
    corpus.touch()
    with pytest.raises(RunFolderError, match=r"corpus.sqlite: empty file"):
        open_run(copy_of_run)
    assert corpus.stat().st_size == 0


def test_corrupt_corpus_is_named(copy_of_run: Path) -> None:
    for leftover in copy_of_run.glob("corpus.sqlite-*"):
        leftover.unlink()
    (copy_of_run / "corpus.sqlite").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(RunFolderError, match=r"corpus.sqlite: not a readable SQLite corpus"):
        open_run(copy_of_run)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("metrics.jsonl", '{"round": 0, "pass@1": 0.1, "pass@1_ci95": [0, 0.2]}\n{"round": 1, "pa', "line 2: not JSON"),
        ("metrics.jsonl", '{"round": "one"}\n', "line 1: field 'round' must be an int"),
        ("metrics.jsonl", '{"round": 0, "pass@1": 0.1}\n', "pass@1_ci95 a \\[low, high\\] pair"),
        ("round_1/filter.json", '{"funnel": {"proposed": 3}', "filter.json: not JSON"),
        ("round_2/filter.json", '{"funnel": {"proposed": "3"}, "removed": {}}', "field 'funnel' must map"),
        ("config.yaml", "filter: [unclosed\n", "config.yaml: not valid YAML"),
        ("config.yaml", "filter:\n  contamination_threshold: high\n", "contamination_threshold: expected float"),
    ],
)
def test_corrupt_run_files_are_named(copy_of_run: Path, name: str, text: str, expected: str) -> None:
    (copy_of_run / name).write_text(text)
    with pytest.raises(RunFolderError, match=expected) as error:
        open_run(copy_of_run)
    assert str(copy_of_run / name) in str(error.value)


def test_cli_error_for_unknown_puzzle(run_dir: Path) -> None:
    with pytest.raises(RunFolderError, match="no puzzle with id 999"):
        _corpus_cli("show", str(run_dir), "999")


# -- stats ---------------------------------------------------------------------------------------------


def test_stats_count_rounds_types_rates_and_filter_losses(run_dir: Path) -> None:
    with open_run(run_dir) as run:
        puzzles = run.corpus.puzzles()
        stats = corpus_stats(run, None, "skipped in this test")
    round1, round2 = seed_choice()
    assert stats["puzzles"] == len(puzzles) == len(round1) + len(round2) + 2
    assert [stats["rounds"][r]["puzzles"] for r in (1, 2)] == [len(round1), len(round2) + 2]
    assert stats["solved_puzzles"] == sum(1 for p in puzzles if p.successes) > 0
    assert sum(r["attempts"] for r in stats["rounds"].values()) == stats["attempts"] == sum(p.attempts for p in puzzles)
    assert stats["rounds"][2]["attempted"] == len(round2) + 1  # the last puzzle was never attempted
    assert sum(t["puzzles"] for t in stats["answer_types"].values()) == stats["puzzles"]
    assert len(stats["answer_types"]) >= 6
    histogram = stats["solve_rate_histogram"]
    assert histogram["unattempted"] == 1 and sum(histogram.values()) == stats["puzzles"]
    assert histogram["(0.8, 1]"] == sum(1 for p in puzzles if p.solve_rate and p.solve_rate > 0.8)
    assert stats["filter"]["removed"] == {"parse": 6, "trivial": 6, "duplicate": 3}
    assert stats["diversity"]["near_heldout"] is None and stats["diversity"]["heldout_note"] == "skipped in this test"


def test_stats_flag_near_copies_and_heldout_neighbours(run_dir: Path) -> None:
    with open_run(run_dir) as run:
        index, note = heldout_index(run)
        stats = corpus_stats(run, index, note)
    diversity = stats["diversity"]
    assert note is None
    assert diversity["distinct_skeletons"] == stats["puzzles"] - 1  # the near-copy shares its original's skeleton
    assert diversity["near_copies_of_earlier_rounds"] == 1 == stats["rounds"][2]["near_copies_of_earlier_rounds"]
    assert stats["rounds"][1]["near_copies_of_earlier_rounds"] is None  # nothing earlier to copy
    assert diversity["compared_with_earlier_rounds"] == stats["rounds"][2]["puzzles"]
    assert diversity["near_heldout"] == 1 and diversity["max_heldout_similarity"] == 1.0


def test_skeleton_ignores_constants_and_names_but_not_code() -> None:
    a = "def sat(x: int, a=5):\n    '''doc'''\n    return x * a == 10 and 'q' in str(x)\n"
    renamed = "def sat(y: int, b=7):\n    return y * b == 99 and 'zz' in str(y)\n"
    other = "def sat(x: int, a=5):\n    return x + a == 10 and 'q' in str(x)\n"
    assert skeleton(a) == skeleton(renamed) != skeleton(other)


@pytest.mark.parametrize(
    ("rate", "label"), [(0.0, "0"), (0.01, "(0, 0.2]"), (0.2, "(0, 0.2]"), (0.21, "(0.2, 0.4]"), (1.0, "(0.8, 1]")]
)
def test_solve_rate_bins(rate: float, label: str) -> None:
    assert solve_rate_bin(rate) == label


def test_stats_cli_text_and_json(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _corpus_cli("stats", str(run_dir)) == 0
    text = capsys.readouterr().out
    assert "near-copies of earlier rounds 1 of" in text and "distinct canonical skeletons" in text
    assert "trivial" in text and "List[" in text
    assert _corpus_cli("stats", str(run_dir), "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["diversity"]["near_heldout"] == 1 and set(data["rounds"]) == {"1", "2"}


# -- list and show -------------------------------------------------------------------------------------


def test_list_filters(run_dir: Path) -> None:
    with open_run(run_dir) as run:
        every = run.corpus.puzzles()
        assert list_puzzles(run.corpus, PuzzleQuery()) == every
        assert {p.round for p in list_puzzles(run.corpus, PuzzleQuery(round=2))} == {2}
        solved = list_puzzles(run.corpus, PuzzleQuery(min_solve_rate=0.5))
        assert solved and all(p.solve_rate is not None and p.solve_rate >= 0.5 for p in solved)
        unsolved = list_puzzles(run.corpus, PuzzleQuery(max_solve_rate=0.0))
        assert unsolved and all(p.successes == 0 and p.attempts > 0 for p in unsolved)
        assert {p.answer_type for p in list_puzzles(run.corpus, PuzzleQuery(answer_type="str"))} == {"str"}
        found = list_puzzles(run.corpus, PuzzleQuery(search="MODULO THE PRIME"))
        assert [p.round for p in found] == [1, 2]  # the original and its near-copy
        assert len(list_puzzles(run.corpus, PuzzleQuery(limit=3))) == 3


def test_list_cli(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _corpus_cli("list", str(run_dir), "--round", "1", "--search", "inverse", "--limit", "5") == 0
    out = capsys.readouterr().out
    assert "Find the inverse of a modulo the prime m" in out and out.rstrip().endswith("1 puzzle(s)")
    with pytest.raises(SystemExit):
        _corpus_cli("list", str(run_dir), "--min-solve-rate", "1.5")


def test_show_prints_source_attempts_and_provenance(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with open_run(run_dir) as run:
        puzzle = next(p for p in run.corpus.puzzles() if p.attempts >= 3)
        attempts = run.corpus.solutions(puzzle.id)
    assert _corpus_cli("show", str(run_dir), str(puzzle.id)) == 0
    out = capsys.readouterr().out
    assert puzzle.source.rstrip() in out and puzzle.canonical_hash in out and puzzle.proposer in out
    assert f"{len(attempts)} attempt(s):" in out
    for attempt in attempts:
        assert f"round {attempt.round} attempt {attempt.attempt} ({attempt.origin}): {attempt.status}" in out
    statuses = {a.status for a in attempts}
    assert "verified" in statuses and len(statuses) >= 2


def test_puzzle_summary() -> None:
    assert puzzle_summary('def sat(x: int):\n    """Find x.\n\n    More."""\n    return x == 1\n') == "Find x."
    assert puzzle_summary("def sat(x: int):\n    return x == 1\n") == "return x == 1"


# -- export --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "hf"])
def test_export_loads_with_datasets(run_dir: Path, tmp_path: Path, fmt: str) -> None:
    import datasets

    with open_run(run_dir) as run:
        pairs = run.corpus.verified_solutions()
        target, count = export_corpus(run.corpus, fmt, tmp_path / "out", 0.8)
    if fmt == "hf":
        loaded = datasets.load_from_disk(str(target))
    else:  # the dataset card's metadata names the data file, so the folder itself loads
        loaded = datasets.load_dataset(str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"))["train"]
    assert count == len(loaded) == len(pairs) > 0
    provenance = {"puzzle_round", "solution_round", "attempt", "proposer", "prompt_seeds", "canonical_hash"}
    assert provenance <= set(loaded.column_names)
    first = loaded[0]
    puzzle, solution = pairs[0]
    assert (first["sat"], first["sol"], first["proposer"]) == (puzzle.source, solution.source, puzzle.proposer)
    assert first["prompt_seeds"] == list(puzzle.prompt_seeds) and first["solve_rate"] == puzzle.solve_rate
    card = DatasetCard.load(tmp_path / "out" / "README.md")
    assert card.data.license == "mit" and "python-programming-puzzles" in card.data.tags
    assert f"{count} verified (puzzle, solution) pairs" in card.text and "similarity >= 0.8" in card.text
    assert all(f"`{column}`" in card.text for column in loaded.column_names)  # every column is explained


def test_export_cli_and_refusals(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _corpus_cli("export", str(run_dir), "--format", "jsonl", "--out", str(tmp_path / "j")) == 0
    assert "verified pairs to" in capsys.readouterr().out
    assert (tmp_path / "j" / "corpus.jsonl").read_text().count("\n") > 0
    with open_run(run_dir) as run, pytest.raises(RunFolderError, match="not empty"):
        export_corpus(run.corpus, "hf", tmp_path / "j", 0.8)


def test_export_push_to_hub_names_the_repository_when_the_hub_is_unreachable(run_dir: Path, tmp_path: Path) -> None:
    """The push path up to the network (offline here): a one-line error naming the repository, exit status 2."""
    env = os.environ | {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_TOKEN": "hf_offline_test"}
    command = [sys.executable, "-c", "import sys; from puzzleloop.cli import main; sys.exit(main(sys.argv[1:]))",
               "corpus", "export", str(run_dir), "--format", "jsonl",
               "--out", str(tmp_path / "pushed"), "--push-to-hub", "someone/corpus"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "push to someone/corpus (dataset) failed" in done.stderr and done.stderr.count("\n") == 1
    assert (tmp_path / "pushed" / "README.md").is_file()  # the export itself stands
