"""The stylization networks the paper used: Texler et al.'s few-shot patch-based ``GeneratorJ``, as styles.

The paper (Kowal et al., CVPR 2022) renders its stylized datasets with four pretrained generators of
"Interactive Video Stylization Using Few-Shot Patch-Based Training" (Texler et al., SIGGRAPH 2020). Each
published file is a whole pickled ``GeneratorJ`` module saved from that repository's ``models`` module. This
module reimplements the network (same layer names, parameter shapes and forward maths, every constructor
option) and reads such files **without running code from them**:

* the pickle is opened with ``torch.load(weights_only=True)`` and an allow-list that maps exactly the classes
  those files name (``models.GeneratorJ``, ``models.UpsamplingLayer`` and the torch layers they hold) to the
  classes here; any other global is refused with one line naming the file and the global;
* the unpickled object is only read as data (its weights and its normalisation layer); the network that runs
  is built here from the configuration those weights imply, so nothing of the file's own code or hooks runs;
* plain state dicts (and ``{"state_dict": ..., "args": {...}}``) load too.

Stylizing follows the repository's ``generate.py``: frames in [0, 1] are mapped to [-1, 1] (mean 0.5, std
0.5), the output is clamped to [-1, 1] and mapped back; on CUDA the network runs in half precision.
"""
from __future__ import annotations

import copy
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

#: normalisation layers GeneratorJ can use, by the name its constructor takes (``None``: no normalisation)
NORM_LAYERS: dict[str | None, type[nn.Module] | None] = {
    "batch_norm": nn.BatchNorm2d,
    "instance_norm": nn.InstanceNorm2d,
    None: None,
}

#: the configuration the reference repository ships (``_config/reference_P.yaml``; batch norm by default)
REFERENCE_CONFIG: dict[str, Any] = {
    "norm_layer": "batch_norm",
    "use_bias": True,
    "tanh": True,
    "append_smoothers": True,
    "resnet_blocks": 7,
    "filters": (32, 64, 128, 128, 128, 64),
    "input_channels": 3,
}

#: the generator downsamples twice by 2, so frames are padded to a multiple of this
SIZE_MULTIPLE = 4


