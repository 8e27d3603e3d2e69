"""The model zoo: one registry of action-recognition and video-object-segmentation models with named taps.

``build(name, preset="tiny" | "full", num_classes=..., **overrides)`` returns an ``nn.Module`` carrying
``taps`` (tap name -> :class:`~lit_stbias.probe.Tap`) and ``input_spec`` (:class:`InputSpec`);
``available()`` lists the names; ``load_weights`` loads published or Lightning checkpoints. No code here
downloads weights.
"""
# importing the model modules registers their entries
from lit_stbias.models import action, timesformer, vos  # noqa: F401
from lit_stbias.models.checkpoints import CheckpointError, LoadReport, from_pyslowfast, load_weights, read_checkpoint
from lit_stbias.models.registry import ModelEntry, available, build, get_entry, register
from lit_stbias.models.spec import ClipInput, InputSpec, pack_pathways

__all__ = [
    "CheckpointError",
    "ClipInput",
    "InputSpec",
    "LoadReport",
    "ModelEntry",
    "available",
    "build",
    "from_pyslowfast",
    "get_entry",
    "load_weights",
    "pack_pathways",
    "read_checkpoint",
    "register",
]
