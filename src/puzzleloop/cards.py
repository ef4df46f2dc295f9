"""Model and dataset cards (README.md with Hub metadata), and pushing a folder to the Hugging Face Hub.

A checkpoint's card says what made it and how it measured: the base model, the round, its training pairs by
origin, the held-out pass@k with intervals, the contamination check, and the command. An export's card gives the
schema, what the provenance columns mean, P3's licence and the contamination threshold. Both use
huggingface_hub's card classes, so the metadata header is what the Hub reads.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData

from puzzleloop.config import DEFAULT_MODEL, DEFAULT_MODEL_HUB_ID

CARD_FILE = "README.md"
P3_LICENSE = "mit"  # Python Programming Puzzles (microsoft/PythonProgrammingPuzzles) is MIT-licensed
TAGS = ["puzzleloop", "self-play", "code", "python-programming-puzzles"]


class HubError(RuntimeError):
    """A push to the Hugging Face Hub failed; the message names the repository and the reason."""


def command_line() -> str:
    """The command this process runs, as the user typed it: `puzzleloop ...` for the console script, else the
    interpreter's name and its own arguments (`python -m puzzleloop ...`, not the path of `__main__.py` that
    sys.argv holds), so a card or record names no folder of the machine that wrote it."""
    if Path(sys.argv[0]).name == "puzzleloop":
        return shlex.join(["puzzleloop", *sys.argv[1:]])
    return shlex.join([Path(sys.executable).name, *sys.orig_argv[1:]])


def _percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def model_card(
    *,
    name: str,
    base_model: str,
    round_: int,
    rounds: int,
    training_by_origin: Mapping[str, int],
    evaluation: Mapping[str, Any],
    contamination: Mapping[str, Any],
    command: str,
) -> ModelCard:
    """The card of round `round_`'s checkpoint; `evaluation` is the round's eval record (pass@k, intervals, n)."""
    heldout = str(evaluation.get("heldout", "held-out"))
    ks = sorted(int(key[5:]) for key in evaluation if key.startswith("pass@") and not key.endswith("_ci95"))
    results = [
        EvalResult(
            task_type="text-generation",
            dataset_type="python-programming-puzzles",
            dataset_name=heldout,
            metric_type=f"pass@{k}",
            metric_value=round(100 * evaluation[f"pass@{k}"], 2),
            metric_name=f"pass@{k} (%, n={evaluation.get('n')})",
        )
        for k in ks
    ]
    hub_base = DEFAULT_MODEL_HUB_ID if base_model == DEFAULT_MODEL else base_model
    is_hub_id = hub_base.count("/") == 1 and not Path(hub_base).exists()
    data = ModelCardData(
        base_model=hub_base if is_hub_id else None,
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=TAGS,
        model_name=name,
        eval_results=results or None,
    )
    rows = "\n".join(
        f"| pass@{k} | {_percent(evaluation[f'pass@{k}'])} | "
        f"[{_percent(evaluation[f'pass@{k}_ci95'][0])}, {_percent(evaluation[f'pass@{k}_ci95'][1])}] |"
        for k in ks
    )
    origins = "\n".join(f"| {origin} | {count} |" for origin, count in training_by_origin.items() if count)
    base_note = " (the embedded default, dequantised from its Q4_1 GGUF)" if base_model == DEFAULT_MODEL else ""
    body = f"""
# {name}

Fine-tuned from `{hub_base}`{base_note} by puzzleloop self-play: the checkpoint of round {round_} of {rounds}.
Its training pairs are programming puzzles with solutions that a sandboxed interpreter verified.

## Training pairs by origin

| origin | pairs |
|---|---|
{origins or "| (none) | 0 |"}

## Held-out results

{heldout}, {evaluation.get("puzzles")} puzzles, {evaluation.get("n")} samples each, evaluated
{evaluation.get("evaluated_at") or "(date not recorded)"}; 95% bootstrap intervals over puzzles.

| metric | value | 95% interval |
|---|---|---|
{rows}

## Contamination

{_contamination_text(contamination)}

## Reproduce

