"""The judge's public value types: the limits it enforces and the verdict it returns per pair."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# One default for `verify`, `eval` and `run`: long enough for P3's slowest honest reference solutions on a
# 2-core machine (No3Colinear and Kirkman take about 1 s), short enough that looping samples stay cheap.
DEFAULT_TIMEOUT = 2.0

STATUSES: tuple[str, ...] = (
    "verified",  # sol() returned a value of the annotated type and sat(copy) returned exactly True
    "wrong",  # everything ran, but sat did not return True
    "type_error",  # sol() returned a value whose type is not exactly the annotated one
    "error",  # sol or sat raised, or the program's process ended without a verdict
    "timeout",  # the check overran its wall-clock deadline (or its CPU limit)
    "memory",  # the check hit the address-space cap
    "rejected",  # the source did not parse or broke the static / RestrictedPython policy
    "crashed",  # the judge itself failed (its warm parent died, or a child could not enter its jail)
)


@dataclass(frozen=True)
class Verdict:
    """One pair's outcome: a status from STATUSES, a short human reason, and the CPU seconds it used."""

    status: str
    reason: str
    seconds: float

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown verdict status {self.status!r}; expected one of {STATUSES}")


# What running a program on sol's answer can end in (Judge.outputs): "ok" carries the program's return value.
OUTPUT_STATUSES: tuple[str, ...] = ("ok", *(s for s in STATUSES if s not in ("verified", "wrong")))


@dataclass(frozen=True)
class Output:
    """A program's value on sol's answer (Judge.outputs), for puzzles built from what a program computes.

    `answer` is sol's value and `value` the program's return value, both as JSON text ("" unless status is "ok").
    The value holds only int, float, str, bool and lists of them, so it can be written back as a Python literal.
    """

    status: str
    reason: str
    seconds: float
    answer: str = ""
    value: str = ""

    def __post_init__(self) -> None:
        if self.status not in OUTPUT_STATUSES:
            raise ValueError(f"unknown output status {self.status!r}; expected one of {OUTPUT_STATUSES}")


@dataclass(frozen=True)
class Limits:
    """What one check may use. memory_mb caps each child's whole address space (the interpreter's ~40 MB too)."""

    timeout: float = DEFAULT_TIMEOUT  # wall-clock seconds per check (sol and sat together), enforced by SIGKILL
    memory_mb: int = 1024  # RLIMIT_AS of each child process
    max_reason_chars: int = 200  # reasons are cut to this length inside the child

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError(f"Limits.timeout must be > 0, got {self.timeout!r}")
        if self.memory_mb < 64:
            raise ValueError(f"Limits.memory_mb must be >= 64 (the interpreter needs ~40 MB), got {self.memory_mb}")
        if self.max_reason_chars < 20:
            raise ValueError(f"Limits.max_reason_chars must be >= 20, got {self.max_reason_chars}")

    def as_dict(self) -> dict[str, float | int]:
        """Plain data, for sending to the warm parent process."""
        return asdict(self)
