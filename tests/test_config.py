import pytest

from puzzleloop.config import ConfigError, RunConfig, config_to_yaml, load_config


def test_defaults_yaml_and_overrides_compose(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("rounds: 2\nsolve:\n  attempts: 4\neval:\n  k: [1, 4]\n  limit: 3\n")
    config = load_config(path, ["solve.temperature=1", "propose.seeds=both"])
    assert config.rounds == 2 and config.solve.attempts == 4
    assert config.solve.temperature == 1.0 and isinstance(config.solve.temperature, float)
    assert config.eval.k == (1, 4) and config.eval.limit == 3 and config.propose.seeds == "both"
    assert config.train.learning_rate == RunConfig().train.learning_rate


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

    from puzzleloop.evaluate import EvalConfig
    from puzzleloop.verify import add_verify_arguments

    parser = argparse.ArgumentParser()
    add_verify_arguments(parser)
    verify_default = parser.parse_args(["pairs.jsonl", "--out", "v.jsonl"]).timeout
    assert RunConfig().timeout == EvalConfig().timeout == verify_default == Limits().timeout
