"""How centred the objects of a video-segmentation dataset are, from the sum of its ground-truth masks.

A dataset whose objects sit in the middle of the frame lets a model segment well from position alone, a
static cue; the numbers here say how strong that cue is. :func:`write_center_bias` writes the paper's Fig. 7
map (the sum of the binary masks at full frame size, as the release's ``misc/estimate_dataset_centerbias.py``
draws it), the mean mask, an annotated heat map and these numbers.

Definitions, for a mean mask m over an H x W image with mass p = m / sum(m), pixel (i, j) at its index,
centre c = ((H - 1) / 2, (W - 1) / 2) and half-diagonal R = sqrt(H^2 + W^2) / 2:

- ``spread`` = sum p(i, j) |(i, j) - c| / R: the mean distance of mask mass from the centre, in
  half-diagonals. 0 = all mass at the centre, 1 = all in the corners; a uniform mask on a square image gives
  :data:`UNIFORM_SPREAD` = (sqrt 2 + ln(1 + sqrt 2)) / (3 sqrt 2) ~ 0.541 (mean distance 0.383 side lengths).
- ``spread_vs_uniform`` = spread / spread of a uniform mask of the same shape: 1 = no centre bias.
- ``centre_mass``: share of mass in the central box with half the image's area (sides H/sqrt 2 x W/sqrt 2);
  0.5 for a uniform mask, 1 when every object lies inside it.
- ``centroid`` (i, j) in pixel indices and ``centroid_offset`` = |centroid - c| / R: where the mass
  balances, and how far that is from the centre (objects can be biased off-centre).
- ``coverage``: the mean mask value, the average share of a frame that is foreground.
"""
from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
from matplotlib.patches import Rectangle

from lit_stbias.reports.doc import atomic_write
from lit_stbias.reports.style import new_figure, save_figure

UNIFORM_SPREAD = (math.sqrt(2) + math.asinh(1)) / (3 * math.sqrt(2))


def _as_mask(mean_mask) -> np.ndarray:
    mask = np.squeeze(np.asarray(mean_mask, dtype=float))
    if mask.ndim != 2:
        raise ValueError(f"mean mask must be 2-D (H, W), got shape {np.shape(mean_mask)}")
    if not np.isfinite(mask).all() or (mask < 0).any():
        raise ValueError("mean mask must be finite and non-negative")
    if mask.sum() <= 0:
        raise ValueError("mean mask has no mass: every pixel is 0")
    return mask


def _geometry(shape: tuple[int, int]):
    """Row and column offsets from the centre, and the half-diagonal, for an (H, W) image."""
    h, w = shape
    dy = (np.arange(h) - (h - 1) / 2)[:, None]
    dx = (np.arange(w) - (w - 1) / 2)[None, :]
    return dy, dx, math.hypot(h, w) / 2


def center_bias_stats(mean_mask) -> dict:
    """``spread``, ``spread_vs_uniform``, ``centre_mass``, ``centroid``, ``centroid_offset``, ``coverage``
    of a mean mask (definitions in the module docstring)."""
    mask = _as_mask(mean_mask)
    p = mask / mask.sum()
    dy, dx, radius = _geometry(mask.shape)
    distance = np.hypot(dy, dx) / radius
    spread = float((p * distance).sum())
    uniform = float(distance.mean())
    h, w = mask.shape
    box = (np.abs(dy) < h / (2 * math.sqrt(2))) & (np.abs(dx) < w / (2 * math.sqrt(2)))
    cy, cx = float((p * dy).sum()), float((p * dx).sum())
    return {
        "spread": spread,
        "spread_vs_uniform": spread / uniform,
        "centre_mass": float(p[box].sum()),
        "centroid": (cy + (h - 1) / 2, cx + (w - 1) / 2),
        "centroid_offset": math.hypot(cy, cx) / radius,
        "coverage": float(mask.mean()),
    }


