"""End-to-end held-out evaluation on a tiny random model, judged by the real sandbox."""

import json
from collections import Counter

import pytest
from tests.helpers import needs_p3

from puzzleloop.cli import main
from puzzleloop.config import EvalConfig, SamplingSettings
from puzzleloop.evaluate import EvalError, evaluate, heldout_puzzles
from puzzleloop.prompts import solution_from_completion


def _config(model_dir, temperature=0.8, max_new_tokens=24, **overrides):
    sampling = SamplingSettings(temperature=temperature, max_new_tokens=max_new_tokens)
    settings = dict(model=str(model_dir), heldout="p3-test228", n=2, k=(1, 2), limit=3, block_sequences=4,
                    timeout=1.0, sampling=sampling)  # fmt: skip
    return EvalConfig(**(settings | overrides))


@needs_p3
def test_cli_eval_writes_results_and_samples(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(["eval", "--model", str(tiny_model_dir), "--heldout", "p3-test228", "--n", "2", "--limit", "3",
                 "--k", "1,2,10", "--max-new-tokens", "16", "--output-dir", str(out)])  # fmt: skip
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert results["puzzles"] == 3 and results["n"] == 2 and len(samples) == 6
    assert {"pass@1", "pass@2", "pass@1_ci95", "solved_within@2"} <= set(results) and "pass@10" not in results
    assert "pass@3" not in results
    assert sum(results["status_counts"].values()) == 6
    assert results["settings"]["model"] == str(tiny_model_dir) and results["provenance"]["versions"]["torch"]
    assert results["heldout"] == "p3-test228" and results["finished_at"].startswith("20")  # which set, and when
    assert Counter(s["status"] for s in samples) == {k: v for k, v in results["status_counts"].items() if v}
    assert all(s["puzzle"].endswith(":0") for s in samples)
    assert "held-out set: p3-test228, finished 20" in capsys.readouterr().out


@needs_p3
def test_eval_resumes_without_resampling_finished_puzzles(tiny_model_dir, tmp_path):
    out = tmp_path / "eval"
    first = evaluate(_config(tiny_model_dir, limit=2), out)
    before = (out / "samples.jsonl").read_text()
    # a torn line, as a kill during the append would leave it
    with (out / "samples.jsonl").open("a") as handle:
        handle.write('{"puzzle": "Tor')
    second = evaluate(_config(tiny_model_dir, limit=4), out)
    after = (out / "samples.jsonl").read_text()
    assert after.startswith(before) and second["puzzles"] == 4 and first["puzzles"] == 2
    assert len(after.splitlines()) == 8
    assert second["per_puzzle"].keys() >= first["per_puzzle"].keys()
    again = evaluate(_config(tiny_model_dir, limit=4), out)  # finished: read back, its wall time kept
    assert again == json.loads(json.dumps(second)) == json.loads((out / "results.json").read_text())
    fewer = evaluate(_config(tiny_model_dir, limit=2), out)  # other settings: measured from the stored samples
    assert fewer["puzzles"] == 2 and fewer["per_puzzle"] == first["per_puzzle"]


@needs_p3
def test_eval_refuses_a_folder_with_other_settings(tiny_model_dir, tmp_path):
    out = tmp_path / "eval"
    evaluate(_config(tiny_model_dir, limit=1), out)
    with pytest.raises(EvalError, match="temperature"):
        evaluate(_config(tiny_model_dir, limit=1, temperature=0.2), out)


def test_eval_of_a_malformed_heldout_file_names_the_problem(tiny_model_dir, tmp_path, capsys):
    bad = tmp_path / "heldout.jsonl"
    bad.write_text('{"name": "x", "sat": "def sat(x):\\n    return True"}\n')
    code = main(["eval", "--model", str(tiny_model_dir), "--heldout", str(bad), "--output-dir", str(tmp_path / "o")])
    assert code == 2
    assert "heldout.jsonl:1 (x): field 'sat'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before the folder or the model was touched


@needs_p3
def test_eval_samples_scores_a_file_of_our_own_samples_as_the_eval_that_wrote_them(tiny_model_dir, tmp_path, capsys):
    """Our samples.jsonl scores exactly as the sampled evaluation did; the same samples as whole `solution`
    programs under `task_id` do too, but for one sample swapped for a reference solution, which is verified."""
    sampled = evaluate(_config(tiny_model_dir, n=3, k=(1, 3), max_new_tokens=48), tmp_path / "sampled")
    rows = [json.loads(line) for line in (tmp_path / "sampled" / "samples.jsonl").read_text().splitlines()]
    heldout = heldout_puzzles(_config(tiny_model_dir))
    puzzles = {instance.name: puzzle for instance, puzzle in heldout}
    solutions = [solution_from_completion(puzzles[r["puzzle"]], r["completion"]) for r in rows]
    solutions[0] = heldout[0][0].reference_solution  # rows[0] is the first puzzle's first sample
    as_solutions = tmp_path / "solutions.jsonl"
    pairs = zip(rows, solutions, strict=True)
    as_solutions.write_text("".join(json.dumps({"task_id": r["puzzle"], "solution": sol}) + "\n" for r, sol in pairs))
    scored = {}
    for source, out in ((tmp_path / "sampled" / "samples.jsonl", "from-ours"), (as_solutions, "from-solutions")):
        code = main(["eval", "--samples", str(source), "--heldout", "p3-test228", "--limit", "3", "--k", "1,3",
                     "--timeout", "1.0", "--output-dir", str(tmp_path / out)])  # fmt: skip
        assert code == 0
        scored[out] = json.loads((tmp_path / out / "results.json").read_text())
        assert scored[out]["settings"]["model"] == f"samples:{source.resolve()}" and scored[out]["n"] == 3
    for key in ("pass@1", "pass@3", "pass@1_ci95", "per_puzzle", "status_counts", "puzzles"):
        assert scored["from-ours"][key] == sampled[key], key
    first = heldout[0][0].name
    gained = 0 if rows[0]["status"] == "verified" else 1
    expected = sampled["per_puzzle"] | {first: sampled["per_puzzle"][first] + gained}
    assert scored["from-solutions"]["per_puzzle"] == expected
    assert "pass@3" in capsys.readouterr().out


@needs_p3
def test_eval_samples_names_the_line_of_a_bad_row(tmp_path, capsys):
    samples = tmp_path / "s.jsonl"
    for rows, message in (
        ([{"task_id": "NoSuchPuzzle:0", "completion": "x"}], "s.jsonl:1: puzzle 'NoSuchPuzzle:0' is not in"),
        ([{"completion": "x"}], "s.jsonl:1: needs exactly one of the fields task_id or puzzle"),
        ([{"puzzle": "a", "completion": "x", "solution": "y"}], "s.jsonl:1: needs exactly one of the fields"),
        ([], "no samples for 2 of 2 puzzles"),
    ):
        samples.write_text("".join(json.dumps(row) + "\n" for row in rows))
        code = main(["eval", "--samples", str(samples), "--limit", "2", "--output-dir", str(tmp_path / "out")])
        assert code == 2 and message in capsys.readouterr().err
