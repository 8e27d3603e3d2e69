"""The model registry: a name maps to one builder and named presets of its arguments.

A preset only fixes builder arguments (as pytorchvideo's hub functions do); ``build`` merges the preset with
the caller's overrides and calls the builder. Builders attach ``model.taps`` and ``model.input_spec``.
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


def available(task: str | None = None) -> list[str]:
    """Registered model names, optionally only those of one task (``"action"`` or ``"vos"``)."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    return [name for name, entry in _REGISTRY.items() if task is None or entry.task == task]


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name`` (builder, task, presets); unknown names raise a ValueError."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}. Available: {', '.join(_REGISTRY)}.")
    return _REGISTRY[name]


def build(name: str, preset: str = "tiny", num_classes: int | None = None, **overrides: Any) -> nn.Module:
    """Build a zoo model with random weights (nothing is ever downloaded; see :func:`load_weights`).

    Args:
        name: one of :func:`available`.
        preset: ``"full"`` (the published configuration, so published checkpoints load) or ``"tiny"`` (same
            architecture at a size that trains on a laptop CPU).
        num_classes: classifier outputs (action models; default 400) or mask channels (VOS; default 1).
        overrides: any builder argument, replacing the preset's value.

    Returns:
        an ``nn.Module`` with ``taps`` (dict name -> :class:`~lit_stbias.probe.Tap`) and ``input_spec``
        (:class:`InputSpec`).

    >>> model = build("slow", "tiny", num_classes=5)
    >>> list(model.taps)
    ['stage1', 'stage2', 'stage3', 'stage4', 'stage5']
    """
    kwargs = get_entry(name).kwargs(preset)
    kwargs.update(overrides)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return _REGISTRY[name].builder(**kwargs)
