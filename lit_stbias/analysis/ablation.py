"""Unit ablation: does a unit class matter causally? Silence every unit of a class and see what the model loses.

The units of a tap are classified from the pairs a measurement uses (a :class:`ProbeSession`, unit scores at
λ: :func:`lit_stbias.intervene.document_unit_classes`). Then the model is evaluated on labelled clips (top-1;
J-mean for VOS models) intact, with all the dynamic, all the static and all the joint units silenced
(:func:`lit_stbias.intervene.silence`, by zero or by each channel's mean over the evaluation clips,
:func:`lit_stbias.intervene.channel_means`), and with ``draws`` random sets of the same sizes
(:func:`lit_stbias.intervene.random_unit_sets`): a class matters when silencing it costs more than silencing
as many random units. Every condition is evaluated on the same clips in one pass over them (each batch is
read once and run through every condition).

``analyze.py ablate`` (``lit_stbias.analysis.cli``) is the command line over :func:`ablation_run`; it writes
:data:`ABLATION_FILES` into ``--out`` (see :func:`write_ablation`). See docs/intervene.md.
"""
from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Mapping, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from lit_stbias.analysis.clips import ClipSettings
from lit_stbias.analysis.document import BiasDocument, check_finite
from lit_stbias.analysis.loading import LoadedModel, lightning_hparams
from lit_stbias.analysis.session import ProbeSession, is_vos
from lit_stbias.intervene import channel_means, document_unit_classes, random_unit_sets, silence
from lit_stbias.probe.probe import to_device
from lit_stbias.probe.taps import run_model

SCHEMA = "lit_stbias.ablation/1"
ABLATION_JSON, ABLATION_TABLE, ABLATION_PLOT = "ablation.json", "ablation.md", "ablation.png"
ABLATION_BIAS = "ablation_bias.json"  # the measurement that classified the units (a bias document)
#: the files ``analyze.py ablate`` writes into --out; a new ablation replaces them, and only them
ABLATION_FILES = (ABLATION_JSON, ABLATION_TABLE, ABLATION_PLOT, ABLATION_BIAS)
#: the classes whose units are silenced, in table order (residual units are neither static nor dynamic)
ABLATED_CLASSES = ("dynamic", "static", "joint")
METRICS = {"action": ("top1", "top-1"), "vos": ("j_mean", "J-mean")}
#: a synthetic evaluation set drawn when the checkpoint records no validation set to take the sizes from
DEFAULT_EVAL_VIDEOS, DEFAULT_EVAL_SEED = 256, 1000

#: a condition: nothing silenced (None), or (tap, class, draw) with draw None for the class itself
Condition = tuple


class EvaluationData(NamedTuple):
    """The labelled items ablate evaluates on, and how they were chosen (recorded in the JSON)."""

    source: Dataset
    description: dict[str, Any]


# ---------------------------------------------------------------------------------------------- evaluation data


def checkpoint_validation_source(ckpt: str | None, loaded: LoadedModel) -> tuple[Dataset, str] | None:
    """The validation set a Lightning checkpoint of this project was validated on, rebuilt by its DataModule
    from the saved hyper-parameters (``(dataset, spec)``); ``None`` for any other checkpoint."""
    if ckpt is None:
        return None
    from lit_stbias.models import read_checkpoint

    checkpoint = read_checkpoint(Path(ckpt))
    data_hparams, module_hparams = checkpoint.get("datamodule_hyper_parameters"), lightning_hparams(checkpoint)
    if not isinstance(data_hparams, Mapping) or module_hparams is None:
        return None
    from lit_stbias.lightning.data import ActionDataModule, VOSDataModule

    vos = loaded.describe.get("task") == "vos"
    # LightningCLI records the DataModule's class as "_class_path"; only this project's two are rebuilt (a
    # checkpoint never names code to import), chosen by the model's task
    kwargs = {k: v for k, v in data_hparams.items() if not str(k).startswith("_")}
    if not vos and kwargs.get("num_classes") is None:
        kwargs["num_classes"] = module_hparams.get("num_classes")
    try:
        datamodule = (VOSDataModule if vos else ActionDataModule)(**kwargs)
    except TypeError as err:
        raise ValueError(f"{ckpt}: its validation data cannot be rebuilt ({err}); name labelled evaluation clips "
                         "with --eval-data.") from None
    spec = loaded.model.input_spec
    datamodule.size = datamodule.size or spec.size
    if not vos and datamodule.num_frames is None:
        datamodule.num_frames = spec.num_frames * (loaded.clip.temporal_stride or 1)
    datamodule.setup("validate")
    return datamodule.val_source, datamodule.spec