class UpsamplingLayer(nn.Module):
    """Nearest-neighbour upsampling by 2, kept as ``.layer`` (the layout the published files hold).
    ``channels`` is accepted and unused, as in the original signature."""

    def __init__(self, channels: int | None = None) -> None:
        super().__init__()
        self.layer = nn.Upsample(scale_factor=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class GeneratorJ(nn.Module):
    """Texler et al.'s U-Net-like image-to-image generator.

    ``conv0`` (7x7) -> ``conv1``, ``conv2`` (3x3, stride 2) -> ``resnets`` (residual blocks) -> ``upconv2``,
    ``upconv1`` (nearest x2 + 3x3 conv) -> ``conv_11`` (7x7) -> ``conv_11_a`` (two 3x3 "smoothers", optional)
    -> ``conv_12`` (1x1 to RGB, optionally followed by tanh). With ``skip_connections`` (the published
    networks) ``upconv2`` also sees ``conv2``'s output, ``upconv1`` sees ``conv1``'s and ``conv_11`` sees
    ``conv0``'s and the input.

    Args:
        input_size: recorded only (the network is fully convolutional).
        norm_layer: ``"batch_norm"``, ``"instance_norm"`` or None, after every conv of the encoder, the
            residual blocks and the decoder (the smoothers always use batch norm, as the original).
        gpu_ids: recorded only.
        use_bias: biases in the encoder, residual, ``conv_11`` and smoother convolutions (the decoder's
            upsampling convolutions never have one; ``conv_12`` always has one).
        resnet_blocks: number of residual blocks.
        tanh: end with a tanh (output in [-1, 1]).
        filters: six channel counts; ``filters[3]`` must equal ``filters[2]`` (it is the residual output
            concatenated with ``conv2``'s).
        input_channels: 3 for RGB; guide images add channels (the stylization styles need 3).
        append_smoothers: add ``conv_11_a``.
        skip_connections: the U-Net skips (True in the original; False is its commented-out variant).

    Differs from the original only where it cannot change an output: the original evaluates ``conv2`` twice
    on the same input (once per use); it is evaluated once here.
    """

    def __init__(
        self,
        input_size: int = 256,
        norm_layer: str | None = "batch_norm",
        gpu_ids: Any = None,
        use_bias: bool = False,
        resnet_blocks: int = 9,
        tanh: bool = False,
        filters: Sequence[int] = (64, 128, 128, 128, 128, 64),
        input_channels: int = 3,
        append_smoothers: bool = False,
        skip_connections: bool = True,
    ) -> None:
        super().__init__()
        if not _is_norm_name(norm_layer):
            raise ValueError(f"norm_layer must be 'batch_norm', 'instance_norm' or None; got {norm_layer!r}.")
        filters = tuple(int(f) for f in filters)
        if len(filters) != 6 or min(filters) < 1:
            raise ValueError(f"filters must be six positive channel counts; got {filters}.")
        if filters[3] != filters[2]:
            raise ValueError(f"filters[3] must equal filters[2] (the residual output joins conv2's); got {filters}.")
        if input_channels < 1 or resnet_blocks < 0:
            raise ValueError(f"need input_channels >= 1 and resnet_blocks >= 0; got {input_channels}, {resnet_blocks}.")
        norm = NORM_LAYERS[norm_layer]
        self.input_size = input_size
        self.norm_layer = norm  # the class, as the original stores it
        self.gpu_ids = gpu_ids
        self.use_bias = use_bias
        self.resnet_blocks = resnet_blocks
        self.append_smoothers = append_smoothers
        self.tanh = tanh
        self.filters = filters
        self.input_channels = input_channels
        self.skip_connections = skip_connections

        f0, f1, f2, f3, f4, f5 = filters
        self.conv0 = _conv_block(input_channels, f0, 7, 1, 3, use_bias, norm, nn.LeakyReLU(0.2))
        self.conv1 = _conv_block(f0, f1, 3, 2, 1, use_bias, norm, nn.LeakyReLU(0.2))
        self.conv2 = _conv_block(f1, f2, 3, 2, 1, use_bias, norm, nn.LeakyReLU(0.2))
        self.resnets = nn.ModuleList(_residual_block(f2, use_bias, norm) for _ in range(resnet_blocks))
        self.upconv2 = _upsampling_block(f3 + f2 if skip_connections else f3, f4, norm)
        self.upconv1 = _upsampling_block(f4 + f1 if skip_connections else f4, f4, norm)
        self.conv_11 = nn.Sequential(
            nn.Conv2d(f0 + f4 + input_channels if skip_connections else f4, f5, 7, 1, 3, bias=use_bias), nn.ReLU()
        )
        if append_smoothers:
            self.conv_11_a = nn.Sequential(
                nn.Conv2d(f5, f5, 3, padding=1, bias=use_bias),
                nn.ReLU(),
                nn.BatchNorm2d(f5),
                nn.Conv2d(f5, f5, 3, padding=1, bias=use_bias),
                nn.ReLU(),
            )
        to_rgb = nn.Conv2d(f5, 3, 1, 1, 0, bias=True)
        self.conv_12 = nn.Sequential(to_rgb, nn.Tanh()) if tanh else to_rgb

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments that define the architecture (``GeneratorJ(**g.config)`` rebuilds it)."""
        norm = next(name for name, cls in NORM_LAYERS.items() if cls is self.norm_layer)
        return {
            "norm_layer": norm,
            "use_bias": self.use_bias,
            "tanh": self.tanh,
            "append_smoothers": self.append_smoothers,
            "resnet_blocks": self.resnet_blocks,
            "filters": self.filters,
            "input_channels": self.input_channels,
            "skip_connections": self.skip_connections,
        }

    def forward(self, x: Tensor) -> Tensor:
        """(N, input_channels, H, W) with H, W multiples of 4 -> (N, 3, H, W)."""
        out0 = self.conv0(x)
        out1 = self.conv1(out0)
        out2 = self.conv2(out1)
        out = out2
        for block in self.resnets:
            out = block(out) + out
        if self.skip_connections:
            out = self.upconv2(torch.cat((out, out2), dim=1))
            out = self.upconv1(torch.cat((out, out1), dim=1))
            out = self.conv_11(torch.cat((out, out0, x), dim=1))
        else:
            out = self.conv_11(self.upconv1(self.upconv2(out)))
        if self.append_smoothers:
            out = self.conv_11_a(out)
        return self.conv_12(out)


def _is_norm_name(name: Any) -> bool:
    return name is None or (isinstance(name, str) and name in NORM_LAYERS)


def _conv_block(
    cin: int, cout: int, kernel: int, stride: int, padding: int, bias: bool, norm: type | None, act: nn.Module
) -> nn.Sequential:
    """conv -> [normalization] -> nonlinearity, with the original's module names."""
    block = nn.Sequential()
    block.add_module("conv", nn.Conv2d(cin, cout, kernel, stride, padding, bias=bias))
    if norm is not None:
        block.add_module("normalization", norm(num_features=cout))
    block.add_module("nonlinearity", act)
    return block


def _residual_block(channels: int, bias: bool, norm: type | None) -> nn.Sequential:
    """relu -> conv -> [normalization] -> relu -> conv (the caller adds the input back)."""
    relu = nn.ReLU()  # one module under two names, as the original
    block = nn.Sequential()
    block.add_module("nonlinearity_0", relu)
    block.add_module("conv_0", nn.Conv2d(channels, channels, 3, 1, 1, bias=bias))
    if norm is not None:
        block.add_module("normalization", norm(num_features=channels))
    block.add_module("nonlinearity_1", relu)
    block.add_module("conv_1", nn.Conv2d(channels, channels, 3, 1, 1, bias=bias))
    return block


def _upsampling_block(cin: int, cout: int, norm: type | None) -> nn.Sequential:
    """nearest x2 -> 3x3 conv without bias -> [normalization] -> relu (numbered, as the original)."""
    parts: list[nn.Module] = [UpsamplingLayer(cin), nn.Conv2d(cin, cout, 3, 1, 1, bias=False)]
    if norm is not None:
        parts.append(norm(num_features=cout))
    parts.append(nn.ReLU())
    return nn.Sequential(*parts)


# ------------------------------------------------------------------------------------------------ reading files

#: what the reference repository's pickled generators name, mapped to the classes that stand for them here.
#: torch's weights-only unpickler adds the containers and tensor rebuilders a pickled module needs
#: (``collections.OrderedDict``, ``builtins.set``, storages, ``torch._utils._rebuild_tensor_v2`` and
#: ``_rebuild_parameter``) and refuses everything else.
PICKLED_CLASSES: tuple[tuple[type, str], ...] = (
    (GeneratorJ, "models.GeneratorJ"),
    (UpsamplingLayer, "models.UpsamplingLayer"),
    (nn.Sequential, "torch.nn.modules.container.Sequential"),
    (nn.ModuleList, "torch.nn.modules.container.ModuleList"),
    (nn.Conv2d, "torch.nn.modules.conv.Conv2d"),
    (nn.BatchNorm2d, "torch.nn.modules.batchnorm.BatchNorm2d"),
    (nn.InstanceNorm2d, "torch.nn.modules.instancenorm.InstanceNorm2d"),
    (nn.LeakyReLU, "torch.nn.modules.activation.LeakyReLU"),
    (nn.ReLU, "torch.nn.modules.activation.ReLU"),
    (nn.Tanh, "torch.nn.modules.activation.Tanh"),
    (nn.Upsample, "torch.nn.modules.upsampling.Upsample"),
)

_REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+)")
_SAVE_HINT = ("give the pickled GeneratorJ module of Few-Shot-Patch-Based-Training (torch.save(model)) or its "
              "state dict (torch.save(model.state_dict()))")


