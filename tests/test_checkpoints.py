"""Reading checkpoint files a user points at: nothing in a file runs, every bad file is one line naming it."""
import builtins
import os
import pathlib
import pickle

import pytest
import torch
from lightning.pytorch import Trainer, seed_everything

from lit_stbias.lightning import ActionDataModule, ActionRecognitionModule
from lit_stbias.models import CheckpointError, build, load_weights, read_checkpoint


class RunsCommand:
    """Unpickling this calls os.system: a crafted checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class WritesFile:
    """Unpickling this opens (creates) a file for writing."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (str(self.marker), "w")


def crafted(kind, path, marker):
    payload = {"state_dict": {"model.w": torch.zeros(2)}, "hyper_parameters": {"model_name": "slow"}}
    if kind == "zip":  # what torch.save writes today
        torch.save({**payload, "evil": RunsCommand(marker)}, path)
    elif kind == "legacy":  # torch.save's pre-1.6 format
        torch.save({**payload, "evil": RunsCommand(marker)}, path, _use_new_zipfile_serialization=False)
    elif kind == "pickle":  # a plain pickle, newest protocol
        path.write_bytes(pickle.dumps({"evil": RunsCommand(marker)}, protocol=pickle.HIGHEST_PROTOCOL))
    elif kind == "open":
        torch.save({**payload, "evil": WritesFile(marker)}, path)
    return path


@pytest.mark.parametrize("kind, named", [("zip", "system"), ("legacy", "system"), ("pickle", "system"),
                                          ("open", "io.open")])
def test_crafted_checkpoint_runs_nothing_and_is_named(tmp_path, kind, named):
    marker = tmp_path / "ran"
    path = crafted(kind, tmp_path / "evil.ckpt", marker)
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(path)
    message = str(caught.value)
    assert not marker.exists(), "code in the checkpoint ran"
    assert str(path) in message and named in message and "nothing from the file was run" in message
    assert "weights_only" not in message and "\n" not in message
    with pytest.raises(CheckpointError, match="evil.ckpt"):
        load_weights(build("slow"), path)
    assert not marker.exists()


def real_checkpoint(path):
    torch.save({"state_dict": {f"model.{k}": v for k, v in build("slow").state_dict().items()}}, path)
    return path


def bad_files(tmp_path):
    """(path, expected phrase) for every kind of unreadable file."""
    rng = torch.Generator().manual_seed(0)
    random_bytes = tmp_path / "random.pth"
    random_bytes.write_bytes(bytes(torch.randint(0, 256, (4096,), generator=rng, dtype=torch.uint8).tolist()))
    whole = real_checkpoint(tmp_path / "whole.ckpt").read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(whole[: len(whole) // 2])  # an interrupted download
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    folder = tmp_path / "run_folder"
    folder.mkdir()
    not_a_dict = tmp_path / "list.pt"
    torch.save([torch.zeros(2), torch.ones(2)], not_a_dict)
    return [
        (random_bytes, "truncated or not a zip/pickle file"),
        (truncated, "truncated or not a zip/pickle file"),
        (empty, "empty file"),
        (folder, "is a directory"),
        (not_a_dict, "holds a list, not a checkpoint"),
        (tmp_path / "missing.ckpt", "not found"),
    ]


def test_every_bad_file_is_one_line_naming_it(tmp_path):
    for path, phrase in bad_files(tmp_path):
        for read in (read_checkpoint, lambda p: load_weights(build("slow"), p)):
            with pytest.raises(CheckpointError) as caught:
                read(path)
            message = str(caught.value)
            if read is not read_checkpoint and path.is_dir():
                phrase = "MATNet checkpoint folder"  # load_weights reads folders as MATNet's layout
            assert str(path) in message and phrase in message, message
            assert "\n" not in message and "weights_only" not in message
            assert isinstance(caught.value, ValueError)  # callers that catch ValueError keep working


def test_plain_and_published_checkpoints_still_load(tmp_path):
    source = build("slow")
    torch.save(source.state_dict(), tmp_path / "plain.pth")
    torch.save({"model_state": source.state_dict(), "epoch": 3}, tmp_path / "zoo.pyth")
    torch.save(source.state_dict(), tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    torch.save({"state_dict": {}, "hyper_parameters": {"data": pathlib.PurePosixPath("videos/k400")}},
               tmp_path / "paths.ckpt")
    for name in ("plain.pth", "zoo.pyth", "legacy.pth"):
        target = build("slow")
        load_weights(target, tmp_path / name)
        assert torch.equal(target.blocks[0].conv.weight, source.blocks[0].conv.weight), name
    assert read_checkpoint(tmp_path / "paths.ckpt")["hyper_parameters"]["data"] == pathlib.PurePosixPath("videos/k400")


def test_lightning_checkpoint_of_this_project_loads_with_its_hyper_parameters(tmp_path):
    seed_everything(0)
    module = ActionRecognitionModule("slow", num_classes=4, lr=0.05)
    data = ActionDataModule(task="motion", num_frames=8, size=32, num_videos=4, val_videos=2, batch_size=2)
    trainer = Trainer(accelerator="cpu", devices=1, max_epochs=1, limit_train_batches=1, limit_val_batches=0,
                      logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=str(tmp_path))
    trainer.fit(module, data)
    trainer.save_checkpoint(tmp_path / "last.ckpt")

    checkpoint = read_checkpoint(tmp_path / "last.ckpt")
    assert checkpoint["hyper_parameters"]["model_name"] == "slow"
    assert checkpoint["hyper_parameters"]["num_classes"] == 4 and checkpoint["hyper_parameters"]["preset"] == "tiny"
    assert checkpoint["datamodule_hyper_parameters"]["num_frames"] == 8
    assert checkpoint["optimizer_states"] and checkpoint["loops"]  # the whole training checkpoint, not only weights
    model = build("slow", checkpoint["hyper_parameters"]["preset"], num_classes=4).eval()
    load_weights(model, tmp_path / "last.ckpt")
    x = torch.rand(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), module.model.eval()(x))