def evaluation_data(
    loaded: LoadedModel,
    clip: ClipSettings,
    ckpt: str | None = None,
    data: str | None = None,
    num_videos: int | None = None,
    seed: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> EvaluationData:
    """The labelled clips (frames, for VOS) of the evaluation.

    Default: the validation set the checkpoint was validated on (a Lightning checkpoint of this project).
    ``data`` (a ``from_spec`` string) names others; a synthetic one is drawn at the clip settings of that
    validation set when the checkpoint has one (so ``synthetic:mixed-conflicting`` gives the validation clips
    of a ``mixed`` run with their scenes in conflict with their labels), else at ``clip`` (the measurement's
    settings) with :data:`DEFAULT_EVAL_VIDEOS` clips from seed :data:`DEFAULT_EVAL_SEED`. ``num_videos`` and
    ``seed`` change a synthetic set's size and seed; ``overrides`` are clip settings given on the command line
    (clip length, size, classes, ...), which apply to the evaluation clips as to the pairs.
    """
    from lit_stbias.data import from_spec

    vos = is_vos(loaded.model)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None and k not in ("num_videos", "data_seed")}
    validation = checkpoint_validation_source(ckpt, loaded)
    found = ClipSettings.of_source(validation[0]) if validation is not None else None  # synthetic: its settings
    changed = num_videos is not None or seed is not None or bool(overrides)
    if data is None:
        if validation is None:
            raise ValueError("name labelled evaluation clips with --eval-data (e.g. synthetic:motion or a labelled "
                             "folder): the model has no checkpoint of this project that records its validation set.")
        if found is None or not changed:
            if found is None and changed:
                raise ValueError(f"the checkpoint was validated on a split of {validation[1]}, which --eval-videos, "
                                 "--eval-seed and the clip options cannot redraw; name the clips with --eval-data.")
            kwargs = found[1].source_kwargs(found[0], vos, 0) if found is not None else None
            return EvaluationData(validation[0], {"data": found[0] if found else validation[1],
                                                  "chosen": "the checkpoint's validation set", "from_spec": kwargs})
        data, chosen = found[0], "the checkpoint's validation set, redrawn with the options given"
    else:
        chosen = "--eval-data"
    if found is not None:
        settings = found[1].updated(**overrides)
    else:
        settings = clip.updated(num_videos=DEFAULT_EVAL_VIDEOS, data_seed=DEFAULT_EVAL_SEED)
    settings = settings.updated(num_videos=num_videos, data_seed=seed)
    kwargs = settings.source_kwargs(data, vos, int(settings.data_seed))
    source = from_spec(data, **kwargs)
    if vos:
        if not hasattr(source, "frames"):
            raise ValueError(f"--eval-data {data} is not a VOS dataset with masks; use synthetic-vos[:diffuse] or a "
                             "DAVIS-like folder.")
        source = source.frames()
    return EvaluationData(source, {"data": data, "chosen": chosen, "from_spec": kwargs})


class EvaluationInputs:
    """What the model gets from a batch of evaluation items: the clip cut to every ``temporal_stride``-th frame
    and packed as the model takes it (as the measurement's pairs), or (frame, flow image) for VOS models."""

    def __init__(self, model: nn.Module, clip: ClipSettings) -> None:
        self.vos, self.stride = is_vos(model), clip.stride()
        spec = getattr(model, "input_spec", None)
        if spec is not None and not self.vos:
            from lit_stbias.models import ClipInput

            self.pack: Callable[[Tensor], Any] | None = ClipInput(spec, self.stride)
        else:
            self.pack = None

    def __call__(self, batch: Mapping[str, Any]) -> Any:
        if self.vos:
            from lit_stbias.pairs import flow_to_rgb

            return batch["frame"], flow_to_rgb(batch["flow"])
        video = batch["video"]
        return self.pack(video) if self.pack is not None else video[:, :, :: self.stride]


def evaluation_loader(source: Dataset, batch_size: int = 8, num_workers: int = 0) -> DataLoader:
    return DataLoader(source, batch_size=batch_size, shuffle=False, num_workers=num_workers)


