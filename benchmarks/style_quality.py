"""Measure every style on the real sample clips: how much it changes appearance, how much styles differ from
each other, and how well it keeps motion (Farneback flow cosine). Prints Markdown tables and draws one frame
in every style.

    .venv/bin/python benchmarks/style_quality.py                      # tables + docs/figures/styles.png
    .venv/bin/python benchmarks/style_quality.py --frames 16 --size 160 --figure ''   # tables only
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from lit_stbias.data.video_io import read_video, sample_video_paths
from lit_stbias.pairs import STYLES, available_styles, measure_styles, stylize

FIGURE = Path(__file__).resolve().parents[1] / "docs" / "figures" / "styles.png"


def per_style_table(per_clip: dict, styles: list[str]) -> str:
    """One row per style: change and flow cosine (mean and worst clip), smallest difference to another style."""
    rows = [
        "| style | recipe | pixel change (mean / min clip) | min change to another style (min clip) "
        "| flow cosine (mean / min clip) |",
        "|---|---|---|---|---|",
    ]
    clips = list(per_clip.values())
    for s in styles:
        change = [q.change[s] for q in clips]
        cosine = [q.flow_cosine[s] for q in clips]
        between = [min(v for (a, b), v in q.between.items() if s in (a, b)) for q in clips]
        rows.append(
            f"| {s} | {STYLES[s].description} | {sum(change) / len(change):.3f} / {min(change):.3f} "
            f"| {min(between):.3f} | {sum(cosine) / len(cosine):.3f} / {min(cosine):.3f} |"
        )
    return "\n".join(rows)


def pair_table(per_clip: dict, styles: list[str]) -> str:
    """Mean absolute difference between every two styles, averaged over clips (upper triangle)."""
    clips = list(per_clip.values())
    rows = ["| | " + " | ".join(styles[1:]) + " |", "|---" * len(styles) + "|"]
    for i, a in enumerate(styles[:-1]):
        mean = {b: sum(q.between[(a, b)] for q in clips) / len(clips) for b in styles[i + 1 :]}
        cells = [f"{mean[b]:.3f}" if b in mean else "" for b in styles[1:]]
        rows.append(f"| **{a}** | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def draw_styles(clips: dict, styles: list[str], path: Path, frame: int) -> None:
    """A grid: one row per clip, the original frame then the same frame in every style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = ["original", *styles]
    fig, axes = plt.subplots(len(clips), len(cols), figsize=(2.2 * len(cols), 1.6 * len(clips)), squeeze=False)
    for row, (name, clip) in enumerate(clips.items()):
        still = clip[:, frame : frame + 1]
        for col, style in enumerate(cols):
            image = still if style == "original" else stylize(still, style)
            ax = axes[row, col]
            ax.imshow(image[:, 0].permute(1, 2, 0).numpy())
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(style, fontsize=10)
            if col == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16, help="frames read from each sample clip")
    parser.add_argument("--size", type=int, default=112, help="short side of the frames, in pixels")
    parser.add_argument("--figure", default=str(FIGURE), help="where to draw the styles ('' to skip)")
    args = parser.parse_args()

    paths = sample_video_paths()
    clips = {name: read_video(path, max_frames=args.frames, size=args.size) for name, path in paths.items()}
    styles = available_styles()
    start = time.perf_counter()
    per_clip = {name: measure_styles([clip], styles) for name, clip in clips.items()}
    seconds = time.perf_counter() - start
    shapes = ", ".join(f"{n} {tuple(c.shape[1:])}" for n, c in clips.items())
    print(f"Sample clips (T, H, W): {shapes}; measured in {seconds:.1f} s.\n")
    print(per_style_table(per_clip, styles), end="\n\n")
    print(pair_table(per_clip, styles))
    if args.figure:
        draw_styles(clips, styles, Path(args.figure), frame=args.frames // 2)
        print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
