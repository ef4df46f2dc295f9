"""Inspecting a run folder: what the model taught itself (`puzzleloop corpus stats|list|show|export`).

Everything here only reads the run: the corpus, metrics.jsonl, round_<r>/filter.json and the frozen config.
A folder that is missing, empty or corrupt raises RunFolderError naming the path and what is wrong, before
anything is printed, so a typo in a path never looks like an empty corpus.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import tokenize
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from puzzleloop.arguments import positive_int
from puzzleloop.cards import CARD_FILE, command_line, dataset_card, push_folder
from puzzleloop.config import ConfigError, load_config
from puzzleloop.corpus import ORIGINS, Corpus, CorpusError, PuzzleRow, SolutionRow
from puzzleloop.data import DataError, named_set
from puzzleloop.files import read_jsonl_objects, write_jsonl_atomic, write_text_atomic
from puzzleloop.filters import kept
from puzzleloop.layout import FILTER_FILE, RunLayout
from puzzleloop.puzzles import NearDuplicateIndex, PuzzleError, canonical_form

HELDOUT_SET = "p3-test-all"
EXPORT_FORMATS = ("parquet", "jsonl", "hf")
SOLVE_RATE_BINS = ("0", "(0, 0.2]", "(0.2, 0.4]", "(0.4, 0.6]", "(0.6, 0.8]", "(0.8, 1]")


class RunFolderError(ValueError):
    """A run folder that is missing, empty or corrupt; the message names the path and the problem."""


# -- reading a run folder --------------------------------------------------------------------------------


@dataclass
class RunFolder:
    """An opened run folder: its corpus, evaluation lines, per-round filter reports and two config fields."""

    path: Path
    corpus: Corpus
    metrics: list[dict[str, Any]]
    filters: dict[int, dict[str, Any]]
    contamination_threshold: float
    p3_dir: str | None

    def rounds(self) -> list[int]:
        """Every self-play round (>= 1) that left a trace: puzzles, a filter report or an evaluation."""
        found = set(self.corpus.stats()["puzzles_per_round"]) | set(self.filters)
        found |= {line["round"] for line in self.metrics}
        return sorted(r for r in found if r >= 1)

    def close(self) -> None:
        self.corpus.close()

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_run(path: Path | str) -> RunFolder:
    """Open a run folder for reading; RunFolderError says what is missing or corrupt."""
    path = Path(path)
    if not path.exists():
        raise RunFolderError(f"{path}: no such run folder")
    if not path.is_dir():
        raise RunFolderError(f"{path}: not a folder (give the run folder, e.g. runs/default)")
    layout = RunLayout(path)
    corpus_path = layout.corpus
    if not corpus_path.is_file():
        what = "is empty" if not any(path.iterdir()) else f"holds no {corpus_path.name}"
        raise RunFolderError(f"{path}: {what}; not a run folder, or its run has not reached the filter stage")
    if corpus_path.stat().st_size == 0:  # SQLite would silently turn an empty file into a fresh corpus
        raise RunFolderError(f"{corpus_path}: empty file (0 bytes), not a corpus")
    threshold, p3_dir = _read_config(layout.config)
    metrics = _read_metrics(layout.metrics)
    filters = _read_filters(path)
    try:
        corpus = Corpus(corpus_path, create=False)
    except CorpusError as error:
        raise RunFolderError(str(error)) from None
    return RunFolder(path, corpus, metrics, filters, threshold, p3_dir)


def _read_config(path: Path) -> tuple[float, str | None]:
    """The two settings inspection needs, from the run's frozen config (defaults when the run has none yet)."""
    try:
        config = load_config(path if path.is_file() else None)
    except ConfigError as error:
        raise RunFolderError(str(error)) from None
    return config.filter.contamination_threshold, config.p3_dir


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl lines (none before the first evaluation finished); every line must be whole and valid."""
    if not path.exists():
        return []
    lines = read_jsonl_objects(path, RunFolderError)
    for number, line in enumerate(lines, start=1):
        where = f"{path}: line {number}"
        if type(line.get("round")) is not int or line["round"] < 0:
            raise RunFolderError(f"{where}: field 'round' must be an int >= 0, got {line.get('round')!r}")
        for key in pass_keys(line):
            interval = line.get(f"{key}_ci95")
            if not _is_number(line[key]) or not (
                isinstance(interval, list) and len(interval) == 2 and all(map(_is_number, interval))
            ):
                raise RunFolderError(f"{where}: field {key!r} needs a number and {key}_ci95 a [low, high] pair")
    return lines


def _read_filters(run_dir: Path) -> dict[int, dict[str, Any]]:
    """round -> that round's filter.json ({"funnel": {step: left}, "removed": {step: count}, ...})."""
    reports = {}
    for round_, path in RunLayout(run_dir).rounds_with(FILTER_FILE):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise RunFolderError(f"{path}: not JSON ({error.msg} at line {error.lineno})") from None
        for field in ("funnel", "removed"):
            section = report.get(field) if isinstance(report, dict) else None
            if not isinstance(section, dict) or not all(type(v) is int for v in section.values()):
                raise RunFolderError(f"{path}: field {field!r} must map filter steps to counts")
        reports[round_] = report
    return reports


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def pass_keys(line: dict[str, Any]) -> list[str]:
    """The pass@k keys of a metrics line ("pass@1", "pass@8", ...), in increasing k."""
    keys = [k for k in line if re.fullmatch(r"pass@\d+", k)]
    return sorted(keys, key=lambda k: int(k[5:]))


