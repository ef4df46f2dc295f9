"""The warm parent: a clean interpreter that owns the worker processes and enforces every deadline.

Started by Judge with `python -I -S` (no site, no environment, no torch threads), it imports the checker once
so forks are cheap, then serves judge requests on stdin/stdout. Workers get batches; each reply line restarts
the clock for the next check, so every check has its own wall-clock deadline, enforced with SIGKILL. A worker
is replaced after a timeout, a memory verdict, a death or `checks_per_worker` checks; what it reports back is
capped and parsed strictly.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.api import STATUSES
from sandbox.check import warm_up
from sandbox.harden import NOBODY, build_seccomp_filter
from sandbox.protocol import MAX_REPLY_LINE, parse_reply, read_frame, write_frame
from sandbox.worker import serve

STARTUP_SECONDS = 10.0
BATCH_BYTES = 48_000  # below the pipe buffer, so handing a batch over never blocks the parent
MAX_BATCH = 32

Row = tuple[int, str, str, float]  # (pair index, status, reason, seconds)


@dataclass
class Worker:
    """The parent's view of one forked worker and the batch it is working through."""

    pid: int
    task_fd: int
    reply_fd: int
    scratch: str
    spawned: float
    ready: bool = False
    batch: list[int] = field(default_factory=list)  # pair indices, in the order the worker runs them
    position: int = 0
    started: float = 0.0
    done: int = 0
    buffer: bytearray = field(default_factory=bytearray)


def _death_verdict(status_word: int, ready: bool) -> tuple[str, str]:
    if not ready:
        return "crashed", f"worker failed to start (wait status {status_word})"
    if os.WIFSIGNALED(status_word):
        sig = os.WTERMSIG(status_word)
        if sig == signal.SIGXCPU:
            return "timeout", "CPU time limit exceeded"
        if sig == signal.SIGKILL:
            return "memory", "worker killed by SIGKILL (out of memory)"
        return "error", f"worker died from {signal.Signals(sig).name}"
    return "error", f"worker exited with code {os.WEXITSTATUS(status_word)}"


