"""Fine-tuning a causal LM on a round's training texts with `transformers.Trainer`.

The paper's recipe is the default: full fine-tune from the base model, loss on all tokens, examples packed
into 1024-token blocks with EOS between them, lr 5e-6. Options: loss on the solution only, no packing,
LoRA (merged before saving so the checkpoint loads as a plain model). The checkpoint is written into a
sibling `<name>.tmp` folder and renamed into place, so a killed training never leaves a half checkpoint.
Runs on CPU and under `accelerate launch` (Trainer places the model; only process 0 writes).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerBase, PrinterCallback, Trainer, TrainingArguments

from puzzleloop.config import TrainConfig
from puzzleloop.models import load_model

IGNORE_INDEX = -100  # label value the loss skips
RESULT_FILE = "puzzleloop_train.json"


@dataclass(frozen=True)
class TrainResult:
    """Where the checkpoint went and what training cost (tokens are non-padding tokens seen)."""

    output_dir: Path
    train_loss: float
    steps: int
    tokens: int
    seconds: float


Example = tuple[list[int], list[int]]  # (input ids, labels)


def tokenize_examples(
    prompts: Sequence[str], completions: Sequence[str], tokenizer: PreTrainedTokenizerBase, loss_on: str
) -> list[Example]:
    """Token ids of each prompt + completion followed by EOS, with labels: all tokens, or the completion's only.

    With loss on the completion, tokens ending at or before the prompt's last character are masked; offsets come
    from the fast tokenizer, so the ids are exactly those of the whole text (no split at the boundary).
    """
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token to separate training examples")
    solution = loss_on == "solution"
    if solution and not tokenizer.is_fast:
        raise ValueError("loss_on='solution' needs a fast tokenizer (character offsets)")
    texts = [prompt + completion for prompt, completion in zip(prompts, completions, strict=True)]
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=solution)
    examples = []
    for i, ids in enumerate(enc["input_ids"]):
        labels = list(ids)
        if solution:
            if not completions[i]:
                raise ValueError(f"training row {i} has an empty completion to put the loss on")
            begin = len(prompts[i])
            offsets = enc["offset_mapping"][i]
            labels = [IGNORE_INDEX if end <= begin else t for t, (_, end) in zip(ids, offsets, strict=True)]
        examples.append(([*ids, tokenizer.eos_token_id], [*labels, tokenizer.eos_token_id]))
    return examples


def pack_blocks(examples: Sequence[Example], block_size: int, pad_id: int) -> dict[str, list[list[int]]]:
    """Concatenate examples (their labels and masks kept) and cut into blocks; the last block is padded."""
    ids = [t for e in examples for t in e[0]]
    labels = [t for e in examples for t in e[1]]
    blocks: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "attention_mask": []}
    for start in range(0, len(ids), block_size):
        chunk, chunk_labels = ids[start : start + block_size], labels[start : start + block_size]
        pad = block_size - len(chunk)
        blocks["input_ids"].append(chunk + [pad_id] * pad)
        blocks["labels"].append(chunk_labels + [IGNORE_INDEX] * pad)
        blocks["attention_mask"].append([1] * len(chunk) + [0] * pad)
    return blocks


def truncate_examples(examples: Sequence[Example], block_size: int) -> dict[str, list[list[int]]]:
    """One sequence per example, cut to `block_size` tokens (padding happens per batch in the collator)."""
    return {
        "input_ids": [e[0][:block_size] for e in examples],
        "labels": [e[1][:block_size] for e in examples],
        "attention_mask": [[1] * min(len(e[0]), block_size) for e in examples],
    }


class PadCollator:
    """Right-pads a batch to its longest sequence: pad id in inputs, -100 in labels, 0 in the mask."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        fill = {"input_ids": self.pad_id, "labels": IGNORE_INDEX, "attention_mask": 0}
        return {
            key: torch.tensor([r[key] + [value] * (width - len(r[key])) for r in rows], dtype=torch.long)
            for key, value in fill.items()
        }


def _with_lora(model: torch.nn.Module, config: TrainConfig) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model  # only needed on this path

    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=0.0,
        target_modules="all-linear",
    )
    return get_peft_model(model, lora)


def train(
    model_name_or_path: str,
    dataset: Dataset,
    output_dir: Path,
    config: TrainConfig,
    progress: bool = True,
) -> TrainResult:
    """Fine-tune `model_name_or_path` on the dataset's prompt/completion rows; save model + tokenizer in `output_dir`.

    An existing `output_dir` is replaced only once the new checkpoint is complete.
    """
    if not {"prompt", "completion"} <= set(dataset.column_names):
        raise ValueError(f"training dataset needs 'prompt' and 'completion' columns (has {dataset.column_names})")
    if len(dataset) == 0:
        raise ValueError("training dataset is empty: no verified solutions were selected")
    output_dir = Path(output_dir)
    tmp_dir = output_dir.with_name(output_dir.name + ".tmp")

    # The Trainer moves the model to its device (one GPU per process under accelerate launch) and uses bf16
    # autocast there, so load fp32 weights on the CPU.
    model, tokenizer = load_model(model_name_or_path, device="cpu")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    examples = tokenize_examples(dataset["prompt"], dataset["completion"], tokenizer, config.loss_on)
    rows = (
        pack_blocks(examples, config.block_size, pad_id)
        if config.packing
        else truncate_examples(examples, config.block_size)
    )
    if config.lora:
        model = _with_lora(model, config)

    cuda = torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=str(tmp_dir),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        weight_decay=config.weight_decay,
        lr_scheduler_type="linear",
        seed=config.seed,
        logging_steps=config.logging_steps,
        save_strategy="no",
        report_to="none",
        disable_tqdm=not progress,
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        bf16=cuda and torch.cuda.is_bf16_supported(),
        dataloader_pin_memory=cuda,
    )
    main = args.process_index == 0
    if main and tmp_dir.exists():
        shutil.rmtree(tmp_dir)  # left by a killed run
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_dict(rows), data_collator=PadCollator(pad_id))
    if not progress:
        trainer.remove_callback(PrinterCallback)
    started = time.monotonic()
    outcome = trainer.train()
    seconds = time.monotonic() - started
    result = TrainResult(
        output_dir=output_dir,
        train_loss=float(outcome.training_loss),
        steps=int(outcome.global_step),
        tokens=int(trainer.state.num_input_tokens_seen),
        seconds=seconds,
    )
    if main:
        trained = trainer.accelerator.unwrap_model(trainer.model)
        if config.lora:
            trained = trained.merge_and_unload()
        _save_atomically(trained, tokenizer, tmp_dir, output_dir, config, result, trainer.state.log_history)
    trainer.accelerator.wait_for_everyone()
    return result


def _save_atomically(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    tmp_dir: Path,
    output_dir: Path,
    config: TrainConfig,
    result: TrainResult,
    log_history: list[dict[str, float]],
) -> None:
    """Write the checkpoint (and the loss curve) into `tmp_dir`, then rename it to `output_dir`."""
    model.save_pretrained(tmp_dir)
    tokenizer.save_pretrained(tmp_dir)
    summary = {
        "config": asdict(config),
        "result": {**asdict(result), "output_dir": str(output_dir)},
        "log_history": log_history,
    }
    (tmp_dir / RESULT_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    old_dir = output_dir.with_name(output_dir.name + ".old")
    if old_dir.exists():
        shutil.rmtree(old_dir)
    if output_dir.exists():
        os.replace(output_dir, old_dir)
    os.replace(tmp_dir, output_dir)
    if old_dir.exists():
        shutil.rmtree(old_dir)
