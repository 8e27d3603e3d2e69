"""Render a video dataset once in several styles, in the layout of the paper's release, so an expensive style
(a Texler generator costs ~51 GMACs per 224 px frame) is paid once instead of at every probe.

    python -m lit_stbias.pairs.render --styles texler:DIR --data PATH --out DIR [--size 224] [--num-frames 32]

writes ``DIR/style_<k>/<video>/frame_00001.jpg ...`` (k = 1, 2, ... in the order of ``--styles``), which
``lit_stbias.data.PrestylizedVideos`` (``--data DIR`` anywhere) reads back; ``DIR/render.json`` records which
style each folder holds and the settings, ``DIR/labels.csv`` the labels when the source has them.

Resumable: every video of every style is written into a hidden temporary folder and renamed when complete,
so a finished video is never redone and a half-written one (an interrupted run) is redone from scratch. A
rerun must use the same settings (``render.json`` says which); other settings need another ``--out``.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lit_stbias.pairs.styles import get_style, load_styles
from lit_stbias.pairs.stylize import stylize

MANIFEST = "render.json"
LABELS = "labels.csv"
FRAME_NAME = "frame_{:05d}.jpg"  # numbered from 1, as the release's README shows
STYLE_FOLDER = "style_{}"


@dataclass
class RenderSummary:
    """What one run did: videos rendered now, videos already complete before, videos that could not be read
    (``(index, reason)``), and the files the source left out when it was built (its ``skipped``: ``{"path",
    "reason"}``)."""

    rendered: int = 0
    complete: int = 0
    unreadable: list[tuple[int, str]] = field(default_factory=list)
    left_out: list[dict[str, str]] = field(default_factory=list)


def style_folders(styles: Sequence[str]) -> dict[str, str]:
    """``style_<k>`` folder -> style name, k from 1 in the given order."""
    return {STYLE_FOLDER.format(k): name for k, name in enumerate(styles, start=1)}


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_for(styles: Sequence[str], settings: dict[str, Any]) -> dict[str, Any]:
    """The ``render.json`` content: each folder's style (name, and the file and SHA-256 of a loaded style)
    and the settings that shape the frames."""
    folders = {}
    for folder, name in style_folders(styles).items():
        source = get_style(name).source
        folders[folder] = {"name": name, **({"source": source, "sha256": _file_digest(source)} if source else {})}
    return {"layout": "style_<k>/<video>/frame_%05d.jpg", "styles": folders, **settings}


def prepare_output(out: Path, manifest: dict[str, Any]) -> None:
    """Create ``out`` with its manifest, or check that an earlier run there used the same manifest.

    Raises ValueError when ``out`` holds another rendering or unrelated files, OSError when it cannot be
    written."""
    path = out / MANIFEST
    if path.is_file():
        try:
            earlier = json.loads(path.read_text())
        except ValueError:
            raise ValueError(f"{path} is not readable JSON; give another --out.") from None
        differ = sorted(k for k in set(earlier) | set(manifest) if earlier.get(k) != manifest.get(k))
        if differ:
            raise ValueError(f"{out} holds a rendering with other settings (differing: {', '.join(differ)}); "
                             "rerun with the same settings to resume, or give another --out.")
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty folder or an earlier rendering (no {MANIFEST}); "
                         "give a new or empty --out.")
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, json.dumps(manifest, indent=2) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)


def write_frames(video: Tensor, folder: Path, quality: int) -> None:
    """(3, T, H, W) in [0, 1] -> ``folder/frame_00001.jpg ...``, written into a hidden sibling folder that is
    renamed to ``folder`` once every frame is on disk."""
    from PIL import Image

    partial = folder.with_name(f".{folder.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)  # left by an interrupted run
    partial.mkdir(parents=True)
    frames = (video.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 3, 0).cpu().numpy()
    for t, frame in enumerate(frames, start=1):
        Image.fromarray(np.ascontiguousarray(frame)).save(partial / FRAME_NAME.format(t), quality=quality)
    os.replace(partial, folder)


def video_name(source: Dataset, item: dict[str, Any], index: int) -> str:
    """The folder name of a video: its id, its path under the source's root (without extension), else
    ``video_<index>``."""
    if item.get("video_id"):
        return str(item["video_id"])
    root, path = getattr(source, "root", None), item.get("path")
    if root is not None and path and Path(path).is_relative_to(root):
        relative = Path(path).relative_to(root)
        return (relative.with_suffix("") if Path(path).is_file() else relative).as_posix()
    return f"video_{index:05d}"


def _merge_labels(out: Path, labels: dict[str, int]) -> None:
    """Add this run's labels to ``out/labels.csv`` (kept from earlier runs), as ``video,label`` rows."""
    if not labels:
        return
    path, rows = out / LABELS, {}
    if path.is_file():
        with open(path, newline="") as handle:
            rows = {row["video"]: row["label"] for row in csv.DictReader(handle)}
    rows.update({name: str(label) for name, label in labels.items()})
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video", "label"])
        writer.writerows(sorted(rows.items()))
    os.replace(partial, path)


