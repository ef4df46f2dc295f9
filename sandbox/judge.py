"""The caller's handle: starts the warm parent in a clean interpreter and turns pairs into verdicts.

Children are never forked from the caller (which may hold torch and many threads); the warm parent is a fresh
`python -I -S` that sees only this package and RestrictedPython. The seccomp filters are built here, in the
caller, with pyseccomp when installed, and handed over as BPF.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from sandbox.api import Limits, Output, Verdict
from sandbox.harden import seccomp_programs
from sandbox.protocol import read_frame, write_frame

log = logging.getLogger("sandbox")
_logged: set[str] = set()
Row = tuple[int, str, str, float, str, str]  # the warm parent's rows: index, status, reason, seconds, answer, value
_BOOT = "import sys; sys.path[:0] = sys.argv[1:]; from sandbox.pool import main; main()"


def _import_roots() -> list[str]:
    """Directories holding sandbox and RestrictedPython: all the warm parent may import."""
    import RestrictedPython

    roots = [str(Path(__file__).resolve().parent.parent), str(Path(RestrictedPython.__file__).parent.parent)]
    return list(dict.fromkeys(roots))


def _warn_once(text: str) -> None:
    if text not in _logged:
        _logged.add(text)
        log.warning("sandbox: %s", text)


class Judge:
    """Owns a warm parent; judge() returns one Verdict per (sat, sol) pair, outputs() one Output per (program,
    sol) pair, in order."""

    def __init__(self, workers: int | None = None, limits: Limits | None = None) -> None:
        self._proc: subprocess.Popen[bytes] | None = None  # first, so __del__ works after a refused setting
        self.workers = workers if workers is not None else max(1, min(os.cpu_count() or 2, 8))
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        self.limits = limits or Limits()

    def _start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _BOOT, *_import_roots()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={},
            close_fds=True,
            cwd="/",
        )
        assert proc.stdin is not None and proc.stdout is not None
        init = {"workers": self.workers, "limits": self.limits.as_dict(), "seccomp": seccomp_programs()}
        write_frame(proc.stdin.fileno(), init)
        self._proc = proc
        self._receive_until("ready", lambda rows: None)
        return proc

    def _receive_until(self, end: str, on_rows: Callable[[list[Row]], None]) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while True:
            message = read_frame(self._proc.stdout.fileno())
            if message is None:
                raise RuntimeError(f"sandbox parent exited (code {self._proc.poll()})")
            kind = message[0]
            if kind == end:
                return
            if kind == "warning":
                _warn_once(message[1])
            elif kind == "rows":
                on_rows(message[1])

    def judge(
        self,
        pairs: Sequence[tuple[str, str]],
        progress: Callable[[int], None] | None = None,
    ) -> list[Verdict]:
        """One Verdict per (sat, sol) pair, in order; never raises for anything a program does.

        Non-string sources are `rejected` here. If the warm parent dies (a judge bug: it runs no program code),
        a fresh one judges the pairs still open; if that one dies too, they are `crashed`.
        """
        return [Verdict(*row[1:4]) for row in self._rows("judge", pairs, progress)]

    def outputs(
        self,
        pairs: Sequence[tuple[str, str]],
        progress: Callable[[int], None] | None = None,
    ) -> list[Output]:
        """One Output per (program, sol) pair, in order: what the program returns on sol's answer.

        A program is written like a puzzle (`def f(x: T, p=...)`, the answer first) but may return any value
        of int, float, str, bool and lists of them. Both halves run as in judge(), each in a fresh jailed child
        with the same limits, so a puzzle can be built from a program's value without running it anywhere else.
        """
        return [Output(*row[1:]) for row in self._rows("outputs", pairs, progress)]

    def _rows(self, mode: str, pairs: Sequence[tuple[str, str]], progress: Callable[[int], None] | None) -> list[Row]:
        rows: list[Row | None] = [None] * len(pairs)
        todo: list[int] = []
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, tuple | list) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
                rows[i] = (i, "rejected", "a pair must be two strings (program source, sol source)", 0.0, "", "")
            else:
                todo.append(i)
        if progress and len(todo) < len(pairs):
            progress(len(pairs) - len(todo))
        failure = ""
        for _attempt in range(2):
            if not todo:
                break
            try:
                self._run_open(mode, pairs, todo, rows, progress)
                failure = ""
                break
            except Exception as exc:  # the warm parent died or spoke garbage: a judge bug, never a program's
                self.close()
                failure = f"judge failed: {type(exc).__name__}: {exc}"[:200]
                todo = [i for i in todo if rows[i] is None]
        if failure:
            for i in todo:
                rows[i] = (i, "crashed", failure, 0.0, "", "")
            if progress and todo:
                progress(len(todo))
        return [row for row in rows if row is not None]

    def _run_open(
        self,
        mode: str,
        pairs: Sequence[tuple[str, str]],
        todo: list[int],
        rows: list[Row | None],
        progress: Callable[[int], None] | None,
    ) -> None:
        def on_rows(received: list[Row]) -> None:
            for row in received:
                rows[todo[row[0]]] = row
            if progress:
                progress(len(received))

        proc = self._proc if self._proc is not None and self._proc.poll() is None else self._start()
        assert proc.stdin is not None
        write_frame(proc.stdin.fileno(), (mode, [tuple(pairs[i]) for i in todo]))
        self._receive_until("done", on_rows)

    def close(self) -> None:
        """Stop the warm parent (it kills its children on the way out)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> Judge:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
