"""What ``train.py`` (console script ``lit-stbias-train``) runs.

* ``train.py fit|validate|test --config ...``: one run of :class:`~lit_stbias.lightning.cli.TrainCLI`
  (LightningCLI's subcommands; ``--help`` lists every option).
* ``train.py`` or ``train.py default [--seeds 0,1,2]``: the embedded default, tiny FastOnly and SlowOnly on the
  synthetic ``motion`` task (2 classes: right vs left, which only temporal order separates), 10 epochs of 2000
  clips at 48 px, bias tracked every epoch; about 4 minutes per seed on 2 CPU cores. Both models see the same
  16-frame clips: FastOnly all 16 frames, SlowOnly every 4th (``temporal_stride`` 4 = SlowFast's alpha), as
  the paper's 32x2 and 8x8 models cover one duration.
* ``train.py shuffle-experiment [--config configs/shuffle_experiment.yaml]``: every model on every task, on
  ordered and on shuffled frames, per training seed; a table of top-1 accuracy and its relative drop (mean and
  95% interval over the seeds; CSV, Markdown, JSON) and a bar chart with error bars.
* ``train.py staticdropout-experiment [--config configs/staticdropout_experiment.yaml]``: baseline,
  StaticDropout and random-dropout models on the synthetic ``mixed`` task per training seed; top-1 on the
  biased validation clips and on the same clips with scenes that contradict their labels
  (``synthetic:mixed-conflicting``), and the tap's static and dynamic units (mean and 95% interval over the
  seeds), as a table and a chart.
* ``train.py vos-experiment [--models fusionseg,matnet,rtnet --data centred,diffuse --seeds 0,1,2]``: the tiny
  VOS networks on synthetic VOS data, per training seed; a table of validation J-mean (mean and 95% interval
  over the seeds) next to the fixed centred-blob baseline's J on the same frames, and the checkpoints for
  ``analyze.py``.

The experiments take their options from a function signature (jsonargparse): ``--config`` YAML,
``--print_config`` and defaults in ``--help`` work as for the LightningCLI subcommands.
"""
from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
from jsonargparse import ActionConfigFile, ArgumentError, ArgumentParser, DefaultHelpFormatter

from lit_stbias.lightning.cli import Interrupted, TrainCLI, UsageError, run
from lit_stbias.lightning.data import VOSDataModule
from lit_stbias.lightning.vos import blob_baseline

ACTION_MODULE = "lit_stbias.lightning.ActionRecognitionModule"
ACTION_DATA = "lit_stbias.lightning.ActionDataModule"
#: SlowOnly sees every alpha-th frame of the clip FastOnly sees whole (alpha = 4 in the tiny SlowFast)
TEMPORAL_STRIDE = {"slow": 4, "c2d": 4, "i3d": 4, "fast": 1}
DEFAULT_MODELS = ("fast", "slow")
RESNETS = ("c2d", "i3d", "slow", "fast", "slowfast")
SYNTHETIC_TASKS = ("appearance", "mixed", "motion")
VOS_MODULE = "lit_stbias.lightning.VOSModule"
VOS_DATA = "lit_stbias.lightning.VOSDataModule"
VOS_PLACEMENTS = ("centred", "diffuse")
VOS_MODELS = ("fusionseg", "matnet", "rtnet")
#: each tiny VOS network's training schedule on synthetic VOS (64 px, 8-frame videos), measured to segment
#: clearly better than the fixed-blob baseline on the shared 2-core CPU (docs/training.md)
VOS_SCHEDULES = {
    "fusionseg": {"epochs": 8, "lr": 2e-3},
    "matnet": {"epochs": 5, "lr": 2e-3},
    "rtnet": {"epochs": 2, "lr": 2e-3},
}


def seed_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean over training seeds and the half-width of its 95% interval, ``1.96 * std / sqrt(n)`` with the
    population std (ddof 0), as the authors' release reports seeds. One seed: half-width 0.

    >>> [round(v, 3) for v in seed_interval([1.0, 2.0, 3.0])]
    [2.0, 0.924]
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("seed_interval needs at least one value.")
    return float(x.mean()), float(1.96 * x.std(ddof=0) / math.sqrt(x.size))


def set_threads(threads: Optional[int]) -> None:
    """Pin torch's CPU threads: a training's numbers depend on the thread count (the order of its parallel
    reductions), so an experiment run with the same ``--threads`` gives the same numbers on any machine with
    the same CPU, however many cores it has. ``None`` keeps torch's choice."""
    if threads is None:
        return
    if threads < 1:
        raise UsageError(f"--threads {threads}: give a number of CPU threads >= 1.")
    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # what Lightning's process launchers then keep


def as_list(value: Union[str, int, Sequence], cast: Callable[[str], Any], option: str) -> list:
    """``"a,b"``, a single value or a YAML list, as a non-empty list (a one-line error names the option)."""
    items = value.split(",") if isinstance(value, str) else [value] if isinstance(value, int) else list(value)
    try:
        out = [cast(str(v).strip()) for v in items if str(v).strip()]
    except ValueError:
        raise UsageError(f"--{option} {value}: expected a comma-separated list of {cast.__name__} values.") from None
    if not out:
        raise UsageError(f"--{option}: give at least one value.")
    return out


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
    wandb_group: str | None = None,
) -> dict[str, Any]:
    """A complete ``fit`` configuration (as LightningCLI takes it) for one action run on a synthetic task.
    ``seed`` is the training seed: it seeds the weights, the data order and the synthetic clips."""
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
        "wandb_group": wandb_group,
    }


def seed_suffix(seed: int, seeds: Sequence[int]) -> str:
    """Run folders of several seeds end in ``-seedN``; a single seed keeps the plain name."""
    return f"-seed{seed}" if len(seeds) > 1 else ""


