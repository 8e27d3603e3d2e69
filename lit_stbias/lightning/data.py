"""DataModules for action recognition and VOS over any source ``lit_stbias.data.from_spec`` knows.

Clip length and size default to what the model in training needs (read from the trainer's LightningModule in
``setup``), so a config names them only to depart from the model's ``input_spec``. Synthetic sources draw the
validation set with another seed (disjoint by construction); folders are split by a seeded permutation
(by video for VOS, so no video's frames land on both sides).

Data order is a pure function of (seed, epoch): one process uses :class:`EpochShuffleSampler`, and under DDP
Lightning swaps it for its ``DistributedSampler`` (also seeded, also ``set_epoch``-ed). A resumed run therefore
sees the batches the uninterrupted run saw.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset

from lit_stbias.data import from_spec
from lit_stbias.pairs.vos_pairs import VOSInputs, vos_frames

VAL_SEED_OFFSET = 1000  # synthetic validation clips come from seed + this: never a training clip
TEST_SEED_OFFSET = 2000  # and test clips from seed + this: neither a training nor a validation clip


class EpochShuffleSampler(RandomSampler):
    """A random order drawn from (seed, epoch) alone. Lightning calls ``set_epoch`` every epoch, and restores
    the epoch counter when resuming, so the order survives an interruption; the global RNG plays no part."""

    def __init__(self, data_source: Dataset, seed: int = 0) -> None:
        super().__init__(data_source)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded train/val split of ``range(n)``; at least one item on each side."""
    if n < 2:
        raise ValueError(f"need at least 2 items to split into train and val, got {n}.")
    order = np.random.default_rng(seed).permutation(n)
    k = min(max(1, round(n * val_fraction)), n - 1)
    return sorted(order[k:].tolist()), sorted(order[:k].tolist())


class VideoDataModule(LightningDataModule):
    """Loaders, seeds and model-derived defaults shared by the action and VOS DataModules."""

    def __init__(self) -> None:
        super().__init__()
        # logger=False: the module's hparams go to the loggers; names such as ``seed`` may differ between
        # the two, which Lightning would refuse to merge (config.yaml records both anyway)
        self.save_hyperparameters(logger=False)
        self.train_source: Dataset | None = None
        self.val_source: Dataset | None = None
        self.test_source: Dataset | None = None
        self.num_frames: int | None = self.hparams.num_frames
        self.size: int | None = self.hparams.size
        self._module = None

    def _model(self):
        """The LightningModule to train, if any: the source of clip length, size and class count."""
        if self._module is not None:
            return self._module
        trainer = getattr(self, "trainer", None)
        return trainer.lightning_module if trainer is not None else None

    def setup_for(self, module, stage: str) -> None:
        """``setup(stage)`` for ``module`` before the Trainer runs, so bad data (an empty folder, a class
        count that does not match the model) is refused before a run writes anything; the Trainer's own
        ``setup`` call then finds the sources built."""
        self._module = module
        self.setup(stage)

    def _loader(self, dataset: Dataset, train: bool) -> DataLoader:
        hp = self.hparams
        return DataLoader(
            dataset,
            batch_size=hp.batch_size,
            sampler=EpochShuffleSampler(dataset, hp.seed) if train else None,
            num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            drop_last=train and len(dataset) > hp.batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_source, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_source, train=False)

    def test_dataloader(self) -> DataLoader:
        if self.test_source is None:
            raise ValueError(f"{type(self).__name__} has no test set.")
        return self._loader(self.test_source, train=False)


