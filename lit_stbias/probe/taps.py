"""Named taps: which submodule outputs to measure, how to pool them to (B, C), and hooks that capture them.

A tap is addressed as Captum does: by the module itself or by its dotted name in the model. Models in the
zoo declare their taps as ``model.taps: dict[str, Tap]`` so users can ask for ``"stage4"`` or
``"slow.stage4"``; any other model is tapped by dotted submodule names.

Token outputs (B, N, C) are averaged over all N tokens, the class token included, as the authors' release
does (``x.mean(1)``); ``pool_tokens="patches"`` (a probe-time option of :func:`resolve_taps` and
:func:`capture`) leaves out the leading tokens a tap declares as not patches (``Tap.skip_tokens``).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Iterator, Mapping, Sequence, Union

import torch
from torch import Tensor, nn

POOL_TOKENS = ("all", "patches")


@dataclass(frozen=True)
class Tap:
    """Where a named tap reads and how its output is pooled.

    Attributes:
        module: dotted submodule name.
        index: pick one element of a list/tuple output (e.g. one pathway of SlowFast).
        skip_tokens: the model's declaration of how many leading tokens of a (B, N, C) output are not patches
            (1 for a class token).
        pool_tokens: which tokens the pooling averages, chosen at probe time by :func:`resolve_taps`:
            ``"all"`` (the authors' release, ``x.mean(1)``, class token included) or ``"patches"`` (the
            ``skip_tokens`` leading tokens left out). Declarations leave it at its default.
    """

    module: str
    index: int | None = None
    skip_tokens: int = 0
    pool_tokens: str = "all"

    def __post_init__(self) -> None:
        check_pool_tokens(self.pool_tokens)
        if self.skip_tokens < 0:
            raise ValueError(f"skip_tokens must be >= 0, got {self.skip_tokens}.")

    @property
    def pooled_from(self) -> int:
        """The first token the pooling averages over."""
        return self.skip_tokens if self.pool_tokens == "patches" else 0


def check_pool_tokens(pool_tokens: str) -> str:
    """``pool_tokens`` if it is one of :data:`POOL_TOKENS`; a ValueError naming both otherwise."""
    if pool_tokens not in POOL_TOKENS:
        raise ValueError(
            f"pool_tokens must be 'all' (every token, class token included, as the authors' release) or "
            f"'patches' (leave the class token out), got {pool_tokens!r}."
        )
    return pool_tokens


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
    model: nn.Module, taps: Sequence[str] | Mapping[str, TapSpec] | None = None, pool_tokens: str = "all"
) -> dict[str, tuple[nn.Module, Tap]]:
    """Map tap names to (module, Tap). ``None`` means every tap the model declares.

    A name is first looked up in ``model.taps``, then as a dotted submodule name. Unknown names raise a
    ValueError listing what the model offers. ``pool_tokens`` (``"all"`` or ``"patches"``) is stored on every
    resolved Tap: how token outputs are averaged (see :class:`Tap`); convolutional outputs are unaffected.
    """
    check_pool_tokens(pool_tokens)
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
            resolved[name] = (spec, Tap(module=name, pool_tokens=pool_tokens))
            continue
        if isinstance(spec, str):
            spec = declared.get(spec, Tap(module=spec))
        if spec.module not in modules:
            offered = ", ".join(declared) if declared else ", ".join(n for n in list(modules)[1:20] if n)
            raise ValueError(
                f"unknown tap {name!r} for {type(model).__name__}: no declared tap or submodule of that name. "
                f"Available: {offered}."
            )
        resolved[name] = (modules[spec.module], replace(spec, pool_tokens=pool_tokens))
    if not resolved:
        raise ValueError("no taps given: name at least one layer to measure.")
    return resolved


@contextmanager
def capture(
    model: nn.Module,
    taps: Sequence[str] | Mapping[str, TapSpec] | None = None,
    resolved: Mapping[str, tuple[nn.Module, Tap]] | None = None,
    pool_tokens: str | None = None,
) -> Iterator[dict[str, Tensor]]:
    """Capture pooled (B, C) outputs of the taps during forward passes inside the block.

    Yields a dict that the hooks fill, one entry per tap (list/tuple outputs without ``index`` give
    ``name.0``, ``name.1``, ...). Features are detached. A tap that fires twice in one block, or not at all
    while others did, raises. Hooks are removed on exit. ``resolved`` (from :func:`resolve_taps`) spares
    repeated callers the look-up of the taps on every forward pass. ``pool_tokens`` (``"all"`` or
    ``"patches"``) overrides the token pooling of the taps; ``None`` keeps the resolved one (default "all").
    """
    if resolved is None:
        resolved = resolve_taps(model, taps, pool_tokens or "all")
    elif pool_tokens is not None:
        check_pool_tokens(pool_tokens)
        resolved = {name: (module, replace(tap, pool_tokens=pool_tokens)) for name, (module, tap) in resolved.items()}
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
                    features[name] = pool(output[tap.index], tap.pooled_from).detach()
                else:
                    for i, out in enumerate(output):
                        features[f"{name}.{i}"] = pool(out, tap.pooled_from).detach()
            else:
                if tap.index is not None:
                    raise ValueError(f"tap {name!r} has index={tap.index} but {tap.module} outputs a single tensor.")
                features[name] = pool(output, tap.pooled_from).detach()

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
def extract(
    model: nn.Module, view, taps: Sequence[str] | Mapping[str, TapSpec] | None = None, pool_tokens: str = "all"
) -> dict[str, Tensor]:
    """One forward pass; the pooled (B, C) feature of every tap (token pooling as :func:`resolve_taps`)."""
    with capture(model, taps, pool_tokens=pool_tokens) as features:
        run_model(model, view)
    return dict(features)
