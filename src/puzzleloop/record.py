"""Record a finished run as a small folder of committed evidence: results/NAME/.

A run folder (weights, samples, the corpus) is too large and too raw to commit, and P3's puzzles must not be
copied into git; this keeps what a claim about the run needs, in plain files a reviewer can read:

    rounds.csv          held-out pass@k with 95% intervals, error rates, funnel, training and minutes per round
    evals.csv           one row per standalone `puzzleloop eval` folder given with --eval LABEL=DIR
    corpus.json         `puzzleloop corpus stats` of the run (diversity, collapse watch, held-out similarity)
    contamination.json  evidence that no P3 test puzzle was shown in a prompt or used as a training example
    rounds.png          pass@1 and pass@k per round, with the --eval results marked at their round
    provenance.json     git commit, the commands that made the numbers, date, hardware, package versions
    config.yaml         the run's frozen configuration

Usage:
    puzzleloop record RUN_DIR --name NAME [--eval LABEL=EVAL_DIR ...] [--command "..."] [--out-dir DIR]

A label ending in `@round<r>` (e.g. `test228@round0`) puts that evaluation on the plot at round r. The command
exits with status 1 when the contamination check fails (the files are written all the same, as the evidence),
and 2 when an input is missing or malformed.
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import os
import platform
import re
import shutil
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from puzzleloop.cards import command_line
from puzzleloop.data import TUTORIAL_NAMES, named_set
from puzzleloop.files import DamagedFileError, read_jsonl_objects, write_json_atomic, write_text_atomic
from puzzleloop.filters import kept
from puzzleloop.inspection import RunFolder, corpus_stats, format_rounds_table, heldout_index, open_run, pass_keys
from puzzleloop.layout import CONFIG_FILE, PROPOSALS_FILE, TRAIN_FILE, RunLayout
from puzzleloop.provenance import git_sha, package_versions
from puzzleloop.puzzles import NearDuplicateIndex, PuzzleError, canonical_hash, parse_module, rename_function

TEST_SET = "p3-test-all"  # every instance of P3's 228 test classes: what must never reach a prompt or training
TRAIN_SET = "p3-train155"
OUR_SEED_PREFIX = "seed:"
EVAL_FILES = ("results.json", "settings.json", "samples.jsonl")
EVAL_COLUMNS = ("label", "round", "heldout", "model", "puzzles", "n")
ROUND_LABEL = re.compile(r"@round(\d+)$")


class RecordError(ValueError):
    """An input that is missing or malformed; the message names the file and the field."""


# -- reading inputs ------------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    """A whole JSON file; a missing or broken file is an error naming it (never silently an empty record)."""
    if not path.is_file():
        raise RecordError(f"{path}: missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RecordError(f"{path}: not JSON ({error.msg} at line {error.lineno})") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every row of a finished JSONL file; unlike the run's resume reader, a torn line is an error here."""
    if not path.is_file():
        raise RecordError(f"{path}: missing")
    return read_jsonl_objects(path, RecordError)


