"""Held-out metrics: the unbiased pass@k estimator, the paper's "solved within k tries", bootstrap intervals, and
the paired comparison of two arms over the same puzzles."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from math import comb


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of P(at least one of k samples passes) from n samples with c passing (Chen et al. 2021)."""
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def solved_within(outcomes: Sequence[bool], k: int) -> bool:
    """The paper's figure: whether any of the first k tries (in sampling order) passed."""
    return any(outcomes[:k])


def bootstrap_interval(
    values: Sequence[float], *, samples: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling puzzles (the unit that varies between benchmarks)."""
    if not values:
        raise ValueError("bootstrap_interval: no values")
    rng = random.Random(seed)
    size = len(values)
    means = sorted(sum(rng.choices(values, k=size)) / size for _ in range(samples))
    tail = (1.0 - level) / 2
    return means[int(tail * (samples - 1))], means[int((1.0 - tail) * (samples - 1))]


def summarise(per_puzzle: Sequence[Sequence[bool]], ks: Sequence[int], seed: int = 0) -> dict[str, object]:
    """pass@k, its 95% interval and the "solved within k" share for every asked k <= n and for k = n."""
    if not per_puzzle:
        raise ValueError("summarise: no puzzles")
    n = min(len(o) for o in per_puzzle)
    summary: dict[str, object] = {"puzzles": len(per_puzzle), "n": n}
    for k in sorted({k for k in ks if k <= n} | {n}):
        scores = [pass_at_k(len(o), sum(o), k) for o in per_puzzle]
        low, high = bootstrap_interval(scores, seed=seed)
        summary[f"pass@{k}"] = sum(scores) / len(scores)
        summary[f"pass@{k}_ci95"] = [low, high]
        summary[f"solved_within@{k}"] = sum(solved_within(o, k) for o in per_puzzle) / len(per_puzzle)
    return summary


def paired_difference(
    first: Mapping[str, Sequence[tuple[int, int]]],
    second: Mapping[str, Sequence[tuple[int, int]]],
    k: int,
    seed: int = 0,
) -> dict[str, object]:
    """second's pass@k minus first's, paired over the puzzles both measured, with a 95% bootstrap interval that
    resamples puzzles. Each arm maps a puzzle to one (n, c) per training seed; its pass@k on a puzzle is the mean
    over seeds, so seed noise is averaged within the puzzle before puzzles are resampled."""
    puzzles = sorted(set(first) & set(second))
    if not puzzles:
        raise ValueError("paired_difference: no puzzle measured in both arms")

    def score(counts: Sequence[tuple[int, int]]) -> float:
        return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)

    diffs = [score(second[p]) - score(first[p]) for p in puzzles]
    low, high = bootstrap_interval(diffs, seed=seed)
    return {
        "puzzles": len(puzzles),
        f"first_pass@{k}": sum(score(first[p]) for p in puzzles) / len(puzzles),
        f"second_pass@{k}": sum(score(second[p]) for p in puzzles) / len(puzzles),
        "difference": sum(diffs) / len(diffs),
        "difference_ci95": [low, high],
    }
