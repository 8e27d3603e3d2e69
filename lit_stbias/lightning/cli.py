"""The training command line: LightningCLI's ``fit``, ``validate`` and ``test`` over the modules, DataModules and
BiasMonitor, with a run folder per run.

Every run lives in one folder, ``<out>/<name>`` (name default: ``<model>-<data>[-shuffled]``; ``validate`` and
``test`` write into ``<name>-validate`` / ``<name>-test``)::

    config.yaml          the full configuration (re-run it with ``fit --config``)
    checkpoints/         best-*.ckpt (best val/acc1 or val/iou) and last.ckpt
    csv/version_N/       metrics.csv (one version per invocation: a resume adds one)
    wandb/               the W&B run, offline unless the user asks for W&B online (``wandb sync`` uploads it)
    bias_history.json    every bias measurement, per epoch and tap
    bias/                the per-epoch bar charts
    summary.json         model, checkpoints, final accuracies and final bias per tap

The folder name is a function of the configuration, so ``--ckpt_path last`` finds the run to resume and every
DDP process agrees on it without talking to the others. Everything the command line can get wrong (names,
checkpoints, devices, an occupied run folder) is checked right after parsing, before anything is built or
written, and raised as a one-line :class:`UsageError`.
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

from jsonargparse import ArgumentParser
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.accelerators import AcceleratorRegistry
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from lit_stbias.lightning.bias_monitor import HISTORY_FILE, BiasMonitor, final_bias
from lit_stbias.lightning.data import VideoDataModule
from lit_stbias.lightning.modules import TrainModule, check_model_name
from lit_stbias.models import CheckpointError, read_checkpoint

SUMMARY_FILE = "summary.json"
WANDB_ID_FILE = "wandb_id.txt"
#: files a run writes into its folder; their presence marks the folder as taken, --overwrite removes exactly these
RUN_ARTIFACTS = ("checkpoints", "csv", "wandb", "bias", HISTORY_FILE, SUMMARY_FILE, "config.yaml", WANDB_ID_FILE)
#: logged keys plotted against the epoch in W&B (the rest against the training step)
EPOCH_METRIC_PREFIXES = ("val/", "test/", "bias/")


class UsageError(ValueError):
    """A mistake on the command line or in a config; the message is one line that says what to do.
    ``train.py`` prints it on stderr and exits with code 2."""


class Interrupted(Exception):
    """A run stopped by Ctrl-C after Lightning's graceful shutdown; the message is one line saying what was kept
    and how to go on. ``train.py`` prints it on stderr and exits with code 130 (128 + SIGINT)."""


def is_launcher_rank_zero() -> bool:
    """True in the process a user started (not in DDP children that Lightning or a cluster launched)."""
    return all(os.environ.get(k, "0") == "0" for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def default_run_name(config) -> str:
    """``<model>-<data>[-shuffled]`` from one subcommand's parsed configuration."""
    model = config.model.init_args
    data = config.data.init_args
    spec = data.get("data") or f"synthetic:{data.get('task')}"
    tag = str(spec).replace(":", "-").replace("/", "-").replace("\\", "-").strip("-.") or "data"
    name = f"{model.model_name}-{tag}"
    return name + ("-shuffled" if model.get("shuffle_frames") else "")


def import_class(class_path: str) -> type:
    module_name, _, class_name = class_path.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)


def check_test_set(config) -> None:
    """``test`` needs a module with a test step and data with a test set (synthetic, or ``--data.test_data``)."""
    module = import_class(config.model.class_path)
    if module.test_step is LightningModule.test_step:
        raise UsageError(f"test: {module.__name__} has no test step; evaluate it with validate.")
    data = config.data.init_args
    spec = data.get("data")
    if spec and not str(spec).startswith("synthetic") and not data.get("test_data"):
        raise UsageError(f"test: --data.data {spec} has no test set; give a labelled test folder with "
                         "--data.test_data FOLDER, or use validate.")


