"""The processes of one run: a single one, or N under `accelerate launch` (accelerate's process state either way).

Under N processes every sampling stage shares its prompts: each process samples and judges a contiguous share
with its own model copy and sandbox judge, and every process receives all results in the original order. The main
process alone writes the run folder and the corpus, and all of them wait for each other at stage boundaries.
A share is sampled with the seeds its prompts have in one process, so the process count changes no sample (up to
floating-point differences between batch compositions).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from accelerate import PartialState
from accelerate.utils import gather_object, parse_flag_from_env

Item = TypeVar("Item")
Result = TypeVar("Result")

# How long a process waits at a stage boundary for the others. The main process filters, relabels and selects
# alone while the others wait, which at the paper's scale takes hours; a process that dies ends the launch at once.
STAGE_WAIT = timedelta(hours=24)


def process_state() -> PartialState:
    """This process's place in the launch (created on first use; `accelerate launch --cpu` means gloo on CPU)."""
    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"), timeout=STAGE_WAIT)


def is_main() -> bool:
    """Whether this process owns the run folder (always, in a single process)."""
    return process_state().is_main_process


def wait_for_everyone() -> None:
    """A stage boundary: return once every process has reached it (at once, in a single process)."""
    process_state().wait_for_everyone()


def shared(items: Sequence[Item], work: Callable[[list[Item]], list[Result]]) -> list[Result]:
    """`work(share)` on this process's contiguous share of `items`, one result per item; every process gets the
    results of all shares, in the order of `items`. Items carry their own seed ids (their place in the call)."""
    state = process_state()
    with state.split_between_processes(list(items)) as share:
        results = work(share)
    if len(results) != len(share):
        raise ValueError(f"a share of {len(share)} items gave {len(results)} results")
    return gather_object(results) if state.num_processes > 1 else results


def requested_cpu_processes() -> int:
    """N when this process is the only one `accelerate launch --cpu --num_processes N` started, else 1.

    Without an MPI hostfile, accelerate's CPU launcher (accelerate 1.15) starts one process whatever N says; it
    still sets MASTER_ADDR and ACCELERATE_USE_CPU, and N is on its own command line, our parent's.
    """
    if "RANK" in os.environ or "MASTER_ADDR" not in os.environ or not parse_flag_from_env("ACCELERATE_USE_CPU"):
        return 1
    try:
        argv = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return 1
    starts = [i for i, arg in enumerate(argv) if arg in ("launch", "accelerate.commands.launch")]
    if not starts:
        return 1
    from accelerate.commands.launch import launch_command_parser

    launch = argv[starts[0] + 1 :]
    try:
        args, _ = launch_command_parser().parse_known_args(launch)
    except SystemExit:
        return 1
    return args.num_processes or 1


def run_as_cpu_processes(count: int) -> int:
    """Run this command as `count` CPU processes through torch's elastic launcher (torchrun's, which accelerate
    uses for GPUs) on the address and port accelerate chose, and wait for them; their exit status. They inherit
    ACCELERATE_USE_CPU, so each runs on the CPU (gloo). The command's own arguments bypass torchrun's parser,
    which would take an abbreviation such as `--n` for one of its options."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch
    from torch.distributed.run import config_from_args, get_args_parser

    launcher = [f"--nproc-per-node={count}", "--max-restarts=0", f"--master-addr={os.environ['MASTER_ADDR']}"]
    launcher += [f"--master-port={os.environ['MASTER_PORT']}", "-m", "puzzleloop"]  # its options end here
    config, entrypoint, arguments = config_from_args(get_args_parser().parse_args(launcher))
    try:
        elastic_launch(config, entrypoint)(*arguments, *sys.argv[1:])
    except ChildFailedError as error:
        print(f"puzzleloop: {len(error.failures)} of {count} processes failed", file=sys.stderr)
        return 1
    return 0