def field(mapping: Any, name: str, where: str, kind: type = object) -> Any:
    """mapping[name], checked for presence and type, so a malformed input fails with its file and field."""
    if not isinstance(mapping, dict) or name not in mapping:
        raise RecordError(f"{where}: field {name!r} is missing")
    value = mapping[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RecordError(f"{where}: field {name!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


# -- pure helpers (unit-tested) ------------------------------------------------------------------------


def puzzle_from_training_prompt(text: str, where: str = "<training prompt>") -> str:
    """The puzzle of a training row (its prompt, `def f ...`), named `sat` again.

    Parsed with `ast` (never executed). The name goes back to `sat`, as in the corpus and in P3, because the
    canonical form (hence the hash and the similarity) depends on it when the puzzle also uses a local variable
    `f` (one of our seed puzzles does).
    """
    try:
        tree = parse_module(text, where)  # the puzzle parser's size and depth limits apply here too
        found = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "f"]
        if len(found) != 1:
            raise RecordError(f"{where}: expected one top-level 'def f' in the training prompt, found {len(found)}")
        source = ast.get_source_segment(text, found[0])
        if not source:
            raise RecordError(f"{where}: cannot locate the source of 'def f'")
        return rename_function(source, "sat", where)
    except PuzzleError as error:
        raise RecordError(str(error)) from None


def sample_rates(rows: Sequence[dict[str, Any]], where: str = "<samples>") -> dict[str, Any]:
    """Shares of all samples that failed on the answer type, and that were rejected as unparsable.

    A parse error is status "rejected" with "syntax error" in the reason; a SyntaxError raised at run time by
    code that parsed (status "error") is not one: it says nothing about the model writing valid Python.
    """
    if not rows:
        raise RecordError(f"{where}: no samples")
    statuses: Counter[str] = Counter()
    parse_errors = 0
    for number, row in enumerate(rows, start=1):
        status = field(row, "status", f"{where}: sample {number}", str)
        statuses[status] += 1
        if status == "rejected" and "syntax error" in field(row, "reason", f"{where}: sample {number}", str):
            parse_errors += 1
    return {
        "samples": len(rows),
        "type_error_rate": statuses["type_error"] / len(rows),
        "parse_error_rate": parse_errors / len(rows),
    }


def solved_puzzle_names(results: dict[str, Any], where: str = "<results>") -> list[str]:
    """Held-out puzzles with at least one verified sample (results.json's per_puzzle counts them), in set order."""
    per_puzzle = field(results, "per_puzzle", where, dict)
    return [name for name, verified in per_puzzle.items() if verified]


def seed_origin(name: str, test_classes: set[str], train_names: set[str]) -> str:
    """Where a propose-prompt seed comes from: P3 test (never allowed), P3 train, this project's seeds, other."""
    if name.startswith(OUR_SEED_PREFIX):
        return "ours"
    if name.rsplit(":", 1)[0] in test_classes:
        return "p3_test"
    return "p3_train" if name in train_names else "other"


def pass_columns(results: dict[str, Any], keys: Iterable[str], within: bool = False) -> dict[str, Any]:
    """pass@k, its interval as low/high columns (and "solved within k" when asked) for the given pass@k keys."""
    row: dict[str, Any] = {}
    for key in keys:
        if key not in results:
            continue
        low, high = results.get(f"{key}_ci95") or (None, None)
        row |= {key: results[key], f"{key}_ci95_low": low, f"{key}_ci95_high": high}
        if within:
            row[f"solved_within@{key[5:]}"] = results.get(f"solved_within@{key[5:]}")
    return row


# -- evaluation folders --------------------------------------------------------------------------------


@dataclass
class EvalFolder:
    """A finished `puzzleloop eval` folder (standalone or a round's eval/), read and checked."""

    path: Path
    settings: dict[str, Any]
    results: dict[str, Any]
    rates: dict[str, Any]

    @property
    def heldout(self) -> str:
        return self.settings["heldout"]


def read_eval_folder(path: Path) -> EvalFolder:
    """Read results.json, settings.json and samples.jsonl, checking that they belong together."""
    if not path.is_dir():
        raise RecordError(f"{path}: no such evaluation folder")
    missing = [name for name in EVAL_FILES if not (path / name).is_file()]
    if missing:
        raise RecordError(f"{path}: missing {', '.join(missing)} (not a finished `puzzleloop eval` folder)")
    settings = read_json(path / "settings.json")
    field(settings, "heldout", str(path / "settings.json"), str)
    results = read_json(path / "results.json")
    where = str(path / "results.json")
    puzzles, n = field(results, "puzzles", where, int), field(results, "n", where, int)
    if not pass_keys(results):
        raise RecordError(f"{where}: no pass@k field")
    for key in pass_keys(results):
        interval = field(results, f"{key}_ci95", where, list)
        if len(interval) != 2:
            raise RecordError(f"{where}: field {key + '_ci95'!r} must be a [low, high] pair")
    samples = read_jsonl(path / "samples.jsonl")
    if len(samples) != puzzles * n:
        raise RecordError(
            f"{path / 'samples.jsonl'}: {len(samples)} samples, but results.json says {puzzles} puzzles x n={n}; "
            "the evaluation is unfinished or its folder was reused"
        )
    return EvalFolder(path, settings, results, sample_rates(samples, str(path / "samples.jsonl")))


def measured_round(line: dict[str, Any], by_round: dict[int, dict[str, Any]], where: str) -> int:
    """The round whose eval folder holds this line's numbers: an untrained round reuses an earlier measurement."""
    seen = {line["round"]}
    while "reused_from" in line:
        source = line["reused_from"]
        if source not in by_round or source in seen:
            raise RecordError(
                f"{where}: round {line['round']}: field 'reused_from' names round {source!r}, "
                "which has no evaluation line"
            )
        seen.add(source)
        line = by_round[source]
    return line["round"]


# -- the records ---------------------------------------------------------------------------------------


def round_rows(run: RunFolder) -> tuple[list[dict[str, Any]], dict[int, EvalFolder]]:
    """One row per evaluated round, and the eval folder each round's numbers came from."""
    where = str(RunLayout(run.path).metrics)
    if not run.metrics:
        raise RecordError(f"{where}: missing or empty; the run has no finished evaluation to record")
    by_round = {line["round"]: line for line in run.metrics}
    # every row gets every stage's column, in the order the run went through them (round 0 only evaluates)
    stages = next((list(line["stage_seconds"]) for line in run.metrics if line.get("stage_seconds")), ["eval"])
    keys = sorted({k for line in run.metrics for k in pass_keys(line)}, key=lambda k: int(k[5:]))
    folders: dict[int, EvalFolder] = {}
    rows = []
    for line in run.metrics:
        source = measured_round(line, by_round, where)
        if source not in folders:
            folders[source] = read_eval_folder(RunLayout(run.path).eval_dir(source))
        folder = folders[source]
        for key in pass_keys(line):
            if abs(line[key] - folder.results.get(key, float("nan"))) > 1e-12:
                raise RecordError(
                    f"{where}: round {line['round']}: field {key!r} is {line[key]}, but "
                    f"{folder.path / 'results.json'} says {folder.results.get(key)}"
                )
        funnel = line.get("funnel") or {}
        seconds = line.get("stage_seconds") or {"eval": line.get("eval_seconds")}
        rows.append(
            {
                "round": line["round"],
                "model": line.get("model"),
                "heldout": folder.heldout,
                "evaluated_at": folder.results.get("finished_at"),
                "eval_of_round": source,
                "puzzles": line.get("puzzles"),
                "n": line.get("n"),
                **pass_columns(line, keys),
                "solved_puzzles": line.get("solved_puzzles"),
                "type_error_rate": folder.rates["type_error_rate"],
                "parse_error_rate": folder.rates["parse_error_rate"],
                "proposed": line.get("proposed"),
                "kept": kept(funnel),
                "verified_puzzles": line.get("verified_puzzles"),
                "verified_solutions": line.get("verified_solutions"),
                "training_examples": line.get("training_examples"),
                "train_loss": line.get("train_loss"),
                **{f"minutes_{stage}": _minutes(seconds.get(stage)) for stage in stages},
            }
        )
    return rows, folders


def eval_row(label: str, folder: EvalFolder) -> dict[str, Any]:
    """One standalone evaluation as a row of evals.csv."""
    results = folder.results
    wall = results.get("wall_seconds_this_run")
    return {
        "label": label,
        "round": label_round(label),
        "heldout": folder.heldout,
        "evaluated_at": results.get("finished_at"),
        "model": folder.settings.get("model"),
        "puzzles": results["puzzles"],
        "n": results["n"],
        **pass_columns(results, pass_keys(results), within=True),
        "solved_puzzles": results.get("solved_puzzles"),
        "type_error_rate": folder.rates["type_error_rate"],
        "parse_error_rate": folder.rates["parse_error_rate"],
        "wall_minutes": _minutes(wall),
        "git_sha": (results.get("provenance") or {}).get("git_sha"),
        "solved_puzzle_names": ";".join(solved_puzzle_names(results, str(folder.path / "results.json"))),
    }


def contamination_record(run: RunFolder, index: NearDuplicateIndex) -> dict[str, Any]:
    """Seeds of every propose prompt and the puzzle of every training example, checked against P3's test set."""
    from puzzleloop.selection import training_rows  # it loads datasets (and torch): here, not for `--help`

    test = named_set(TEST_SET, run.p3_dir)
    test_classes = {i.name.rsplit(":", 1)[0] for i in test}
    train_names = {i.name for i in named_set(TRAIN_SET, run.p3_dir)}
    test_hashes = {canonical_hash(i.sat, i.name): i.name for i in test}
    threshold = run.contamination_threshold

    mentions: Counter[str] = Counter()
    distinct: dict[str, set[str]] = {}
    proposal_rows = 0
    for _, path in RunLayout(run.path).rounds_with(PROPOSALS_FILE):
        for number, row in enumerate(read_jsonl(path), start=1):
            seeds = field(row, "seeds", f"{path}: line {number}", list)
            proposal_rows += 1
            for name in seeds:
                origin = seed_origin(str(name), test_classes, train_names)
                mentions[origin] += 1
                distinct.setdefault(origin, set()).add(str(name))
    test_seeds = sorted(distinct.get("p3_test", set()))
    tutorial_tests = [n for n in TUTORIAL_NAMES if n.rsplit(":", 1)[0] in test_classes]

    per_round: dict[str, dict[str, Any]] = {}
    for _, path in RunLayout(run.path).rounds_with(TRAIN_FILE):
        scores: list[tuple[float, str]] = []
        exact: list[str] = []
        try:
            rows = training_rows(read_jsonl(path), str(path))
        except DamagedFileError as error:
            raise RecordError(str(error)) from None
        for number, row in enumerate(rows, start=1):
            where = f"{path}: line {number}"
            puzzle = puzzle_from_training_prompt(row["prompt"], where)
            nearest, score = index.nearest(puzzle, where)
            scores.append((score, nearest))
            if (match := test_hashes.get(canonical_hash(puzzle, where))) is not None:
                exact.append(match)
        best = max(scores, default=None)
        per_round[path.parent.name] = {
            "examples": len(scores),
            "max_similarity": best[0] if best else None,
            "nearest_test_instance_at_max": best[1] if best else None,
            "at_or_above_threshold": sum(1 for s, _ in scores if s >= threshold),
            "exact_canonical_matches": len(exact),
        }
    examples = sum(r["examples"] for r in per_round.values())
    above = sum(r["at_or_above_threshold"] for r in per_round.values())
    exact_total = sum(r["exact_canonical_matches"] for r in per_round.values())
    maxima = [r["max_similarity"] for r in per_round.values() if r["max_similarity"] is not None]
    return {
        "ok": not test_seeds and not tutorial_tests and above == 0 and exact_total == 0,
        "test_set": f"{TEST_SET} ({len(test)} instances of {len(test_classes)} test classes)",
        "prompts": {
            "propose": {
                "files": [str(p) for _, p in RunLayout(run.path).rounds_with(PROPOSALS_FILE)],
                "proposal_rows": proposal_rows,
                "seed_mentions_by_origin": dict(sorted(mentions.items())),
                "distinct_seeds_by_origin": {k: len(v) for k, v in sorted(distinct.items())},
                "test_class_seeds": test_seeds,
            },
            "solve_and_eval": {
                "few_shot_examples": list(TUTORIAL_NAMES),
                "test_class_examples": tutorial_tests,
                "note": "the solve prompt of the rounds and of every held-out evaluation is "
                "puzzleloop.prompts.solve_prompt with tutorial_examples(): P3's five tutorials only; an "
                "evaluation shows the held-out puzzle it measures only as the open target of its own prompt",
            },
        },
        "training_examples": {
            "method": "the `def f` prompt of each train.jsonl row, compared with every test instance by "
            "puzzleloop.puzzles.NearDuplicateIndex (as the contamination filter does) and by canonical_hash",
            "threshold": threshold,
            "threshold_source": "filter.contamination_threshold of the run's config.yaml",
            "examples": examples,
            "max_similarity": max(maxima, default=None),
            "at_or_above_threshold": above,
            "exact_canonical_matches": exact_total,
            "per_round": per_round,
        },
    }


def label_round(label: str) -> int | None:
    match = ROUND_LABEL.search(label)
    return int(match.group(1)) if match else None


def plot_rounds(
    rows: Sequence[dict[str, Any]], evals: Sequence[tuple[str, EvalFolder]], title: str, path: Path
) -> None:
    """pass@1 and the largest pass@k per round with 95% intervals; --eval results as labelled markers (the same k).

    Each series names its puzzle set, since the rounds may be measured on dev and the --eval runs on test.
    """
    figure = Figure(figsize=(7.2, 4.2), layout="constrained")
    axes = figure.subplots()
    keys = pass_keys({k: None for row in rows for k in row})
    if not keys:
        raise RecordError("rounds: no pass@k value to plot")
    shown = sorted({keys[0], keys[-1]}, key=lambda k: int(k[5:]))
    offsets = (0.0,) if len(shown) == 1 else (-0.04, 0.04)
    sets = ", ".join(sorted({row["heldout"] for row in rows}))
    ns = ", ".join(str(n) for n in sorted({row["n"] for row in rows if row.get("n") is not None}))
    for offset, key in zip(offsets, shown, strict=True):
        points = [row for row in rows if row.get(key) is not None]
        label = f"run {key} ({sets}, n={ns})"
        _errorbar(axes, [r["round"] + offset for r in points], points, key, label, "o", "-")
    markers = iter("DsP^vX*<>")
    placed = [(label, folder, label_round(label)) for label, folder in evals if label_round(label) is not None]
    for number, (label, folder, round_) in enumerate(placed):
        ekeys = pass_keys(folder.results)
        same_as_run = [k for k in shown if k in ekeys]  # so a baseline at n=16 still shows the run's pass@8
        for key in same_as_run or sorted({ekeys[0], ekeys[-1]}, key=lambda k: int(k[5:])):
            x = round_ + 0.14 + 0.08 * number
            text = f"{label} {key} ({folder.heldout}, n={folder.results['n']})"
            _errorbar(axes, [x], [folder.results], key, text, next(markers, "o"), "none")
    ticks = sorted({r["round"] for r in rows} | {round_ for _, _, round_ in placed})
    axes.set_xticks(ticks, ["base" if t == 0 else str(t) for t in ticks])
    axes.set_xlim(min(ticks) - 0.5, max(ticks) + 0.5)
    axes.set(xlabel="round", ylabel="pass@k (%)", title=title)
    top = max(axes.get_ylim()[1], 1.0)
    axes.set_ylim(bottom=-0.03 * top, top=top)  # a little room below 0, so points at 0 stay visible
    axes.axhline(0, color="0.6", linewidth=0.8)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize="small")
    figure.savefig(path, dpi=110)


