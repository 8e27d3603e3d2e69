"""Named, fixed, per-frame styles built from real images bundled with scikit-image.

A style must change *static* content (colour, texture, tone) a lot while leaving *dynamics* (what moves where)
alone. Every style here is therefore one fixed transform applied to each frame on its own:

* no frame depends on another frame, so stylizing a shuffled clip equals shuffling the stylized clip and no
  flicker is added;
* luminance is mapped *monotonically* (a palette keeps the ordering of brightness, or reverses all of it), so
  edges and the texture that optical flow tracks survive, while colours and tone change completely;
* textures are fixed in image coordinates and only modulate the frame, like paper under a transparency.

A style is a short recipe of two kinds of step, applied to frames (N, 3, H, W) on the input's device:

* :class:`Palette` — luminance -> colour lookup table (a gradient map) built from a reference image: its key
  colours are the dominant hues of the reference at evenly spaced luminance levels;
* :class:`Texture` — a bundled grey texture, mirror-tiled over the frame, multiplied in. Textures are kept
  fine (56 px per copy) and mild (20-25 %): a static pattern competes with the moving content for the flow
  estimator, and coarse or strong ones pull the measured flow towards zero.

More styles are registered at run time with :func:`load_styles`: ``"texler:DIR"`` adds one style per
pretrained stylization network in DIR (the networks the paper used; see :mod:`lit_stbias.pairs.texler`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

#: ITU-R BT.601 luma weights, the ones OpenCV's RGB->GRAY uses, so "luminance" here is what flow sees.
LUMA = (0.299, 0.587, 0.114)


def luminance(frames: Tensor) -> Tensor:
    """(N, 3, H, W) RGB -> (N, H, W) luma with OpenCV's weights."""
    w = frames.new_tensor(LUMA)
    return torch.einsum("nchw,c->nhw", frames, w)


@lru_cache(maxsize=None)
def reference_image(name: str) -> np.ndarray:
    """A scikit-image bundled image as float32 in [0, 1], (H, W, 3) or (H, W); read once (no download)."""
    import skimage.data

    loader = getattr(skimage.data, name, None)
    if loader is None:
        raise ValueError(f"skimage.data has no image {name!r}.")
    image = np.asarray(loader())
    scale = 1.0 if image.dtype == bool else float(np.iinfo(image.dtype).max)
    image = image.astype(np.float32) / scale
    return image[..., :3] if image.ndim == 3 else image


@lru_cache(maxsize=None)
def palette_keys(image: str, levels: int, chroma_gain: float) -> np.ndarray:
    """Key colours (levels, 3) of a gradient map: at each of ``levels`` luminance bands of the reference, the
    mean colour of its dominant hue, re-centred on an evenly spaced target luminance.

    Taking the dominant hue (not the plain mean, which averages to grey) keeps the palette vivid; re-centring
    each key on ``linspace(0, 1)`` keeps the map's luminance monotonic and full range, whatever the
    reference's exposure, so edges of every brightness survive.
    """
    rgb = reference_image(image)
    if rgb.ndim != 3:
        raise ValueError(f"palette image {image!r} must be a colour image.")
    pixels = rgb[::2, ::2].reshape(-1, 3).astype(np.float64)
    luma = pixels @ np.asarray(LUMA)
    chroma = pixels - luma[:, None]  # luminance-free colour; sums with a grey level to give a colour
    order = np.argsort(luma, kind="stable")
    keys = []
    for band, target in zip(np.array_split(order, levels), np.linspace(0.0, 1.0, levels)):
        c = chroma[band]
        hue = np.arctan2(np.sqrt(3.0) * (c[:, 1] - c[:, 2]), 2 * c[:, 0] - c[:, 1] - c[:, 2])
        weight = np.linalg.norm(c, axis=1)
        bins = ((hue + np.pi) / (2 * np.pi) * 12).astype(int) % 12
        dominant = np.argmax(np.bincount(bins, weights=weight, minlength=12))
        pick = bins == dominant
        total = weight[pick].sum()
        mean_chroma = (c[pick] * weight[pick, None]).sum(0) / total if total > 1e-8 else np.zeros(3)
        keys.append(target + chroma_gain * mean_chroma)
    return np.clip(np.asarray(keys, dtype=np.float32), 0.0, 1.0)