def check_labelled(source: Dataset, vos: bool, name: str) -> None:
    """Refuse evaluation items without labels (action) or masks (VOS), naming the data."""
    if len(source) == 0:
        raise ValueError(f"the evaluation data {name!r} holds no items.")
    if vos:
        return  # masks are checked on the first batch
    root = getattr(source, "dataset", source)  # a Subset: its dataset says whether there are labels
    if getattr(root, "kind", "action") != "action" or hasattr(root, "frames"):
        raise ValueError(f"the evaluation data {name!r} is a VOS dataset but the model is an action model.")
    if getattr(root, "num_classes", None) == 0:
        raise ValueError(f"the evaluation clips of {name!r} have no labels; give labelled clips with --eval-data "
                         "(a folder with labels.csv or class folders, or a synthetic task; see docs/data.md).")


def score_batch(output: Any, batch: Mapping[str, Any], vos: bool, name: str = "the evaluation data") -> float:
    """The batch's summed score: correct top-1 predictions (action), or the sum over annotated frames of each
    frame's IoU (Jaccard) of the mask at logit 0 with the ground truth, 1 when both are empty (VOS). Refuses an
    output that is not (batch, classes) logits or (batch, 1, H, W) mask logits, and unlabelled items."""
    shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
    if vos:
        if "mask" not in batch:
            raise ValueError(f"the frames of {name!r} have no ground-truth masks; give annotated frames with "
                             "--eval-data.")
        mask = batch["mask"].to(output.device if isinstance(output, Tensor) else "cpu") > 0.5
        if not isinstance(output, Tensor) or output.shape != mask.shape:
            raise ValueError(f"the model outputs {shape}, not mask logits of the frames' shape "
                             f"{tuple(mask.shape)}; ablate evaluates a segmentation head.")
        keep = torch.as_tensor(batch.get("has_mask", True), device=mask.device).expand(len(mask)).bool()
        pred = output.float() > 0
        inter = (pred & mask).flatten(1).sum(1).double()
        union = (pred | mask).flatten(1).sum(1).double()
        iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
        return float(iou[keep].sum())
    if "label" not in batch:
        raise ValueError(f"the clips of {name!r} have no labels; give labelled clips with --eval-data.")
    labels = torch.as_tensor(batch["label"])
    if bool((labels < 0).any()):
        raise ValueError(f"the clips of {name!r} have no labels (label -1); give labelled clips with --eval-data.")
    if not isinstance(output, Tensor) or output.ndim != 2 or output.shape[0] != len(labels):
        raise ValueError(f"the model outputs {shape}, not (batch, classes) logits: ablate evaluates top-1 and needs "
                         "the classification head (a checkpoint with its head, or --num-classes).")
    if int(labels.max()) >= output.shape[1]:
        raise ValueError(f"the clips of {name!r} have labels up to {int(labels.max())} but the model's head has "
                         f"{output.shape[1]} outputs; evaluate on data of the task the model was trained on.")
    return float((output.argmax(1).cpu() == labels.cpu()).sum())


def batch_count(batch: Mapping[str, Any], vos: bool) -> int:
    """The items a batch adds to the mean: every clip, or every annotated frame."""
    if vos:
        n = len(batch["frame"])
        return int(torch.as_tensor(batch.get("has_mask", True)).expand(n).sum())
    return len(batch["video"])


# ---------------------------------------------------------------------------------------------- the conditions


def ablation_conditions(classes: Mapping[str, Mapping[str, Tensor]], draws: int, seed: int) -> dict[Condition, Any]:
    """Every condition to evaluate: ``None`` (intact) → ``{}``, and per tap and non-empty class
    ``(tap, class, None)`` → the class's mask and ``(tap, class, k)`` → the k-th random set of its size."""
    conditions: dict[Condition, Any] = {None: {}}
    for tap, masks in classes.items():
        chosen = {name: masks[name] for name in ABLATED_CLASSES}
        controls = random_unit_sets(chosen, draws=draws, seed=seed)
        for name, mask in chosen.items():
            if int(mask.sum()) == 0:
                continue  # nothing to silence: reported as such
            conditions[(tap, name, None)] = {tap: mask}
            for k, control in enumerate(controls[name]):
                conditions[(tap, name, k)] = {tap: control}
    return conditions


def check_not_every_unit(classes: Mapping[str, Mapping[str, Tensor]], threshold: float) -> None:
    """An ablation must leave the layer some signal: refuse a class that holds every unit of its tap."""
    for tap, masks in classes.items():
        for name in ABLATED_CLASSES:
            mask = masks[name]
            if mask.numel() and bool(mask.all()):
                raise ValueError(f"every one of the {mask.numel()} units of tap {tap!r} is {name} at "
                                 f"λ = {threshold:g}: silencing them would leave the layer no signal. Choose another "
                                 "--threshold or tap (--layers).")


