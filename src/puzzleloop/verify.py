"""`puzzleloop verify`: judge a JSONL file of (sat, sol) pairs with the sandbox, one verdict row per input row.

Input rows are {"id", "sat", "sol"} (or "f"/"g"); output rows {"id", "status", "reason", "seconds"} in input
order. A malformed row gets `rejected` with a reason naming its line; the output is written atomically.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from sandbox import STATUSES, Judge, Limits, Verdict
from tqdm import tqdm

from puzzleloop.arguments import positive_float, positive_int
from puzzleloop.files import write_jsonl_atomic


class VerifyError(ValueError):
    """The pairs file or the output path cannot be used, or a limit is out of range; said before any judging."""


def _parse_row(line: str, lineno: int) -> tuple[Any, tuple[str, str] | str]:
    """(id, (sat, sol)) for a good row, (id or None, reason) for a malformed one."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"line {lineno}: invalid JSON ({exc.msg})"
    if not isinstance(row, dict):
        return None, f"line {lineno}: expected a JSON object, got {type(row).__name__}"
    row_id = row.get("id")
    sat = row["sat"] if "sat" in row else row.get("f")
    sol = row["sol"] if "sol" in row else row.get("g")
    for field, value in (("sat", sat), ("sol", sol)):
        if not isinstance(value, str):
            return row_id, f"line {lineno}: field {field!r} (or its f/g alias) must be a string"
    return row_id, (sat, sol)


def verify_file(
    pairs_path: Path, out_path: Path, timeout: float, memory_mb: int, workers: int, progress: bool = True
) -> dict[str, int]:
    """Judge every row of pairs_path into out_path; return how many rows got each status."""
    pairs_path, out_path = Path(pairs_path), Path(out_path)
    if not pairs_path.is_file():
        raise VerifyError(f"{pairs_path}: {'a folder, not' if pairs_path.is_dir() else 'no such'} pairs file")
    if out_path.is_dir():
        raise VerifyError(f"{out_path}: a folder; --out names the verdicts file, e.g. {out_path / 'verdicts.jsonl'}")
    ancestor = next(p for p in (out_path.parent, *out_path.parent.parents) if p.exists())
    if not ancestor.is_dir():
        raise VerifyError(f"{out_path}: cannot be written, {ancestor} is a file")
    try:  # the Judge checks its settings here, and starts its warm parent only when it first judges
        judge = Judge(workers=workers, limits=Limits(timeout=timeout, memory_mb=memory_mb))
    except ValueError as error:
        raise VerifyError(str(error)) from None
    ids: list[Any] = []
    jobs: list[tuple[int, tuple[str, str]]] = []
    verdicts: list[Verdict | None] = []
    with pairs_path.open(encoding="utf-8", errors="replace") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            row_id, parsed = _parse_row(line, lineno)
            ids.append(row_id)
            if isinstance(parsed, str):
                verdicts.append(Verdict("rejected", f"{pairs_path}: {parsed}", 0.0))
            else:
                jobs.append((len(verdicts), parsed))
                verdicts.append(None)
    with (
        tqdm(total=len(jobs), disable=not progress or len(jobs) < 100, unit="pair", desc="verify") as bar,
        judge,
    ):
        results = judge.judge([pair for _, pair in jobs], progress=bar.update)
    for (slot, _), verdict in zip(jobs, results, strict=True):
        verdicts[slot] = verdict
    rows = [
        {"id": row_id, "status": v.status, "reason": v.reason, "seconds": v.seconds}
        for row_id, v in zip(ids, verdicts, strict=True)
        if v is not None
    ]
    write_jsonl_atomic(out_path, rows)
    counts = Counter(v.status for v in verdicts if v is not None)
    return {status: counts[status] for status in STATUSES if counts[status]}


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    """The `puzzleloop verify` options."""
    defaults = Limits()
    parser.add_argument("pairs", type=Path, help="JSONL rows {id, sat, sol} (or f/g)")
    parser.add_argument("--out", type=Path, required=True, help="JSONL verdict rows, in input order")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=defaults.timeout,
        help="wall-clock seconds per check, sol and sat together (default: %(default)s)",
    )
    parser.add_argument("--memory-mb", type=int, default=defaults.memory_mb, help="address-space cap per process")
    parser.add_argument(
        "--workers", type=positive_int, default=max(1, min(os.cpu_count() or 2, 8)), help="checks judged at once"
    )


def run_verify(args: argparse.Namespace) -> int:
    """Run `puzzleloop verify`; exit 0 once every row has a verdict."""
    counts = verify_file(args.pairs, args.out, args.timeout, args.memory_mb, args.workers)
    print(" ".join(f"{status}={count}" for status, count in counts.items()) or "no rows")
    return 0
