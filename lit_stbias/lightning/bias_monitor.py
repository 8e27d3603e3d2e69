"""`BiasMonitor`: the static/dynamic bias of chosen taps, measured on fixed held-out pairs after every validation.

The pairs come from a :class:`~lit_stbias.analysis.ProbeSession` (the same selection and pair rules as
``analyze.py``), built once in ``setup()`` from the DataModule's validation source or the callback's own seeded
source, and never change, so the numbers of successive epochs differ only because the weights did. Each rank
probes its own share (``pair_loader``: no padding), and the metric states of all ranks are merged, so every
rank ends up with the numbers of all pairs, each counted once. Every measurement is a
:class:`~lit_stbias.analysis.BiasDocument`; ``bias_history.json`` holds them with the ``analyze.py`` command
that measures a saved checkpoint on the same pairs.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger
from torch import nn
from torch.utils.data import Dataset

from lit_stbias.analysis import BiasDocument, ClipSettings, ProbeSession, provenance
from lit_stbias.metrics import BiasResult

HISTORY_FILE = "bias_history.json"
PLOT_DIR = "bias"
TABLE_COLUMNS = ["epoch", "global_step", "stage", "tap", "static_percent", "dynamic_percent", "identical_percent",
                 "units_static", "units_dynamic", "units_joint", "units_residual", "score_static", "score_dynamic"]


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


class BiasMonitor(Callback):
    """Log the static/dynamic bias of a network's taps at the end of every (n-th) validation epoch.

    Works with any LightningModule: ``network`` names the ``nn.Module`` to probe and ``make_pairs`` (optional)
    how its inputs are made; both are checked in ``setup()``, before any training step, with an error that says
    what to pass. For this project's modules the defaults need nothing.

    Logged per tap (through ``LightningModule.log``, so to every logger, CSV and W&B alike):
    ``bias/<tap>/{dynamic,static,identical}_percent``, ``bias/<tap>/units_{dynamic,static,joint,residual}``
    and ``bias/<tap>/score_{dynamic,static}``. Rank 0 also writes ``<out_dir>/bias_history.json`` (every
    measurement as a ``BiasDocument``, and the ``analyze.py`` command that reproduces them from a checkpoint),
    the per-tap bar chart ``<out_dir>/bias/<stage>_epoch_NNN.png`` and, to W&B, the chart as an image, one line
    chart per tap of the three percentages against epoch (``bias_chart/<tap>``), a table of every epoch's numbers
    (``bias_table``) and these settings in the run config (``bias_monitor``). The history is part of the
    callback's checkpoint state, so a resumed run continues it.

    Args:
        taps: tap names or dotted module names of ``network`` (default: every tap the network declares).
        num_pairs: videos (action) or frames (VOS) probed, chosen by the session's seeded rule.
        batch_size: pairs per probe batch.
        every_n_epochs: measure after every n-th training epoch (0: never during fit); ``trainer.validate``
            always measures.
        thresholds: λ of the unit classification; counts at the first are logged as ``units_*``, at the
            others as ``units_*@λ``; all go into the history.
        layer_score: ``"pooled"`` or ``"unit_mean"`` (see ``StaticDynamicBias``).
        data: a ``from_spec`` string for the callback's own source (default: the DataModule's
            ``val_source``), drawn with ``seed`` at the DataModule's clip length and size.
        seed: seeds the choice of items, the pairs' styles, shuffles and flow jitter (and the own source).
        cache_pairs: keep the collated pairs in memory after the first measurement (they never change).
        out_dir: where files go (default: ``trainer.default_root_dir``).
        plot: write the bar chart.
        network: the attribute of the LightningModule that holds the network (dotted, e.g. ``"backbone"``;
            ``""`` for the LightningModule itself), or a callable ``pl_module -> nn.Module``.
        make_pairs: ``make_pairs(items, seed) -> Dataset`` of ``{"anchor", "dynamic", "static"}`` views in the
            network's input form (default: the session's rule, from the network's ``input_spec``).
        temporal_stride: the network sees every n-th frame of a clip (default: the module's
            ``hparams.temporal_stride``, else 1).
        allow_fewer_pairs: measure fewer pairs when the source has fewer than ``num_pairs`` items (default:
            refuse in ``setup()``).
        pool_tokens: ``"all"`` or ``"patches"`` for transformer taps (see ``BiasProbe``).
    """

    def __init__(
        self,
        taps: Optional[list[str]] = None,
        num_pairs: int = 64,
        batch_size: int = 16,
        every_n_epochs: int = 1,
        thresholds: Union[float, list[float]] = 0.5,
        layer_score: str = "pooled",
        data: Optional[str] = None,
        seed: int = 0,
        cache_pairs: bool = True,
        out_dir: Optional[str] = None,
        plot: bool = True,
        network: Union[str, Callable[[LightningModule], nn.Module]] = "model",
        make_pairs: Optional[Callable[[Dataset, int], Dataset]] = None,
        temporal_stride: Optional[int] = None,
        allow_fewer_pairs: bool = False,
        pool_tokens: Optional[str] = None,
    ) -> None:
        self.thresholds = [float(t) for t in ([thresholds] if isinstance(thresholds, (int, float)) else thresholds)]
        if not self.thresholds:
            raise ValueError("thresholds needs at least one λ.")
        if num_pairs < 2:
            raise ValueError(f"num_pairs must be >= 2 (the metric needs 2 pairs of each kind), got {num_pairs}.")
        self.taps, self.num_pairs, self.batch_size = taps, num_pairs, batch_size
        self.every_n_epochs, self.layer_score, self.data, self.seed = every_n_epochs, layer_score, data, seed
        self.cache_pairs, self.out_dir, self.plot = cache_pairs, out_dir, plot
        self.network, self.make_pairs, self.temporal_stride = network, make_pairs, temporal_stride
        self.allow_fewer_pairs, self.pool_tokens = allow_fewer_pairs, pool_tokens
        self.history: list[dict[str, Any]] = []
        self.last_metrics: dict[str, float] = {}
        self.session: ProbeSession | None = None
        self.reproduce: str | None = None
        self._batches: list | None = None
        self.last_document: BiasDocument | None = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(taps=self.taps, num_pairs=self.num_pairs, data=self.data)

    def settings(self) -> dict[str, Any]:
        """The monitor's settings, JSON-ready (the W&B run config and the history file record them)."""
        return {"taps": self.taps, "num_pairs": self.num_pairs, "batch_size": self.batch_size,
                "every_n_epochs": self.every_n_epochs, "thresholds": self.thresholds, "layer_score": self.layer_score,
                "data": self.data, "seed": self.seed, "temporal_stride": self.temporal_stride,
                "network": self.network if isinstance(self.network, str) else getattr(self.network, "__name__", "?"),
                "allow_fewer_pairs": self.allow_fewer_pairs, "pool_tokens": self.pool_tokens}

    # -- setup: everything is checked before the first training step ---------------------------------------
    def resolve_network(self, pl_module: LightningModule) -> nn.Module:
        """The network to probe, or a ``ValueError`` that says what to pass."""
        if callable(self.network) and not isinstance(self.network, nn.Module):
            net = self.network(pl_module)
        else:
            net = pl_module
            for part in [p for p in str(self.network).split(".") if p]:
                net = getattr(net, part, None)
                if net is None:
                    raise ValueError(
                        f"BiasMonitor: {type(pl_module).__name__} has no attribute {self.network!r}, the network it "
                        "probes by default; pass BiasMonitor(network='<attribute>') naming the nn.Module to "
                        "measure (network='' for the LightningModule itself, or a callable pl_module -> module).")
        if not isinstance(net, nn.Module):
            raise ValueError(f"BiasMonitor: network {self.network!r} of {type(pl_module).__name__} is a "
                             f"{type(net).__name__}, not an nn.Module; pass network= naming the module to probe.")
        return net

    def _stride(self, pl_module: LightningModule) -> int:
        if self.temporal_stride is not None:
            return self.temporal_stride
        hparams = getattr(pl_module, "hparams", {}) or {}
        return int(hparams.get("temporal_stride", 1) or 1)

    def _session(self, trainer: Trainer, pl_module: LightningModule) -> ProbeSession:
        network = self.resolve_network(pl_module)
        datamodule = trainer.datamodule
        clip = ClipSettings(temporal_stride=self._stride(pl_module))
        if self.data is None:
            source = getattr(datamodule, "val_source", None)
            if source is None:
                raise ValueError("BiasMonitor needs a DataModule with a val_source (set in its setup()), or "
                                 "BiasMonitor(data=SPEC) naming its own source (e.g. data='synthetic:motion').")
            data: str | Dataset = source
            # A synthetic source is recorded as the spec and settings that rebuild it (analyze.py can), others
            # by the DataModule's spec.
            found = ClipSettings.of_source(source)
            name = found[0] if found else getattr(datamodule, "spec", None)
            if found:
                clip = found[1].updated(temporal_stride=clip.temporal_stride)
        else:  # the callback's own source: drawn with its seed, cut as the DataModule cuts clips
            data = name = self.data
            clip = clip.updated(data_seed=self.seed, num_videos=self.num_pairs,
                                num_frames=getattr(datamodule, "num_frames", None),
                                size=getattr(datamodule, "size", None))
        hp = getattr(pl_module, "hparams", {}) or {}
        try:
            session = ProbeSession(
                network, data, num_pairs=self.num_pairs, clip=clip, taps=self.taps, threshold=self.thresholds[0],
                thresholds=self.thresholds, layer_score=self.layer_score, pool_tokens=self.pool_tokens,
                batch_size=self.batch_size, allow_fewer_pairs=self.allow_fewer_pairs, pairs=self.make_pairs,
                describe={"model": hp.get("model_name", type(network).__name__), "preset": hp.get("preset"),
                          "task": getattr(pl_module, "task", None), "data": name},
            )
            pairs = session.pairs(self.seed)  # too few items fails here
            if len(pairs) < max(2, trainer.world_size):
                raise ValueError(f"it has {len(pairs)} pairs and needs at least 2 and one per process "
                                 f"({trainer.world_size}).")
            pairs[0]  # the first pair: a source or a pair rule that does not fit the network fails now
        except ValueError as err:
            raise ValueError(f"BiasMonitor: {err} (see BiasMonitor's taps=, network=, make_pairs=, num_pairs=, "
                             "allow_fewer_pairs=, data=)") from None
        return session

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.experiment.config.update({"bias_monitor": self.settings()}, allow_val_change=True)
        if stage == "fit" and self.every_n_epochs <= 0:
            return  # nothing to measure in this fit; trainer.validate sets the session up when it comes
        if self.session is None:
            self.session = self._session(trainer, pl_module)
            self.reproduce = self._analyze_command(trainer)

    def _analyze_command(self, trainer: Trainer) -> str | None:
        """The ``analyze.py`` command that measures a saved checkpoint of this run on the same pairs; ``None``
        when the source is not one it can rebuild (e.g. a folder's validation split)."""
        session = self.session
        if self.data is None and ClipSettings.of_source(session.data) is None:
            return None
        spec, clip = session.describe["data"], session.clip
        args = ["python", "analyze.py", "--ckpt", "CHECKPOINT", "--data", spec, "--num-pairs", str(self.num_pairs),
                "--seeds", str(self.seed), "--batch-size", str(self.batch_size), "--threshold", f"{self.thresholds[0]}",
                "--thresholds", ",".join(f"{t}" for t in self.thresholds),
                "--layer-score", self.layer_score, *clip.cli_args()]
        if self.taps:
            args += ["--layers", ",".join(self.taps)]
        if self.allow_fewer_pairs:
            args.append("--allow-fewer-pairs")
        if self.pool_tokens:
            args += ["--pool-tokens", self.pool_tokens]
        precision = str(getattr(trainer, "precision", "32-true"))
        if precision not in ("32-true", "32"):
            args += ["--precision", precision]
        return shlex.join([*args, "--out", "DIR"])

    # -- measuring -----------------------------------------------------------------------------------------
    def batches(self, trainer: Trainer) -> list | Any:
        """This rank's share of the pairs, batched; cached after the first pass when ``cache_pairs``."""
        if self._batches is not None:
            return self._batches
        loader = self.session.loader(self.seed, rank=trainer.global_rank, world_size=trainer.world_size)
        if not self.cache_pairs:
            return loader
        self._batches = list(loader)
        return self._batches

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, BiasResult]:
        """One probe pass over this rank's pairs: one ``BiasResult`` per tap, covering every rank's pairs.

        The measurement's :class:`BiasDocument` (epoch, step and stage in its ``context``) is kept as
        ``last_document``.
        """
        if self.session is None:  # measure() called outside a Trainer's hooks, or in a fit that measures nothing
            self.session = self._session(trainer, pl_module)
            self.reproduce = self._analyze_command(trainer)
        precision = trainer.precision_plugin  # the forward passes run at the precision the model trains with
        measurement = self.session.measure(self.seed, batches=self.batches(trainer),
                                           autocast=precision.forward_context, convert=precision.convert_input)
        context = {"epoch": trainer.current_epoch, "global_step": trainer.global_step,
                   "stage": trainer.state.fn.value if trainer.state.fn else None}
        self.last_document = self.session.document({self.seed: measurement}, units=False, context=context,
                                                   devices=trainer.world_size)
        return measurement.results

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
        doc = self.last_document
        metrics = flat_metrics(results, self.thresholds)
        # The values are already global (the session merged every rank's states) and equal on every rank.
        # Lightning asks for sync_dist on epoch-level logs under DDP; "max" of equal values is that value
        # exactly, so the sync changes nothing and nothing is double counted.
        for key, value in metrics.items():
            pl_module.log(key, value, sync_dist=True, reduce_fx="max", on_step=False, on_epoch=True)
        self.last_metrics = metrics
        self.history.append(doc.to_json(units=False))
        if trainer.is_global_zero:
            self.write(trainer, doc)

    @property
    def documents(self) -> list[BiasDocument]:
        """The history as ``BiasDocument`` objects (epoch, step and stage in each one's ``context``)."""
        return [BiasDocument.from_json(entry, where="a BiasMonitor history entry") for entry in self.history]

    # -- files and W&B ---------------------------------------------------------------------------------------
    def run_dir(self, trainer: Trainer) -> Path:
        return Path(self.out_dir or trainer.default_root_dir)

    def write(self, trainer: Trainer, doc: BiasDocument) -> None:
        """Rank 0: the history JSON, the bar chart PNG, and the W&B image, line charts and table."""
        out = self.run_dir(trainer)
        out.mkdir(parents=True, exist_ok=True)
        record = {
            "model": doc.model, "preset": doc.preset, "data": doc.data, "num_pairs": self.num_pairs,
            "thresholds": self.thresholds, "monitor": self.settings(), "analyze": self.reproduce,
            "provenance": provenance(),
            "history": self.history,
        }
        tmp = out / f".{HISTORY_FILE}.tmp"
        tmp.write_text(json.dumps(record, indent=1, allow_nan=False))
        tmp.replace(out / HISTORY_FILE)
        wandb_loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        for logger in wandb_loggers:
            self.log_wandb(logger, trainer.global_step)
        if not self.plot:
            return
        from lit_stbias.reports import plot_layer_percent  # plotting lives in reports/

        epoch, stage = doc.context["epoch"], doc.context["stage"]
        titled = BiasDocument(**{**doc.__dict__, "model": f"{doc.model} epoch {epoch}"})
        png = plot_layer_percent(titled, out / PLOT_DIR / f"{stage}_epoch_{epoch:03d}.png")
        for logger in wandb_loggers:
            logger.log_image("bias/layer_percent", [str(png)], step=trainer.global_step, caption=[f"epoch {epoch}"])

    def table_rows(self) -> list[list[Any]]:
        """One row per (measurement, tap) under :data:`TABLE_COLUMNS`, from the history."""
        rows = []
        for entry in self.history:
            context = entry.get("context", {})
            for tap in entry["layer_order"]:
                layer = entry["layers"][tap]
                pct, units, scores = layer["layer_percent"], layer["unit_counts"], layer["layer_scores"]
                rows.append([context.get("epoch"), context.get("global_step"), context.get("stage"), tap,
                             pct["static"], pct["dynamic"], pct["identical"], units["static"], units["dynamic"],
                             units["joint"], units["residual"], scores["static"], scores["dynamic"]])
        return rows

    def log_wandb(self, logger: WandbLogger, step: int) -> None:
        """A line chart per tap (static, dynamic, identical % against epoch) and the table of every epoch."""
        import wandb

        rows = self.table_rows()
        payload: dict[str, Any] = {"bias_table": wandb.Table(columns=TABLE_COLUMNS, data=rows)}
        for tap in self.history[-1]["layer_order"]:
            mine = [r for r in rows if r[3] == tap]
            payload[f"bias_chart/{tap}"] = wandb.plot.line_series(
                xs=[r[0] for r in mine], ys=[[r[4] for r in mine], [r[5] for r in mine], [r[6] for r in mine]],
                keys=["static", "dynamic", "identical"], title=f"{tap}: % of dimensions", xname="epoch")
        logger.log_metrics(payload, step=step)

    # -- checkpoint state ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))


def final_bias(history: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last entry's per-tap percentages, unit counts (of how many units) and scores, for summaries."""
    if not history:
        return {}
    last = history[-1]
    return {
        tap: {"layer_percent": d["layer_percent"], "unit_counts": d["unit_counts"], "num_units": d["num_units"],
              "layer_scores": d["layer_scores"]}
        for tap, d in last["layers"].items()
    }


__all__ = ["BiasMonitor", "HISTORY_FILE", "PLOT_DIR", "TABLE_COLUMNS", "final_bias", "flat_metrics"]