class Scores(NamedTuple):
    """Mean score per condition, and how many items (clips, or annotated frames) each mean is over."""

    means: dict[Condition, float]
    count: int


@torch.no_grad()
def evaluate_conditions(
    model: nn.Module,
    batches: Iterable[Mapping[str, Any]],
    conditions: Mapping[Condition, Mapping[str, Tensor]],
    inputs: Callable[[Mapping[str, Any]], Any],
    *,
    vos: bool = False,
    mode: str = "zero",
    means: Mapping[str, Tensor] | None = None,
    device: torch.device | str | None = None,
    autocast: Callable[[], ContextManager] | None = None,
    name: str = "the evaluation data",
    progress: bool = False,
) -> Scores:
    """The mean score (top-1 or J-mean, in [0, 1]) of the model under every condition, in one pass over the
    batches: each batch is read once and run through every condition (``silence`` with the condition's
    channel sets). The model runs in eval mode on ``device`` (default: where it is)."""
    model.eval()
    if device is not None:
        model.to(device)
    device = next(model.parameters()).device if device is None else torch.device(device)
    autocast = autocast or nullcontext
    totals = dict.fromkeys(conditions, 0.0)
    count = 0
    total = len(batches) if hasattr(batches, "__len__") else None
    for batch in tqdm(batches, total=total, desc="ablation", disable=not progress, unit="batch"):
        view = to_device(inputs(batch), device)
        for condition, silenced in conditions.items():
            context = silence(model, dict(silenced), mode=mode, reference=means) if silenced else nullcontext()
            with context, autocast():
                output = run_model(model, view)
            totals[condition] += score_batch(output, batch, vos, name)
        count += batch_count(batch, vos)
    if count == 0:
        raise ValueError(f"{name!r} holds no annotated items to evaluate.")
    return Scores({condition: total / count for condition, total in totals.items()}, count)


def evaluate_model(loaded: LoadedModel, evaluation: EvaluationData, clip: ClipSettings, batch_size: int = 8,
                   num_workers: int = 0, device: torch.device | str | None = None) -> float:
    """The intact model's score (top-1, or J-mean for VOS) on the evaluation data."""
    vos = is_vos(loaded.model)
    check_labelled(evaluation.source, vos, evaluation.description["data"])
    loader = evaluation_loader(evaluation.source, batch_size, num_workers)
    scores = evaluate_conditions(loaded.model, loader, {None: {}}, EvaluationInputs(loaded.model, clip), vos=vos,
                                 device=device, name=evaluation.description["data"])
    return scores.means[None]


# ---------------------------------------------------------------------------------------------- the run


def spread(values: Sequence[float], silenced: float) -> dict[str, Any]:
    """The random controls' scores: mean, sample std, min, max, the values, and how many were at or below the
    class's own score (0 of K: the class costs more than every random set of its size)."""
    x = np.asarray(values, dtype=np.float64)
    return {"mean": float(x.mean()), "std": float(x.std(ddof=1)) if x.size > 1 else 0.0, "min": float(x.min()),
            "max": float(x.max()), "values": [float(v) for v in x],
            "at_or_below": int((x <= silenced + 1e-12).sum())}


