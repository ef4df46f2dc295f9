"""Self-play rounds: propose, filter, solve (+ verify), select, train, evaluate; every stage resumable.

The run folder's layout is `puzzleloop.layout`'s. Under `accelerate launch` every process takes part in the
sampling stages and in training (`puzzleloop.processes`); the main process alone runs the others and writes.
A stage writes its outputs atomically (or commits them in one transaction) before its done-marker, so a run that
was killed redoes at most the stage it was in, and `--resume` skips every finished stage.
"""

from __future__ import annotations

import dataclasses
import gc
import random
import time
from collections import Counter
from collections.abc import Callable
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from sandbox import Judge, Limits

from puzzleloop.cards import CARD_FILE, command_line, model_card
from puzzleloop.config import ConfigError, EvalConfig, HeldoutConfig, RunConfig, config_to_yaml, load_config
from puzzleloop.construct import (
    TargetForm,
    abduction_prompt,
    agreed_outputs,
    constructed_proposals,
    output_proposal,
    program_examples,
    target_form,
)
from puzzleloop.corpus import ORIGINS, Attempt, Corpus, CorpusError, PuzzleRecord, PuzzleRow
from puzzleloop.data import NAMED_SETS, load_heldout, load_seed_puzzles, named_set
from puzzleloop.evaluate import evaluate
from puzzleloop.files import append_jsonl, read_jsonl_objects, write_json_atomic, write_jsonl_atomic, write_text_atomic
from puzzleloop.filters import FilterResult, Proposal, filter_proposals, kept
from puzzleloop.layout import RunLayout
from puzzleloop.models import load_model
from puzzleloop.processes import is_main, process_state, shared, wait_for_everyone
from puzzleloop.prompts import (
    ProposePrompt,
    SeedExample,
    SolvedExample,
    proposal_from_completion,
    propose_prompt,
    solution_from_completion,
    solve_prompt,
    tutorial_examples,
)
from puzzleloop.puzzles import NearDuplicateIndex, canonical_hash, parse_puzzle
from puzzleloop.sampling import Completion, Sampler, SamplingConfig
from puzzleloop.selection import select_training_set, synthetic_share, training_rows
from puzzleloop.tracking import RoundTracker, flatten
from puzzleloop.train import train, training_arguments

SEED_TIMEOUT = 20.0  # seconds per reference solution in the seed stage
COLLECT_STAGES = ("propose", "filter", "solve", "relabel")  # a round's new verified pairs
LEARN_STAGES = ("select", "train", "eval")  # the model trained on them, and measured
STAGES = COLLECT_STAGES + LEARN_STAGES
SHARED_STAGES = ("propose", "solve", "train", "eval")  # every process samples a share, or trains data-parallel


def prepare_run(config_path: Path | None, output_dir: str | None, overrides: list[str], resume: bool) -> RunConfig:
    """Resolve the configuration and freeze it into the run folder (a resumed run reads the frozen one back)."""
    if resume:
        run_dir = Path(output_dir) if output_dir else Path(load_config(config_path, overrides).output_dir)
        layout = RunLayout(run_dir)
        frozen = layout.config
        if not frozen.exists():
            raise ConfigError(f"{frozen}: nothing to resume (no frozen config in {run_dir})")
        corpus = layout.corpus
        if (
            corpus.is_file()
            and corpus.stat().st_size == 0
            and any(p.name not in (frozen.name, corpus.name) for p in run_dir.iterdir())
        ):
            raise CorpusError(
                f"{corpus}: the corpus is empty (0 bytes) though the run has stage outputs; resuming "
                "would redo them from nothing, so restore the file or start a new --output-dir"
            )
        config = load_config(frozen, overrides)
        if overrides and (changed := _changed_settings(load_config(frozen), config)):
            raise ConfigError(
                f"{frozen}: --resume continues a run with its frozen settings, so --set cannot change "
                f"them ({changed}); start a new run in another --output-dir"
            )
    else:
        config = load_config(config_path, overrides + ([f"output_dir={output_dir}"] if output_dir else []))
        frozen = RunLayout(Path(config.output_dir)).config
        # compared as settings, not text: a frozen config of an earlier layout holds the same settings
        if frozen.exists() and (changed := _changed_settings(load_config(frozen), config)):
            raise ConfigError(
                f"{frozen.parent} already holds a run with other settings ({changed}): add --resume to continue "
                "it, or choose another --output-dir"
            )
    if config.eval.heldout not in NAMED_SETS:  # a named set is checked when P3 is read; a file is checked now
        load_heldout(config.eval.heldout)
    try:  # a wrong passed-through TrainingArguments field fails now, not after a round of sampling
        training_arguments(config.train, frozen.parent / "checkpoint", progress=False)
    except ValueError as error:
        raise ConfigError(f"{config_path or frozen}: {error}") from None
    config.output_dir = str(frozen.parent)
    if is_main():
        write_text_atomic(frozen, config_to_yaml(config))
    return config


