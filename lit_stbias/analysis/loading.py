"""The model a measurement names: a zoo model, a user's ``package.module:factory``, or a checkpoint of this project.

Checkpoint files are opened only through :func:`lit_stbias.models.read_checkpoint` (tensors only, nothing
that runs code). A Lightning checkpoint of this project brings its model (name, preset, classes, builder
overrides) and the clips it was trained on (:meth:`ClipSettings.from_checkpoint`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, NamedTuple

import torch
from torch import nn

from lit_stbias.analysis.clips import ClipSettings


class LoadedModel(NamedTuple):
    """The network in eval mode, what the document says about it, and the clip settings its checkpoint holds."""

    model: nn.Module
    describe: dict[str, Any]
    clip: ClipSettings


def lightning_hparams(checkpoint: Mapping[str, Any]) -> dict[str, Any] | None:
    """The module hyper-parameters of a Lightning checkpoint of this project, else ``None``."""
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, Mapping) else None
    return hparams if isinstance(hparams, Mapping) and "model_name" in hparams else None


def is_user_model(name: str | None) -> bool:
    """``package.module:factory`` names a user's model; zoo names have no colon."""
    return name is not None and ":" in name


def load_model(
    model: str | None = None,
    preset: str = "tiny",
    ckpt: str | None = None,
    num_classes: int | None = None,
    init_seed: int = 0,
    num_frames: int | None = None,
    size: int | None = None,
    normalization: Any = "none",
) -> LoadedModel:
    """Build the model and load its checkpoint.

    ``model`` is a zoo name (``lit_stbias.models.available()``) or ``package.module:factory`` (built by
    ``lit_stbias.models.import_model`` with ``num_frames``, ``size`` and ``normalization``). A Lightning
    checkpoint of this project names its own model; a plain state dict or a published checkpoint needs
    ``model``. Weights of a model without checkpoint are drawn from ``init_seed``.
    """
    from lit_stbias.models import build, get_entry, load_weights, read_checkpoint

    describe: dict[str, Any] = {"model": model, "preset": preset, "checkpoint": ckpt, "init_seed": init_seed}
    kwargs: dict[str, Any] = {}
    checkpoint: Mapping[str, Any] | None = None
    clip = ClipSettings()
    if ckpt is not None:
        checkpoint = read_checkpoint(Path(ckpt))
        hparams = lightning_hparams(checkpoint)
        if hparams is not None:
            if model is not None and model != hparams["model_name"]:
                raise ValueError(f"--model {model} contradicts the checkpoint, which holds {hparams['model_name']}.")
            describe.update(model=hparams["model_name"], preset=hparams.get("preset", preset))
            clip = ClipSettings.from_checkpoint(checkpoint)
            kwargs.update(hparams.get("model_overrides") or {})
            if hparams.get("num_classes") is not None:
                kwargs["num_classes"] = hparams["num_classes"]
        elif model is None:
            raise ValueError(f"{ckpt} is a plain state dict: name its architecture with --model (and --preset).")
    if describe["model"] is None:
        raise ValueError("name a model with --model (see --list-models) or a checkpoint of this project with --ckpt.")
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        if is_user_model(describe["model"]):
            net = _import_user_model(describe["model"], num_frames, size, normalization, kwargs)
            describe["preset"] = None
        else:
            net = build(describe["model"], preset=describe["preset"], **kwargs)
    if checkpoint is not None:
        load_weights(net, checkpoint)
    if is_user_model(describe["model"]):
        describe["task"] = "vos" if getattr(getattr(net, "input_spec", None), "two_stream", False) else "action"
    else:
        describe["task"] = get_entry(describe["model"]).task
    return LoadedModel(net.eval(), describe, clip)


def _import_user_model(target: str, num_frames: int | None, size: int | None, normalization: Any,
                       kwargs: dict[str, Any]) -> nn.Module:
    """A user's ``package.module:factory`` through ``lit_stbias.models.import_model``."""
    if num_frames is None or size is None:
        raise ValueError(f"--model {target} is a user model: give its clip with --num-frames and --size "
                         "(and --normalization, the statistics its weights expect).")
    from lit_stbias import models

    import_model = getattr(models, "import_model", None)
    if import_model is None:
        raise ValueError("this lit_stbias has no lit_stbias.models.import_model; user models need a newer version.")
    return import_model(target, num_frames=num_frames, size=size, normalization=normalization, **kwargs)


__all__ = ["LoadedModel", "is_user_model", "lightning_hparams", "load_model"]
