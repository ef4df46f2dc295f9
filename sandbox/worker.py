"""The worker loop: a forked, hardened process that judges batches from its parent, one reply line per check.

The parent times every check from the previous reply, so a check that hangs is killed on its own deadline
and the rest of its batch goes to a fresh worker.
"""

from __future__ import annotations

import os
import time
from typing import Any

from sandbox.check import Checker
from sandbox.harden import REPLY_FD, TASK_FD, harden, set_cpu_budget
from sandbox.protocol import format_reply, read_frame


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(REPLY_FD, view):]


def serve(task_fd: int, reply_fd: int, scratch: str, limits: dict[str, Any], seccomp_filter: Any) -> None:
    """Run in the forked child; never returns (os._exit), so no parent state is unwound in the child."""
    code = 0
    try:
        warnings = harden(task_fd, reply_fd, scratch, int(limits["memory_mb"]), seccomp_filter)
        _write_all(("ready\t" + "; ".join(warnings).replace("\n", " ") + "\n").encode())
        checker = Checker()
        max_reason = int(limits["max_reason_chars"])
        cpu_budget = float(limits["timeout"]) + 1.0
        while (batch := read_frame(TASK_FD)) is not None:
            for index, sat, sol in batch:
                set_cpu_budget(cpu_budget)
                start = time.process_time()
                try:
                    status, reason = checker.check(sat, sol)
                except MemoryError:
                    status, reason = "memory", "out of memory while judging"
                except BaseException as exc:  # a judge bug: say so rather than blame the program
                    status, reason = "crashed", f"judge error {type(exc).__name__}"
                _write_all(format_reply(index, status, time.process_time() - start, reason, max_reason))
    except BaseException:
        code = 70
    finally:
        os._exit(code)
