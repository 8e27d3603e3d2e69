"""`ProbeSession`: the one place that turns (model, data, number of pairs, seed, clip settings) into pairs and
runs the probe over them.

Two rules live here and nowhere else:

- **which items** (:func:`choose_items`): all of them when the source has no more than asked for, else a
  seeded random choice, in source order. A source with fewer items than asked for is an error unless the
  caller allows measuring fewer pairs.
- **which pairs** (:func:`make_pairs`): two-stream models (``input_spec.two_stream``) get VOS pairs (RGB
  frame and flow image); every other model gets action pairs, its clip cut to every ``temporal_stride``-th
  frame and packed as the model takes it (one tensor, or SlowFast's ``[slow, fast]``).

``analyze.py``, the training-time ``BiasMonitor``, the notebooks, the demo and the benchmarks all go through
this class, so the bias the monitor logs and the bias ``analyze.py`` reports for the same checkpoint and the
same pairs are the same numbers.
"""
from __future__ import annotations

from typing import Any, Callable, ContextManager, Iterable, Mapping, NamedTuple, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset, Subset
from tqdm.auto import tqdm

from lit_stbias.analysis.clips import ClipSettings
from lit_stbias.analysis.document import DEFAULT_THRESHOLDS, BiasDocument
from lit_stbias.analysis.intervals import check_method
from lit_stbias.metrics import BiasResult
from lit_stbias.pairs import ActionPairs, VOSPairs, item_generator, pair_loader
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


def make_pairs(items: Dataset, model: nn.Module, clip: ClipSettings, seed: int) -> Dataset:
    """The pair dataset of ``items`` in the input form ``model`` takes (see the module docstring)."""
    if is_vos(model):
        return VOSPairs(items, seed=seed)
    spec = getattr(model, "input_spec", None)
    stride = clip.stride()
    if spec is not None:
        from lit_stbias.models import ClipInput

        return ActionPairs(items, seed=seed, pathways=ClipInput(spec, stride))
    return ActionPairs(items, seed=seed, pathways=_Stride(stride) if stride > 1 else None)


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
        clip: :class:`ClipSettings` (clip length, size, temporal stride, synthetic sources' seed and size).
        taps: tap names (default: every tap the model declares).
        threshold, layer_score, pool_tokens: passed to :class:`~lit_stbias.probe.BiasProbe`.
        thresholds: the λ sweep recorded in the document.
        batch_size, num_workers: of the pair loader.
        allow_fewer_pairs: measure what the source has when it holds fewer items than ``num_pairs``
            (default: refuse, saying how many there are).
        pairs: a different pair rule, ``pairs(items, seed) -> Dataset`` of views (default: :func:`make_pairs`).
        interval: ``"normal"`` or ``"student-t"`` (see :mod:`lit_stbias.analysis.intervals`).
        describe: what the document says about the model (``model``, ``preset``, ``checkpoint``, ``task``,
            ``init_seed``) and, for a dataset given as ``data``, its name (``data``).

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
        clip = clip or ClipSettings()
        if isinstance(data, str):  # what the document records: the settings with their defaults filled in
            clip = clip.resolved(getattr(model, "input_spec", None), is_vos(model), num_pairs,
                                 synthetic=data.startswith("synthetic"))
        self.clip = clip.updated(temporal_stride=clip.stride())  # a bad stride fails here, not in a worker
        self.taps = list(taps) if taps is not None else None
        self.threshold, self.thresholds = float(threshold), [float(t) for t in thresholds]
        self.layer_score, self.pool_tokens = layer_score, pool_tokens
        self.batch_size, self.num_workers = batch_size, num_workers
        self.allow_fewer_pairs, self.pair_rule = allow_fewer_pairs, pairs
        self.interval = check_method(interval)
        self.describe = dict(describe or {})
        self.tap_modules = self._tap_modules()  # unknown taps fail here, before any data is read
        self._sources: dict[Any, Dataset] = {}

    # -- the items -------------------------------------------------------------------------------------------
    @property
    def spec(self) -> str | None:
        return self.data if isinstance(self.data, str) else None

    @property
    def name(self) -> str:
        """The data as messages and documents name it: the spec, the given name, or the dataset's class."""
        return self.spec or self.describe.get("data") or type(self.data).__name__

    def _tap_modules(self) -> dict[str, str]:
        probe = self.probe()
        return {name: tap.module + ("" if tap.index is None else f"[{tap.index}]")
                for name, (_, tap) in probe.resolved.items()}

    def source(self, seed: int) -> Dataset:
        """The items pairs are made from for ``seed``: videos (action) or frames (VOS)."""
        vos = is_vos(self.model)
        if not isinstance(self.data, str):
            source = self.data
        else:
            from lit_stbias.data import from_spec, skip_warnings_hidden

            kwargs = self.clip.source_kwargs(self.data, vos, seed)
            key = tuple(sorted(kwargs.items()))
            if key not in self._sources:
                with skip_warnings_hidden():  # the document and the errors list the skipped files instead
                    self._sources[key] = from_spec(self.data, **kwargs)
            source = self._sources[key]
        name = self.name
        if vos:
            if hasattr(source, "frames"):
                source = source.frames()
            elif getattr(source, "kind", None) == "action":
                raise ValueError(f"{name!r} is not a VOS dataset (frames with flow and masks); "
                                 "use synthetic-vos[:diffuse] or a DAVIS-like folder.")
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

    def pairs(self, seed: int) -> Dataset:
        """The pair dataset of ``seed``: the chosen items, turned into views by the pair rule."""
        items = self.items(seed)
        if self.pair_rule is not None:
            return self.pair_rule(items, seed)
        return make_pairs(items, self.model, self.clip, seed)

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


__all__ = ["Measurement", "PairRule", "ProbeSession", "choose_items", "is_vos", "make_pairs"]
