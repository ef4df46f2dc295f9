"""Useful tokens/s of puzzleloop's Sampler against fair library baselines and the machine's bound, in one run.

Workloads: `solve` (the paper's 5-shot prompt on the first test228 puzzles x n samples) and `propose` (8-shot
propose prompts from the train155 seeds x n samples). "Useful" tokens are those up to each sample's stop (the end
of its function, or EOS). Methods, on the same prompts and settings:

    generate        model.generate, one prompt at a time with num_return_sequences=n and the stop rule as a
                    StoppingCriteria (each sequence stops at its function's end)
    continuous      transformers' continuous batching (model.generate_batch), which stops at EOS only
    sampler-before  the Sampler as it was at git revision --before (default: the last one without shared-prefix
                    attention), loaded from git beside today's package: the baseline for this change
    sampler         puzzleloop.sampling.Sampler
    bound           tokens/s the dense fp32 GEMM rate of this machine, measured in the same run, allows a model
                    of this size (2 x parameters FLOPs per token); each method's share of it is printed

    python scripts/bench_sampling.py [--puzzles 8] [--samples 16] [--max-new-tokens 128]
        [--methods generate continuous sampler-before sampler] [--workloads solve propose] [--before REV]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import GenerationConfig, PreTrainedTokenizerBase, StoppingCriteria, StoppingCriteriaList

from puzzleloop.config import DEFAULT_MODEL
from puzzleloop.data import named_set
from puzzleloop.models import load_model
from puzzleloop.prompts import SeedExample, propose_prompt, solve_prompt, tutorial_examples
from puzzleloop.puzzles import parse_puzzle
from puzzleloop.sampling import Sampler, SamplingConfig, stop_position

METHODS = ("generate", "continuous", "sampler-before", "sampler")
BEFORE = "f06ae45"  # the last revision whose Sampler copied each prompt's KV rows to every sample's slot


def solve_prompts(count: int) -> list[str]:
    """The paper's solve prompt (puzzleloop's own) for the first `count` test228 puzzles."""
    examples = tutorial_examples()
    return [solve_prompt(parse_puzzle(p.sat, p.name), examples) for p in named_set("p3-test228")[:count]]


def propose_prompts(count: int) -> list[str]:
    """`count` 8-shot propose prompts from the train155 seeds, as a run's propose stage builds them."""
    seeds = [SeedExample(i.name, i.sat) for i in named_set("p3-train155")]
    rng = random.Random(0)
    return [propose_prompt(seeds, 8, rng).text for _ in range(count)]


def useful_tokens(tokenizer: PreTrainedTokenizerBase, tokens: list[int], eos_ids: set[int], functions: int) -> int:
    """Tokens a sample needed: up to and including the one that completes its stop, EOS, or all of them."""
    for k in range(1, len(tokens) + 1):
        text = tokenizer.decode(tokens[:k], skip_special_tokens=True)
        if tokens[k - 1] in eos_ids or stop_position(text, functions=functions) is not None:
            return k
    return len(tokens)


