"""Synthetic video object segmentation: one real-textured object over a real scene, with its masks and the
exact forward and backward optical flow (the generator made the motion, so it knows the flow; no estimator
involved), and per-frame views of VOS videos, for one-frame networks (FusionSeg, MATNet) and for RTNet, which
takes a second frame of the video and each frame's forward and backward flow.

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
from lit_stbias.data.flow import farneback_flow
from lit_stbias.data.render import Trajectory, exact_flow, render_on_scene, to_tensor
from lit_stbias.data.synthetic import SPRITE_FRACTION

#: RTNet's second frame lies ``other`` usable frames away, ``other`` drawn from the integers in
#: [low, high) (the release's ``np.random.randint(-10, 10)``), once per sequence and repetition
PARTNER_OFFSETS = (-10, 10)
_U64 = (1 << 64) - 1


def partner_offset(seed: int, rep: int, video: int) -> int:
    """The release's second-frame offset for one sequence and repetition (-10..9; 0 pairs a frame with itself),
    a pure function of ``(seed, rep, video)``: the same draw as ``StylizedDavis.partner``.

    >>> partner_offset(0, 0, 3) == partner_offset(0, 0, 3)
    True
    """
    rng = np.random.default_rng([int(seed) & _U64, int(rep), int(video)])
    return int(rng.integers(*PARTNER_OFFSETS))


def partner_fields(positions: list[int], k: int, offset: int, t_of) -> dict[str, int]:
    """``{"other", "partner_index", "partner_t"}`` of item ``k`` among its sequence's usable items
    ``positions`` (time order): the item ``offset`` places further along, wrapping around. ``t_of(index)`` gives
    an item's frame number."""
    q = positions[(positions.index(k) + offset) % len(positions)]
    return {"other": offset, "partner_index": q, "partner_t": t_of(q)}


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
    "flow": (2, T-1, H, W) float (u, v) in pixels, the exact forward flow from t to t+1,
    "flow_bw": (2, T-1, H, W), the exact backward flow from t+1 to t, "index": i}``.
    Object pixels (mask at t) move with the object's similarity motion, the rest with the camera pan (zero
    without ``camera_pan``); the backward flow is the same motion played backwards. :meth:`frames` gives
    per-frame items for the pair datasets and training (``frames(backward_flow=True)`` for RTNet).

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
        # played backwards, step s goes from frame T-1-s to T-2-s: reversed, entry t-1 is the flow t -> t-1
        backward = exact_flow(motion.reversed(), masks[::-1])[::-1].copy()  # a copy has positive strides
        return {
            "frames": to_tensor(frames, 3, 0, 1, 2),
            "masks": to_tensor(masks),
            "flow": to_tensor(exact_flow(motion, masks), 1, 0, 2, 3),
            "flow_bw": to_tensor(backward, 1, 0, 2, 3),
            "index": index,
        }

    def frames(self, backward_flow: bool = False) -> "VOSFrames":
        """Per-frame view of this dataset (see :class:`VOSFrames`)."""
        return VOSFrames(self, backward_flow=backward_flow)

    def __repr__(self) -> str:
        return (f"SyntheticVOS(num_videos={self.num_videos}, num_frames={self.num_frames}, size={self.size}, "
                f"center_bias={self.center_bias}, seed={self.seed}, camera_pan={self.camera_pan})")


