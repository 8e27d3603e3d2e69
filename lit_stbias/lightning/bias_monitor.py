"""`BiasMonitor`: the static/dynamic bias of chosen taps, measured on fixed held-out pairs after every validation.

The pairs are built once (from the DataModule's validation source, or the callback's own seeded source) and
never change, so the numbers of successive epochs differ only because the weights did. Each rank probes its
own share (``pair_loader``: no padding), and ``BiasProbe.compute`` merges the metric states of all ranks, so
every rank ends up with the numbers of all pairs, each counted once.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger
from torch.utils.data import Dataset, Subset

from lit_stbias.data import from_spec
from lit_stbias.metrics import BiasResult
from lit_stbias.pairs import pair_loader
from lit_stbias.probe import BiasProbe

HISTORY_FILE = "bias_history.json"
PLOT_DIR = "bias"


def flat_metrics(results: dict[str, BiasResult], thresholds: Sequence[float]) -> dict[str, float]:
    """The logged numbers of one measurement: per tap, the layer-wise percentages, the unit counts at the
    first λ (and ``@λ`` for the others) and the two layer scores."""
    out: dict[str, float] = {}
    for tap, result in results.items():
        for cls, value in result.layer_percent.items():
            out[f"bias/{tap}/{cls}_percent"] = float(value)
        for cls, value in result.unit_counts.items():
            out[f"bias/{tap}/units_{cls}"] = float(value)
        extra = result.unit_counts_at(list(thresholds[1:])) if len(thresholds) > 1 else {}
        for lam, counts in extra.items():
            for cls, value in counts.items():
                out[f"bias/{tap}/units_{cls}@{lam:g}"] = float(value)
        for factor in ("dynamic", "static"):
            out[f"bias/{tap}/score_{factor}"] = float(result.layer_scores[factor])
    return out


def spread(n: int, k: int) -> list[int]:
    """``k`` indices evenly spread over ``range(n)`` (all of them when k >= n): many videos, not one video's
    neighbouring frames."""
    if k >= n:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))


class BiasMonitor(Callback):
    """Log the static/dynamic bias of a model's taps at the end of every (n-th) validation epoch.

    Logged per tap (through ``LightningModule.log``, so to every logger, CSV and W&B alike):
    ``bias/<tap>/{dynamic,static,identical}_percent``, ``bias/<tap>/units_{dynamic,static,joint,residual}``
    and ``bias/<tap>/score_{dynamic,static}``. Rank 0 also writes the per-tap bar chart to
    ``<out_dir>/bias/epoch_NNN.png`` (and to W&B as ``bias/layer_percent``) and the whole history, one
    ``BiasResult.to_dict`` per tap and epoch, to ``<out_dir>/bias_history.json``. The history is part of the
    callback's checkpoint state, so a resumed run continues it.

    Args:
        taps: tap names (default: every tap the model declares).
        num_pairs: videos (action) or frames (VOS) probed, spread evenly over the source.
        batch_size: pairs per probe batch.
        every_n_epochs: measure after every n-th training epoch (0: never during fit); ``trainer.validate``
            always measures.
        thresholds: λ of the unit classification; counts at the first are logged as ``units_*``, at the
            others as ``units_*@λ``; all go into the history.
        layer_score: ``"pooled"`` or ``"unit_mean"`` (see ``StaticDynamicBias``).
        data: a ``from_spec`` string for the callback's own source (default: the DataModule's
            ``val_source``), drawn with ``seed`` at the DataModule's clip length and size.
        seed: seeds the pairs' styles, shuffles and flow jitter (and the own source).
        cache_pairs: keep the collated pairs in memory after the first measurement (they never change).
        out_dir: where files go (default: ``trainer.default_root_dir``).
        plot: write the bar chart.
    """

    def __init__(
        self,
        taps: list[str] | None = None,
        num_pairs: int = 64,
        batch_size: int = 16,
        every_n_epochs: int = 1,
        thresholds: float | list[float] = 0.5,
        layer_score: str = "pooled",
        data: str | None = None,
        seed: int = 0,
        cache_pairs: bool = True,
        out_dir: str | None = None,
        plot: bool = True,
    ) -> None:
        self.thresholds = [float(t) for t in ([thresholds] if isinstance(thresholds, (int, float)) else thresholds)]
        if not self.thresholds:
            raise ValueError("thresholds needs at least one λ.")
        if num_pairs < 2:
            raise ValueError(f"num_pairs must be >= 2 (the metric needs 2 pairs of each kind), got {num_pairs}.")
        self.taps, self.num_pairs, self.batch_size = taps, num_pairs, batch_size
        self.every_n_epochs, self.layer_score, self.data, self.seed = every_n_epochs, layer_score, data, seed
        self.cache_pairs, self.out_dir, self.plot = cache_pairs, out_dir, plot
        self.history: list[dict[str, Any]] = []
        self.last_metrics: dict[str, float] = {}
        self._pairs: Dataset | None = None
        self._batches: list | None = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(taps=self.taps, num_pairs=self.num_pairs, data=self.data)

    # -- the pairs -----------------------------------------------------------------------------------------
    def source(self, trainer: Trainer) -> Dataset:
        """The videos (or VOS frames) the pairs are made from."""
        datamodule = trainer.datamodule
        if self.data is None:
            source = getattr(datamodule, "val_source", None)
            if source is None:
                raise ValueError("BiasMonitor needs a DataModule with a val_source (after setup), or data=SPEC.")
            return source
        kwargs = dict(num_videos=self.num_pairs, seed=self.seed)
        for key in ("num_frames", "size"):
            if getattr(datamodule, key, None) is not None:
                kwargs[key] = getattr(datamodule, key)
        source = from_spec(self.data, **kwargs)
        return source.frames() if hasattr(source, "frames") else source

    def pairs(self, trainer: Trainer, pl_module: LightningModule) -> Dataset:
        """The fixed pair set, built once, in the module's input form (``pl_module.pairs``)."""
        if self._pairs is None:
            source = self.source(trainer)
            chosen = Subset(source, spread(len(source), self.num_pairs))
            if len(chosen) < max(2, trainer.world_size):
                raise ValueError(f"BiasMonitor has {len(chosen)} pairs; it needs at least 2 and one per process "
                                 f"({trainer.world_size}).")
            self._pairs = pl_module.pairs(chosen, seed=self.seed)
        return self._pairs

    def batches(self, trainer: Trainer, pl_module: LightningModule):
        """This rank's share of the pairs, batched; cached after the first pass when ``cache_pairs``."""
        if self._batches is not None:
            return self._batches
        loader = pair_loader(self.pairs(trainer, pl_module), self.batch_size, rank=trainer.global_rank,
                             world_size=trainer.world_size)
        if not self.cache_pairs:
            return loader
        self._batches = list(loader)
        return self._batches

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, BiasResult]:
        """One probe pass over this rank's pairs; the results cover every rank's pairs."""
        probe = BiasProbe(pl_module.model, taps=self.taps, threshold=self.thresholds[0], layer_score=self.layer_score)
        precision = trainer.precision_plugin  # the forward passes run at the precision the model trains with
        with precision.forward_context():
            for views in self.batches(trainer, pl_module):
                probe.update(precision.convert_input(views))
        return probe.compute()

    # -- hooks ---------------------------------------------------------------------------------------------
    def _due(self, trainer: Trainer) -> bool:
        if trainer.sanity_checking:
            return False
        if trainer.state.fn != "fit":
            return True
        n = self.every_n_epochs
        return n > 0 and (trainer.current_epoch + 1) % n == 0

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._due(trainer):
            return
        results = self.measure(trainer, pl_module)
        metrics = flat_metrics(results, self.thresholds)
        # The values are already global (compute() merged every rank's states) and equal on every rank.
        # Lightning asks for sync_dist on epoch-level logs under DDP; "max" of equal values is that value
        # exactly, so the sync changes nothing and nothing is double counted.
        for key, value in metrics.items():
            pl_module.log(key, value, sync_dist=True, reduce_fx="max", on_step=False, on_epoch=True)
        self.last_metrics = metrics
        self.history.append({
            "epoch": trainer.current_epoch,
            "global_step": trainer.global_step,
            "stage": trainer.state.fn.value,
            "taps": {tap: r.to_dict(thresholds=self.thresholds) for tap, r in results.items()},
        })
        if trainer.is_global_zero:
            self.write(trainer, pl_module, results)

    # -- files -------------------------------------------------------------------------------------------------
    def run_dir(self, trainer: Trainer) -> Path:
        return Path(self.out_dir or trainer.default_root_dir)

    def write(self, trainer: Trainer, pl_module: LightningModule, results: dict[str, BiasResult]) -> None:
        """Rank 0: the history JSON, the bar chart PNG, and the chart as a W&B image."""
        out = self.run_dir(trainer)
        out.mkdir(parents=True, exist_ok=True)
        hp = getattr(pl_module, "hparams", {})
        doc = {
            "model": hp.get("model_name", type(pl_module.model).__name__),
            "preset": hp.get("preset"),
            "data": getattr(trainer.datamodule, "spec", None) if self.data is None else self.data,
            "num_pairs": len(self._pairs) if self._pairs is not None else None,
            "thresholds": self.thresholds,
            "history": self.history,
        }
        tmp = out / f".{HISTORY_FILE}.tmp"
        tmp.write_text(json.dumps(doc, indent=1, allow_nan=True))
        tmp.replace(out / HISTORY_FILE)
        if not self.plot:
            return
        from lit_stbias.reports import plot_layer_percent  # plotting lives in reports/

        epoch = trainer.current_epoch
        png = plot_layer_percent(
            {"model": f"{doc['model']} epoch {epoch}", "data": doc["data"], "layer_order": list(results),
             "layers": {tap: r.to_dict() for tap, r in results.items()}},
            out / PLOT_DIR / f"{trainer.state.fn.value}_epoch_{epoch:03d}.png",
        )
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("bias/layer_percent", [str(png)], step=trainer.global_step,
                                 caption=[f"epoch {epoch}"])

    # -- checkpoint state ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))


def final_bias(history: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last entry's per-tap percentages, unit counts and scores, for summaries."""
    if not history:
        return {}
    return {
        tap: {"layer_percent": d["layer_percent"], "unit_counts": d["unit_counts"], "layer_scores": d["layer_scores"]}
        for tap, d in history[-1]["taps"].items()
    }


__all__ = ["BiasMonitor", "HISTORY_FILE", "PLOT_DIR", "final_bias", "flat_metrics", "spread"]
