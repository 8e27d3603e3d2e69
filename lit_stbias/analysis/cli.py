"""The ``analyze.py`` command line (``lit_stbias.analysis.cli:main``), on jsonargparse; see :data:`USAGE`."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import typing
from pathlib import Path
from typing import Any, List, Literal, Optional, Sequence, Union

from jsonargparse import ActionConfigFile, ArgumentError, ArgumentParser, DefaultHelpFormatter

from lit_stbias.analysis.clips import ClipSettings
from lit_stbias.analysis.document import DEFAULT_THRESHOLDS
from lit_stbias.analysis.intervals import INTERVAL_METHODS

PROG = "analyze.py"
USAGE = """Measure how much static and dynamic information a model's layers encode.

    analyze.py [measure] --model slow --data synthetic:motion --out runs/analysis/slow
    analyze.py --ckpt runs/<run>/checkpoints/last.ckpt --data synthetic:mixed --seeds 0,1,2 --out DIR
    analyze.py --model fusionseg --data synthetic-vos:diffuse --out DIR
    analyze.py --model mypkg.nets:build_net --layers layer3,layer4 --normalization imagenet \\
               --num-frames 8 --size 112 --data /data/videos --out DIR
    analyze.py --model slow --data synthetic:motion --devices 2 --accelerator cpu --out DIR   # DDP
    analyze.py --config analysis.yaml          # any option from a YAML file; --print_config writes one
    analyze.py compare DIR1 DIR2 ... --out DIR
    analyze.py center-bias --data synthetic-vos:diffuse --out DIR
    analyze.py ablate --ckpt CKPT --layers stage5 --data synthetic:motion --out DIR

measure is the default subcommand. Writes bias.json, units.csv, PNG plots and a self-contained report.html
into --out, replacing the previous results there as a whole (other files in --out are kept). Any problem with
the request is one line on stderr and exit code 2, found before the measurement wherever it can be, and
nothing is written.
"""
SUBCOMMANDS = ("measure", "compare", "center-bias", "ablate")


class UsageError(ValueError):
    """A bad option value: reported as one line, exit code 2."""


# ---------------------------------------------------------------------------------------------- option values


def parse_thresholds(value: Union[str, Sequence[float]], option: str = "--thresholds") -> list[float]:
    """``0.1,0.5,0.9``, a range ``0.1:0.9:0.1`` (start, stop, step; stop included) or a list, each λ in [0, 1]."""
    if isinstance(value, str):
        text = value.strip()
        if ":" in text:
            try:
                lo, hi, step = (float(x) for x in text.split(":"))
            except ValueError:
                raise UsageError(f"{option} {text!r}: a range is START:STOP:STEP, e.g. 0.1:0.9:0.1.") from None
            if not all(math.isfinite(x) for x in (lo, hi, step)) or step <= 0:
                raise UsageError(f"{option} {text!r}: the step must be a positive number, e.g. 0.1:0.9:0.1.")
            if hi < lo:
                raise UsageError(f"{option} {text!r}: STOP is below START; write {hi:g}:{lo:g}:{step:g}.")
            count = int(math.floor((hi - lo) / step + 1e-9)) + 1
            if count > 1000:
                raise UsageError(f"{option} {text!r} makes {count} thresholds; use a larger step.")
            values = [round(lo + i * step, 10) for i in range(count)]
        else:
            try:
                values = [float(x) for x in text.split(",") if x.strip()]
            except ValueError:
                raise UsageError(f"{option} {text!r}: give numbers such as 0.1,0.5,0.9 or a range "
                                 "0.1:0.9:0.1.") from None
    else:
        values = [float(x) for x in value]
    if not values:
        raise UsageError(f"{option} is empty; give at least one λ.")
    for x in values:
        check_threshold(x, option)
    return values


def check_threshold(value: float, option: str = "--threshold") -> float:
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise UsageError(f"{option} {value:g} is outside [0, 1]: λ is compared with unit scores, which are "
                         "correlations; use e.g. 0.5.")
    return value


def parse_ints(value: Union[str, int, Sequence[int]], option: str) -> list[int]:
    if isinstance(value, int):
        return [value]
    try:
        values = [int(x) for x in value.split(",") if x.strip()] if isinstance(value, str) else [int(x) for x in value]
    except ValueError:
        raise UsageError(f"{option} {value!r}: give comma-separated integers, e.g. 0,1,2.") from None
    if not values:
        raise UsageError(f"{option} is empty.")
    return values


def parse_names(value: Union[str, Sequence[str], None]) -> list[str] | None:
    if value is None:
        return None
    names = [x.strip() for x in value.split(",")] if isinstance(value, str) else [str(x) for x in value]
    return [x for x in names if x] or None


def check_preset(model: str | None, preset: str | None) -> None:
    """A ``--preset`` is a size of a zoo model: checked against the model's presets before anything is built."""
    from lit_stbias.analysis.loading import is_user_model
    from lit_stbias.models import resolve

    if preset is None or model is None:
        return
    if is_user_model(model):
        raise UsageError(f"--preset {preset}: presets are sizes of zoo models (tiny, full, ...); the user model "
                         f"{model} takes its clip from --num-frames and --size instead.")
    resolve(model, preset)  # an unknown model or preset is a ValueError listing the choices


