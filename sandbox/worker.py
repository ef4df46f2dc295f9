"""A child's whole life: enter the jail, run one half of one check, write one reply line, exit.

Forked from the warm parent with the work already in memory, it never returns (os._exit), so no parent state is
unwound in the child and nothing of it outlives the check.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NoReturn

from sandbox.harden import REPLY_FD, Jail
from sandbox.protocol import format_reply

JAIL_FAILED = 70  # exit code of a child that could not lock itself in: the judge's fault, not the program's

Work = Callable[[], tuple[str, str, str]]  # -> (status, reason, answer JSON or "")


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(REPLY_FD, view) :]


def run_child(jail: Jail, reply_fd: int, memory_mb: int, cpu_seconds: float, max_reason: int, work: Work) -> NoReturn:
    """Run in the forked child only."""
    code = JAIL_FAILED
    try:
        warnings = jail.enter(reply_fd, memory_mb, cpu_seconds)
        code = 0
        try:
            status, reason, answer = work()
        except MemoryError:
            status, reason, answer = "memory", "out of memory while judging", ""
        _write_all(format_reply(status, reason, warnings, answer, max_reason))
    except BaseException:
        code = code or 71
    finally:
        os._exit(code)