class StopRule(StoppingCriteria):
    """The Sampler's stop rule for `generate`: a sequence is done once its new text ends its function."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, prompt_length: int, functions: int):
        self.tokenizer, self.prompt_length, self.functions = tokenizer, prompt_length, functions

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object) -> torch.BoolTensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_length :], skip_special_tokens=True)
        done = [stop_position(text, functions=self.functions) is not None for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _generation_config(tokenizer: PreTrainedTokenizerBase, config: SamplingConfig, n: int) -> GenerationConfig:
    return GenerationConfig(
        do_sample=True,
        temperature=config.temperature,
        top_p=config.top_p,
        max_new_tokens=config.max_new_tokens,
        num_return_sequences=n,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


def _useful(sampler: Sampler, outputs: list[list[int]], functions: int) -> int:
    return sum(useful_tokens(sampler.tokenizer, row, sampler.eos_ids, functions) for row in outputs)


def run_generate(sampler: Sampler, prompts: list[str], n: int, config: SamplingConfig) -> int:
    model, tokenizer = sampler.model, sampler.tokenizer
    torch.manual_seed(config.seed)
    outputs = []
    for prompt in prompts:
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
        length = inputs.input_ids.shape[1]
        stop = StoppingCriteriaList([StopRule(tokenizer, length, config.functions)])
        with torch.inference_mode():
            out = model.generate(
                **inputs, generation_config=_generation_config(tokenizer, config, n), stopping_criteria=stop
            )
        outputs += out[:, length:].tolist()
    return _useful(sampler, outputs, config.functions)


def run_continuous(sampler: Sampler, prompts: list[str], n: int, config: SamplingConfig) -> int:
    model, tokenizer = sampler.model, sampler.tokenizer
    torch.manual_seed(config.seed)
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    with torch.inference_mode():
        results = model.generate_batch(ids, generation_config=_generation_config(tokenizer, config, n))
    return _useful(sampler, [result.generated_tokens for result in results.values()], config.functions)


def run_sampler(sampler: Sampler, prompts: list[str], n: int, config: SamplingConfig) -> int:
    result = sampler.sample(prompts, n, config, progress=False)
    return sum(c.num_tokens for row in result for c in row)  # the Sampler stops each sample at its stop


def sampler_at(revision: str) -> type:
    """The Sampler class of ``src/puzzleloop/sampling.py`` at a git revision, as a module of its own."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{revision}:src/puzzleloop/sampling.py"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType(f"sampling_at_{revision}")
    sys.modules[module.__name__] = module  # dataclasses look their module up while the source runs
    exec(compile(source, f"{revision}:src/puzzleloop/sampling.py", "exec"), module.__dict__)
    return module.Sampler


# Each returns the useful tokens it sampled.
RUNNERS: dict[str, Callable[[Sampler, list[str], int, SamplingConfig], int]] = {
    "generate": run_generate,
    "continuous": run_continuous,
    "sampler-before": run_sampler,
    "sampler": run_sampler,
}


def gemm_rate(size: int = 2048, repeats: int = 8) -> float:
    """Dense fp32 matrix-product FLOP/s on this machine (the best of `repeats`)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--puzzles", type=int, default=8, help="prompts per workload")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--workloads", nargs="+", choices=("solve", "propose"), default=["solve", "propose"])
    parser.add_argument("--before", default=BEFORE, help="git revision of the sampler-before baseline")
    args = parser.parse_args()

    model, tokenizer = load_model(args.model, args.device)
    sampler = Sampler(model, tokenizer)
    samplers = {"sampler-before": sampler_at(args.before)(model, tokenizer)} if "sampler-before" in args.methods else {}
    parameters = sum(p.numel() for p in model.parameters())
    rate = gemm_rate()
    bound = rate / (2 * parameters)
    print(
        f"{args.model} on {model.device} ({torch.get_num_threads()} threads), {parameters / 1e6:.0f}M parameters; "
        f"fp32 GEMM {rate / 1e9:.1f} GFLOP/s, so at most {bound:.0f} tokens/s at 2 FLOPs per parameter per token"
    )
    for workload in args.workloads:
        prompts = solve_prompts(args.puzzles) if workload == "solve" else propose_prompts(args.puzzles)
        functions = 1 if workload == "solve" else 2
        config = SamplingConfig(
            temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=args.seed, functions=functions
        )
        lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
        print(
            f"\n{workload}: {len(prompts)} prompts x {args.samples} samples, prompts {min(lengths)}-{max(lengths)} "
            f"tokens, max_new_tokens {args.max_new_tokens}, temperature {args.temperature}"
        )
        speeds = {}
        for method in args.methods:
            start = time.perf_counter()
            useful = RUNNERS[method](samplers.get(method, sampler), prompts, args.samples, config)
            seconds = time.perf_counter() - start
            speeds[method] = useful / seconds
            print(
                f"  {method:<14} {useful:>6} useful tokens in {seconds:7.1f} s = {speeds[method]:6.1f} useful tok/s "
                f"({speeds[method] / bound:.1%} of the bound)"
            )
        if "sampler" in speeds:
            for method, speed in speeds.items():
                if method != "sampler":
                    print(f"  sampler / {method}: {speeds['sampler'] / speed:.2f}x")


if __name__ == "__main__":
    main()
