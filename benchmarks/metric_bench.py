"""Cost of StaticDynamicBias: update time against a 3D ResNet-50 forward on the same batch, and peak memory
at 1e3 vs 1e5 pairs (each count in a fresh process, so the peaks do not mix).

    python benchmarks/metric_bench.py                 # C = 2048, B = 64, clips 8x112x112
    python benchmarks/metric_bench.py --clip-size 224 # the published input size (slow on CPU)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch


def update_cost(num_units: int, batch: int, repeats: int) -> float:
    """Mean seconds per update of a batch of (B, C) pairs, half dynamic, half static."""
    from lit_stbias.metrics import StaticDynamicBias

    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(batch, num_units, generator=g), torch.randn(batch, num_units, generator=g)
    factor = torch.arange(batch) % 2
    metric = StaticDynamicBias(num_units)
    metric.update(z1, z2, factor)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        metric.update(z1, z2, factor)
    return (time.perf_counter() - start) / repeats


def resnet50_3d_forward(batch: int, frames: int, size: int) -> float:
    """Seconds for one forward of pytorchvideo's 3D ResNet-50 (slow_r50 settings) on (B, 3, T, S, S)."""
    from pytorchvideo.models.resnet import create_resnet

    model = create_resnet(model_depth=50, model_num_class=400,
                          head_pool_kernel_size=(frames, size // 32, size // 32)).eval()
    clips = torch.rand(batch, 3, frames, size, size)
    with torch.inference_mode():
        model(clips[:2])  # warm-up
        start = time.perf_counter()
        model(clips)
        return time.perf_counter() - start


def stream_pairs(num_pairs: int, num_units: int, batch: int) -> dict:
    """Stream ``num_pairs`` pairs through the metric; report peak RSS of this process (MiB)."""
    from lit_stbias.metrics import StaticDynamicBias

    metric = StaticDynamicBias(num_units)
    g = torch.Generator().manual_seed(1)
    done = 0
    while done < num_pairs:
        b = min(batch, num_pairs - done)
        z = torch.randn(b, num_units, generator=g)
        metric.update(z, z + torch.randn(b, num_units, generator=g), torch.arange(b) % 2)
        done += b
    metric.compute()
    return {"pairs": num_pairs, "peak_rss_mib": peak_rss_mib()}


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM). Unlike ru_maxrss it starts afresh at exec, so a child
    started from a large parent does not report the parent's size."""
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--clip-size", type=int, default=112)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--_stream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._stream:
        print(json.dumps(stream_pairs(args._stream, args.units, args.batch)))
        return

    torch.set_num_threads(torch.get_num_threads())
    update = update_cost(args.units, args.batch, args.repeats)
    forward = resnet50_3d_forward(args.batch, args.frames, args.clip_size)
    print(f"| update of B={args.batch} pairs, C={args.units} | {update * 1e3:.2f} ms |")
    clip = f"{args.frames}x{args.clip_size}x{args.clip_size}"
    print(f"| 3D ResNet-50 forward, B={args.batch}, {clip} | {forward:.2f} s |")
    print(f"| update / forward | {update / forward:.2e} |")
    for pairs in (1_000, 100_000):
        out = subprocess.run([sys.executable, __file__, "--_stream", str(pairs), "--units", str(args.units),
                              "--batch", str(args.batch)], check=True, capture_output=True, text=True)
        peak = json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mib"]
        print(f"| peak RSS, {pairs:,} pairs | {peak:.0f} MiB |")
    stored = 100_000 * 2 * args.units * 4 / 2**20
    print(f"| (storing 100,000 float32 pairs instead would need) | {stored:.0f} MiB |")


if __name__ == "__main__":
    main()
