"""Where a tap's channels are in its output, and which channels a caller means: the rules that silencing and
StaticDropout share.

A tap's output is a tensor, or a list/tuple from which the tap's ``index`` picks one tensor (a SlowFast
pathway, an MViT block's tokens). Channels are the units the bias metric scores: dimension 1 of (B, C),
(B, C, H, W) and (B, C, T, H, W) outputs, the last dimension of (B, N, C) tokens, the same axes that
:func:`lit_stbias.probe.pool` keeps.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence, Union

import torch
from torch import Tensor

from lit_stbias.probe import Tap

#: channels as indices (``[3, 7]``, an integer tensor) or as a bool mask over every channel of the tap
Channels = Union[Sequence[int], Sequence[bool], Tensor]


def channel_dim(output: Tensor) -> int:
    """The channel axis of a tap's tensor: 1, or 2 for (B, N, C) tokens."""
    if output.ndim == 3:
        return 2
    if output.ndim in (2, 4, 5):
        return 1
    raise ValueError(
        f"cannot find the channels of an output of shape {tuple(output.shape)}; expected (B, C), (B, N, C), "
        "(B, C, H, W) or (B, C, T, H, W)."
    )


def num_channels(output: Tensor) -> int:
    return output.shape[channel_dim(output)]


def per_channel(values: Tensor, like: Tensor) -> Tensor:
    """Reshape (C,) or per-sample (B, C) values so they broadcast over ``like``'s positions."""
    dim = channel_dim(like)
    shape = [1] * like.ndim
    shape[dim] = like.shape[dim]
    if values.ndim == 2:  # (B, C): one row per sample
        shape[0] = like.shape[0]
    return values.to(device=like.device, dtype=like.dtype if values.is_floating_point() else values.dtype).view(shape)


def edit_tap_output(output: Any, name: str, tap: Tap, edit: Callable[[Tensor], Tensor]) -> Any:
    """The module output with the tap's tensor replaced by ``edit(tensor)``; list/tuple outputs keep their type
    and every other element."""
    if isinstance(output, (list, tuple)):
        if tap.index is None:
            raise ValueError(
                f"tap {name!r} ({tap.module}) outputs a {type(output).__name__} of {len(output)} elements; "
                "address one of them with a Tap(module, index=k)."
            )
        items = list(output)
        items[tap.index] = edit(items[tap.index])
        return type(output)(items) if isinstance(output, list) else tuple(items)
    if tap.index is not None:
        raise ValueError(f"tap {name!r} has index={tap.index} but {tap.module} outputs a single tensor.")
    if not isinstance(output, Tensor):
        raise ValueError(f"tap {name!r} ({tap.module}) outputs a {type(output).__name__}, not a tensor.")
    return edit(output)


def tap_tensor(output: Any, name: str, tap: Tap) -> Tensor:
    """The tensor a tap reads from its module's output."""
    found: list[Tensor] = []

    def keep(x: Tensor) -> Tensor:
        found.append(x)
        return x

    edit_tap_output(output, name, tap, keep)
    return found[0]


def parse_channels(channels: Channels, name: str) -> Tensor:
    """Channels as given, checked for form: a 1-D bool mask, or 1-D int64 indices (sorted, unique, >= 0).

    The tap's channel count is checked later (:func:`channel_mask`), when it is known.
    """
    if isinstance(channels, Tensor):
        values = channels.detach().cpu()
    else:
        items = list(channels)
        if not items:
            return torch.zeros(0, dtype=torch.int64)
        if all(isinstance(c, bool) for c in items):
            values = torch.tensor(items, dtype=torch.bool)
        elif any(isinstance(c, bool) for c in items):
            raise ValueError(f"channels of tap {name!r} mix bools and integers; give indices or a bool mask.")
        else:
            try:
                values = torch.as_tensor(items)
            except (TypeError, ValueError) as error:
                raise ValueError(f"channels of tap {name!r} must be integer indices or a bool mask: {error}") from None
    if values.ndim != 1:
        raise ValueError(f"channels of tap {name!r} must be 1-D (indices or a mask), got shape {tuple(values.shape)}.")
    if values.dtype == torch.bool:
        return values
    if values.is_floating_point() or values.is_complex():
        raise ValueError(f"channels of tap {name!r} must be integer indices or a bool mask, got {values.dtype}.")
    values = values.to(torch.int64)
    if values.numel() and int(values.min()) < 0:
        raise ValueError(f"channel indices of tap {name!r} must be >= 0, got {int(values.min())}.")
    return torch.unique(values)


def channel_mask(channels: Tensor, num_units: int, name: str, allow_all: bool = False) -> Tensor:
    """A bool mask over the tap's ``num_units`` channels from :func:`parse_channels`' output; out-of-range
    indices, a mask of another length and (unless ``allow_all``) every channel at once are refused."""
    if channels.dtype == torch.bool:
        if channels.numel() != num_units:
            raise ValueError(
                f"the channel mask of tap {name!r} has {channels.numel()} entries but the tap has {num_units} "
                "channels; was it made for another layer or model?"
            )
        mask = channels.clone()
    else:
        if channels.numel() and int(channels.max()) >= num_units:
            raise ValueError(
                f"channel index {int(channels.max())} is out of range for tap {name!r}, which has {num_units} "
                f"channels (0..{num_units - 1})."
            )
        mask = torch.zeros(num_units, dtype=torch.bool)
        mask[channels] = True
    if not allow_all and num_units and bool(mask.all()):
        raise ValueError(
            f"this would silence every one of the {num_units} units of tap {name!r}, leaving the layer no "
            "signal; an ablation must keep at least one unit."
        )
    return mask