class ActionDataModule(VideoDataModule):
    """Labelled clips for :class:`~lit_stbias.lightning.ActionRecognitionModule`.

    Args:
        task: synthetic task (``appearance``, ``motion``, ``mixed``); used when ``data`` is not given.
        data: any spec of ``lit_stbias.data.from_spec`` (``synthetic:motion``, a video folder with labels, ...).
        num_videos, val_videos: synthetic set sizes (folders: all videos, ``val_fraction`` held out); the
            synthetic test set (``train.py test``) has ``val_videos`` clips of its own.
        test_data: a labelled folder (any ``from_spec`` spec) to test on; synthetic data need none.
        num_frames, size: clip length and side; default: what the model needs (``input_spec.num_frames`` x
            the module's temporal stride, ``input_spec.size``).
        num_classes: synthetic classes; default: the model's ``num_classes``.
        scene_bias, camera_pan: synthetic options (see ``SyntheticVideos``).
    """

    def __init__(
        self,
        task: str = "motion",
        data: str | None = None,
        num_videos: int = 512,
        val_videos: int = 128,
        num_frames: int | None = None,
        size: int | None = None,
        num_classes: int | None = None,
        scene_bias: float = 0.8,
        camera_pan: bool = False,
        val_fraction: float = 0.2,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
        test_data: str | None = None,
    ) -> None:
        super().__init__()
        self.spec = data if data is not None else f"synthetic:{task}"

    def setup(self, stage: str | None = None) -> None:
        if stage == "test" and self.test_source is None:
            self._setup_test()
        if self.train_source is not None:
            return
        hp, model = self.hparams, self._model()
        if self.num_frames is None:
            self.num_frames = getattr(model, "clip_frames", None)
        if self.size is None and model is not None:
            self.size = model.input_spec.size
        if self.num_frames is None or self.size is None:
            raise ValueError("ActionDataModule needs num_frames and size, or a trainer whose module provides them.")
        num_classes = hp.num_classes
        if num_classes is None and model is not None:
            num_classes = model.hparams.get("num_classes")
        if self.spec.startswith("synthetic:"):
            common = dict(num_frames=self.num_frames, size=self.size, num_classes=num_classes,
                          scene_bias=hp.scene_bias, camera_pan=hp.camera_pan)
            self.train_source = from_spec(self.spec, num_videos=hp.num_videos, seed=hp.seed, **common)
            self.val_source = from_spec(self.spec, num_videos=hp.val_videos, seed=hp.seed + VAL_SEED_OFFSET, **common)
        else:
            source = from_spec(self.spec, num_frames=self.num_frames, size=self.size)
            train, val = split_indices(len(source), hp.val_fraction, hp.seed)
            self.train_source, self.val_source = Subset(source, train), Subset(source, val)
        source = self.train_source.dataset if isinstance(self.train_source, Subset) else self.train_source
        data_classes = getattr(source, "num_classes", None)
        if data_classes == 0:
            raise ValueError(f"the videos of {self.spec!r} have no labels; add a labels.csv or class folders "
                             "(see docs/data.md).")
        if model is not None and data_classes is not None and data_classes != model.hparams.get("num_classes"):
            raise ValueError(f"the data {self.spec!r} has {data_classes} classes but the model was built with "
                             f"num_classes={model.hparams.get('num_classes')}; set --model.num_classes {data_classes}.")

    def _setup_test(self) -> None:
        """Synthetic: fresh clips from their own seed. Folders: the ``test_data`` folder."""
        hp, model = self.hparams, self._model()
        num_frames = self.num_frames or getattr(model, "clip_frames", None)
        size = self.size or (model.input_spec.size if model is not None else None)
        if hp.test_data is not None:
            self.test_source = from_spec(hp.test_data, num_frames=num_frames, size=size)
        elif self.spec.startswith("synthetic:"):
            num_classes = hp.num_classes or (model.hparams.get("num_classes") if model is not None else None)
            self.test_source = from_spec(self.spec, num_videos=hp.val_videos, seed=hp.seed + TEST_SEED_OFFSET,
                                         num_frames=num_frames, size=size, num_classes=num_classes,
                                         scene_bias=hp.scene_bias, camera_pan=hp.camera_pan)
        else:
            raise ValueError(f"the data {self.spec!r} has no test set; give a labelled test folder with "
                             "--data.test_data FOLDER.")