def _changed_settings(old: RunConfig, new: RunConfig) -> str:
    """`key: old -> new` for each setting that differs, dotted for sections."""
    before, after = flatten(dataclasses.asdict(old), "."), flatten(dataclasses.asdict(new), ".")
    keys = list(after) + [key for key in before if key not in after]
    return ", ".join(f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in keys if before.get(k) != after.get(k))


# What each `propose.seeds` / `seed_pairs` value draws from: P3 named sets, and "ours" (seed_puzzles/).
SEED_SOURCES: dict[str, tuple[str, ...]] = {
    "p3-train155": ("p3-train155",),
    "ours": ("ours",),
    "both": ("p3-train155", "ours"),
    "all": ("p3-train155", "p3-train-rest", "ours"),
}


class SelfPlayRun:
    """Drives one run folder through its rounds; holds at most one loaded model at a time."""

    def __init__(self, config: RunConfig, log: Callable[[str], None] = print) -> None:
        self.config = config
        self.layout = RunLayout(Path(config.output_dir))
        self.main = is_main()
        self.log = log if self.main else lambda _: None
        with process_state().main_process_first():  # the main process creates the corpus file, then the rest read it
            self.corpus = Corpus(self.layout.corpus)
        self._loaded: tuple[str, Any, Any] | None = None
        self._judges: list[Judge] = []
        self._tracker: RoundTracker | None = None

    # -- resources -------------------------------------------------------------------------------------
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
        if self._loaded is None or self._loaded[0] != name_or_path:
            self._release_model()
            self.log(f"loading model {name_or_path}")
            self._loaded = (name_or_path, *load_model(name_or_path, self.config.device))
        return self._loaded[1], self._loaded[2]

    def _release_model(self) -> None:
        self._loaded = None
        gc.collect()

    def tracker(self) -> RoundTracker:
        """The trackers `train.training_args.report_to` names, for the rounds' metrics lines (opened once)."""
        if self._tracker is None:
            # the Trainer's own reading of report_to (a name, a list, "all" or "none"), so both use the same trackers
            report_to = training_arguments(self.config.train, self.layout.root, progress=False).report_to
            config = dataclasses.asdict(self.config)
            self._tracker = RoundTracker(report_to, self.layout.tracking, "rounds", config)
        return self._tracker

    def close(self) -> None:
        self._release_model()
        for judge in self._judges:
            judge.close()
        if self._tracker is not None:
            self._tracker.close()
        self.corpus.close()

    # -- the loop --------------------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        try:
            self.seed()
            self._stage(0, "eval", lambda: self._evaluate(0, self.config.model_name_or_path))
            for round_ in range(1, self.config.rounds + 1):
                self.collect(round_)
                self._stages(round_, LEARN_STAGES)
            return self.write_metrics()
        finally:
            self.close()

    def seed(self) -> None:
        """Round 0's seed pairs, when the run has any."""
        if self.config.seed_pairs != "none":
            self._stage(0, "seed", self._seed_pairs)

    def collect(self, round_: int) -> None:
        """A round's new verified pairs (propose, filter, solve, relabel), without training on them: experiments
        that train their own arms on one shared corpus use this."""
        self._stages(round_, COLLECT_STAGES)

    def _stages(self, round_: int, stages: tuple[str, ...]) -> None:
        for stage in stages:
            self._stage(round_, stage, lambda s=stage: getattr(self, f"_{s}")(round_))

    def _stage(self, round_: int, stage: str, body: Callable[[], dict[str, Any]]) -> None:
        wait_for_everyone()  # every process sees the outputs and done-markers of the stages before
        if self.corpus.stage_done(round_, stage):
            self.log(f"round {round_} {stage}: done earlier, skipped")
            return
        self.log(f"round {round_} {stage}: starting")
        started = time.time()
        if stage not in SHARED_STAGES and not self.main:
            return
        info = body()
        if not self.main:
            return
        info["seconds"] = round(time.time() - started, 1)
        self.corpus.mark_stage_done(round_, stage, info)
        self.log(f"round {round_} {stage}: {_brief(info)}")
        if stage == "eval":
            line = next(line for line in self.write_metrics() if line["round"] == round_)
            self.tracker().log(line)
            self._write_model_card(round_)

    def _write_model_card(self, round_: int) -> None:
        """README.md in the round's own checkpoint (none when the round kept an earlier model)."""
        checkpoint = self.layout.checkpoint(round_)
        if round_ == 0 or self.model_after(round_) != str(checkpoint) or not checkpoint.is_dir():
            return
        checks = [(self.corpus.stage_info(r, "filter") or {}).get("contamination") for r in range(1, round_ + 1)]
        checks = [c for c in checks if c]
        highest = [c["max_similarity_kept"] for c in checks if c.get("max_similarity_kept") is not None]
        contamination = {
            "checked": sum(c["checked"] for c in checks),
            "rejected": sum(c["rejected"] for c in checks),
            "threshold": self.config.filter.contamination_threshold,
            "max_similarity_kept": max(highest, default=None),
        } if checks else {}  # fmt: skip
        card = model_card(
            name=f"{self.layout.root.resolve().name}-round-{round_}",
            base_model=self.config.model_name_or_path,
            round_=round_,
            rounds=self.config.rounds,
            training_by_origin=(self.corpus.stage_info(round_, "select") or {}).get("examples_by_origin") or {},
            evaluation=self.corpus.stage_info(round_, "eval") or {},
            contamination=contamination,
            command=command_line(),
        )
        card.save(checkpoint / CARD_FILE)

    def model_after(self, round_: int) -> str:
        """The checkpoint that round `round_` produced (the start model for round 0 or an untrained round)."""
        if round_ == 0:
            return self.config.model_name_or_path
        info = self.corpus.stage_info(round_, "train") or {}
        return info.get("checkpoint") or self.model_after(round_ - 1)

    # -- stages ----------------------------------------------------------------------------------------
    def _seed_puzzles(self, which: str) -> list[SeedExample]:
        """The seeds `which` names (a key of SEED_SOURCES) with their reference solutions."""
        seeds: list[SeedExample] = []
        for source in SEED_SOURCES[which]:
            if source == "ours":
                seeds += [SeedExample(f"seed:{s.name}", s.sat, s.sol) for s in load_seed_puzzles()]
            else:
                instances = named_set(source, self.config.p3_dir)
                seeds += [SeedExample(i.name, i.sat, i.reference_solution) for i in instances]
        return seeds

    def _seed_pairs(self) -> dict[str, Any]:
        """Round 0 of the corpus: seed puzzles with their reference solutions, each judged by the sandbox.

        Their verified pairs join every round's training set (select.rounds: all), so the model learns the
        format and the answer types from correct examples before its own puzzles give it any. A seed as near to a
        P3 test instance as the contamination threshold is left out, like a proposal would be.
        """
        threshold = self.config.filter.contamination_threshold
        seeds = [s for s in self._seed_puzzles(self.config.seed_pairs) if s.sol is not None]
        kept = [s for s in seeds if self.heldout_index.nearest(s.sat, s.name)[1] < threshold]
        # A generous limit of its own: at the run's limit the slowest reference solutions (about 1 s here) passed
        # or not with the machine's load, so two runs of one preset trained on different seed sets.
        limits = Limits(timeout=max(SEED_TIMEOUT, self.config.timeout), memory_mb=self.config.memory_mb)
        with Judge(workers=self.config.workers, limits=limits) as judge:
            verdicts = judge.judge([(s.sat, s.sol) for s in kept])
        records = [
            PuzzleRecord(
                canonical_hash(s.sat, s.name),
                s.sat,
                parse_puzzle(s.sat, s.name).answer_type,
                0,
                "seed",
                (s.name,),
                origin="seed",
            )
            for s in kept
        ]
        self.corpus.add_puzzles(records)
        ids = {row.canonical_hash: row.id for row in self.corpus.puzzles(round=0)}
        for record, seed, verdict in zip(records, kept, verdicts, strict=True):
            self.corpus.record_attempts(ids[record.canonical_hash], 0, [Attempt(seed.sol, verdict.status, "seed")])
        return {
            "seeds": len(seeds),
            "near_heldout": len(seeds) - len(kept),
            "verified": sum(v.status == "verified" for v in verdicts),
            "statuses": dict(Counter(v.status for v in verdicts)),
        }

    def _propose_prompts(self, round_: int) -> list[ProposePrompt]:
        cfg = self.config.propose
        rng = random.Random(f"{self.config.seed}-propose-{round_}")
        seeds = self._seed_puzzles(cfg.seeds)
        if cfg.mode == "abduction":
            examples = program_examples(seeds, self.judge())
            return [abduction_prompt(examples, cfg.shots, rng) for _ in range(cfg.prompts)]
        return [propose_prompt(seeds, cfg.shots, rng, cfg.with_solution) for _ in range(cfg.prompts)]

    def proposer(self, round_: int) -> str:
        """The model that proposes in `round_`: the last round's, or the start model with `propose.model: base`."""
        return self.config.model_name_or_path if self.config.propose.model == "base" else self.model_after(round_ - 1)

    def _propose(self, round_: int) -> dict[str, Any]:
        cfg = self.config.propose
        path = self.layout.proposals(round_)
        rows = read_jsonl_objects(path, torn_tail=True)
        per_prompt = Counter(row["prompt"] for row in rows)
        done = {i for i, count in per_prompt.items() if count == cfg.samples_per_prompt}
        if self.main:
            write_jsonl_atomic(path, [row for row in rows if row["prompt"] in done])  # drop what a kill left half-done
        prompts = self._propose_prompts(round_)
        model, tokenizer = self.model(self.proposer(round_))
        sampler = Sampler(model, tokenizer)
        block = max(1, self.config.block_sequences // cfg.samples_per_prompt)
        for start in range(0, len(prompts), block):
            pending = [i for i in range(start, min(start + block, len(prompts))) if i not in done]
            if not pending:
                continue
            sampling = SamplingConfig.of(
                cfg.sampling,
                batch_size=self.config.batch_size,
                seed=self.config.seed * 7919 + round_ * 131 + start,
                functions=2 if cfg.with_solution or cfg.mode == "abduction" else 1,
            )
            label = self.main and f"propose {start + 1}-{pending[-1] + 1}/{len(prompts)}"
            share = partial(_sample_seeded, sampler, cfg.samples_per_prompt, sampling, label)
            completions = shared([(i - start, prompts[i].text) for i in pending], share)
            if not self.main:
                continue
            append_jsonl(
                path,
                [
                    {
                        "prompt": i,
                        "sample": j,
                        "seeds": list(prompts[i].seeds),
                        "next_name": prompts[i].next_name,
                        "completion": c.text,
                        "tokens": c.num_tokens,
                    }
                    for i, samples in zip(pending, completions, strict=True)
                    for j, c in enumerate(samples)
                ],
            )
        return {"proposed": len(prompts) * cfg.samples_per_prompt, "proposer": self.proposer(round_)}

    def _proposal_rows(self, round_: int) -> list[dict[str, Any]]:
        """The round's proposals, each with the name its prompt left open (rows written before that was stored
        get it from their prompt, rebuilt from the run's seed)."""
        rows = read_jsonl_objects(self.layout.proposals(round_))
        if any("next_name" not in row for row in rows):
            prompts = self._propose_prompts(round_)
            rows = [{"next_name": prompts[row["prompt"]].next_name} | row for row in rows]
        return rows

    def _filter(self, round_: int) -> dict[str, Any]:
        cfg = self.config
        rows = self._proposal_rows(round_)
        removed: Counter = Counter()
        if cfg.propose.mode == "abduction":
            proposals, removed = constructed_proposals(
                (
                    (f"def {row['next_name']}({row['completion']}", row["next_name"], tuple(row["seeds"]))
                    for row in rows
                ),
                self.judges(),
                max_source_chars=cfg.filter.max_source_chars,
                max_target_chars=cfg.filter.max_target_chars,
            )
        else:
            proposals = []
            for row in rows:
                source, solution = proposal_from_completion(
                    row["next_name"], row["completion"], cfg.propose.with_solution
                )
                proposals.append(Proposal(source=source, seeds=tuple(row["seeds"]), solution=solution))
        origin = "constructed" if cfg.propose.mode == "abduction" else "proposed"
        result = self._filtered(round_, proposals, removed, origin)
        self._store_puzzles(round_, result, origin, self.proposer(round_))
        info = {"funnel": result.counts(len(rows)), "removed": dict(result.removed), "kept": len(result.kept)}
        info["contamination"] = self._contamination(result)
        write_json_atomic(self.layout.filter_report(round_), info)
        return info

    def _filtered(self, round_: int, proposals: list[Proposal], removed: Counter, origin: str) -> FilterResult:
        this_round = {p.canonical_hash for p in self.corpus.puzzles(round=round_) if p.origin == origin}
        return filter_proposals(
            proposals,
            judge=self.judge(),
            known_hashes=self.corpus.known_hashes() - this_round,  # a rerun after a kill re-finds its own rows
            heldout_index=self.heldout_index,
            contamination_threshold=self.config.filter.contamination_threshold,
            trivial_check=self.config.filter.trivial_check,
            max_source_chars=self.config.filter.max_source_chars,
            removed=removed,
        )

    def _store_puzzles(self, round_: int, result: FilterResult, origin: str, proposer: str) -> None:
        self.corpus.add_puzzles(
            [
                PuzzleRecord(
                    canonical_hash=digest,
                    source=p.source,
                    answer_type=answer_type,
                    round=round_,
                    proposer=proposer,
                    prompt_seeds=p.seeds,
                    origin=origin,
                    solution=p.solution,
                )
                for p, answer_type, digest in result.kept
            ]
        )

    def _contamination(self, result: FilterResult) -> dict[str, Any]:
        threshold = self.config.filter.contamination_threshold
        similarities = [score for _, score in result.nearest_heldout]
        return {
            "checked": len(similarities),
            "rejected": result.removed["contaminated"],
            "threshold": threshold,
            "max_similarity_kept": max((s for s in similarities if s < threshold), default=None),
        }

    def _solve(self, round_: int) -> dict[str, Any]:
        """The solver's attempts at this round's proposed and constructed puzzles; a puzzle's own solution (its
        proposer's answer, a constructed puzzle's input) is judged first, with the puzzle's origin."""
        cfg = self.config.solve
        attempted = self.corpus.attempted_puzzle_ids(round_)
        todo = [p for p in self.corpus.puzzles(round=round_) if p.id not in attempted and p.origin != "relabeled"]
        model, tokenizer = self.model(self.model_after(round_ - 1))
        sampler = Sampler(model, tokenizer)
        examples = tutorial_examples(self.config.p3_dir)
        sampling = SamplingConfig.of(cfg.sampling, batch_size=self.config.batch_size, seed=self.config.seed * 104729)
        step = max(1, self.config.block_sequences // cfg.attempts)
        for start in range(0, len(todo), step):
            block = todo[start : start + step]
            label = self.main and f"solve {start + 1}-{start + len(block)}/{len(todo)}"
            work = partial(self._attempts, sampler, examples, sampling, label)
            attempts = shared([(row.id, row) for row in block], work)  # seeded by puzzle: the same after a resume
            if self.main:
                for row, puzzle_attempts in zip(block, attempts, strict=True):
                    self.corpus.record_attempts(row.id, round_, puzzle_attempts)
        puzzles = [p for p in self.corpus.puzzles(round=round_) if p.origin != "relabeled"]
        return {
            "puzzles": len(puzzles),
            "attempts": sum(p.attempts for p in puzzles),
            "verified_solutions": sum(p.successes for p in puzzles),
            "verified_puzzles": sum(1 for p in puzzles if p.successes),
            "verified_by_origin": self.corpus.verified_by_origin(round_),
        }

    def _attempts(
        self,
        sampler: Sampler,
        examples: list[SolvedExample],
        sampling: SamplingConfig,
        label: str | bool,
        block: list[tuple[int, PuzzleRow]],
    ) -> list[list[Attempt]]:
        """Each (seed id, puzzle) of a block's own solution, if it has one, and the solver's attempts, judged."""
        puzzles = [parse_puzzle(row.source, name=f"puzzle {row.id}") for _, row in block]
        prompts = [solve_prompt(p, examples) for p in puzzles]
        completions = sampler.sample(prompts, self.config.solve.attempts, sampling, label, [i for i, _ in block])
        solutions = [
            [(row.solution, row.origin)] * (row.solution is not None)
            + [(solution_from_completion(p, c.text), "proposed") for c in samples]
            for (_, row), p, samples in zip(block, puzzles, completions, strict=True)
        ]
        pairs = [(row.source, s) for (_, row), sols in zip(block, solutions, strict=True) for s, _ in sols]
        verdicts = iter(self.judge().judge(pairs))
        return [[Attempt(s, next(verdicts).status, origin) for s, origin in sols] for sols in solutions]

    def _relabel(self, round_: int) -> dict[str, Any]:
        """Hindsight relabeling: a wrong answer to a puzzle of target form becomes the verified solution of the
        same program with the target the answer actually gives, recomputed by every judge; such puzzles pass the
        same filters as constructed ones, and at most `solve.relabel_per_puzzle` are kept per puzzle."""
        cap = self.config.solve.relabel_per_puzzle
        if not cap:
            return {"relabeled": 0}
        proposals: list[Proposal] = []
        wrong: list[tuple[PuzzleRow, TargetForm, str]] = []
        for puzzle in self.corpus.puzzles(round=round_):
            form = target_form(puzzle.source) if puzzle.origin != "relabeled" else None
            if form is None:
                continue
            answers = dict.fromkeys(s.source for s in self.corpus.solutions(puzzle.id) if s.status == "wrong")
            wrong += [(puzzle, form, answer) for answer in list(answers)[: 2 * cap]]
        outputs = agreed_outputs(self.judges(), [(form.program, answer) for _, form, answer in wrong])
        removed: Counter = Counter()
        sources: dict[str, int] = {}  # relabeled puzzle source -> the puzzle it came from
        for (puzzle, form, _), output in zip(wrong, outputs, strict=True):
            seeds = (f"relabeled:{puzzle.id}",)
            limit = self.config.filter.max_target_chars
            proposal = output_proposal(output, form.program, form.param, seeds, limit, bound_answer=True)
            if isinstance(proposal, str):
                removed[proposal] += 1
                continue
            sources[proposal.source] = puzzle.id
            proposals.append(proposal)
        result = self._filtered(round_, proposals, removed, "relabeled")
        per_source: Counter = Counter()
        capped = FilterResult(removed=result.removed, nearest_heldout=result.nearest_heldout)
        for row in result.kept:
            per_source[sources[row[0].source]] += 1
            if per_source[sources[row[0].source]] <= cap:
                capped.kept.append(row)
        self._store_puzzles(round_, capped, "relabeled", "relabeled")
        for puzzle in self.corpus.puzzles(round=round_):
            if puzzle.origin == "relabeled" and puzzle.attempts == 0:
                self.corpus.record_attempts(
                    puzzle.id, round_, [Attempt(puzzle.solution or "", "verified", "relabeled")]
                )
        return {
            "wrong_answers": len(wrong),
            "funnel": result.counts(len(wrong)),
            "relabeled": len(capped.kept),
            "over_cap": len(result.kept) - len(capped.kept),
            "contamination": self._contamination(result),
        }

    def _select(self, round_: int) -> dict[str, Any]:
        dataset = select_training_set(self.corpus, self.config.select, latest_round=round_)
        write_jsonl_atomic(self.layout.training_rows(round_), dataset.to_list())
        return {
            "examples": len(dataset),
            "puzzles": len(set(dataset["puzzle_id"])) if len(dataset) else 0,
            "examples_by_origin": {o: dataset["origin"].count(o) for o in ORIGINS} if len(dataset) else {},
            "synthetic_share": round(synthetic_share(dataset), 4),
        }

    def _train(self, round_: int) -> dict[str, Any]:
        from datasets import Dataset

        rows = self._training_rows(round_)
        if not rows:
            self.log(f"round {round_} train: no verified examples, the model stays {self.model_after(round_ - 1)}")
            return {"checkpoint": None, "examples": 0}
        if self.config.train_from == "base" and round_ > 1 and self._training_rows(round_ - 1) == rows:
            # The same examples from the same start with the same seed: training again would rebuild that model.
            self.log(f"round {round_} train: the examples are round {round_ - 1}'s, so its model stays")
            return {"checkpoint": self.model_after(round_ - 1), "examples": len(rows), "reused_from": round_ - 1}
        start = self.config.model_name_or_path if self.config.train_from == "base" else self.model_after(round_ - 1)
        self._release_model()
        output = self.layout.checkpoint(round_)
        logs = self.layout.training_logs(round_)
        result = train(start, Dataset.from_list(rows), output, self.config.train, logging_dir=logs)
        return {
            "checkpoint": str(output),
            "start": start,
            "examples": len(rows),
            "train_loss": result.train_loss,
            "steps": result.steps,
            "tokens": result.tokens,
            "resumed_from_step": result.resumed_from_step,
        }

    def _training_rows(self, round_: int) -> list[dict[str, Any]]:
        path = self.layout.training_rows(round_)
        return training_rows(read_jsonl_objects(path), str(path))

    def _eval(self, round_: int) -> dict[str, Any]:
        model = self.model_after(round_)
        if model == self.model_after(round_ - 1):
            # Nothing was trained: the same model with the same seed would give the same samples again.
            previous = self.corpus.stage_info(round_ - 1, "eval") or {}
            self.log(f"round {round_} eval: the model did not change, reusing round {round_ - 1}'s measurement")
            return {key: value for key, value in previous.items() if key != "seconds"} | {"reused_from": round_ - 1}
        return self._evaluate(round_, model)

    def eval_config(self, model_name: str) -> EvalConfig:
        """The eval command's settings for measuring `model_name` the way this run measures its rounds."""
        heldout = {f.name: getattr(self.config.eval, f.name) for f in dataclasses.fields(HeldoutConfig)}
        return EvalConfig(
            **heldout,
            model=model_name,
            seed=self.config.seed,
            timeout=self.config.timeout,
            memory_mb=self.config.memory_mb,
            batch_size=self.config.batch_size,
            block_sequences=self.config.block_sequences,
            device=self.config.device,
            p3_dir=self.config.p3_dir,
            workers=self.config.workers,
        )

    def _evaluate(self, round_: int, model_name: str) -> dict[str, Any]:
        model, tokenizer = self.model(model_name)
        results = evaluate(
            self.eval_config(model_name),
            self.layout.eval_dir(round_),
            model=model,
            tokenizer=tokenizer,
            judge=self.judge(),
        )
        keys = [k for k in results if k.startswith(("pass@", "solved_within@"))]
        return {
            "model": model_name,
            "heldout": results["settings"]["heldout"],
            "evaluated_at": results.get("finished_at"),
            "puzzles": results["puzzles"],
            "n": results["n"],
            "solved_puzzles": results["solved_puzzles"],
            "status_counts": results["status_counts"],
            **{k: results[k] for k in keys},
        }

    # -- reporting -------------------------------------------------------------------------------------
    def metrics(self) -> list[dict[str, Any]]:
        """One record per evaluated round, gathered from the done-markers."""
        lines = []
        for round_ in range(0, self.config.rounds + 1):
            evaluation = self.corpus.stage_info(round_, "eval")
            if evaluation is None:
                continue
            line: dict[str, Any] = {"round": round_, **evaluation, "eval_seconds": evaluation.get("seconds")}
            if round_:
                infos = {stage: self.corpus.stage_info(round_, stage) or {} for stage in STAGES}
                proposed, funnel = infos["propose"].get("proposed"), infos["filter"].get("funnel") or {}
                line |= {
                    "proposed": proposed,
                    "funnel": funnel,
                    "kept_rate": round(kept(funnel, 0) / proposed, 4) if proposed else None,
                    "contamination": infos["filter"].get("contamination"),
                    "verified_puzzles": infos["solve"].get("verified_puzzles"),
                    "verified_solutions": infos["solve"].get("verified_solutions"),
                    "own_verified_by_origin": self.corpus.verified_by_origin(round_),
                    "relabeled": infos["relabel"].get("relabeled"),
                    "training_examples": infos["select"].get("examples"),
                    "training_by_origin": infos["select"].get("examples_by_origin"),
                    "synthetic_share": infos["select"].get("synthetic_share"),
                    "train_loss": infos["train"].get("train_loss"),
                    "stage_seconds": {stage: info.get("seconds") for stage, info in infos.items()},
                }
            lines.append(line)
        return lines

    def write_metrics(self) -> list[dict[str, Any]]:
        lines = self.metrics()
        if self.main:
            write_jsonl_atomic(self.layout.metrics, lines)
        return lines


def _sample_seeded(
    sampler: Sampler, n: int, sampling: SamplingConfig, label: str | bool, prompts: list[tuple[int, str]]
) -> list[list[Completion]]:
    """n samples of each (seed id, prompt)."""
    return sampler.sample([text for _, text in prompts], n, sampling, label, [i for i, _ in prompts])


def _brief(info: dict[str, Any]) -> str:
    shown = {k: v for k, v in info.items() if isinstance(v, int | float | str) and not isinstance(v, bool)}
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
