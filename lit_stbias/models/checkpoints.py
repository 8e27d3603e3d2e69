"""Load weights into zoo models from the files people actually have, and refuse partial loads.

Accepted sources (a path or an already loaded dict):

- pytorchvideo model-zoo checkpoints (``{"model_state": ...}``, keys already match the zoo's modules);
- PySlowFast model-zoo checkpoints of the ResNet family (``s1.pathway0_stem...``, renamed here);
- the TimeSformer release (``model.`` prefix, stripped);
- Lightning checkpoints of this project (``{"state_dict": ...}``, keys ``model.*``);
- plain state dicts, also saved from DDP (``module.`` prefix), bare or as ``{"state_dict": ...}`` (RTNet's release);
- MATNet's folder of ``encoder_<epoch>.pt`` and ``decoder_<epoch>.pt`` (:mod:`lit_stbias.models.vos.checkpoints`).
"""
from __future__ import annotations

import os
import pathlib
import pickletools
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

WRAPPER_PREFIXES = ("module.", "model.")


@dataclass(frozen=True)
class LoadReport:
    """Keys the model has but the checkpoint lacks, and keys the checkpoint has but the model lacks."""

    missing: list[str]
    unexpected: list[str]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read safely: missing, not a checkpoint, truncated, or naming code."""


# The only classes a checkpoint may name beyond tensors and plain containers: paths, which a Lightning
# checkpoint's hyper-parameters can hold. Rebuilding one calls the path class on strings, nothing of the file.
ALLOWED_GLOBALS = (pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath, pathlib.PureWindowsPath)
_ALLOWED_NAMES = {f"{cls.__module__}.{cls.__qualname__}" for cls in ALLOWED_GLOBALS}
# what the pickle of a tensor checkpoint names anyway (storages, dtypes, tensor rebuilders, plain containers);
# any other global in a refused file is worth naming
_TENSOR_PREFIXES = ("torch._utils.", "torch._tensor.")
_PLAIN = {"collections.OrderedDict", "collections.Counter", "builtins.set", "__builtin__.set", "builtins.bytearray",
          "builtins.complex", "_codecs.encode"}


def _names_code(name: str) -> bool:
    module = name.rpartition(".")[0]
    plain = module == "torch" or name.startswith(_TENSOR_PREFIXES) or name in _PLAIN or name in _ALLOWED_NAMES
    return not plain


_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}


def _pickled_globals(path: Path) -> list[str]:
    """The globals (``module.name``) that the file's pickles name, read from the opcodes alone: nothing is
    unpickled. For the error message only; what keeps code from running is ``weights_only=True``."""
    names: list[str] = []
    if zipfile.is_zipfile(path):
        try:
            names = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except Exception:  # not a torch.save archive: nothing to name
            pass
        return [n for n in names if _names_code(n)]
    strings: list[str] = []
    with open(path, "rb") as stream:
        for _ in range(8):  # a legacy torch.save file is a few pickles in a row, the first ones tiny
            try:
                for opcode, arg, _pos in pickletools.genops(stream):
                    if opcode.name in _STRING_OPS:
                        strings.append(str(arg))
                    elif opcode.name == "GLOBAL":
                        names.append(".".join(str(arg).split(" ", 1)))
                    elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                        names.append(f"{strings[-2]}.{strings[-1]}")
            except Exception:  # not (or no longer) a pickle
                break
    return [n for n in dict.fromkeys(names) if _names_code(n)]


def _cause(err: Exception) -> str:
    """torch's reason in a few words, without its advice to load the file with code execution switched on."""
    text = re.sub(r"\[enforce fail at [^\]]*\]\s*\.?\s*", "", str(err))  # torch's C++ source location
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    sentences = [s for s in re.split(r"(?<=\.)\s+|\n+", text) if s.strip() and "weights_only" not in s]
    reason = " ".join(" ".join(sentences[:1]).split())[:160] or type(err).__name__
    return reason.rstrip(".")


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Open a checkpoint file without running any code from it (``torch.load(weights_only=True)``).

    The only way this project opens a file a user points at. Tensors, plain containers and ``pathlib`` paths
    are read; a file whose pickle names anything else (a function such as ``os.system``, a model class) is
    refused before any of it runs. Any failure is a :class:`CheckpointError`
    with one line naming the file, the cause and what to do.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}; check the path.")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a checkpoint file; give the .ckpt/.pth/.pyth file itself.")
    try:
        empty = path.stat().st_size == 0
        with open(path, "rb"):
            pass
    except OSError as err:
        raise CheckpointError(f"cannot open checkpoint {path}: {err.strerror}; check the file's permissions.") from None
    if empty:
        raise CheckpointError(f"{path} is an empty file (0 bytes), not a checkpoint; save or download it again.")
    try:
        with torch.serialization.safe_globals(list(ALLOWED_GLOBALS)), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")  # a refused plain pickle
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors alike: the file is not a safe checkpoint
        named = _pickled_globals(path)
        if named:
            raise CheckpointError(
                f"refused to load {path}: its pickle names {', '.join(named[:3])}, which lit_stbias never "
                "unpickles (unpickling it could run code; nothing from the file was run). Use a checkpoint that holds "
                "tensors only, e.g. saved with torch.save(model.state_dict(), path) by someone you trust."
            ) from None
        raise CheckpointError(
            f"cannot read {path} as a checkpoint: truncated or not a zip/pickle file saved by torch.save "
            f"({_cause(err)}); save or download it again."
        ) from None
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(
            f"{path} holds a {type(checkpoint).__name__}, not a checkpoint: expected a dict (a state dict, or a "
            "training checkpoint with 'state_dict' or 'model_state'); save one with torch.save(model.state_dict())."
        )
    return dict(checkpoint)


