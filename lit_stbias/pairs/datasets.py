"""Pair datasets over any video source, and a loader that splits them across DDP ranks without padding.

Every item's randomness (style pair, frame order, flow jitter) comes from a generator seeded by
``(seed, index)`` alone, so item i is the same in any order, in any worker, on any rank: a run measured on one
GPU and on eight sees exactly the same pairs.

A source item that cannot be decoded (the source raises ``lit_stbias.data.VideoReadError``, e.g. its
``UnreadableVideo`` subclass) becomes a *skipped* item, ``{"skipped": {"index", "path", "reason"}}``; the
collate function drops it from the batch and lists it under ``batch["skipped"]``. No other video takes its
place, so no video is measured twice, and whoever runs the loader can report what was left out.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data._utils.collate import default_collate

from lit_stbias.data import VideoReadError
from lit_stbias.pairs.stylize import check_video, stylize
from lit_stbias.pairs.views import (
    make_action_views,
    random_style_pair,
    shuffle_permutation,
    views_from_styled,
)

#: source keys copied into pair items when present (what reports need to name and score a video)
PASSTHROUGH_KEYS = ("label", "video_id")
_U64 = (1 << 64) - 1


def item_generator(seed: int, index: int) -> torch.Generator:
    """A CPU generator seeded from (seed, index) only, well mixed so neighbouring items are unrelated.

    Any integers work, negative ones included (e.g. ``index=-1`` for a draw that belongs to no item)."""
    words = [int(v) & _U64 for v in (seed, index)]  # SeedSequence takes non-negative entropy only
    state = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _style_pool(styles: Sequence[str] | None, owner: str) -> list[str] | None:
    """Distinct style names, in order; names are checked when used, because pre-stylized sources bring their
    own (e.g. ``style_1``) that the registry does not know."""
    if styles is None:
        return None
    if isinstance(styles, str):
        raise ValueError(f"{owner} styles must be a sequence of names, not the single string {styles!r}.")
    pool = list(dict.fromkeys(styles))
    if len(pool) < 2:
        raise ValueError(f"{owner} needs at least 2 distinct styles; got {list(styles)}.")
    return pool


def _metadata(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in PASSTHROUGH_KEYS if k in item}


def skipped_item(index: int, err: VideoReadError) -> dict[str, Any]:
    """The item that stands for a source item that could not be decoded: which one, where, and why."""
    path = getattr(err, "path", None)
    reason = getattr(err, "reason", None) or " ".join(str(err).split())
    return {"skipped": {"index": int(index), "path": None if path is None else str(path), "reason": str(reason)}}


def _read(source: Dataset, index: int) -> Any:
    """``source[index]``, or a skipped item when the video cannot be decoded."""
    try:
        return source[index]
    except VideoReadError as err:
        return skipped_item(index, err)


def _require(item: Any, keys: Sequence[str], source: str) -> Mapping[str, Any]:
    if not isinstance(item, Mapping) or not any(k in item for k in keys):
        got = list(item) if isinstance(item, Mapping) else type(item).__name__
        raise ValueError(f"{source} items must be dicts with {' or '.join(map(repr, keys))}; got {got}.")
    return item


class ActionPairs(Dataset):
    """Anchor / dynamic / static views of every video of ``source`` (see :func:`make_action_views`).

    ``source`` is a map-style dataset of dicts holding ``"video"`` (C, T, H, W) in [0, 1], or ``"styled"``
    ({style name: video}, pre-stylized, e.g. ``lit_stbias.data.PrestylizedVideos``): then two distinct styles
    of the item's own are picked and nothing is stylized here. ``styles`` restricts the styles drawn from.
    ``pathways`` (optional) turns a video into a list of pathway tensors (SlowFast) before views are made.

    Item i: ``{"anchor", "dynamic", "static", "index": i, "styles": (a, b)}`` plus ``"label"`` and
    ``"video_id"`` when the source has them.
    """

    def __init__(
        self,
        source: Dataset,
        styles: Sequence[str] | None = None,
        seed: int = 0,
        pathways: Callable[[Tensor], list[Tensor]] | None = None,
    ) -> None:
        self.source = source
        self.styles = _style_pool(styles, "ActionPairs")
        self.seed = seed
        self.pathways = pathways

    def __len__(self) -> int:
        return len(self.source)

    def _split(self, video: Tensor) -> Any:
        return self.pathways(video) if self.pathways is not None else video

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = _read(self.source, index)
        if isinstance(item, Mapping) and "skipped" in item:
            return item
        item = _require(item, ("video", "styled"), "ActionPairs source")
        generator = item_generator(self.seed, index)
        if "styled" in item:
            styled = item["styled"]
            offered = [s for s in styled if self.styles is None or s in self.styles]
            if len(offered) < 2:
                raise ValueError(
                    f"pre-stylized item {index} offers styles {list(styled)}; at least 2 distinct ones are needed"
                    + (f" among {self.styles}." if self.styles is not None else ".")
                )
            a, b = random_style_pair(generator, offered)
            views = views_from_styled(self._split(styled[a]), self._split(styled[b]), generator)
        else:
            a, b = random_style_pair(generator, self.styles)
            views = make_action_views(self._split(item["video"]), (a, b), generator)
        return {**views, "index": index, "styles": (a, b), **_metadata(item)}


class ActionClips(ActionPairs):
    """:class:`ActionPairs` with the stylization left for later, so it can run batched on the model's device
    (a stylization network such as a Texler generator costs far more there than in a DataLoader worker).

    Item i is the clip as ``ActionPairs`` would stylize it (after ``pathways``) with everything ``ActionPairs``
    draws for it, from the same generator in the same order: ``{"clip", "styles": (a, b), "orders", "index": i}``
    (+ ``"label"``, ``"video_id"``), ``orders`` being each pathway's frame order for the static view.
    :func:`action_views` turns a batch of them into the views, equal to ``ActionPairs``' items. Pre-stylized
    items need no stylization and come as ``ActionPairs`` gives them.
    """

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = _read(self.source, index)
        if isinstance(item, Mapping) and ("skipped" in item or "styled" in item):
            return item if "skipped" in item else super().__getitem__(index)
        item = _require(item, ("video",), "ActionClips source")
        generator = item_generator(self.seed, index)
        styles = random_style_pair(generator, self.styles)
        clip = self._split(item["video"])
        pathways = [clip] if isinstance(clip, Tensor) else list(clip)
        for i, pathway in enumerate(pathways):
            check_video(pathway, "video" if len(pathways) == 1 else f"video pathway {i}")
        orders = [shuffle_permutation(p.shape[-3], generator) for p in pathways]  # as views_from_styled draws
        if isinstance(clip, Tensor):
            orders = orders[0]
        return {"clip": clip, "styles": styles, "orders": orders, "index": index, **_metadata(item)}


def action_views(batch: Mapping[str, Any], device: torch.device | str | None = None) -> dict[str, Any]:
    """The anchor / dynamic / static views of a batch of :class:`ActionClips` items, made on ``device``.

    Every style is applied once to all the clips that need it (one batched :func:`stylize` per style and
    pathway), the dynamic view takes the second style of each item and the static view is the anchor in the
    item's drawn frame order; other keys are kept. The views are those ``ActionPairs`` gives for the same items
    (to float rounding where a style is a network run on batches of another size).
    """
    clips = batch["clip"]
    single = isinstance(clips, Tensor)
    pathways = [clips] if single else list(clips)
    orders = [batch["orders"]] if single else list(batch["orders"])
    pathways = [p.to(device) if device is not None else p for p in pathways]
    pairs = [tuple(pair) for pair in batch["styles"]]
    anchor = [torch.empty_like(p) for p in pathways]
    dynamic = [torch.empty_like(p) for p in pathways]
    for style in dict.fromkeys(s for pair in pairs for s in pair):
        rows = [i for i, pair in enumerate(pairs) if style in pair]
        for k, clip in enumerate(pathways):
            styled = stylize(clip[rows], style)
            for j, i in enumerate(rows):
                if pairs[i][0] == style:
                    anchor[k][i] = styled[j]
                if pairs[i][1] == style:
                    dynamic[k][i] = styled[j]
    static = [torch.stack([a[i][:, order[i].to(a.device)] for i in range(len(a))]) for a, order in zip(anchor, orders)]
    views = {"anchor": anchor, "dynamic": dynamic, "static": static}
    views = {key: value[0] if single else value for key, value in views.items()}
    return {**{k: v for k, v in batch.items() if k not in ("clip", "orders")}, **views}


def collate_pairs(batch: list[Any]) -> Any:
    """Collate pair items, keeping container types: tuples of tensors stay tuples (a VOS view becomes
    (rgb_batch, flow_batch)), lists of pathways stay lists, and ``styles`` stays one (a, b) tuple per item.

    torch's ``default_collate`` turns every tuple into a list, which would make the probe pass a VOS view as
    one argument instead of unpacking it into the model's two inputs. Skipped items (unreadable videos) are
    left out and listed under ``"skipped"``; a batch of skipped items only holds nothing else.
    """
    skipped = [item["skipped"] for item in batch if isinstance(item, Mapping) and "skipped" in item]
    if skipped:  # unreadable videos: left out of the batch, listed beside it
        kept = [item for item in batch if not (isinstance(item, Mapping) and "skipped" in item)]
        return {**(collate_pairs(kept) if kept else {}), "skipped": skipped}
    elem = batch[0]
    if isinstance(elem, Mapping):
        return {k: list(d[k] for d in batch) if k == "styles" else collate_pairs([d[k] for d in batch]) for k in elem}
    if isinstance(elem, tuple) and not hasattr(elem, "_fields"):
        return tuple(collate_pairs(list(group)) for group in zip(*batch))
    if isinstance(elem, list):
        return [collate_pairs(list(group)) for group in zip(*batch)]
    return default_collate(batch)


def _default_rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def pair_loader(
    pairs: Dataset,
    batch_size: int,
    num_workers: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    **loader_kwargs: Any,
) -> DataLoader:
    """A DataLoader over this rank's share of ``pairs``: indices rank, rank + world_size, ... in order.

    Unlike ``DistributedSampler`` nothing is padded, so across ranks every pair is seen exactly once (shares
    may differ in length by one) and a metric synced over ranks counts no video twice. ``rank`` and
    ``world_size`` default to torch.distributed's when it is initialized, else 0 and 1. Batches are collated
    with :func:`collate_pairs`; extra keyword arguments go to the DataLoader.
    """
    default_rank, default_world = _default_rank_world()
    rank = default_rank if rank is None else rank
    world_size = default_world if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size; got rank={rank}, world_size={world_size}.")
    share = Subset(pairs, range(rank, len(pairs), world_size))
    loader_kwargs.setdefault("collate_fn", collate_pairs)
    return DataLoader(share, batch_size=batch_size, shuffle=False, num_workers=num_workers, **loader_kwargs)


__all__ = ["PASSTHROUGH_KEYS", "ActionClips", "ActionPairs", "action_views", "collate_pairs",
           "item_generator", "pair_loader", "skipped_item"]