def read_generator_file(path: str | os.PathLike) -> Any:
    """The object a generator file holds, unpickled with only :data:`PICKLED_CLASSES` (and torch's tensors
    and containers) allowed. Never runs code from the file; any failure is one ValueError / FileNotFoundError
    line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"generator file not found: {path}")
    try:
        with torch.serialization.safe_globals(list(PICKLED_CLASSES)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        message = str(err)
        refused = _REFUSED_GLOBAL.search(message)
        if refused:
            raise ValueError(
                f"{path}: refused to unpickle the global {refused.group(1)}; a GeneratorJ file may only name "
                f"models.GeneratorJ, its blocks and torch layers; {_SAVE_HINT}"
            ) from None
        if "persistent_load" in message and not zipfile.is_zipfile(path):
            raise ValueError(
                f"{path}: a module saved in PyTorch's legacy (before 1.6) format embeds its source code and is "
                f"not read; re-save it with a current PyTorch ({_SAVE_HINT})"
            ) from None
        reason = message.split("WeightsUnpickler error:")[-1].split("Check the documentation")[0]
        reason = " ".join(reason.split())[:200]
        raise ValueError(f"{path}: not a readable generator file ({reason}); {_SAVE_HINT}") from None
    except Exception as err:  # zip, storage and torch errors alike: not a generator file
        reason = " ".join(str(err).split())[:200]
        raise ValueError(
            f"{path}: not a readable generator file ({type(err).__name__}: {reason}); {_SAVE_HINT}"
        ) from None


def _module_weights(module: nn.Module, prefix: str = "", seen: frozenset[int] = frozenset()) -> Iterator[
        tuple[str, Tensor]]:
    """Parameters and buffers of an unpickled module, read from its attributes as plain data (no method or
    hook of the object is called). A module that contains itself is refused."""
    if id(module) in seen:
        raise ValueError(f"the pickled module contains itself at {prefix.rstrip('.') or 'its root'}")
    seen = seen | {id(module)}
    attributes = vars(module)
    for group in ("_parameters", "_buffers"):
        for name, value in dict(attributes.get(group) or {}).items():
            if isinstance(value, Tensor):
                yield prefix + name, value
    for name, child in dict(attributes.get("_modules") or {}).items():
        if isinstance(child, nn.Module):
            yield from _module_weights(child, f"{prefix}{name}.", seen)


def infer_config(state: Mapping[str, Tensor], norm_layer: str | None = "infer") -> dict[str, Any]:
    """The :class:`GeneratorJ` configuration a state dict implies (the inverse of its constructor).

    Batch-norm statistics show in a state dict; instance norm (without affine parameters) and no
    normalisation do not, so without them ``norm_layer`` must be given (``"infer"`` then raises). Raises
    ValueError for a state dict that is not a GeneratorJ's."""

    def weight(key: str) -> Tensor:
        value = state.get(key)
        if not isinstance(value, Tensor) or value.ndim != 4:
            raise ValueError(f"not a GeneratorJ state dict: no 4-d {key!r} (keys: {list(state)[:6]} ...)")
        return value

    f0, input_channels = weight("conv0.conv.weight").shape[:2]
    f1 = weight("conv1.conv.weight").shape[0]
    f2 = weight("conv2.conv.weight").shape[0]
    f4, up2_in = weight("upconv2.1.weight").shape[:2]
    f5, c11_in = weight("conv_11.0.weight").shape[:2]
    skip = c11_in == f0 + f4 + input_channels
    has_bn = "conv0.normalization.running_mean" in state
    if norm_layer == "infer":
        if not has_bn:
            raise ValueError(
                "the state dict holds no batch-norm statistics: its generator used instance norm or none, which "
                "weights cannot tell apart; save {'state_dict': ..., 'args': {'norm_layer': 'instance_norm'}} "
                "(or None) instead"
            )
        norm_layer = "batch_norm"
    elif not _is_norm_name(norm_layer):
        raise ValueError(f"norm_layer must be 'batch_norm', 'instance_norm' or None; got {norm_layer!r}.")
    elif (norm_layer == "batch_norm") != has_bn:
        found = "holds" if has_bn else "holds no"
        raise ValueError(f"the state dict {found} batch-norm statistics, which contradicts norm_layer={norm_layer!r}.")
    blocks = {int(m.group(1)) for m in (re.match(r"resnets\.(\d+)\.", k) for k in state) if m}
    return {
        "norm_layer": norm_layer,
        "use_bias": "conv0.conv.bias" in state,
        "tanh": "conv_12.0.weight" in state,
        "append_smoothers": any(k.startswith("conv_11_a.") for k in state),
        "resnet_blocks": len(blocks),
        "filters": (f0, f1, f2, up2_in - f2 if skip else up2_in, f4, f5),
        "input_channels": input_channels,
        "skip_connections": skip,
    }


