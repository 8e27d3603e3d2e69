"""Training the paper's VOS networks (FusionSeg, MATNet, RTNet) with Lightning, and the trivial baseline their
validation J is judged against.

Every network gets its inputs in its own form (:class:`~lit_stbias.pairs.vos_pairs.VOSInputs`): FusionSeg and
MATNet ``model(rgb, flow_image)`` on one frame, RTNet ``model(frames, flows)`` on the frame and its partner
frame with each frame's forward and backward flow images. The target is the (anchor) frame's mask.

The metric is the DAVIS region similarity J: per frame, the IoU of the predicted mask (probability > 0.5) and
the annotation (1 when both are empty); ``*/j_mean`` is its mean over the frames (``*/iou`` pools every
frame's pixels into one IoU). The baseline (:func:`blob_baseline`) predicts the same centred blob for every
frame: the mean training mask thresholded at the level that fits the training masks best.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryJaccardIndex

from lit_stbias.lightning.modules import TrainModule
from lit_stbias.pairs.vos_pairs import VOSPairs

#: mask levels the baseline's threshold is chosen from
BLOB_LEVELS = tuple(np.round(np.arange(0.05, 1.0, 0.05), 2))


def soft_iou_loss(logits: Tensor, target: Tensor, weight: Tensor | None = None, eps: float = 1.0) -> Tensor:
    """1 - soft Jaccard index of each image (sigmoid probabilities), averaged over the weighted images."""
    prob = torch.sigmoid(logits.float()).flatten(1)
    target = target.float().flatten(1)
    inter = (prob * target).sum(1)
    union = (prob + target - prob * target).sum(1)
    loss = 1 - (inter + eps) / (union + eps)
    if weight is None:
        return loss.mean()
    return (loss * weight).sum() / weight.sum().clamp_min(1)


def segmentation_loss(logits: Tensor, mask: Tensor, weight: Tensor, iou_weight: float = 1.0) -> Tensor:
    """Per-image BCE plus ``iou_weight`` x soft IoU loss, averaged over the images of weight 1 (annotated)."""
    bce = F.binary_cross_entropy_with_logits(logits.float(), mask.float(), reduction="none").flatten(1).mean(1)
    loss = (bce * weight).sum() / weight.sum().clamp_min(1)
    return loss + iou_weight * soft_iou_loss(logits, mask, weight)


def frame_jaccard(predicted: Tensor, mask: Tensor) -> Tensor:
    """DAVIS's J of each frame: IoU of two binary masks (B, ..., H, W), 1 when both are empty. Returns (B,)."""
    predicted, mask = predicted.bool().flatten(1), mask.bool().flatten(1)
    inter = (predicted & mask).sum(1).double()
    union = (predicted | mask).sum(1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


class VOSModule(TrainModule):
    """Binary video object segmentation with the zoo's VOS networks, each called in its own input form.

    Loss: BCE + ``iou_weight`` x soft IoU on the (anchor) frame's mask; frames without an annotation
    (``has_mask`` False in DAVIS-like folders) add nothing to loss or metrics. Logged: ``train/loss``,
    ``{val,test}/loss``, ``*/j_mean`` (mean per-frame J, the checkpoint monitor) and ``*/iou`` (pooled).
    RTNet's own training adds an SSIM term and supervises every side output of both streams and both frames;
    here the mask the model returns (``out1`` of the anchor frame) is the one trained, as the other outputs are
    frozen in this implementation (docs/vos.md).

    Args:
        model_name: ``fusionseg``, ``matnet`` or ``rtnet`` (``lit_stbias.models.available("vos")``).
        preset: ``"tiny"`` (trains on a CPU; the default) or ``"full"`` (the published network).
        num_classes: mask channels of the head; default (None) the network's own, which is the published one:
            FusionSeg's 2-class head (the model returns foreground minus background logits), one for MATNet and
            RTNet. So ``init_weights`` can start from the published files.
        iou_weight: weight of the soft IoU term.
        Others as :class:`~lit_stbias.lightning.ActionRecognitionModule`; defaults are AdamW.
    """

    task = "vos"
    monitor = "val/j_mean"

    def __init__(
        self,
        model_name: str = "fusionseg",
        preset: str | None = None,
        num_classes: int | None = None,
        iou_weight: float = 1.0,
        optimizer: str = "adamw",
        lr: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        warmup_steps: int = 0,
        model_overrides: dict[str, Any] | None = None,
        init_weights: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self._build(**({} if num_classes is None else {"num_classes": num_classes}))
        self.iou = {stage: BinaryJaccardIndex() for stage in ("train", "val", "test")}
        self.j_mean = {stage: MeanMetric() for stage in ("train", "val", "test")}
        # registered as submodules so they move with the module and sync under DDP
        for stage in ("train", "val", "test"):
            self.add_module(f"{stage}_iou", self.iou[stage])
            self.add_module(f"{stage}_j_mean", self.j_mean[stage])

    def pairs(self, source: Dataset, seed: int) -> VOSPairs:
        """The bias probe's pairs over a per-frame VOS source, in this network's input form."""
        return VOSPairs(source, seed=seed, spec=self.model.input_spec)

    def forward(self, rgb: Tensor, flow_image: Tensor) -> Tensor:
        """Mask logits (B, 1, H, W) from the network's inputs in [0, 1]: (B, 3, H, W) frames and flow images,
        or RTNet's (B, 2, 3, H, W) frames and (B, 2, 6, H, W) flow images."""
        return self.model(rgb, flow_image)

    def _step(self, batch: Mapping[str, Any], stage: str) -> Tensor:
        if "rgb" not in batch:
            raise ValueError("VOSModule trains on frames with masks (synthetic-vos, a DAVIS-like folder); these items "
                             "hold pre-stylized frames ('styled'), which are for measuring.")
        logits = self(batch["rgb"], batch["flow_image"])
        mask = batch["mask"].float()
        keep = torch.as_tensor(batch.get("has_mask", True), device=mask.device).expand(len(mask)).float()
        loss = segmentation_loss(logits, mask, keep, self.hparams.iou_weight)
        annotated = keep.bool()
        n = max(int(annotated.sum()), 1)
        if annotated.any():
            predicted = logits[annotated].detach() > 0  # sigmoid > 0.5
            self.iou[stage](predicted.int(), mask[annotated].int())
            self.j_mean[stage](frame_jaccard(predicted, mask[annotated]).float())
        train = stage == "train"
        self.log(f"{stage}/loss", loss, prog_bar=train, sync_dist=not train, batch_size=n)
        self.log(f"{stage}/j_mean", self.j_mean[stage], on_step=False, on_epoch=True, prog_bar=not train, batch_size=n)
        self.log(f"{stage}/iou", self.iou[stage], on_step=False, on_epoch=True, batch_size=n)
        return loss

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        """As validation, on the DataModule's test set (``test/j_mean``, ``test/iou``, ``test/loss``)."""
        self._step(batch, "test")


# ----------------------------------------------------------------------------------------------- the baseline


@dataclass(frozen=True)
class BlobBaseline:
    """One fixed mask for every frame: ``mask`` (H, W) bool, the mean training mask > ``threshold``;
    ``train_j_mean`` its J-mean on the training frames (what chose the threshold), ``j_mean`` on the
    evaluated frames, over ``frames`` of them."""

    mask: np.ndarray
    threshold: float
    train_j_mean: float
    j_mean: float
    frames: int


def _masks(frames: Iterable[Mapping[str, Any]] | Dataset) -> Tensor:
    """The annotated masks of per-frame items as one bool tensor (N, H, W)."""
    masks = [item["mask"].reshape(item["mask"].shape[-2:]) > 0.5 for item in _items(frames)
             if bool(item.get("has_mask", True))]
    if not masks:
        raise ValueError("blob_baseline: no annotated frame.")
    return torch.stack(masks)


def _items(frames: Iterable[Mapping[str, Any]] | Dataset) -> Iterable[Mapping[str, Any]]:
    if isinstance(frames, Dataset) and hasattr(frames, "__len__"):
        return (frames[i] for i in range(len(frames)))
    return frames


def blob_baseline(train: Dataset | Iterable[Mapping[str, Any]], evaluate: Dataset | Iterable[Mapping[str, Any]],
                  levels: Sequence[float] = BLOB_LEVELS) -> BlobBaseline:
    """The best single mask, a trivial baseline for VOS: the mean of the training frames' masks thresholded at
    the level (of ``levels``) with the highest J-mean on the training frames, scored on the ``evaluate`` frames.

    ``train`` and ``evaluate`` hold per-frame items with ``"mask"`` (1, H, W) of one size (e.g. a
    ``VOSDataModule``'s ``train_source`` and ``val_source``); frames without annotation are left out.

    >>> from lit_stbias.data import SyntheticVOS
    >>> frames = SyntheticVOS(num_videos=4, num_frames=3, size=32).frames()
    >>> result = blob_baseline(frames, frames)
    >>> result.mask.shape, result.j_mean == result.train_j_mean, result.frames
    ((32, 32), True, 8)
    """
    train_masks, eval_masks = _masks(train), _masks(evaluate)
    if train_masks.shape[1:] != eval_masks.shape[1:]:
        raise ValueError(f"blob_baseline: training masks are {tuple(train_masks.shape[1:])} but evaluated ones "
                         f"{tuple(eval_masks.shape[1:])}; both must have one size.")
    mean = train_masks.double().mean(0)
    scores = [float(frame_jaccard((mean > level).expand_as(train_masks), train_masks).mean()) for level in levels]
    best = int(np.argmax(scores))
    blob = mean > levels[best]
    return BlobBaseline(mask=blob.numpy(), threshold=float(levels[best]), train_j_mean=scores[best],
                        j_mean=float(frame_jaccard(blob.expand_as(eval_masks), eval_masks).mean()),
                        frames=len(eval_masks))


__all__ = ["BLOB_LEVELS", "BlobBaseline", "VOSModule", "blob_baseline", "frame_jaccard", "segmentation_loss",
           "soft_iou_loss"]