def parse_devices(value: Union[str, int]) -> Union[str, int, list[int]]:
    """``auto``, a count (``2``; ``-1`` for all) or a list of device indices (``0,1``)."""
    text = str(value).strip()
    if text == "auto":
        return text
    try:
        if "," in text:
            return [int(x) for x in text.split(",") if x.strip()]
        count = int(text)
    except ValueError:
        raise UsageError(f"--devices {text!r}: give a number of devices (e.g. 2), -1 for all, a list such as 0,1, "
                         "or auto.") from None
    if count == 0 or count < -1:
        raise UsageError(f"--devices {count}: give a positive number of devices, -1 for all, or auto.")
    return count


def parse_normalization(value: str) -> Any:
    """``none``, ``kinetics``, ``imagenet`` or ``MEAN/STD`` with three comma-separated numbers each."""
    if value in ("none", "kinetics", "imagenet"):
        return value
    try:
        mean, std = ([float(x) for x in part.split(",")] for part in value.split("/"))
    except ValueError:
        mean = std = []
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise UsageError(f"--normalization {value!r}: use none, kinetics, imagenet or MEAN/STD such as "
                         "0.45,0.45,0.45/0.225,0.225,0.225.")
    return (tuple(mean), tuple(std))


# ---------------------------------------------------------------------------------------------- parsers


