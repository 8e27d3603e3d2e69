"""Cost of stylizing: every built-in style and Texler et al.'s GeneratorJ (the configuration the paper's styles
use, random weights), per frame, beside one forward of the ``slow`` model per clip; Markdown tables.

    python benchmarks/style_cost.py                      # CPU, one thread, 224 px, 8 frames per timing
    python benchmarks/style_cost.py --device cuda        # GPU (the generator runs in half precision there)

On the CPU the figures are processor time (``time.process_time``) of one torch thread, so they hold on a
shared machine; a run on N idle cores takes up to N times less wall time. On CUDA they are wall times. Each
is the median of ``--repeats`` runs after a warm-up. The generator's multiply-accumulates are counted on its
convolutions. The last table is what one pair costs: styling a
T-frame clip in two styles against the probe's three forwards (anchor, dynamic and static views).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from lit_stbias.models import build
from lit_stbias.pairs import available_styles, stylize_image
from lit_stbias.pairs.styles import Style, register_style
from lit_stbias.pairs.texler import REFERENCE_CONFIG, GeneratorJ, GeneratorStep
from lit_stbias.probe import run_model


def median_seconds(fn, repeats: int, device: torch.device) -> float:
    """Median processor seconds (CPU) or wall seconds (CUDA) of ``fn``, after a warm-up run."""
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    fn()  # warm-up (lookup tables, texture tiles, oneDNN kernels)
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(clock() - start)
    return statistics.median(times)


def conv_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of the convolutions of one forward."""
    total = 0

    def count(module, _, output):
        nonlocal total
        kernel = module.weight.shape[1] * module.weight.shape[2] * module.weight.shape[3]
        total += output.numel() * kernel

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--frames", type=int, default=8, help="frames per timing (one batch)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--clip-frames", type=int, nargs="+", default=[8, 32], help="T of the pair-cost table")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    frames = torch.rand(args.frames, 3, args.size, args.size, device=device)

    generator = GeneratorJ(**REFERENCE_CONFIG).eval()
    params = sum(p.numel() for p in generator.parameters())
    macs = conv_macs(generator, torch.zeros(1, 3, args.size, args.size))
    register_style(Style("texler (reference_P)", (GeneratorStep(generator),), source="benchmark"))

    clock = "wall time" if device.type == "cuda" else f"processor time, {torch.get_num_threads()} thread(s)"
    print(f"device: {device} ({clock}), {args.size}x{args.size} frames, batches of {args.frames}\n")
    print(f"GeneratorJ reference_P: {params / 1e6:.2f} M parameters, {macs / 1e9:.1f} GMACs per frame\n")
    print("| style | ms per frame |")
    print("|---|---|")
    per_frame = {}
    for name in available_styles():
        seconds = median_seconds(lambda name=name: stylize_image(frames, name), args.repeats, device)
        per_frame[name] = seconds / args.frames
        print(f"| {name} | {1e3 * per_frame[name]:.2f} |")

    print("\n| model | input (B=1) | forward per clip (ms) |")
    print("|---|---|---|")
    forwards = {}
    for preset in ("tiny", "full"):
        model = build("slow", preset).eval().to(device)
        spec = model.input_spec
        clip = spec.example(1)
        clip = clip.to(device) if isinstance(clip, torch.Tensor) else [c.to(device) for c in clip]

        def forward(model=model, clip=clip):
            with torch.no_grad():
                run_model(model, clip)

        forwards[preset] = median_seconds(forward, args.repeats, device)
        print(f"| slow {preset} | {spec.num_frames}x{spec.size}px | {1e3 * forwards[preset]:.0f} |")

    texler = per_frame["texler (reference_P)"]
    slowest_builtin = max(v for k, v in per_frame.items() if not k.startswith("texler"))
    print("\n| clip T | two styles, built-in (ms) | two styles, GeneratorJ (ms) | 3 forwards slow tiny (ms) "
          "| 3 forwards slow full (ms) |")
    print("|---|---|---|---|---|")
    for t in args.clip_frames:
        print(f"| {t} | {2e3 * t * slowest_builtin:.0f} | {2e3 * t * texler:.0f} | {3e3 * forwards['tiny']:.0f} "
              f"| {3e3 * forwards['full']:.0f} |")


if __name__ == "__main__":
    main()