def _read(source: str | os.PathLike | Mapping[str, Any]) -> Mapping[str, Any]:
    return source if isinstance(source, Mapping) else read_checkpoint(source)


def _unwrap(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """The network's state dict inside a training checkpoint."""
    if "state_dict" in checkpoint and isinstance(checkpoint["state_dict"], Mapping):
        weights = checkpoint["state_dict"]
        if weights and all(k.startswith("module.") for k in weights):  # a DataParallel model's (RTNet's release)
            return dict(weights)
        # Lightning
        state = {k[len("model."):]: v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
        if not state:
            raise ValueError(
                "Lightning checkpoint holds no 'model.*' weights; this project's LightningModules keep the "
                "network as self.model."
            )
        return state
    for key in ("model_state", "model"):  # pytorchvideo / PySlowFast / TimeSformer releases
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            return dict(checkpoint[key])
    return dict(checkpoint)


def _strip_wrappers(state: dict[str, Tensor], model_keys: set[str]) -> dict[str, Tensor]:
    """Drop a prefix that every checkpoint key carries but the model's keys do not (DDP, wrapper modules)."""
    for prefix in WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in model_keys):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


# PySlowFast ResNet block names -> pytorchvideo's
_BLOCK_RENAMES = {
    "branch1": "branch1_conv", "branch1_bn": "branch1_norm",
    "branch2.a": "branch2.conv_a", "branch2.a_bn": "branch2.norm_a",
    "branch2.b": "branch2.conv_b", "branch2.b_bn": "branch2.norm_b",
    "branch2.c": "branch2.conv_c", "branch2.c_bn": "branch2.norm_c",
}
_STEM_RENAMES = {"conv": "conv", "bn": "norm"}
_FUSE_RENAMES = {"conv_f2s": "conv_fast_to_slow", "bn": "norm"}
_PYSLOWFAST_KEY = re.compile(r"^s(\d)\.pathway(\d)_(stem|res(\d+))\.(.+)\.(\w+)$")
_PYSLOWFAST_FUSE = re.compile(r"^s(\d)_fuse\.(\w+)\.(\w+)$")


def is_pyslowfast(state: Mapping[str, Any]) -> bool:
    return any(_PYSLOWFAST_KEY.match(k) for k in state)


def from_pyslowfast(state: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Rename a PySlowFast ResNet/SlowFast state dict to the zoo model's keys.

    Stages are located through the model's taps (``stageK``, or ``slow.stageK`` / ``fast.stageK``), so C2D
    and I3D's extra pooling block needs no special case. Keys that match no rule are kept as they are and
    show up as unexpected.
    """
    taps = getattr(model, "taps", {})

    def stage(k: int, pathway: int) -> str:
        name = f"stage{k}" if f"stage{k}" in taps else f"{('slow', 'fast')[pathway]}.stage{k}"
        if name not in taps:
            raise ValueError(f"{type(model).__name__} has no tap {name!r}; cannot place PySlowFast stage s{k}.")
        return taps[name].module

    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    renamed = {}
    for key, value in state.items():
        new = key
        if match := _PYSLOWFAST_KEY.match(key):
            k, pathway, part, block, layer, param = match.groups()
            renames = _STEM_RENAMES if part == "stem" else _BLOCK_RENAMES
            if layer in renames:
                where = stage(int(k), int(pathway)) + ("" if part == "stem" else f".res_blocks.{block}")
                new = f"{where}.{renames[layer]}.{param}"
        elif (match := _PYSLOWFAST_FUSE.match(key)) and match.group(2) in _FUSE_RENAMES:
            k, layer, param = match.groups()
            block = stage(int(k), 0).rsplit(".multipathway_blocks", 1)[0]
            new = f"{block}.multipathway_fusion.{_FUSE_RENAMES[layer]}.{param}"
        elif key.startswith("head.projection.") and linears:
            new = f"{linears[-1]}.{key.rsplit('.', 1)[1]}"
        renamed[new] = value
    return renamed


def _listing(title: str, keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit]) + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")
    return f"{title} ({len(keys)}): {shown}"


def load_weights(
    model: nn.Module,
    source: str | os.PathLike | Mapping[str, Any],
    strict: bool = True,
) -> LoadReport:
    """Load a checkpoint file or dict into ``model`` (see the module docstring for the formats).

    Args:
        strict: raise when any key is missing or unexpected. With ``strict=False`` the matching keys load and
            the rest is reported in a warning (e.g. a backbone into a model with a new head). Shape
            mismatches always raise: they mean a different configuration (preset or ``num_classes``).

    Raises:
        ValueError: naming the missing, unexpected and mismatching keys; the model is left untouched.
    """
    own = model.state_dict()
    origin = "" if isinstance(source, Mapping) else f" {source}"
    if not isinstance(source, Mapping) and Path(source).is_dir():  # a checkpoint saved as a folder (MATNet's)
        from lit_stbias.models.vos.checkpoints import read_encoder_decoder_folder

        source = read_encoder_decoder_folder(source)
    state = _strip_wrappers(_unwrap(_read(source)), set(own))
    if is_pyslowfast(state):
        state = from_pyslowfast(state, model)
    # BatchNorm's batch counter is bookkeeping; older checkpoints lack it
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    problems = [_listing(t, keys) for t, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
    if mismatched or (strict and problems):
        detail = "; ".join(problems + ([_listing("shape mismatch", mismatched)] if mismatched else []))
        raise ValueError(
            f"checkpoint{origin} does not fit {type(model).__name__}: {detail}. Was the model built with the same "
            "preset and num_classes?"
        )
    if problems:
        warnings.warn(f"partial load into {type(model).__name__}: {'; '.join(problems)}", stacklevel=2)
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return LoadReport(missing, unexpected)
