"""Compare two arms recorded in results folders, paired over puzzles (puzzleloop.ablation.paired_by_half).

    python scripts/compare_arms.py results/ablation-seeds-batch5 seeds-only \\
        results/ablation-added-pairs self-play-added

For an arm measured once and reused as the control of a later ablation: prints, as JSON, the second arm's pass@k
minus the first's with a 95% bootstrap interval over puzzles, for the whole set and its clean and train-class halves.
Both arms must come from the same held-out set and settings; the tables' config.yaml files say so.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from puzzleloop.ablation import paired_by_half, read_arm_counts
from puzzleloop.arguments import positive_int
from puzzleloop.cli import user_errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("first", type=Path, help="results folder of the first arm (holding per_puzzle.csv)")
    parser.add_argument("first_arm")
    parser.add_argument("second", type=Path, help="results folder of the second arm")
    parser.add_argument("second_arm")
    parser.add_argument("--k", type=positive_int, default=8, help="pass@k to compare (default 8)")
    parser.add_argument("--seeds", type=int, nargs="+", help="only these training seeds (default: all recorded)")
    parser.add_argument("--p3-dir", help="the P3 data folder (default: found or downloaded as for a run)")
    args = parser.parse_args()
    first = read_arm_counts(args.first / "per_puzzle.csv", args.first_arm, args.seeds)
    second = read_arm_counts(args.second / "per_puzzle.csv", args.second_arm, args.seeds)
    comparison = paired_by_half(first, second, args.k, args.p3_dir)
    title = f"{args.second.name}/{args.second_arm} minus {args.first.name}/{args.first_arm}, pass@{args.k}"
    print(json.dumps({title: comparison}, indent=2))


if __name__ == "__main__":
    try:
        main()
    except user_errors() as error:
        raise SystemExit(f"compare_arms.py: error: {error}") from None
