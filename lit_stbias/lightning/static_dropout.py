"""`StaticDropout`: during training steps, drop the channels of a tap that the bias metric classifies static.

The journal extension of the paper (Kowal et al., "Quantifying and Learning Static vs. Dynamic Information in
Deep Spatiotemporal Networks") proposes StaticDropout, a dropout guided by the unit-wise metric that pushes an
action model from static toward dynamic information. This callback is this package's version of it; see
``docs/intervene.md`` for what it follows and what it chooses on its own.

Method: at the start of training (and, with a provider, every ``every_n_epochs`` epochs) the static channel set
S of the tap is fixed. In every training step each sample's channels in S are dropped (set to 0 over every
position) independently with probability p, and the kept channels of S are scaled by 1/(1 - p) (inverted
dropout), so a layer's expected input is the same in training and evaluation. Channels outside S are never
touched. The control (``mode="random"``) does the same on a random channel set R of |S| channels, drawn from the
seed when S is set, so both arms drop the same expected number of channels per step and differ only in which.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor, nn

from lit_stbias.intervene.channels import edit_tap_output, num_channels, parse_channels, per_channel
from lit_stbias.intervene.units import random_unit_sets, unit_classes
from lit_stbias.lightning.modules import mixed_generator
from lit_stbias.metrics import BiasResult
from lit_stbias.probe import Tap, resolve_taps

MODES = ("static", "random")
#: what a provider may return: a bool mask over the tap's channels, a BiasResult of the tap, or a mapping
#: tap -> either (e.g. ``BiasProbe.compute()``'s or ``BiasMonitor.measure()``'s results)
StaticSet = Any


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
        provider: instead of ``static_units``, a callable ``provider(trainer, pl_module)`` returning a bool mask,
            a :class:`~lit_stbias.metrics.BiasResult` of the tap (classified at ``threshold``) or a mapping
            tap -> either. Called on every rank (it may run collective operations); rank 0's answer is used.
        every_n_epochs: with a provider, ask it again at the start of every n-th epoch (0: once, at the start
            of training).
        threshold: λ that classifies a provider's BiasResult (default: the result's own λ).
        rescale: scale the kept channels of the set by 1 / (1 - p) (inverted dropout).
        seed: seeds the drop masks (drawn from (seed, epoch, batch, rank), never from the global RNG) and the
            random control set (from (seed, epoch of the estimate) only, so every rank drops the same set).
    """

    def __init__(
        self,
        tap: str,
        p: float = 0.5,
        mode: str = "static",
        static_units: list[bool] | None = None,
        provider: Callable[[Trainer, LightningModule], StaticSet] | None = None,
        every_n_epochs: int = 0,
        threshold: float | None = None,
        rescale: bool = True,
        seed: int = 0,
    ) -> None:
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p < 1:
            raise ValueError(f"p must be in [0, 1), got {p!r}.")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        if static_units is None and provider is None:
            raise ValueError("StaticDropout needs the static set: static_units (a bool mask) or a provider.")
        if static_units is not None and provider is not None:
            raise ValueError("give the static set as static_units or as a provider, not both.")
        if every_n_epochs < 0:
            raise ValueError(f"every_n_epochs must be >= 0, got {every_n_epochs}.")
        if every_n_epochs and provider is None:
            raise ValueError("every_n_epochs re-estimates the static set and needs a provider; a fixed "
                             "static_units mask never changes.")
        self.tap, self.p, self.mode, self.provider = tap, float(p), mode, provider
        self.every_n_epochs, self.threshold, self.rescale, self.seed = every_n_epochs, threshold, rescale, seed
        self.static: Tensor | None = None  # bool (C,): the static set S
        self.dropped: Tensor | None = None  # bool (C,): the set that is dropped (S, or the random control)
        self.estimated_epoch: int | None = None
        self.last_drop: Tensor | None = None  # bool (B, C): what the last training forward pass dropped
        self._tap_spec: Tap | None = None
        self._handle = None
        self._in_step = False
        self._step_key: tuple[int, int, int] = (0, 0, 0)
        self._calls = 0
        if static_units is not None:
            self._set_static(self.as_mask(static_units), epoch=0, first=True)

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

    def _set_static(self, static: Tensor, epoch: int, first: bool) -> None:
        size, units = int(static.sum()), static.numel()
        if size == 0 or size == units:
            problem = "no channel" if size == 0 else f"every one of its {units} channels"
            if first:
                raise ValueError(
                    f"the static set of tap {self.tap!r} holds {problem}: StaticDropout would "
                    f"{'drop nothing' if size == 0 else 'be plain channel dropout'}. Check the tap and λ."
                )
            warnings.warn(f"StaticDropout: the re-estimated static set of tap {self.tap!r} at epoch {epoch} holds "
                          f"{problem}; it is used as it is until the next estimate.", stacklevel=2)
        self.static, self.estimated_epoch = static.clone(), epoch
        if self.mode == "static":
            self.dropped = self.static
        else:  # the control: |S| channels drawn from the seed and the estimate's epoch, the same on every rank
            key = mixed_generator(self.seed, epoch).initial_seed()
            self.dropped = random_unit_sets({"static": self.static}, draws=1, seed=key)["static"][0]

    def _due(self, epoch: int) -> bool:
        if self.provider is None:
            return False
        if self.static is None:
            return True
        n = self.every_n_epochs
        return n > 0 and epoch % n == 0 and epoch != self.estimated_epoch

    def estimate(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Ask the provider for the static set (every rank), keep rank 0's answer."""
        mask = self.as_mask(self.provider(trainer, pl_module))
        mask = torch.as_tensor(trainer.strategy.broadcast(mask.tolist(), src=0), dtype=torch.bool)
        self._set_static(mask, epoch=trainer.current_epoch, first=self.static is None)

    # -- the hook ------------------------------------------------------------------------------------------
    def _drop(self, x: Tensor) -> Tensor:
        units = num_channels(x)
        if self.dropped.numel() != units:
            raise ValueError(
                f"the static set of tap {self.tap!r} has {self.dropped.numel()} entries but the tap has {units} "
                "channels; was it measured on another model or layer?"
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
        if not (self._in_step and module.training):
            return None  # the output as it is
        return edit_tap_output(output, self.tap, self._tap_spec, self._drop)

    def _remove_hook(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self._in_step = False

    # -- Lightning hooks -----------------------------------------------------------------------------------
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        network = pl_module.model if isinstance(getattr(pl_module, "model", None), nn.Module) else pl_module
        module, self._tap_spec = resolve_taps(network, [self.tap])[self.tap]  # an unknown tap fails here
        if stage == "fit" and self._handle is None:
            self._handle = module.register_forward_hook(self._hook)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._due(trainer.current_epoch):
            self.estimate(trainer, pl_module)
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
                             epoch=int(state_dict["estimated_epoch"]), first=False)


__all__ = ["MODES", "StaticDropout"]
