"""Held-out evaluation: sample solutions with the few-shot prompt, judge them in the sandbox, report pass@k.
`evaluate_samples` judges samples produced elsewhere the same way (puzzleloop.external_samples).

Samples are appended to `samples.jsonl` a block of puzzles at a time, so a rerun into the same folder resumes
after the last finished block; `results.json` is written once every puzzle has its n samples.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sandbox import STATUSES, Judge, Limits

from puzzleloop.config import EvalConfig
from puzzleloop.data import P3Instance, load_heldout
from puzzleloop.external_samples import ExternalSample, read_samples
from puzzleloop.files import append_jsonl, read_jsonl_objects, write_json_atomic, write_jsonl_atomic
from puzzleloop.metrics import summarise
from puzzleloop.models import load_model
from puzzleloop.processes import is_main, shared
from puzzleloop.prompts import SolvedExample, solution_from_completion, solve_prompt, tutorial_examples
from puzzleloop.provenance import provenance
from puzzleloop.puzzles import Puzzle, parse_puzzle
from puzzleloop.sampling import Sampler, SamplingConfig

SAMPLES_FILE = "samples.jsonl"
RESULTS_FILE = "results.json"
# Settings that change what a sample means: a resumed run must use the same ones (settings.json, flat).
RESUME_KEYS = ("model", "heldout", "n", "temperature", "top_p", "max_new_tokens", "seed", "timeout", "memory_mb")


def resume_settings(config: EvalConfig) -> dict[str, Any]:
    """The RESUME_KEYS values of `config`, its sampling settings included."""
    flat = {f.name: getattr(config, f.name) for f in fields(config)} | asdict(config.sampling)
    return {key: flat[key] for key in RESUME_KEYS}


class EvalError(RuntimeError):
    """The output folder holds an evaluation made with other settings."""


def heldout_puzzles(config: EvalConfig) -> list[tuple[P3Instance, Puzzle]]:
    instances = load_heldout(config.heldout, config.p3_dir)
    if config.limit is not None:
        instances = instances[: config.limit]
    return [(instance, parse_puzzle(instance.sat, instance.name)) for instance in instances]


def _check_resumable(output_dir: Path, config: EvalConfig) -> None:
    settings_path = output_dir / "settings.json"
    wanted = resume_settings(config)
    if settings_path.exists():
        try:
            stored = json.loads(settings_path.read_text())
        except json.JSONDecodeError as e:
            raise EvalError(f"{settings_path}: not JSON ({e.msg}); choose another folder") from None
        changed = {k: (stored.get(k), v) for k, v in wanted.items() if stored.get(k) != v}
        if changed:
            details = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise EvalError(f"{output_dir} holds an evaluation with other settings ({details}); choose another folder")
    elif is_main():
        write_json_atomic(settings_path, wanted)


def _completed_samples(path: Path, n: int) -> dict[str, list[dict]]:
    """Samples of puzzles that have all n, rewriting the file without a torn last line or the puzzles of a block
    a kill left part-written (they are sampled again); a damaged line anywhere else is refused."""
    rows = read_jsonl_objects(path, EvalError, torn_tail=True)
    by_puzzle: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_puzzle[row["puzzle"]].append(row)
    complete = {name: sorted(r, key=lambda r: r["sample"]) for name, r in by_puzzle.items() if len(r) == n}
    kept = [row for rows_ in complete.values() for row in rows_]
    torn = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    if (torn or len(kept) != len(rows)) and is_main():  # a torn tail would glue itself to the next appended row
        write_jsonl_atomic(path, kept)
    return complete


def evaluate(
    config: EvalConfig,
    output_dir: Path,
    *,
    model: Any = None,
    tokenizer: Any = None,
    judge: Judge | None = None,
    progress: bool = True,
    given: dict[str, list[ExternalSample]] | None = None,
) -> dict[str, Any]:
    """Run (or resume) one evaluation into `output_dir` and return the contents of results.json. With `given`
    (samples produced elsewhere, by puzzle), those are judged and nothing is sampled."""
    started = time.time()
    puzzles = heldout_puzzles(config)  # a wrong --heldout fails here, before the folder records any settings
    if output_dir.exists() and not output_dir.is_dir():
        raise EvalError(f"{output_dir}: not a folder; --output-dir names the folder for results.json and samples.jsonl")
    output_dir.mkdir(parents=True, exist_ok=True)
    _check_resumable(output_dir, config)
    samples_path = output_dir / SAMPLES_FILE
    done = _completed_samples(samples_path, config.n)
    pending = [p for p in puzzles if p[0].name not in done]
    stored = _stored_results(output_dir / RESULTS_FILE)
    if not pending and stored is not None and stored.get("settings") == json.loads(json.dumps(asdict(config))):
        return stored  # the same evaluation, finished earlier: its timings and provenance stand

    sampling_seconds = 0.0
    generated_tokens = 0
    if pending:
        if given is None:
            if model is None:
                model, tokenizer = load_model(config.model, config.device)
            sampler = Sampler(model, tokenizer)
            examples = tutorial_examples(config.p3_dir)
        own_judge = judge is None
        if judge is None:
            judge = Judge(workers=config.workers, limits=Limits(timeout=config.timeout, memory_mb=config.memory_mb))
        try:
            step = max(1, config.block_sequences // config.n)
            for start in range(0, len(puzzles), step):
                block = [
                    (k - start, p) for k, p in enumerate(puzzles[start : start + step], start) if p[0].name not in done
                ]
                if not block:
                    continue
                if given is None:
                    shown = progress and is_main()
                    label = f"eval {start + 1}-{start + len(block)}/{len(puzzles)}" if shown else False
                    tick = time.time()
                    work = partial(_sample_and_judge, sampler, judge, examples, config, start, label)
                    rows = _flat(shared(block, work))
                    sampling_seconds += time.time() - tick
                    generated_tokens += sum(row["tokens"] for row in rows)
                else:
                    rows = _flat(shared(block, partial(_judged_given, judge, given)))
                if is_main():
                    append_jsonl(samples_path, rows)
                for row in rows:
                    done.setdefault(row["puzzle"], []).append(row)
        finally:
            if own_judge:
                judge.close()

    results = _results(config, puzzles, done, time.time() - started, sampling_seconds, generated_tokens)
    if is_main():
        write_json_atomic(output_dir / RESULTS_FILE, results)
    return results


def _stored_results(path: Path) -> dict[str, Any] | None:
    """A finished evaluation's results.json, or None when it is missing or unreadable (then it is rebuilt)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _sample_and_judge(
    sampler: Sampler,
    judge: Judge,
    examples: Sequence[SolvedExample],
    config: EvalConfig,
    seed_offset: int,
    label: str | bool,
    block: Sequence[tuple[int, tuple[P3Instance, Puzzle]]],
) -> list[list[dict[str, Any]]]:
    """n samples for each (seed id, puzzle) of a block, each judged; per puzzle, one samples.jsonl row per sample."""
    sampling = SamplingConfig.of(
        config.sampling, batch_size=config.batch_size, seed=config.seed * 1_000_003 + seed_offset
    )
    prompts = [solve_prompt(puzzle, examples) for _, (_, puzzle) in block]
    completions = sampler.sample(prompts, config.n, sampling, label, seed_ids=[i for i, _ in block])
    samples = [
        [ExternalSample("completion", c.text, solution_from_completion(puzzle, c.text)) for c in puzzle_completions]
        for (_, (_, puzzle)), puzzle_completions in zip(block, completions, strict=True)
    ]
    rows = _judged(judge, [p for _, p in block], samples)
    for puzzle_rows, puzzle_completions in zip(rows, completions, strict=True):
        for row, completion in zip(puzzle_rows, puzzle_completions, strict=True):
            row["tokens"] = completion.num_tokens
    return rows