def ablation_run(
    loaded: LoadedModel,
    session: ProbeSession,
    evaluation: EvaluationData,
    *,
    seed: int = 0,
    draws: int = 10,
    control_seed: int = 0,
    mode: str = "zero",
    batch_size: int = 8,
    num_workers: int = 0,
    device: torch.device | str | None = None,
    autocast: Callable[[], ContextManager] | None = None,
    progress: bool = False,
    provenance: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], BiasDocument]:
    """Classify the units of the session's taps from its pairs of ``seed``, then evaluate every condition.

    Returns the ablation document (JSON-ready, finite numbers only; see docs/intervene.md) and the bias
    document of the measurement that classified the units. Bad input is one ``ValueError``: unlabelled data or
    a model without a head (on the first evaluation batch, before the measurement), a class that holds every
    unit of a tap (after it).
    """
    if draws < 1:
        raise ValueError(f"--draws must be at least 1, got {draws}.")
    model, vos = loaded.model, is_vos(loaded.model)
    metric, metric_label = METRICS["vos" if vos else "action"]
    name = evaluation.description["data"]
    check_labelled(evaluation.source, vos, name)
    loader = evaluation_loader(evaluation.source, batch_size, num_workers)
    inputs = EvaluationInputs(model, session.clip)
    first = next(iter(loader))
    evaluate_conditions(model, [first], {None: {}}, inputs, vos=vos, device=device, autocast=autocast, name=name)
    session.check(seed)  # the pairs: before the measurement's forward passes

    doc = session.run([seed], device=device, autocast=autocast, progress=progress, provenance=dict(provenance or {}))
    classes = {tap: document_unit_classes(doc, tap) for tap in doc.taps}
    check_not_every_unit(classes, doc.threshold)
    means = channel_means(model, doc.taps, (inputs(b) for b in loader)) if mode == "mean" else None
    conditions = ablation_conditions(classes, draws, control_seed)
    scores = evaluate_conditions(model, loader, conditions, inputs, vos=vos, mode=mode, means=means, device=device,
                                 autocast=autocast, name=name, progress=progress)

    intact = scores.means[None]
    taps: dict[str, Any] = {}
    for tap, masks in classes.items():
        entry: dict[str, Any] = {"module": doc.tap_modules.get(tap), "num_units": int(masks["static"].numel()),
                                 "unit_counts": {c: int(m.sum()) for c, m in masks.items()}, "classes": {}}
        for cls in ABLATED_CLASSES:
            units = int(masks[cls].sum())
            if units == 0:
                entry["classes"][cls] = {"units": 0, "channels": [], "silenced": None, "drop": None, "random": None,
                                         "note": "no units in this class: nothing to silence"}
                continue
            silenced = scores.means[(tap, cls, None)]
            entry["classes"][cls] = {"units": units, "channels": masks[cls].nonzero().flatten().tolist(),
                                     "silenced": silenced, "drop": intact - silenced,
                                     "random": spread([scores.means[(tap, cls, k)] for k in range(draws)], silenced)}
        taps[tap] = entry
    clip = session.clip
    result = {
        "schema": SCHEMA,
        "model": loaded.describe.get("model"), "preset": loaded.describe.get("preset"),
        "checkpoint": loaded.describe.get("checkpoint"), "task": loaded.describe.get("task"),
        "init_seed": loaded.describe.get("init_seed") if loaded.describe.get("checkpoint") is None else None,
        "metric": metric, "metric_label": metric_label, "chance": chance(evaluation.source, vos),
        "mode": mode,
        "reference": (f"each channel's mean over the {len(evaluation.source)} evaluation items, intact model"
                      if mode == "mean" else None),
        "threshold": doc.threshold, "draws": draws, "control_seed": control_seed,
        "classification": {"data": doc.data, "seed": seed, "num_pairs": doc.tap(doc.taps[0])["num_pairs"],
                           "clip": clip.as_dict(), "document": ABLATION_BIAS},
        "evaluation": {**evaluation.description, "items": len(evaluation.source), "evaluated": scores.count},
        "intact": intact,
        "taps": taps,
        "provenance": dict(provenance or {}),
    }
    check_finite(result, "ablation")
    return result, doc


def chance(source: Dataset, vos: bool) -> float | None:
    """Top-1 of guessing: 1 / the number of classes of the evaluation data (``None`` for VOS)."""
    root = getattr(source, "dataset", source)
    names = getattr(root, "class_names", None) or getattr(root, "classes", None)
    return None if vos or not names else 1.0 / len(names)