class VOSDataModule(VideoDataModule):
    """Per-frame VOS items for :class:`~lit_stbias.lightning.VOSModule`, in the model's input form.

    The sources (``train_source``, ``val_source``, ``test_source``) hold per-frame items with what the model
    in training needs (:func:`~lit_stbias.pairs.vos_pairs.vos_frames`: RTNet's also carry the backward flow
    and the partner frame); the loaders turn them into the network's inputs
    (:class:`~lit_stbias.pairs.vos_pairs.VOSInputs`: ``rgb``, ``flow_image``, ``mask``).

    Args:
        data: ``synthetic-vos:centred`` (objects near the centre, as in DAVIS), ``synthetic-vos:diffuse``
            (anywhere, smaller) or a DAVIS-like folder.
        num_videos, val_videos: synthetic videos (each gives ``num_frames - 1`` training frames, RTNet
            ``num_frames - 2``); the synthetic test set (``train.py test``) has ``val_videos`` of its own.
        num_frames: synthetic frames per video; size: frame side, default the model's ``input_spec.size``
            (two-stream models need a multiple of 16).
        val_fraction: folders: share of videos held out.
        test_data: a DAVIS-like folder to test on; synthetic data need none.
    """

    def __init__(
        self,
        data: str = "synthetic-vos:centred",
        num_videos: int = 64,
        val_videos: int = 16,
        num_frames: int | None = 8,
        size: int | None = None,
        camera_pan: bool = False,
        val_fraction: float = 0.2,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
        test_data: str | None = None,
    ) -> None:
        super().__init__()
        self.spec = data
        self.input_spec = None  # the model's, once set up (None: one frame and its forward flow)

    def _frames(self, spec: str, **kwargs) -> Dataset:
        source = from_spec(spec, **kwargs)
        if getattr(source, "kind", "") == "stylized-vos":
            raise ValueError(f"{spec} is Stylized DAVIS (pre-stylized frames, for measuring); train on "
                             "synthetic-vos or a DAVIS-like folder.")
        if not hasattr(source, "frames"):
            raise ValueError(f"{spec} is not a VOS dataset (frames with flow and masks); use synthetic-vos[:diffuse] "
                             "or a DAVIS-like folder.")
        return vos_frames(source, self.input_spec)

    def _synthetic(self, seed: int, num_videos: int) -> Dataset:
        hp = self.hparams
        return self._frames(self.spec, num_videos=num_videos, seed=seed, num_frames=self.num_frames or 8,
                            size=self.size, camera_pan=hp.camera_pan)

    def setup(self, stage: str | None = None) -> None:
        hp, model = self.hparams, self._model()
        if model is not None:
            self.input_spec = model.input_spec
        if self.size is None and model is not None:
            self.size = model.input_spec.size
        if self.size is None:
            raise ValueError("VOSDataModule needs size, or a trainer whose module provides it.")
        synthetic = self.spec.startswith("synthetic-vos")
        if stage == "test" and self.test_source is None:
            if hp.test_data is not None:
                self.test_source = self._frames(hp.test_data, size=self.size)
            elif synthetic:
                self.test_source = self._synthetic(hp.seed + TEST_SEED_OFFSET, hp.val_videos)
            else:
                raise ValueError(f"the data {self.spec!r} has no test set; give a DAVIS-like test folder with "
                                 "--data.test_data FOLDER.")
        if self.train_source is not None:
            return
        if synthetic:
            self.train_source = self._synthetic(hp.seed, hp.num_videos)
            self.val_source = self._synthetic(hp.seed + VAL_SEED_OFFSET, hp.val_videos)
        else:
            frames = self._frames(self.spec, size=self.size)
            train, val = split_indices(frames.num_videos, hp.val_fraction, hp.seed)
            pick = lambda videos: [k for v in videos for k in frames.frame_indices(v)]  # noqa: E731
            self.train_source, self.val_source = Subset(frames, pick(train)), Subset(frames, pick(val))

    def _loader(self, dataset: Dataset, train: bool) -> DataLoader:
        return super()._loader(VOSInputs(dataset, self.input_spec), train)


__all__ = ["TEST_SEED_OFFSET", "VAL_SEED_OFFSET", "ActionDataModule", "EpochShuffleSampler", "VOSDataModule",
           "VideoDataModule", "split_indices"]
