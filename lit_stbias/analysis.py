"""Measure a model on a dataset: pairs -> probe -> one JSON document, over seeds and devices.

This is the library behind ``python analyze.py``. Everything that can be wrong with the request (model,
taps, checkpoint, data) is checked before anything is written, and outputs are written to a temporary folder
that replaces the destination in one move, so a failed run leaves nothing half-written.
"""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from lit_stbias.data import from_spec
from lit_stbias.metrics import BiasResult
from lit_stbias.models import ClipInput, build, get_entry, load_weights, read_checkpoint
from lit_stbias.pairs import ActionPairs, VOSPairs, item_generator, pair_loader
from lit_stbias.probe import BiasProbe, resolve_taps

DEFAULT_THRESHOLDS = tuple(round(0.1 * k, 1) for k in range(1, 10))
SUMMARY_KEYS = ("layer_scores", "layer_percent", "layer_dims", "unit_counts")


@dataclass
class AnalysisConfig:
    """What to measure and how. ``num_pairs`` is per factor (one dynamic and one static pair per video)."""

    data: str
    model: str | None = None
    preset: str = "tiny"
    ckpt: str | None = None
    layers: Sequence[str] | None = None
    num_pairs: int = 64
    seeds: Sequence[int] = (0,)
    threshold: float = 0.5
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS
    batch_size: int = 8
    num_workers: int = 0
    num_classes: int | None = None
    num_frames: int | None = None
    size: int | None = None
    layer_score: str = "pooled"
    init_seed: int = 0  # weights of a model without checkpoint are drawn from this seed


# ---------------------------------------------------------------------------------------------- the model


def _lightning_hparams(ckpt: dict) -> dict[str, Any] | None:
    hparams = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    return hparams if isinstance(hparams, dict) and "model_name" in hparams else None


def load_model(config: AnalysisConfig) -> tuple[nn.Module, dict[str, Any]]:
    """Build the model the config names and load its checkpoint; returns it with a description for the JSON.

    A Lightning checkpoint of this project carries its model (name, preset, classes); a plain state dict or a
    published checkpoint needs ``model``.
    """
    info: dict[str, Any] = {"model": config.model, "preset": config.preset, "checkpoint": config.ckpt}
    kwargs: dict[str, Any] = {}
    if config.ckpt is not None:
        path = Path(config.ckpt)
        ckpt = read_checkpoint(path)
        hparams = _lightning_hparams(ckpt)
        if hparams is not None:
            if config.model is not None and config.model != hparams["model_name"]:
                raise ValueError(f"--model {config.model} contradicts the checkpoint, which holds "
                                 f"{hparams['model_name']}.")
            info.update(model=hparams["model_name"], preset=hparams.get("preset", config.preset),
                        temporal_stride=int(hparams.get("temporal_stride", 1)))
            data_hparams = ckpt.get("datamodule_hyper_parameters") or {}
            trained = {"num_frames": data_hparams.get("num_frames"), "size": data_hparams.get("size"),
                       "num_classes": data_hparams.get("num_classes") or hparams.get("num_classes")}
            info.update({f"trained_{k}": v for k, v in trained.items() if v is not None})  # the clips it learnt on
            kwargs.update(hparams.get("model_overrides") or {})
            if hparams.get("num_classes") is not None:
                kwargs["num_classes"] = hparams["num_classes"]
        elif config.model is None:
            raise ValueError(f"{path} is a plain state dict: name its architecture with --model (and --preset).")
    if info["model"] is None:
        raise ValueError("name a model with --model (see --list-models) or a checkpoint of this project with --ckpt.")
    if config.num_classes is not None:
        kwargs["num_classes"] = config.num_classes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.init_seed)
        model = build(info["model"], preset=info["preset"], **kwargs)
    if config.ckpt is not None:
        load_weights(model, ckpt)
    info["task"] = get_entry(info["model"]).task
    return model.eval(), info


# ---------------------------------------------------------------------------------------------- the data


