"""Framing between the judge, its warm parent and the workers.

Judge <-> parent and parent -> worker carry length-prefixed pickles: their readers trust their writers (the
parent never runs program code; a worker only reads what the parent wrote). Worker -> parent is the one
channel written by a process that ran hostile code, so it is plain text lines, parsed strictly and capped.
"""

from __future__ import annotations

import os
import pickle
import struct
from typing import Any

_HEADER = struct.Struct(">I")
MAX_REPLY_LINE = 4096


def write_frame(fd: int, obj: Any) -> None:
    """Send one object as a length-prefixed pickle on a raw descriptor."""
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view):]


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
    header = _read_exact(fd, _HEADER.size)
    if header is None:
        return None
    payload = _read_exact(fd, _HEADER.unpack(header)[0])
    return None if payload is None else pickle.loads(payload)


def format_reply(index: int, status: str, seconds: float, reason: str, max_reason: int) -> bytes:
    """A worker's verdict line: index, status, CPU seconds, reason (tabs/newlines removed, cut)."""
    clean = reason.replace("\t", " ").replace("\n", " ").replace("\r", " ")[:max_reason]
    return f"{index}\t{status}\t{seconds:.6f}\t{clean}\n".encode("utf-8", "replace")


def parse_reply(line: bytes, statuses: tuple[str, ...]) -> tuple[int, str, float, str]:
    """Strict inverse of format_reply; ValueError for anything else."""
    index_text, status, seconds_text, reason = line.decode("utf-8", "replace").split("\t", 3)
    index, seconds = int(index_text), float(seconds_text)
    if status not in statuses or not 0 <= seconds < 1e6:
        raise ValueError(f"bad reply {line[:80]!r}")
    return index, status, seconds, reason