# ---------------------------------------------------------------------------------------------- outputs


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def ablation_table(result: Mapping[str, Any]) -> str:
    """The Markdown table of an ablation document: per tap, the intact score, each class silenced, the drop,
    and the random sets of the same size (mean ± sample std, min–max, how many scored at or below the class)."""
    label, evaluation, classification = result["metric_label"], result["evaluation"], result["classification"]
    what = "frames" if result["metric"] == "j_mean" else "clips"
    pairs = classification["num_pairs"]
    lines = [
        f"{label} (%) of {result['model']} on {evaluation['evaluated']} {what} of {evaluation['data']} "
        f"({evaluation['chosen']}); {result['mode']} ablation; units classified at λ = {result['threshold']:g} from "
        f"{pairs['dynamic']} dynamic and {pairs['static']} static pairs of {classification['data']} (seed "
        f"{classification['seed']}); controls: {result['draws']} random sets of each class's size.",
        "",
        f"| tap | silenced | units | {label} (%) | drop | random sets of the same size: mean ± std (min–max) "
        "| random sets at or below |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for tap, entry in result["taps"].items():
        total = entry["num_units"]
        lines.append(f"| {tap} | nothing | 0 of {total} | {_percent(result['intact'])} | | | |")
        for cls, row in entry["classes"].items():
            if row["silenced"] is None:
                lines.append(f"| {tap} | {cls} | 0 of {total} | — | — | {row['note']} | |")
                continue
            rand = row["random"]
            lines.append(f"| {tap} | {cls} | {row['units']} of {total} | {_percent(row['silenced'])} | "
                         f"{_percent(row['drop'])} | {_percent(rand['mean'])} ± {_percent(rand['std'])} "
                         f"({_percent(rand['min'])}–{_percent(rand['max'])}) | {rand['at_or_below']} of "
                         f"{len(rand['values'])} |")
    return "\n".join(lines)


def plot_ablation(result: Mapping[str, Any], path: str | Path) -> Path:
    """Per tap, the score with each class silenced (bars in the class colour) beside the random sets of the
    same size (grey bars: their mean, error bars: ± their std, dots: every draw); dashed: intact; dotted:
    chance."""
    from lit_stbias.reports.style import COLORS, new_figure, save_figure

    taps = list(result["taps"])
    fig, axes = new_figure(3.0 + 4.0 * len(taps), 3.8, ncols=len(taps), squeeze=False)
    x = np.arange(len(ABLATED_CLASSES))
    for ax, tap in zip(axes[0], taps):
        entry = result["taps"][tap]
        for i, cls in enumerate(ABLATED_CLASSES):
            row = entry["classes"][cls]
            if row["silenced"] is None:
                ax.text(i, 3, "no units", ha="center", va="bottom", fontsize=8)
                continue
            rand = row["random"]
            ax.bar(i - 0.2, 100 * row["silenced"], 0.38, color=COLORS[cls], label=f"{cls} units silenced")
            ax.bar(i + 0.2, 100 * rand["mean"], 0.38, yerr=100 * rand["std"], color="#bdbdbd", ecolor="black",
                   capsize=3, label="random units, same number (mean ± std)")
            offsets = np.linspace(-0.1, 0.1, len(rand["values"]))
            ax.scatter(i + 0.2 + offsets, [100 * v for v in rand["values"]], s=6, color="black", zorder=3,
                       label="random draws")
        ax.axhline(100 * result["intact"], color="black", ls="--", lw=0.9, label="intact")
        if result.get("chance"):
            ax.axhline(100 * result["chance"], color="grey", ls=":", lw=0.9, label="chance")
        ax.set_xticks(x, [f"{c}\n{entry['classes'][c]['units']} of {entry['num_units']}" for c in ABLATED_CLASSES],
                      fontsize=8)
        ax.set_xlim(-0.6, len(ABLATED_CLASSES) - 0.4)
        ax.set_ylim(0, 105)
        ax.set_title(tap, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    axes[0][0].set_ylabel(f"{result['metric_label']} (%)")
    handles: dict[str, Any] = {}  # one legend entry per label, over every panel
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="outside right center", frameon=False, fontsize=8)
    fig.suptitle(f"{result['model']}: {result['mode']} ablation of each unit class, "
                 f"{result['evaluation']['data']}", fontsize=10)
    return save_figure(fig, path)


def write_ablation(out: str | Path, result: Mapping[str, Any], doc: BiasDocument) -> Path:
    """Write :data:`ABLATION_FILES` into ``out``: replaced as a whole (``write_folder``), every other file in
    ``out`` (a measurement's outputs, your own files) kept. Non-finite numbers are refused before anything is
    written."""
    from lit_stbias.analysis.outputs import write_folder

    text = json.dumps(result, indent=2, allow_nan=False)
    bias = doc.dumps()

    def write(folder: Path) -> None:
        (folder / ABLATION_JSON).write_text(text + "\n", encoding="utf-8")
        (folder / ABLATION_TABLE).write_text(ablation_table(result) + "\n", encoding="utf-8")
        (folder / ABLATION_BIAS).write_text(bias + "\n", encoding="utf-8")
        plot_ablation(result, folder / ABLATION_PLOT)

    return write_folder(out, write, ABLATION_FILES)


__all__ = ["ABLATED_CLASSES", "ABLATION_FILES", "SCHEMA", "EvaluationData", "EvaluationInputs", "Scores",
           "ablation_conditions", "ablation_run", "ablation_table", "chance", "check_labelled",
           "check_not_every_unit", "checkpoint_validation_source", "evaluate_conditions", "evaluate_model",
           "evaluation_data", "evaluation_loader", "plot_ablation", "score_batch", "spread", "write_ablation"]