class _HelpFormatter(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults and types after each option's help; the description's examples kept line by line."""


def _parser(prog: str, description: str) -> ArgumentParser:
    parser = ArgumentParser(prog=prog, description=description, formatter_class=_HelpFormatter,
                            exit_on_error=False, default_env=False)
    parser.add_argument("--config", action=ActionConfigFile, help="read options from a YAML file")
    return parser


def _clip_option_type(field: dataclasses.Field) -> Any:
    hints = typing.get_type_hints(ClipSettings)
    return hints[field.name]


def add_clip_options(p: ArgumentParser) -> None:
    """One option per :class:`ClipSettings` field, defaulting to the checkpoint's (else the input spec's)."""
    clips = p.add_argument_group("clips (default: the checkpoint's, else the model's input spec)")
    for item in dataclasses.fields(ClipSettings):
        clips.add_argument(f"--{item.name.replace('_', '-')}", type=_clip_option_type(item), default=None,
                           help=item.metadata.get("help", ""))


def measure_parser() -> ArgumentParser:
    p = _parser(PROG, USAGE)
    model = p.add_argument_group("model")
    model.add_argument("--model", type=Optional[str], default=None,
                       help="zoo model name (see --list-models) or a user model package.module:factory")
    model.add_argument("--preset", type=Optional[str], default=None,
                       help="zoo model size: tiny (the default), full, or another published size the model offers "
                            "(x3d: xs, s, m, l); a pytorchvideo name such as x3d_m brings its own")
    model.add_argument("--ckpt", type=Optional[str], default=None,
                       help="checkpoint: a Lightning checkpoint of this project (brings its model and clip settings), "
                            "or a state dict / published checkpoint with --model")
    model.add_argument("--num-classes", type=Optional[int], default=None,
                       help="classes of the model's head (plain state dicts, published checkpoints)")
    model.add_argument("--normalization", type=str, default="none",
                       help="user models: input statistics their weights expect: none, kinetics, imagenet or MEAN/STD")
    model.add_argument("--init-seed", type=int, default=0, help="weights of a model without checkpoint are drawn "
                                                                 "from this seed")
    model.add_argument("--list-models", action="store_true", help="print the zoo's model names and exit")

    data = p.add_argument_group("data and pairs")
    data.add_argument("--data", type=Optional[str], default=None,
                      help="synthetic:appearance|motion|mixed, synthetic-vos[:centred|:diffuse], samples, or a folder")
    data.add_argument("--num-pairs", type=int, default=64, help="pairs per factor (videos, or frames for VOS)")
    data.add_argument("--seeds", type=Union[List[int], str], default="0",
                      help="comma-separated measurement seeds, e.g. 0,1,2,3 (each: its own videos, styles, shuffles)")
    data.add_argument("--allow-fewer-pairs", action="store_true",
                      help="when the data holds fewer videos (frames) than --num-pairs, measure those there are "
                           "(default: refuse)")
    data.add_argument("--batch-size", type=int, default=8, help="pairs per forward pass")
    data.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")

    add_clip_options(p)

    probe = p.add_argument_group("probe")
    probe.add_argument("--layers", type=Union[List[str], str, None], default=None,
                       help="comma-separated tap names or dotted module names (default: every tap of the model)")
    probe.add_argument("--pool-tokens", type=Optional[Literal["all", "patches"]], default=None,
                       help="transformer taps: pool all tokens (as the authors' release) or patches only "
                            "(class token left out); default: each tap's own rule")
    probe.add_argument("--threshold", type=float, default=0.5, help="λ of the unit-wise classification, in [0, 1]")
    probe.add_argument("--thresholds", type=Union[List[float], str, None], default=None,
                       help="λ sweep: 0.1,0.3 or 0.1:0.9:0.1 (default: 0.1 to 0.9 by 0.1)")
    probe.add_argument("--layer-score", type=Literal["pooled", "unit_mean"], default="pooled",
                       help="layer score: pooled covariances (the paper's figures) or the mean unit score (Eq. 1)")
    probe.add_argument("--interval", type=Literal[INTERVAL_METHODS], default="normal",
                       help="95%% interval over seeds: normal = 1.96 std/sqrt(n), population std (the authors' "
                            "release); student-t = t quantile, sample std")

    out = p.add_argument_group("output")
    out.add_argument("--out", type=Optional[str], default=None, help="output folder (replaced as a whole)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")

    devices = p.add_argument_group("devices (Lightning Fabric)")
    devices.add_argument("--accelerator", type=str, default="auto", help="cpu, cuda, gpu, mps or auto")
    devices.add_argument("--devices", type=Union[int, str], default="1",
                         help="number of devices per node, -1 for all, a list such as 0,1, or auto")
    devices.add_argument("--num-nodes", type=int, default=1)
    devices.add_argument("--strategy", type=str, default="auto", help="auto, ddp, ...")
    devices.add_argument("--precision", type=str, default="32-true", help="32-true, 16-mixed, bf16-mixed")
    return p


def compare_parser() -> ArgumentParser:
    p = _parser(f"{PROG} compare", "One figure and table across analysed runs (their bias.json).")
    p.add_argument("dirs", type=str, nargs="+", help="folders written by analyze.py (each holds bias.json)")
    p.add_argument("--labels", type=Union[List[str], str, None], default=None,
                   help="comma-separated labels (default: model@data of each run)")
    p.add_argument("--taps", type=Union[List[str], str, None], default=None,
                   help="taps every run has (default: each run's last tap)")
    p.add_argument("--out", type=str, required=True, help="output folder")
    return p


def center_bias_parser() -> ArgumentParser:
    p = _parser(f"{PROG} center-bias", "The sum and the mean of a VOS dataset's ground-truth masks at its own frame "
                                       "size (the paper's Fig. 7) and how centred its objects are.")
    p.add_argument("--data", type=str, required=True,
                   help="synthetic-vos[:centred|:diffuse], a DAVIS-like folder or a Stylized DAVIS folder")
    p.add_argument("--num-videos", type=int, default=32, help="synthetic data: videos drawn")
    p.add_argument("--size", type=Optional[int], default=None,
                   help="synthetic data: frame side (default 64); folders are summed at their own frame size")
    p.add_argument("--seed", type=int, default=0, help="synthetic data: seed")
    p.add_argument("--resize", type=Optional[str], default=None,
                   help="H,W: resize every mask to this size first (nearest neighbour), as the release does for "
                        "datasets of several resolutions (its map is 480,854); default: never resized")
    p.add_argument("--out", type=str, required=True, help="output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


# ---------------------------------------------------------------------------------------------- measure


def _fabric(args):
    """Lightning Fabric for the requested devices; one line naming the options when they cannot be had."""
    from lightning.fabric import Fabric

    from lit_stbias.lightning.cli import check_devices

    devices = parse_devices(args.devices)
    check_devices(args.accelerator, devices, prefix="--")  # no GPU here, more devices than there are: say so
    try:
        return Fabric(accelerator=args.accelerator, devices=devices, num_nodes=args.num_nodes,
                      strategy=args.strategy, precision=args.precision)
    except (RuntimeError, ValueError, TypeError, ImportError) as err:
        raise UsageError(f"--accelerator {args.accelerator} --devices {args.devices} --strategy {args.strategy} "
                         f"--precision {args.precision}: {err}") from None


def run_measure(argv: list[str]) -> int:
    from lit_stbias.analysis.loading import load_model
    from lit_stbias.analysis.outputs import check_output_folder, write_outputs
    from lit_stbias.analysis.session import ProbeSession

    args = measure_parser().parse_args(argv)
    if args.list_models:
        from lit_stbias.models import available

        print("\n".join(available()))
        return 0
    if not args.data or not args.out:
        raise UsageError("--data and --out are required (see --help).")
    # Everything that can be checked without the model or the data, first.
    seeds = parse_ints(args.seeds, "--seeds")
    threshold = check_threshold(args.threshold)
    thresholds = parse_thresholds(args.thresholds) if args.thresholds is not None else list(DEFAULT_THRESHOLDS)
    normalization = parse_normalization(args.normalization)
    if args.num_pairs < 2:
        raise UsageError(f"--num-pairs must be at least 2 (per factor), got {args.num_pairs}.")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be positive, got {args.batch_size}.")
    check_preset(args.model, args.preset)
    check_output_folder(args.out)
    fabric = _fabric(args)

    options = {item.name: getattr(args, item.name) for item in dataclasses.fields(ClipSettings)}
    loaded = load_model(args.model, args.preset, args.ckpt, args.num_classes, args.init_seed,
                        num_frames=options["num_frames"], size=options["size"], normalization=normalization)
    session = ProbeSession(
        loaded.model, args.data, num_pairs=args.num_pairs, clip=loaded.clip.updated(**options),
        taps=parse_names(args.layers), threshold=threshold, thresholds=thresholds, layer_score=args.layer_score,
        pool_tokens=args.pool_tokens, batch_size=args.batch_size, num_workers=args.num_workers,
        allow_fewer_pairs=args.allow_fewer_pairs, interval=args.interval, describe=loaded.describe,
    )
    session.check(seeds[0])  # too few videos, a wrong size, an unreadable source: before any forward pass

    from lit_stbias.analysis.document import provenance

    fabric.launch()
    doc = session.run(seeds, device=fabric.device, autocast=fabric.autocast,
                      progress=fabric.is_global_zero and not args.no_progress,
                      provenance=provenance([PROG, *argv]), devices=fabric.world_size)
    if fabric.is_global_zero:
        from lit_stbias.reports import summary_table

        out = write_outputs(args.out, doc)
        print(summary_table(doc))
        print(pairs_note(doc))
        print(f"\nwrote {out}/bias.json, units.csv, plots and report.html")
    fabric.barrier()
    return 0


def pairs_note(doc) -> str:
    """Pairs asked for and measured per seed, and every skipped file with its reason."""
    measured = ", ".join(f"seed {s}: {n}" for s, n in zip(doc.seeds, doc.measured()))
    rows = " (rows of features: a two-frame input such as RTNet's gives one per frame)" if any(
        n > doc.pairs_asked for n in doc.measured()) else ""
    lines = [f"\npairs per factor: {doc.pairs_asked} asked for, measured {measured}{rows}"]
    if doc.skipped:
        lines.append(f"skipped {len(doc.skipped)} unreadable item(s), not replaced by others:")
        lines += [f"  seed {s.get('seed')}: {s.get('path') or 'item ' + str(s.get('index'))}: {s.get('reason')}"
                  for s in doc.skipped]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- compare, center-bias


def run_compare(argv: list[str]) -> int:
    from lit_stbias.reports import compare, load_doc

    args = compare_parser().parse_args(argv)
    docs = [load_doc(d) for d in args.dirs]
    labels = parse_names(args.labels) or [f"{d.model}@{d.data}" for d in docs]
    if len(labels) != len(docs):
        raise UsageError(f"{len(labels)} labels for {len(docs)} runs.")
    out = Path(args.out)
    compare(docs, labels, out / "compare.png", out / "compare.md", taps=parse_names(args.taps))
    print((out / "compare.md").read_text())
    print(f"wrote {out}/compare.png, compare.md, compare.csv")
    return 0


def parse_size(value: str | None, option: str) -> tuple[int, int] | None:
    """``H,W`` (positive integers) or None."""
    if value is None:
        return None
    try:
        h, w = (int(x) for x in str(value).split(","))
    except ValueError:
        raise UsageError(f"{option} {value!r}: give the height and width, e.g. 480,854.") from None
    if h < 1 or w < 1:
        raise UsageError(f"{option} {value!r}: the height and width must be positive.")
    return h, w


def mask_source(data: str, num_videos: int = 32, size: int | None = None, seed: int = 0):
    """The VOS dataset whose masks ``center-bias`` adds up: synthetic VOS videos, or a DAVIS-like / Stylized DAVIS
    folder read at its own frame size."""
    from lit_stbias.data import from_spec

    synthetic = data.startswith("synthetic")
    if size is not None and not synthetic:
        raise UsageError(f"--size sets the side of synthetic frames; {data} is summed at its own frame size "
                         "(--resize H,W resizes every mask).")
    kwargs: dict[str, Any] = {"num_videos": num_videos, "size": size or 64, "seed": seed} if synthetic else {}
    source = from_spec(data, **kwargs)
    if not hasattr(source, "frames") and getattr(source, "kind", None) != "stylized-vos":
        raise ValueError(f"{data!r} has no masks: use synthetic-vos[:centred|:diffuse], a DAVIS-like folder or a "
                         "Stylized DAVIS folder.")
    return source


def run_center_bias(argv: list[str]) -> int:
    from lit_stbias.analysis.outputs import check_output_folder
    from lit_stbias.data import mask_sum
    from lit_stbias.reports.center_bias import write_center_bias

    args = center_bias_parser().parse_args(argv)
    resize = parse_size(args.resize, "--resize")
    out = check_output_folder(args.out)
    source = mask_source(args.data, num_videos=args.num_videos, size=args.size, seed=args.seed)
    try:
        summed = mask_sum(source, size=resize, progress=not args.no_progress)
    except ValueError as err:
        hint = " (analyze.py center-bias: --resize H,W)" if "size=(H, W)" in str(err) else ""
        raise ValueError(f"{err}{hint}") from None
    summary = write_center_bias(summed.total, summed.frames, out, data=args.data)
    print(json.dumps({k: v for k, v in summary.items() if k != "files"}))
    print(f"wrote {out}/mask_sum.png, mask_sum.npy, mask_mean.png, center_bias.png and center_bias.json "
          f"({summary['height']} x {summary['width']}, {summary['frames']} frames)")
    return 0


# ---------------------------------------------------------------------------------------------- ablate

ABLATE_USAGE = """Silence each class of units of a tap (all dynamic, all static, all joint units) and as many random
units, and report what the model loses (top-1; J-mean for VOS models).

    analyze.py ablate --ckpt runs/fast-synthetic-motion/checkpoints/last.ckpt --layers stage5 \\
                      --data synthetic:motion --out runs/ablation/fast-motion
    analyze.py ablate --ckpt runs/fast-synthetic-mixed/checkpoints/last.ckpt --layers stage5 \\
                      --data synthetic:mixed --eval-data synthetic:mixed-conflicting --mode mean --out DIR

