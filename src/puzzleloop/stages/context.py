"""What the stages of a run share (`RunContext`), and the typed result each stage stores (`StageResult`)."""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Self

from sandbox import Judge, Limits

from puzzleloop.config import RunConfig
from puzzleloop.corpus import Corpus
from puzzleloop.data import named_set
from puzzleloop.layout import RunLayout
from puzzleloop.models import load_model
from puzzleloop.processes import is_main, process_state
from puzzleloop.puzzles import NearDuplicateIndex


@dataclass
class StageResult:
    """What a stage's done-marker stores (its `to_info()`): its counts, and the seconds the stage took."""

    STAGE: ClassVar[str]
    seconds: float | None = field(default=None, kw_only=True)

    def to_info(self) -> dict[str, Any]:
        """Every field, less optional ones that are unset (readers test `"reused_from" in info`), seconds last."""
        unset_optional = {
            f.name for f in dataclasses.fields(self) if f.default is None and getattr(self, f.name) is None
        }
        info = {k: v for k, v in dataclasses.asdict(self).items() if k not in unset_optional and k != "seconds"}
        return info | ({} if self.seconds is None else {"seconds": self.seconds})

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> Self:
        """The result a done-marker holds (keys of other versions are left in the corpus, not read here)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in info.items() if key in names})

    @classmethod
    def stored(cls, corpus: Corpus, round_: int) -> Self | None:
        """The result round `round_` stored for this stage, or None while the stage has not finished."""
        info = corpus.stage_info(round_, cls.STAGE)
        return None if info is None else cls.from_info(info)


class RunContext:
    """One run folder's settings, layout and corpus, its sandbox judges, and at most one loaded model.

    Under `accelerate launch` every process has one; the main process alone writes (`main`), and the others log
    nothing.
    """

    def __init__(self, config: RunConfig, log: Callable[[str], None] = print) -> None:
        self.config = config
        self.layout = RunLayout(Path(config.output_dir))
        self.main = is_main()
        self.log = log if self.main else lambda _: None
        with process_state().main_process_first():  # the main process creates the corpus file, then the rest read it
            self.corpus = Corpus(self.layout.corpus)
        self._loaded: tuple[str, Any, Any] | None = None
        self._judges: list[Judge] = []

    def judges(self) -> list[Judge]:
        """Two judges (two warm parents, so two hash seeds and random states): construction runs a program in
        each and keeps only outputs they agree on. The first one judges everything else."""
        while len(self._judges) < 2:
            self._add_judge()
        return self._judges

    def judge(self) -> Judge:
        return self._judges[0] if self._judges else self._add_judge()

    def _add_judge(self) -> Judge:
        limits = Limits(timeout=self.config.timeout, memory_mb=self.config.memory_mb)
        self._judges.append(Judge(workers=self.config.workers, limits=limits))
        return self._judges[-1]

    @cached_property
    def heldout_index(self) -> NearDuplicateIndex:
        """Every P3 test instance, for the contamination checks of seeds and proposals."""
        return NearDuplicateIndex((i.name, i.sat) for i in named_set("p3-test-all", self.config.p3_dir))

    def model(self, name_or_path: str) -> tuple[Any, Any]:
        """(model, tokenizer), loaded once while the same one is asked for."""
        if self._loaded is None or self._loaded[0] != name_or_path:
            self.release_model()
            self.log(f"loading model {name_or_path}")
            self._loaded = (name_or_path, *load_model(name_or_path, self.config.device))
        return self._loaded[1], self._loaded[2]

    def release_model(self) -> None:
        self._loaded = None
        gc.collect()

    def close(self) -> None:
        self.release_model()
        for judge in self._judges:
            judge.close()
        self.corpus.close()
