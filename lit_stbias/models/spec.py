"""What a zoo model takes as input, declared on the model so data, pairs and probe code need no model names."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor, nn

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def pack_pathways(video: Tensor, alpha: int) -> list[Tensor]:
    """SlowFast input from one clip: ``[slow, fast]`` with fast = the clip and slow = every ``alpha``-th frame.

    ``video`` is (C, T, H, W) or (B, C, T, H, W); T should be a multiple of ``alpha`` so the lateral
    connections (temporal stride ``alpha``) line the pathways up frame for frame.

    >>> slow, fast = pack_pathways(torch.zeros(2, 3, 32, 8, 8), alpha=4)
    >>> tuple(slow.shape), tuple(fast.shape)
    ((2, 3, 8, 8, 8), (2, 3, 32, 8, 8))
    """
    if alpha < 1:
        raise ValueError(f"alpha must be >= 1, got {alpha}.")
    if video.ndim not in (4, 5):
        raise ValueError(f"expected a (C, T, H, W) or (B, C, T, H, W) video, got shape {tuple(video.shape)}.")
    if video.shape[-3] % alpha:
        raise ValueError(f"clip length {video.shape[-3]} is not a multiple of alpha={alpha}.")
    return [video[..., ::alpha, :, :], video]


@dataclass(frozen=True)
class InputSpec:
    """The input one model call takes.

    Attributes:
        num_frames: frames per clip (for SlowFast: the fast pathway's, i.e. the whole clip); for VOS the frames
            one call takes: 1, or 2 for RTNet (an anchor frame and a partner frame).
        size: side of the square crop in pixels. Convolutional models accept other sizes too; transformers
            (``mvit``) are built for this one.
        alpha: SlowFast only: the slow pathway sees every ``alpha``-th frame (see :func:`pack_pathways`).
        two_stream: VOS only: the model is called as ``model(rgb, flow)``, each (B, 3, H, W); with
            ``num_frames`` > 1 or ``backward_flow``, as ``model(frames, flows)``: (B, num_frames, 3, H, W) and
            (B, num_frames, 3 or 6, H, W).
        backward_flow: VOS only: each frame comes with its forward then its backward flow image, stacked on
            the channels (6), as RTNet takes them.
        mean, std: per-channel normalisation the published weights expect; the model applies it to its
            [0, 1] inputs itself (:class:`InputNormalization`). Mean 0 and std 1 mean none.
        sampling_rate: the frame stride of the published configuration's clips (``num_frames`` frames taken
            every ``sampling_rate``-th frame: slow_r50 "8x8" -> 8, x3d_m "16x5" -> 5, SlowFast's 32-frame fast
            clip -> 2), so a clip sampler can cut the window the weights were trained on. ``None``: not
            published (tiny presets, VOS, a user's model); the sampler chooses.
    """

    num_frames: int
    size: int
    alpha: int | None = None
    two_stream: bool = False
    backward_flow: bool = False
    mean: Sequence[float] = KINETICS_MEAN
    std: Sequence[float] = KINETICS_STD
    sampling_rate: int | None = None

    @property
    def normalizes(self) -> bool:
        """Whether the model changes its [0, 1] inputs at all (``False`` for mean 0 and std 1)."""
        return any(m != 0 for m in self.mean) or any(s != 1 for s in self.std)

    def pack(self, video: Tensor):
        """Turn a (B, C, T, H, W) clip into the model's input: the clip itself, or ``[slow, fast]`` for SlowFast."""
        return pack_pathways(video, self.alpha) if self.alpha else video

    def example(self, batch_size: int = 2, generator: torch.Generator | None = None):
        """A random input of the right shape and container: a clip tensor, ``[slow, fast]``, ``(rgb, flow)``,
        or ``(frames, flows)``.

        Tuples are what :func:`lit_stbias.probe.run_model` unpacks into positional arguments.
        """
        if self.two_stream:
            side = (self.size, self.size)
            if self.num_frames == 1 and not self.backward_flow:
                rgb = flow = (batch_size, 3, *side)
            else:
                rgb = (batch_size, self.num_frames, 3, *side)
                flow = (batch_size, self.num_frames, 6 if self.backward_flow else 3, *side)
            return (torch.rand(rgb, generator=generator), torch.rand(flow, generator=generator))
        clip = torch.rand(batch_size, 3, self.num_frames, self.size, self.size, generator=generator)
        return self.pack(clip)


class InputNormalization:
    """Forward pre-hook: (x - mean) / std on every (B, 3, ...) tensor the model is called with.

    Zoo models take [0, 1] inputs, as every source, view and style here makes them, and normalise them
    themselves, so training, probing and published weights agree without any caller knowing the statistics.
    A hook rather than a wrapper module keeps state-dict keys and tap names those of the original network.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)

    def _apply(self, x):
        if isinstance(x, Tensor):
            shape = (1, self.mean.numel()) + (1,) * (x.ndim - 2)
            return (x - self.mean.view(shape).to(x)) / self.std.view(shape).to(x)
        if isinstance(x, (list, tuple)):
            return type(x)(self._apply(v) for v in x)
        return x

    def __call__(self, _module: nn.Module, args: tuple) -> tuple:
        return self._apply(args)


class ClipInput:
    """Turn a clip (C, T, H, W) or (B, C, T, H, W) into the model's input: every ``stride``-th frame, then the
    model's own packing (SlowFast pathways). A plain picklable object, so pair datasets can use it in workers.

    ``stride`` is how clips of one duration become inputs of different lengths: FastOnly (stride 1) and
    SlowOnly (stride ``alpha``, e.g. 4) see the same motion, the fast one with ``alpha`` times more frames.
    """

    def __init__(self, spec: InputSpec, stride: int = 1) -> None:
        if stride < 1:
            raise ValueError(f"temporal stride must be >= 1, got {stride}.")
        self.spec, self.stride = spec, stride

    def __call__(self, video: Tensor) -> Any:
        if self.stride > 1:
            video = video[..., :: self.stride, :, :]
        return self.spec.pack(video)


def declare(model: nn.Module, taps: dict, input_spec: InputSpec) -> nn.Module:
    """Attach the probe's taps (name -> :class:`~lit_stbias.probe.Tap`) and the input description to a model,
    and make it normalise its [0, 1] inputs with the spec's mean and std (no hook when they are 0 and 1)."""
    model.taps = taps
    model.input_spec = input_spec
    if input_spec.normalizes:
        model.register_forward_pre_hook(InputNormalization(input_spec.mean, input_spec.std))
    return model
