"""Synthetic video object segmentation: one real-textured object over a real scene, with its masks and the
exact forward optical flow (the generator made the motion, so it knows the flow; no estimator involved).

``center_bias=True`` keeps large objects near the middle of the frame, as in DAVIS; ``False`` places smaller
objects anywhere, partly outside the frame too, as in TAO-VOS. Comparing the two shows how much a VOS model
leans on "the salient thing is in the centre".
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
from torch.utils.data import Dataset

from lit_stbias.data import imagery
from lit_stbias.data.render import Trajectory, exact_flow, render_on_scene, to_tensor
from lit_stbias.data.synthetic import SPRITE_FRACTION


def sample_vos_motion(
    rng: np.random.Generator, num_frames: int, size: int, center_bias: bool, pan: bool
) -> Trajectory:
    """A smooth random similarity motion (drift, spin, zoom) plus an optional camera pan."""
    t = np.arange(num_frames) - (num_frames - 1) / 2.0
    span = max(num_frames - 1, 1)

    def heading(length: float) -> np.ndarray:
        a = rng.uniform(0, 2 * math.pi)
        return length * size / span * np.array([math.cos(a), math.sin(a)])

    if center_bias:
        middle = np.clip(rng.normal(size / 2, 0.07 * size, size=2), 0.3 * size, 0.7 * size)
        scale0, drift = rng.uniform(0.9, 1.2), heading(rng.uniform(0.05, 0.2))
    else:
        middle = rng.uniform(0.1 * size, 0.9 * size, size=2)
        scale0, drift = rng.uniform(0.5, 0.85), heading(rng.uniform(0.1, 0.3))
    pan_rate = heading(rng.uniform(0.05, 0.2)) if pan else np.zeros(2)
    spin = math.radians(rng.uniform(-30, 30)) / span
    zoom = math.log(rng.uniform(0.8, 1.25)) / span
    return Trajectory(
        centre=middle + np.outer(t, drift + pan_rate),
        scale=scale0 * np.exp(zoom * t),
        angle=math.radians(rng.uniform(-20, 20)) + spin * t,
        offset=np.outer(t, pan_rate),
    )


class SyntheticVOS(Dataset):
    """Map-style dataset of synthetic VOS clips; item ``i`` is a pure function of (seed, i).

    Items are ``{"frames": (3, T, H, W) float in [0, 1], "masks": (T, H, W) float in {0, 1},
    "flow": (2, T-1, H, W) float (u, v) in pixels, the exact forward flow from t to t+1, "index": i}``.
    Object pixels (mask at t) move with the object's similarity motion, the rest with the camera pan (zero
    without ``camera_pan``). :meth:`frames` gives per-frame items for the pair datasets.

    Example:
        >>> ds = SyntheticVOS(num_videos=4, num_frames=5, size=32)
        >>> item = ds[0]
        >>> tuple(item["flow"].shape), tuple(ds.frames()[0]["frame"].shape)
        ((2, 4, 32, 32), (3, 32, 32))
    """

    kind = "vos"

    def __init__(
        self,
        num_videos: int = 200,
        num_frames: int = 8,
        size: int = 64,
        center_bias: bool = True,
        seed: int = 0,
        camera_pan: bool = False,
    ) -> None:
        if num_frames < 2 or size < 16 or num_videos < 1:
            raise ValueError("need num_frames >= 2 (flow needs a next frame), size >= 16 and num_videos >= 1.")
        self.num_videos, self.num_frames, self.size = num_videos, num_frames, size
        self.center_bias, self.seed, self.camera_pan = center_bias, seed, camera_pan
        self.sprite_size = max(8, round(SPRITE_FRACTION * size))

    def __len__(self) -> int:
        return self.num_videos

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if not 0 <= index < self.num_videos:
            raise IndexError(f"index {index} out of range for {self.num_videos} videos.")
        rng = np.random.default_rng([self.seed, index, 2])
        catalogue = imagery.object_catalogue()
        obj = catalogue[int(rng.integers(len(catalogue)))]
        scene = int(rng.integers(len(imagery.SCENES)))
        motion = sample_vos_motion(rng, self.num_frames, self.size, self.center_bias, self.camera_pan)
        sprite = imagery.make_sprite(obj, self.sprite_size, rng)
        frames, alpha = render_on_scene(rng, scene, sprite, motion, self.size)
        masks = (alpha > 0.5).astype(np.float32)
        return {
            "frames": to_tensor(frames, 3, 0, 1, 2),
            "masks": to_tensor(masks),
            "flow": to_tensor(exact_flow(motion, masks), 1, 0, 2, 3),
            "index": index,
        }

    def frames(self) -> "VOSFrames":
        """Per-frame view of this dataset (see :class:`VOSFrames`)."""
        return VOSFrames(self)

    def __repr__(self) -> str:
        return (f"SyntheticVOS(num_videos={self.num_videos}, num_frames={self.num_frames}, size={self.size}, "
                f"center_bias={self.center_bias}, seed={self.seed}, camera_pan={self.camera_pan})")


class VOSFrames(Dataset):
    """Per-frame items of a video-level VOS dataset: frames 0..T-2 of every video, each with its forward flow.

    Item ``k`` is frame ``t = k % (T-1)`` of video ``k // (T-1)``: ``{"frame": (3, H, W), "flow": (2, H, W),
    "mask": (1, H, W), "has_mask": True, "index": k, "video_index": int, "t": int}`` (the keys of
    :class:`~lit_stbias.data.davis.DavisLike` items). The last frame is left out because it has
    no forward flow. A few rendered videos are cached, so reading a video's frames in order renders it once.
    """

    kind = "vos-frames"

    def __init__(self, videos: Dataset, cache_size: int = 4) -> None:
        self.videos, self.cache_size = videos, cache_size
        self.per_video = int(videos.num_frames) - 1
        self._cache: OrderedDict[int, dict] = OrderedDict()

    def __len__(self) -> int:
        return len(self.videos) * self.per_video

    @property
    def num_videos(self) -> int:
        return len(self.videos)

    def frame_indices(self, video: int) -> list[int]:
        """The item indices of one video's frames, in time order."""
        return list(range(video * self.per_video, (video + 1) * self.per_video))

    def _video(self, index: int) -> dict:
        if index not in self._cache:
            self._cache[index] = self.videos[index]
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(index)
        return self._cache[index]

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames.")
        video_index, t = divmod(index, self.per_video)
        video = self._video(video_index)
        return {
            "frame": video["frames"][:, t].clone(),
            "flow": video["flow"][:, t].clone(),
            "mask": video["masks"][t][None].clone(),
            "has_mask": True,
            "index": index,
            "video_index": video_index,
            "t": t,
        }

    def frames(self) -> "VOSFrames":
        return self