def check_devices(accelerator: Any, devices: Any, prefix: str = "--trainer.") -> None:
    """``accelerator`` names an available accelerator and ``devices`` is a device request it accepts (Lightning's
    own parsing), else a :class:`UsageError` naming the option (``<prefix>accelerator``, ``<prefix>devices``):
    ``train.py``'s ``--trainer.*`` and ``analyze.py``'s ``--accelerator``/``--devices`` (``prefix="--"``)."""
    if not isinstance(accelerator, str):
        return  # an Accelerator instance from a config: Lightning checks it
    name = accelerator.lower()
    registry = AcceleratorRegistry
    if name == "auto":
        name = next((n for n in ("cuda", "mps") if registry[n]["accelerator"].is_available()), "cpu")
    elif name == "gpu":
        name = next((n for n in ("cuda", "mps") if registry[n]["accelerator"].is_available()), "")
        if not name:
            raise UsageError(f"{prefix}accelerator gpu: this machine has no usable GPU (CUDA or MPS); "
                             f"use {prefix}accelerator cpu or auto.")
    elif name not in registry:
        raise UsageError(f"{prefix}accelerator {accelerator}: unknown accelerator; choose one of auto, gpu, "
                         f"{', '.join(sorted(registry.available_accelerators()))}.")
    accel = registry[name]["accelerator"]
    if not accel.is_available():
        raise UsageError(f"{prefix}accelerator {accelerator}: not available on this machine; "
                         f"use {prefix}accelerator cpu or auto.")
    if devices == "auto":
        return
    try:
        accel.parse_devices(devices)
    except Exception as err:  # Lightning raises TypeError, ValueError or MisconfigurationException
        reason = " ".join(str(err).split())
        raise UsageError(f"{prefix}devices {devices}: {reason} Give a number of devices (e.g. 2), a list of "
                         f"device indices, or auto.") from None


class SaveRunConfig(SaveConfigCallback):
    """Write ``config.yaml`` at the top of the run folder (not inside a logger's version folder)."""

    def save_config(self, trainer: Trainer, pl_module, stage: str) -> None:
        path = Path(trainer.default_root_dir) / self.config_filename
        path.parent.mkdir(parents=True, exist_ok=True)
        self.parser.save(self.config, str(path), skip_none=False, overwrite=True, multifile=self.multifile)


