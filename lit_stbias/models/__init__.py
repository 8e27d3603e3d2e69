"""The model zoo: one registry of action-recognition and video-object-segmentation models with named taps.

``build(name, preset="tiny" | "full" | ..., num_classes=..., **overrides)`` returns an ``nn.Module`` carrying
``taps`` (tap name -> :class:`~lit_stbias.probe.Tap`) and ``input_spec`` (:class:`InputSpec`);
``available()`` lists the names and ``aliases()`` pytorchvideo's hub names for them (``build("x3d_m")``);
``import_model("package.module:factory", ...)`` makes a user's own network probe-ready; ``load_weights``
loads published or Lightning checkpoints through ``read_checkpoint``, which never runs code from a file. No
code here downloads weights.
"""
# importing the model modules registers their entries
from lit_stbias.models import action, timesformer, vos  # noqa: F401
from lit_stbias.models.checkpoints import CheckpointError, LoadReport, from_pyslowfast, load_weights, read_checkpoint
from lit_stbias.models.registry import (
    ModelEntry,
    aliases,
    available,
    build,
    get_entry,
    register,
    register_alias,
    resolve,
)
from lit_stbias.models.spec import ClipInput, InputSpec, pack_pathways
from lit_stbias.models.user import import_model

__all__ = [
    "CheckpointError",
    "ClipInput",
    "InputSpec",
    "LoadReport",
    "ModelEntry",
    "aliases",
    "available",
    "build",
    "from_pyslowfast",
    "get_entry",
    "import_model",
    "load_weights",
    "pack_pathways",
    "read_checkpoint",
    "register",
    "register_alias",
    "resolve",
]
