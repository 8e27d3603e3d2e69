"""Synthetic action videos: one real-textured object moving over a real scene, labelled by what it is or how it
moves, generated on the fly from (seed, index) alone.

Three tasks separate static from dynamic information by construction:

* ``appearance`` — the label is the object (shape and texture, or a photographed face); its motion is random,
  so one frame suffices.
* ``motion`` — the label is the motion (:data:`MOTIONS`); object and scene are random. Every motion is drawn
  symmetrically about the clip's middle frame, so playing a clip of class ``c`` backwards gives exactly a clip
  of class ``c ^ 1`` (its pair: right/left, up/down, towards/away, cw/ccw) with the same probability. Shuffled
  frames therefore cannot tell a class from its pair; they still show the *axis* (a horizontal path, a
  growing or turning object), so an order-blind model is capped at 50% accuracy (chance 12.5%) while an
  order-aware one can reach 100%.
* ``mixed`` — motion labels, but the scene matches the label in ``scene_bias`` of the clips (80% by default),
  so a model may cheat with static cues.
* ``mixed-conflicting`` — the debiased held-out split of ``mixed``: every clip shows the scene tied to
  *another* class, so the scene always points to a wrong label. A model that reads the scene scores 0%, one
  that reads the motion 100%: the accuracy is the share of scene-motion conflicts the model resolves by
  motion. Item ``i`` is item ``i`` of ``mixed`` with the same seed (label, object, motion and trajectory),
  only the scene differs, so a model's accuracies on the two are a paired comparison. ``scene_bias`` plays
  no part.
"""
from __future__ import annotations

import math

import numpy as np
from torch.utils.data import Dataset

from lit_stbias.data import imagery
from lit_stbias.data.render import Trajectory, render_on_scene, to_tensor

#: Motion classes; ``c ^ 1`` is the time reversal of class ``c``.
MOTIONS = ("right", "left", "up", "down", "towards", "away", "rotate_cw", "rotate_ccw")
TASKS = ("appearance", "motion", "mixed", "mixed-conflicting")
#: tasks whose scene depends on the label (see :meth:`SyntheticVideos.describe`)
SCENE_TASKS = ("mixed", "mixed-conflicting")
SPRITE_FRACTION = 0.4  # sprite side relative to the frame


def time_reversed_label(label: int) -> int:
    """The motion class a clip of class ``label`` becomes when played backwards."""
    return label ^ 1


def tied_scene(label: int) -> int:
    """The scene (index into ``imagery.SCENES``) tied to class ``label`` in the ``mixed`` tasks."""
    return label % len(imagery.SCENES)


def block_label(seed: int, index: int, num_classes: int) -> int:
    """Labels that are exactly balanced in every block of ``num_classes`` consecutive indices, in random order.

    Depends on (seed, index) only, so any subset, order or worker sees the same label for the same item.
    """
    block, slot = divmod(index, num_classes)
    return int(np.random.default_rng([seed, block, 1]).permutation(num_classes)[slot])


def sample_motion(
    rng: np.random.Generator, motion: int, num_frames: int, size: int, pan: bool
) -> Trajectory:
    """A trajectory of motion class ``motion``, symmetric in time about the middle frame.

    Every quantity is ``middle value + rate * (t - middle)`` with the middle value drawn from a distribution
    that ignores the direction, so reversing time only flips the rate's sign: that is what makes a clip
    and its reversal equally likely under the paired label.
    """
    t = np.arange(num_frames) - (num_frames - 1) / 2.0
    span = max(num_frames - 1, 1)
    rate = np.zeros(2)  # object displacement per frame (x, y)
    log_scale, spin = 0.0, 0.0
    axis, sign = divmod(motion, 2)
    direction = 1.0 if sign == 0 else -1.0
    if axis in (0, 1):  # right/left (x), down/up (y): "up" is y decreasing, so label 2 moves with -y
        length = rng.uniform(0.3, 0.45) * size
        rate[axis] = length / span * (direction if axis == 0 else -direction)
    elif axis == 2:  # towards (grow) / away (shrink)
        log_scale = math.log(rng.uniform(1.8, 2.6)) / span * direction
    else:  # clockwise is growing angle in image coordinates
        spin = math.radians(rng.uniform(60, 120)) / span * direction
    pan_rate = np.zeros(2)
    if pan:
        heading = rng.uniform(0, 2 * math.pi)
        pan_rate = rng.uniform(0.1, 0.25) * size / span * np.array([math.cos(heading), math.sin(heading)])
    margin = 0.15 * size if axis in (0, 1) else 0.25 * size
    travel = np.abs(rate + pan_rate) * span
    low, high = margin + travel / 2, size - margin - travel / 2
    middle = rng.uniform(np.minimum(low, high), np.maximum(low, high))
    centre = middle + np.outer(t, rate + pan_rate)
    scale = rng.uniform(0.8, 1.1) * np.exp(log_scale * t)
    angle = math.radians(rng.uniform(-25, 25)) + spin * t
    return Trajectory(centre, scale, angle, np.outer(t, pan_rate))