class VOSFrames(Dataset):
    """Per-frame items of a video-level VOS dataset, each frame with its forward flow.

    Item ``k`` is frame ``t`` of video ``v``: ``{"frame": (3, H, W), "flow": (2, H, W), "mask": (1, H, W),
    "has_mask": True, "index": k, "video_index": v, "t": t}`` (the keys of
    :class:`~lit_stbias.data.davis.DavisLike` items). Frames 0..T-2 of every video: the last has no forward flow.

    ``backward_flow=True`` (RTNet) gives the frames with both flows, 1..T-2, as the release does, each also with
    ``"flow_bw"`` (2, H, W), its backward flow t -> t-1 (the videos must give ``"flow_bw"``, as
    :class:`SyntheticVOS` does), and the second frame the release pairs it with: ``"other"``
    (:func:`partner_offset`, one draw per video from the videos' ``seed``), ``"partner_index"`` (the item of that
    frame in this dataset) and ``"partner_t"``, the keys ``StylizedDavis(backward_flow=True)`` items carry.
    A few rendered videos are cached, so reading a video's frames in order renders it once.
    """

    kind = "vos-frames"

    def __init__(self, videos: Dataset, cache_size: int = 4, backward_flow: bool = False) -> None:
        self.videos, self.cache_size, self.backward_flow = videos, cache_size, bool(backward_flow)
        self.first = 1 if self.backward_flow else 0
        self.per_video = int(videos.num_frames) - 1 - self.first
        if self.per_video < 1:
            raise ValueError(f"videos of {videos.num_frames} frames have no frame with both flows; RTNet's items "
                             "need num_frames >= 3.")
        self.seed = int(getattr(videos, "seed", 0))
        self._cache: OrderedDict[int, dict] = OrderedDict()

    def __len__(self) -> int:
        return len(self.videos) * self.per_video

    @property
    def num_videos(self) -> int:
        return len(self.videos)

    def frame_indices(self, video: int) -> list[int]:
        """The item indices of one video's frames, in time order."""
        return list(range(video * self.per_video, (video + 1) * self.per_video))

    def partner(self, index: int) -> dict[str, int]:
        """RTNet's second frame for item ``index`` (``backward_flow=True``), as the release picks it."""
        video = int(index) // self.per_video
        return partner_fields(self.frame_indices(video), int(index), partner_offset(self.seed, 0, video),
                              lambda q: self.first + q % self.per_video)

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
        video_index, position = divmod(index, self.per_video)
        t = self.first + position
        video = self._video(video_index)
        item = {
            "frame": video["frames"][:, t].clone(),
            "flow": video["flow"][:, t].clone(),
            "mask": video["masks"][t][None].clone(),
            "has_mask": True,
            "index": index,
            "video_index": video_index,
            "t": t,
        }
        if self.backward_flow:
            if "flow_bw" not in video:
                raise ValueError(f"{type(self.videos).__name__} gives no backward flow ('flow_bw'); "
                                 "VOSFrames(backward_flow=True) needs it.")
            item["flow_bw"] = video["flow_bw"][:, t - 1].clone()
            item.update(self.partner(index))
        return item

    def frames(self) -> "VOSFrames":
        return self


class BackwardFlowFrames(Dataset):
    """RTNet's items over a per-frame VOS source that gives forward flow only (a DAVIS-like folder): the frames
    that have a previous frame in their video, each with ``"flow_bw"``, the backward flow t -> t-1 estimated
    with OpenCV's Farneback method (:func:`~lit_stbias.data.flow.farneback_flow`, computed per read, never
    cached), and the release's second frame (``"other"``, ``"partner_index"``, ``"partner_t"``, as
    :class:`VOSFrames` with ``backward_flow=True``).

    ``frames`` must answer ``num_videos`` and ``frame_indices(video)``, listing a video's items for frames
    0, 1, 2, ... in time order, and give ``{"frame", "flow", ...}`` items (``DavisLike`` does). ``seed`` seeds
    the second-frame offsets.
    """

    kind = "vos-frames"
    backward_flow = True

    def __init__(self, frames: Dataset, seed: int = 0) -> None:
        self.frames_source, self.seed = frames, int(seed)
        self.items: list[tuple[int, int, int]] = []  # (source item, its previous frame's item, t)
        self._positions: list[list[int]] = []
        for video in range(frames.num_videos):
            own = frames.frame_indices(video)
            self._positions.append(list(range(len(self.items), len(self.items) + len(own) - 1)))
            self.items += [(own[t], own[t - 1], t) for t in range(1, len(own))]
        if not self.items:
            raise ValueError(f"{frames!r} has no frame with a previous frame; RTNet needs videos of >= 3 frames.")
        self._video = [v for v, positions in enumerate(self._positions) for _ in positions]

    def __len__(self) -> int:
        return len(self.items)

    @property
    def num_videos(self) -> int:
        return len(self._positions)

    def frame_indices(self, video: int) -> list[int]:
        """The item indices of one video's frames, in time order."""
        return list(self._positions[video])

    def partner(self, index: int) -> dict[str, int]:
        """RTNet's second frame for item ``index``, as the release picks it."""
        video = self._video[int(index)]
        return partner_fields(self._positions[video], int(index), partner_offset(self.seed, 0, video),
                              lambda q: self.items[q][2])

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames.")
        k, previous, _ = self.items[index]
        item = dict(self.frames_source[k])
        item["flow_bw"] = farneback_flow(item["frame"], self.frames_source[previous]["frame"])
        item["index"] = index
        return {**item, **self.partner(index)}

    def frames(self) -> "BackwardFlowFrames":
        return self
