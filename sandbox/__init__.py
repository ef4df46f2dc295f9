"""A hardened judge for P3 (sat, sol) pairs: static policy, RestrictedPython, a fresh jailed process per program.

Standard library + RestrictedPython (+ pyseccomp when present); imports nothing of puzzleloop or torch.
`Judge` is imported on first use, so the warm parent, which imports this package too, never loads the caller's
side (logging, subprocess and threading, whose at-fork hooks would run in every child).
"""

from typing import Any

from sandbox.api import OUTPUT_STATUSES, STATUSES, Limits, Output, Verdict

__all__ = ["OUTPUT_STATUSES", "STATUSES", "Judge", "Limits", "Output", "Verdict"]


def __getattr__(name: str) -> Any:
    if name == "Judge":
        from sandbox.judge import Judge

        return Judge
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
