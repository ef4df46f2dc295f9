"""A hardened judge for P3 (sat, sol) pairs: static policy, RestrictedPython, jailed pre-forked workers.

Standard library + RestrictedPython (+ pyseccomp when present); imports nothing of puzzleloop or torch.
"""

from sandbox.api import STATUSES, Limits, Verdict
from sandbox.judge import Judge

__all__ = ["STATUSES", "Judge", "Limits", "Verdict"]
