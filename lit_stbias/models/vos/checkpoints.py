"""MATNet's published checkpoint layout: a folder of ``encoder_<epoch>.pt`` and ``decoder_<epoch>.pt``.

The release (``MATNet.load_ckpt`` with ``load_checkpoint_epoch`` and ``check_parallel`` in
``models/vos_models/utils.py``) takes the folder, picks the largest epoch among the ``encoder_<epoch>.pt``
files, loads that epoch's encoder and decoder state dicts (saved separately, keys relative to each part) and
drops a DataParallel ``module.`` prefix. :func:`read_encoder_decoder_folder` does the same and returns one
state dict with the model's keys (``encoder.*``, ``decoder.*``), which ``lit_stbias.models.load_weights``
then loads strictly. Files are opened only with :func:`~lit_stbias.models.read_checkpoint` (tensors only).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from torch import Tensor

from lit_stbias.models.checkpoints import CheckpointError, read_checkpoint

PARTS = ("encoder", "decoder")
_EPOCH_FILE = re.compile(r"^encoder_(\d+)\.pt$")
_PARALLEL_PREFIX = "module."


def newest_epoch(folder: str | os.PathLike) -> int:
    """The largest ``<epoch>`` of the folder's ``encoder_<epoch>.pt`` files (the one the release loads)."""
    folder = Path(folder)
    epochs = [int(m.group(1)) for p in folder.iterdir() if (m := _EPOCH_FILE.match(p.name))]
    if not epochs:
        raise CheckpointError(
            f"{folder} holds no encoder_<epoch>.pt: a MATNet checkpoint folder has encoder_<epoch>.pt and "
            "decoder_<epoch>.pt (give a checkpoint file for other networks)"
        )
    return max(epochs)


def read_encoder_decoder_folder(folder: str | os.PathLike) -> dict[str, Tensor]:
    """One state dict (``encoder.*``, ``decoder.*``) from the newest epoch of a MATNet checkpoint folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {folder}")
    epoch = newest_epoch(folder)
    state: dict[str, Tensor] = {}
    for part in PARTS:
        path = folder / f"{part}_{epoch}.pt"
        if not path.is_file():
            raise CheckpointError(f"{path} is missing: the folder's newest encoder is encoder_{epoch}.pt, and MATNet "
                                  f"needs the {part} of the same epoch")
        weights = read_checkpoint(path)
        if weights and all(k.startswith(_PARALLEL_PREFIX) for k in weights):  # saved from nn.DataParallel
            weights = {k[len(_PARALLEL_PREFIX):]: v for k, v in weights.items()}
        state.update({f"{part}.{k}": v for k, v in weights.items()})
    return state
