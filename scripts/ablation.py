"""Run the self-play ablation (puzzleloop.ablation): two arms, several training seeds, one shared corpus.

    python scripts/ablation.py configs/selfplay-cpu.yaml --name ablation-abduction --seeds 0 1 2 --steps 30
    python scripts/ablation.py configs/cpu-quick.yaml --name packing-isolation --arms packing-unisolated self-play \\
        --seeds 0 1 2 --steps 44

The run folder is runs/<name>/ (rerun the same command to resume); the tables go to results/<name>/.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from puzzleloop.ablation import ARMS, ablation
from puzzleloop.arguments import positive_int
from puzzleloop.cli import restart_with_fast_malloc, user_errors
from puzzleloop.rounds import SelfPlayRun, prepare_run


def main() -> None:
    restart_with_fast_malloc()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--name", required=True, help="runs/<name>/ holds the run, results/<name>/ the tables")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds, per arm")
    parser.add_argument("--steps", type=positive_int, required=True, help="optimizer steps, the same in every arm")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=["seeds-only", "self-play"],
                        help="arms to train; the tables report the second minus the first")  # fmt: skip
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    run_dir = Path("runs") / args.name
    config = prepare_run(args.config, str(run_dir), args.overrides, resume=run_dir.exists())
    summary = ablation(SelfPlayRun(config), Path("results") / args.name, args.seeds, args.steps, args.arms)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    try:
        main()
    except user_errors() as error:
        raise SystemExit(f"ablation.py: error: {error}") from None