def round_label(round_: int) -> str:
    return "base" if round_ == 0 else str(round_)


def rounds_table(lines: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The before/after table of metrics lines (one per evaluated round): header and rows of text cells. The run
    command prints it, `record` too, and the report renders it as HTML."""
    keys = sorted({k for line in lines for k in pass_keys(line)}, key=lambda k: int(k[5:]))
    header = ["round", "proposed", "kept", "verified", "train ex.", *(f"{k} [95% CI]" for k in keys)]
    header += ["held-out solved", "minutes"]
    rows = []
    for line in lines:
        funnel = line.get("funnel") or {}
        cells = [round_label(line["round"]), str(line.get("proposed", "-")), str(kept(funnel, "-"))]
        cells += [str(line.get("verified_puzzles", "-")), str(line.get("training_examples", "-"))]
        for key in keys:
            low, high = line.get(f"{key}_ci95") or (None, None)
            cells.append(f"{line[key]:.2%} [{low:.2%}, {high:.2%}]" if key in line and low is not None else "-")
        seconds = (line.get("stage_seconds") or {"eval": line.get("eval_seconds")}).values()
        cells += [str(line.get("solved_puzzles", "-")), f"{sum(s or 0 for s in seconds) / 60:.1f}"]
        rows.append(cells)
    return header, rows


def measured_on(lines: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The held-out sets metrics lines name ("p3-dev", or "" for lines from before they did) and their
    evaluation dates, sorted (YYYY-MM-DD)."""
    sets = ", ".join(sorted({str(line["heldout"]) for line in lines if line.get("heldout")}))
    return sets, sorted(str(line["evaluated_at"])[:10] for line in lines if line.get("evaluated_at"))


def format_rounds_table(lines: list[dict[str, Any]]) -> str:
    """The rounds table as aligned text, under a line naming the held-out set and the evaluation dates."""
    header, rows = rounds_table(lines)
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    sets, dates = measured_on(lines)
    title = f"held-out set: {sets or '-'}" + (f"; evaluated {dates[0]} to {dates[-1]}" if dates else "")
    return (
        title
        + "\n"
        + "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in table)
    )


# -- diversity -----------------------------------------------------------------------------------------


def skeleton(source: str, name: str = "<puzzle>") -> str:
    """The canonical form with every number and string literal blanked: P3-style variants of one puzzle
    (same code, other constants) share a skeleton, so distinct skeletons count genuinely different puzzles."""
    canonical = canonical_form(source, name)
    marks = {tokenize.NUMBER: "_", tokenize.STRING: "_", tokenize.INDENT: "{", tokenize.DEDENT: "}",
             tokenize.NEWLINE: ";"}  # fmt: skip
    tokens = tokenize.generate_tokens(io.StringIO(canonical).readline)
    dropped = (tokenize.NL, tokenize.COMMENT, tokenize.ENDMARKER)
    return " ".join(marks.get(t.type, t.string) for t in tokens if t.type not in dropped)


@dataclass(frozen=True)
class PuzzleDiversity:
    """How one puzzle relates to the rest: its skeleton and its nearest earlier-round and held-out puzzles."""

    skeleton: str
    nearest_earlier: tuple[int, float] | None  # (puzzle id, similarity); None in the first round
    nearest_heldout: tuple[str, float] | None  # (P3 instance name, similarity); None without held-out data


def heldout_index(run: RunFolder) -> tuple[NearDuplicateIndex | None, str | None]:
    """The held-out instances prepared for similarity queries, or None and the reason they are unavailable."""
    try:
        return NearDuplicateIndex((i.name, i.sat) for i in named_set(HELDOUT_SET, run.p3_dir)), None
    except DataError as error:
        return None, f"P3 data unavailable ({error})"


def puzzle_diversity(
    puzzles: Sequence[PuzzleRow], heldout: NearDuplicateIndex | None, where: str = "corpus"
) -> dict[int, PuzzleDiversity]:
    """puzzle id -> its diversity facts; each round is compared with all puzzles of earlier rounds."""
    by_round: dict[int, list[PuzzleRow]] = {}
    for puzzle in puzzles:
        by_round.setdefault(puzzle.round, []).append(puzzle)
    result: dict[int, PuzzleDiversity] = {}
    earlier: list[PuzzleRow] = []
    for round_ in sorted(by_round):
        index = NearDuplicateIndex((str(p.id), p.source) for p in earlier) if earlier else None
        for puzzle in by_round[round_]:
            name = f"{where}: puzzle {puzzle.id}"
            try:
                nearest = index.nearest(puzzle.source, name) if index else None
                result[puzzle.id] = PuzzleDiversity(
                    skeleton(puzzle.source, name),
                    (int(nearest[0]), nearest[1]) if nearest else None,
                    heldout.nearest(puzzle.source, name) if heldout else None,
                )
            except PuzzleError as error:
                raise RunFolderError(f"{error} (the stored source does not parse)") from None
        earlier += by_round[round_]
    return result


# -- stats ---------------------------------------------------------------------------------------------


def solve_rate_bin(rate: float) -> str:
    """The SOLVE_RATE_BINS label of a solve rate: exactly 0, then steps of 0.2 closed on the right."""
    if rate <= 0:
        return SOLVE_RATE_BINS[0]
    return SOLVE_RATE_BINS[min(math.ceil(rate / 0.2 - 1e-9), 5)]


def _share(count: int, total: int) -> float | None:
    return count / total if total else None


def corpus_stats(run: RunFolder, heldout: NearDuplicateIndex | None, heldout_note: str | None = None) -> dict:
    """Counts per round, answer-type mix, solve-rate histogram, filter losses and diversity, as plain data."""
    puzzles = run.corpus.puzzles()
    diversity = puzzle_diversity(puzzles, heldout, str(run.corpus.path))
    threshold = run.contamination_threshold
    counts = run.corpus.stats()
    verified_by_round = counts["verified_per_round"]
    rounds: dict[int, dict[str, Any]] = {}
    for round_ in run.rounds():
        mine = [p for p in puzzles if p.round == round_]
        facts = [diversity[p.id] for p in mine]
        copies = sum(1 for d in facts if d.nearest_earlier and d.nearest_earlier[1] >= threshold)
        rounds[round_] = {
            "puzzles": len(mine),
            "attempted": sum(1 for p in mine if p.attempts),
            "solved": sum(1 for p in mine if p.successes),
            "attempts": sum(p.attempts for p in mine),
            "verified_solutions_found": verified_by_round.get(round_, 0),
            "verified_by_origin": run.corpus.verified_by_origin(round_),
            "distinct_skeletons": len({d.skeleton for d in facts}),
            "near_copies_of_earlier_rounds": copies if any(p.round < round_ for p in puzzles) else None,
        }
    types: dict[str, dict[str, int]] = {}
    for puzzle in puzzles:
        entry = types.setdefault(puzzle.answer_type, {"puzzles": 0, "solved": 0})
        entry["puzzles"] += 1
        entry["solved"] += bool(puzzle.successes)
    histogram = Counter(solve_rate_bin(p.solve_rate) for p in puzzles if p.solve_rate is not None)
    removed: Counter[str] = Counter()
    for report in run.filters.values():
        removed.update(report["removed"])
    later = [d for p in puzzles if (d := diversity[p.id]).nearest_earlier is not None]
    copies = sum(1 for d in later if d.nearest_earlier and d.nearest_earlier[1] >= threshold)
    near_heldout = [d.nearest_heldout[1] for d in diversity.values() if d.nearest_heldout]
    return {
        "run": str(run.path),
        "puzzles": len(puzzles),
        "solved_puzzles": sum(1 for p in puzzles if p.successes),
        "attempts": sum(p.attempts for p in puzzles),
        "verified_solutions": sum(p.successes for p in puzzles),
        "puzzles_by_origin": {origin: counts["puzzles_per_origin"].get(origin, 0) for origin in ORIGINS},
        "verified_by_origin": {origin: counts["verified_per_origin"].get(origin, 0) for origin in ORIGINS},
        "rounds": rounds,
        "answer_types": dict(sorted(types.items(), key=lambda item: (-item[1]["puzzles"], item[0]))),
        "solve_rate_histogram": {label: histogram.get(label, 0) for label in SOLVE_RATE_BINS}
        | {"unattempted": sum(1 for p in puzzles if p.solve_rate is None)},
        "filter": {"per_round": run.filters, "removed": dict(removed.most_common())},
        "diversity": {
            "threshold": threshold,
            "distinct_skeletons": len({d.skeleton for d in diversity.values()}),
            "near_copies_of_earlier_rounds": copies,
            "near_copy_share": _share(copies, len(later)),
            "compared_with_earlier_rounds": len(later),
            "near_heldout": sum(1 for s in near_heldout if s >= threshold) if heldout else None,
            "near_heldout_share": _share(sum(1 for s in near_heldout if s >= threshold), len(near_heldout))
            if heldout
            else None,
            "max_heldout_similarity": max(near_heldout, default=None),
            "heldout_note": heldout_note,
        },
    }


def format_stats(stats: dict[str, Any]) -> str:
    """The stats as readable text for the terminal."""
    pct = _percent
    out = [
        f"run {stats['run']}: {stats['puzzles']} puzzles, {stats['solved_puzzles']} solved, "
        f"{stats['attempts']} attempts, {stats['verified_solutions']} verified solutions",
        "",
        f"{'round':>5} {'puzzles':>8} {'attempted':>9} {'solved':>7} {'attempts':>9} {'verified':>9} "
        f"{'skeletons':>9} {'near-copies':>11}",
    ]
    for round_, r in stats["rounds"].items():
        copies = "-" if r["near_copies_of_earlier_rounds"] is None else str(r["near_copies_of_earlier_rounds"])
        out.append(
            f"{round_:>5} {r['puzzles']:>8} {r['attempted']:>9} {r['solved']:>7} {r['attempts']:>9} "
            f"{r['verified_solutions_found']:>9} {r['distinct_skeletons']:>9} {copies:>11}"
        )
    out += ["", "by origin (puzzles / verified pairs; every origin but seed is the model's own):"]
    out += [
        f"  {origin:<12} {stats['puzzles_by_origin'][origin]:>6} / {stats['verified_by_origin'][origin]}"
        for origin in ORIGINS
    ]
    out += ["verified pairs per round by origin:"]
    out += [
        f"  round {round_:>3}  " + ", ".join(f"{o} {n}" for o, n in r["verified_by_origin"].items() if n)
        for round_, r in stats["rounds"].items()
    ]
    out += ["", "answer types (puzzles / solved):"]
    out += [f"  {t:<22} {c['puzzles']:>6} / {c['solved']}" for t, c in stats["answer_types"].items()]
    out += ["", "solve rates of puzzles:"]
    out += [f"  {label:<12} {n:>6}" for label, n in stats["solve_rate_histogram"].items()]
    out += ["", "filter losses (proposals removed, all rounds):"]
    out += [f"  {step:<14} {n:>6}" for step, n in stats["filter"]["removed"].items()] or ["  (no filter reports)"]
    d = stats["diversity"]
    out += [
        "",
        f"diversity (similarity threshold {d['threshold']}):",
        f"  distinct canonical skeletons  {d['distinct_skeletons']} of {stats['puzzles']} puzzles",
        f"  near-copies of earlier rounds {d['near_copies_of_earlier_rounds']} of "
        f"{d['compared_with_earlier_rounds']} ({pct(d['near_copy_share'])})",
    ]
    if d["heldout_note"]:
        out.append(f"  near held-out puzzles         not measured: {d['heldout_note']}")
    else:
        out.append(
            f"  near held-out puzzles         {d['near_heldout']} ({pct(d['near_heldout_share'])}); "
            f"highest similarity {_fixed(d['max_heldout_similarity'])}"
        )
    return "\n".join(out)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _fixed(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# -- list and show -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PuzzleQuery:
    """Which puzzles `corpus list` shows; a solve-rate bound leaves out puzzles never attempted."""

    round: int | None = None
    min_solve_rate: float | None = None
    max_solve_rate: float | None = None
    answer_type: str | None = None
    origin: str | None = None
    search: str | None = None
    limit: int | None = None

    def matches(self, puzzle: PuzzleRow) -> bool:
        rate = puzzle.solve_rate
        return (
            (self.round is None or puzzle.round == self.round)
            and (self.min_solve_rate is None or (rate is not None and rate >= self.min_solve_rate))
            and (self.max_solve_rate is None or (rate is not None and rate <= self.max_solve_rate))
            and (self.answer_type is None or puzzle.answer_type == self.answer_type)
            and (self.origin is None or puzzle.origin == self.origin)
            and (self.search is None or self.search.lower() in puzzle.source.lower())
        )


def list_puzzles(corpus: Corpus, query: PuzzleQuery) -> list[PuzzleRow]:
    found = [p for p in corpus.puzzles(round=query.round) if query.matches(p)]
    return found if query.limit is None else found[: query.limit]


def puzzle_summary(source: str) -> str:
    """One line that says what a puzzle is about: its docstring's first line, else its first body line."""
    match = re.search(r'^\s+(?:"""|\'\'\'|"|\')(.*?)(?:"""|\'\'\'|"|\')?\s*$', source, re.MULTILINE)
    if match and match.group(1).strip():
        return match.group(1).strip()
    body = [line.strip() for line in source.splitlines()[1:] if line.strip()]
    return body[0] if body else ""


def format_list(puzzles: Sequence[PuzzleRow]) -> str:
    out = [f"{'id':>6} {'round':>5} {'origin':<11} {'answer type':<20} {'solved':>9} {'rate':>6}  about"]
    for p in puzzles:
        rate = "-" if p.solve_rate is None else f"{p.solve_rate:.2f}"
        out.append(
            f"{p.id:>6} {p.round:>5} {p.origin:<11} {p.answer_type:<20} {f'{p.successes}/{p.attempts}':>9} {rate:>6}  "
            f"{puzzle_summary(p.source)[:70]}"
        )
    out.append(f"{len(puzzles)} puzzle(s)")
    return "\n".join(out)


def format_show(puzzle: PuzzleRow, attempts: Sequence[SolutionRow]) -> str:
    """A puzzle's source, provenance and every attempt at it with the sandbox's verdict."""
    rate = "-" if puzzle.solve_rate is None else f"{puzzle.solve_rate:.3f}"
    out = [
        f"puzzle {puzzle.id} (round {puzzle.round}, {puzzle.origin}, answer type {puzzle.answer_type})",
        f"  proposer        {puzzle.proposer}",
        f"  prompt seeds    {', '.join(puzzle.prompt_seeds) or '-'}",
        f"  canonical hash  {puzzle.canonical_hash}",
        f"  solve rate      {rate} ({puzzle.successes} verified of {puzzle.attempts} attempts)",
        "",
        puzzle.source.rstrip(),
        "",
        f"{len(attempts)} attempt(s):",
    ]
    for a in attempts:
        out.append(f"--- round {a.round} attempt {a.attempt} ({a.origin}): {a.status} ({a.length} chars)")
        out.append(a.source.rstrip())
    return "\n".join(out)


# -- export --------------------------------------------------------------------------------------------


def export_rows(corpus: Corpus) -> list[dict[str, Any]]:
    """One row per verified (puzzle, solution) pair with its provenance, shortest solution first per puzzle."""
    return [
        {
            "puzzle_id": p.id,
            "solution_id": s.id,
            "sat": p.source,
            "sol": s.source,
            "answer_type": p.answer_type,
            "origin": s.origin,
            "puzzle_origin": p.origin,
            "puzzle_round": p.round,
            "solution_round": s.round,
            "attempt": s.attempt,
            "proposer": p.proposer,
            "prompt_seeds": list(p.prompt_seeds),
            "canonical_hash": p.canonical_hash,
            "attempts": p.attempts,
            "successes": p.successes,
            "solve_rate": p.solve_rate,
            "solution_length": s.length,
        }
        for p, s in corpus.verified_solutions()
    ]


def _export_features() -> Any:
    from datasets import Features, List, Value

    ints = ("puzzle_id", "solution_id", "puzzle_round", "solution_round", "attempt", "attempts", "successes")
    strings = ("sat", "sol", "answer_type", "origin", "puzzle_origin", "proposer", "canonical_hash")
    return Features(
        {name: Value("int64") for name in ints}
        | {name: Value("string") for name in strings}
        | {"prompt_seeds": List(Value("string")), "solve_rate": Value("float64"), "solution_length": Value("int64")}
    )


def export_corpus(corpus: Corpus, fmt: str, out: Path, contamination_threshold: float) -> tuple[Path, int]:
    """Write the verified pairs into folder `out` as corpus.parquet, corpus.jsonl or a `save_to_disk` dataset,
    with a dataset card (README.md).

    Returns what to hand to `datasets` (load_dataset("parquet"/"json", data_files=...) or load_from_disk(...))
    and the number of rows.
    """
    if fmt not in EXPORT_FORMATS:
        raise RunFolderError(f"export format {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{out}: exists and is not a folder")
    rows = export_rows(corpus)
    if fmt == "jsonl":
        target = out / "corpus.jsonl"
        write_jsonl_atomic(target, rows)
    else:
        from datasets import Dataset

        dataset = Dataset.from_list(rows, features=_export_features())
        if fmt == "hf":
            if out.exists() and any(out.iterdir()):
                raise RunFolderError(f"{out}: not empty; save_to_disk needs a new or empty folder")
            dataset.save_to_disk(str(out))
            target = out
        else:
            out.mkdir(parents=True, exist_ok=True)
            target = out / "corpus.parquet"
            partial = out / ".corpus.parquet.tmp"
            dataset.to_parquet(str(partial))
            os.replace(partial, target)  # whole files only, as everywhere in a run
    card = dataset_card(
        name=f"puzzleloop corpus of {corpus.path.parent.resolve().name}",
        rows=len(rows),
        by_origin=dict(Counter(row["origin"] for row in rows)),
        threshold=contamination_threshold,
        data_file=None if target == out else target.name,
        command=command_line(),
    )
    write_text_atomic(out / CARD_FILE, str(card))
    return target, len(rows)


# -- command line --------------------------------------------------------------------------------------


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a solve rate is between 0 and 1, got {text}")
    return value


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    """The `corpus` sub-subcommands: stats, list, show, export."""
    commands = parser.add_subparsers(dest="corpus_command", required=True)
    stats = commands.add_parser("stats", help="counts per round, answer types, solve rates, filter losses, diversity")
    stats.add_argument("run", type=Path, help="run folder")
    stats.add_argument("--json", action="store_true", help="print the numbers as JSON")
    listing = commands.add_parser("list", help="puzzles of the corpus, filtered")
    listing.add_argument("run", type=Path, help="run folder")
    listing.add_argument("--round", type=int, default=None, help="only puzzles proposed in this round")
    listing.add_argument("--min-solve-rate", type=_rate, default=None)
    listing.add_argument("--max-solve-rate", type=_rate, default=None)
    listing.add_argument("--answer-type", default=None, help="e.g. int or List[str]")
    listing.add_argument("--origin", choices=ORIGINS, default=None, help="only puzzles of this origin")
    listing.add_argument("--search", default=None, help="text the puzzle source contains (case-insensitive)")
    listing.add_argument("--limit", type=positive_int, default=None)
    show = commands.add_parser("show", help="a puzzle's source, provenance and every attempt with its status")
    show.add_argument("run", type=Path, help="run folder")
    show.add_argument("puzzle_id", type=int)
    export = commands.add_parser("export", help="verified pairs with provenance, loadable with `datasets`")
    export.add_argument("run", type=Path, help="run folder")
    export.add_argument("--format", choices=EXPORT_FORMATS, required=True)
    export.add_argument("--out", type=Path, required=True, help="output folder")
    export.add_argument("--push-to-hub", metavar="REPO", default=None,
                        help="then upload the folder to this Hub dataset repository "
                             "(needs a token; untested offline)")  # fmt: skip


def run_corpus(args: argparse.Namespace) -> int:
    with open_run(args.run) as run:
        if args.corpus_command == "stats":
            index, note = heldout_index(run)
            stats = corpus_stats(run, index, note)
            print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
        elif args.corpus_command == "list":
            query = PuzzleQuery(
                args.round,
                args.min_solve_rate,
                args.max_solve_rate,
                args.answer_type,
                args.origin,
                args.search,
                args.limit,
            )
            print(format_list(list_puzzles(run.corpus, query)))
        elif args.corpus_command == "show":
            try:
                puzzle = run.corpus.puzzle(args.puzzle_id)
            except CorpusError as error:
                raise RunFolderError(str(error)) from None
            print(format_show(puzzle, run.corpus.solutions(puzzle.id)))
        else:
            target, count = export_corpus(run.corpus, args.format, args.out, run.contamination_threshold)
            print(f"wrote {count} verified pairs to {target}, with a dataset card in {args.out / CARD_FILE}")
            if args.push_to_hub:
                print(f"pushed to {push_folder(args.out, args.push_to_hub, 'dataset')}")
    return 0
