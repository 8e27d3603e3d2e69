"""Measure how much static and dynamic information any model's layers encode on any dataset.

    python analyze.py --model slow --preset tiny --data synthetic:motion --out runs/analysis/slow
    python analyze.py --ckpt runs/<run>/checkpoints/last.ckpt --data synthetic:mixed --seeds 0,1,2 --out DIR
    python analyze.py --model fusionseg --data synthetic-vos:diffuse --out DIR
    python analyze.py --model slow --data synthetic:motion --devices 2 --accelerator cpu --out DIR   # DDP
    python analyze.py compare DIR1 DIR2 ... --out DIR
    python analyze.py center-bias --data synthetic-vos:diffuse --out DIR

Writes bias.json, units.csv, PNG plots and a self-contained report.html into --out.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _floats(text: str) -> list[float]:
    """``0.1,0.5,0.9`` or a range ``0.1:0.9:0.1``."""
    if ":" in text:
        lo, hi, step = (float(x) for x in text.split(":"))
        count = int(round((hi - lo) / step)) + 1
        return [round(lo + i * step, 10) for i in range(count)]
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def measure_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="analyze.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="zoo model name (see --list-models)")
    p.add_argument("--preset", default="tiny", choices=["tiny", "full"])
    p.add_argument("--ckpt", help="checkpoint: a Lightning checkpoint of this project, or a state dict with --model")
    p.add_argument("--data", help="synthetic:appearance|motion|mixed, synthetic-vos[:diffuse], samples, or a folder")
    p.add_argument("--layers", help="comma-separated tap names (default: every tap of the model)")
    p.add_argument("--num-pairs", type=int, default=64, help="pairs per factor (videos, or frames for VOS)")
    p.add_argument("--seeds", type=_ints, default=[0], help="comma-separated seeds, e.g. 0,1,2,3")
    p.add_argument("--threshold", type=float, default=0.5, help="λ of the unit-wise classification")
    p.add_argument("--thresholds", type=_floats, default=None, help="λ sweep: 0.1,0.3 or 0.1:0.9:0.1")
    p.add_argument("--layer-score", default="pooled", choices=["pooled", "unit_mean"])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--num-classes", type=int, help="classes of the model's head (plain state dicts)")
    p.add_argument("--num-frames", type=int, help="clip length (default: the model's)")
    p.add_argument("--size", type=int, help="crop size (default: the model's)")
    p.add_argument("--out", help="output folder")
    p.add_argument("--list-models", action="store_true", help="print the zoo's model names and exit")
    trainer = p.add_argument_group("devices (Lightning Fabric)")
    trainer.add_argument("--accelerator", default="auto", help="cpu, cuda, mps or auto")
    trainer.add_argument("--devices", default="1", help="number of devices per node, or a list such as 0,1")
    trainer.add_argument("--num-nodes", type=int, default=1)
    trainer.add_argument("--strategy", default="auto", help="auto, ddp, ...")
    trainer.add_argument("--precision", default="32-true", help="32-true, 16-mixed, bf16-mixed")
    trainer.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run_measure(argv: list[str]) -> int:
    from lit_stbias.analysis import (
        DEFAULT_THRESHOLDS,
        AnalysisConfig,
        build_document,
        load_model,
        measure,
        validate,
        write_outputs,
    )

    args = measure_parser().parse_args(argv)
    if args.list_models:
        from lit_stbias.models import available

        print("\n".join(available()))
        return 0
    if not args.data or not args.out:
        raise ValueError("--data and --out are required (see --help).")
    config = AnalysisConfig(
        data=args.data, model=args.model, preset=args.preset, ckpt=args.ckpt,
        layers=[x for x in args.layers.split(",") if x] if args.layers else None,
        num_pairs=args.num_pairs, seeds=args.seeds, threshold=args.threshold,
        thresholds=args.thresholds or DEFAULT_THRESHOLDS, layer_score=args.layer_score,
        batch_size=args.batch_size, num_workers=args.num_workers, num_classes=args.num_classes,
        num_frames=args.num_frames, size=args.size,
    )
    model, info = load_model(config)
    validate(config, model, info)

    from lightning.fabric import Fabric

    devices = args.devices if "," in args.devices or args.devices == "auto" else int(args.devices)
    fabric = Fabric(accelerator=args.accelerator, devices=devices, num_nodes=args.num_nodes,
                    strategy=args.strategy, precision=args.precision)
    fabric.launch()
    results, order = measure(config, model, info, device=fabric.device, autocast=fabric.autocast,
                             progress=fabric.is_global_zero and not args.no_progress)
    if fabric.is_global_zero:
        from lit_stbias.reports import summary_table

        info["devices"] = fabric.world_size
        doc = build_document(config, info, results, order)
        out = write_outputs(args.out, doc, results)
        print(summary_table(doc))
        print(f"\nwrote {out}/bias.json, units.csv, plots and report.html")
    fabric.barrier()
    return 0


def run_compare(argv: list[str]) -> int:
    from lit_stbias.reports import compare, load_doc

    p = argparse.ArgumentParser(prog="analyze.py compare", description="One figure and table across analysed runs.")
    p.add_argument("dirs", nargs="+", help="folders written by analyze.py (each holds bias.json)")
    p.add_argument("--labels", help="comma-separated labels (default: model@data of each run)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    docs = [load_doc(d) for d in args.dirs]
    labels = args.labels.split(",") if args.labels else [f"{d.get('model')}@{d.get('data')}" for d in docs]
    if len(labels) != len(docs):
        raise ValueError(f"{len(labels)} labels for {len(docs)} runs.")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    compare(docs, labels, out / "compare.png", out / "compare.md")
    print((out / "compare.md").read_text())
    print(f"wrote {out}/compare.png, compare.md, compare.csv")
    return 0


def run_center_bias(argv: list[str]) -> int:
    from lit_stbias.analysis import mean_mask
    from lit_stbias.reports import plot_center_bias

    p = argparse.ArgumentParser(prog="analyze.py center-bias", description="Mean ground-truth mask of a VOS dataset.")
    p.add_argument("--data", required=True, help="synthetic-vos[:centred|:diffuse] or a DAVIS-like folder")
    p.add_argument("--num-videos", type=int, default=32, help="videos of a synthetic dataset")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    mask = mean_mask(args.data, num_videos=args.num_videos, size=args.size, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stats = plot_center_bias(mask, out / "center_bias.png", title=f"Mean ground-truth mask: {args.data}")
    stats = {"data": args.data, **stats, "path": str(stats["path"])}
    (out / "center_bias.json").write_text(json.dumps(stats, indent=2))
    print(json.dumps(stats))
    print(f"wrote {out}/center_bias.png and center_bias.json")
    return 0


COMMANDS = {"compare": run_compare, "center-bias": run_center_bias}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = COMMANDS.get(argv[0]) if argv else None
    try:
        return command(argv[1:]) if command else run_measure(argv)
    except (ValueError, FileNotFoundError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"analyze.py: error: {' '.join(str(message).split())}", file=sys.stderr)  # one line
        return 2


if __name__ == "__main__":
    sys.exit(main())