@lru_cache(maxsize=None)
def texture_tile(image: str) -> np.ndarray:
    """A grey texture contrast-stretched to [0, 1] (2nd..98th percentile) and mirrored into a seamless tile."""
    tex = reference_image(image)
    if tex.ndim == 3:
        tex = tex @ np.asarray(LUMA, dtype=np.float32)
    lo, hi = np.percentile(tex, [2, 98])
    tex = np.clip((tex - lo) / max(hi - lo, 1e-6), 0, 1)
    tex = np.concatenate([tex, tex[:, ::-1]], axis=1)
    return np.ascontiguousarray(np.concatenate([tex, tex[::-1]], axis=0), dtype=np.float32)


@dataclass(frozen=True)
class Palette:
    """Gradient map: frame luminance (optionally through ``gamma``, optionally ``inverted``) -> colour of the
    reference image ``image`` at that luminance, linearly interpolated between ``levels`` key colours."""

    image: str
    levels: int = 6
    chroma_gain: float = 1.6
    gamma: float = 1.0
    invert: bool = False

    def colours(self, luma: Tensor) -> Tensor:
        """The map itself: luminance (...) in [0, 1] -> colours (..., 3)."""
        keys = torch.from_numpy(palette_keys(self.image, self.levels, self.chroma_gain)).to(luma)
        luma = luma.clamp(0, 1)
        if self.gamma != 1.0:
            luma = luma.pow(self.gamma)
        if self.invert:
            luma = 1.0 - luma
        pos = luma * (self.levels - 1)
        lower = pos.floor().clamp(max=self.levels - 2).long()
        return torch.lerp(keys[lower], keys[lower + 1], (pos - lower).unsqueeze(-1))

    def __call__(self, frames: Tensor) -> Tensor:
        # A lookup table of the map at LUT_SIZE luminance levels: one gather per pixel instead of the power,
        # two gathers and a lerp (the palette is most of a view's cost); off by < 0.3% of the range.
        table = palette_table(self).to(frames)
        index = (luminance(frames).clamp(0, 1) * (LUT_SIZE - 1)).round_().long()
        return table[index].permute(0, 3, 1, 2)


LUT_SIZE = 1024


@lru_cache(maxsize=None)
def palette_table(palette: Palette) -> Tensor:
    """(LUT_SIZE, 3) colours of ``palette`` at evenly spaced luminance levels, computed once per palette."""
    return palette.colours(torch.linspace(0, 1, LUT_SIZE, dtype=torch.float64)).float()


@dataclass(frozen=True)
class Texture:
    """Multiply the frame by a texture fixed in image coordinates: ``1 - strength * (1 - texture)``.

    One copy of the texture spans ``period`` pixels (short side), whatever the frame size: the grain stays
    the same in pixels, which is what the flow estimator (and a network's first layers) see; a texture scaled
    with the frame would grow coarse on large frames and compete with the real motion."""

    image: str
    strength: float = 0.25
    period: int = 56

    def __call__(self, frames: Tensor) -> Tensor:
        tex = texture_layer(self.image, self.period, *frames.shape[-2:]).to(frames)
        return frames * (1.0 - self.strength * (1.0 - tex))


