"""Acting on the unit classes: silence chosen channels of a tap (unit ablation), turn a layer's unit classes
into channel sets, and draw random channel sets of the same sizes as controls. StaticDropout, the training-time
use of the static set, is the Lightning callback ``lit_stbias.lightning.static_dropout.StaticDropout``."""
from lit_stbias.intervene.channels import Channels, channel_dim
from lit_stbias.intervene.silence import MODES, channel_means, silence, tap_label
from lit_stbias.intervene.units import document_unit_classes, random_unit_sets, unit_classes
from lit_stbias.metrics.result import UNIT_CLASSES

__all__ = [
    "MODES",
    "UNIT_CLASSES",
    "Channels",
    "channel_dim",
    "channel_means",
    "document_unit_classes",
    "random_unit_sets",
    "silence",
    "tap_label",
    "unit_classes",
]
