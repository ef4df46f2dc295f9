"""Fine-tuning: label masking, packing, and short real training runs on the tiny random Llama."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from puzzleloop.config import TrainConfig
from puzzleloop.train import (
    IGNORE_INDEX,
    RESULT_FILE,
    PadCollator,
    pack_blocks,
    sequence_count,
    tokenize_examples,
    train,
    training_arguments,
)

PROMPTS = [f"def f(x: int, a={a}):\n    return x == a + {b}\n\n" for a in range(4) for b in range(3)]
COMPLETIONS = [f"def g(a={a}):\n    return a + {b}\n\nassert f(g())\n" for a in range(4) for b in range(3)]
TEXTS = [prompt + completion for prompt, completion in zip(PROMPTS, COMPLETIONS, strict=True)]
ROWS = {"prompt": PROMPTS, "completion": COMPLETIONS}


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_solution_loss_masks_exactly_the_puzzle(tokenizer) -> None:
    examples = tokenize_examples(PROMPTS[:3], COMPLETIONS[:3], tokenizer, "solution")
    for text, (ids, labels) in zip(TEXTS, examples, strict=False):
        assert ids[-1] == labels[-1] == tokenizer.eos_token_id
        masked = [t for t, lab in zip(ids, labels, strict=True) if lab == IGNORE_INDEX]
        learned = [lab for lab in labels[:-1] if lab != IGNORE_INDEX]
        assert ids[: len(masked)] == masked  # the mask is one prefix
        assert tokenizer.decode(masked) + tokenizer.decode(learned) == text
        assert tokenizer.decode(learned).lstrip("\n").startswith("def g(")
        assert "def g" not in tokenizer.decode(masked)
    everything = tokenize_examples(PROMPTS[:3], COMPLETIONS[:3], tokenizer, "all")
    assert all(ids == labels for ids, labels in everything)
    assert [ids for ids, _ in everything] == [ids for ids, _ in examples]
    with pytest.raises(ValueError, match="training row 1 has an empty completion"):
        tokenize_examples(PROMPTS[:2], [COMPLETIONS[0], ""], tokenizer, "solution")


def test_packing_keeps_masks_and_pads_the_last_block() -> None:
    examples = [([1, 2, 3, 9], [-100, 2, 3, 9]), ([4, 5, 9], [-100, -100, 9])]
    blocks = pack_blocks(examples, block_size=3, pad_id=0, isolate=False)
    assert blocks["input_ids"] == [[1, 2, 3], [9, 4, 5], [9, 0, 0]]
    assert blocks["labels"] == [[-100, 2, 3], [9, -100, -100], [9, -100, -100]]
    assert blocks["attention_mask"] == [[1, 1, 1], [1, 1, 1], [1, 0, 0]]
    isolated = pack_blocks(examples, block_size=3, pad_id=0)
    assert isolated["input_ids"] == blocks["input_ids"] and "attention_mask" not in isolated
    assert isolated["position_ids"] == [[0, 1, 2], [3, 0, 1], [2, 0, 1]]  # restarting at each example and the pad
    batch = PadCollator(pad_id=0)(
        [
            {"input_ids": [1, 2], "labels": [1, 2], "attention_mask": [1, 1]},
            {"input_ids": [3], "labels": [-100], "attention_mask": [1]},
        ]
    )
    assert batch["input_ids"].tolist() == [[1, 2], [3, 0]]
    assert batch["labels"].tolist() == [[1, 2], [-100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1], [1, 0]]


def test_sequence_count_is_what_training_builds(tokenizer) -> None:
    examples = tokenize_examples(PROMPTS, COMPLETIONS, tokenizer, "solution")
    for block_size in (7, 64, 100_000):
        config = TrainConfig(block_size=block_size, loss_on="solution")
        blocks = pack_blocks(examples, block_size, pad_id=0)["input_ids"]
        assert sequence_count(PROMPTS, COMPLETIONS, tokenizer, config) == len(blocks)
    assert sequence_count(PROMPTS, COMPLETIONS, tokenizer, TrainConfig(packing=False)) == len(PROMPTS)


def test_isolated_packing_gives_each_example_the_logits_it_has_alone(tiny_model_dir: Path, tokenizer) -> None:
    """The packed block's second example scores exactly as it does on its own; without isolation it does not."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    examples = tokenize_examples(PROMPTS[:2], COMPLETIONS[:2], tokenizer, "all")
    first, second = (ids for ids, _ in examples)
    width = len(first) + len(second)
    with torch.no_grad():
        alone = model(torch.tensor([second]), use_cache=False).logits[0]
        for isolate, same in ((True, True), (False, False)):
            block = PadCollator(tokenizer.eos_token_id)(
                [{key: value[0] for key, value in pack_blocks(examples, width, 0, isolate).items()}]
            )
            block.pop("labels")
            packed = model(**block, use_cache=False).logits[0, len(first) :]  # as the Trainer runs it
            assert torch.allclose(packed, alone, atol=1e-4) is same


def _params(folder: Path) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in AutoModelForCausalLM.from_pretrained(folder).state_dict().items()}


