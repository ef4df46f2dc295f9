"""Framing between the judge, its warm parent and the children.

Judge <-> parent carry length-prefixed marshal data: plain values only, each reader trusts its writer, and the
parent never runs program code. (marshal needs no extension module, so the parent maps fewer libraries, and
each of its forks copies fewer mappings.) Child -> parent is the one channel written by a process that ran
hostile code, so it is one line of tab-separated text, parsed strictly and capped: status, reason, warnings,
and (from sol's child) the answer as JSON. Nothing flows from the parent to a child: a child is forked with
everything it needs already in memory.
"""

from __future__ import annotations

import marshal
import os
from typing import Any

_HEADER_BYTES = 4
# The most a child's reply may hold, by stage: sol's answer of more than 32 MiB as JSON is refused, not handed to
# sat; sat says only a verdict; a program's value (Judge.outputs) becomes a puzzle's literal, so it is kept small.
MAX_REPLY = {"sol": 32 << 20, "sat": 8192, "program": 1 << 16}


def write_frame(fd: int, obj: Any) -> None:
    """Send one plain value (None, bool, int, float, str, bytes, and tuples, lists, dicts of them)."""
    payload = marshal.dumps(obj)
    view = memoryview(len(payload).to_bytes(_HEADER_BYTES, "big") + payload)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> Any:
    """The next object from a trusted writer, or None at end of stream."""
    header = _read_exact(fd, _HEADER_BYTES)
    if header is None:
        return None
    payload = _read_exact(fd, int.from_bytes(header, "big"))
    return None if payload is None else marshal.loads(payload)


def _clean(text: str, limit: int) -> str:
    return text.replace("\t", " ").replace("\n", " ").replace("\r", " ")[:limit]


def format_reply(status: str, reason: str, warnings: list[str], answer: str, max_reason: int) -> bytes:
    """A child's one reply line (answer is JSON with ASCII escapes, so it holds no tab or newline)."""
    return f"{status}\t{_clean(reason, max_reason)}\t{_clean('; '.join(warnings), 1000)}\t{answer}\n".encode(
        "utf-8", "replace"
    )


def parse_reply(data: bytes, statuses: tuple[str, ...]) -> tuple[str, str, list[str], str]:
    """Strict inverse of format_reply for one complete line; ValueError for anything else."""
    if not data.endswith(b"\n") or data.count(b"\n") != 1:
        raise ValueError("not one complete line")
    status, reason, warnings, answer = data[:-1].decode("utf-8", "replace").split("\t", 3)
    if status not in statuses:
        raise ValueError(f"unknown status {status[:40]!r}")
    return status, reason, [w for w in warnings.split("; ") if w], answer