def _errorbar(axes: Any, x: list[float], points: Sequence[dict], key: str, label: str, marker: str, line: str) -> None:
    y = [100 * p[key] for p in points]
    low = [100 * (p[key] - _interval(p, key)[0]) for p in points]
    high = [100 * (_interval(p, key)[1] - p[key]) for p in points]
    axes.errorbar(x, y, yerr=[low, high], marker=marker, linestyle=line, capsize=4, label=label)


def _interval(point: dict[str, Any], key: str) -> tuple[float, float]:
    if f"{key}_ci95" in point:
        return tuple(point[f"{key}_ci95"])  # type: ignore[return-value]
    return point[f"{key}_ci95_low"], point[f"{key}_ci95_high"]


def provenance_record(
    args: argparse.Namespace, folders: dict[int, EvalFolder], evals: list[tuple[str, EvalFolder]]
) -> dict[str, Any]:
    """What made these numbers: this checkout's commit, the commands, the machine class (no host name)."""
    import torch  # only here: the helpers above stay importable without it

    sha = git_sha()
    cuda = torch.cuda.is_available()
    return {
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": {"sha": sha.removesuffix("-dirty") if sha else None, "dirty": bool(sha and sha.endswith("-dirty"))},
        "commands": list(args.command),
        "recorded_with": command_line(),
        "run_dir": str(args.run_dir),
        "run_evals_git_sha": {
            str(r): (f.results.get("provenance") or {}).get("git_sha") for r, f in sorted(folders.items())
        },
        "evals": {
            label: {"dir": str(f.path), "git_sha": (f.results.get("provenance") or {}).get("git_sha")}
            for label, f in evals
        },
        "hardware": {
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "system": platform.system(),
            "torch_cuda_available": cuda,
            "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
            "torch_mps_available": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
        },
        "versions": package_versions(),
    }