def plot_center_bias(mean_mask, path: str | os.PathLike, title: str = "Mean ground-truth mask") -> dict:
    """Heat map of a dataset's mean mask with its central half-area box and centroid; returns the stats.

    The returned dict is :func:`center_bias_stats` plus ``path`` (the PNG written).
    """
    mask = _as_mask(mean_mask)
    stats = center_bias_stats(mask)
    h, w = mask.shape
    fig, ax = new_figure(5.2, 4.6 * h / w + 0.6)
    image = ax.imshow(mask, cmap="viridis", vmin=0, interpolation="nearest")
    fig.colorbar(image, ax=ax, label="mean mask value", shrink=0.85)
    bh, bw = h / math.sqrt(2), w / math.sqrt(2)
    ax.add_patch(Rectangle(((w - bw) / 2 - 0.5, (h - bh) / 2 - 0.5), bw, bh, fill=False, ec="white", ls="--",
                           lw=1.2, label="central 50% area"))
    ax.plot([(w - 1) / 2], [(h - 1) / 2], "x", color="white", ms=8, label="image centre")
    ax.plot([stats["centroid"][1]], [stats["centroid"][0]], "+", color="#e4572e", ms=12, mew=2, label="centroid")
    ax.set_title(f"{title}\nspread {stats['spread']:.3f} ({stats['spread_vs_uniform']:.2f}× uniform), "
                 f"centre mass {stats['centre_mass']:.2f}", fontsize=10)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.6)
    ax.set_xticks([])
    ax.set_yticks([])
    return {**stats, "path": save_figure(fig, path)}


def save_mask_image(image, path: str | os.PathLike, vmin: float | None = None, vmax: float | None = None) -> Path:
    """A (H, W) map as an 8-bit grey PNG of the same size, one image pixel per map pixel: ``vmin`` black,
    ``vmax`` white (default: the map's minimum and maximum, as matplotlib's ``imshow(..., cmap="gray")`` scales
    the release's Fig. 7)."""
    from PIL import Image

    array = np.asarray(image, dtype=np.float64)
    if array.ndim != 2 or not np.isfinite(array).all():
        raise ValueError(f"a mask image must be a finite (H, W) map, got shape {array.shape}")
    lo = float(array.min()) if vmin is None else float(vmin)
    hi = float(array.max()) if vmax is None else float(vmax)
    scaled = (array - lo) / (hi - lo) if hi > lo else np.zeros_like(array)
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return atomic_write(path, buffer.getvalue())


def write_center_bias(total, frames: int, out: str | os.PathLike, data: str = "") -> dict:
    """Write the centre-bias outputs of a dataset whose binary masks add up to ``total`` (H, W) over ``frames``
    annotated frames (``lit_stbias.data.mask_sum``) into the folder ``out``, at the masks' own size:

    - ``mask_sum.png``: the sum, as the paper's Fig. 7 shows it (grey, least-covered pixel black, most-covered
      white); ``mask_sum.npy``: the sums themselves (float64);
    - ``mask_mean.png``: the mean mask on an absolute scale (black: never object, white: object in every frame);
    - ``center_bias.png``: the mean mask as a heat map with the central half-area box and the centroid;
    - ``center_bias.json``: ``data``, ``frames``, ``height``, ``width``, ``max_sum``, the numbers of
      :func:`center_bias_stats` and the files written.

    Returns the JSON's content.
    """
    total = np.asarray(total, dtype=np.float64)
    if frames < 1:
        raise ValueError(f"no annotated frame to sum (frames={frames})")
    mean = _as_mask(total / frames)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.save(buffer, total)
    files = {"sum_image": save_mask_image(total, out / "mask_sum.png"),
             "sum_array": atomic_write(out / "mask_sum.npy", buffer.getvalue()),
             "mean_image": save_mask_image(mean, out / "mask_mean.png", vmin=0.0, vmax=1.0)}
    h, w = mean.shape
    stats = plot_center_bias(mean, out / "center_bias.png",
                             title=f"Mean ground-truth mask{': ' + data if data else ''} ({h} x {w}, {frames} frames)")
    summary = {"data": data, "frames": int(frames), "height": h, "width": w, "max_sum": float(total.max()),
               **{k: v for k, v in stats.items() if k != "path"}, "path": str(stats["path"]),
               "files": {k: str(v) for k, v in files.items()}}
    atomic_write(out / "center_bias.json", json.dumps(summary, indent=2, allow_nan=False))
    return summary
