"""Fine-tuning a causal LM on a round's training texts with `transformers.Trainer`.

The paper's recipe is the default: full fine-tune from the base model, loss on all tokens, examples packed
into 1024-token blocks with EOS between them, lr 5e-6. Options: loss on the solution only, no packing,
LoRA (merged before saving so the checkpoint loads as a plain model). Packed examples attend only to themselves
(per-example position ids, from which transformers builds a block-diagonal mask). The checkpoint is written into
a sibling `<name>.tmp` folder and renamed into place, so a killed training never leaves a half checkpoint; with
`training_args: {save_strategy: steps, ...}` a killed training resumes from its last saved step.
Runs on CPU and under `accelerate launch` (Trainer places the model; only process 0 writes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerBase, PrinterCallback, Trainer, TrainingArguments
from transformers.integrations import get_available_reporting_integrations
from transformers.trainer import TRAINER_STATE_NAME

from puzzleloop.config import TrainConfig
from puzzleloop.models import load_model

IGNORE_INDEX = -100  # label value the loss skips
RESULT_FILE = "puzzleloop_train.json"
RESUME_FILE = "puzzleloop_resume.json"  # in `<name>.tmp`: what the saved steps there were trained on

# TrainingArguments fields that a TrainConfig field already sets (one owner each), and those puzzleloop must set.
OWNED_BY_TRAIN_CONFIG = {
    "learning_rate": "learning_rate",
    "num_train_epochs": "epochs",
    "per_device_train_batch_size": "batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "warmup_steps": "warmup_ratio",
    "weight_decay": "weight_decay",
    "seed": "seed",
    "max_steps": "max_steps",
    "logging_steps": "logging_steps",
}
RESERVED = {
    "output_dir": "the checkpoint goes where the run's layout says",
    "remove_unused_columns": "the collator needs every column",
}


@dataclass(frozen=True)
class TrainResult:
    """Where the checkpoint went and what training cost. Tokens are the non-padding tokens seen; with isolated
    packing (no attention mask to count by) every token of the blocks, whose only padding is the last block's."""

    output_dir: Path
    train_loss: float
    steps: int
    tokens: int
    seconds: float
    resumed_from_step: int | None = None  # the saved step a killed training continued from


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


def pack_blocks(
    examples: Sequence[Example], block_size: int, pad_id: int, isolate: bool = True
) -> dict[str, list[list[int]]]:
    """Concatenate examples (their labels kept) and cut into blocks; the last block is padded.

    isolate: each block carries position ids that restart at every example (and at the padding), and no attention
    mask, so the model attends within each example only. Otherwise an attention mask hides the padding and each
    example sees the ones before it in its block.
    """
    ids = [t for e in examples for t in e[0]]
    labels = [t for e in examples for t in e[1]]
    positions = [p for e in examples for p in range(len(e[0]))]
    blocks: dict[str, list[list[int]]] = {"input_ids": [], "labels": []}
    for start in range(0, len(ids), block_size):
        chunk, chunk_labels = ids[start : start + block_size], labels[start : start + block_size]
        pad = block_size - len(chunk)
        blocks["input_ids"].append(chunk + [pad_id] * pad)
        blocks["labels"].append(chunk_labels + [IGNORE_INDEX] * pad)
        if isolate:
            blocks.setdefault("position_ids", []).append(positions[start : start + block_size] + list(range(pad)))
        else:
            blocks.setdefault("attention_mask", []).append([1] * len(chunk) + [0] * pad)
    return blocks


def truncate_examples(examples: Sequence[Example], block_size: int) -> dict[str, list[list[int]]]:
    """One sequence per example, cut to `block_size` tokens (padding happens per batch in the collator)."""
    return {
        "input_ids": [e[0][:block_size] for e in examples],
        "labels": [e[1][:block_size] for e in examples],
        "attention_mask": [[1] * min(len(e[0]), block_size) for e in examples],
    }