# -- output --------------------------------------------------------------------------------------------


def csv_text(rows: Sequence[dict[str, Any]], first: Sequence[str] = ()) -> str:
    """Rows as CSV with the union of their columns in first-seen order (after `first`, so that a file without
    rows still says what it would hold); a missing value is an empty cell."""
    columns: dict[str, None] = dict.fromkeys(first)
    for row in rows:
        columns |= dict.fromkeys(row)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def summary(
    run: RunFolder, rows: list[dict[str, Any]], evals: list[tuple[str, EvalFolder]], contamination: dict, out: Path
) -> str:
    """The rounds table and the evaluations, as `puzzleloop run` and `puzzleloop eval` print them."""
    from puzzleloop.evaluate import format_table  # it imports torch; only the printing needs it

    lines = [f"run {run.path}", format_rounds_table(run.metrics), ""]
    lines += [
        f"round {r['round']}: held-out {r['heldout']} (eval of round {r['eval_of_round']}), "
        f"type errors {r['type_error_rate']:.1%}, parse errors {r['parse_error_rate']:.1%} of samples"
        for r in rows
    ]
    for label, folder in evals:
        rates = folder.rates
        lines += ["", f"eval {label}: {folder.path} (held-out {folder.heldout}, model {folder.settings.get('model')})"]
        lines += [format_table(folder.results)]
        lines += [
            f"type errors {rates['type_error_rate']:.1%}, parse errors {rates['parse_error_rate']:.1%}; solved: "
            + (", ".join(solved_puzzle_names(folder.results)) or "none")
        ]
    train = contamination["training_examples"]
    seeds = contamination["prompts"]["propose"]
    lines += [
        "",
        f"contamination: {'none found' if contamination['ok'] else 'FOUND (see contamination.json)'}; "
        f"propose-prompt seeds {seeds['seed_mentions_by_origin']} in {seeds['proposal_rows']} proposals; "
        f"{train['examples']} training examples, max similarity to a test instance {train['max_similarity']}, "
        f"{train['at_or_above_threshold']} at or above {train['threshold']}, "
        f"{train['exact_canonical_matches']} exact",
        f"wrote {', '.join(sorted(p.name for p in out.iterdir() if not p.name.startswith('.')))} to {out}",
    ]
    return "\n".join(lines)


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 2)