def render_dataset(
    source: Dataset,
    styles: Sequence[str],
    out: str | os.PathLike,
    device: str | torch.device = "cpu",
    quality: int = 95,
    limit: int | None = None,
    progress: bool = True,
    settings: Mapping[str, Any] | None = None,
) -> RenderSummary:
    """Write every video of ``source`` (its ``"video"`` items, (3, T, H, W) in [0, 1]) in every style of
    ``styles`` under ``out``, stylizing on ``device``.

    ``out`` gets a manifest of the styles, ``quality`` and ``settings`` (what else shaped the frames, e.g. the
    data and size); an ``out`` holding another manifest or other files is a ValueError (see
    :func:`prepare_output`). Videos already complete in a style are skipped; an item the source cannot read
    (``lit_stbias.data.VideoReadError``, or a source that hands back another video in its place) is recorded
    in the summary and written nowhere."""
    from tqdm.auto import tqdm

    from lit_stbias.data import VideoReadError

    out = Path(out)
    prepare_output(out, manifest_for(styles, {**(settings or {}), "quality": quality}))
    folders = style_folders(styles)
    count = len(source) if limit is None else min(limit, len(source))
    summary = RenderSummary(left_out=[dict(entry) for entry in getattr(source, "skipped", None) or []])
    labels: dict[str, int] = {}
    bar = tqdm(range(count), desc="rendering", unit="video", disable=not progress, file=sys.stderr)
    try:
        for index in bar:
            bar.set_postfix(rendered=summary.rendered, complete=summary.complete, unreadable=len(summary.unreadable))
            try:
                item = source[index]
            except VideoReadError as err:
                summary.unreadable.append((index, str(err)))
                continue
            if int(item.get("index", index)) != index:  # a source that replaced an unreadable video
                summary.unreadable.append((index, f"unreadable; the source gave video {item['index']} instead"))
                continue
            if "video" not in item:
                raise ValueError(f"source items must hold a 'video' to render; item {index} has {sorted(item)}.")
            name = video_name(source, item, index)
            if int(item.get("label", -1)) >= 0:
                labels[name] = int(item["label"])
            missing = {f: s for f, s in folders.items() if not (out / f / name).is_dir()}
            if not missing:
                summary.complete += 1
                continue
            video = item["video"].to(device)
            for folder, style in missing.items():
                write_frames(stylize(video, style), out / folder / name, quality)
            summary.rendered += 1
    finally:
        bar.close()
        _merge_labels(out, labels)
    return summary


class _OneLineParser(argparse.ArgumentParser):
    """argparse's errors as one line on stderr (no usage block), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message}; see --help.\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m lit_stbias.pairs.render",
        description="Render a video dataset in several styles as style_<k>/<video>/frame_%05d.jpg (the paper's "
                    "release layout; read back with --data OUT). Resumable: finished videos are skipped.",
    )
    parser.add_argument("--styles", required=True,
                        help="comma-separated styles: built-in names and/or texler:DIR (every .pth GeneratorJ "
                             "file in DIR), e.g. texler:checkpoints/texler or astronaut,hubble")
    parser.add_argument("--data", required=True,
                        help="the videos: a folder of videos (optional labels.csv), samples, or synthetic:TASK")
    parser.add_argument("--out", required=True, help="output folder (new, empty, or an earlier rendering to resume)")
    parser.add_argument("--size", type=int, default=224, help="frame size as the source crops it (default 224)")
    parser.add_argument("--num-frames", type=int, default=32, help="frames per video, sampled by the source "
                        "over the whole video (default 32)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality 1..100 (default 95)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="device that stylizes (default: cuda when available; half precision there)")
    parser.add_argument("--limit", type=int, help="render only the first N videos of the source")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _setup(args: argparse.Namespace) -> tuple[Dataset, list[str], Path, torch.device]:
    """Everything that can fail on bad input, before anything is written."""
    from lit_stbias.data import PrestylizedVideos, from_spec, skip_warnings_hidden

    if args.num_frames < 2:
        raise ValueError(f"--num-frames must be >= 2 (a static view shuffles frames); got {args.num_frames}.")
    if args.size < 4:
        raise ValueError(f"--size must be >= 4; got {args.size}.")
    if not 1 <= args.quality <= 100:
        raise ValueError(f"--quality must be in 1..100; got {args.quality}.")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1; got {args.limit}.")
    try:
        device = torch.device(args.device)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as err:
        raise ValueError(f"--device {args.device!r} is not usable here ({' '.join(str(err).split())[:120]}).") from None
    styles = load_styles(args.styles)
    if len(styles) < 2:
        raise ValueError(f"--styles needs at least 2 distinct styles (a dynamic pair draws two); got {styles}.")
    with skip_warnings_hidden():  # main lists the skipped files itself, one line each
        source = from_spec(args.data, num_frames=args.num_frames, size=args.size)
    if getattr(source, "kind", "action") != "action" or isinstance(source, PrestylizedVideos):
        raise ValueError(f"--data {args.data!r} is not a source of plain videos (a VOS or an already pre-stylized "
                         "dataset); give a folder of videos, samples, or synthetic:TASK.")
    out = Path(args.out).expanduser()
    prepare_output(out, manifest_for(styles, {**_settings(args), "quality": args.quality}))
    return source, styles, out, device


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """What, besides the styles and the JPEG quality, shapes the rendered frames."""
    data = Path(args.data).expanduser()
    return {"data": str(data.resolve()) if data.is_dir() else args.data, "size": args.size,
            "num_frames": args.num_frames}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        source, styles, out, device = _setup(args)
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    try:
        summary = render_dataset(source, styles, out, device, args.quality, args.limit, not args.no_progress,
                                 _settings(args))
    except OSError as err:
        print(f"error: cannot write under {out}: {err}; finished videos are kept, rerun to resume.", file=sys.stderr)
        return 1
    for entry in summary.left_out:
        print(f"skipped {entry['path']}: {entry['reason']}", file=sys.stderr)
    for index, reason in summary.unreadable:
        print(f"skipped video {index}: {reason}", file=sys.stderr)
    print(f"{out}: {summary.rendered} videos rendered, {summary.complete} already complete, "
          f"{len(summary.left_out) + len(summary.unreadable)} unreadable, in {len(styles)} styles "
          f"({', '.join(styles)}); read it with --data {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