def _judged(
    judge: Judge, block: Sequence[tuple[P3Instance, Puzzle]], samples: Sequence[Sequence[ExternalSample]]
) -> list[list[dict[str, Any]]]:
    """For each puzzle of the block, one samples.jsonl row per sample, with its verdict."""
    rows, pairs = [], []
    for (instance, puzzle), puzzle_samples in zip(block, samples, strict=True):
        rows.append([])
        for j, sample in enumerate(puzzle_samples):
            pairs.append((puzzle.source, sample.program))
            rows[-1].append(
                {"puzzle": instance.name, "module": instance.module, "sample": j, sample.field: sample.text}
            )
    for row, verdict in zip(_flat(rows), judge.judge(pairs), strict=True):
        row.update(status=verdict.status, reason=verdict.reason, seconds=verdict.seconds)
    return rows


def _judged_given(
    judge: Judge, given: dict[str, list[ExternalSample]], block: Sequence[tuple[int, tuple[P3Instance, Puzzle]]]
) -> list[list[dict[str, Any]]]:
    """`_judged` for samples produced elsewhere, by puzzle name."""
    return _judged(judge, [p for _, p in block], [given[instance.name] for _, (instance, _) in block])


def _flat(rows: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [row for puzzle_rows in rows for row in puzzle_rows]


def evaluate_samples(
    config: EvalConfig, samples_path: Path, output_dir: Path, *, judge: Judge | None = None
) -> dict[str, Any]:
    """Judge a samples file produced elsewhere on `config.heldout`, into the files a sampled evaluation writes.
    Its n is the file's samples per puzzle; its model is recorded as `samples:<file>`."""
    puzzles = heldout_puzzles(config)
    given = read_samples(samples_path, puzzles)
    n = len(next(iter(given.values())))
    config = replace(config, model=f"samples:{samples_path.resolve()}", n=n)
    return evaluate(config, output_dir, judge=judge, progress=False, given=given)


def _results(
    config: EvalConfig,
    puzzles: Sequence[tuple[P3Instance, Puzzle]],
    samples: dict[str, list[dict]],
    wall_seconds: float,
    sampling_seconds: float,
    generated_tokens: int,
) -> dict[str, Any]:
    outcomes = [[row["status"] == "verified" for row in samples[i.name]] for i, _ in puzzles]
    summary = summarise(outcomes, config.k, seed=config.seed)
    by_module: dict[str, list[list[bool]]] = defaultdict(list)
    for (instance, _), outcome in zip(puzzles, outcomes, strict=True):
        by_module[instance.module or "(none)"].append(outcome)
    statuses = Counter(row["status"] for i, _ in puzzles for row in samples[i.name])
    return {
        "heldout": config.heldout,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": asdict(config),
        **summary,
        "per_module": {
            module: {"puzzles": len(o), "solved": sum(any(x) for x in o), "pass@1": summarise(o, (1,))["pass@1"]}
            for module, o in sorted(by_module.items())
        },
        "per_puzzle": {i.name: sum(o) for (i, _), o in zip(puzzles, outcomes, strict=True)},
        "solved_puzzles": sum(any(o) for o in outcomes),
        "status_counts": {status: statuses.get(status, 0) for status in STATUSES},
        "tokens_generated_this_run": generated_tokens,
        "tokens_per_second": generated_tokens / sampling_seconds if sampling_seconds else None,
        "wall_seconds_this_run": wall_seconds,
        "provenance": provenance(),
    }


def format_table(results: dict[str, Any]) -> str:
    """A short human-readable summary of results.json."""
    when = f", finished {results['finished_at']}" if results.get("finished_at") else ""
    lines = [
        f"held-out set: {results['settings']['heldout']}{when}",
        f"{'metric':<16}{'value':>9}  95% interval",
        "-" * 44,
    ]
    for key in (k for k in results if k.startswith("pass@") and not k.endswith("_ci95")):
        low, high = results[f"{key}_ci95"]
        k = key.split("@")[1]
        lines.append(f"{key:<16}{results[key]:>9.2%}  [{low:.2%}, {high:.2%}]")
        lines.append(f"{'solved≤' + k:<16}{results['solved_within@' + k]:>9.2%}")
    lines.append(f"solved puzzles: {results['solved_puzzles']} of {results['puzzles']} (n={results['n']})")
    lines.append("statuses: " + ", ".join(f"{s}={c}" for s, c in results["status_counts"].items() if c))
    if results.get("tokens_per_second"):
        wall = results["wall_seconds_this_run"]
        lines.append(f"sampling: {results['tokens_per_second']:.1f} tokens/s; wall time {wall:.0f}s")
    return "\n".join(lines)
