"""Crash-safe file helpers: whole files appear atomically, appended JSONL rows are fsynced."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class DamagedFileError(ValueError):
    """A stored file holds a line that is neither valid nor a torn last line; the message names file and line."""


_UMASK = os.umask(0)
os.umask(_UMASK)


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared like any file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_jsonl_atomic(path: Path, rows: Iterable[dict]) -> None:
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def append_jsonl(path: Path, rows: Iterable[dict]) -> None:
    """Append rows and fsync, so a kill loses at most the rows of the write in flight."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(row) + "\n" for row in rows))
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl_objects(
    path: Path,
    error: type[Exception] = DamagedFileError,
    *,
    torn_tail: bool = False,
) -> list[dict]:
    """Rows of a JSONL file, each a JSON object; a bad line raises `error` naming the file and line.

    With `torn_tail`, the file is one we append to and may not exist yet: an unterminated last line that does not
    parse is what a kill in the middle of a write leaves, and is left out (the caller rewrites the file without
    it). Any other bad line is damage, never a crash artefact, so it is refused and the file left as it is.
    """
    if torn_tail and not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    last = len(lines)  # the piece after the final newline: "" for a complete file
    rows: list[dict] = []
    for number, line in enumerate(lines, start=1):
        if number == last and not line:
            break
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if torn_tail and number == last:
                break
            kept = "; it was left as it is (only a torn last line is repaired)" if torn_tail else ""
            raise error(f"{path}: line {number}: not JSON ({e.msg}){kept}") from None
        if not isinstance(row, dict):
            raise error(f"{path}: line {number}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows
