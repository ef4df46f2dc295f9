"""The `puzzleloop` command line: eval, verify, run (and the corpus and report commands)."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import sys
from pathlib import Path

from puzzleloop.arguments import add_settings_arguments, commented_yaml, describe_settings, settings_from_arguments
from puzzleloop.config import EvalConfig, RunConfig, load_config

# glibc returns freed training/sampling buffers to the OS eagerly by default; on CPU, keeping them mapped made
# training steps 15-25% faster (measured on 2-core CPUs). The allocator reads these only at process start.
_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "4000000000", "MALLOC_TRIM_THRESHOLD_": "4000000000"}


def restart_with_fast_malloc() -> None:
    """Re-execute this very command line with the allocator settings above, unless they are already set."""
    if any(key not in os.environ for key in _MALLOC_ENV):
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], os.environ | _MALLOC_ENV)


def _add_eval(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("eval", help="measure pass@k on held-out puzzles (resumable)")
    add_settings_arguments(p, EvalConfig())
    p.add_argument("--output-dir", type=Path, required=True, help="results.json and samples.jsonl go here")
    p.add_argument("--samples", type=Path, default=None, metavar="FILE",
                   help="judge samples produced elsewhere instead of sampling --model: JSONL rows with task_id (or "
                        "puzzle) and completion (continuing our prompt's def g header) or solution (a whole "
                        "program defining sol or g); n is the file's samples per puzzle")  # fmt: skip
    p.set_defaults(handler=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from puzzleloop.evaluate import evaluate, evaluate_samples, format_table
    from puzzleloop.processes import is_main

    config = settings_from_arguments(EvalConfig, args)
    _start_requested_processes()
    if args.samples is not None:
        results = evaluate_samples(config, args.samples, args.output_dir)
    else:
        results = evaluate(config, args.output_dir)
    if not is_main():  # under accelerate launch every process sampled its share; the main process reports
        return 0
    print(format_table(results))
    print(f"wrote {args.output_dir / 'results.json'} and {args.output_dir / 'samples.jsonl'}")
    return 0


def _start_requested_processes() -> None:
    """Become the N CPU processes `accelerate launch --cpu --num_processes N` meant, where it started just one:
    run them, then exit with their status."""
    from puzzleloop.processes import requested_cpu_processes, run_as_cpu_processes

    if (count := requested_cpu_processes()) > 1:
        raise SystemExit(run_as_cpu_processes(count))


def _add_run(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "run",
        help="self-play rounds: propose, filter, solve, select, train, evaluate",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="settings (YAML keys, or --set KEY=VALUE), with their defaults:\n"
        + "\n".join(describe_settings(RunConfig())),
    )
    p.add_argument("config", type=Path, nargs="?", help="YAML config, e.g. configs/cpu-quick.yaml")
    p.add_argument("--show-config", action="store_true",
                   help="print the resolved settings as commented YAML (config, then --set) and stop")  # fmt: skip
    p.add_argument("--output-dir", default=None, help="run folder (default: the config's output_dir)")
    p.add_argument("--resume", action="store_true", help="continue the run in the output folder where it stopped")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set solve.attempts=32 (repeatable)")  # fmt: skip
    p.add_argument("--push-to-hub", metavar="REPO", default=None,
                   help="then upload the final checkpoint, with its model card, to this Hub model repository "
                        "(needs a token; untested offline)")  # fmt: skip
    p.set_defaults(handler=_run_selfplay)


def _run_selfplay(args: argparse.Namespace) -> int:
    from puzzleloop.inspection import format_rounds_table
    from puzzleloop.layout import RunLayout
    from puzzleloop.processes import is_main
    from puzzleloop.rounds import SelfPlayRun, prepare_run

    if args.show_config:
        overrides = args.overrides + ([f"output_dir={args.output_dir}"] if args.output_dir else [])
        print(commented_yaml(load_config(args.config, overrides)))
        return 0
    if args.config is None and not args.resume:
        raise SystemExit("puzzleloop run: give a config file (e.g. configs/cpu-quick.yaml) or --resume --output-dir D")
    _start_requested_processes()
    main = is_main()  # under accelerate launch: the process that owns the run folder and reports
    config = prepare_run(args.config, args.output_dir, args.overrides, args.resume)
    if main:
        print(f"run folder: {config.output_dir}")
    lines = SelfPlayRun(config).run()
    if not main:
        return 0
    print(format_rounds_table(lines))
    print(f"metrics: {RunLayout(Path(config.output_dir)).metrics}")
    final = lines[-1]["model"]  # a round that verified nothing new keeps the last round's model
    print(f"final model: {final}")
    if args.push_to_hub:
        if final == config.model_name_or_path:
            raise SystemExit("puzzleloop run: --push-to-hub: no round trained a model, so there is nothing to push")
        from puzzleloop.cards import push_folder

        print(f"pushed to {push_folder(Path(final), args.push_to_hub, 'model')}")
    return 0


# Commands whose module defines both its arguments (`add_<name>_arguments`) and its handler (`run_<name>`).
_DELEGATED = {
    "verify": ("puzzleloop.verify", "judge (sat, sol) pairs from a JSONL file in the sandbox"),
    "corpus": ("puzzleloop.inspection", "inspect a run's verified corpus: stats, list, show, export"),
    "report": ("puzzleloop.report", "write RUN/report.html: plots and a browsable table of verified puzzles"),
    "record": ("puzzleloop.record", "record a run as committed evidence in results/NAME (tables, plot, audit)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="puzzleloop", description=__doc__)
    parser.add_argument("--version", action="version", version=f"puzzleloop {importlib.metadata.version('puzzleloop')}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_eval(commands)
    _add_run(commands)
    for name, (module_name, help_text) in _DELEGATED.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=help_text)
        getattr(module, f"add_{name}_arguments")(sub)
        sub.set_defaults(handler=getattr(module, f"run_{name}"))
    return parser


def user_errors() -> tuple[type[Exception], ...]:
    """The errors that mean bad input or a damaged file (each names the file, line or field): a command prints them
    as one line, not a traceback. Imported here, as the modules they come from are slow to import."""
    from puzzleloop.cards import HubError
    from puzzleloop.config import ConfigError
    from puzzleloop.corpus import CorpusError
    from puzzleloop.data import DataError
    from puzzleloop.evaluate import EvalError
    from puzzleloop.external_samples import SamplesError
    from puzzleloop.files import DamagedFileError
    from puzzleloop.inspection import RunFolderError
    from puzzleloop.models import ModelError
    from puzzleloop.puzzles import PuzzleError
    from puzzleloop.record import RecordError
    from puzzleloop.verify import VerifyError

    return (
        ConfigError,
        CorpusError,
        DamagedFileError,
        DataError,
        EvalError,
        HubError,
        ModelError,
        PuzzleError,
        RecordError,
        RunFolderError,
        SamplesError,
        VerifyError,
    )


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        restart_with_fast_malloc()
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except user_errors() as error:
        print(f"puzzleloop {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"puzzleloop {args.command}: interrupted; rerun the same command (run: with --resume) to continue",
              file=sys.stderr)  # fmt: skip
        return 130
