"""Silence chosen channels of a tap during forward passes: the causal check of what the unit classes mean.

``silence`` puts a forward hook on the tap's module that replaces the chosen channels of its output, by zero
or by the channel's mean over reference inputs (mean ablation: the unit keeps its average contribution and
loses only what varies with the input). Taps are addressed as everywhere in this package (declared names such
as ``stage5`` or ``slow.stage4``, dotted module names, ``Tap(module, index)`` for one element of a list
output), so it works on zoo and user models alike.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, Sequence, Union

import torch
from torch import Tensor, nn

from lit_stbias.intervene.channels import (
    Channels,
    channel_dim,
    channel_mask,
    edit_tap_output,
    num_channels,
    parse_channels,
    per_channel,
    tap_tensor,
)
from lit_stbias.probe import Tap, resolve_taps, run_model
from lit_stbias.probe.probe import to_device

MODES = ("zero", "mean")
#: a tap as a name (declared or dotted module name) or a Tap (module, index)
TapKey = Union[str, Tap]


def tap_label(tap: TapKey) -> str:
    """The name a tap goes by in results: its own name, or ``module[index]`` for a Tap."""
    if isinstance(tap, Tap):
        return tap.module if tap.index is None else f"{tap.module}[{tap.index}]"
    if isinstance(tap, str):
        return tap
    raise ValueError(f"a tap is a name or a lit_stbias.probe.Tap, got {type(tap).__name__}.")


def _resolve(model: nn.Module, taps: Iterable[TapKey]) -> dict[str, tuple[nn.Module, Tap]]:
    return resolve_taps(model, {tap_label(t): t for t in taps})


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def channel_means(model: nn.Module, taps: Sequence[TapKey], batches: Iterable[Any]) -> dict[str, Tensor]:
    """Mean of every channel of each tap over reference inputs, for ``silence(..., mode="mean")``.

    ``batches`` is an iterable of model inputs (what the model is called with: a clip tensor, a ``[slow,
    fast]`` list, an ``(rgb, flow)`` tuple), e.g. ``[clip]`` or a DataLoader of inputs. The mean runs over the
    samples and every position of the output (time, space, or every token); the model runs intact, in eval
    mode, and gets its mode back. Returns tap label -> (C,) float32 means.
    """
    if isinstance(batches, Tensor):
        raise ValueError(
            "reference inputs must be an iterable of batches (e.g. [clip] or a DataLoader), not one tensor; "
            "per-channel means are a 1-D tensor."
        )
    resolved = _resolve(model, taps)
    sums: dict[str, Tensor] = {}
    counts: dict[str, int] = {}

    def make_hook(name: str, tap: Tap):
        def hook(_module: nn.Module, _inputs, output) -> None:
            x = tap_tensor(output, name, tap).detach()
            flat = x.movedim(channel_dim(x), -1).reshape(-1, num_channels(x)).double()
            sums[name] = sums[name] + flat.sum(0) if name in sums else flat.sum(0)
            counts[name] = counts.get(name, 0) + flat.shape[0]

        return hook

    handles = [module.register_forward_hook(make_hook(n, t)) for n, (module, t) in resolved.items()]
    was_training = model.training
    model.eval()
    device = _model_device(model)
    num_batches = 0
    try:
        for batch in batches:
            run_model(model, to_device(batch, device))
            num_batches += 1
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not num_batches:
        raise ValueError("the reference inputs hold no batches; give at least one batch to average over.")
    missing = [n for n in resolved if n not in sums]
    if missing:
        raise ValueError(f"taps {missing} did not run on the reference inputs; are they on the model's path?")
    return {name: (sums[name] / counts[name]).float() for name in resolved}


def _check_means(means: Any, name: str) -> Tensor:
    if not isinstance(means, Tensor) or means.ndim != 1:
        shape = tuple(means.shape) if isinstance(means, Tensor) else type(means).__name__
        raise ValueError(f"the reference means of tap {name!r} must be a 1-D tensor (one per channel), got {shape}.")
    if not bool(torch.isfinite(means).all()):
        raise ValueError(f"the reference means of tap {name!r} hold NaN or infinite values.")
    return means.detach().float().cpu()


def _reference_means(model: nn.Module, keys: list[TapKey], reference: Any) -> dict[str, Tensor]:
    labels = [tap_label(k) for k in keys]
    if reference is None:
        raise ValueError(
            'mode="mean" needs reference=: per-channel means (a 1-D tensor, or a mapping tap -> tensor) or '
            "reference inputs to average over (a list of batches, or a DataLoader)."
        )
    if isinstance(reference, Tensor) and reference.ndim == 1:
        if len(labels) > 1:
            raise ValueError("one tensor of means for several taps is ambiguous; give a mapping tap -> means.")
        return {labels[0]: _check_means(reference, labels[0])}
    if isinstance(reference, Mapping):
        missing = [label for label in labels if label not in reference]
        if missing:
            raise ValueError(f"the reference means have no entry for taps {missing}; they hold {list(reference)}.")
        return {label: _check_means(reference[label], label) for label in labels}
    if isinstance(reference, Tensor):
        raise ValueError(
            f"reference is a tensor of shape {tuple(reference.shape)}: give per-channel means as a 1-D tensor, "
            "or reference inputs as a list of batches (e.g. [clip])."
        )
    return channel_means(model, keys, reference)


@contextmanager
def silence(
    model: nn.Module,
    tap: TapKey | Mapping[TapKey, Channels],
    channels: Channels | None = None,
    *,
    mode: str = "zero",
    reference: Any = None,
) -> Iterator[dict[str, Tensor]]:
    """Silence chosen channels of one or several taps during the forward passes inside the block.

    Args:
        model: any ``nn.Module``; zoo models declare their taps.
        tap: a tap (declared name, dotted module name, or :class:`~lit_stbias.probe.Tap`), or a mapping
            tap -> channels to silence several taps at once (then ``channels`` stays None).
        channels: indices (``[3, 7]``) or a bool mask over every channel of the tap. An empty set silences
            nothing (the baseline of an ablation of an empty class); every channel at once is refused.
        mode: ``"zero"`` sets the channels to 0; ``"mean"`` to their mean over ``reference``.
        reference: for ``"mean"``: per-channel means (a 1-D tensor, or a mapping tap -> tensor, e.g. from
            :func:`channel_means`) or reference inputs (a list of batches or a DataLoader), averaged once on
            entry over the intact model.

    Yields a dict tap -> bool mask of the silenced channels (filled when the tap's channel count is first
    known). Hooks are removed on exit, on exceptions too. Channel ranges are checked against the tap's
    output on the first forward pass (or on entry, when a mask or the means give the channel count). A tap
    that never ran while the model did raises on exit: nothing was silenced.

    >>> from lit_stbias.models import build
    >>> model = build("slow", "tiny", num_classes=3).eval()
    >>> clip = torch.rand(1, 3, 8, 32, 32)
    >>> with silence(model, "stage5", [0, 5]) as silenced:
    ...     logits = model(clip)
    >>> int(silenced["stage5"].sum()), tuple(logits.shape)
    (2, (1, 3))
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    if isinstance(tap, Mapping):
        if channels is not None:
            raise ValueError("give channels either in the mapping tap -> channels or as channels=, not both.")
        requested = dict(tap)
    else:
        if channels is None:
            raise ValueError(f"no channels given for tap {tap_label(tap)!r}: pass indices or a bool mask.")
        requested = {tap: channels}
    if not requested:
        raise ValueError("no taps given: name at least one tap to silence.")
    if mode == "zero" and reference is not None:
        raise ValueError('reference is only used with mode="mean".')
    keys = list(requested)
    resolved = _resolve(model, keys)  # unknown taps fail here, before anything runs
    parsed = {tap_label(k): parse_channels(c, tap_label(k)) for k, c in requested.items()}
    fills = _reference_means(model, keys, reference) if mode == "mean" else {}
    masks: dict[str, Tensor] = {}
    for name, chosen in parsed.items():  # channel counts known on entry: check now
        known = chosen.numel() if chosen.dtype == torch.bool else (fills[name].numel() if name in fills else None)
        if known is not None:
            masks[name] = channel_mask(chosen, known, name)

    fired: set[str] = set()
    calls = [0]

    def make_hook(name: str, tap_spec: Tap):
        def edit(x: Tensor) -> Tensor:
            units = num_channels(x)
            mask = masks.get(name)
            if mask is None or mask.numel() != units:
                mask = masks[name] = channel_mask(parsed[name], units, name)
            fill = fills.get(name)
            if fill is not None and fill.numel() != units:
                raise ValueError(f"the reference means of tap {name!r} have {fill.numel()} entries but the tap has "
                                 f"{units} channels.")
            if not bool(mask.any()):
                return x
            value = per_channel(fill, x) if fill is not None else x.new_zeros(())
            return torch.where(per_channel(mask, x), value, x)

        def hook(_module: nn.Module, _inputs, output):
            fired.add(name)
            return edit_tap_output(output, name, tap_spec, edit)

        return hook

    handles = [module.register_forward_hook(make_hook(n, t)) for n, (module, t) in resolved.items()]
    handles.append(model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1)))
    try:
        yield masks
    finally:
        for handle in handles:
            handle.remove()
    missing = [n for n in resolved if n not in fired]
    if calls[0] and missing:
        raise RuntimeError(f"taps {missing} did not run while the model did, so nothing was silenced there; are "
                           "they on the model's path?")
