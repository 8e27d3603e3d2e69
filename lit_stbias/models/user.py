"""A user's own network in the probe: ``import_model("package.module:factory", num_frames=..., size=...)``.

The factory is imported and called like a console-script entry point; the module it returns gets what zoo
models carry, an :class:`~lit_stbias.models.InputSpec` and the input normalisation it was trained with (so it
takes [0, 1] clips like every model here), and no declared taps: layers are named by their dotted module
names (``model.named_modules()``), e.g. ``layers=["layer3", "layer4.1.conv2"]``.
"""
from __future__ import annotations

import importlib
import math
import re
from typing import Any, Sequence, Union

from torch import nn

from lit_stbias.models.spec import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    KINETICS_MEAN,
    KINETICS_STD,
    InputNormalization,
    InputSpec,
    declare,
)

NORMALIZATIONS = {
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "kinetics": (KINETICS_MEAN, KINETICS_STD),
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
}
Normalization = Union[str, tuple[Sequence[float], Sequence[float]]]
_NAME = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_TARGET = re.compile(rf"^({_NAME}):({_NAME})$")


def normalization_stats(normalization: Normalization) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) of a named normalisation or of an explicit ``(mean, std)`` pair.

    >>> normalization_stats("kinetics")
    ((0.45, 0.45, 0.45), (0.225, 0.225, 0.225))
    >>> normalization_stats(([0.5], [0.25]))
    ((0.5,), (0.25,))
    """
    if isinstance(normalization, str):
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {normalization!r}: use one of {', '.join(NORMALIZATIONS)} "
                             "or a (mean, std) pair of per-channel values.")
        mean, std = NORMALIZATIONS[normalization]
        return tuple(mean), tuple(std)
    try:
        mean, std = (tuple(float(v) for v in values) for values in normalization)
    except (TypeError, ValueError):
        raise ValueError(f"normalization must be 'none', 'kinetics', 'imagenet' or a (mean, std) pair of "
                         f"per-channel numbers, got {normalization!r}.") from None
    if not mean or len(mean) != len(std):
        raise ValueError(f"normalization mean and std need one value per input channel each, got {len(mean)} "
                         f"and {len(std)}.")
    if not all(math.isfinite(v) for v in mean + std) or min(std) <= 0:
        raise ValueError(f"normalization needs finite means and positive stds, got mean={mean}, std={std}.")
    return mean, std


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return value


def _factory(target: str):
    """The callable ``target`` ("package.module:attribute.path") names."""
    match = _TARGET.match(target) if isinstance(target, str) else None
    if match is None:
        raise ValueError(f"model target {target!r} is not of the form 'package.module:factory' (a Python module, "
                         "a colon, a callable in it that returns the nn.Module).")
    module_name, attribute = match.groups()
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # missing module or a failing import inside it
        raise ValueError(f"cannot import {module_name!r} for model {target!r} ({type(err).__name__}: {err}); is its "
                         "folder on PYTHONPATH, or its package installed?") from err
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            offered = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
            raise ValueError(f"{module_name!r} has no attribute {attribute!r} for model {target!r}. "
                             f"Callables in it: {', '.join(offered[:12]) or 'none'}.")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"model target {target!r} is a {type(obj).__name__}, not a callable that builds the model.")
    return obj


def import_model(
    target: str,
    *,
    num_frames: int,
    size: int,
    normalization: Normalization = "none",
    **factory_kwargs: Any,
) -> nn.Module:
    """Import ``factory`` from ``package.module``, call it with ``factory_kwargs`` and make its module
    probe-ready.

    Args:
        target: ``"package.module:factory"`` (``factory`` may be dotted, e.g. ``"pkg.mod:Net.small"``).
        num_frames, size: the clip the model takes, (B, 3, num_frames, size, size) (:class:`InputSpec`).
        normalization: what the model expects of its inputs: ``"none"`` (it takes [0, 1] frames as they are),
            ``"kinetics"`` (mean 0.45, std 0.225), ``"imagenet"``, or a per-channel ``(mean, std)`` pair.
            The model applies it itself to the [0, 1] clips every source here produces.
        factory_kwargs: keyword arguments for the factory.

    Returns:
        the module, in eval mode as returned otherwise, with ``input_spec`` and empty ``taps``: name its
        layers by dotted module names.

    Raises:
        ValueError: one line naming the problem: a malformed target, a module that does not import, a missing
            or non-callable attribute, a factory that fails or returns no ``nn.Module``, a bad normalisation.

    >>> model = import_model("torch.nn:Conv3d", num_frames=4, size=8, in_channels=3, out_channels=2, kernel_size=1)
    >>> model.input_spec.num_frames, model.taps
    (4, {})
    """
    num_frames, size = _positive_int("num_frames", num_frames), _positive_int("size", size)
    mean, std = normalization_stats(normalization)
    factory = _factory(target)
    try:
        model = factory(**factory_kwargs)
    except Exception as err:
        raise ValueError(f"model factory {target!r} failed with {factory_kwargs or 'no arguments'}: "
                         f"{type(err).__name__}: {err}") from err
    if not isinstance(model, nn.Module):
        raise ValueError(f"model factory {target!r} returned a {type(model).__name__}, not a torch.nn.Module.")
    if any(isinstance(hook, InputNormalization) for hook in model._forward_pre_hooks.values()):
        raise ValueError(f"{target!r} returned a model that already normalises its inputs (a lit_stbias zoo "
                         "model?); give its zoo name instead.")
    return declare(model, {}, InputSpec(num_frames, size, mean=mean, std=std))
