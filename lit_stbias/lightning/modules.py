"""LightningModules: action recognition with any zoo model, and what every module shares (:class:`TrainModule`;
video object segmentation: :mod:`lit_stbias.lightning.vos`).

Each module says what a step is and nothing else: the Trainer owns devices, precision (``--trainer.precision
16-mixed``), DDP, logging and checkpoints. The network is ``self.model``, built from (name, preset,
num_classes), so ``save_hyperparameters`` records everything a checkpoint needs to rebuild it and
``lit_stbias.models.load_weights`` reads a checkpoint's ``model.*`` weights into a bare zoo model.

Inputs are fed in [0, 1], as the bias probe feeds its stylized views; zoo models normalise them with their
``input_spec.mean/std`` themselves, so training, probing and published weights see the same statistics.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from lit_stbias.models import ClipInput, InputSpec, aliases, available, build, load_weights, resolve
from lit_stbias.pairs import ActionPairs, shuffle_permutation

OPTIMIZERS = ("sgd", "adamw")


def mixed_generator(*keys: int) -> torch.Generator:
    """A CPU generator seeded from integer keys alone (e.g. seed, epoch, video index): reproducible in any
    order, worker or rank, and after resuming, unlike the global RNG."""
    state = np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def check_model_name(name: str, task: str) -> None:
    """Fail at construction with the list of models of this task, not deep inside a builder. pytorchvideo hub
    names (``slow_r50``, ``x3d_m``, ...) are accepted as the aliases they are."""
    names = available(task)
    if name not in names and aliases().get(name, ("",))[0] not in names:
        raise ValueError(f"unknown {task} model {name!r}. Available {task} models: {', '.join(names)} "
                         "(or a pytorchvideo hub name of one of them).")


class TrainModule(LightningModule):
    """What both modules share: the optimizer (SGD or AdamW) with a per-step cosine schedule, optional initial
    weights, and the reseeding that makes a resumed run repeat the uninterrupted one."""

    task = ""
    monitor = ""  # the validation metric that picks the best checkpoint (mode "max")

    def __init__(self) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_model_name(self.hparams.model_name, self.task)
        # checkpoints record the canonical (name, preset), so a hub name such as slow_r50 reads back as it is built
        self.hparams.model_name, self.hparams.preset = resolve(self.hparams.model_name, self.hparams.preset)
        if self.hparams.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.hparams.optimizer!r}.")

    def _build(self, **kwargs: Any) -> None:
        hp = self.hparams
        self.model = build(hp.model_name, hp.preset, **dict(hp.model_overrides or {}), **kwargs)
        if hp.init_weights:
            load_weights(self.model, hp.init_weights, strict=False)

    @property
    def input_spec(self) -> InputSpec:
        return self.model.input_spec

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Lightning checkpoints do not carry RNG states, and loaders draw from the global RNG at times that
        # differ between a fresh and a resumed run; seeding each step's dropout & co. from (seed, epoch,
        # batch, rank) makes a resumed run draw exactly what the uninterrupted one drew.
        key = mixed_generator(self.hparams.seed, self.current_epoch, batch_idx, self.global_rank)
        torch.manual_seed(key.initial_seed())

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        if hp.optimizer == "sgd":
            optimizer = torch.optim.SGD(self.parameters(), lr=hp.lr, momentum=hp.momentum,
                                        weight_decay=hp.weight_decay, nesterov=hp.momentum > 0)
        else:
            optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warmup = min(hp.warmup_steps, total - 1)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup)
        if warmup > 0:
            ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=warmup)
            schedule = torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, cosine], milestones=[warmup])
        else:
            schedule = cosine
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class ActionRecognitionModule(TrainModule):
    """Clip classification with any action model of the zoo.

    Args:
        model_name: one of ``lit_stbias.models.available("action")`` (``slow``, ``fast``, ``slowfast``, ...).
        preset: ``"tiny"`` (trains on a CPU; the default for model names), ``"full"`` (the published
            configuration) or another preset of the model; a pytorchvideo hub name brings its own.
        num_classes: classifier outputs; must match the data.
        temporal_stride: the model sees every ``stride``-th frame of the clip (see :class:`ClipInput`).
        shuffle_frames: train and validate on clips whose frames are shuffled (the static-only baseline).
            The frames the model sees are shuffled, after the temporal subsampling, so the baseline sees the
            same frames as the ordered model, out of order. Each clip gets its own order, drawn from
            (seed, epoch, index) in training and (seed, index) in validation, so validation clips are the
            same every epoch.
        optimizer, lr, momentum, weight_decay, warmup_steps: SGD (Nesterov) or AdamW, linear warm-up then
            cosine decay to 0 over the whole run, stepped per batch.
        label_smoothing: of the cross-entropy.
        model_overrides: extra builder arguments (e.g. ``{"dropout_rate": 0.0}``).
        init_weights: a checkpoint to start from (any format ``load_weights`` reads; non-strict).
        seed: seeds frame shuffling and the per-epoch RNG.
    """

    task = "action"
    monitor = "val/acc1"

    def __init__(
        self,
        model_name: str = "slow",
        preset: str | None = None,
        num_classes: int = 8,
        temporal_stride: int = 1,
        shuffle_frames: bool = False,
        optimizer: str = "sgd",
        lr: float = 0.05,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        warmup_steps: int = 0,
        label_smoothing: float = 0.0,
        model_overrides: dict[str, Any] | None = None,
        init_weights: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self._build(num_classes=num_classes)
        self.clip_input = ClipInput(self.model.input_spec, temporal_stride)
        top5 = min(5, num_classes)
        self.train_acc1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_acc1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_acc5 = MulticlassAccuracy(num_classes, top_k=top5, average="micro")
        self.test_acc1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.test_acc5 = MulticlassAccuracy(num_classes, top_k=top5, average="micro")

    @property
    def clip_frames(self) -> int:
        """Frames a clip needs so the model gets its ``input_spec.num_frames``."""
        return self.model.input_spec.num_frames * self.hparams.temporal_stride

    def pairs(self, source, seed: int) -> ActionPairs:
        """The bias probe's pairs over ``source``, in the input form this module trains on."""
        return ActionPairs(source, seed=seed, pathways=self.clip_input)

    def shuffle(self, video: Tensor, index: Tensor | None) -> Tensor:
        """Each clip's frames (B, C, T, H, W) in its own random order; keyed by (seed, epoch, index) so it is
        reproducible."""
        epoch = self.current_epoch if self.training else -1
        out = []
        for i, clip in enumerate(video):
            key = int(index[i]) if index is not None else i
            perm = shuffle_permutation(clip.shape[1], mixed_generator(self.hparams.seed, epoch, key))
            out.append(clip[:, perm.to(clip.device)])
        return torch.stack(out)

    def model_input(self, video: Tensor, index: Tensor | None = None) -> Any:
        """What the network gets from (B, C, T, H, W) clips: every ``temporal_stride``-th frame, shuffled
        when ``shuffle_frames`` (after the subsampling, so the shuffled model sees the frames the ordered one
        sees), packed as the model wants (SlowFast pathways)."""
        if not self.hparams.shuffle_frames:
            return self.clip_input(video)
        seen = video[..., :: self.hparams.temporal_stride, :, :]  # ClipInput's subsampling, before the shuffle
        return self.clip_input.spec.pack(self.shuffle(seen, index))

    def forward(self, video: Tensor) -> Tensor:
        """Logits of (B, C, T, H, W) clips in [0, 1], frames in order."""
        return self.model(self.clip_input(video))

    def _step(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        labels = batch["label"]
        logits = self.model(self.model_input(batch["video"], batch.get("index")))
        loss = F.cross_entropy(logits, labels, label_smoothing=self.hparams.label_smoothing)
        return loss, logits, labels

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        loss, logits, labels = self._step(batch)
        self.train_acc1(logits, labels)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(labels))
        self.log("train/acc1", self.train_acc1, on_step=False, on_epoch=True, batch_size=len(labels))
        return loss

    def _evaluate(self, batch: Mapping[str, Any], stage: str, acc1: MulticlassAccuracy,
                  acc5: MulticlassAccuracy) -> None:
        loss, logits, labels = self._step(batch)
        acc1(logits, labels)
        acc5(logits, labels)
        n = len(labels)
        self.log(f"{stage}/loss", loss, sync_dist=True, batch_size=n)
        self.log(f"{stage}/acc1", acc1, prog_bar=True, batch_size=n)
        self.log(f"{stage}/acc5", acc5, batch_size=n)

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_acc1, self.val_acc5)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        """As validation, on the DataModule's test set (``test/acc1``, ``test/acc5``, ``test/loss``)."""
        self._evaluate(batch, "test", self.test_acc1, self.test_acc5)


__all__ = ["ActionRecognitionModule", "OPTIMIZERS", "TrainModule"]
