"""What ``train.py`` runs: one configured run, the embedded default, or the shuffle experiment.

* ``train.py`` (no arguments): tiny FastOnly and SlowOnly on the synthetic ``motion`` task (2 classes: right
  vs left, which only temporal order separates), 10 epochs of 2000 clips at 48 px, bias tracked every epoch;
  about 4 minutes on 2 CPU cores. Both models see the same 16-frame clips: FastOnly all 16 frames, SlowOnly
  every 4th (``temporal_stride`` 4 = SlowFast's alpha), as the paper's 32x2 and 8x8 models cover one duration.
* ``train.py shuffle-experiment``: every model on every task, once on ordered and once on shuffled frames;
  a table of top-1 accuracy and its relative drop (CSV, Markdown) and a bar chart.
* anything else: one run of :class:`~lit_stbias.lightning.cli.TrainCLI` (``--config``, overrides, ``--help``).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from lit_stbias.lightning.cli import run

ACTION_MODULE = "lit_stbias.lightning.ActionRecognitionModule"
ACTION_DATA = "lit_stbias.lightning.ActionDataModule"
#: SlowOnly sees every alpha-th frame of the clip FastOnly sees whole (alpha = 4 in the tiny SlowFast)
TEMPORAL_STRIDE = {"slow": 4, "c2d": 4, "i3d": 4, "fast": 1}
DEFAULT_MODELS = ("fast", "slow")
RESNETS = ("c2d", "i3d", "slow", "fast", "slowfast")


def action_config(
    model_name: str,
    task: str = "motion",
    *,
    shuffle: bool = False,
    epochs: int = 10,
    frames: int = 16,
    size: int = 48,
    num_videos: int = 2000,
    val_videos: int = 256,
    batch_size: int = 16,
    lr: float = 3e-3,
    num_classes: int = 2,
    bias_every: int = 1,
    num_pairs: int = 64,
    out: str = "runs",
    name: str | None = None,
    seed: int = 0,
    num_workers: int = 0,
    accelerator: str = "auto",
    wandb: bool = True,
) -> dict[str, Any]:
    """A complete configuration (as LightningCLI takes it) for one action run on a synthetic task."""
    return {
        "seed_everything": seed,
        "model": {"class_path": ACTION_MODULE, "init_args": {
            "model_name": model_name, "preset": "tiny", "num_classes": num_classes,
            "temporal_stride": TEMPORAL_STRIDE.get(model_name, 1), "shuffle_frames": shuffle,
            "optimizer": "adamw", "lr": lr, "warmup_steps": 60, "seed": seed,
            # the ResNet head's dropout (0.5) only slows tiny models down on these small synthetic sets
            "model_overrides": {"dropout_rate": 0.0} if model_name in RESNETS else None}},
        "data": {"class_path": ACTION_DATA, "init_args": {
            "task": task, "num_frames": frames, "size": size, "num_videos": num_videos, "val_videos": val_videos,
            "batch_size": batch_size, "num_workers": num_workers, "seed": seed}},
        "trainer": {"max_epochs": epochs, "accelerator": accelerator, "devices": 1, "log_every_n_steps": 5},
        "bias": {"num_pairs": num_pairs, "batch_size": 16, "every_n_epochs": bias_every, "seed": seed},
        "out": out,
        "name": name,
        "overwrite": True,
        "wandb": wandb,
    }


def default_runs(models: Sequence[str] = DEFAULT_MODELS, **overrides: Any) -> list[dict[str, Any]]:
    """The embedded default: each model in turn; returns their summaries."""
    summaries = [run(action_config(m, **overrides)) for m in models]
    print("\ncheckpoints (for analyze.py --ckpt):")
    for s in summaries:
        print(f"  {s['model']:<5} best: {s['best_checkpoint']}\n        last: {s['last_checkpoint']}")
    return summaries


# -- the shuffle experiment ----------------------------------------------------------------------------------
def relative_drop(ordered: float, shuffled: float) -> float:
    """How much of the ordered-frames accuracy is lost on shuffled frames, in percent."""
    return 100.0 * (ordered - shuffled) / ordered if ordered > 0 else float("nan")


def shuffle_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the shuffle experiment."""
    lines = ["| task | model | top-1 ordered | top-1 shuffled | relative drop | chance |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['model']} | {100 * r['top1']:.1f} | {100 * r['top1_shuffled']:.1f} "
                     f"| {r['relative_drop']:.1f}% | {100 * r['chance']:.1f} |")
    return "\n".join(lines)


