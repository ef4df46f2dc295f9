"""Useful tokens/s of plain ``model.generate`` versus puzzleloop's Sampler on one solve workload.

Workload: the first held-out P3 puzzles (test228 order) x n samples with the paper's 5-shot prompt.
"Useful" tokens are those up to each sample's stop (end of function, EOS); ``generate`` keeps decoding to
``max_new_tokens`` and prefills the prompt once per sample, which is what the Sampler avoids.

    python scripts/bench_sampling.py [--model smollm2-135m] [--puzzles 8] [--samples 16] [--max-new-tokens 128]
                                     [--skip-generate]
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import PreTrainedTokenizerBase

from puzzleloop.config import DEFAULT_MODEL
from puzzleloop.data import named_set
from puzzleloop.models import load_model
from puzzleloop.prompts import solve_prompt, tutorial_examples
from puzzleloop.puzzles import parse_puzzle
from puzzleloop.sampling import Sampler, SamplingConfig, stop_position


def five_shot_prompts(count: int) -> list[str]:
    """The paper's solve prompt (puzzleloop's own) for the first ``count`` test228 puzzles."""
    examples = tutorial_examples()
    return [solve_prompt(parse_puzzle(p.sat, p.name), examples) for p in named_set("p3-test228")[:count]]


def useful_tokens(tokenizer: PreTrainedTokenizerBase, tokens: list[int], eos_ids: set[int]) -> int:
    """Tokens a sample needed: up to and including the one that completes its stop, EOS, or all of them."""
    for k in range(1, len(tokens) + 1):
        if tokens[k - 1] in eos_ids or stop_position(tokenizer.decode(tokens[:k], skip_special_tokens=True)):
            return k
    return len(tokens)


def bench_generate(sampler: Sampler, prompts: list[str], n: int, config: SamplingConfig) -> tuple[int, float]:
    """Plain HF sampling, one prompt at a time with ``num_return_sequences=n``; returns (useful tokens, s)."""
    model, tokenizer = sampler.model, sampler.tokenizer
    torch.manual_seed(config.seed)
    useful, start = 0, time.perf_counter()
    for prompt in prompts:
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            out = model.generate(
                **inputs,
                do_sample=True,
                temperature=config.temperature,
                top_p=config.top_p,
                max_new_tokens=config.max_new_tokens,
                num_return_sequences=n,
                pad_token_id=tokenizer.pad_token_id,
            )
        generated = out[:, inputs.input_ids.shape[1] :].tolist()
        useful += sum(useful_tokens(tokenizer, row, sampler.eos_ids) for row in generated)
    return useful, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--puzzles", type=int, default=8)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-generate", action="store_true", help="time the Sampler only (the baseline is slow)")
    args = parser.parse_args()

    model, tokenizer = load_model(args.model, args.device)
    sampler = Sampler(model, tokenizer)
    prompts = five_shot_prompts(args.puzzles)
    config = SamplingConfig(temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=args.seed)
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    print(
        f"{args.model} on {model.device} ({torch.get_num_threads()} threads): {len(prompts)} puzzles x "
        f"{args.samples} samples, prompts {min(lengths)}-{max(lengths)} tokens, "
        f"max_new_tokens {args.max_new_tokens}, temperature {args.temperature}"
    )

    if not args.skip_generate:
        base_useful, base_s = bench_generate(sampler, prompts, args.samples, config)
        print(f"generate: {base_useful} useful tokens in {base_s:.1f} s = {base_useful / base_s:.1f} useful tok/s")

    result = sampler.sample(prompts, args.samples, config, progress="sampler")
    ours = sampler.stats
    ours_useful = sum(c.num_tokens for row in result for c in row)
    finished = sum(c.finished for row in result for c in row)
    print(
        f"sampler:  {ours_useful} useful tokens in {ours.seconds:.1f} s = {ours_useful / ours.seconds:.1f} "
        f"useful tok/s ({finished}/{len(prompts) * args.samples} finished, prefill {ours.prefill_tokens} tokens, "
        f"{ours.decode_steps} decode steps)"
    )
    if not args.skip_generate:
        print(f"speed-up: {(ours_useful / ours.seconds) / (base_useful / base_s):.2f}x")


if __name__ == "__main__":
    main()