# -- the embedded default ----------------------------------------------------------------------------------
def default_experiment(
    models: Union[str, list[str]] = "fast,slow",
    seeds: Union[str, int, list[int]] = "0",
    epochs: int = 8,
    frames: int = 16,
    size: int = 48,
    num_videos: int = 1000,
    val_videos: int = 256,
    batch_size: int = 16,
    lr: float = 3e-3,
    num_classes: int = 2,
    bias_every: int = 1,
    num_pairs: int = 64,
    num_workers: int = 0,
    threads: Optional[int] = None,
    accelerator: str = "auto",
    wandb: bool = True,
    out: str = "runs",
) -> list[dict[str, Any]]:
    """The embedded default (also train.py without arguments): tiny FastOnly and SlowOnly on synthetic motion.

    Args:
        models: comma-separated action models (tiny presets), trained one after the other.
        seeds: comma-separated training seeds; with several, run folders end in -seedN and
            <out>/default_seeds.{md,json} give the final accuracy and bias as mean and 95% interval.
        epochs: training epochs.
        frames: clip length (FastOnly sees all frames, SlowOnly every 4th).
        size: frame side in pixels.
        num_videos: synthetic training clips.
        val_videos: synthetic validation clips.
        batch_size: clips per batch.
        lr: AdamW learning rate.
        num_classes: classes of the task (2: right vs left).
        bias_every: track the bias every n epochs (0: off).
        num_pairs: held-out pairs the bias is measured on.
        num_workers: data loader workers.
        threads: torch CPU threads (default: torch's choice); the numbers depend on it (see set_threads).
        accelerator: Lightning accelerator (auto, cpu, gpu).
        wandb: also log to W&B (offline unless WANDB_MODE says otherwise); the seeds of a model share a group.
        out: root folder of the runs.
    """
    model_names = as_list(models, str, "models")
    set_threads(threads)
    seed_list = as_list(seeds, int, "seeds")
    schedule = dict(epochs=epochs, frames=frames, size=size, num_videos=num_videos, val_videos=val_videos,
                    batch_size=batch_size, lr=lr, num_classes=num_classes, bias_every=bias_every,
                    num_pairs=num_pairs, num_workers=num_workers, accelerator=accelerator, wandb=wandb, out=out)
    summaries = []
    for seed in seed_list:
        for model in model_names:
            name = f"{model}-synthetic-motion{seed_suffix(seed, seed_list)}"
            config = action_config(model, "motion", name=name, seed=seed, wandb_group=f"default-{model}",
                                   **schedule)
            summaries.append(run({"fit": config}))
    print("\ncheckpoints (for analyze.py --ckpt):")
    for s in summaries:
        print(f"  {s['model']:<5} seed {s['seed']}  best: {s['best_checkpoint']}\n"
              f"{'':<14}last: {s['last_checkpoint']}")
    if len(seed_list) > 1:
        rows = seed_summary(summaries)
        out_dir = Path(out)
        table = seed_table(rows)
        (out_dir / "default_seeds.md").write_text(table + "\n")
        (out_dir / "default_seeds.json").write_text(json.dumps(rows, indent=1))
        print(f"\n{table}\n\ntable: {out_dir / 'default_seeds.md'}, {out_dir / 'default_seeds.json'}")
    return summaries


