import dataclasses
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from puzzleloop.cli import main
from puzzleloop.config import ConfigError, RunConfig, SamplingSettings, config_to_yaml, load_config


def test_defaults_yaml_and_overrides_compose(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("rounds: 2\nsolve:\n  attempts: 4\neval:\n  k: [1, 4]\n  limit: 3\n")
    config = load_config(path, ["solve.sampling.temperature=1", "propose.seeds=both"])
    assert config.rounds == 2 and config.solve.attempts == 4
    assert config.solve.sampling.temperature == 1.0 and isinstance(config.solve.sampling.temperature, float)
    assert config.solve.sampling.max_new_tokens == 150  # the section's own default, not SamplingSettings'
    assert config.eval.k == (1, 4) and config.eval.limit == 3 and config.propose.seeds == "both"
    assert config.train.learning_rate == RunConfig().train.learning_rate


def test_a_flat_sampling_setting_is_read_into_its_section_with_a_warning(tmp_path, caplog):
    """Configs and frozen run folders written before `sampling` was a section still load, the same settings."""
    path = tmp_path / "old.yaml"
    path.write_text("propose:\n  temperature: 0.7\n  max_new_tokens: 60\neval:\n  top_p: 0.5\n")
    with caplog.at_level("WARNING", logger="puzzleloop"):
        config = load_config(path, ["solve.temperature=0.3"])
    assert config.propose.sampling == SamplingSettings(temperature=0.7, max_new_tokens=60)
    assert config.eval.sampling.top_p == 0.5 and config.solve.sampling.temperature == 0.3
    assert "propose: temperature, max_new_tokens now live(s) under propose.sampling" in caplog.text
    with pytest.raises(ConfigError, match="solve: temperature is given both flat and under solve.sampling"):
        load_config(None, ["solve.temperature=0.3", "solve.sampling.temperature=0.4"])


def test_frozen_yaml_round_trips(tmp_path):
    config = load_config(None, ["rounds=3", "eval.limit=null"])
    path = tmp_path / "frozen.yaml"
    path.write_text(config_to_yaml(config))
    assert load_config(path) == config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("solve:\n  atempts: 3\n", "unknown field(s) atempts"),
        ("rounds: two\n", "rounds: expected int"),
        ("solve: 3\n", "solve: expected a mapping"),
        ("- 1\n- 2\n", "top level must be a mapping"),
        ("rounds: [\n", "not valid YAML"),
        ("train_from: middle\n", "train_from"),
        ("eval:\n  k: 5\n", "eval.k: expected a list"),
    ],
)
def test_bad_config_names_file_and_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert message in str(error.value)


def test_bad_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["rounds"])
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")


def test_one_default_time_limit_for_verify_eval_and_run() -> None:
    import argparse

    from sandbox import Limits

    from puzzleloop.config import EvalConfig
    from puzzleloop.verify import add_verify_arguments

    parser = argparse.ArgumentParser()
    add_verify_arguments(parser)
    verify_default = parser.parse_args(["pairs.jsonl", "--out", "v.jsonl"]).timeout
    assert RunConfig().timeout == EvalConfig().timeout == verify_default == Limits().timeout


def test_help_describes_every_setting_without_importing_torch() -> None:
    """`--help` is generated from the settings dataclasses and answers without loading torch."""
    script = """
import sys, contextlib, io
from puzzleloop.cli import build_parser
for argv in (["--help"], ["run", "--help"], ["eval", "--help"], ["--version"]):
    out = io.StringIO()
    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(out):
        build_parser().parse_args(argv)
    print(out.getvalue())
print("torch imported:", "torch" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert "torch imported: False" in done.stdout
    for key in ("train.training_args = {}", "solve.sampling.max_new_tokens = 150", "eval.heldout = p3-test228"):
        assert key in done.stdout, key
    assert all(f"  {name} = " in done.stdout for name in _setting_keys(RunConfig()))  # every --set key is listed
    assert "--top-p TOP_P" in done.stdout and "(default: 1.0)" in done.stdout and "(default: 1,10,100)" in done.stdout
    assert f"puzzleloop {importlib.metadata.version('puzzleloop')}" in done.stdout


def _setting_keys(settings, prefix=""):
    for field_ in dataclasses.fields(settings):
        value = getattr(settings, field_.name)
        yield from (
            _setting_keys(value, f"{prefix}{field_.name}.")
            if dataclasses.is_dataclass(value)
            else [prefix + field_.name]
        )


def test_show_config_prints_commented_yaml_that_loads_back(tmp_path, capsys) -> None:
    run_dir = tmp_path / "run"
    overrides = ["solve.attempts=5", "train.training_args={report_to: [tensorboard]}"]
    argv = ["run", "configs/cpu-quick.yaml", "--show-config", "--output-dir", str(run_dir)]
    assert main(argv + [arg for o in overrides for arg in ("--set", o)]) == 0
    shown = capsys.readouterr().out
    assert "  attempts: 5  # solutions sampled per kept puzzle" in shown
    (tmp_path / "shown.yaml").write_text(shown)
    expected = load_config(Path("configs/cpu-quick.yaml"), [*overrides, f"output_dir={run_dir}"])
    assert load_config(tmp_path / "shown.yaml") == expected
    assert not run_dir.exists()  # it only prints: no run folder, no frozen config


def test_python_dash_m_puzzleloop_is_the_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "puzzleloop", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("puzzleloop ")


def test_the_recorded_command_is_the_one_typed_not_a_path_of_this_machine(monkeypatch) -> None:
    from puzzleloop.cards import command_line

    monkeypatch.setattr(sys, "executable", "/opt/python/bin/python3")
    monkeypatch.setattr(sys, "argv", ["/home/me/src/puzzleloop/__main__.py", "record", "runs/a b"])
    monkeypatch.setattr(sys, "orig_argv", ["python3", "-m", "puzzleloop", "record", "runs/a b"])
    assert command_line() == "python3 -m puzzleloop record 'runs/a b'"
    monkeypatch.setattr(sys, "argv", ["/home/me/.venv/bin/puzzleloop", "run", "c.yaml"])
    monkeypatch.setattr(sys, "orig_argv", ["/opt/python/bin/python3", "/home/me/.venv/bin/puzzleloop", "run", "c.yaml"])
    assert command_line() == "puzzleloop run c.yaml"


def test_a_run_folder_is_compared_by_its_settings_not_its_text(tmp_path) -> None:
    """A run folder frozen in the flat sampling layout holds the same settings; a changed one is named."""
    from puzzleloop.rounds import prepare_run

    run_dir = tmp_path / "run"
    config = prepare_run(Path("configs/cpu-quick.yaml"), str(run_dir), [], resume=False)
    frozen = run_dir / "config.yaml"
    settings = yaml.safe_load(frozen.read_text())
    for section in ("propose", "solve", "eval"):
        settings[section] |= settings[section].pop("sampling")  # as frozen before `sampling` was a section
    frozen.write_text(yaml.safe_dump(settings, sort_keys=False))
    assert prepare_run(Path("configs/cpu-quick.yaml"), str(run_dir), [], resume=False) == config
    with pytest.raises(ConfigError, match=r"other settings \(solve.attempts: 4 -> 5\)"):
        prepare_run(Path("configs/cpu-quick.yaml"), str(run_dir), ["solve.attempts=5"], resume=False)