class Pool:
    """A fixed number of worker slots, filled lazily and refilled after every retirement."""

    def __init__(self, size: int, limits: dict[str, Any], seccomp_filter: Any, warn: Callable[[str], None]):
        self.size = size
        self.limits = limits
        self.timeout = float(limits["timeout"])
        self.seccomp_filter = seccomp_filter
        self.warn = warn
        self.slots: list[Worker | None] = [None] * size

    def _spawn(self) -> Worker:
        scratch = tempfile.mkdtemp(prefix="sandbox-worker-")
        if os.geteuid() == 0:
            os.chown(scratch, NOBODY, NOBODY)
        task_r, task_w = os.pipe()
        reply_r, reply_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            serve(task_r, reply_w, scratch, self.limits, self.seccomp_filter)
        os.close(task_r)
        os.close(reply_w)
        return Worker(pid, task_w, reply_r, scratch, time.monotonic())

    def _retire(self, slot: int) -> int:
        """Kill the slot's worker (if still alive), reap it and clean up; return its wait status."""
        worker = self.slots[slot]
        assert worker is not None
        self.slots[slot] = None
        try:
            os.kill(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status_word = os.waitpid(worker.pid, 0)
        os.close(worker.task_fd)
        os.close(worker.reply_fd)
        shutil.rmtree(worker.scratch, ignore_errors=True)
        return status_word

    def _abort(self, slot: int, queue: deque[int], status: str | None, reason: str) -> Row:
        """End the slot's current check with a verdict, requeue the rest of its batch, replace the worker."""
        worker = self.slots[slot]
        assert worker is not None
        index = worker.batch[worker.position]
        elapsed = time.monotonic() - worker.started if worker.ready else 0.0
        queue.extendleft(reversed(worker.batch[worker.position + 1:]))
        status_word = self._retire(slot)
        if status is None:
            status, reason = _death_verdict(status_word, worker.ready)
        return index, status, reason, round(min(elapsed, self.timeout) if status == "timeout" else elapsed, 6)

    def _dispatch(self, slot: int, pairs: list[tuple[str, str]], queue: deque[int]) -> None:
        worker = self.slots[slot]
        if worker is None:
            worker = self.slots[slot] = self._spawn()
        size, chunk = 0, max(1, min(MAX_BATCH, len(queue) // (2 * self.size)))
        batch: list[int] = []
        while queue and len(batch) < chunk and (not batch or size < BATCH_BYTES):
            index = queue.popleft()
            batch.append(index)
            size += len(pairs[index][0]) + len(pairs[index][1])
        worker.batch, worker.position, worker.started = batch, 0, time.monotonic()
        write_frame(worker.task_fd, [(i, pairs[index][0], pairs[index][1]) for i, index in enumerate(batch)])

    def _read(self, slot: int, queue: deque[int], rows: list[Row]) -> None:
        worker = self.slots[slot]
        assert worker is not None
        data = os.read(worker.reply_fd, 65536)
        if not data:
            rows.append(self._abort(slot, queue, None, ""))
            return
        worker.buffer += data
        while (end := worker.buffer.find(b"\n")) >= 0:
            line = bytes(worker.buffer[:end])
            del worker.buffer[:end + 1]
            if not worker.ready:
                worker.ready, worker.started = True, time.monotonic()
                if line.startswith(b"ready\t") and line[6:]:
                    self.warn(line[6:].decode("utf-8", "replace"))
                continue
            try:
                position, status, seconds, reason = parse_reply(line, STATUSES)
                if position != worker.position:
                    raise ValueError(f"reply for check {position}, expected {worker.position}")
            except ValueError as exc:
                rows.append(self._abort(slot, queue, "crashed", f"bad worker reply: {exc}"))
                return
            rows.append((worker.batch[position], status, reason, round(seconds, 6)))
            worker.position += 1
            worker.done += 1
            worker.started = time.monotonic()
            if status == "memory":  # the heap may be fragmented or near the cap: start clean
                if worker.position < len(worker.batch):
                    queue.extendleft(reversed(worker.batch[worker.position:]))
                self._retire(slot)
                return
            if worker.position == len(worker.batch):
                worker.batch = []
                if worker.done >= int(self.limits["checks_per_worker"]):
                    self._retire(slot)
                return
        if len(worker.buffer) > MAX_REPLY_LINE:
            rows.append(self._abort(slot, queue, "crashed", "worker reply too long"))

    def run(self, pairs: list[tuple[str, str]], emit: Callable[[list[Row]], None]) -> None:
        """Judge every pair, emitting verdict rows as they arrive (in completion order)."""
        queue: deque[int] = deque(range(len(pairs)))
        remaining = len(pairs)
        while remaining:
            for slot in range(self.size):
                worker = self.slots[slot]
                if queue and (worker is None or not worker.batch):
                    self._dispatch(slot, pairs, queue)
            busy = {w.reply_fd: slot for slot, w in enumerate(self.slots) if w is not None and w.batch}
            now = time.monotonic()
            deadlines = [self._deadline(w) for w in self.slots if w is not None and w.batch]
            wait = max(0.0, min(deadlines) - now) if deadlines else 0.0
            readable, _, _ = select.select(list(busy), [], [], wait)
            rows: list[Row] = []
            for fd in readable:
                slot = busy[fd]
                if self.slots[slot] is not None and self.slots[slot].reply_fd == fd:
                    self._read(slot, queue, rows)
            now = time.monotonic()
            for slot, worker in enumerate(self.slots):
                if worker is not None and worker.batch and now > self._deadline(worker):
                    if worker.ready:
                        rows.append(self._abort(slot, queue, "timeout", f"exceeded {self.timeout:g} s"))
                    else:
                        rows.append(self._abort(slot, queue, "crashed", "worker did not start in time"))
            if rows:
                remaining -= len(rows)
                emit(rows)

    def _deadline(self, worker: Worker) -> float:
        if not worker.ready:
            return worker.spawned + STARTUP_SECONDS + self.timeout
        return worker.started + self.timeout

    def close(self) -> None:
        for slot, worker in enumerate(self.slots):
            if worker is not None:
                self._retire(slot)


def main() -> None:
    """Serve judge requests on stdin; replies go to the original stdout, stray prints to stderr."""
    sys.set_int_max_str_digits(0)  # P3 predates the 3.11 limit; honest puzzles print huge ints
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    init = read_frame(0)
    if init is None:
        return
    seen: set[str] = set()

    def warn(text: str) -> None:
        for part in text.split("; "):
            if part and part not in seen:
                seen.add(part)
                write_frame(reply_fd, ("warning", part))

    warm_up()
    seccomp_filter, warnings = build_seccomp_filter()
    for text in warnings:
        warn(text)
    pool = Pool(int(init["workers"]), init["limits"], seccomp_filter, warn)
    write_frame(reply_fd, ("ready",))
    try:
        while (request := read_frame(0)) is not None:
            pool.run(request, lambda rows: write_frame(reply_fd, ("verdicts", rows)))
            write_frame(reply_fd, ("done",))
    finally:
        pool.close()