class EpochAxisWandbLogger(WandbLogger):
    """A WandbLogger whose validation, test and bias charts have the epoch on their x axis.

    Lightning's WandbLogger puts every key on ``trainer/global_step`` with a ``*`` glob. W&B resolves a key
    that several globs match in no fixed order, so each epoch-level key is defined by its exact name
    (``define_metric(key, step_metric="epoch")``) the first time it is logged; exact names win over globs.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._epoch_keys: set[str] = set()

    @rank_zero_only
    def log_metrics(self, metrics, step: Optional[int] = None) -> None:
        new = [k for k in metrics if k.startswith(EPOCH_METRIC_PREFIXES) and k not in self._epoch_keys]
        if new:
            experiment = self.experiment
            if not self._epoch_keys:
                experiment.define_metric("epoch")
            for key in new:
                experiment.define_metric(key, step_metric="epoch", step_sync=True)
            self._epoch_keys.update(new)
        super().log_metrics(metrics, step)


class TrainParser(LightningArgumentParser):
    """LightningCLI's parser, remembering its subcommands so that ``train.py --help`` can also list the
    experiments that ``train.py`` runs itself (``default``, ``shuffle-experiment``)."""

    subcommands_action = None

    def add_subcommands(self, *args: Any, **kwargs: Any):
        self.subcommands_action = super().add_subcommands(*args, **kwargs)
        return self.subcommands_action


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    """``{class_path, init_args}`` as one flat dict (what a W&B run config shows best)."""
    if isinstance(config, dict) and "class_path" in config:
        return {"class": config["class_path"].rpartition(".")[2], **(config.get("init_args") or {})}
    return config


class TrainCLI(LightningCLI):
    """LightningCLI with the run layout above, CSV and W&B logging (``--wandb*``), best/last checkpoints
    (``--checkpoint.*``), a BiasMonitor (``--bias.*``) and the options ``--out``, ``--name``, ``--overwrite``.

    Subcommands: ``fit``, ``validate``, ``test`` (Lightning's; ``--ckpt_path last`` resumes or evaluates this
    run's last checkpoint). ``extra_subcommands`` are parsers of other commands listed in ``--help`` only;
    ``train.py`` runs those itself.
    """

    def __init__(self, args: Any = None, extra_subcommands: dict[str, ArgumentParser] | None = None,
                 **kwargs: Any) -> None:
        self.extra_subcommands = extra_subcommands or {}
        self.started = time.perf_counter()
        self.summary: dict[str, Any] = {}
        super().__init__(
            model_class=TrainModule,
            subclass_mode_model=True,
            datamodule_class=VideoDataModule,
            subclass_mode_data=True,
            save_config_callback=SaveRunConfig,
            save_config_kwargs={"save_to_log_dir": False},
            parser_class=TrainParser,
            seed_everything_default=0,  # a fixed seed: re-running a command (or resuming it) repeats it
            auto_configure_optimizers=False,  # the modules own their optimizer (--model.optimizer sgd|adamw)
            args=args,
            # parse errors (an unknown key, a wrong type) raise instead of printing the whole usage, so that
            # train.py reports them in one line like its other usage errors
            parser_kwargs={"description": "Train a video model and track its static/dynamic bias every epoch.",
                           "prog": "train.py", "exit_on_error": False,
                           **{name: {"exit_on_error": False} for name in self.subcommands()}},
            **kwargs,
        )

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """fit, validate and test (the modules have no predict step)."""
        return {k: v for k, v in LightningCLI.subcommands().items() if k != "predict"}

    def setup_parser(self, add_subcommands: bool, main_kwargs: dict[str, Any], subparser_kwargs: dict[str, Any]):
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        action = getattr(self.parser, "subcommands_action", None)
        for name, parser in self.extra_subcommands.items():
            action.add_subcommand(name, parser, help=parser.description)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--out", type=str, default="runs", help="root folder of runs")
        parser.add_argument("--name", type=Optional[str], default=None,
                            help="run folder name, a plain folder name (default: <model>-<data>[-shuffled])")
        parser.add_argument("--overwrite", type=bool, default=False,
                            help="start afresh in a run folder that holds a previous run's files (removes them)")
        parser.add_argument("--wandb", type=bool, default=True, help="also log to W&B")
        parser.add_argument("--wandb_mode", type=Optional[Literal["offline", "online"]], default=None,
                            help="offline (files in the run folder, `wandb sync` uploads them) or online; "
                                 "default: WANDB_MODE if set, else offline")
        parser.add_argument("--wandb_project", type=str, default="lit_stbias", help="W&B project")
        parser.add_argument("--wandb_entity", type=Optional[str], default=None, help="W&B entity (user or team)")
        parser.add_argument("--wandb_group", type=Optional[str], default=None,
                            help="W&B group, e.g. one per experiment so seeds and variants sit together")
        parser.add_argument("--wandb_tags", type=Optional[list[str]], default=None, help="W&B tags")
        parser.add_lightning_class_args(BiasMonitor, "bias")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        # best (on the module's validation metric, filled in from the module when not given) and last; the
        # folder is always the run's checkpoints/
        parser.set_defaults({"checkpoint.mode": "max", "checkpoint.save_last": True,
                             "checkpoint.filename": "best-epoch{epoch:03d}",
                             "checkpoint.auto_insert_metric_name": False})

    # -- checks, right after parsing ---------------------------------------------------------------------------
    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse, then check everything that can be wrong before anything is built or written."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if subcommand in self.extra_subcommands:
            raise UsageError(f"{subcommand} is run by train.py (lit_stbias.lightning.experiments.main), "
                             "not by TrainCLI.")
        config = self.config[subcommand]
        self._check_model_name(config.model)
        name = config.name or default_run_name(config)
        if not name or Path(name).name != name or name in (".", "..") or os.sep in name or "/" in name:
            raise UsageError(f"--name {name}: not a plain folder name; give a name without '/' or '..' "
                             "(the run goes into --out).")
        self.fit_dir = Path(config.out).resolve() / name
        self.run_dir = self.fit_dir if subcommand == "fit" else self.fit_dir.with_name(f"{name}-{subcommand}")
        config.ckpt_path = self._resolve_ckpt(config.ckpt_path, self.fit_dir)
        self.resuming = subcommand == "fit" and config.ckpt_path is not None
        check_devices(config.trainer.accelerator, config.trainer.devices)
        if subcommand == "test":
            check_test_set(config)
        if config.trainer.enable_checkpointing is False:
            raise UsageError("--trainer.enable_checkpointing false: runs always keep their last checkpoint; "
                             "use --checkpoint.save_top_k 0 to keep no best checkpoints.")
        if not self.resuming and not config.overwrite and is_launcher_rank_zero():
            taken = [f for f in RUN_ARTIFACTS if (self.run_dir / f).exists()]
            if taken:
                hint = "Resume it with --ckpt_path last, choose" if subcommand == "fit" else "Choose"
                raise UsageError(f"{self.run_dir} holds a previous run ({', '.join(taken)}). {hint} another "
                                 "--name, or pass --overwrite true to replace it.")

    @staticmethod
    def _check_model_name(model) -> None:
        """A usage error naming the available models, before anything is built."""
        task = getattr(import_class(model.class_path), "task", "")
        if task:
            try:
                check_model_name(model.init_args.get("model_name"), task)
            except ValueError as err:
                raise UsageError(f"--model.model_name: {err}") from None

    @staticmethod
    def _resolve_ckpt(ckpt_path: str | None, fit_dir: Path) -> str | None:
        """``last`` means this run's last.ckpt; the file must exist and read as a safe checkpoint."""
        if ckpt_path is None:
            return None
        path = fit_dir / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
        if not path.is_file():
            hint = f" (the run folder {fit_dir} has no last.ckpt yet)" if ckpt_path == "last" else ""
            raise UsageError(f"--ckpt_path {ckpt_path}: checkpoint not found: {path}{hint}; give an existing "
                             "checkpoint, or leave --ckpt_path out to start afresh.")
        try:
            read_checkpoint(path)
        except CheckpointError as err:
            raise UsageError(f"--ckpt_path {ckpt_path}: {err}") from None
        return str(path.resolve())

    # -- the run folder and the trainer --------------------------------------------------------------------
    def before_instantiate_classes(self) -> None:
        """Point the checkpoints at the run's checkpoints/ (validate and test write none; it is the folder
        their ``last`` comes from) and the best checkpoint at the module's validation metric."""
        config = self.config[self.subcommand]
        config.checkpoint.dirpath = str(self.fit_dir / "checkpoints")
        if config.checkpoint.monitor is None:
            config.checkpoint.monitor = getattr(import_class(config.model.class_path), "monitor", None) or None

    def instantiate_classes(self) -> None:
        """LightningCLI's, with a module's or DataModule's own refusal of its arguments (a ValueError that
        names the problem, which jsonargparse wraps in a report of every type it tried) as a usage error."""
        try:
            super().instantiate_classes()
        except ValueError as err:
            cause: BaseException = err
            while isinstance(cause.__cause__ or cause.__context__, ValueError):
                cause = cause.__cause__ or cause.__context__
            raise UsageError(" ".join(str(cause).split())) from err

    def loggers(self) -> list:
        """CSV always; W&B unless ``--wandb false``, with the run config holding model, data and monitor."""
        config = self.config[self.subcommand]
        loggers: list = [CSVLogger(str(self.run_dir), name="csv")]
        if not config.wandb:
            return loggers
        id_file = self.run_dir / WANDB_ID_FILE
        run_id = id_file.read_text().strip() if self.resuming and id_file.is_file() else None
        mode = config.wandb_mode or os.environ.get("WANDB_MODE") or "offline"
        os.environ.setdefault("WANDB_SILENT", "true")  # the summary printed at the end says where the files are
        loggers.append(EpochAxisWandbLogger(
            save_dir=str(self.run_dir), project=config.wandb_project, name=self.run_dir.name, id=run_id,
            entity=config.wandb_entity, group=config.wandb_group, tags=config.wandb_tags, mode=mode,
            config=self.wandb_config(),
        ))
        return loggers

    def wandb_config(self) -> dict[str, Any]:
        """What the W&B run records: model, data, bias monitor, checkpointing, seed and trainer settings."""
        config = self.config[self.subcommand].as_dict()
        scalar = (str, int, float, bool, type(None))
        trainer = {k: v for k, v in config["trainer"].items()
                   if isinstance(v, scalar) or (isinstance(v, list) and all(isinstance(x, scalar) for x in v))}
        return {"subcommand": self.subcommand, "model": _plain(config["model"]), "data": _plain(config["data"]),
                "bias": config["bias"], "checkpoint": config["checkpoint"], "trainer": trainer,
                "seed_everything": config["seed_everything"], "run_dir": str(self.run_dir),
                "ckpt_path": config.get("ckpt_path")}

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """LightningCLI's trainer, in the run folder, with this run's loggers unless ``--trainer.logger`` is set."""
        kwargs.setdefault("default_root_dir", str(self.run_dir))
        if self.config[self.subcommand].trainer.logger in (None, True):
            kwargs.setdefault("logger", self.loggers())
        return super().instantiate_trainer(**kwargs)

    # -- around the run -------------------------------------------------------------------------------------
    def fit(self, **kwargs: Any) -> None:
        self._run_trainer("fit", **kwargs)

    def validate(self, **kwargs: Any) -> None:
        self._run_trainer("validate", **kwargs)

    def test(self, **kwargs: Any) -> None:
        self._run_trainer("test", **kwargs)

    def _run_trainer(self, stage: str, **kwargs: Any) -> None:
        """The Trainer's ``stage``, with Lightning's answer to Ctrl-C (a graceful shutdown, then exit status 1)
        turned into :class:`Interrupted`, whose line says where the last checkpoint is and how to resume."""
        try:
            getattr(self.trainer, stage)(**kwargs)
        except SystemExit:
            if not self.trainer.interrupted:
                raise
            if self.trainer.is_global_zero:
                self._keep_wandb_id()  # so that the resumed run continues the same W&B run
            raise Interrupted(self._interrupted_note(stage)) from None

    def _keep_wandb_id(self) -> None:
        """The W&B run's id in the run folder, for a resume (``--ckpt_path last``) to continue that W&B run."""
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and logger.version:
                (self.run_dir / WANDB_ID_FILE).write_text(logger.version)

    def _interrupted_note(self, stage: str) -> str:
        last = self.fit_dir / "checkpoints" / "last.ckpt"
        if stage != "fit":
            return (f"interrupted; {stage} keeps nothing to resume: run it again with --overwrite true "
                    f"({self.run_dir} holds the interrupted run's logs).")
        if not last.is_file():
            return (f"interrupted in epoch {self.trainer.current_epoch}, before the first checkpoint; start again "
                    f"with --overwrite true ({self.run_dir} holds the interrupted run's logs).")
        return (f"interrupted in epoch {self.trainer.current_epoch}; {last} holds the last completed epoch: resume "
                f"with train.py fit --config {self.run_dir / 'config.yaml'} --ckpt_path last.")

    def before_fit(self) -> None:
        """Everything is built and the data checked: now (and only now) replace a previous run's files, when
        told to."""
        setup_for = getattr(self.datamodule, "setup_for", None)
        if setup_for is not None:
            setup_for(self.model, self.subcommand)
        if self.resuming or not is_launcher_rank_zero():
            return
        for path in (self.run_dir / f for f in RUN_ARTIFACTS):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

    before_validate = before_fit
    before_test = before_fit

    def after_fit(self) -> None:
        self.summary = summarize(self, time.perf_counter() - self.started)
        if not self.trainer.is_global_zero:
            return
        self._keep_wandb_id()
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and logger.version:
                logger.experiment.finish()  # one W&B run per training run, also when several run in one process
        path = self.run_dir / SUMMARY_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.summary, indent=1))
        print_summary(self.summary, path)

    after_validate = after_fit
    after_test = after_fit


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
    fit = cli.subcommand == "fit"
    return {
        "model": model.hparams.get("model_name"),
        "preset": model.hparams.get("preset"),
        "module": type(model).__name__,
        "data": getattr(cli.datamodule, "spec", None),
        "shuffle_frames": bool(model.hparams.get("shuffle_frames", False)),
        "seed": cli.config[cli.subcommand].seed_everything,
        "stage": cli.subcommand,
        "run_dir": str(cli.run_dir),
        "world_size": trainer.world_size,
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "seconds": round(seconds, 1),
        "monitor": model.monitor,
        "best_score": _number(checkpoint.best_model_score) if checkpoint and fit else None,
        "best_checkpoint": (checkpoint.best_model_path or None) if checkpoint and fit else None,
        "last_checkpoint": (checkpoint.last_model_path or None) if checkpoint and fit else None,
        "ckpt_path": cli.config[cli.subcommand].ckpt_path,
        "metrics": {k: _number(v) for k, v in trainer.callback_metrics.items() if not k.startswith("bias/")},
        "bias": final_bias(monitor.history) if monitor else {},
        "bias_history": str(cli.run_dir / HISTORY_FILE) if monitor and monitor.history else None,
        "wandb_dir": wandb_dir,
        "csv_dir": csv_dir,
    }