def parse_eval(text: str) -> tuple[str, Path]:
    label, sep, folder = text.partition("=")
    if not sep or not label.strip() or not folder.strip():
        raise argparse.ArgumentTypeError(f"expected LABEL=EVAL_DIR, got {text!r}")
    return label.strip(), Path(folder.strip())


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a finished (or stopped) `puzzleloop run` folder")
    parser.add_argument("--name", required=True, help="results folder name, e.g. cpu-quick-2024-06")
    parser.add_argument(
        "--eval",
        action="append",
        default=[],
        type=parse_eval,
        metavar="LABEL=EVAL_DIR",
        help="a standalone `puzzleloop eval` folder; LABEL@round<r> marks it at round r on the plot",
    )
    parser.add_argument("--command", action="append", default=[], help="a command that produced these numbers")
    parser.add_argument("--out-dir", type=Path, default=None, help="default: results/NAME in the current folder")


def _check_arguments(args: argparse.Namespace) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.name):
        raise RecordError(f"--name {args.name!r}: use letters, digits, '.', '_' and '-' only (it names a folder)")
    labels = Counter(label for label, _ in args.eval)
    if duplicated := [label for label, count in labels.items() if count > 1]:
        raise RecordError(f"--eval label {duplicated[0]!r} is given twice")