def generator_from_state_dict(
    state: Mapping[str, Tensor], norm_layer: str | None = "infer", what: str = "state dict"
) -> GeneratorJ:
    """A :class:`GeneratorJ` built from the configuration ``state`` implies, with ``state`` loaded strictly,
    in eval mode. ``module.`` prefixes (DataParallel) are dropped. A ValueError names what does not fit."""
    if not all(isinstance(k, str) for k in state):
        raise ValueError(f"{what} does not fit a GeneratorJ: its keys are not all layer names.")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        config = infer_config(state, norm_layer)
        generator = GeneratorJ(**config)
        generator.load_state_dict(state, strict=True)
    except (ValueError, RuntimeError) as err:
        first = " ".join(str(err).split())[:300]
        raise ValueError(f"{what} does not fit a GeneratorJ: {first}") from None
    return generator.eval()


def load_generator(path: str | os.PathLike) -> GeneratorJ:
    """The generator in ``path``, float32 on the CPU, in eval mode.

    Accepts a whole pickled ``GeneratorJ`` (the published files), a state dict, or
    ``{"state_dict": ..., "args": {...}}`` (``args``: constructor arguments, e.g. ``norm_layer``, needed only
    to tell instance norm from none). Opening the file never runs code from it; see :func:`read_generator_file`.
    """
    content = read_generator_file(path)
    norm_layer: str | None = "infer"
    if isinstance(content, GeneratorJ):
        attributes = vars(content)
        if "norm_layer" in attributes:  # the original keeps the class (or None) it normalises with
            pickled = attributes["norm_layer"]
            norm_layer = next((name for name, cls in NORM_LAYERS.items() if pickled is cls), "unknown")
        try:
            state = dict(_module_weights(content))
        except (ValueError, TypeError, AttributeError) as err:  # a crafted layout, not a module's
            raise ValueError(f"{path}: {err}; {_SAVE_HINT}") from None
    elif isinstance(content, Mapping) and isinstance(content.get("state_dict"), Mapping):
        args = content.get("args") or {}
        if not isinstance(args, Mapping):
            raise ValueError(f"{path}: 'args' must be a dict of GeneratorJ constructor arguments.")
        norm_layer = args.get("norm_layer", "infer")
        state = dict(content["state_dict"])
    elif isinstance(content, Mapping) and content and all(isinstance(v, Tensor) for v in content.values()):
        state = dict(content)
    else:
        raise ValueError(f"{path} holds a {type(content).__name__}, not a GeneratorJ generator; {_SAVE_HINT}")
    return generator_from_state_dict(state, norm_layer, what=str(path))


