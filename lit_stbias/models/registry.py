"""The model registry: a name maps to one builder and named presets of its arguments.

A preset only fixes builder arguments (as pytorchvideo's hub functions do); ``build`` merges the preset with
the caller's overrides and calls the builder. Builders attach ``model.taps`` and ``model.input_spec``.
An alias is another name for one (model, preset) pair, e.g. pytorchvideo's hub name ``x3d_m`` for
``("x3d", "m")``, so users can call a published network by the name they know.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from torch import nn

TASKS = ("action", "vos")


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its builder, the arguments that define the architecture (``arch``, shared by
    all presets) and the named presets (size, depth, input) layered on top."""

    name: str
    builder: Callable[..., nn.Module]
    task: str
    summary: str
    arch: Mapping[str, Any] = field(default_factory=dict)
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def kwargs(self, preset: str) -> dict[str, Any]:
        if preset not in self.presets:
            raise ValueError(f"unknown preset {preset!r} for model {self.name!r}. "
                             f"Available: {', '.join(self.presets)}.")
        return {**self.arch, **self.presets[preset]}


_REGISTRY: dict[str, ModelEntry] = {}
_ALIASES: dict[str, tuple[str, str]] = {}


def register(
    name: str,
    builder: Callable[..., nn.Module],
    *,
    task: str,
    summary: str,
    presets: Mapping[str, Mapping[str, Any]],
    arch: Mapping[str, Any] | None = None,
) -> ModelEntry:
    """Add a model to the zoo. ``presets`` must hold ``"tiny"`` and ``"full"``."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered.")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    missing = {"tiny", "full"} - set(presets)
    if missing:
        raise ValueError(f"model {name!r} lacks presets {sorted(missing)}.")
    entry = ModelEntry(name, builder, task, summary, dict(arch or {}), {k: dict(v) for k, v in presets.items()})
    _REGISTRY[name] = entry
    return entry


def register_alias(alias: str, name: str, preset: str) -> None:
    """Make ``alias`` another name for model ``name`` with preset ``preset``."""
    if alias in _REGISTRY or alias in _ALIASES:
        raise ValueError(f"model name {alias!r} is already taken.")
    get_entry(name).kwargs(preset)  # both must exist
    _ALIASES[alias] = (name, preset)


def aliases() -> dict[str, tuple[str, str]]:
    """Every alias (pytorchvideo's hub names) -> the (model name, preset) it stands for.

    >>> aliases()["x3d_m"]
    ('x3d', 'm')
    """
    return dict(_ALIASES)


def resolve(name: str, preset: str | None = None) -> tuple[str, str]:
    """The canonical (model name, preset) that ``name`` and ``preset`` ask for.

    An alias fixes its preset, so ``preset`` may be left out or repeat it; a canonical name takes any of its
    presets (``None`` means ``"tiny"``). Unknown names or conflicting presets raise a ValueError.

    >>> resolve("slow_r50")
    ('slow', 'full')
    >>> resolve("slow")
    ('slow', 'tiny')
    """
    if name in _ALIASES:
        canonical, fixed = _ALIASES[name]
        if preset is not None and preset != fixed:
            raise ValueError(
                f"{name!r} is model {canonical!r} with preset {fixed!r}, so preset={preset!r} contradicts it; "
                f"drop the preset, or build {canonical!r} with one of its presets: "
                f"{', '.join(_REGISTRY[canonical].presets)}."
            )
        return canonical, fixed
    entry = get_entry(name)
    preset = "tiny" if preset is None else preset
    entry.kwargs(preset)  # unknown presets raise here, listing the available ones
    return name, preset


def available(task: str | None = None) -> list[str]:
    """Registered model names, optionally only those of one task (``"action"`` or ``"vos"``)."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    return [name for name, entry in _REGISTRY.items() if task is None or entry.task == task]


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name`` or of the model an alias names; unknown names raise a ValueError."""
    name = _ALIASES.get(name, (name, None))[0]
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown model {name!r}. Available: {', '.join(_REGISTRY)}; pytorchvideo names: {', '.join(_ALIASES)}."
        )
    return _REGISTRY[name]


def build(name: str, preset: str | None = None, num_classes: int | None = None, **overrides: Any) -> nn.Module:
    """Build a zoo model with random weights (nothing is ever downloaded; see :func:`load_weights`).

    Args:
        name: one of :func:`available`, or an alias of :func:`aliases` (pytorchvideo's hub names such as
            ``"slow_r50"`` or ``"x3d_m"``), which brings its own preset.
        preset: ``"full"`` (the published configuration, so published checkpoints load), ``"tiny"`` (same
            architecture at a size that trains on a laptop CPU; the default for canonical names), or another
            published size the model offers (``get_entry(name).presets``, e.g. X3D's ``"xs"``...``"l"``).
        num_classes: classifier outputs (action models; default 400) or mask channels (VOS; default 1).
        overrides: any builder argument, replacing the preset's value.

    Returns:
        an ``nn.Module`` with ``taps`` (dict name -> :class:`~lit_stbias.probe.Tap`) and ``input_spec``
        (:class:`InputSpec`).

    >>> model = build("slow", "tiny", num_classes=5)
    >>> list(model.taps)
    ['stage1', 'stage2', 'stage3', 'stage4', 'stage5']
    """
    name, preset = resolve(name, preset)
    kwargs = get_entry(name).kwargs(preset)
    kwargs.update(overrides)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return _REGISTRY[name].builder(**kwargs)
