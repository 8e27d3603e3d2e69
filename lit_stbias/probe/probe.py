"""`BiasProbe`: a model, its taps and batches of views in; one `StaticDynamicBias` per tap out."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from lit_stbias.metrics import BiasResult, StaticDynamicBias
from lit_stbias.probe.taps import TapSpec, capture, resolve_taps, run_model

VIEW_KEYS = ("anchor", "dynamic", "static")


def to_device(value: Any, device: torch.device) -> Any:
    """Move a view (tensor, or list/tuple of tensors) to ``device``, keeping its container type."""
    if isinstance(value, Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value


def _select(value: Any, keep: Tensor) -> Any:
    if isinstance(value, Tensor):
        return value[keep]
    return type(value)(_select(v, keep) for v in value)


class BiasProbe:
    """Measure the static/dynamic bias of every tap of a model in one set of forward passes.

    Each :meth:`update` takes a batch of views, a mapping with ``anchor``, ``dynamic`` (the anchor's dynamic
    partner: same motion, other style) and ``static`` (its static partner: same frames shuffled, or the
    flow image jittered); optionally ``valid``, a (B,) bool mask of the videos to count (padding from a
    distributed sampler is left out this way). Three forward passes, all taps at once; the model runs in
    eval mode without gradients and gets its previous mode back.

    Args:
        model: any ``nn.Module``; zoo models declare their taps.
        taps: tap names (declared names or dotted submodule names), a mapping name -> Tap/module, or None
            for every declared tap.
        threshold, layer_score: passed to each :class:`StaticDynamicBias`.
        amp: run the forward passes under ``torch.autocast`` (bfloat16 on CPU, float16 on CUDA), or pass
            ``autocast``, a callable returning a context manager (e.g. Lightning Fabric's ``fabric.autocast``).
            The metric itself always accumulates in float64 outside autocast.
        pool_tokens: how transformer taps pool their tokens, ``"all"`` or ``"patches"`` (class token left
            out); passed to :func:`~lit_stbias.probe.resolve_taps`. ``None``: each tap's own rule.

    A batch updates every tap's metric or none: all taps' features are checked (finite, (B, C), the tap's
    width) before any metric takes the batch, and an error names the tap, the view and the units.
    """

    def __init__(
        self,
        model: nn.Module,
        taps: Sequence[str] | Mapping[str, TapSpec] | None = None,
        threshold: float = 0.5,
        layer_score: str = "pooled",
        amp: bool = False,
        autocast: Callable[[], ContextManager] | None = None,
        pool_tokens: str | None = None,
    ) -> None:
        self.model = model
        self.taps = taps
        self.pool_tokens = pool_tokens
        # once: fails early on unknown names, spares every forward. ``pool_tokens`` is passed only when asked
        # for, so models and taps that know no such option keep working.
        options = {} if pool_tokens is None else {"pool_tokens": pool_tokens}
        self.resolved = resolve_taps(model, taps, **options)
        self.tap_names = list(self.resolved)
        self.threshold = threshold
        self.layer_score = layer_score
        self.amp = amp
        self.autocast = autocast
        self.metrics: dict[str, StaticDynamicBias] = {}

    @property
    def device(self) -> torch.device:
        param = next(self.model.parameters(), None)
        return param.device if param is not None else torch.device("cpu")

    def _autocast(self) -> ContextManager:
        if self.autocast is not None:
            return self.autocast()
        if not self.amp:
            return contextlib.nullcontext()
        device_type = self.device.type
        return torch.autocast(device_type, dtype=torch.float16 if device_type == "cuda" else torch.bfloat16)

    def features(self, view: Any) -> dict[str, Tensor]:
        """Pooled (B, C) features of every tap for one batched view (one forward pass)."""
        with capture(self.model, resolved=self.resolved) as feats, self._autocast():
            run_model(self.model, view)
        return dict(feats)

    @torch.no_grad()
    def update(self, views: Mapping[str, Any]) -> None:
        missing = [k for k in VIEW_KEYS if k not in views]
        if missing:
            raise ValueError(f"views must hold {VIEW_KEYS}; missing {missing}.")
        device = self.device
        batch = {k: to_device(views[k], device) for k in VIEW_KEYS}
        if views.get("valid") is not None:
            keep = torch.as_tensor(views["valid"], dtype=torch.bool, device=device)
            if not bool(keep.any()):
                return
            batch = {k: _select(v, keep) for k, v in batch.items()}
        was_training = self.model.training
        self.model.eval()
        try:
            anchor, dynamic, static = (self.features(batch[k]) for k in VIEW_KEYS)
        finally:
            self.model.train(was_training)
        self._check_features(anchor, dynamic, static)  # every tap or none: nothing is updated before this passes
        for name, z_anchor in anchor.items():
            metric = self.metrics.get(name)
            if metric is None:
                metric = StaticDynamicBias(z_anchor.shape[1], self.threshold, self.layer_score).to(device)
                self.metrics[name] = metric
            # every row of a tap is a sample; RTNet's taps hold one row per frame (two per pair), as the release
            n = z_anchor.shape[0]
            factor = torch.cat([torch.zeros(n, dtype=torch.int64), torch.ones(n, dtype=torch.int64)]).to(device)
            metric.update(torch.cat([z_anchor, z_anchor]), torch.cat([dynamic[name], static[name]]), factor)

    def _check_features(self, *views: dict[str, Tensor]) -> None:
        """Raise, naming the tap, the view and the units, unless every tap's features of all three views are
        finite floating-point (B, C) tensors of the tap's width (the metric's own checks, done up front)."""
        anchor = views[0]
        for name, z_anchor in anchor.items():
            width = self.metrics[name].num_units if name in self.metrics else z_anchor.shape[-1]
            for view, feats in zip(VIEW_KEYS, views):
                z = feats.get(name)
                if z is None:
                    raise ValueError(f"tap {name!r} gave no features for the {view} view; the three views must "
                                     "take the same path through the model.")
                if z.ndim != 2 or z.shape != z_anchor.shape or z.shape[1] != width or not z.is_floating_point():
                    raise ValueError(f"tap {name!r}: the {view} view's features are {tuple(z.shape)} {z.dtype}; "
                                     f"expected floating-point (B, {width}) like the anchor's {tuple(z_anchor.shape)}.")
                finite = torch.isfinite(z)
                if not bool(finite.all()):
                    units = (~finite).any(0).nonzero().flatten()
                    shown = units[:8].tolist()
                    more = f" and {len(units) - len(shown)} more" if len(units) > len(shown) else ""
                    raise ValueError(
                        f"tap {name!r}: the {view} view's features are non-finite (NaN or inf) in units {shown}{more}; "
                        "no tap's metric took this batch. Check the model's inputs and precision (e.g. float32)."
                    )

    def compute(self) -> dict[str, BiasResult]:
        """One result per tap (per pathway for list outputs), in network order; DDP-synced when running distributed."""
        if not self.metrics:
            raise ValueError("the probe has seen no pairs yet; call update() with batches of views first.")
        return {name: metric.compute_result() for name, metric in self.metrics.items()}

    def reset(self) -> None:
        for metric in self.metrics.values():
            metric.reset()

    def run(
        self, batches: Iterable[Mapping[str, Any]], progress: bool = True, desc: str = "probing"
    ) -> dict[str, BiasResult]:
        """Update on every batch of views (with a progress bar), then compute."""
        total = len(batches) if hasattr(batches, "__len__") else None
        for views in tqdm(batches, total=total, desc=desc, disable=not progress, unit="batch"):
            self.update(views)
        return self.compute()
