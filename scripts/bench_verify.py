"""Checks/s of three verifiers on the same workloads, in one run, and the ratios between them.

(a) a process per check, human-eval style (multiprocessing Manager + Process), on a sample;
(b) a reused multiprocessing pool running plain exec, no hardening, P3-judge style (its ICLR2023 judge maps one
    check per task over a process pool, so that each check can be timed out: chunksize 1 here too);
(c) the sandbox Judge: two fresh jailed processes per check, forked from a clean warm parent.
Workloads: (i) one simple puzzle with 2,000 distinct solutions; (ii) the P3 reference pairs.
(c)/(a) is what isolation buys over the naive isolated judge; (c)/(b) is what it costs against no isolation.
(d) the floor under (c): empty children forked and reaped per second by an interpreter warmed up as the sandbox's
    warm parent is (no jail, no program). Half of it bounds any judge that starts two processes per check.
Usage: python scripts/bench_verify.py [--workers 2] [--sample 200] [--timeout 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import RestrictedPython
from sandbox import Judge, Limits

from puzzleloop.data import load_p3

SIMPLE_SAT = "def sat(x: int):\n    return x % 997 == 0 and x > 50000"


def simple_workload() -> list[tuple[str, str]]:
    return [(SIMPLE_SAT, f"def sol():\n    return {i} * 37 + {i % 7}") for i in range(2000)]


def reference_workload() -> list[tuple[str, str]]:
    return [(p.sat, p.reference_solution) for p in load_p3() if p.reference_solution]


def _program(pair: tuple[str, str]) -> str:
    sat, sol = pair
    return f"from typing import List\n{sat}\n{sol}\nassert {_name(sat, 'sat', 'f')}({_name(sol, 'sol', 'g')}())"


def _name(source: str, first: str, second: str) -> str:
    return first if f"def {first}(" in source else second


def _exec_program(program: str) -> bool:
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(program, {})
        return True
    except BaseException:
        return False


def _human_eval_child(program: str, result: list[bool]) -> None:
    result.append(_exec_program(program))


def process_per_check(pairs: list[tuple[str, str]], timeout: float) -> float:
    """(a): a Manager list and a fresh Process per check, joined with a timeout; returns checks/s."""
    start = time.perf_counter()
    with multiprocessing.Manager() as manager:
        for pair in pairs:
            result = manager.list()
            proc = multiprocessing.Process(target=_human_eval_child, args=(_program(pair), result))
            proc.start()
            proc.join(timeout)
            if proc.is_alive():
                proc.kill()
                proc.join()
    return len(pairs) / (time.perf_counter() - start)


def plain_pool(pairs: list[tuple[str, str]], workers: int) -> float:
    """(b): one reused pool, plain exec per check (no per-check timeout kill, no hardening); checks/s."""
    programs = [_program(pair) for pair in pairs]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(_exec_program, programs[:workers])  # start-up, as the sandbox's judge is started too
        start = time.perf_counter()
        pool.map(_exec_program, programs, chunksize=1)
        return len(pairs) / (time.perf_counter() - start)


def sandbox(pairs: list[tuple[str, str]], workers: int, timeout: float) -> tuple[float, int]:
    """(c): the Judge, already started; returns (checks/s, verified)."""
    with Judge(workers=workers, limits=Limits(timeout=timeout)) as judge:
        judge.judge(pairs[:workers])
        start = time.perf_counter()
        verdicts = judge.judge(pairs)
        rate = len(pairs) / (time.perf_counter() - start)
    return rate, sum(v.status == "verified" for v in verdicts)


_FLOOR = """
import ctypes, os, select, sys, time
from sandbox.check import warm_up
warm_up()
fork = ctypes.CDLL(None).fork  # the fork the sandbox's pool uses
live, started, done, n = {}, 0, 0, int(sys.argv[1])
start = time.perf_counter()
while done < n:
    while started < n and len(live) < 2 * os.cpu_count():
        read_end, write_end = os.pipe()
        pid = fork()
        if pid == 0:
            os.write(write_end, b"x")
            os._exit(0)
        os.close(write_end)
        live[read_end], started = pid, started + 1
    for fd in select.select(list(live), [], [])[0]:
        os.read(fd, 1)
        os.close(fd)
        os.waitpid(live.pop(fd), 0)
        done += 1
print(n / (time.perf_counter() - start))
"""


def fork_floor(children: int = 2000) -> float:
    """(d): empty children/s from a `python -I -S` that imported and warmed up the sandbox, as its parent does."""
    roots = [str(Path(__file__).resolve().parents[1]), str(Path(RestrictedPython.__file__).parents[1])]
    env = {"PYTHONPATH": os.pathsep.join(roots)}
    command = [sys.executable, "-S", "-c", _FLOOR, str(children)]
    return float(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=int, default=200, help="checks for the process-per-check harness")
    parser.add_argument("--timeout", type=float, default=Limits().timeout)
    args = parser.parse_args()
    workloads = {"(i) simple puzzle x 2000": simple_workload(), "(ii) P3 reference pairs": reference_workload()}
    for name, pairs in workloads.items():
        a = process_per_check(pairs[:: max(1, len(pairs) // args.sample)][: args.sample], args.timeout)
        b = plain_pool(pairs, args.workers)
        c, verified = sandbox(pairs, args.workers, args.timeout)
        print(f"{name}: {len(pairs)} checks")
        print(f"  (a) process per check : {a:9.1f} checks/s (sample of {args.sample})")
        print(f"  (b) plain exec pool   : {b:9.1f} checks/s")
        print(f"  (c) sandbox           : {c:9.1f} checks/s ({verified} of {len(pairs)} verified)")
        print(f"  (c)/(a) = {c / a:6.1f}x   (c)/(b) = {c / b:5.2f}x")
    floor = fork_floor()
    print(f"(d) floor: {floor:.0f} empty children/s from a warm parent, so at most {floor / 2:.0f} checks/s for any")
    print("    judge that starts two processes per check")


if __name__ == "__main__":
    main()