def seed_summary(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model and tap: final top-1 and bias (percent of dimensions, unit counts) over the seeds, as
    ``{"mean", "interval", "values"}`` (interval: :func:`seed_interval`'s half-width)."""
    def stat(values: list[float]) -> dict[str, Any]:
        mean, half = seed_interval(values)
        return {"mean": mean, "interval": half, "values": values}

    rows = []
    for model in dict.fromkeys(s["model"] for s in summaries):
        runs = [s for s in summaries if s["model"] == model]
        taps = list(runs[0]["bias"]) or [None]
        for tap in taps:
            row: dict[str, Any] = {"model": model, "tap": tap, "seeds": [s["seed"] for s in runs],
                                   "top1": stat([s["metrics"].get("val/acc1") for s in runs])}
            if tap is not None:
                for factor in ("static", "dynamic"):
                    row[f"{factor}_percent"] = stat([s["bias"][tap]["layer_percent"][factor] for s in runs])
                    row[f"units_{factor}"] = stat([float(s["bias"][tap]["unit_counts"][factor]) for s in runs])
            rows.append(row)
    return rows


def _pm(stat: dict[str, Any], scale: float = 1.0, digits: int = 1) -> str:
    """``mean ± half-width`` (just the mean for a single seed)."""
    text = f"{scale * stat['mean']:.{digits}f}"
    return text + (f" ± {scale * stat['interval']:.{digits}f}" if len(stat["values"]) > 1 else "")


def seed_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`seed_summary`."""
    n = len(rows[0]["seeds"])
    lines = [f"mean ± 95% interval over {n} training seeds (1.96·std/√n, population std)", "",
             "| model | tap | top-1 | static % | dynamic % | units static | units dynamic |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        bias = [_pm(r[k]) for k in ("static_percent", "dynamic_percent", "units_static", "units_dynamic")
                if k in r]
        lines.append(f"| {r['model']} | {r['tap']} | {_pm(r['top1'], 100)} | " + " | ".join(bias) + " |")
    return "\n".join(lines)


# -- the shuffle experiment ----------------------------------------------------------------------------------
def relative_drop(ordered: float, shuffled: float) -> float:
    """How much of the ordered-frames accuracy is lost on shuffled frames, in percent."""
    return 100.0 * (ordered - shuffled) / ordered if ordered > 0 else float("nan")


def shuffle_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the shuffle experiment (mean ± 95% interval over the seeds)."""
    n = rows[0]["num_seeds"]
    def pm(row: dict[str, Any], key: str, scale: float) -> str:
        text = f"{scale * row[key]:.1f}"
        return text + (f" ± {scale * row[key + '_interval']:.1f}" if n > 1 else "")

    seeds = f"mean ± 95% interval over {n} training seeds (1.96·std/√n, population std)" if n > 1 else \
        "one training seed"
    lines = [seeds, "", "| task | model | top-1 ordered | top-1 shuffled | relative drop (%) | chance |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['model']} | {pm(r, 'top1', 100)} | {pm(r, 'top1_shuffled', 100)} "
                     f"| {pm(r, 'relative_drop', 1)} | {100 * r['chance']:.1f} |")
    return "\n".join(lines)


def plot_shuffle(rows: list[dict[str, Any]], path: Path) -> Path:
    """Left: top-1 on ordered (solid) and shuffled (hatched) frames; right: the relative drop (Fig. 5 right).
    Error bars: the 95% interval over the training seeds."""
    from lit_stbias.reports.style import legend_outside, new_figure, save_figure

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    palette = ["#4c72b0", "#dd8452", "#55a868", "#8172b3", "#937860"]  # models, not static/dynamic colours
    fig, (ax_acc, ax_drop) = new_figure(10, 3.8, ncols=2)
    width = 0.8 / len(models)
    x = np.arange(len(tasks))
    errors = dict(ecolor="black", capsize=2, error_kw={"elinewidth": 0.8})
    for m, model in enumerate(models):
        by_task = {r["task"]: r for r in rows if r["model"] == model}

        def pick(key: str, scale: float, by_task: dict = by_task) -> list[float]:
            return [scale * by_task[t][key] if t in by_task else np.nan for t in tasks]

        offset = x - 0.4 + width * (m + 0.5)
        color = palette[m % len(palette)]
        ax_acc.bar(offset - width / 4, pick("top1", 100), width / 2, yerr=pick("top1_interval", 100), color=color,
                   label=f"{model} ordered", **errors)
        ax_acc.bar(offset + width / 4, pick("top1_shuffled", 100), width / 2,
                   yerr=pick("top1_shuffled_interval", 100), color="white", edgecolor=color, hatch="///",
                   label=f"{model} shuffled", **errors)
        ax_drop.bar(offset, pick("relative_drop", 1), width * 0.9, yerr=pick("relative_drop_interval", 1),
                    color=color, label=model, **errors)
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
    n = rows[0]["num_seeds"]
    seeds = f"mean and 95% interval over {n} seeds" if n > 1 else "one seed"
    fig.suptitle(f"Training on shuffled frames: how much accuracy needs temporal order ({seeds})", fontsize=10)
    return save_figure(fig, path)


def shuffle_rows(runs: list[dict[str, Any]], num_classes: int) -> list[dict[str, Any]]:
    """Per (task, model): top-1 ordered and shuffled and the relative drop (paired per seed), each as mean and
    95% interval half-width over the seeds, and the per-seed values."""
    rows = []
    for task in dict.fromkeys(r["task"] for r in runs):
        for model in dict.fromkeys(r["model"] for r in runs if r["task"] == task):
            per_seed = [r for r in runs if r["task"] == task and r["model"] == model]
            row: dict[str, Any] = {"task": task, "model": model, "num_seeds": len(per_seed),
                                   "seeds": [r["seed"] for r in per_seed]}
            for key in ("top1", "top1_shuffled", "relative_drop"):
                values = [r[key] for r in per_seed]
                row[key], row[f"{key}_interval"] = seed_interval(values)
                row[f"{key}_per_seed"] = values
            row["chance"] = 1 / num_classes
            rows.append(row)
    return rows


def shuffle_experiment(
    tasks: Union[str, list[str]] = "appearance,mixed,motion",
    models: Union[str, list[str]] = "slow,fast",
    seeds: Union[str, int, list[int]] = "0,1,2",
    epochs: int = 8,
    frames: int = 16,
    size: int = 48,
    num_videos: int = 1000,
    val_videos: int = 256,
    batch_size: int = 16,
    lr: float = 3e-3,
    num_classes: int = 2,
    bias_every: int = 0,
    num_workers: int = 0,
    threads: Optional[int] = None,
    accelerator: str = "auto",
    wandb: bool = False,
    out: str = "runs/shuffle",
) -> list[dict[str, Any]]:
    """The shuffle experiment: each model on each synthetic task, on ordered and on shuffled frames, per seed.

    Writes shuffle_runs.csv (one line per task, model and seed), shuffle_table.{csv,md,json} (mean and 95%
    interval over the seeds) and shuffle_chart.png (with error bars) into --out; every training is a normal
    run folder inside it.

    Args:
        tasks: comma-separated synthetic tasks (appearance, mixed, motion).
        models: comma-separated action models (tiny presets).
        seeds: comma-separated training seeds; every (task, model, ordered/shuffled) is trained once per seed.
        epochs: training epochs.
        frames: clip length (FastOnly sees all frames, SlowOnly every 4th).
        size: frame side in pixels.
        num_videos: synthetic training clips.
        val_videos: synthetic validation clips.
        batch_size: clips per batch.
        lr: AdamW learning rate.
        num_classes: classes of every task (2: motion = right vs left, which shuffled frames cannot tell apart).
        bias_every: track the bias every n epochs (0: off).
        num_workers: data loader workers.
        threads: torch CPU threads (default: torch's choice); the numbers depend on it (see set_threads).
        accelerator: Lightning accelerator (auto, cpu, gpu).
        wandb: also log to W&B (offline unless WANDB_MODE says otherwise).
        out: folder of the runs, the tables and the chart.
    """
    task_names = as_list(tasks, str, "tasks")
    unknown = [t for t in task_names if t not in SYNTHETIC_TASKS]
    if unknown:
        raise UsageError(f"--tasks {','.join(unknown)}: unknown synthetic task; choose from "
                         f"{', '.join(SYNTHETIC_TASKS)}.")
    model_names = as_list(models, str, "models")
    set_threads(threads)
    seed_list = as_list(seeds, int, "seeds")
    out_dir = Path(out)
    schedule = dict(epochs=epochs, frames=frames, size=size, num_videos=num_videos, val_videos=val_videos,
                    batch_size=batch_size, lr=lr, num_classes=num_classes, bias_every=bias_every,
                    num_workers=num_workers, accelerator=accelerator, wandb=wandb, out=str(out_dir))
    runs = []
    for task in task_names:
        for model in model_names:
            for seed in seed_list:
                top1 = {}
                for shuffle in (False, True):
                    name = f"{model}-{task}" + ("-shuffled" if shuffle else "") + seed_suffix(seed, seed_list)
                    config = action_config(model, task, shuffle=shuffle, name=name, seed=seed,
                                           wandb_group=f"shuffle-{model}-{task}", **schedule)
                    top1[shuffle] = run({"fit": config})["metrics"]["val/acc1"]
                runs.append({"task": task, "model": model, "seed": seed, "top1": top1[False],
                             "top1_shuffled": top1[True], "relative_drop": relative_drop(top1[False], top1[True])})
    rows = shuffle_rows(runs, num_classes)
    for row in rows:
        row.update(epochs=epochs, frames=frames, size=size)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "shuffle_runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(runs[0]))
        writer.writeheader()
        writer.writerows(runs)
    flat = [{k: v for k, v in r.items() if not k.endswith("_per_seed") and k != "seeds"} for r in rows]
    with open(out_dir / "shuffle_table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(flat[0]))
        writer.writeheader()
        writer.writerows(flat)
    table = shuffle_table(rows)
    (out_dir / "shuffle_table.md").write_text(table + "\n")
    (out_dir / "shuffle_table.json").write_text(json.dumps(rows, indent=1))
    chart = plot_shuffle(rows, out_dir / "shuffle_chart.png")
    print(f"\n{table}\n\ntable: {out_dir / 'shuffle_table.csv'}, {out_dir / 'shuffle_table.md'}\nchart: {chart}")
    return rows


# -- the StaticDropout experiment ------------------------------------------------------------------------------
#: the arms: no dropout, StaticDropout (drops the static set), and its control (a random set of the same size)
DROPOUT_ARMS = ("baseline", "static", "random")
DEBIASED_SPLIT = "synthetic:mixed-conflicting"
UNIT_FACTORS = ("static", "dynamic", "joint")


def dropout_callback(arm: str, tap: str, p: float, threshold: float, every_n_epochs: int, start_epoch: int,
                     seed: int) -> dict[str, Any]:
    """The StaticDropout callback of an arm, as a LightningCLI ``trainer.callbacks`` entry: its static set
    measured by the run's BiasMonitor (on its fixed held-out pairs)."""
    return {"class_path": "lit_stbias.lightning.StaticDropout", "init_args": {
        "tap": tap, "p": p, "mode": arm, "static_units_from": "monitor", "every_n_epochs": every_n_epochs,
        "start_epoch": start_epoch, "threshold": threshold, "seed": seed}}


def evaluate_checkpoint(checkpoint: str, data: str | None = None, batch_size: int = 16) -> float:
    """Top-1 of a checkpoint on its validation clips, or on ``data`` drawn at their settings (``analyze.py
    ablate``'s evaluation with nothing silenced)."""
    from lit_stbias.analysis.ablation import evaluate_model, evaluation_data
    from lit_stbias.analysis.loading import load_model

    loaded = load_model(ckpt=checkpoint)
    evaluation = evaluation_data(loaded, loaded.clip, checkpoint, data)
    return evaluate_model(loaded, evaluation, loaded.clip, batch_size=batch_size)


def dropout_rows(runs: list[dict[str, Any]], num_classes: int) -> list[dict[str, Any]]:
    """Per (model, arm): top-1 on the biased and the debiased split and the tap's unit counts, each as mean and
    95% interval half-width over the seeds (:func:`seed_interval`), with the per-seed values."""
    keys = ("top1", "top1_debiased", *(f"units_{f}" for f in UNIT_FACTORS), "dropped_units")
    rows = []
    for model in dict.fromkeys(r["model"] for r in runs):
        for arm in DROPOUT_ARMS:
            per_seed = [r for r in runs if r["model"] == model and r["arm"] == arm]
            if not per_seed:
                continue
            row: dict[str, Any] = {"model": model, "arm": arm, "tap": per_seed[0]["tap"],
                                   "num_seeds": len(per_seed), "seeds": [r["seed"] for r in per_seed]}
            for key in keys:
                values = [float(r[key]) for r in per_seed]
                row[key], row[f"{key}_interval"] = seed_interval(values)
                row[f"{key}_per_seed"] = values
            row["chance"] = 1 / num_classes
            rows.append(row)
    return rows


def dropout_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the StaticDropout experiment (mean ± 95% interval over the seeds)."""
    n = rows[0]["num_seeds"]

    def pm(row: dict[str, Any], key: str, scale: float = 1.0) -> str:
        text = f"{scale * row[key]:.1f}"
        return text + (f" ± {scale * row[key + '_interval']:.1f}" if n > 1 else "")

    seeds = f"mean ± 95% interval over {n} training seeds (1.96·std/√n, population std)" if n > 1 else \
        "one training seed"
    lines = [f"{seeds}; top-1 on the validation clips of `mixed` (the scene matches the label in most clips) and on "
             f"the same clips with a scene of another class (`{DEBIASED_SPLIT}`); units of the tap at the last "
             f"epoch; dropped: the size of the set the arm drops from; chance {100 * rows[0]['chance']:.1f}%", "",
             "| model | training | top-1 biased val | top-1 debiased | static units | dynamic units | joint units "
             "| dropped set |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        dropped = pm(r, "dropped_units") if r["arm"] != "baseline" else "—"
        lines.append(f"| {r['model']} | {r['arm']} | {pm(r, 'top1', 100)} | {pm(r, 'top1_debiased', 100)} | "
                     f"{pm(r, 'units_static')} | {pm(r, 'units_dynamic')} | {pm(r, 'units_joint')} | {dropped} |")
    return "\n".join(lines)


def plot_dropout(rows: list[dict[str, Any]], path: Path) -> Path:
    """Left: top-1 on the biased validation clips (solid) and the debiased split (hatched) per arm; right: the
    tap's static and dynamic units per arm. Error bars: the 95% interval over the training seeds."""
    from lit_stbias.reports.style import COLORS, new_figure, save_figure

    groups = [(r["model"], r["arm"]) for r in rows]
    fig, (ax_acc, ax_units) = new_figure(11, 3.8, ncols=2)
    x = np.arange(len(groups))
    errors = dict(ecolor="black", capsize=2, error_kw={"elinewidth": 0.8})
    arm_colors = {"baseline": "#8c8c8c", "static": COLORS["static"], "random": "#55a868"}
    for i, r in enumerate(rows):
        color = arm_colors[r["arm"]]
        ax_acc.bar(i - 0.2, 100 * r["top1"], 0.38, yerr=100 * r["top1_interval"], color=color,
                   label="biased validation" if i == 0 else None, **errors)
        ax_acc.bar(i + 0.2, 100 * r["top1_debiased"], 0.38, yerr=100 * r["top1_debiased_interval"], color="white",
                   edgecolor=color, hatch="///", label="debiased (scene of another class)" if i == 0 else None,
                   **errors)
        for k, factor in enumerate(("static", "dynamic")):
            ax_units.bar(i + (k - 0.5) * 0.38, r[f"units_{factor}"], 0.38, yerr=r[f"units_{factor}_interval"],
                         color=COLORS[factor], label=f"{factor} units" if i == 0 else None, **errors)
    chance = 100 * rows[0]["chance"]
    ax_acc.axhline(chance, color="black", lw=0.8, ls="--")
    ax_acc.text(-0.45, chance + 1, "chance", va="bottom", ha="left", fontsize=8,
                bbox=dict(facecolor="white", edgecolor="none", pad=1))
    labels = [f"{arm}\n{model}" if len({m for m, _ in groups}) > 1 else arm for model, arm in groups]
    for ax, label in ((ax_acc, "top-1 accuracy (%)"), (ax_units, f"units of {rows[0]['tap']}")):
        ax.set_xticks(x, labels)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    ax_acc.set_ylim(0, 105)
    handles: dict[str, Any] = {}  # one legend for both panels
    for ax in (ax_acc, ax_units):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="outside right center", frameon=False, fontsize=8)
    n = rows[0]["num_seeds"]
    seeds = f"mean and 95% interval over {n} seeds" if n > 1 else "one seed"
    fig.suptitle(f"StaticDropout on mixed: accuracy when the scene misleads, and the tap's units ({seeds})",
                 fontsize=10)
    return save_figure(fig, path)


def staticdropout_experiment(
    models: Union[str, list[str]] = "fast",
    seeds: Union[str, int, list[int]] = "0,1,2",
    tap: str = "stage5",
    p: float = 0.5,
    threshold: float = 0.5,
    every_n_epochs: int = 1,
    start_epoch: int = 1,
    epochs: int = 8,
    frames: int = 16,
    size: int = 48,
    num_videos: int = 1000,
    val_videos: int = 256,
    batch_size: int = 16,
    lr: float = 3e-3,
    num_classes: int = 2,
    scene_bias: float = 0.8,
    num_pairs: int = 64,
    bias_every: int = 0,
    num_workers: int = 0,
    threads: Optional[int] = None,
    accelerator: str = "auto",
    wandb: bool = False,
    out: str = "runs/staticdropout",
) -> list[dict[str, Any]]:
    """The StaticDropout experiment: baseline, StaticDropout and random-dropout models on synthetic mixed.

    Per model and training seed, three trainings on ``mixed`` (motion labels; the scene matches the label in
    ``scene_bias`` of the clips): no dropout; StaticDropout at ``tap`` (its static set measured by the run's
    BiasMonitor on its held-out pairs, from ``start_epoch`` on and again every ``every_n_epochs``); and the
    control, dropout of a random set of as many channels. Each final model is evaluated on the biased
    validation clips and on the same clips with the scene of another class (synthetic:mixed-conflicting), and
    its tap's units are those of the monitor's last measurement. Writes staticdropout_runs.csv (one line per
    run), staticdropout_table.{csv,md,json} (mean and 95% interval over the seeds) and staticdropout_chart.png
    into --out; every training is a normal run folder inside it.

    Args:
        models: comma-separated action models (tiny presets).
        seeds: comma-separated training seeds; every (model, arm) is trained once per seed.
        tap: the layer StaticDropout acts on and whose units are reported.
        p: drop probability of each channel of the set, per sample and step.
        threshold: λ that classifies the units.
        every_n_epochs: re-estimate the static set every n epochs (0: once).
        start_epoch: plain training before this epoch; the first estimate is made at its start.
        epochs: training epochs.
        frames: clip length (FastOnly sees all frames, SlowOnly every 4th).
        size: frame side in pixels.
        num_videos: synthetic training clips.
        val_videos: synthetic validation clips (and clips of the debiased split).
        batch_size: clips per batch.
        lr: AdamW learning rate.
        num_classes: motion classes (2: right vs left).
        scene_bias: share of training and validation clips whose scene is the one tied to their label.
        num_pairs: held-out pairs the BiasMonitor measures (and StaticDropout estimates from).
        bias_every: the BiasMonitor also logs the tap's bias every n epochs (0: at the last epoch only, which
            the table reports; StaticDropout's estimates are made whatever this is).
        num_workers: data loader workers.
        threads: torch CPU threads (default: torch's choice); the numbers depend on it (see set_threads).
        accelerator: Lightning accelerator (auto, cpu, gpu).
        wandb: also log to W&B (offline unless WANDB_MODE says otherwise).
        out: folder of the runs, the tables and the chart.
    """
    model_names = as_list(models, str, "models")
    set_threads(threads)
    seed_list = as_list(seeds, int, "seeds")
    if not 0 <= p < 1:
        raise UsageError(f"--p {p}: the drop probability must be in [0, 1).")
    if not 0 <= threshold <= 1:
        raise UsageError(f"--threshold {threshold}: λ must be in [0, 1].")
    if bias_every < 0:
        raise UsageError(f"--bias_every {bias_every}: give a number of epochs >= 0 (0: the last epoch only).")
    if every_n_epochs < 0 or not 0 <= start_epoch < epochs:
        raise UsageError(f"--every_n_epochs {every_n_epochs} --start_epoch {start_epoch}: need every_n_epochs >= 0 "
                         f"and 0 <= start_epoch < epochs ({epochs}).")
    out_dir = Path(out)
    schedule = dict(epochs=epochs, frames=frames, size=size, num_videos=num_videos, val_videos=val_videos,
                    batch_size=batch_size, lr=lr, num_classes=num_classes, bias_every=bias_every or epochs,
                    num_pairs=num_pairs,
                    num_workers=num_workers, accelerator=accelerator, wandb=wandb, out=str(out_dir))
    runs = []
    for model in model_names:
        for seed in seed_list:
            for arm in DROPOUT_ARMS:
                name = f"{model}-mixed-{arm}" + seed_suffix(seed, seed_list)
                config = action_config(model, "mixed", name=name, seed=seed,
                                       wandb_group=f"staticdropout-{model}-{arm}", **schedule)
                config["data"]["init_args"]["scene_bias"] = scene_bias
                config["bias"]["taps"] = [tap]
                config["bias"]["thresholds"] = threshold
                if arm != "baseline":
                    config["trainer"]["callbacks"] = [dropout_callback(arm, tap, p, threshold, every_n_epochs,
                                                                       start_epoch, seed)]
                summary = run({"fit": config})
                checkpoint = summary["last_checkpoint"]
                units = summary["bias"][tap]["unit_counts"]
                runs.append({
                    "model": model, "arm": arm, "seed": seed, "tap": tap,
                    "top1": evaluate_checkpoint(checkpoint, batch_size=batch_size),
                    "top1_debiased": evaluate_checkpoint(checkpoint, DEBIASED_SPLIT, batch_size=batch_size),
                    **{f"units_{f}": units[f] for f in UNIT_FACTORS},
                    "dropped_units": summary["metrics"].get("static_dropout/static_units") or 0.0,
                    "val_acc1": summary["metrics"].get("val/acc1"), "checkpoint": checkpoint,
                })
    rows = dropout_rows(runs, num_classes)
    for row in rows:
        row.update(epochs=epochs, frames=frames, size=size, p=p, threshold=threshold, scene_bias=scene_bias,
                   every_n_epochs=every_n_epochs, start_epoch=start_epoch)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "staticdropout_runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(runs[0]))
        writer.writeheader()
        writer.writerows(runs)
    flat = [{k: v for k, v in r.items() if not k.endswith("_per_seed") and k != "seeds"} for r in rows]
    with open(out_dir / "staticdropout_table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(flat[0]))
        writer.writeheader()
        writer.writerows(flat)
    table = dropout_table(rows)
    (out_dir / "staticdropout_table.md").write_text(table + "\n")
    (out_dir / "staticdropout_table.json").write_text(json.dumps(rows, indent=1, allow_nan=False))
    chart = plot_dropout(rows, out_dir / "staticdropout_chart.png")
    print(f"\n{table}\n\ntable: {out_dir / 'staticdropout_table.csv'}, {out_dir / 'staticdropout_table.md'}\n"
          f"chart: {chart}")
    return rows


# -- the VOS experiment ----------------------------------------------------------------------------------------
def vos_config(
    model_name: str,
    data: str = "centred",
    *,
    epochs: int = 8,
    lr: float = 2e-3,
    num_videos: int = 128,
    val_videos: int = 32,
    num_frames: int = 8,
    size: int = 64,
    batch_size: int = 16,
    bias_every: int = 0,
    num_pairs: int = 64,
    out: str = "runs/vos",
    name: str | None = None,
    seed: int = 0,
    num_workers: int = 0,
    accelerator: str = "auto",
    wandb: bool = False,
    wandb_group: str | None = None,
) -> dict[str, Any]:
    """A complete ``fit`` configuration for one tiny VOS network on ``synthetic-vos:<data>``. ``seed`` is the
    training seed: weights, data order and the synthetic videos."""
    return {
        "seed_everything": seed,
        "model": {"class_path": VOS_MODULE, "init_args": {
            "model_name": model_name, "preset": "tiny", "optimizer": "adamw", "lr": lr, "iou_weight": 1.0,
            "seed": seed}},
        "data": {"class_path": VOS_DATA, "init_args": {
            "data": f"synthetic-vos:{data}", "num_videos": num_videos, "val_videos": val_videos,
            "num_frames": num_frames, "size": size, "batch_size": batch_size, "num_workers": num_workers,
            "seed": seed}},
        "trainer": {"max_epochs": epochs, "accelerator": accelerator, "devices": 1, "log_every_n_steps": 10},
        "bias": {"num_pairs": num_pairs, "batch_size": 16, "every_n_epochs": bias_every, "seed": seed},
        "out": out,
        "name": name,
        "overwrite": True,
        "wandb": wandb,
        "wandb_group": wandb_group,
    }


def vos_baseline(model_name: str, data: str, seed: int, *, num_videos: int, val_videos: int, num_frames: int,
                 size: int) -> float:
    """The fixed centred-blob baseline's validation J-mean on the frames ``model_name`` is validated on (RTNet's
    frames have both flows, so they are not the one-frame networks' frames)."""
    from lit_stbias.models import build

    datamodule = VOSDataModule(f"synthetic-vos:{data}", num_videos=num_videos, val_videos=val_videos,
                               num_frames=num_frames, size=size, seed=seed)
    datamodule.input_spec = build(model_name, "tiny").input_spec
    datamodule.setup("fit")
    return blob_baseline(datamodule.train_source, datamodule.val_source).j_mean


def fusion_units(bias: dict[str, Any]) -> dict[str, float]:
    """Static, dynamic and all units summed over a VOS network's fusion taps (``fusion.*``) in the monitor's
    last measurement (``summary["bias"]``), the paper's question: how much motion reaches the fused features."""
    fusion = {tap: b for tap, b in bias.items() if tap.startswith("fusion.")}
    counts = {f"fusion_{factor}": float(sum(b["unit_counts"][factor] for b in fusion.values()))
              for factor in ("static", "dynamic", "joint")}
    return {**counts, "fusion_units": float(sum(b["num_units"] for b in fusion.values()))}


def vos_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (model, data): validation J-mean, the baseline's J, the fusion taps' static and dynamic units and the
    CPU time over the seeds, each ``{"mean", "interval", "values"}`` (:func:`seed_interval`)."""
    def stat(values: list[float]) -> dict[str, Any]:
        mean, half = seed_interval(values)
        return {"mean": mean, "interval": half, "values": values}

    keys = ("j_mean", "baseline_j_mean", "fusion_static", "fusion_dynamic", "fusion_joint", "fusion_units",
            "cpu_seconds")
    rows = []
    for model in dict.fromkeys(r["model"] for r in runs):
        for data in dict.fromkeys(r["data"] for r in runs if r["model"] == model):
            per_seed = [r for r in runs if r["model"] == model and r["data"] == data]
            rows.append({"model": model, "data": data, "seeds": [r["seed"] for r in per_seed],
                         **{key: stat([r[key] for r in per_seed]) for key in keys}})
    return rows


def vos_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`vos_rows`."""
    n = len(rows[0]["seeds"])
    seeds = (f"mean ± 95% interval over {n} training seeds (1.96·std/√n, population std)" if n > 1
             else "one training seed")
    lines = [f"validation J-mean (%), {seeds}; baseline: one fixed centred blob for every frame; units of the "
             "fusion taps (fusion.*, summed) at the last epoch, λ = 0.5", "",
             "| model | data | J-mean | baseline J-mean | fusion static units | fusion dynamic units | fusion units "
             "| CPU time per training (s) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['data']} | {_pm(r['j_mean'], 100)} | {_pm(r['baseline_j_mean'], 100)} "
                     f"| {_pm(r['fusion_static'])} | {_pm(r['fusion_dynamic'])} | {r['fusion_units']['mean']:.0f} "
                     f"| {_pm(r['cpu_seconds'], 1, 0)} |")
    return "\n".join(lines)


def vos_experiment(
    models: Union[str, list[str]] = "fusionseg,matnet,rtnet",
    data: Union[str, list[str]] = "centred,diffuse",
    seeds: Union[str, int, list[int]] = "0,1,2",
    epochs: Optional[int] = None,
    lr: Optional[float] = None,
    num_videos: int = 128,
    val_videos: int = 32,
    num_frames: int = 8,
    size: int = 64,
    batch_size: int = 16,
    bias_every: int = 0,
    num_pairs: int = 64,
    threads: Optional[int] = None,
    num_workers: int = 0,
    accelerator: str = "auto",
    wandb: bool = False,
    out: str = "runs/vos",
) -> list[dict[str, Any]]:
    """The VOS experiment: each tiny VOS network on each synthetic VOS placement, per seed, against a fixed blob.

    Writes vos_runs.csv (one line per model, data and seed, with both checkpoints), vos_table.{csv,md,json}
    (validation J-mean and the baseline's, mean and 95% interval over the seeds) into --out; every training is a
    normal run folder inside it, whose checkpoints analyze.py measures.

    Args:
        models: comma-separated VOS networks (tiny presets): fusionseg, matnet, rtnet.
        data: comma-separated synthetic VOS placements: centred (objects near the centre, as DAVIS), diffuse.
        seeds: comma-separated training seeds; every (model, data) is trained once per seed.
        epochs: training epochs (default: each network's own, lit_stbias.lightning.experiments.VOS_SCHEDULES).
        lr: AdamW learning rate (default: each network's own).
        num_videos: synthetic training videos (7 frames each for one-frame networks, 6 for RTNet).
        val_videos: synthetic validation videos.
        num_frames: frames per synthetic video.
        size: frame side in pixels.
        batch_size: frames per batch.
        bias_every: also track the bias every n epochs (0: at the last epoch only, whose fusion units the
            table reports).
        num_pairs: pairs the bias tracking measures.
        threads: torch CPU threads (default: torch's choice); the numbers depend on it (see set_threads).
        num_workers: data loader workers.
        accelerator: Lightning accelerator (auto, cpu, gpu).
        wandb: also log to W&B (offline unless WANDB_MODE says otherwise).
        out: folder of the runs and the tables.
    """
    model_names = as_list(models, str, "models")
    unknown = [m for m in model_names if m not in VOS_MODELS]
    if unknown:
        raise UsageError(f"--models {','.join(unknown)}: not a VOS network; choose from {', '.join(VOS_MODELS)}.")
    placements = as_list(data, str, "data")
    unknown = [d for d in placements if d not in VOS_PLACEMENTS]
    if unknown:
        raise UsageError(f"--data {','.join(unknown)}: unknown synthetic VOS placement; choose from "
                         f"{', '.join(VOS_PLACEMENTS)}.")
    seed_list = as_list(seeds, int, "seeds")
    set_threads(threads)
    out_dir = Path(out)
    videos = dict(num_videos=num_videos, val_videos=val_videos, num_frames=num_frames, size=size)
    runs = []
    for data_name in placements:
        for model in model_names:
            schedule = {**VOS_SCHEDULES[model], **({"epochs": epochs} if epochs is not None else {}),
                        **({"lr": lr} if lr is not None else {})}
            for seed in seed_list:
                name = f"{model}-vos-{data_name}{seed_suffix(seed, seed_list)}"
                config = vos_config(model, data_name, name=name, seed=seed, batch_size=batch_size,
                                    bias_every=bias_every or schedule["epochs"], num_pairs=num_pairs,
                                    out=str(out_dir),
                                    num_workers=num_workers, accelerator=accelerator, wandb=wandb,
                                    wandb_group=f"vos-{model}-{data_name}", **schedule, **videos)
                start = time.process_time()
                summary = run({"fit": config})
                cpu_seconds = round(time.process_time() - start, 1)
                runs.append({"model": model, "data": data_name, "seed": seed, **schedule,
                             "j_mean": summary["metrics"]["val/j_mean"], "iou": summary["metrics"].get("val/iou"),
                             "best_j_mean": summary["best_score"],
                             "baseline_j_mean": vos_baseline(model, data_name, seed, **videos),
                             **fusion_units(summary["bias"]), "cpu_seconds": cpu_seconds,
                             "best_checkpoint": summary["best_checkpoint"],
                             "last_checkpoint": summary["last_checkpoint"]})
    rows = vos_rows(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "vos_runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(runs[0]))
        writer.writeheader()
        writer.writerows(runs)
    flat = [{"model": r["model"], "data": r["data"], "num_seeds": len(r["seeds"]),
             **{f"{key}{suffix}": r[key][field] for key in ("j_mean", "baseline_j_mean", "fusion_static",
                                                            "fusion_dynamic", "fusion_units", "cpu_seconds")
                for suffix, field in (("", "mean"), ("_interval", "interval"))}} for r in rows]
    with open(out_dir / "vos_table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(flat[0]))
        writer.writeheader()
        writer.writerows(flat)
    table = vos_table(rows)
    (out_dir / "vos_table.md").write_text(table + "\n")
    (out_dir / "vos_table.json").write_text(json.dumps(rows, indent=1))
    print("\ncheckpoints (for analyze.py --ckpt):")
    for r in runs:
        print(f"  {r['model']:<9} {r['data']:<7} seed {r['seed']}  last: {r['last_checkpoint']}")
    print(f"\n{table}\n\ntable: {out_dir / 'vos_table.md'}, {out_dir / 'vos_table.csv'}, {out_dir / 'vos_runs.csv'}")
    return rows


# -- the command line ------------------------------------------------------------------------------------------
#: train.py's own subcommands, next to LightningCLI's fit, validate and test
EXPERIMENTS: dict[str, Callable[..., Any]] = {"default": default_experiment, "shuffle-experiment": shuffle_experiment,
                                              "staticdropout-experiment": staticdropout_experiment,
                                              "vos-experiment": vos_experiment}


def experiment_parser(name: str) -> ArgumentParser:
    """The options of one experiment, from its signature and docstring, with ``--config``/``--print_config``."""
    function = EXPERIMENTS[name]
    parser = ArgumentParser(prog=f"train.py {name}", description=function.__doc__.splitlines()[0],
                            formatter_class=DefaultHelpFormatter, exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML file of these options "
                        "(options given after it override it)")
    parser.add_function_arguments(function)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``train.py`` and ``lit-stbias-train``: fit, validate, test (LightningCLI), default, shuffle-experiment,
    staticdropout-experiment, vos-experiment.
    A usage error, or bad input the library refuses (``ValueError``, ``FileNotFoundError``), is one line on
    stderr and exit code 2; Ctrl-C is one line saying how to resume, and exit code 130."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        if not args or args[0] in EXPERIMENTS:
            name, rest = (args[0], args[1:]) if args else ("default", [])
            options = experiment_parser(name).parse_args(rest).as_dict()
            options.pop("config", None)
            EXPERIMENTS[name](**options)
        else:
            # None: LightningCLI reads sys.argv itself, which is also what DDP's launcher re-runs
            run(None if args == sys.argv[1:] else args,
                extra_subcommands={name: experiment_parser(name) for name in EXPERIMENTS})
    except ArgumentError as err:  # a parse error (unknown option or key, wrong type): one line, and where to look
        known = (*TrainCLI.subcommands(), *EXPERIMENTS)
        command = f"train.py {args[0]}" if args and args[0] in known else "train.py"
        print(f"train.py: error: {' '.join(str(err).split())}; see {command} --help.", file=sys.stderr, flush=True)
        return 2
    except (ValueError, FileNotFoundError) as err:  # UsageError, and the library's one-line refusals of bad input
        print(f"train.py: error: {' '.join(str(err).split())}", file=sys.stderr, flush=True)
        return 2
    except (Interrupted, KeyboardInterrupt) as stop:  # Ctrl-C: one line, and the shell's code for it
        print(f"train.py: {stop if isinstance(stop, Interrupted) else 'interrupted.'}", file=sys.stderr, flush=True)
        return 130
    return 0


__all__ = ["DEBIASED_SPLIT", "DROPOUT_ARMS", "EXPERIMENTS", "VOS_SCHEDULES", "action_config", "as_list",
           "default_experiment", "dropout_callback", "dropout_rows", "dropout_table", "evaluate_checkpoint",
           "experiment_parser", "fusion_units", "main", "plot_dropout", "plot_shuffle", "relative_drop",
           "seed_interval", "seed_summary", "seed_table", "set_threads", "shuffle_experiment", "shuffle_rows",
           "shuffle_table", "staticdropout_experiment", "vos_baseline", "vos_config", "vos_experiment", "vos_rows",
           "vos_table"]