```
{command}
```
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def _contamination_text(contamination: Mapping[str, Any]) -> str:
    if not contamination:
        return "No proposal reached the contamination check in this run."
    threshold = contamination.get("threshold")
    highest = contamination.get("max_similarity_kept")
    return (
        f"Every proposed puzzle was compared with every P3 test instance: {contamination.get('checked', 0)} checked, "
        f"{contamination.get('rejected', 0)} rejected at similarity >= {threshold}; the highest similarity kept was "
        f"{'-' if highest is None else f'{highest:.3f}'}. Seed puzzles that near a test instance are left out too."
    )


# What each exported column holds (the schema is `puzzleloop.inspection`'s export features).
EXPORT_COLUMNS = {
    "puzzle_id": "the puzzle's id in the run's corpus",
    "solution_id": "the solution's id in the run's corpus",
    "sat": "the puzzle: `def sat(answer, ...)` returning True for a correct answer",
    "sol": "a solution the sandbox verified",
    "answer_type": "the answer's type annotation",
    "origin": "where the pair came from: seed (a P3 or puzzleloop seed puzzle and its reference solution), "
    "proposed (a puzzle the model wrote, solved by the model), constructed (a puzzle built from a program and input "
    "the model wrote; the input is the solution), relabeled (a wrong answer made right by recomputing the target)",
    "puzzle_origin": "where the puzzle came from: seed, proposed, constructed or relabeled",
    "puzzle_round": "the round that added the puzzle (0: the seeds)",
    "solution_round": "the round that verified the solution",
    "attempt": "the attempt's number for its puzzle",
    "proposer": "the model (or `seed`) that wrote the puzzle",
    "prompt_seeds": "the seed puzzles shown in the prompt that produced the puzzle",
    "canonical_hash": "hash of the puzzle's normalised source (the dedup key)",
    "attempts": "attempts judged on the puzzle",
    "successes": "attempts verified",
    "solve_rate": "successes / attempts",
    "solution_length": "characters of the solution",
}


def dataset_card(
    *, name: str, rows: int, by_origin: Mapping[str, int], threshold: float, data_file: str | None, command: str
) -> DatasetCard:
    """The card of an exported corpus; `data_file` is its data file beside the card (None: a `save_to_disk`
    folder), which the metadata names so that `load_dataset(folder)` finds it."""
    size = "n<1K" if rows < 1000 else "1K<n<10K" if rows < 10_000 else "10K<n<100K"
    data = DatasetCardData(
        license=P3_LICENSE,
        pretty_name=name,
        tags=TAGS,
        task_categories=["text-generation"],
        size_categories=[size],
        language=["en"],
        configs=[{"config_name": "default", "data_files": data_file}] if data_file else None,
    )
    folder = "datasets.load_dataset(<this folder>)" if data_file else "datasets.load_from_disk(<this folder>)"
    loading = f"`{folder}`" + (f", which reads `{data_file}`" if data_file else "")
    columns = "\n".join(f"| `{column}` | {meaning} |" for column, meaning in EXPORT_COLUMNS.items())
    origins = "\n".join(f"| {origin} | {count} |" for origin, count in by_origin.items())
    body = f"""
# {name}

{rows} verified (puzzle, solution) pairs from a puzzleloop self-play run: every solution was run against its
puzzle in a sandboxed interpreter, which returned True. Load it with {loading}.

| solution origin | pairs |
|---|---|
{origins or "| (none) | 0 |"}

## Schema and provenance

| column | meaning |
|---|---|
{columns}

## Contamination

Puzzles with similarity >= {threshold} to any of P3's test instances were rejected before solving; the seeds
include P3's train puzzles, never its test puzzles.

## Licence

Seed puzzles and their reference solutions come from Python Programming Puzzles (P3), under the MIT licence;
the model-written puzzles are released under the same terms.

## Reproduce

```
{command}
```
"""
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n{body}")


def push_folder(folder: Path, repo_id: str, repo_type: str) -> str:
    """Upload `folder` to the Hub repository `repo_id` (created if needed); the repository's URL. HubError on
    any failure (no token, no network, no permission). Not exercised offline beyond that error path."""
    from huggingface_hub import create_repo, upload_folder

    try:
        url = create_repo(repo_id, repo_type=repo_type, exist_ok=True)
        upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type=repo_type)
    except Exception as error:  # the hub client raises HTTP, connection and auth errors of several kinds
        raise HubError(f"push to {repo_id} ({repo_type}) failed: {type(error).__name__}: {error}") from None
    return str(url)