def sequence_count(
    prompts: Sequence[str], completions: Sequence[str], tokenizer: PreTrainedTokenizerBase, config: TrainConfig
) -> int:
    """How many training sequences `train` makes of these rows: packed blocks, or one per example."""
    examples = tokenize_examples(prompts, completions, tokenizer, config.loss_on)
    if not config.packing:
        return len(examples)
    return -(-sum(len(ids) for ids, _ in examples) // config.block_size)  # the last block is padded


class PadCollator:
    """Right-pads a batch to its longest sequence: pad id in inputs, -100 in labels, 0 in the mask and positions."""

    def __init__(self, pad_id: int):
        self.fill = {"input_ids": pad_id, "labels": IGNORE_INDEX, "attention_mask": 0, "position_ids": 0}

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        return {
            key: torch.tensor([r[key] + [self.fill[key]] * (width - len(r[key])) for r in rows], dtype=torch.long)
            for key in rows[0]
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


def training_arguments(config: TrainConfig, output_dir: Path, progress: bool = True) -> TrainingArguments:
    """The Trainer's arguments: the TrainConfig fields, puzzleloop's defaults, then `config.training_args` (which
    win). ValueError names a passed-through field that is unknown, already a TrainConfig field, or puzzleloop's."""
    known = {f.name for f in dataclasses.fields(TrainingArguments)}
    for key in config.training_args:
        if key in OWNED_BY_TRAIN_CONFIG:
            raise ValueError(f"train.training_args.{key}: set train.{OWNED_BY_TRAIN_CONFIG[key]} instead")
        if key in RESERVED:
            raise ValueError(f"train.training_args.{key}: puzzleloop sets it ({RESERVED[key]})")
        if key not in known:
            raise ValueError(f"train.training_args.{key}: not a field of transformers.TrainingArguments")
    cuda = torch.cuda.is_available()
    isolated = config.packing and config.isolate_examples
    defaults = {
        "lr_scheduler_type": "linear",
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": not progress,
        "include_num_input_tokens_seen": "all" if isolated else "non_padding",
        "bf16": cuda and torch.cuda.is_bf16_supported(),
        "dataloader_pin_memory": cuda,
        "ddp_find_unused_parameters": False,  # a causal LM (or its LoRA adapters) uses every trained parameter
    }
    try:
        args = TrainingArguments(
            output_dir=str(output_dir),
            remove_unused_columns=False,
            per_device_train_batch_size=config.batch_size,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            learning_rate=config.learning_rate,
            num_train_epochs=config.epochs,
            max_steps=config.max_steps,
            warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
            weight_decay=config.weight_decay,
            seed=config.seed,
            logging_steps=config.logging_steps,
            **(defaults | config.training_args),
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"train.training_args: {error}") from None
    missing = [name for name in args.report_to if name not in get_available_reporting_integrations()]
    if missing:  # the Trainer would find out only after a round of sampling
        raise ValueError(f"train.training_args.report_to: {missing[0]} is not installed (pip install {missing[0]})")
    return args


def train(
    model_name_or_path: str,
    dataset: Dataset,
    output_dir: Path,
    config: TrainConfig,
    progress: bool = True,
    logging_dir: Path | None = None,
) -> TrainResult:
    """Fine-tune `model_name_or_path` on the dataset's prompt/completion rows; save model + tokenizer in `output_dir`.

    An existing `output_dir` is replaced only once the new checkpoint is complete. `logging_dir`: where the
    TensorBoard tracker writes, when `training_args.report_to` names it (the environment's
    TENSORBOARD_LOGGING_DIR wins).
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
        pack_blocks(examples, config.block_size, pad_id, config.isolate_examples)
        if config.packing
        else truncate_examples(examples, config.block_size)
    )
    if config.lora:
        model = _with_lora(model, config)

    args = training_arguments(config, tmp_dir, progress)
    main = args.process_index == 0
    fingerprint = _fingerprint(model_name_or_path, config, rows)
    resume_from = _resumable_step(tmp_dir, fingerprint)
    if main and resume_from is None:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir)  # left by a killed run, with no saved step of this very training
        tmp_dir.mkdir(parents=True)
        (tmp_dir / RESUME_FILE).write_text(json.dumps({"fingerprint": fingerprint}) + "\n")
    with _environment("TENSORBOARD_LOGGING_DIR", logging_dir):  # read when the Trainer makes its callbacks
        trainer = Trainer(
            model=model, args=args, train_dataset=Dataset.from_dict(rows), data_collator=PadCollator(pad_id)
        )
    if not progress:
        trainer.remove_callback(PrinterCallback)
    started = time.monotonic()
    outcome = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    seconds = time.monotonic() - started
    result = TrainResult(
        output_dir=output_dir,
        train_loss=float(outcome.training_loss),
        steps=int(outcome.global_step),
        tokens=int(trainer.state.num_input_tokens_seen),
        seconds=seconds,
        resumed_from_step=int(resume_from.name.split("-")[1]) if resume_from else None,
    )
    if main:
        trained = trainer.accelerator.unwrap_model(trainer.model)
        if config.lora:
            trained = trained.merge_and_unload()
        _save_atomically(trained, tokenizer, tmp_dir, output_dir, config, result, trainer.state.log_history)
    trainer.accelerator.wait_for_everyone()
    return result


def _fingerprint(model_name_or_path: str, config: TrainConfig, rows: dict[str, list[list[int]]]) -> str:
    """What a training is: its start model, settings and token rows (a saved step resumes only the same one)."""
    text = json.dumps([model_name_or_path, asdict(config), rows], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _resumable_step(tmp_dir: Path, fingerprint: str) -> Path | None:
    """The last complete step a killed run of this same training saved in `tmp_dir`, or None. The Trainer writes
    a step's trainer state last, so a step a kill cut short has none and is passed over."""
    try:
        stored = json.loads((tmp_dir / RESUME_FILE).read_text())
    except (OSError, ValueError):
        return None
    if stored.get("fingerprint") != fingerprint:
        return None
    saved = [
        (int(match.group(1)), path)
        for path in tmp_dir.glob("checkpoint-*")
        if (match := re.fullmatch(r"checkpoint-(\d+)", path.name)) and (path / TRAINER_STATE_NAME).is_file()
    ]
    return max(saved)[1] if saved else None


@contextmanager
def _environment(name: str, value: Path | None) -> Iterator[None]:
    """Set an environment variable for the duration, unless it is set already or `value` is None."""
    if value is None or name in os.environ:
        yield
        return
    os.environ[name] = str(value)
    try:
        yield
    finally:
        del os.environ[name]


def _save_atomically(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    tmp_dir: Path,
    output_dir: Path,
    config: TrainConfig,
    result: TrainResult,
    log_history: list[dict[str, float]],
) -> None:
    """Write the checkpoint (and the loss curve) into `tmp_dir`, then rename it to `output_dir` (without the saved
    steps and their optimizer states, which only a resumed training needs)."""
    for step in tmp_dir.glob("checkpoint-*"):
        shutil.rmtree(step)
    (tmp_dir / RESUME_FILE).unlink(missing_ok=True)
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
