"""Named taps: which submodule outputs to measure, how to pool them to (B, C), and hooks that capture them.

A tap is addressed as Captum does: by the module itself or by its dotted name in the model. Models in the
zoo declare their taps as ``model.taps: dict[str, Tap]`` so users can ask for ``"stage4"`` or
``"slow.stage4"``; any other model is tapped by dotted submodule names.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence, Union

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Tap:
    """Where a named tap reads: ``module`` (dotted name), ``index`` (pick one element of a list/tuple output,
    e.g. one pathway of SlowFast), ``skip_tokens`` (leading tokens to leave out of token pooling, e.g. 1 for
    a class token)."""

    module: str
    index: int | None = None
    skip_tokens: int = 0


TapSpec = Union[str, Tap, nn.Module]


def pool(output: Tensor, skip_tokens: int = 0) -> Tensor:
    """Global average pooling to (B, C): (B, C, T, H, W) over T, H, W; (B, C, H, W) over H, W;
    (B, N, C) tokens over tokens (after ``skip_tokens`` leading ones); (B, C) unchanged."""
    if not isinstance(output, Tensor):
        raise TypeError(f"cannot pool a {type(output).__name__}; a tap must output a tensor or a list of tensors.")
    if output.ndim == 5:
        return output.mean(dim=(2, 3, 4))
    if output.ndim == 4:
        return output.mean(dim=(2, 3))
    if output.ndim == 3:
        if output.shape[1] <= skip_tokens:
            raise ValueError(f"token output {tuple(output.shape)} has no tokens left after skipping {skip_tokens}.")
        return output[:, skip_tokens:].mean(dim=1)
    if output.ndim == 2:
        return output
    raise ValueError(
        f"cannot pool an output of shape {tuple(output.shape)}; expected (B, C), (B, N, C), (B, C, H, W) "
        "or (B, C, T, H, W)."
    )


def model_taps(model: nn.Module) -> dict[str, Tap]:
    """The taps a model declares (``model.taps``), or an empty dict."""
    taps = getattr(model, "taps", None)
    return dict(taps) if isinstance(taps, Mapping) else {}


def resolve_taps(
    model: nn.Module, taps: Sequence[str] | Mapping[str, TapSpec] | None = None
) -> dict[str, tuple[nn.Module, Tap]]:
    """Map tap names to (module, Tap). ``None`` means every tap the model declares.

    A name is first looked up in ``model.taps``, then as a dotted submodule name. Unknown names raise a
    ValueError listing what the model offers.
    """
    declared = model_taps(model)
    if taps is None:
        if not declared:
            raise ValueError(
                f"{type(model).__name__} declares no taps (model.taps); name the layers to measure, "
                "e.g. taps=['layer3', 'layer4'] (dotted submodule names)."
            )
        taps = list(declared)
    items = taps.items() if isinstance(taps, Mapping) else ((name, name) for name in taps)
    modules = dict(model.named_modules())
    resolved: dict[str, tuple[nn.Module, Tap]] = {}
    for name, spec in items:
        if isinstance(spec, nn.Module):
            resolved[name] = (spec, Tap(module=name))
            continue
        if isinstance(spec, str):
            spec = declared.get(spec, Tap(module=spec))
        if spec.module not in modules:
            offered = ", ".join(declared) if declared else ", ".join(n for n in list(modules)[1:20] if n)
            raise ValueError(
                f"unknown tap {name!r} for {type(model).__name__}: no declared tap or submodule of that name. "
                f"Available: {offered}."
            )
        resolved[name] = (modules[spec.module], spec)
    if not resolved:
        raise ValueError("no taps given: name at least one layer to measure.")
    return resolved


@contextmanager
def capture(
    model: nn.Module,
    taps: Sequence[str] | Mapping[str, TapSpec] | None = None,
    resolved: Mapping[str, tuple[nn.Module, Tap]] | None = None,
) -> Iterator[dict[str, Tensor]]:
    """Capture pooled (B, C) outputs of the taps during forward passes inside the block.

    Yields a dict that the hooks fill, one entry per tap (list/tuple outputs without ``index`` give
    ``name.0``, ``name.1``, ...). Features are detached. A tap that fires twice in one block, or not at all
    while others did, raises. Hooks are removed on exit. ``resolved`` (from :func:`resolve_taps`) spares
    repeated callers the look-up of the taps on every forward pass.
    """
    if resolved is None:
        resolved = resolve_taps(model, taps)
    features: dict[str, Tensor] = {}
    handles = []

    def make_hook(name: str, tap: Tap):
        def hook(_module: nn.Module, _inputs, output) -> None:
            if name in features or f"{name}.0" in features:
                raise RuntimeError(
                    f"tap {name!r} ({tap.module}) fired twice in one forward pass; tap a module that runs once."
                )
            if isinstance(output, (list, tuple)):
                if tap.index is not None:
                    features[name] = pool(output[tap.index], tap.skip_tokens).detach()
                else:
                    for i, out in enumerate(output):
                        features[f"{name}.{i}"] = pool(out, tap.skip_tokens).detach()
            else:
                if tap.index is not None:
                    raise ValueError(f"tap {name!r} has index={tap.index} but {tap.module} outputs a single tensor.")
                features[name] = pool(output, tap.skip_tokens).detach()

        return hook

    try:
        for name, (module, tap) in resolved.items():
            handles.append(module.register_forward_hook(make_hook(name, tap)))
        yield features
    finally:
        for handle in handles:
            handle.remove()
    missing = [n for n in resolved if n not in features and f"{n}.0" not in features]
    if features and missing:
        raise RuntimeError(f"taps {missing} did not fire during the forward pass; are they on the model's path?")


def run_model(model: nn.Module, view) -> object:
    """Call the model on one view: a tuple is unpacked as positional inputs (e.g. RGB and flow of a
    two-stream model); anything else (a tensor, or a list of pathways for SlowFast) is the single input."""
    return model(*view) if isinstance(view, tuple) else model(view)


@torch.no_grad()
def extract(model: nn.Module, view, taps: Sequence[str] | Mapping[str, TapSpec] | None = None) -> dict[str, Tensor]:
    """One forward pass; the pooled (B, C) feature of every tap."""
    with capture(model, taps) as features:
        run_model(model, view)
    return dict(features)