def _subset(dataset: Dataset, count: int, seed: int) -> Dataset:
    """``count`` items of ``dataset``, a seeded random choice when it has more."""
    if len(dataset) == 0:
        raise ValueError("the dataset is empty: no readable videos (check the path, layout and skipped files).")
    if len(dataset) <= count:
        return dataset
    order = torch.randperm(len(dataset), generator=item_generator(seed, -1))[:count].sort().values
    return Subset(dataset, order.tolist())


def make_pairs(config: AnalysisConfig, model: nn.Module, info: dict[str, Any], seed: int) -> Dataset:
    """The pair dataset of one seed: ``num_pairs`` videos (or frames for VOS), each giving one pair of each kind.

    Clips are cut as the model was trained (a checkpoint of this project records its clip length, size and
    temporal stride), else as its input spec says.
    """
    spec = model.input_spec
    stride = info.get("temporal_stride", 1)
    synthetic = config.data.startswith("synthetic")
    kwargs: dict[str, Any] = {"size": config.size or info.get("trained_size") or spec.size}
    if synthetic:
        kwargs.update(num_videos=config.num_pairs, seed=seed)
        if info.get("trained_num_classes") and info["task"] == "action":
            kwargs["num_classes"] = info["trained_num_classes"]  # e.g. the 2-class motion task
    if info["task"] == "action":
        kwargs["num_frames"] = config.num_frames or info.get("trained_num_frames") or spec.num_frames * stride
        source = from_spec(config.data, **kwargs)
        if getattr(source, "kind", "action") != "action":
            raise ValueError(f"{config.data!r} is a VOS dataset but {model.__class__.__name__} is an action model.")
        return ActionPairs(_subset(source, config.num_pairs, seed), seed=seed, pathways=ClipInput(spec, stride))
    if synthetic:  # a VOS video yields T - 1 frames; make enough videos for num_pairs frames
        kwargs["num_videos"] = max(1, math.ceil(config.num_pairs / 4))
    source = from_spec(config.data, **kwargs)
    if not hasattr(source, "frames"):
        raise ValueError(f"{config.data!r} is not a VOS dataset (frames with flow and masks); "
                         "use synthetic-vos[:diffuse] or a DAVIS-like folder.")
    return VOSPairs(_subset(source.frames(), config.num_pairs, seed), seed=seed)


# ---------------------------------------------------------------------------------------------- measuring


