"""The training command line: LightningCLI over the modules, DataModules and BiasMonitor, plus the run layout.

Every run lives in one folder, ``<out>/<name>`` (name default: ``<model>-<data>[-shuffled]``)::

    config.yaml          the full configuration (re-run it with --config)
    checkpoints/         best-*.ckpt (best val/acc1 or val/iou) and last.ckpt
    csv/version_N/       metrics.csv (one version per invocation: a resume adds one)
    wandb/               the W&B run, offline unless WANDB_MODE says otherwise (``wandb sync`` uploads it)
    bias_history.json    every bias measurement, per epoch and tap
    bias/                the per-epoch bar charts
    summary.json         model, checkpoints, final accuracies and final bias per tap

The folder name is a function of the configuration, so ``--ckpt_path last`` finds the run to resume and every
DDP process agrees on it without talking to the others.
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Literal, Optional

os.environ.setdefault("WANDB_MODE", "offline")  # runs stay on disk unless the user asked for W&B online
os.environ.setdefault("WANDB_SILENT", "true")  # the summary printed at the end says where the W&B files are

from lightning.pytorch import Trainer  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback  # noqa: E402
from lightning.pytorch.loggers import CSVLogger, WandbLogger  # noqa: E402

from lit_stbias.lightning.bias_monitor import HISTORY_FILE, BiasMonitor, final_bias  # noqa: E402
from lit_stbias.lightning.data import VideoDataModule  # noqa: E402
from lit_stbias.lightning.modules import TrainModule  # noqa: E402
from lit_stbias.models import available  # noqa: E402

SUMMARY_FILE = "summary.json"
WANDB_ID_FILE = "wandb_id.txt"
#: files a run writes into its folder; --overwrite removes exactly these, nothing else
RUN_ARTIFACTS = ("checkpoints", "csv", "wandb", "bias", HISTORY_FILE, SUMMARY_FILE, "config.yaml", WANDB_ID_FILE)


def is_launcher_rank_zero() -> bool:
    """True in the process a user started (not in DDP children that Lightning or a cluster launched)."""
    return all(os.environ.get(k, "0") == "0" for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def default_run_name(config) -> str:
    """``<model>-<data>[-shuffled]`` from the parsed configuration."""
    model = config.model.init_args
    data = config.data.init_args
    spec = data.get("data") or f"synthetic:{data.get('task')}"
    tag = str(spec).replace(":", "-").replace("/", "-").replace("\\", "-").strip("-.") or "data"
    name = f"{model.model_name}-{tag}"
    return name + ("-shuffled" if model.get("shuffle_frames") else "")


class SaveRunConfig(SaveConfigCallback):
    """Write ``config.yaml`` at the top of the run folder (not inside a logger's version folder)."""

    def save_config(self, trainer: Trainer, pl_module, stage: str) -> None:
        path = Path(trainer.default_root_dir) / self.config_filename
        path.parent.mkdir(parents=True, exist_ok=True)
        self.parser.save(self.config, str(path), skip_none=False, overwrite=True, multifile=self.multifile)


class TrainCLI(LightningCLI):
    """LightningCLI with the run layout above, W&B + CSV logging, best/last checkpoints, a BiasMonitor
    (``--bias.*``) and the options ``--out``, ``--name``, ``--ckpt_path``, ``--stage``, ``--overwrite``,
    ``--wandb``. Built with ``run=False``: :func:`run` calls fit or validate."""

    def __init__(self, args: Any = None, **kwargs: Any) -> None:
        super().__init__(
            model_class=TrainModule,
            subclass_mode_model=True,
            datamodule_class=VideoDataModule,
            subclass_mode_data=True,
            save_config_callback=SaveRunConfig,
            save_config_kwargs={"save_to_log_dir": False},
            seed_everything_default=0,  # a fixed seed: re-running a command (or resuming it) repeats it
            auto_configure_optimizers=False,  # the modules own their optimizer (--model.optimizer sgd|adamw)
            run=False,
            args=args,
            parser_kwargs={"description": "Train a video model and track its static/dynamic bias every epoch."},
            **kwargs,
        )

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--out", type=str, default="runs", help="root folder of runs")
        parser.add_argument("--name", type=Optional[str], default=None,
                            help="run folder name (default: <model>-<data>[-shuffled])")
        parser.add_argument("--ckpt_path", type=Optional[str], default=None,
                            help="resume (fit) or evaluate (validate): 'last' = this run's last.ckpt, or a path")
        parser.add_argument("--stage", type=Literal["fit", "validate"], default="fit",
                            help="fit, or validate a checkpoint (the run folder gets a '-validate' suffix)")
        parser.add_argument("--overwrite", type=bool, default=False,
                            help="start afresh in a run folder that holds a previous run's files")
        parser.add_argument("--wandb", type=bool, default=True, help="also log to W&B (offline by default)")
        parser.add_argument("--wandb_project", type=str, default="lit_stbias")
        parser.add_lightning_class_args(BiasMonitor, "bias")

    # -- the run folder -----------------------------------------------------------------------------------
    def before_instantiate_classes(self) -> None:
        config = self.config
        self._check_model_name(config.model)
        name = config.name or default_run_name(config)
        if not name or Path(name).name != name or name in (".", ".."):
            raise ValueError(f"--name must be a plain folder name, got {name!r}.")
        fit_dir = Path(config.out).resolve() / name
        self.run_dir = fit_dir if config.stage == "fit" else fit_dir.with_name(f"{name}-{config.stage}")
        self.ckpt_path = self._resolve_ckpt(config.ckpt_path, fit_dir)
        if config.stage == "fit" and self.ckpt_path is None and is_launcher_rank_zero():
            self._claim(self.run_dir, config.overwrite)
        config.trainer.default_root_dir = str(self.run_dir)

    def _check_model_name(self, model) -> None:
        """A usage error naming the available models, before anything is built."""
        module_name, _, class_name = model.class_path.rpartition(".")
        task = getattr(getattr(importlib.import_module(module_name), class_name), "task", "")
        name = model.init_args.get("model_name")
        if task and name not in available(task):
            self.parser.error(f"unknown {task} model {name!r} (--model.model_name). "
                              f"Available {task} models: {', '.join(available(task))}.")

    @staticmethod
    def _resolve_ckpt(ckpt_path: str | None, fit_dir: Path) -> str | None:
        if ckpt_path is None:
            return None
        path = fit_dir / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
        if not path.is_file():
            hint = f" (the run folder {fit_dir} has no last.ckpt yet)" if ckpt_path == "last" else ""
            raise FileNotFoundError(f"checkpoint not found: {path}{hint}.")
        return str(path)

    @staticmethod
    def _claim(run_dir: Path, overwrite: bool) -> None:
        """A fresh run: refuse to mix with a previous run's checkpoints unless told to overwrite them."""
        previous = [run_dir / f for f in RUN_ARTIFACTS if (run_dir / f).exists()]
        if not previous:
            return
        if not overwrite and (run_dir / "checkpoints").exists():
            raise FileExistsError(
                f"{run_dir} holds a previous run. Resume it with --ckpt_path last, choose another --name, or "
                "pass --overwrite true to replace it."
            )
        for path in previous:
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    # -- trainer: loggers and checkpoints ---------------------------------------------------------------------
    def loggers(self) -> list:
        loggers: list = [CSVLogger(str(self.run_dir), name="csv")]
        if self.config.wandb:
            id_file = self.run_dir / WANDB_ID_FILE
            run_id = id_file.read_text().strip() if self.ckpt_path and id_file.is_file() else None
            logger = WandbLogger(save_dir=str(self.run_dir), project=self.config.wandb_project,
                                 name=self.run_dir.name, id=run_id)
            loggers.append(logger)
        return loggers

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """As LightningCLI's, plus this run's loggers (unless ``--trainer.logger`` is set) and a best/last
        ModelCheckpoint on the module's validation metric (unless the config brings its own)."""
        extra = [self._get(self.config_init, c) for c in self._parser(self.subcommand).callback_keys]
        config = {**self._get(self.config_init, "trainer", default={}), **kwargs}
        if config.get("logger") in (None, True):
            config["logger"] = self.loggers()
        configured = config.get("callbacks") or []
        configured = configured if isinstance(configured, list) else [configured]
        wants_checkpoints = self.config.stage == "fit" and config.get("enable_checkpointing") is not False
        if wants_checkpoints and not any(isinstance(c, ModelCheckpoint) for c in configured):
            extra.append(ModelCheckpoint(
                dirpath=str(self.run_dir / "checkpoints"), monitor=self.model.monitor, mode="max", save_last=True,
                filename="best-epoch{epoch:03d}", auto_insert_metric_name=False,
            ))
        return self._instantiate_trainer(config, extra)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def summarize(cli: TrainCLI, seconds: float) -> dict[str, Any]:
    """What the run produced, JSON-ready (written by rank 0 to ``summary.json``)."""
    trainer, model = cli.trainer, cli.model
    checkpoint = trainer.checkpoint_callback
    monitor = next((c for c in trainer.callbacks if isinstance(c, BiasMonitor)), None)
    wandb_dir = next((str(Path(lg.save_dir) / "wandb") for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)
    csv_dir = next((lg.log_dir for lg in trainer.loggers if isinstance(lg, CSVLogger)), None)
    return {
        "model": model.hparams.get("model_name"),
        "preset": model.hparams.get("preset"),
        "module": type(model).__name__,
        "data": getattr(cli.datamodule, "spec", None),
        "shuffle_frames": bool(model.hparams.get("shuffle_frames", False)),
        "stage": cli.config.stage,
        "run_dir": str(cli.run_dir),
        "world_size": trainer.world_size,
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "seconds": round(seconds, 1),
        "monitor": model.monitor,
        "best_score": _number(checkpoint.best_model_score) if checkpoint else None,
        "best_checkpoint": (checkpoint.best_model_path or None) if checkpoint else None,
        "last_checkpoint": (checkpoint.last_model_path or None) if checkpoint else None,
        "metrics": {k: _number(v) for k, v in trainer.callback_metrics.items() if not k.startswith("bias/")},
        "bias": final_bias(monitor.history) if monitor else {},
        "bias_history": str(cli.run_dir / HISTORY_FILE) if monitor and monitor.history else None,
        "wandb_dir": wandb_dir,
        "csv_dir": csv_dir,
    }


def run(args: Any = None) -> dict[str, Any]:
    """Parse ``args`` (list of strings, dict, or None for sys.argv), fit or validate, write and print the
    summary. Returns the summary (the same on every rank)."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        # args given on purpose (the default run, the shuffle experiment, tests) while sys.argv holds others
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        cli = TrainCLI(args=args)
    if cli.config.stage == "fit":
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.ckpt_path)
    else:
        cli.trainer.validate(cli.model, datamodule=cli.datamodule, ckpt_path=cli.ckpt_path)
    summary = summarize(cli, time.perf_counter() - start)
    if cli.trainer.is_global_zero:
        for logger in cli.trainer.loggers:
            if isinstance(logger, WandbLogger) and logger.version:
                (cli.run_dir / WANDB_ID_FILE).write_text(logger.version)
                logger.experiment.finish()  # one W&B run per training run, also when several run in one process
        path = cli.run_dir / SUMMARY_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=1))
        print_summary(summary, path)
    return summary


def print_summary(summary: dict[str, Any], path: Path) -> None:
    metrics = summary["metrics"]
    shown = ", ".join(f"{k} {v:.3f}" for k, v in sorted(metrics.items()) if k.startswith("val/") and v is not None)
    lines = [
        "",
        f"run:             {summary['run_dir']}  ({summary['model']}/{summary['preset']} on {summary['data']}, "
        f"{summary['seconds']:.0f} s)",
        f"validation:      {shown}",
        f"best checkpoint: {summary['best_checkpoint']}",
        f"last checkpoint: {summary['last_checkpoint']}",
        f"bias history:    {summary['bias_history']}",
        f"W&B files:       {summary['wandb_dir']}",
        f"CSV metrics:     {summary['csv_dir']}",
        f"summary:         {path}",
    ]
    for tap, b in summary["bias"].items():
        p = b["layer_percent"]
        lines.append(f"  bias {tap:<14} static {p['static']:5.1f}%  dynamic {p['dynamic']:5.1f}%  "
                     f"identical {p['identical']:5.1f}%")
    print("\n".join(lines), flush=True)


__all__ = ["RUN_ARTIFACTS", "SUMMARY_FILE", "SaveRunConfig", "TrainCLI", "default_run_name", "run", "summarize"]