def test_full_finetune_lowers_loss_and_saves_a_loadable_checkpoint(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "checkpoint"
    out.with_name("checkpoint.tmp").mkdir()  # debris of a killed run is cleared
    config = TrainConfig(learning_rate=3e-3, batch_size=2, block_size=64, max_steps=12, logging_steps=1)
    result = train(str(tiny_model_dir), Dataset.from_dict(ROWS), out, config, progress=False)
    assert result.output_dir == out and result.steps == 12
    assert math.isfinite(result.train_loss) and result.seconds > 0
    assert result.tokens > 12 * 64  # every block but the last is full
    assert not out.with_name("checkpoint.tmp").exists()
    summary = json.loads((out / RESULT_FILE).read_text())
    assert summary["config"]["learning_rate"] == 3e-3 and summary["result"]["steps"] == 12
    losses = [row["loss"] for row in summary["log_history"] if "loss" in row]
    assert len(losses) == 12 and all(math.isfinite(x) for x in losses)

    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    before, after = _params(tiny_model_dir), _params(out)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    ids = torch.tensor([tok(TEXTS[0])["input_ids"]])
    with torch.no_grad():
        trained_loss = model(ids, labels=ids).loss.item()
        base_loss = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(ids, labels=ids).loss.item()
    assert trained_loss < base_loss


def test_lora_on_solution_only_merges_into_a_plain_checkpoint(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "lora"
    out.mkdir()
    (out / "stale.txt").write_text("an older checkpoint is replaced")
    config = TrainConfig(
        learning_rate=1e-2,
        batch_size=4,
        block_size=64,
        packing=False,
        loss_on="solution",
        lora=True,
        lora_r=4,
        lora_alpha=8,
        max_steps=3,
        logging_steps=1,
    )
    result = train(str(tiny_model_dir), Dataset.from_dict(ROWS), out, config, progress=False)
    assert math.isfinite(result.train_loss)
    assert not (out / "stale.txt").exists() and not out.with_name("lora.old").exists()
    assert not (out / "adapter_config.json").exists()
    before, after = _params(tiny_model_dir), _params(out)
    assert before.keys() == after.keys()  # no lora_A/lora_B left: the adapter was merged
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all("proj" in k for k in changed)  # only the adapted linear layers moved


def test_bad_inputs_are_named(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs 'prompt' and 'completion' columns"):
        train(str(tiny_model_dir), Dataset.from_dict({"body": ["x"]}), tmp_path / "c", TrainConfig())
    with pytest.raises(ValueError, match="training dataset is empty"):
        train(str(tiny_model_dir), Dataset.from_dict({"prompt": [], "completion": []}), tmp_path / "c", TrainConfig())
    with pytest.raises(ValueError, match="train.loss_on"):
        TrainConfig(loss_on="prompt")
    with pytest.raises(ValueError, match="train.warmup_ratio"):
        TrainConfig(warmup_ratio=1.0)
    with pytest.raises(ValueError, match="train.block_size"):
        TrainConfig(block_size=0)


def test_training_args_pass_through_and_clashes_are_named(tmp_path: Path) -> None:
    passed = TrainConfig(training_args={"optim": "sgd", "report_to": ["tensorboard"], "save_strategy": "steps"})
    args = training_arguments(passed, tmp_path)
    assert args.optim == "sgd" and args.report_to == ["tensorboard"] and args.save_strategy == "steps"
    assert training_arguments(TrainConfig(), tmp_path).report_to == []  # puzzleloop's default: no tracker
    for extra, message in (
        ({"learning_rate": 1.0}, "train.training_args.learning_rate: set train.learning_rate instead"),
        ({"output_dir": "x"}, "train.training_args.output_dir: puzzleloop sets it"),
        ({"learning_rat": 1.0}, "train.training_args.learning_rat: not a field of transformers.TrainingArguments"),
        ({"report_to": ["clearml"]}, "train.training_args.report_to: clearml is not installed"),
    ):
        with pytest.raises(ValueError, match=message):
            training_arguments(TrainConfig(training_args=extra), tmp_path)


def test_a_killed_training_resumes_from_its_last_saved_step(tiny_model_dir: Path, tmp_path: Path) -> None:
    """kill -9 during a training that saves steps; the rerun continues from the last complete one and ends with
    the weights of an uninterrupted training."""
    saving = {"save_strategy": "steps", "save_steps": 2, "save_total_limit": 2}
    config = TrainConfig(learning_rate=3e-3, batch_size=2, block_size=32, max_steps=40, training_args=saving)
    dataset = Dataset.from_dict(ROWS)
    out = tmp_path / "checkpoint"
    script = (
        "import sys; from datasets import Dataset; from puzzleloop.config import TrainConfig; "
        "from puzzleloop.train import train; "
        f"train({str(tiny_model_dir)!r}, Dataset.from_dict({ROWS!r}), {str(out)!r}, TrainConfig(**{asdict(config)!r}), "
        "progress=False)"
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    saved = out.with_name("checkpoint.tmp") / "checkpoint-4" / "trainer_state.json"
    deadline = time.monotonic() + 120
    while not saved.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert saved.exists() and not out.exists()

    resumed = train(str(tiny_model_dir), dataset, out, config, progress=False)
    assert resumed.resumed_from_step is not None and resumed.resumed_from_step >= 4 and resumed.steps == 40
    assert not list(out.glob("checkpoint-*"))  # the saved steps stay out of the final checkpoint
    whole = train(str(tiny_model_dir), dataset, tmp_path / "whole", config, progress=False)
    assert whole.resumed_from_step is None
    after, expected = _params(out), _params(tmp_path / "whole")
    assert all(torch.allclose(after[k], expected[k], atol=1e-5) for k in expected)