def summarize_seeds(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and 95% confidence half-width (1.96 std / sqrt(n)) of the layer summaries over seeds."""
    n = len(per_seed)
    mean, ci95 = {}, {}
    for key in SUMMARY_KEYS:
        names = per_seed[0][key].keys()
        values = {k: torch.tensor([float(d[key][k]) for d in per_seed], dtype=torch.float64) for k in names}
        mean[key] = {k: float(v.mean()) for k, v in values.items()}
        ci95[key] = {k: float(1.96 * v.std(unbiased=True) / math.sqrt(n)) for k, v in values.items()}
    return {"mean": mean, "ci95": ci95}


def measure(
    config: AnalysisConfig,
    model: nn.Module,
    info: dict[str, Any],
    device: torch.device | str = "cpu",
    autocast: Callable[[], ContextManager] | None = None,
    progress: bool = True,
) -> tuple[dict[int, dict[str, BiasResult]], list[str]]:
    """Probe every seed; returns {seed: {tap: BiasResult}} and the tap names in network order.

    In a distributed run every rank measures its share of the pairs and the results are synced (every rank
    returns the same numbers).
    """
    model = model.to(device)
    results: dict[int, dict[str, BiasResult]] = {}
    for seed in config.seeds:
        pairs = make_pairs(config, model, info, seed)
        world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
        if len(pairs) < world:  # a process without pairs would have no metric to merge
            raise ValueError(f"{len(pairs)} pairs cannot be split over {world} processes; "
                             "use more pairs or fewer devices.")
        loader = pair_loader(pairs, config.batch_size, num_workers=config.num_workers)
        probe = BiasProbe(model, config.layers, config.threshold, config.layer_score, autocast=autocast)
        results[seed] = probe.run(loader, progress=progress, desc=f"seed {seed}")
    order = list(next(iter(results.values())))
    return results, order


def build_document(config: AnalysisConfig, info: dict[str, Any], results: dict[int, dict[str, BiasResult]],
                   order: list[str]) -> dict[str, Any]:
    """The ``bias.json`` document: run settings, then per layer the numbers (mean over seeds when several)."""
    seeds = list(results)
    first = results[seeds[0]]
    doc: dict[str, Any] = {
        **info,
        "data": config.data,
        "threshold": config.threshold,
        "thresholds": list(config.thresholds),
        "seeds": seeds,
        "num_pairs": first[order[0]].num_pairs,
        "layer_score_mode": config.layer_score,
        "layer_order": order,
        "layers": {},
    }
    for tap in order:
        per_seed = [results[s][tap].to_dict(thresholds=config.thresholds) for s in seeds]
        layer = dict(per_seed[0])
        if len(seeds) > 1:
            stats = summarize_seeds(per_seed)
            layer.update({k: stats["mean"][k] for k in SUMMARY_KEYS})
            layer.update(stats)
        layer["per_seed"] = per_seed
        doc["layers"][tap] = layer
    return doc


def write_units_csv(path: Path, results: dict[int, dict[str, BiasResult]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seed", "layer", "unit", "dynamic_score", "static_score", "dead"])
        for seed, taps in results.items():
            for tap, result in taps.items():
                for i, (d, s) in enumerate(result.unit_scores.T.tolist()):
                    writer.writerow([seed, tap, i, f"{d:.6f}", f"{s:.6f}", int(result.dead_units[i])])


def write_outputs(out: str | Path, doc: dict[str, Any], results: dict[int, dict[str, BiasResult]]) -> Path:
    """Write bias.json, units.csv, the plots and report.html into ``out``.

    Everything is made in a staging folder beside ``out`` first, so a failure leaves ``out`` as it was; then
    each file is moved in, replacing only files of the same name (other files in ``out`` are left alone).
    """
    from lit_stbias.reports import write_report

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder.")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / "bias.json").write_text(json.dumps(doc, indent=2))
        write_units_csv(staging / "units.csv", results)
        write_report(doc, staging, units=staging / "units.csv")
        out.mkdir(exist_ok=True)
        for path in sorted(staging.iterdir()):
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def validate(config: AnalysisConfig, model: nn.Module, info: dict[str, Any]) -> None:
    """Fail early, before any work: taps exist, thresholds sensible, the data yields pairs."""
    if config.num_pairs < 2:
        raise ValueError(f"--num-pairs must be at least 2 (per factor), got {config.num_pairs}.")
    if config.batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {config.batch_size}.")
    if not config.seeds:
        raise ValueError("give at least one seed.")
    resolve_taps(model, config.layers)
    pairs = make_pairs(config, model, info, config.seeds[0])
    if len(pairs) < 2:
        raise ValueError(f"{config.data!r} gives {len(pairs)} video(s); at least 2 are needed for pairs of each kind.")
    pairs[0]  # decodes one item: a wrong size or an unreadable source fails here


def mean_mask(data: str, num_videos: int = 32, size: int = 64, seed: int = 0):
    """The mean ground-truth mask over every frame of a VOS dataset, as a (H, W) numpy array in [0, 1]."""
    kwargs: dict[str, Any] = {"size": size}
    if data.startswith("synthetic"):
        kwargs.update(num_videos=num_videos, seed=seed)
    source = from_spec(data, **kwargs)
    if not hasattr(source, "frames"):
        raise ValueError(f"{data!r} has no masks: use synthetic-vos[:centred|:diffuse] or a DAVIS-like folder.")
    frames = source.frames()
    if len(frames) == 0:
        raise ValueError(f"{data!r} holds no annotated frames.")
    total = None
    for i in range(len(frames)):
        mask = frames[i]["mask"].float().reshape(frames[i]["mask"].shape[-2:])
        total = mask if total is None else total + mask
    return (total / len(frames)).numpy()
