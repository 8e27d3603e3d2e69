"""`StaticDropout`: during training steps, drop the channels of a tap that the bias metric classifies static.

The journal extension of the paper (Kowal et al., "Quantifying and Learning Static vs. Dynamic Information in
Deep Spatiotemporal Networks") proposes StaticDropout, a dropout guided by the unit-wise metric that pushes an
action model from static toward dynamic information. This callback is this package's version of it; see
``docs/intervene.md`` for what it follows and what it chooses on its own.

Method: at the start of training (or of epoch ``start_epoch``; and, with a provider, every ``every_n_epochs``
epochs after) the static channel set S of the tap is fixed: given as a mask, read from a ``bias.json``
(``static_units_from=PATH``), or measured by the trainer's BiasMonitor on its fixed pairs
(``static_units_from="monitor"``, :class:`MonitorProvider`). In every training step each sample's channels in
S are dropped (set to 0 over every position) independently with probability p, and the kept channels of S are
scaled by 1/(1 - p) (inverted dropout), so a layer's expected input is the same in training and evaluation.
Channels outside S are never touched. The control (``mode="random"``) does the same on a random channel set R of
|S| channels, drawn from the seed when S is set, so both arms drop the same expected number of channels per step
and differ only in which.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor, nn

from lit_stbias.analysis.document import BiasDocument
from lit_stbias.intervene.channels import edit_tap_output, num_channels, parse_channels, per_channel
from lit_stbias.intervene.units import document_unit_classes, random_unit_sets, unit_classes
from lit_stbias.lightning.bias_monitor import BiasMonitor
from lit_stbias.lightning.modules import mixed_generator
from lit_stbias.metrics import BiasResult
from lit_stbias.probe import Tap, resolve_taps

MODES = ("static", "random")
#: ``static_units_from`` value that measures the static set with the trainer's BiasMonitor
FROM_MONITOR = "monitor"
#: what a provider may return: a bool mask over the tap's channels, a BiasResult of the tap, or a mapping
#: tap -> either (e.g. ``BiasProbe.compute()``'s or ``BiasMonitor.measure()``'s results)
StaticSet = Any


def network_of(pl_module: LightningModule) -> nn.Module:
    """The network StaticDropout acts on: ``pl_module.model`` when it is a module, else the LightningModule."""
    return pl_module.model if isinstance(getattr(pl_module, "model", None), nn.Module) else pl_module


class MonitorProvider:
    """A provider that asks the trainer's :class:`~lit_stbias.lightning.BiasMonitor` for one tap's result: a
    fresh measurement of the current weights on the monitor's fixed held-out pairs (the pairs it logs the bias
    on), so the static set follows what the monitor reports.

    :meth:`check` (called by StaticDropout in ``setup()``, before any step) refuses a trainer without a
    monitor that measures the tap.
    """

    def __init__(self, tap: str) -> None:
        self.tap = tap

    @staticmethod
    def measured_taps(monitor: BiasMonitor, pl_module: LightningModule) -> list[str]:
        """The taps a monitor measures: its ``taps``, or every tap its network declares."""
        if monitor.taps is not None:
            return list(monitor.taps)
        return list(getattr(monitor.resolve_network(pl_module), "taps", None) or {})

    def monitor(self, trainer: Trainer, pl_module: LightningModule) -> BiasMonitor:
        monitors = [c for c in trainer.callbacks if isinstance(c, BiasMonitor)]
        for monitor in monitors:
            if self.tap in self.measured_taps(monitor, pl_module):
                return monitor
        if not monitors:
            raise ValueError(f"StaticDropout(static_units_from='monitor') at tap {self.tap!r} needs a BiasMonitor "
                             "among the trainer's callbacks (train.py: the --bias.* options); add one, or give "
                             "the static set with static_units_from=PATH to a bias.json.")
        measured = sorted({t for m in monitors for t in self.measured_taps(m, pl_module)})
        raise ValueError(f"StaticDropout(static_units_from='monitor'): no BiasMonitor measures tap {self.tap!r} "
                         f"(they measure {', '.join(measured) or 'nothing'}); add it to the monitor's taps "
                         f"(train.py: --bias.taps '[..., {self.tap}]').")

    def check(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.monitor(trainer, pl_module)

    def __call__(self, trainer: Trainer, pl_module: LightningModule) -> BiasResult:
        return self.monitor(trainer, pl_module).measure(trainer, pl_module)[self.tap]


class StaticDropout(Callback):
    """Drop the static channels of one tap with probability p in training steps only.

    Active only while the tap's module is in training mode *and* the trainer is inside a training step
    (between ``on_train_batch_start`` and ``on_train_batch_end``): validation, the sanity check, the
    BiasMonitor's probing and any eval-mode call are untouched.

    Args:
        tap: the tap (declared name such as ``stage5`` or ``slow.stage5``, or a dotted module name) of the
            LightningModule's network (``pl_module.model``, else the module itself).
        p: drop probability of each static channel, per sample and step, in [0, 1).
        mode: ``"static"`` drops the static set S; ``"random"`` (the control) drops a random set of |S|
            channels drawn from ``seed`` each time S is set.
        static_units: the static set as a bool mask over the tap's channels (fixed for the whole run).
        static_units_from: ``"monitor"``: measure the static set with the trainer's BiasMonitor
            (:class:`MonitorProvider`; setup fails unless a monitor measures the tap), again every
            ``every_n_epochs``; or the path of a ``bias.json`` (or its folder) written by ``analyze.py``: the
            tap's static units there, fixed for the run (refused when the document lacks the tap or measured
            another model or layer).
        provider: instead, a callable ``provider(trainer, pl_module)`` returning a bool mask, a
            :class:`~lit_stbias.metrics.BiasResult` of the tap (classified at ``threshold``) or a mapping
            tap -> either. Called on every rank (it may run collective operations); rank 0's answer is used.
        every_n_epochs: with a provider (or the monitor), ask it again every n-th epoch after the first
            estimate (0: once).
        start_epoch: no dropout before this epoch; a provider's first estimate is made at its start, so the
            set can come from a network that has learnt something rather than from its initial weights.
        threshold: λ that classifies a provider's BiasResult or the bias.json (default: the result's own λ).
        rescale: scale the kept channels of the set by 1 / (1 - p) (inverted dropout).
        seed: seeds the drop masks (drawn from (seed, epoch, batch, rank), never from the global RNG) and the
            random control set (from (seed, epoch of the estimate) only, so every rank drops the same set).
    """

    def __init__(
        self,
        tap: str,
        p: float = 0.5,
        mode: str = "static",
        static_units: Optional[list[bool]] = None,
        static_units_from: Optional[str] = None,
        provider: Optional[Callable[[Trainer, LightningModule], StaticSet]] = None,
        every_n_epochs: int = 0,
        start_epoch: int = 0,
        threshold: Optional[float] = None,
        rescale: bool = True,
        seed: int = 0,
    ) -> None:
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p < 1:
            raise ValueError(f"p must be in [0, 1), got {p!r}.")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        given = [name for name, value in (("static_units", static_units), ("static_units_from", static_units_from),
                                          ("provider", provider)) if value is not None]
        if not given:
            raise ValueError("StaticDropout needs the static set: static_units (a bool mask), static_units_from "
                             "('monitor' or a bias.json) or a provider.")
        if len(given) > 1:
            raise ValueError(f"give the static set one way, not both {' and '.join(given)}.")
        if every_n_epochs < 0 or start_epoch < 0:
            raise ValueError(f"every_n_epochs and start_epoch must be >= 0, got {every_n_epochs} and {start_epoch}.")
        if static_units_from == FROM_MONITOR:
            provider = MonitorProvider(tap)
        if every_n_epochs and provider is None:
            raise ValueError("every_n_epochs re-estimates the static set and needs a provider (or "
                             "static_units_from='monitor'); a fixed static set never changes.")
        self.tap, self.p, self.mode, self.provider = tap, float(p), mode, provider
        self.every_n_epochs, self.start_epoch, self.threshold = every_n_epochs, start_epoch, threshold
        self.rescale, self.seed = rescale, seed
        self.static_units_from = static_units_from
        self.document: BiasDocument | None = None  # the bias.json the fixed set comes from
        self.origin = "static_units" if static_units is not None else (
            "the BiasMonitor" if static_units_from == FROM_MONITOR else static_units_from or "the provider")
        self.static: Tensor | None = None  # bool (C,): the static set S
        self.dropped: Tensor | None = None  # bool (C,): the set that is dropped (S, or the random control)
        self.estimated_epoch: int | None = None
        self.last_drop: Tensor | None = None  # bool (B, C): what the last training forward pass dropped
        self._tap_spec: Tap | None = None
        self._handle = None
        self._in_step = False
        self._active = False  # from start_epoch on
        self._step_key: tuple[int, int, int] = (0, 0, 0)
        self._calls = 0
        if static_units is not None:
            self._set_static(self.as_mask(static_units), epoch=0, given=True)
        elif static_units_from is not None and provider is None:
            self.document = BiasDocument.read(static_units_from)
            where = str(Path(static_units_from))
            classes = document_unit_classes(self.document, tap, threshold, where=where)
            self._set_static(classes["static"], epoch=0, given=True)

    @property
    def state_key(self) -> str:
        return self._generate_state_key(tap=self.tap, mode=self.mode)

    # -- the static set ------------------------------------------------------------------------------------
    def as_mask(self, value: StaticSet) -> Tensor:
        """A bool mask over the tap's channels from a mask, a BiasResult, or a mapping tap -> either."""
        if isinstance(value, Mapping):
            if self.tap not in value:
                raise ValueError(f"the static set has no entry for tap {self.tap!r}; it holds {list(value)}.")
            value = value[self.tap]
        if isinstance(value, BiasResult):
            return unit_classes(value, self.threshold)["static"]
        if not isinstance(value, (Tensor, list, tuple)):
            raise ValueError(f"a static set is a bool mask, a BiasResult or a mapping tap -> either; got "
                             f"{type(value).__name__}.")
        mask = parse_channels(value, self.tap)
        if mask.dtype != torch.bool:
            raise ValueError(f"the static set of tap {self.tap!r} must be a bool mask over its channels, not indices.")
        return mask

    def _set_static(self, static: Tensor, epoch: int, given: bool = False) -> None:
        size, units = int(static.sum()), static.numel()
        if size == 0 or size == units:
            problem = "no channel" if size == 0 else f"every one of its {units} channels"
            if given:  # a set given to the callback: the configuration cannot do what it says
                raise ValueError(
                    f"the static set of tap {self.tap!r} from {self.origin} holds {problem}: StaticDropout would "
                    f"{'drop nothing' if size == 0 else 'be plain channel dropout'}. Check the tap and λ."
                )
            # a measured set is what the network has learnt: used as it is rather than ending a long run
            warnings.warn(f"StaticDropout: the static set of tap {self.tap!r} estimated by {self.origin} at epoch "
                          f"{epoch} holds {problem}; it is used as it is until the next estimate.", stacklevel=2)
        self.static, self.estimated_epoch = static.clone(), epoch
        if self.mode == "static":
            self.dropped = self.static
        else:  # the control: |S| channels drawn from the seed and the estimate's epoch, the same on every rank
            key = mixed_generator(self.seed, epoch).initial_seed()
            self.dropped = random_unit_sets({"static": self.static}, draws=1, seed=key)["static"][0]

    def _due(self, epoch: int) -> bool:
        if self.provider is None or epoch < self.start_epoch:
            return False
        if self.static is None:
            return True
        n = self.every_n_epochs
        return n > 0 and (epoch - self.start_epoch) % n == 0 and epoch != self.estimated_epoch

    def estimate(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Ask the provider for the static set (every rank), keep rank 0's answer."""
        mask = self.as_mask(self.provider(trainer, pl_module))
        mask = torch.as_tensor(trainer.strategy.broadcast(mask.tolist(), src=0), dtype=torch.bool)
        self._set_static(mask, epoch=trainer.current_epoch)

    # -- the hook ------------------------------------------------------------------------------------------
    def _drop(self, x: Tensor) -> Tensor:
        units = num_channels(x)
        if self.dropped.numel() != units:
            raise ValueError(
                f"the static set of tap {self.tap!r} from {self.origin} has {self.dropped.numel()} entries but the "
                f"tap has {units} channels; was it measured on another model or layer?"
            )
        generator = mixed_generator(self.seed, *self._step_key, self._calls)
        self._calls += 1
        chosen = self.dropped.nonzero().flatten()
        drop = torch.zeros(x.shape[0], units, dtype=torch.bool)
        drop[:, chosen] = torch.rand(x.shape[0], chosen.numel(), generator=generator) < self.p
        scale = torch.ones(x.shape[0], units)
        scale[:, chosen] = 1 / (1 - self.p) if self.rescale else 1.0
        self.last_drop = drop
        return x * per_channel(scale.masked_fill(drop, 0.0), x)

    def _hook(self, module: nn.Module, _inputs, output):
        if not (self._in_step and module.training and self._active):
            return None  # the output as it is
        return edit_tap_output(output, self.tap, self._tap_spec, self._drop)

    def _remove_hook(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self._in_step = False

    # -- Lightning hooks -----------------------------------------------------------------------------------
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        network = network_of(pl_module)
        module, self._tap_spec = resolve_taps(network, [self.tap])[self.tap]  # an unknown tap fails here
        if self.document is not None:
            self.check_document(pl_module)
        if stage != "fit":
            return
        check = getattr(self.provider, "check", None)
        if callable(check):
            check(trainer, pl_module)  # e.g. no BiasMonitor measures the tap: before any step
        if self._handle is None:
            self._handle = module.register_forward_hook(self._hook)

    def check_document(self, pl_module: LightningModule) -> None:
        """Refuse a bias.json of another model, preset or layer than the one this run trains."""
        doc, where = self.document, self.static_units_from
        hparams = getattr(pl_module, "hparams", None) or {}
        for field in ("model", "preset"):
            mine = hparams.get("model_name" if field == "model" else field)
            theirs = getattr(doc, field)
            if mine is not None and theirs is not None and mine != theirs:
                raise ValueError(f"{where} measured {field} {theirs!r} but this run trains {mine!r}; give the "
                                 "bias.json of this model (analyze.py --ckpt ... --layers "
                                 f"{self.tap}).")
        module = self._tap_spec.module + ("" if self._tap_spec.index is None else f"[{self._tap_spec.index}]")
        theirs = doc.tap_modules.get(self.tap)
        if theirs is not None and theirs != module:
            raise ValueError(f"{where}: tap {self.tap!r} was module {theirs} there but is {module} in this "
                             "network; was it measured on another model?")

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch
        self._active = epoch >= self.start_epoch
        if self._due(epoch):
            self.estimate(trainer, pl_module)
        if self._active:
            pl_module.log("static_dropout/static_units", float(self.static.sum()), on_step=False, on_epoch=True,
                          sync_dist=True, reduce_fx="max")  # equal on every rank

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        self._in_step, self._calls = True, 0
        self._step_key = (trainer.current_epoch, batch_idx, trainer.global_rank)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._in_step = False

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._remove_hook()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._remove_hook()

    # -- checkpoint state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        static = None if self.static is None else self.static.tolist()
        return {"static": static, "estimated_epoch": self.estimated_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("static") is not None:
            self._set_static(torch.tensor(state_dict["static"], dtype=torch.bool),
                             epoch=int(state_dict["estimated_epoch"]))


__all__ = ["FROM_MONITOR", "MODES", "MonitorProvider", "StaticDropout", "network_of"]