def run(args: Any, extra_subcommands: dict[str, ArgumentParser] | None = None) -> dict[str, Any]:
    """One run: ``args`` as on the command line (``["fit", "--config", ...]``), as a dict (``{"fit": config}``)
    or None (``sys.argv``). Returns the summary (the same on every rank)."""
    with warnings.catch_warnings():
        # args given on purpose (the experiments, tests) while sys.argv holds others
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        cli = TrainCLI(args=args, extra_subcommands=extra_subcommands)
    return cli.summary


def print_summary(summary: dict[str, Any], path: Path) -> None:
    metrics = summary["metrics"]
    shown = ", ".join(f"{k} {v:.3f}" for k, v in sorted(metrics.items())
                      if k.startswith(("val/", "test/")) and v is not None)
    lines = [
        "",
        f"run:             {summary['run_dir']}  ({summary['model']}/{summary['preset']} on {summary['data']}, "
        f"{summary['stage']}, {summary['seconds']:.0f} s)",
        f"metrics:         {shown}",
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


__all__ = ["EPOCH_METRIC_PREFIXES", "RUN_ARTIFACTS", "SUMMARY_FILE", "EpochAxisWandbLogger", "Interrupted",
           "SaveRunConfig", "TrainCLI", "UsageError", "check_devices", "default_run_name", "run", "summarize"]