@lru_cache(maxsize=64)
def texture_layer(image: str, period: int, h: int, w: int) -> Tensor:
    """The texture tiled over an (h, w) frame, one copy per ``period`` pixels: (1, 1, h, w) in [0, 1].
    Cached per frame size: resizing the tile is the costliest part of a textured style."""
    tile = torch.from_numpy(texture_tile(image))[None, None]
    th, tw = tile.shape[-2:]  # the mirrored tile holds two copies per axis
    size = (round(2 * period * th / min(th, tw)), round(2 * period * tw / min(th, tw)))
    tile = F.interpolate(tile, size=size, mode="bilinear", align_corners=False, antialias=True)
    reps = (-(-h // size[0]), -(-w // size[1]))
    return tile.repeat(1, 1, *reps)[..., :h, :w].clamp(0, 1).contiguous()


Step = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Style:
    """A named recipe: steps applied in order to frames (N, 3, H, W) in [0, 1]. ``source`` is the file a
    loaded style comes from (empty for the built-in styles)."""

    name: str
    steps: tuple[Step, ...]
    description: str = ""
    source: str = ""

    def __call__(self, frames: Tensor) -> Tensor:
        for step in self.steps:
            frames = step(frames)
        return frames.clamp(0.0, 1.0)


STYLES: dict[str, Style] = {
    style.name: style
    for style in (
        Style("astronaut", (Palette("astronaut"),), "gradient map from the astronaut portrait"),
        Style(
            "hubble",
            (Palette("hubble_deep_field", invert=True),),
            "negative gradient map from the Hubble deep field",
        ),
        Style(
            "brick",
            (Texture("brick", 0.2), Palette("chelsea", chroma_gain=2.5, gamma=0.6)),
            "brick texture coloured with a bright tabby-cat palette",
        ),
        Style(
            "gravel",
            (Palette("immunohistochemistry", invert=True), Texture("gravel")),
            "negative stain palette on gravel",
        ),
        Style(
            "rocket",
            (Palette("rocket", chroma_gain=2.5, gamma=1.6),),
            "darkened night-blue palette of the rocket launch",
        ),
        Style("colorwheel", (Palette("colorwheel"),), "rainbow gradient map from the colour wheel"),
    )
}
"""The registered styles, by name. Values were chosen with ``benchmarks/style_quality.py`` (see docs/styles.md)."""


BUILTIN_STYLES = tuple(STYLES)
"""Names of the styles defined here; loaded styles cannot take them."""

def available_styles() -> list[str]:
    """Names of the registered styles, in registration order (built-in first, then loaded ones)."""
    return list(STYLES)


def get_style(name: str) -> Style:
    """The style called ``name``; a ValueError lists the available ones otherwise."""
    try:
        return STYLES[name]
    except (KeyError, TypeError):
        hint = (" (load texler:DIR styles with lit_stbias.pairs.load_styles first)"
                if isinstance(name, str) and ":" in name else "")
        raise ValueError(f"unknown style {name!r}{hint}; available styles: {', '.join(STYLES)}.") from None


def register_style(style: Style) -> None:
    """Add ``style`` to the registry, so every function that takes a style name takes it.

    Registering a style again from the same source replaces it (reloading a file is harmless); a built-in
    name, or a name already loaded from another source, is a ValueError."""
    _refuse_clash(style)
    STYLES[style.name] = style


def _refuse_clash(style: Style) -> None:
    if style.name in BUILTIN_STYLES:
        raise ValueError(f"style name {style.name!r} is a built-in style's; rename {style.source or 'the new style'}.")
    known = STYLES.get(style.name)
    if known is not None and known.source != style.source:
        raise ValueError(f"style {style.name!r} is already loaded from {known.source}; rename "
                         f"{style.source or 'the new style'} so the names differ.")


def load_styles(spec: str | Sequence[str]) -> list[str]:
    """Style names from a comma-separated spec (or a list of entries), loading the styles it names.

    Each entry is a registered style name or ``texler:DIR``, which loads every ``.pth`` file under
    DIR (a pretrained GeneratorJ of Texler et al., as the paper's release uses; never unpickled unsafely) as
    a style named by the file's path relative to DIR without ``.pth`` (its stem, for files directly in DIR).
    Returns the names in order, without repeats. Every file of an entry is loaded before any is registered,
    so a bad file leaves the registry as it was. Bad entries raise one ValueError / FileNotFoundError line.

    >>> load_styles("astronaut, hubble")
    ['astronaut', 'hubble']
    """
    entries = [e.strip() for e in (spec.split(",") if isinstance(spec, str) else spec)]
    if not entries or not all(entries):
        raise ValueError(f"empty style entry in {spec!r}; give style names or texler:DIR entries, comma-separated.")
    names: list[str] = []
    for entry in entries:
        kind, sep, folder = entry.partition(":")
        if sep and kind == "texler":
            loaded = _load_texler(folder.strip())
            for style in loaded:  # all checked before any is registered
                _refuse_clash(style)
            for style in loaded:
                STYLES[style.name] = style
            names += [style.name for style in loaded]
        else:
            get_style(entry)
            names.append(entry)
    return list(dict.fromkeys(names))


def _load_texler(folder: str) -> list[Style]:
    from lit_stbias.pairs.texler import GeneratorStep, generator_files, load_generator

    if not folder:
        raise ValueError("texler: needs a folder of .pth generator files, e.g. texler:checkpoints/texler.")
    styles = []
    for name, path in generator_files(folder).items():
        try:
            step = GeneratorStep(load_generator(path))
        except ValueError as err:
            raise ValueError(str(err) if str(path) in str(err) else f"{path}: {err}") from None
        styles.append(Style(name, (step,), f"Texler et al. GeneratorJ from {path.name}", str(path.resolve())))
    return styles
