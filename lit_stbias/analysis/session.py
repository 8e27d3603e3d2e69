"""`ProbeSession`: the one place that turns (model, data, number of pairs, seed, clip settings) into pairs and
runs the probe over them.

Two rules live here and nowhere else:

- **which items** (:func:`choose_items`): all of them when the source has no more than asked for, else a
  seeded random choice, in source order. A source with fewer items than asked for is an error unless the
  caller allows measuring fewer pairs.
- **which pairs** (:func:`make_pairs`): two-stream models (``input_spec.two_stream``) get VOS pairs (RGB
  frame and flow image; RTNet's two frames with forward and backward flow images); every other model gets
  action pairs, its clip cut to every ``temporal_stride``-th frame and packed as the model takes it (one
  tensor, or SlowFast's ``[slow, fast]``). Real videos are cut as the authors' release cuts them
  (:class:`ReleaseInput`: a window, each pathway subsampled from it, a centre crop); styles that run a network
  are applied on the model's device, batched (:func:`action_views`).

``analyze.py``, the training-time ``BiasMonitor``, the notebooks, the demo and the benchmarks all go through
this class, so the bias the monitor logs and the bias ``analyze.py`` reports for the same checkpoint and the
same pairs are the same numbers.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Mapping, NamedTuple, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset, Subset
from tqdm.auto import tqdm

from lit_stbias.analysis.clips import VIDEO_ONLY, ClipSettings
from lit_stbias.analysis.document import DEFAULT_THRESHOLDS, BiasDocument
from lit_stbias.analysis.intervals import check_method
from lit_stbias.data import uniform_subsample
from lit_stbias.metrics import BiasResult
from lit_stbias.pairs import STYLES, ActionPairs, VOSPairs, item_generator, load_styles, pair_loader, vos_frames
from lit_stbias.pairs.datasets import ActionClips, action_views
from lit_stbias.pairs.texler import GeneratorStep
from lit_stbias.probe import BiasProbe

PairRule = Callable[[Dataset, int], Dataset]


def choose_items(num_items: int, count: int, seed: int) -> list[int]:
    """Indices of the items measured for ``seed``: all when ``num_items <= count``, else a seeded random choice
    of ``count``, sorted (many videos, not one video's neighbouring frames)."""
    if num_items <= count:
        return list(range(num_items))
    order = torch.randperm(num_items, generator=item_generator(seed, -1))[:count].sort().values
    return order.tolist()


def is_vos(model: nn.Module) -> bool:
    spec = getattr(model, "input_spec", None)
    return bool(getattr(spec, "two_stream", False))


def make_pairs(items: Dataset, model: nn.Module, clip: ClipSettings, seed: int,
               styles: Sequence[str] | None = None) -> Dataset:
    """The pair dataset of ``items`` in the input form ``model`` takes (see the module docstring), drawing style
    pairs from ``styles`` (default: every registered style). Items are stylized on the model's device later
    (:class:`~lit_stbias.pairs.datasets.ActionClips`) when a style runs a network."""
    if is_vos(model):
        return VOSPairs(items, styles=styles, seed=seed, spec=getattr(model, "input_spec", None))
    spec = getattr(model, "input_spec", None)
    stride = clip.stride()
    if clip.window is not None and (clip.short_side not in (None, clip.size) or windowed_pathways(spec, clip)):
        pathways: Any = ReleaseInput(spec, clip)
    elif spec is not None:
        from lit_stbias.models import ClipInput

        pathways = ClipInput(spec, stride)
    else:
        pathways = _Stride(stride) if stride > 1 else None
    pairs = ActionClips if styles is not None and any(runs_network(s) for s in styles) else ActionPairs
    return pairs(items, styles=styles, seed=seed, pathways=pathways)


def runs_network(style: str) -> bool:
    """Whether a registered style runs a network (a Texler generator), best applied on the model's device
    (``False`` for the names a pre-stylized dataset brings, which are not registered styles)."""
    return style in STYLES and any(isinstance(step, GeneratorStep) for step in STYLES[style].steps)


def windowed_pathways(spec: Any, clip: ClipSettings) -> list[int] | None:
    """Frames of each pathway a multi-pathway model (SlowFast) takes from the whole window, as the release
    subsamples slow and fast from one window; ``None`` for single-pathway models and whole-clip sources."""
    alpha = getattr(spec, "alpha", None)
    if not alpha or clip.window in (None, "spread"):
        return None
    fast = len(range(0, clip.num_frames, clip.stride()))
    return [fast // alpha, fast]


class ReleaseInput:
    """A clip as a video folder read it -> the model's input, as the release makes it (picklable, for workers).

    The source resized the frames' short side to ``clip.short_side`` and cut the centre square; this cuts the
    centre ``clip.size`` square of it (the release's ``ShortSideScale`` then ``CenterCropVideo``). A SlowFast
    clip is the whole window (``sampling_rate x num_frames`` frames), and each pathway takes its frames
    uniformly from it (``[slow, fast]``, the release's two ``UniformTemporalSubsample``); any other model's
    clip is already its frames and is packed as :class:`~lit_stbias.models.ClipInput` packs it.
    """

    def __init__(self, spec: Any, clip: ClipSettings) -> None:
        self.spec, self.stride, self.size = spec, clip.stride(), clip.size
        self.pathway_frames = windowed_pathways(spec, clip)

    def __call__(self, video: torch.Tensor) -> Any:
        if self.size is not None and (video.shape[-2] > self.size or video.shape[-1] > self.size):
            top, left = (video.shape[-2] - self.size) // 2, (video.shape[-1] - self.size) // 2
            video = video[..., top: top + self.size, left: left + self.size]
        if self.pathway_frames is not None:
            length = video.shape[-3]
            return [video[..., uniform_subsample(length, t), :, :] for t in self.pathway_frames]
        if self.stride > 1:
            video = video[..., :: self.stride, :, :]
        return self.spec.pack(video) if self.spec is not None else video


def indexing_skips(source: Dataset) -> list[dict[str, Any]]:
    """What a source left out when it was built (``source.skipped``: unreadable, empty, too short or missing
    files, each ``{"path", "reason"}``); sources without that list left out nothing."""
    return [dict(entry) for entry in getattr(source, "skipped", None) or []]


def _left_out(skipped: Sequence[Mapping[str, Any]], shown: int = 3) -> str:
    """`` (2 more left out: a.mp4 unreadable, b.mp4 too short)`` for a one-line message, or nothing."""
    if not skipped:
        return ""
    names = [f"{str(s.get('path', '?')).rsplit('/', 1)[-1]} {str(s.get('reason', '')).split(':', 1)[0]}"
             for s in skipped[:shown]]
    more = f", and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return f" ({len(skipped)} more left out: {', '.join(names)}{more})"


class _Stride:
    """Every ``stride``-th frame of a (C, T, H, W) clip, for models without an input spec (picklable)."""

    def __init__(self, stride: int) -> None:
        self.stride = stride

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        return video[..., :: self.stride, :, :]


class Measurement(NamedTuple):
    """One seed's results: one ``BiasResult`` per tap in network order, and what was skipped: the files the source
    left out when it was built (``index`` None) and the chosen items that failed to decode, none replaced."""

    results: dict[str, BiasResult]
    skipped: list[dict[str, Any]]


class ProbeSession:
    """Pairs from a data source and the probe over them, for one model.

    Args:
        model: the network (zoo models declare ``input_spec`` and ``taps``; others are tapped by dotted
            module names and take plain clips).
        data: a ``lit_stbias.data.from_spec`` string (``synthetic:motion``, a folder, ...) or a dataset of
            video items (``{"video": ...}``), VOS frames (``{"frame", "flow", ...}``) or a VOS video source.
        num_pairs: pairs per factor: videos (action) or frames (VOS) per seed.
        clip: :class:`ClipSettings` (clip length, size, temporal stride, synthetic sources' seed and size, the
            window, resize and crop of real videos, the styles).
        taps: tap names (default: every tap the model declares).
        threshold, layer_score, pool_tokens: passed to :class:`~lit_stbias.probe.BiasProbe`.
        thresholds: the λ sweep recorded in the document.
        batch_size, num_workers: of the pair loader.
        allow_fewer_pairs: measure what the source has when it holds fewer items than ``num_pairs``
            (default: refuse, saying how many there are).
        pairs: a different pair rule, ``pairs(items, seed) -> Dataset`` of views (default: :func:`make_pairs`).
        interval: ``"normal"`` or ``"student-t"`` (see :mod:`lit_stbias.analysis.intervals`).
        describe: what the document says about the model (``model``, ``preset``, ``checkpoint``, ``task``,
            ``init_seed``) and, for a dataset given as ``data``, its name (``data``). A zoo model's name and
            preset choose the release's window and crop for real videos.

    >>> from lit_stbias.models import build
    >>> session = ProbeSession(build("slow"), "synthetic:motion", num_pairs=2, taps=["stage5"])
    >>> doc = session.run(seeds=[0], progress=False)
    >>> doc.taps, doc.tap("stage5")["num_pairs"]
    (['stage5'], {'dynamic': 2, 'static': 2})
    """

    def __init__(
        self,
        model: nn.Module,
        data: str | Dataset,
        num_pairs: int = 64,
        clip: ClipSettings | None = None,
        taps: Sequence[str] | None = None,
        threshold: float = 0.5,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
        layer_score: str = "pooled",
        pool_tokens: str | None = None,
        batch_size: int = 8,
        num_workers: int = 0,
        allow_fewer_pairs: bool = False,
        pairs: PairRule | None = None,
        interval: str = "normal",
        describe: Mapping[str, Any] | None = None,
    ) -> None:
        if num_pairs < 2:
            raise ValueError(f"--num-pairs must be at least 2 (per factor), got {num_pairs}.")
        if batch_size < 1:
            raise ValueError(f"--batch-size must be positive, got {batch_size}.")
        self.model, self.data, self.num_pairs = model, data, int(num_pairs)
        self.describe = dict(describe or {})
        zoo = self._zoo_model()
        clip = clip or ClipSettings()
        if isinstance(data, str):  # what the document records: the settings with their defaults filled in
            clip = clip.resolved(getattr(model, "input_spec", None), is_vos(model), num_pairs,
                                 synthetic=data.startswith("synthetic"), zoo=zoo)
        else:
            given = [name for name in VIDEO_ONLY if getattr(clip, name) is not None]
            if given:
                raise ValueError(f"{', '.join(given)} set for a dataset object: it reads its clips itself; pass "
                                 "the settings to the dataset (e.g. sampling=ClipSampling(...)) or give a --data "
                                 "spec.")
        self.clip = clip.updated(temporal_stride=clip.stride())  # a bad stride fails here, not in a worker
        self.taps = list(taps) if taps is not None else None
        self.threshold, self.thresholds = float(threshold), [float(t) for t in thresholds]
        self.layer_score, self.pool_tokens = layer_score, pool_tokens
        self.batch_size, self.num_workers = batch_size, num_workers
        self.allow_fewer_pairs, self.pair_rule = allow_fewer_pairs, pairs
        self.interval = check_method(interval)
        self.tap_modules = self._tap_modules()  # unknown taps fail here, before any data is read
        self._sources: dict[Any, Dataset] = {}
        self._styles: list[str] | None = None
        if self.clip.styles is not None and not _prestylized(data):
            self._styles = load_styles(self.clip.styles)  # a bad style folder fails here, once

    # -- the items -------------------------------------------------------------------------------------------
    @property
    def spec(self) -> str | None:
        return self.data if isinstance(self.data, str) else None

    @property
    def name(self) -> str:
        """The data as messages and documents name it: the spec, the given name, or the dataset's class."""
        return self.spec or self.describe.get("data") or type(self.data).__name__

    def _zoo_model(self) -> tuple[str, str] | None:
        """``(canonical name, preset)`` of a zoo model named in ``describe`` (its preset resolved, and recorded:
        a pytorchvideo name such as ``x3d_m`` brings its own); ``None`` for user models and bare modules."""
        from lit_stbias.models import resolve

        name = self.describe.get("model")
        if not isinstance(name, str) or ":" in name:
            return None
        try:
            zoo = resolve(name, self.describe.get("preset"))
        except ValueError:
            return None
        self.describe["preset"] = zoo[1]
        return zoo

    def _tap_modules(self) -> dict[str, str]:
        """Tap -> the module it reads; a token tap also says which tokens its pooling averages."""
        probe = self.probe()
        modules = {}
        for name, (_, tap) in probe.resolved.items():
            where = tap.module + ("" if tap.index is None else f"[{tap.index}]")
            if tap.skip_tokens:
                where += (" (mean of all tokens)" if tap.pool_tokens == "all" else
                          f" (mean of the patch tokens: the first {tap.skip_tokens} left out)")
            modules[name] = where
        return modules

    def source(self, seed: int) -> Dataset:
        """The items pairs are made from for ``seed``: videos (action) or frames (VOS)."""
        vos = is_vos(self.model)
        if not isinstance(self.data, str):
            source = self.data
        else:
            from lit_stbias.data import from_spec, skip_warnings_hidden

            kwargs = self.clip.source_kwargs(self.data, vos, seed)
            key = tuple(sorted(kwargs.items()))
            if self.clip.window is not None:  # video folders: indexed once, windows drawn per seed
                if (key, seed) not in self._sources:
                    sampling = self.clip.sampling(seed, whole_window=bool(windowed_pathways(self.input_spec,
                                                                                            self.clip)))
                    if key not in self._sources:
                        with skip_warnings_hidden():  # the document and the errors list the skipped files
                            self._sources[key] = from_spec(self.data, **kwargs, sampling=sampling)
                    self._sources[key, seed] = _sampled(self._sources[key], sampling)
                key = (key, seed)
            elif key not in self._sources:
                with skip_warnings_hidden():  # the document and the errors list the skipped files instead
                    self._sources[key] = from_spec(self.data, **kwargs)
            source = self._sources[key]
        name = self.name
        if vos:
            if getattr(source, "kind", None) == "action":
                raise ValueError(f"{name!r} is not a VOS dataset (frames with flow and masks); "
                                 "use synthetic-vos[:diffuse] or a DAVIS-like folder.")
            source = vos_frames(source, self.input_spec)  # RTNet: frames with both flows and a partner
        elif getattr(source, "kind", "action") != "action" or hasattr(source, "frames"):
            raise ValueError(f"{name!r} is a VOS dataset but {type(self.model).__name__} is an action model.")
        return source

    def items(self, seed: int) -> Dataset:
        """The items measured for ``seed`` (:func:`choose_items`), refusing too few unless allowed."""
        source = self.source(seed)
        available = len(source)
        what = "frames" if is_vos(self.model) else "videos"
        name = self.name
        if available == 0:
            raise ValueError(f"{name!r} holds no readable {what} (check the path, layout and skipped files).")
        if available < self.num_pairs and not self.allow_fewer_pairs:
            raise ValueError(f"{self.num_pairs} pairs asked for but {name!r} holds {available} {what}"
                             f"{_left_out(indexing_skips(source))}; ask for --num-pairs {available} or fewer, or "
                             f"pass --allow-fewer-pairs to measure the {available} there are.")
        if available < 2:
            raise ValueError(f"{name!r} gives {available} {what[:-1]}; at least 2 are needed for pairs of each kind.")
        chosen = choose_items(available, self.num_pairs, seed)
        return source if len(chosen) == available else Subset(source, chosen)

    @property
    def input_spec(self) -> Any:
        return getattr(self.model, "input_spec", None)

    def styles(self, seed: int) -> list[str] | None:
        """The style names pairs are drawn from (``clip.styles``; ``None``: every registered style). A
        pre-stylized source offers its own (``style_1`` ...): the names must be among them."""
        if self.clip.styles is None or self._styles is not None:
            return self._styles
        source = self.source(seed)
        offered = list(getattr(source, "styles", None) or [])
        names = list(dict.fromkeys(e.strip() for e in self.clip.styles.split(",") if e.strip()))
        unknown = [n for n in names if n not in offered]
        if unknown or not offered:
            raise ValueError(f"--styles {self.clip.styles}: {self.name!r} is pre-stylized with styles "
                             f"{', '.join(offered) or 'none'}; name two or more of those (unknown: "
                             f"{', '.join(unknown)}).")
        return names

    def pairs(self, seed: int) -> Dataset:
        """The pair dataset of ``seed``: the chosen items, turned into views by the pair rule."""
        items = self.items(seed)
        if self.pair_rule is not None:
            return self.pair_rule(items, seed)
        return make_pairs(items, self.model, self.clip, seed, styles=self.styles(seed))

    def loader(self, seed: int, rank: int | None = None, world_size: int | None = None):
        """This process's share of the pairs, batched (``pair_loader``: no padding, each pair once)."""
        pairs = self.pairs(seed)
        world = world_size or (torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1)
        if len(pairs) < world:  # a process without pairs would have no metric to merge
            raise ValueError(f"{len(pairs)} pairs cannot be split over {world} processes; "
                             "use more pairs or fewer devices.")
        return pair_loader(pairs, self.batch_size, num_workers=self.num_workers, rank=rank, world_size=world_size)

    def check(self, seed: int) -> None:
        """Read the first pair of ``seed``: a wrong size, an empty or unreadable source fails here, early."""
        pairs = self.pairs(seed)
        pairs[0]

    # -- measuring -------------------------------------------------------------------------------------------
    def probe(self, autocast: Callable[[], ContextManager] | None = None) -> BiasProbe:
        return BiasProbe(self.model, self.taps, self.threshold, self.layer_score, autocast=autocast,
                         pool_tokens=self.pool_tokens)

    def measure(
        self,
        seed: int,
        batches: Iterable[Mapping[str, Any]] | None = None,
        autocast: Callable[[], ContextManager] | None = None,
        convert: Callable[[Any], Any] | None = None,
        progress: bool = False,
    ) -> Measurement:
        """Probe the pairs of ``seed`` (or the given ``batches`` of them, e.g. cached); in a distributed run each
        process probes its share and every process gets the results of all pairs and all skipped items.

        ``autocast`` wraps the forward passes (Fabric's ``autocast``, a precision plugin's ``forward_context``);
        ``convert`` is applied to every batch of views first (a precision plugin's ``convert_input``).
        """
        batches = self.loader(seed) if batches is None else batches
        probe = self.probe(autocast)
        left_out = [{"index": None, **entry, "seed": seed} for entry in indexing_skips(self.source(seed))]
        skipped: list[dict[str, Any]] = []
        total = len(batches) if hasattr(batches, "__len__") else None
        for views in tqdm(batches, total=total, desc=f"seed {seed}", disable=not progress, unit="batch"):
            skipped += [{**item, "seed": seed} for item in views.get("skipped", [])]
            if "clip" in views:  # ActionClips: stylized here, on the model's device
                views = action_views(views, probe.device)
            if "anchor" in views:
                probe.update(convert(views) if convert is not None else views)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, skipped)
            skipped = sorted((s for part in gathered for s in part), key=lambda s: s["index"])
        return Measurement(probe.compute(), left_out + skipped)

    def document(self, measurements: Mapping[int, Measurement], units: bool = True, **settings: Any) -> BiasDocument:
        """The :class:`BiasDocument` of measurements by seed; ``settings`` add to or override what the session
        knows (e.g. ``provenance``, ``devices``, ``context``)."""
        fields: dict[str, Any] = {
            "data": self.name,
            "clip": self.clip, "tap_modules": self.tap_modules, "threshold": self.threshold,
            "layer_score_mode": self.layer_score, "pairs_asked": self.num_pairs, "interval": self.interval,
            "skipped": [s for m in measurements.values() for s in m.skipped],
            **{k: self.describe.get(k) for k in ("model", "preset", "checkpoint", "task", "init_seed")},
        }
        fields.update(settings)
        results = {seed: m.results for seed, m in measurements.items()}
        return BiasDocument.from_results(results, thresholds=self.thresholds, units=units, **fields)

    def run(
        self,
        seeds: Sequence[int] = (0,),
        device: torch.device | str | None = None,
        autocast: Callable[[], ContextManager] | None = None,
        progress: bool = True,
        **settings: Any,
    ) -> BiasDocument:
        """Measure every seed on ``device`` (default: where the model is) and return the document."""
        if not seeds:
            raise ValueError("give at least one seed.")
        if device is not None:
            self.model.to(device)
        measurements = {int(s): self.measure(int(s), autocast=autocast, progress=progress) for s in seeds}
        return self.document(measurements, **settings)


def _prestylized(data: str | Dataset) -> bool:
    """Whether ``data`` is a pre-stylized dataset, or a ``--data`` spec naming a folder of one (``style_<k>/``)."""
    from lit_stbias.data import PrestylizedVideos
    from lit_stbias.data.spec import detect_folder

    if not isinstance(data, str):
        return isinstance(data, PrestylizedVideos)
    path = Path(data).expanduser()
    return path.is_dir() and detect_folder(path) is PrestylizedVideos


def _sampled(source: Dataset, sampling: Any) -> Dataset:
    """The indexed video folder ``source`` cutting its clips with ``sampling`` (another seed's windows): a
    shallow copy, so the videos are not probed again."""
    if getattr(source, "sampling", sampling) is sampling:
        return source
    copy_ = copy.copy(source)
    copy_.sampling = sampling
    return copy_


__all__ = ["Measurement", "PairRule", "ProbeSession", "ReleaseInput", "choose_items", "is_vos", "make_pairs",
           "runs_network", "windowed_pathways"]