# ------------------------------------------------------------------------------------------------ stylizing


class GeneratorStep:
    """A style step that runs a :class:`GeneratorJ` on frames (N, 3, H, W) in [0, 1].

    Runs on the frames' device, batched over frames (``max_pixels`` input pixels per forward bounds the
    memory), in half precision on CUDA and float32 elsewhere, as the reference ``generate.py``. Frames whose
    sides are not multiples of 4 are padded (edge pixels repeated) and cropped back.
    """

    def __init__(self, generator: GeneratorJ, max_pixels: int = 1 << 20) -> None:
        if generator.input_channels != 3:
            raise ValueError(f"this generator takes {generator.input_channels} input channels (RGB plus guide "
                             "images); only RGB generators (3 channels) can stylize videos.")
        self.generator = generator.eval()
        self.max_pixels = max_pixels
        self._copies: dict[tuple[torch.device, torch.dtype], GeneratorJ] = {}

    def network(self, device: torch.device) -> tuple[GeneratorJ, torch.dtype]:
        """The generator on ``device`` in the precision used there (copies are kept per device)."""
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        if device.type == "cpu":
            return self.generator, dtype
        key = (device, dtype)
        if key not in self._copies:
            self._copies[key] = copy.deepcopy(self.generator).to(device=device, dtype=dtype).eval()
        return self._copies[key], dtype

    def __call__(self, frames: Tensor) -> Tensor:
        net, dtype = self.network(frames.device)
        h, w = frames.shape[-2:]
        pad_h, pad_w = -h % SIZE_MULTIPLE, -w % SIZE_MULTIPLE
        per_forward = max(1, self.max_pixels // ((h + pad_h) * (w + pad_w)))
        outputs = []
        with torch.no_grad():
            for chunk in frames.split(per_forward):
                x = (chunk.to(dtype) - 0.5) / 0.5
                if pad_h or pad_w:
                    x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
                y = net(x)[..., :h, :w]
                if torch.isnan(y).any():
                    raise ValueError("the generator gives NaN for these frames: its weights are broken (NaN or "
                                     "negative variances); use another checkpoint.")
                y = y.clamp(-1, 1)
                outputs.append(((y + 1) / 2).to(frames.dtype))
        return torch.cat(outputs)

    def __repr__(self) -> str:
        return f"GeneratorStep({self.generator.config})"


def generator_files(folder: str | os.PathLike) -> dict[str, Path]:
    """``.pth`` files under ``folder`` (searched recursively, hidden entries skipped), keyed by their path
    relative to ``folder`` without the suffix: the file stem for files directly in ``folder``."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"texler style folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*.pth") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise FileNotFoundError(f"no .pth generator files in {folder}; put the GeneratorJ checkpoints there "
                                "(see docs/styles.md, 'Texler styles')")
    return {p.relative_to(folder).with_suffix("").as_posix(): p for p in files}


__all__ = [
    "GeneratorJ",
    "GeneratorStep",
    "NORM_LAYERS",
    "PICKLED_CLASSES",
    "REFERENCE_CONFIG",
    "UpsamplingLayer",
    "generator_files",
    "generator_from_state_dict",
    "infer_config",
    "load_generator",
    "read_generator_file",
]