def plot_shuffle(rows: list[dict[str, Any]], path: Path) -> Path:
    """Left: top-1 on ordered (solid) and shuffled (hatched) frames; right: the relative drop (Fig. 5 right)."""
    import numpy as np

    from lit_stbias.reports.style import legend_outside, new_figure, save_figure

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    palette = ["#4c72b0", "#dd8452", "#55a868", "#8172b3", "#937860"]  # models, not static/dynamic colours
    fig, (ax_acc, ax_drop) = new_figure(10, 3.8, ncols=2)
    width = 0.8 / len(models)
    x = np.arange(len(tasks))
    for m, model in enumerate(models):
        by_task = {r["task"]: r for r in rows if r["model"] == model}
        def pick(key: str, by_task: dict = by_task) -> list[float]:
            return [100 * by_task[t][key] if t in by_task else np.nan for t in tasks]

        offset = x - 0.4 + width * (m + 0.5)
        color = palette[m % len(palette)]
        ax_acc.bar(offset - width / 4, pick("top1"), width / 2, color=color, label=f"{model} ordered")
        ax_acc.bar(offset + width / 4, pick("top1_shuffled"), width / 2, color="white", edgecolor=color,
                   hatch="///", label=f"{model} shuffled")
        ax_drop.bar(offset, [by_task[t]["relative_drop"] if t in by_task else np.nan for t in tasks], width * 0.9,
                    color=color, label=model)
    chance = 100 * rows[0]["chance"]
    ax_acc.axhline(chance, color="black", lw=0.8, ls="--")
    ax_acc.text(-0.45, chance + 1, "chance", va="bottom", ha="left", fontsize=8,
                bbox=dict(facecolor="white", edgecolor="none", pad=1))
    for ax, label in ((ax_acc, "top-1 accuracy (%)"), (ax_drop, "relative drop on shuffled frames (%)")):
        ax.set_xticks(x, tasks)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    ax_acc.set_ylim(0, 105)
    ax_drop.axhline(0, color="black", lw=0.8)
    legend_outside(fig, ax_acc, reverse=False)
    fig.suptitle("Training on shuffled frames: how much accuracy needs temporal order", fontsize=10)
    return save_figure(fig, path)


def parse_with_config(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; a ``--config`` YAML sets defaults first, so explicit options still win."""
    first, _ = parser.parse_known_args(list(argv))
    if first.config:
        options = yaml.safe_load(Path(first.config).read_text()) or {}
        known = {a.dest for a in parser._actions}
        unknown = sorted(set(options) - known)
        if unknown:
            parser.error(f"{first.config}: unknown options {unknown}")
        parser.set_defaults(**options)
    return parser.parse_args(list(argv))


def shuffle_experiment(argv: Sequence[str]) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(
        prog="train.py shuffle-experiment",
        description="Train each model on each synthetic task with ordered and with shuffled frames; write the "
                    "top-1 table (CSV, Markdown) and a bar chart into --out.")
    parser.add_argument("--tasks", default="appearance,mixed,motion", help="comma-separated synthetic tasks")
    parser.add_argument("--models", default="slow,fast", help="comma-separated action models (tiny presets)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16, help="clip length (FastOnly sees all, SlowOnly every 4th)")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--num_videos", type=int, default=1000)
    parser.add_argument("--val_videos", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--num_classes", type=int, default=2,
                        help="classes of every task (2: motion = right/left, which shuffled frames cannot tell apart)")
    parser.add_argument("--bias_every", type=int, default=0, help="track the bias every n epochs (0: off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_workers", type=int, default=0)
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--wandb", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--out", default="runs/shuffle", help="folder of the runs, the table and the chart")
    parser.add_argument("--config", help="a YAML file of these options (command-line options override it)")
    parser.add_argument("--print_config", action="store_true", help="print the resolved options as YAML and exit")
    args = parse_with_config(parser, argv)
    if args.print_config:
        print(yaml.safe_dump({k: v for k, v in vars(args).items() if k not in ("config", "print_config")},
                             sort_keys=False), end="")
        return []
    tasks = [t for t in args.tasks.split(",") if t]
    models = [m for m in args.models.split(",") if m]
    out = Path(args.out)
    common = dict(epochs=args.epochs, frames=args.frames, size=args.size, num_videos=args.num_videos,
                  val_videos=args.val_videos, batch_size=args.batch_size, lr=args.lr, num_classes=args.num_classes,
                  bias_every=args.bias_every, seed=args.seed, num_workers=args.num_workers,
                  accelerator=args.accelerator, wandb=args.wandb, out=str(out))
    rows = []
    for task in tasks:
        for model in models:
            top1 = {}
            for shuffle in (False, True):
                name = f"{model}-{task}" + ("-shuffled" if shuffle else "")
                summary = run(action_config(model, task, shuffle=shuffle, name=name, **common))
                top1[shuffle] = summary["metrics"]["val/acc1"]
            rows.append({"task": task, "model": model, "top1": top1[False], "top1_shuffled": top1[True],
                         "relative_drop": relative_drop(top1[False], top1[True]), "chance": 1 / args.num_classes,
                         "epochs": args.epochs, "frames": args.frames, "size": args.size})
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "shuffle_table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = shuffle_table(rows)
    (out / "shuffle_table.md").write_text(table + "\n")
    (out / "shuffle_table.json").write_text(json.dumps(rows, indent=1))
    chart = plot_shuffle(rows, out / "shuffle_chart.png")
    print(f"\n{table}\n\ntable: {out / 'shuffle_table.csv'}, {out / 'shuffle_table.md'}\nchart: {chart}")
    return rows


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    if not argv:
        default_runs()
    elif argv[0] == "shuffle-experiment":
        shuffle_experiment(argv[1:])
    else:
        run(None if argv == sys.argv[1:] else argv)  # None: LightningCLI reads sys.argv (and says so in --help)
    return 0


__all__ = ["action_config", "default_runs", "main", "plot_shuffle", "relative_drop", "shuffle_experiment",
           "shuffle_table"]
