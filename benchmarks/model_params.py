"""Parameter counts (tiny and full presets) and tiny-preset timings of every zoo model, as a Markdown table.

    python benchmarks/model_params.py            # all models
    python benchmarks/model_params.py slow x3d   # some

Timings: median of a few inference forwards (batch 2) and training steps (forward + backward, batch 8) on
the tiny preset's declared input, on the CPU threads torch is given. Full presets are only built and counted.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import time

import torch

from lit_stbias.models import available, build
from lit_stbias.probe import run_model


def millions(model: torch.nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tiny_timings(name: str, repeats: int) -> tuple[float, float, float, str]:
    model = build(name, "tiny")
    spec = model.input_spec
    shape = f"{spec.size}px" if spec.two_stream else f"{spec.num_frames}x{spec.size}px"

    def infer():
        with torch.no_grad():
            run_model(model.eval(), spec.example(2))

    def train_step():
        model.train()
        run_model(model, spec.example(8)).float().mean().backward()

    return millions(model), median_seconds(infer, repeats), median_seconds(train_step, repeats), shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", default=available())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}\n")
    print("| model | tiny input | tiny params | tiny forward (B=2) | tiny train step (B=8) | full params |")
    print("|---|---|---|---|---|---|")
    for name in args.names:
        tiny, infer, step, shape = tiny_timings(name, args.repeats)
        full = build(name, "full")
        print(f"| {name} | {shape} | {tiny:.2f}M | {infer * 1e3:.0f} ms | {step * 1e3:.0f} ms "
              f"| {millions(full):.2f}M |")
        del full
        gc.collect()


if __name__ == "__main__":
    main()