The units are classified from the pairs analyze.py measure would use with the same options (--data,
--num-pairs, --seed, the clip options, --threshold); the evaluation clips are the checkpoint's validation set
unless --eval-data names others. Writes ablation.json, ablation.md, ablation.png and ablation_bias.json (the
classifying measurement) into --out, replacing only those files. Bad input is one line on stderr and exit code
2, and nothing is written.
"""


def ablate_parser() -> ArgumentParser:
    p = _parser(f"{PROG} ablate", ABLATE_USAGE)
    model = p.add_argument_group("model")
    model.add_argument("--model", type=Optional[str], default=None,
                       help="zoo model name or a user model package.module:factory (default: the checkpoint's)")
    model.add_argument("--preset", type=Literal["tiny", "full"], default="tiny", help="zoo model size")
    model.add_argument("--ckpt", type=Optional[str], default=None,
                       help="checkpoint: a Lightning checkpoint of this project (brings its model, clip settings and "
                            "validation set), or a state dict / published checkpoint with --model")
    model.add_argument("--num-classes", type=Optional[int], default=None, help="classes of the model's head")
    model.add_argument("--normalization", type=str, default="none",
                       help="user models: none, kinetics, imagenet or MEAN/STD")
    model.add_argument("--init-seed", type=int, default=0, help="weights of a model without checkpoint")

    data = p.add_argument_group("pairs that classify the units (as analyze.py measure)")
    data.add_argument("--data", type=Optional[str], default=None,
                      help="synthetic:appearance|motion|mixed, synthetic-vos[:centred|:diffuse], samples, or a folder")
    data.add_argument("--num-pairs", type=int, default=64, help="pairs per factor")
    data.add_argument("--seed", type=int, default=0, help="measurement seed (videos, styles, shuffles)")
    data.add_argument("--allow-fewer-pairs", action="store_true", help="measure fewer pairs when the data has fewer")
    data.add_argument("--batch-size", type=int, default=8, help="pairs (and evaluation clips) per forward pass")
    data.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")

    add_clip_options(p)

    probe = p.add_argument_group("units")
    probe.add_argument("--layers", type=Union[List[str], str, None], default=None,
                       help="the tap(s) to ablate, comma-separated, e.g. stage5 (each tap on its own)")
    probe.add_argument("--pool-tokens", type=Optional[Literal["all", "patches"]], default=None,
                       help="transformer taps: pool all tokens or patches only")
    probe.add_argument("--threshold", type=float, default=0.5, help="λ of the unit classification, in [0, 1]")

    ablation = p.add_argument_group("ablation")
    ablation.add_argument("--eval-data", type=Optional[str], default=None,
                          help="labelled clips (annotated frames for VOS) to evaluate on, a --data spec; default: the "
                               "checkpoint's validation set (e.g. synthetic:mixed-conflicting: the validation clips "
                               "of a mixed run with scenes that contradict their labels)")
    ablation.add_argument("--eval-videos", type=Optional[int], default=None,
                          help="synthetic evaluation clips (default: the checkpoint's validation count, else 256)")
    ablation.add_argument("--eval-seed", type=Optional[int], default=None,
                          help="seed of synthetic evaluation clips (default: the checkpoint's validation seed, "
                               "else 1000)")
    ablation.add_argument("--mode", type=Literal["zero", "mean"], default="zero",
                          help="silence to 0, or to each channel's mean over the evaluation clips (intact model)")
    ablation.add_argument("--draws", type=int, default=10, help="random unit sets per class (the control)")
    ablation.add_argument("--control-seed", type=int, default=0, help="seed of the random unit sets")

    out = p.add_argument_group("output and device")
    out.add_argument("--out", type=Optional[str], default=None, help="output folder (its ablation files are replaced)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    out.add_argument("--accelerator", type=str, default="auto", help="cpu, cuda, gpu, mps or auto (one device)")
    out.add_argument("--precision", type=str, default="32-true", help="32-true, 16-mixed, bf16-mixed")
    return p


def run_ablate(argv: list[str]) -> int:
    from lit_stbias.analysis.ablation import ablation_run, ablation_table, evaluation_data, write_ablation
    from lit_stbias.analysis.document import provenance
    from lit_stbias.analysis.loading import load_model
    from lit_stbias.analysis.outputs import check_output_folder
    from lit_stbias.analysis.session import ProbeSession

    args = ablate_parser().parse_args(argv)
    if not args.data or not args.out:
        raise UsageError("--data and --out are required (see analyze.py ablate --help).")
    taps = parse_names(args.layers)
    if not taps:
        raise UsageError("--layers is required: name the tap(s) to ablate, e.g. --layers stage5.")
    threshold = check_threshold(args.threshold)
    normalization = parse_normalization(args.normalization)
    for option, value, least in (("--num-pairs", args.num_pairs, 2), ("--batch-size", args.batch_size, 1),
                                 ("--draws", args.draws, 1), ("--eval-videos", args.eval_videos or 1, 1)):
        if value < least:
            raise UsageError(f"{option} must be at least {least}, got {value}.")
    check_output_folder(args.out)
    args.devices, args.num_nodes, args.strategy = 1, 1, "auto"
    fabric = _fabric(args)

    options = {item.name: getattr(args, item.name) for item in dataclasses.fields(ClipSettings)}
    loaded = load_model(args.model, args.preset, args.ckpt, args.num_classes, args.init_seed,
                        num_frames=options["num_frames"], size=options["size"], normalization=normalization)
    session = ProbeSession(
        loaded.model, args.data, num_pairs=args.num_pairs, clip=loaded.clip.updated(**options), taps=taps,
        threshold=threshold, pool_tokens=args.pool_tokens, batch_size=args.batch_size, num_workers=args.num_workers,
        allow_fewer_pairs=args.allow_fewer_pairs, describe=loaded.describe,
    )
    evaluation = evaluation_data(loaded, session.clip, args.ckpt, args.eval_data, args.eval_videos, args.eval_seed,
                                 overrides=options)
    result, doc = ablation_run(
        loaded, session, evaluation, seed=args.seed, draws=args.draws, control_seed=args.control_seed,
        mode=args.mode, batch_size=args.batch_size, num_workers=args.num_workers, device=fabric.device,
        autocast=fabric.autocast, progress=not args.no_progress, provenance=provenance([PROG, "ablate", *argv]),
    )
    out = write_ablation(args.out, result, doc)
    print(ablation_table(result))
    print(f"\nwrote {out}/ablation.json, ablation.md, ablation.png and ablation_bias.json")
    return 0


COMMANDS = {"measure": run_measure, "compare": run_compare, "center-bias": run_center_bias, "ablate": run_ablate}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand (``measure`` when the first argument names none); returns the exit code."""
    argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    name = argv[0] if argv and argv[0] in COMMANDS else "measure"
    rest = argv[1:] if argv and argv[0] in COMMANDS else argv
    try:
        return COMMANDS[name](rest)
    except SystemExit as done:  # --help, --print_config
        return done.code if isinstance(done.code, int) else 0
    except (ArgumentError, ValueError, KeyError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)  # one line
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line, and the shell's code for it (128 + SIGINT)
        print(f"{PROG}: interrupted; --out is replaced only by complete results, so it holds the previous ones; "
              "run the command again to finish.", file=sys.stderr)
        return 130


__all__ = ["COMMANDS", "ablate_parser", "main", "mask_source", "measure_parser", "parse_devices",
           "parse_thresholds", "run_ablate", "run_measure"]
