"""The warm parent: a clean interpreter that forks a fresh child for each half of each check and enforces every
deadline.

Started by Judge with `python -I -S` (no site, no environment, no torch threads), it imports the allowed modules
and the checker and runs one honest check of its own before serving, so forks are cheap and children never need
to open a file. It compiles each puzzle once (compiling is parsing and rewriting, never running) and then, for
each pair, forks one child that runs sol and reports its answer as JSON, and, if that succeeded, a second child,
forked from the same clean state, that runs sat on the decoded answer. So no process state survives from one
check to the next, and nothing sol's code touched can reach sat: isolation comes from the process boundary, not
from catching each trick. Each check has one wall-clock deadline for both halves, enforced with SIGKILL.
The parent never writes to a child, so no child's death can break one of its writes.
"""

from __future__ import annotations

import functools
import gc
import os
import select
import signal
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.check import Program, compile_sat, run_program, run_sat, run_sol, warm_up
from sandbox.harden import Jail
from sandbox.policy import PolicyError
from sandbox.protocol import MAX_REPLY, parse_reply, read_frame, write_frame
from sandbox.worker import JAIL_FAILED, Work, run_child

SAT_CACHE_SIZE = 512
# What each child may report. Only sat's child can say `verified`: sol's child ran the solution, so whatever it
# claims beyond "here is my answer" (`ok`) or how it failed is ignored. A program's child (Judge.outputs: the
# second half runs a program on sol's answer instead of sat) reports the program's value with `ok`.
STAGE_STATUSES = {
    "sol": ("ok", "rejected", "type_error", "error", "memory"),
    "sat": ("verified", "wrong", "type_error", "error", "memory"),
    "program": ("ok", "type_error", "error", "memory"),
}
SECOND_STAGE = {"judge": "sat", "outputs": "program"}  # what runs on sol's answer, per request mode


def _judged(sat: Program, answer: str) -> tuple[str, str, str]:
    return (*run_sat(sat, answer), "")


_SECOND_HALVES = {"sat": _judged, "program": run_program}

Row = tuple[int, str, str, float, str, str]  # (pair index, status, reason, CPU seconds, answer, value)


@dataclass
class Child:
    """The parent's view of one forked child: which half of which check it runs, and what it has said."""

    pid: int
    fd: int
    stage: str  # "sol" or "sat"
    index: int
    deadline: float
    seconds: float = 0.0  # CPU seconds of this check's earlier half
    answer: str = ""  # sol's answer as JSON, kept for an outputs request's row
    buffer: bytearray = field(default_factory=bytearray)


def _death_verdict(status_word: int) -> tuple[str, str]:
    """A child that ended without a reply: its wait status says why."""
    if os.WIFSIGNALED(status_word):
        sig = os.WTERMSIG(status_word)
        if sig == signal.SIGXCPU:
            return "timeout", "CPU time limit exceeded"
        if sig == signal.SIGKILL:
            return "memory", "killed by SIGKILL (out of memory)"
        return "error", f"died from {signal.Signals(sig).name}"
    code = os.WEXITSTATUS(status_word)
    if code == JAIL_FAILED:
        return "crashed", "the child could not enter its jail"
    return "error", f"the program ended its process (exit code {code})"


