"""Look at the pairs a data source gives before measuring anything.

    python -m lit_stbias.pairs.preview --data synthetic:motion --num-videos 3 --out preview.png

writes a PNG with, for each of a few videos, its three views (anchor, dynamic partner, static partner) as rows
of a few frames. Action sources: the dynamic partner is the clip in another style, the static partner the
anchor with its frames shuffled. VOS sources: each frame is shown next to its flow image; the dynamic partner
restyles the frame and keeps the flow, the static partner keeps the frame and jitters the flow's colours.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from lit_stbias.data import from_spec
from lit_stbias.pairs.flow import flow_to_rgb
from lit_stbias.pairs.views import make_action_views, make_vos_views, random_style_pair, views_from_styled

VIEWS = ("anchor", "dynamic", "static")
GAP = 2  # white pixels between frames


def _strip(images: Sequence[Tensor]) -> np.ndarray:
    """(3, H, W) images side by side as one (H, W', 3) array with white gaps."""
    arrays = [img.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() for img in images]
    gap = np.ones((arrays[0].shape[0], GAP, 3), np.float32)
    return np.concatenate([part for a in arrays for part in (a, gap)][:-1], axis=1)


def _pick(count: int, wanted: int) -> list[int]:
    return sorted({int(round(x)) for x in np.linspace(0, count - 1, min(wanted, count))})


def action_rows(dataset, index: int, frames: int, generator: torch.Generator) -> tuple[str, dict[str, np.ndarray]]:
    """Title and one strip per view for an action (or pre-stylized) item."""
    item = dataset[index]
    if "styled" in item:
        a, b = random_style_pair(generator, styles=sorted(item["styled"]))
        views = views_from_styled(item["styled"][a], item["styled"][b], generator)
        title = f"{item['video_id']}"
    else:
        a, b = random_style_pair(generator)
        views = make_action_views(item["video"], styles=(a, b), generator=generator)
        names = getattr(dataset, "classes", None) or getattr(dataset, "class_names", None)
        label = item.get("label", -1)
        title = f"video {item['index']}" + (f": {names[label]}" if names and label >= 0 else "")
    keep = _pick(views["anchor"].shape[1], frames)
    styles = {"anchor": a, "dynamic": b, "static": f"{a}, shuffled"}
    return title, {f"{v}\n({styles[v]})": _strip([views[v][:, t] for t in keep]) for v in VIEWS}


def vos_rows(dataset, video: int, frames: int, generator: torch.Generator) -> tuple[str, dict[str, np.ndarray]]:
    """Title and one strip per view (frame | flow image, for a few frames) of one VOS video."""
    per_frame = dataset.frames()
    indices = per_frame.frame_indices(video)
    a, b = random_style_pair(generator)
    strips: dict[str, list[Tensor]] = {v: [] for v in VIEWS}
    for k in [indices[i] for i in _pick(len(indices), frames)]:
        item = per_frame[k]
        views = make_vos_views(item["frame"], flow_to_rgb(item["flow"]), styles=(a, b), generator=generator)
        for v in VIEWS:
            strips[v] += list(views[v])
    styles = {"anchor": a, "dynamic": f"{b}, same flow", "static": f"{a}, flow jittered"}
    return f"video {video} (frame | flow)", {f"{v}\n({styles[v]})": _strip(strips[v]) for v in VIEWS}


def preview(spec: str, out: str | Path, videos: int = 3, frames: int = 4, seed: int = 0, **kwargs) -> Path:
    """Write the preview PNG of the first ``videos`` videos of ``spec`` (built with ``kwargs``) to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dataset = from_spec(spec, **kwargs)
    generator = torch.Generator().manual_seed(seed)
    is_vos = getattr(dataset, "kind", "").startswith("vos")
    count = dataset.frames().num_videos if is_vos else len(dataset)
    blocks = [(vos_rows if is_vos else action_rows)(dataset, i, frames, generator) for i in range(min(videos, count))]
    height, width = blocks[0][1][next(iter(blocks[0][1]))].shape[:2]
    scale = 2.2 / height
    fig, axes = plt.subplots(3 * len(blocks), 1, figsize=(width * scale + 1.6, 3 * len(blocks) * height * scale * 1.15),
                             squeeze=False)
    for b, (title, rows) in enumerate(blocks):
        for r, (name, strip) in enumerate(rows.items()):
            ax = axes[3 * b + r, 0]
            ax.imshow(strip, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
            if r == 0:
                ax.set_title(title, fontsize=9, loc="left")
    fig.suptitle(f"--data {spec}: anchor / dynamic partner / static partner", fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m lit_stbias.pairs.preview", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True,
                        help="a data spec: synthetic:motion, synthetic-vos, samples, a folder, ...")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--num-videos", type=int, default=3)
    parser.add_argument("--frames", type=int, default=4, help="frames shown per view")
    parser.add_argument("--num-frames", type=int, default=None, help="frames per clip (source default)")
    parser.add_argument("--size", type=int, default=None, help="frame size (source default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    kwargs = {k: v for k, v in (("num_frames", args.num_frames), ("size", args.size)) if v is not None}
    if args.data.startswith("synthetic"):
        kwargs["num_videos"] = max(args.num_videos, 1)
    out = preview(args.data, args.out, args.num_videos, args.frames, args.seed, **kwargs)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