def run_record(args: argparse.Namespace) -> int:
    _check_arguments(args)
    out = args.out_dir or Path("results") / args.name
    if not args.run_dir.is_dir():
        raise RecordError(f"{args.run_dir}: no such run folder")
    config_path = RunLayout(args.run_dir).config
    if not config_path.is_file():
        raise RecordError(f"{config_path}: missing (the run's frozen configuration)")
    evals = [(label, read_eval_folder(folder)) for label, folder in args.eval]
    with open_run(args.run_dir) as run:
        rows, folders = round_rows(run)
        index, note = heldout_index(run)
        if index is None:
            raise RecordError(f"{run.path}: cannot check contamination: {note}")
        stats = corpus_stats(run, index, note)
        contamination = contamination_record(run, index)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "rounds.csv", csv_text(rows))
        write_text_atomic(
            out / "evals.csv", csv_text([eval_row(label, folder) for label, folder in evals], EVAL_COLUMNS)
        )
        write_json_atomic(out / "corpus.json", stats)
        write_json_atomic(out / "contamination.json", contamination)
        today = datetime.now(UTC).date().isoformat()
        title = f"{args.name}: held-out pass@k per round (95% CI), recorded {today}"
        plot_rounds(rows, evals, title, out / "rounds.png")
        write_json_atomic(out / "provenance.json", provenance_record(args, folders, evals))
        shutil.copyfile(config_path, out / CONFIG_FILE)
        print(summary(run, rows, evals, contamination, out))
    if not contamination["ok"]:
        print(f"error: contamination found; see {out / 'contamination.json'}", file=sys.stderr)
        return 1
    return 0