class Pool:
    """At most `size` checks in flight, each in a child of its own."""

    def __init__(self, size: int, limits: dict[str, Any], jail: Jail, warn: Callable[[str], None]) -> None:
        self.size = size
        self.second = "sat"  # the stage forked on sol's answer: set per request by run()
        self.timeout = float(limits["timeout"])
        self.memory_mb = int(limits["memory_mb"])
        self.max_reason = int(limits["max_reason_chars"])
        self.jail = jail
        self.warn = warn
        self.children: dict[int, Child] = {}
        self._sats: OrderedDict[str, Program | str] = OrderedDict()

    def _sat(self, source: str) -> Program | str:
        """The compiled puzzle, or why it was refused; least recently used puzzles are dropped first."""
        cached = self._sats.get(source)
        if cached is None:
            try:
                cached = compile_sat(source)
            except PolicyError as exc:
                cached = f"sat: {exc}"
            self._sats[source] = cached
            if len(self._sats) > SAT_CACHE_SIZE:
                self._sats.popitem(last=False)
        else:
            self._sats.move_to_end(source)
        return cached

    def _fork(
        self, stage: str, index: int, deadline: float, work: Work, seconds: float = 0.0, answer: str = ""
    ) -> None:
        read_end, write_end = os.pipe()
        pid = self.jail.fork()
        if pid == 0:
            os.close(read_end)
            run_child(
                self.jail, write_end, self.memory_mb, max(0.0, deadline - time.monotonic()), self.max_reason, work
            )
        os.close(write_end)
        self.children[read_end] = Child(pid, read_end, stage, index, deadline, seconds, answer=answer)

    def _start(self, pairs: list[tuple[str, str]], index: int, rows: list[Row]) -> None:
        sat_source, sol_source = pairs[index]
        sat = self._sat(sat_source)
        if isinstance(sat, str):
            rows.append((index, "rejected", sat[: self.max_reason], 0.0, "", ""))
            return
        spec = sat.spec
        self._fork("sol", index, time.monotonic() + self.timeout, lambda: run_sol(sol_source, spec))

    def _reap(self, child: Child) -> tuple[int, float]:
        """Make sure the child is gone, collect it, and return its wait status and CPU seconds."""
        del self.children[child.fd]
        os.close(child.fd)
        try:
            os.kill(child.pid, signal.SIGKILL)  # a no-op for a child already exiting; its status stays
        except ProcessLookupError:
            pass
        _, status_word, usage = os.wait4(child.pid, 0)
        return status_word, child.seconds + usage.ru_utime + usage.ru_stime

    def _read(self, child: Child, pairs: list[tuple[str, str]], rows: list[Row]) -> None:
        data = os.read(child.fd, 1 << 20)
        cap = MAX_REPLY[child.stage]
        if data and len(child.buffer) + len(data) <= cap:
            child.buffer += data
            return
        status_word, seconds = self._reap(child)
        seconds = round(seconds, 6)
        if data:  # over the cap
            what = {"sol": "answer", "sat": "reply", "program": "program's value"}[child.stage]
            rows.append((child.index, "error", f"the {what} is over {cap} bytes", seconds, "", ""))
            return
        if not child.buffer:
            status, reason = _death_verdict(status_word)
            rows.append((child.index, status, reason, seconds, "", ""))
            return
        try:
            status, reason, warnings, data_json = parse_reply(bytes(child.buffer), STAGE_STATUSES[child.stage])
        except ValueError as exc:
            rows.append((child.index, "error", f"unreadable reply from the program's process: {exc}", seconds, "", ""))
            return
        for text in warnings:
            self.warn(text)
        if status == "ok" and child.stage == "sol":
            sat = self._sat(pairs[child.index][0])
            assert isinstance(sat, Program)
            work = functools.partial(_SECOND_HALVES[self.second], sat, data_json)
            self._fork(self.second, child.index, child.deadline, work, seconds, answer=data_json)
        elif status == "ok":  # a program's value
            rows.append((child.index, status, reason, seconds, child.answer, data_json))
        else:
            rows.append((child.index, status, reason, seconds, "", ""))

    def run(self, mode: str, pairs: list[tuple[str, str]], emit: Callable[[list[Row]], None]) -> None:
        """Judge every pair (mode "judge") or run each program on its sol's answer ("outputs"), emitting rows as
        they arrive (in completion order)."""
        self.second = SECOND_STAGE[mode]
        queue: deque[int] = deque(range(len(pairs)))
        remaining = len(pairs)
        while remaining:
            rows: list[Row] = []
            while queue and len(self.children) < self.size:
                self._start(pairs, queue.popleft(), rows)
            if self.children:
                wait = max(0.0, min(c.deadline for c in self.children.values()) - time.monotonic())
                readable, _, _ = select.select(list(self.children), [], [], wait)
                for fd in readable:
                    self._read(self.children[fd], pairs, rows)
                now = time.monotonic()
                for child in [c for c in self.children.values() if now > c.deadline]:
                    _, seconds = self._reap(child)
                    rows.append((child.index, "timeout", f"exceeded {self.timeout:g} s", round(seconds, 6), "", ""))
            if rows:
                remaining -= len(rows)
                emit(rows)

    def close(self) -> None:
        for child in list(self.children.values()):
            self._reap(child)


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
    programs = init["seccomp"]
    if isinstance(programs, str):
        warn(programs)
    jail = Jail(None if isinstance(programs, str) else programs)
    for text in jail.warnings:
        warn(text)
    gc.freeze()  # what the warm-up built is never collected, so children do not copy it page by page
    pool = Pool(int(init["workers"]), init["limits"], jail, warn)
    write_frame(reply_fd, ("ready",))
    try:
        while (request := read_frame(0)) is not None:
            mode, pairs = request
            pool.run(mode, pairs, lambda rows: write_frame(reply_fd, ("rows", rows)))
            write_frame(reply_fd, ("done",))
    finally:
        pool.close()
