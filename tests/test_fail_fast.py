"""Fail fast and lose nothing: every bad setting is refused in one line before a model loads, and no stored line
is dropped except a torn last one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from puzzleloop.cli import main
from puzzleloop.config import ConfigError, EvalConfig, config_to_yaml, load_config
from puzzleloop.corpus import Attempt, Corpus, CorpusError, PuzzleRecord
from puzzleloop.evaluate import EvalError, evaluate, resume_settings
from puzzleloop.files import DamagedFileError, read_jsonl_objects
from puzzleloop.models import ModelError, load_model
from puzzleloop.rounds import prepare_run
from puzzleloop.stages import proposing
from puzzleloop.stages.context import RunContext

SAT = "def sat(x: int):\n    return x * 3 == 12"
NOT_A_MODEL = "no-such-model-folder"  # never loaded: every case below must fail before that


def _heldout_file(tmp_path: Path) -> Path:
    path = tmp_path / "heldout.json"
    path.write_text(json.dumps([{"name": "Four:0", "sat": SAT}]))
    return path


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI and return its one error line (and check there is no traceback)."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# -- stored lines: only a torn last line is a crash artefact -------------------------------------------------


def test_a_torn_last_line_is_dropped_and_a_damaged_middle_line_refused(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3')
    assert read_jsonl_objects(path, torn_tail=True) == [{"a": 1}, {"a": 2}]
    damaged = '{"a": 1}\n{"a": \n{"a": 3}\n'
    path.write_text(damaged)
    with pytest.raises(DamagedFileError, match=r"rows.jsonl: line 2: not JSON"):
        read_jsonl_objects(path, torn_tail=True)
    assert path.read_text() == damaged


def test_eval_refuses_a_damaged_samples_file_and_leaves_it(tmp_path: Path) -> None:
    heldout = _heldout_file(tmp_path)
    config = EvalConfig(model=NOT_A_MODEL, heldout=str(heldout), n=2)
    out = tmp_path / "eval"
    out.mkdir()
    (out / "settings.json").write_text(json.dumps(resume_settings(config)))
    row = {"puzzle": "Four:0", "sample": 0, "completion": "x", "status": "wrong", "tokens": 1}
    damaged = json.dumps(row) + "\n{not json\n" + json.dumps(row | {"sample": 1}) + "\n"
    (out / "samples.jsonl").write_text(damaged)
    with pytest.raises(EvalError, match=r"samples.jsonl: line 2"):
        evaluate(config, out, progress=False)
    assert (out / "samples.jsonl").read_text() == damaged


def test_propose_refuses_a_damaged_proposals_file_before_loading_a_model(tmp_path: Path) -> None:
    config = prepare_run(None, str(tmp_path / "run"), [f"model_name_or_path={NOT_A_MODEL}"], resume=False)
    proposals = tmp_path / "run" / "round_1" / "proposals.jsonl"
    proposals.parent.mkdir(parents=True)
    damaged = '{"prompt": 0}\n[1, 2]\n{"prompt": 1}\n'
    proposals.write_text(damaged)
    with pytest.raises(DamagedFileError, match=r"proposals.jsonl: line 2: expected a JSON object"):
        proposing.run(RunContext(config, log=lambda text: None), 1)
    assert proposals.read_text() == damaged


# -- settings: refused in one line, before any model loads ----------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--n", "0"], "n must be >= 1, got 0"),
        (["--temperature", "-1"], "temperature must be >= 0, got -1.0"),
        (["--top-p", "2"], "top_p must be in (0, 1], got 2.0"),
        (["--batch-size", "0"], "batch_size must be >= 1, got 0"),
        (["--timeout", "-1"], "timeout must be > 0, got -1.0"),
        (["--memory-mb", "10"], "memory_mb must be >= 64, got 10"),
        (["--heldout", "missing.json"], "'missing.json' is neither a named set"),
    ],
)
def test_eval_settings_fail_before_the_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flags: list[str], message: str
) -> None:
    out = tmp_path / "eval"
    err = _error_line(
        capsys,
        ["eval", "--model", NOT_A_MODEL, "--heldout", str(_heldout_file(tmp_path)), "--output-dir", str(out), *flags],
    )
    assert message in err
    assert not (out / "settings.json").exists()  # a refused command records nothing in the folder


def test_a_wrong_heldout_does_not_poison_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    with pytest.raises(Exception, match="neither a named set"):
        evaluate(EvalConfig(model=NOT_A_MODEL, heldout="missing.json"), out, progress=False)
    assert not (out / "settings.json").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("solve.attempts=0", "solve: attempts must be >= 1, got 0"),
        ("eval.n=0", "eval: n must be >= 1, got 0"),
        ("timeout=-1", "timeout must be > 0, got -1.0"),
        ("workers=0", "workers must be >= 1, got 0"),
        ("propose.sampling.top_p=0", "propose.sampling: top_p must be in (0, 1], got 0"),
        ("eval.heldout=missing.json", "'missing.json' is neither a named set"),
    ],
)
def test_run_settings_fail_before_the_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, override: str, message: str
) -> None:
    preset = Path(__file__).parents[1] / "configs" / "cpu-quick.yaml"
    err = _error_line(
        capsys,
        [
            "run",
            str(preset),
            "--output-dir",
            str(tmp_path / "run"),
            "--set",
            f"model_name_or_path={NOT_A_MODEL}",
            "--set",
            override,
        ],
    )
    assert message in err


def test_resume_cannot_change_the_frozen_settings(tmp_path: Path) -> None:
    run = tmp_path / "run"
    prepare_run(None, str(run), [f"model_name_or_path={NOT_A_MODEL}"], resume=False)
    frozen = (run / "config.yaml").read_text()
    with pytest.raises(ConfigError, match=r"cannot change them \(solve.attempts: 16 -> 999\)"):
        prepare_run(None, str(run), ["solve.attempts=999"], resume=True)
    assert (run / "config.yaml").read_text() == frozen
    assert prepare_run(None, str(run), ["solve.attempts=16"], resume=True).solve.attempts == 16  # no change: fine


def test_resume_refuses_an_emptied_corpus(tmp_path: Path) -> None:
    run = tmp_path / "run"
    prepare_run(None, str(run), [f"model_name_or_path={NOT_A_MODEL}"], resume=False)
    (run / "baseline").mkdir()
    (run / "corpus.sqlite").write_bytes(b"")
    with pytest.raises(CorpusError, match="0 bytes"):
        prepare_run(None, str(run), [], resume=True)


# -- errors, not tracebacks ------------------------------------------------------------------------------------


def test_run_given_a_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert "a folder, not a config file" in _error_line(capsys, ["run", str(tmp_path)])
    with pytest.raises(ConfigError):
        load_config(tmp_path)


def test_verify_refuses_bad_paths_and_limits_before_judging(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"id": 1, "sat": SAT, "sol": "def sol():\n    return 4"}) + "\n")
    assert "no such pairs file" in _error_line(
        capsys, ["verify", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "v.jsonl")]
    )
    assert "a folder; --out names the verdicts file" in _error_line(
        capsys, ["verify", str(pairs), "--out", str(tmp_path)]
    )
    assert "memory_mb must be >= 64" in _error_line(
        capsys, ["verify", str(pairs), "--out", str(tmp_path / "v.jsonl"), "--memory-mb", "10"]
    )
    with pytest.raises(SystemExit) as exited:  # argparse: usage line and error line, exit status 2
        main(["verify", str(pairs), "--out", str(tmp_path / "v.jsonl"), "--workers", "0"])
    assert exited.value.code == 2 and "--workers: must be >= 1, got 0" in capsys.readouterr().err


def test_report_refuses_a_negative_puzzle_count(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path), "--max-puzzles", "-1"])
    assert "--max-puzzles: must be >= 1, got -1" in capsys.readouterr().err


def test_an_unreadable_model_folder_is_a_model_error(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"not a model")
    (folder / "tokenizer.json").write_text("{broken")
    with pytest.raises(ModelError, match="cannot load model"):
        load_model(str(folder), "cpu")


def _small_run(folder: Path) -> Path:
    folder.mkdir()
    (folder / "config.yaml").write_text(config_to_yaml(load_config(None, [f"output_dir={folder}"])))
    with Corpus(folder / "corpus.sqlite") as corpus:
        corpus.add_puzzles([PuzzleRecord(f"h{i}", SAT + f"  # {i}", "int", 1, "model") for i in range(1500)])
        for row in corpus.puzzles():
            corpus.record_attempts(row.id, 1, [Attempt("def sol():\n    return 4\n" + "# pad\n" * 40, "verified")])
    return folder


def test_a_damaged_corpus_is_refused_when_opened(tmp_path: Path) -> None:
    run = _small_run(tmp_path / "run")
    path = run / "corpus.sqlite"
    data = bytearray(path.read_bytes())
    assert len(data) > 16384
    data[8192:12288] = bytes(range(256)) * 16  # 4 KiB of noise inside, the header intact
    path.write_bytes(bytes(data))
    with pytest.raises(CorpusError, match="damaged|not a readable"):
        Corpus(path, create=False)


def test_corpus_output_into_a_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    run = _small_run(tmp_path / "run")
    command = [sys.executable, "-m", "puzzleloop", "corpus", "list", str(run)]
    listing = subprocess.run(
        f"{' '.join(command)} | head -n 1", shell=True, capture_output=True, text=True, timeout=120
    )
    assert listing.stdout.count("\n") == 1
    assert "Traceback" not in listing.stderr and "BrokenPipe" not in listing.stderr, listing.stderr
