"""Training with Lightning: action and VOS LightningModules, their DataModules, and the BiasMonitor callback
that tracks the static/dynamic bias of chosen taps every epoch. ``train.py`` is the command line over these."""
from lit_stbias.lightning.bias_monitor import HISTORY_FILE, BiasMonitor, final_bias, flat_metrics
from lit_stbias.lightning.data import ActionDataModule, EpochShuffleSampler, VOSDataModule
from lit_stbias.lightning.modules import ActionRecognitionModule, ClipInput, TrainModule
from lit_stbias.lightning.static_dropout import StaticDropout
from lit_stbias.lightning.vos import VOSModule, blob_baseline

__all__ = [
    "HISTORY_FILE",
    "ActionDataModule",
    "ActionRecognitionModule",
    "BiasMonitor",
    "ClipInput",
    "EpochShuffleSampler",
    "StaticDropout",
    "TrainModule",
    "VOSDataModule",
    "VOSModule",
    "blob_baseline",
    "final_bias",
    "flat_metrics",
]