class SyntheticVideos(Dataset):
    """Map-style dataset of synthetic action clips; item ``i`` is a pure function of (seed, i).

    Items are ``{"video": (3, T, H, W) float in [0, 1], "label": int, "index": i}``.

    Args:
        task: ``"appearance"``, ``"motion"``, ``"mixed"`` or ``"mixed-conflicting"`` (see the module docstring).
        num_videos: dataset length.
        num_frames, size: T and H = W.
        num_classes: appearance: how many object kinds (2 to ``len(imagery.object_catalogue())``, default 10);
            the motion tasks: an even number up to 8 (default 8) so that time reversal keeps labels in the set.
        seed: changes every clip; two datasets with the same arguments are identical.
        camera_pan: the scene (and the object with it) drifts in a random direction; motion labels stay
            relative to the scene.
        scene_bias: ``mixed`` only: the share of clips whose scene is the one tied to their label (the others
            get a scene drawn uniformly, which may also be the tied one). ``mixed-conflicting`` ignores it.

    Example:
        >>> ds = SyntheticVideos("motion", num_videos=16, num_frames=8, size=32)
        >>> item = ds[3]
        >>> item["video"].shape, ds.class_names[item["label"]] in MOTIONS
        (torch.Size([3, 8, 32, 32]), True)
    """

    kind = "action"

    def __init__(
        self,
        task: str,
        num_videos: int = 1000,
        num_frames: int = 16,
        size: int = 64,
        num_classes: int | None = None,
        seed: int = 0,
        camera_pan: bool = False,
        scene_bias: float = 0.8,
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {TASKS}.")
        catalogue = imagery.object_catalogue()
        if task == "appearance":
            num_classes = 10 if num_classes is None else num_classes
            if not 2 <= num_classes <= len(catalogue):
                raise ValueError(f"appearance needs 2..{len(catalogue)} classes, got {num_classes}.")
            self.class_names = tuple(kind.name for kind in catalogue[:num_classes])
        else:
            num_classes = len(MOTIONS) if num_classes is None else num_classes
            if num_classes not in (2, 4, 6, 8):
                raise ValueError(f"{task} needs an even number of classes up to 8 (reversal pairs), got {num_classes}.")
            self.class_names = MOTIONS[:num_classes]
        if num_frames < 2 or size < 16 or num_videos < 1:
            raise ValueError("need num_frames >= 2, size >= 16 and num_videos >= 1.")
        if not 0.0 <= scene_bias <= 1.0:
            raise ValueError(f"scene_bias must be in [0, 1], got {scene_bias}.")
        self.task, self.num_videos, self.num_frames, self.size = task, num_videos, num_frames, size
        self.num_classes, self.seed, self.camera_pan, self.scene_bias = num_classes, seed, camera_pan, scene_bias
        self.sprite_size = max(8, round(SPRITE_FRACTION * size))

    def __len__(self) -> int:
        return self.num_videos

    def describe(self, index: int) -> dict:
        """The ground truth behind item ``index``: ``label``, ``object`` (an ObjectKind), ``motion`` (a
        :data:`MOTIONS` name), ``scene`` / ``scene_index`` and ``trajectory`` (per-frame pose)."""
        return self._draw(index)[0]

    def _draw(self, index: int) -> tuple[dict, np.random.Generator]:
        """Everything random about item ``index``, and the generator to continue drawing from."""
        if not 0 <= index < self.num_videos:
            raise IndexError(f"index {index} out of range for {self.num_videos} videos.")
        rng = np.random.default_rng([self.seed, index, 0])
        label = block_label(self.seed, index, self.num_classes)
        catalogue = imagery.object_catalogue()
        n_scenes = len(imagery.SCENES)
        if self.task == "appearance":
            obj, motion = catalogue[label], int(rng.integers(len(MOTIONS)))
        else:
            obj, motion = catalogue[int(rng.integers(len(catalogue)))], label
        scene = int(rng.integers(n_scenes))
        if self.task in SCENE_TASKS and rng.random() < self.scene_bias:  # drawn for both: the same trajectory
            scene = tied_scene(label)
        if self.task == "mixed-conflicting":  # the scene of another class, from a generator of its own
            other = int(np.random.default_rng([self.seed, index, 2]).integers(self.num_classes - 1))
            scene = tied_scene((label + 1 + other) % self.num_classes)
        trajectory = sample_motion(rng, motion, self.num_frames, self.size, self.camera_pan)
        info = {"label": label, "object": obj, "motion": MOTIONS[motion], "scene": imagery.SCENES[scene],
                "scene_index": scene, "trajectory": trajectory}
        return info, rng

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray, dict]:
        """Frames (T, H, W, 3), object alpha (T, H, W) and :meth:`describe`'s dict for item ``index``."""
        info, rng = self._draw(index)
        sprite = imagery.make_sprite(info["object"], self.sprite_size, rng)
        frames, alpha = render_on_scene(rng, info["scene_index"], sprite, info["trajectory"], self.size)
        return frames, alpha, info

    def __getitem__(self, index: int) -> dict:
        frames, _, info = self.render(int(index))
        return {"video": to_tensor(frames, 3, 0, 1, 2), "label": info["label"], "index": int(index)}

    def __repr__(self) -> str:
        return (f"SyntheticVideos(task={self.task!r}, num_videos={self.num_videos}, num_frames={self.num_frames}, "
                f"size={self.size}, num_classes={self.num_classes}, seed={self.seed}, camera_pan={self.camera_pan})")
