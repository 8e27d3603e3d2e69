"""Analysis overhead: wall time of an analysis divided by the bare forward passes it needs, in the same run.

    python benchmarks/analysis_overhead.py --preset tiny --num-pairs 64
    python benchmarks/analysis_overhead.py --preset full --num-pairs 16 --frames 8 --size 112
    python benchmarks/analysis_overhead.py --memory 1000,10000     # peak RSS against the number of pairs

The analysis is `ProbeSession.run` (what `analyze.py` runs after its checks: the session's pairs, the hooked
forward passes, the metric updates, the results document). The bare forward passes are the model alone,
without hooks, on the very same (already made) views, three per video. The breakdown times each stage on its
own: making the clips, making the views (styles, shuffles), the hooked forward passes plus metric updates.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lit_stbias.analysis import ClipSettings, ProbeSession, load_model  # noqa: E402
from lit_stbias.pairs import collate_pairs  # noqa: E402

VIEWS = ("anchor", "dynamic", "static")


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def session_for(args, num_pairs: int) -> ProbeSession:
    model = load_model(args.model, args.preset).model
    clip = ClipSettings(num_frames=args.frames, size=args.size)
    return ProbeSession(model, args.data, num_pairs=num_pairs, clip=clip, batch_size=args.batch_size,
                        num_workers=args.num_workers)


def overhead(args) -> dict:
    session = session_for(args, args.num_pairs)
    model = session.model
    torch.set_num_threads(args.threads)
    pairs = session.pairs(seed=0)
    pairs[0]  # warm caches (bundled images) outside the timings
    with torch.inference_mode():
        model(collate_pairs([pairs[0]])["anchor"])  # warm-up forward

    # Best of `repeats` for both sides: this machine's timings wander by tens of percent between runs.
    analysis = min(timed(lambda: session.run(seeds=[0], progress=False))[1] for _ in range(args.repeats))

    # The same work stage by stage, single process.
    _, t_clips = timed(lambda: [pairs.source[i] for i in range(len(pairs))])
    items, t_items = timed(lambda: [pairs[i] for i in range(len(pairs))])
    batches = [collate_pairs(items[i:i + args.batch_size]) for i in range(0, len(items), args.batch_size)]

    def bare():
        with torch.inference_mode():
            for b in batches:
                for k in VIEWS:
                    model(b[k])

    t_forward = min(timed(bare)[1] for _ in range(args.repeats))
    probe = session.probe()
    _, t_probe = timed(lambda: [probe.update(b) for b in batches])
    return {
        "model": f"{args.model} ({args.preset})",
        "clip": f"{session.clip.num_frames}x{session.clip.size}",
        "pairs": args.num_pairs, "workers": args.num_workers, "threads": args.threads, "repeats": args.repeats,
        "analysis_s": analysis, "bare_forward_s": t_forward, "ratio": analysis / t_forward,
        "clips_s": t_clips, "views_s": t_items - t_clips,
        "hooked_forward_and_metric_s": t_probe, "hooks_and_metric_s": t_probe - t_forward,
    }


def peak_rss(num_pairs: int, args) -> float:
    """Peak RSS (MiB) of a fresh process running the analysis on ``num_pairs`` pairs."""
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from lit_stbias.analysis import ProbeSession, load_model\n"
        "m = load_model(%r, %r).model\n"
        "ProbeSession(m, %r, num_pairs=%d, batch_size=%d).run(seeds=[0], progress=False)\n"
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')) / 1024)\n"
    ) % (str(Path(__file__).resolve().parents[1]), args.model, args.preset, args.data, num_pairs, args.batch_size)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="slow")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--data", default="synthetic:motion")
    p.add_argument("--num-pairs", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--num-workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--repeats", type=int, default=3, help="best of this many runs of each side")
    p.add_argument("--frames", type=int)
    p.add_argument("--size", type=int)
    p.add_argument("--memory", help="comma-separated pair counts: report peak RSS of each instead")
    args = p.parse_args()
    if args.memory:
        for n in (int(x) for x in args.memory.split(",")):
            print(json.dumps({"pairs": n, "peak_rss_mib": round(peak_rss(n, args), 1)}), flush=True)
        return
    result = overhead(args)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}, indent=2))


if __name__ == "__main__":
    main()
