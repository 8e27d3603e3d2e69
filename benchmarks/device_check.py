"""The CUDA paths in one run, for a machine with a GPU (the test suite runs on CPU only).

    python benchmarks/device_check.py --out device_check.json     # exit code 0: every check passed

Checks, each recorded with its figures in the JSON:

1. **AMP training**: tiny FastOnly on synthetic motion, ``train.py fit`` with ``--trainer.precision 16-mixed``
   on one GPU; training steps per second, and the final loss is finite.
2. **Texler generators on the GPU**: a generator file (random weights, written here) runs in half precision on
   CUDA, gives float32 frames, and agrees with the CPU's float32 result within 2e-2.
3. **An analysis with the styles on the GPU**: ``ProbeSession`` on the GPU with that generator as one style
   (applied on the model's device, batched), and its wall time divided by the bare forward passes of the same
   model on the same views (the analysis/forward ratio), plus pairs per second.
4. **DDP** (only with two or more GPUs): ``analyze.py --devices 2`` gives the numbers of ``--devices 1``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lit_stbias.analysis import ClipSettings, ProbeSession  # noqa: E402
from lit_stbias.models import build  # noqa: E402
from lit_stbias.pairs import GeneratorJ, collate_pairs, get_style, load_styles, stylize  # noqa: E402

#: a small generator with every kind of layer the published ones have
GENERATOR = {"use_bias": True, "tanh": True, "append_smoothers": True, "resnet_blocks": 2,
             "filters": (8, 12, 16, 16, 12, 8), "input_channels": 3}


def generator_folder(folder: Path) -> str:
    """Write one generator with random weights and batch-norm statistics; return its style name."""
    net = GeneratorJ(**GENERATOR)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=g))
            elif tensor.is_floating_point():
                tensor.copy_(0.3 * torch.randn(tensor.shape, generator=g))
    torch.save(net.state_dict(), folder / "gpu_style.pth")
    load_styles(f"texler:{folder}")
    return "gpu_style"


def check_amp_training(work: Path) -> dict:
    command = [sys.executable, str(ROOT / "train.py"), "fit", "--config", str(ROOT / "configs/fast_motion.yaml"),
               "--trainer.accelerator", "gpu", "--trainer.devices", "1", "--trainer.precision", "16-mixed",
               "--trainer.max_epochs", "1", "--data.num_videos", "512", "--bias.every_n_epochs", "1",
               "--out", str(work), "--name", "amp", "--wandb", "false"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    summary_file = work / "amp" / "summary.json"
    ok = done.returncode == 0 and summary_file.is_file()
    summary = json.loads(summary_file.read_text()) if ok else {}
    loss = summary.get("metrics", {}).get("train/loss")
    return {"ok": ok and loss is not None and torch.isfinite(torch.tensor(loss)).item(), "seconds": seconds,
            "train_steps_per_s": 512 / 16 / seconds, "train_loss": loss, "val_acc1": summary.get("metrics", {})
            .get("val/acc1"), "stderr_tail": done.stderr[-500:] if not ok else ""}


def check_generator_half(style: str) -> dict:
    video = torch.rand(3, 4, 64, 64, generator=torch.Generator().manual_seed(0))
    on_gpu = stylize(video.cuda(), style)
    _, dtype = get_style(style).steps[0].network(on_gpu.device)
    error = (on_gpu.cpu() - stylize(video, style)).abs().max().item()
    return {"ok": on_gpu.dtype == torch.float32 and dtype == torch.float16 and error <= 2e-2,
            "network_dtype": str(dtype), "max_abs_error_vs_cpu": error}


def check_analysis(style: str, num_pairs: int) -> dict:
    model = build("slow", "full").cuda().eval()
    clip = ClipSettings(num_frames=8, size=112, styles=f"{style},astronaut,hubble")
    session = ProbeSession(model, "synthetic:motion", num_pairs=num_pairs, clip=clip, batch_size=8)
    session.run(seeds=[0], device="cuda", progress=False)  # warm-up: caches, cuDNN autotuning
    torch.cuda.synchronize()
    start = time.perf_counter()
    doc = session.run(seeds=[0], device="cuda", progress=False)
    torch.cuda.synchronize()
    analysis = time.perf_counter() - start
    pairs = session.pairs(seed=0)
    batches = [collate_pairs([pairs[i] for i in range(k, min(k + 8, len(pairs)))]) for k in range(0, len(pairs), 8)]
    views = [[b[v].cuda() if torch.is_tensor(b[v]) else b[v] for v in ("anchor", "dynamic", "static")]
             for b in batches]
    torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        for group in views:
            for view in group:
                model(view)
    torch.cuda.synchronize()
    forward = time.perf_counter() - start
    finite = all(torch.isfinite(torch.tensor(list(doc.tap(t)["layer_percent"].values()))).all() for t in doc.taps)
    return {"ok": bool(finite), "pairs": num_pairs, "analysis_s": analysis, "bare_forward_s": forward,
            "analysis_over_forward": analysis / forward, "pairs_per_s": num_pairs / analysis}


def check_ddp(work: Path) -> dict:
    common = [sys.executable, str(ROOT / "analyze.py"), "--model", "slow", "--data", "synthetic:motion",
              "--num-pairs", "32", "--layers", "stage4,stage5", "--accelerator", "gpu", "--no-progress"]
    docs = []
    for devices in (1, 2):
        out = work / f"ddp{devices}"
        done = subprocess.run([*common, "--devices", str(devices), "--out", str(out)], capture_output=True, text=True)
        if done.returncode != 0:
            return {"ok": False, "devices": devices, "stderr_tail": done.stderr[-500:]}
        docs.append(json.loads((out / "bias.json").read_text())["layers"])
    equal = all(docs[0][t]["unit_counts"] == docs[1][t]["unit_counts"] for t in docs[0])
    return {"ok": equal, "unit_counts_equal": equal}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="device_check.json", help="where the JSON of figures goes")
    parser.add_argument("--num-pairs", type=int, default=64, help="pairs per factor of the analysis check")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("device_check.py: no CUDA device here; run it on a machine with a GPU.", file=sys.stderr)
        return 2
    report = {"device": torch.cuda.get_device_name(0), "gpus": torch.cuda.device_count(), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        style = generator_folder(work)
        report["amp_training"] = check_amp_training(work)
        report["generator_half"] = check_generator_half(style)
        report["analysis"] = check_analysis(style, args.num_pairs)
        if torch.cuda.device_count() > 1:
            report["ddp"] = check_ddp(work)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    failed = [name for name, value in report.items() if isinstance(value, dict) and not value.get("ok")]
    if failed:
        print(f"device_check.py: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
