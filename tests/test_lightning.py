"""Lightning modules, DataModules and the BiasMonitor, in process, at tiny sizes (a few steps each)."""
import csv
import json
import shlex
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from torch import nn
from torch.utils.data import Subset

from lit_stbias.analysis import choose_items
from lit_stbias.analysis.cli import main as analyze
from lit_stbias.lightning import (
    HISTORY_FILE,
    ActionDataModule,
    ActionRecognitionModule,
    BiasMonitor,
    ClipInput,
    EpochShuffleSampler,
    VOSDataModule,
    VOSModule,
)
from lit_stbias.models import build, load_weights
from lit_stbias.pairs import ActionPairs, pair_loader
from lit_stbias.probe import BiasProbe

FRAMES, SIZE = 8, 32
PER_TAP = ["dynamic_percent", "static_percent", "identical_percent", "units_dynamic", "units_static", "units_joint",
           "units_residual", "score_dynamic", "score_static"]


def trainer_for(out, callbacks, logger=False, **kwargs):
    kwargs = {"max_epochs": 1, "limit_train_batches": 2, **kwargs}
    return Trainer(accelerator="cpu", devices=1, default_root_dir=str(out), callbacks=callbacks, logger=logger,
                   enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1, **kwargs)


def expected_keys(taps):
    return {f"bias/{tap}/{key}" for tap in taps for key in PER_TAP}


def csv_rows(log_dir):
    with open(log_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def action_run(tmp_path_factory):
    """A tiny FastOnly trained for 2 steps on `motion`, with CSV and offline W&B loggers."""
    out = tmp_path_factory.mktemp("action")
    seed_everything(0)
    module = ActionRecognitionModule("fast", num_classes=8, lr=0.05)
    data = ActionDataModule(task="motion", num_frames=FRAMES, size=SIZE, num_videos=16, val_videos=8, batch_size=8)
    monitor = BiasMonitor(num_pairs=7, batch_size=3)
    checkpoint = ModelCheckpoint(dirpath=str(out / "checkpoints"), monitor="val/acc1", mode="max", save_last=True)
    csv_logger = CSVLogger(str(out), name="csv")
    wandb_logger = WandbLogger(save_dir=str(out), project="lit_stbias_tests", offline=True)
    trainer = trainer_for(out, [monitor, checkpoint], logger=[csv_logger, wandb_logger])
    trainer.fit(module, data)
    wandb_config = dict(wandb_logger.experiment.config)  # the run config as the W&B run holds it (offline)
    wandb_logger.experiment.finish()
    return SimpleNamespace(out=out, module=module, data=data, monitor=monitor, trainer=trainer,
                           checkpoint=checkpoint, csv_dir=out / "csv" / "version_0", wandb_config=wandb_config)


def test_action_run_logs_every_bias_key(action_run):
    taps = list(action_run.module.model.taps)
    logged = set(action_run.trainer.callback_metrics)
    assert expected_keys(taps) <= logged
    assert {"val/acc1", "val/acc5", "val/loss", "train/loss"} <= logged
    # the CSV has a row with every bias key filled in
    rows = [r for r in csv_rows(action_run.csv_dir) if r.get("bias/stage5/static_percent")]
    assert len(rows) == 1 and all(rows[0][k] != "" for k in expected_keys(taps))
    # percentages add up to 100 per tap, unit counts to the tap's channels
    metrics = action_run.monitor.last_metrics
    for tap in taps:
        assert sum(metrics[f"bias/{tap}/{c}_percent"] for c in ("dynamic", "static", "identical")) == pytest.approx(100)
        units = sum(metrics[f"bias/{tap}/units_{c}"] for c in ("dynamic", "static", "joint", "residual"))
        assert units == action_run.monitor.history[-1]["layers"][tap]["num_units"]
    # history JSON, bar chart PNG, and the chart as a W&B image
    doc = json.loads((action_run.out / HISTORY_FILE).read_text())
    assert [h["context"]["epoch"] for h in doc["history"]] == [0] and set(doc["history"][0]["layers"]) == set(taps)
    assert doc["num_pairs"] == 7
    assert (action_run.out / "bias" / "fit_epoch_000.png").stat().st_size > 1000
    images = list((action_run.out / "wandb").glob("offline-run-*/files/media/images/bias/layer_percent_*.png"))
    assert len(images) == 1


def test_logged_bias_equals_standalone_probe(action_run):
    """The numbers the callback logged are those of BiasProbe on the same weights and the same pairs."""
    model = build("fast", "tiny", num_classes=8)
    load_weights(model, action_run.checkpoint.last_model_path)  # what analyze.py --ckpt does
    source = action_run.data.val_source
    chosen = choose_items(len(source), 7, seed=0)  # the session's selection rule, as the monitor and analyze.py
    pairs = ActionPairs(Subset(source, chosen), seed=0, pathways=ClipInput(model.input_spec, stride=1))
    results = BiasProbe(model).run(pair_loader(pairs, batch_size=3), progress=False)
    logged = action_run.monitor.history[-1]["layers"]
    assert set(logged) == set(results)
    for tap, result in results.items():
        expected = result.to_dict(thresholds=[0.5])
        assert logged[tap]["unit_counts"] == expected["unit_counts"]
        assert logged[tap]["layer_dims"] == expected["layer_dims"]
        assert logged[tap]["num_pairs"] == {"dynamic": 7, "static": 7} == expected["num_pairs"]
        for factor in ("dynamic", "static"):
            assert logged[tap]["layer_scores"][factor] == pytest.approx(expected["layer_scores"][factor], rel=1e-9)
        # what reached the loggers (float32) is the same number
        row = next(r for r in csv_rows(action_run.csv_dir) if r.get(f"bias/{tap}/score_static"))
        assert float(row[f"bias/{tap}/score_static"]) == pytest.approx(expected["layer_scores"]["static"], rel=1e-6)
        assert float(row[f"bias/{tap}/units_static"]) == expected["unit_counts"]["static"]


def test_last_epoch_bias_equals_analyze_on_last_ckpt(action_run, tmp_path):
    """The history records the analyze.py command that measures a checkpoint on the monitor's pairs: run on
    last.ckpt, it reports the numbers the monitor logged at the last epoch, to the last bit."""
    command = json.loads((action_run.out / HISTORY_FILE).read_text())["analyze"]
    argv = shlex.split(command)
    assert argv[:2] == ["python", "analyze.py"] and "--data-seed" in argv  # the DataModule's validation seed
    argv = [action_run.checkpoint.last_model_path if a == "CHECKPOINT" else str(tmp_path) if a == "DIR" else a
            for a in argv[2:]]
    assert analyze([*argv, "--no-progress"]) == 0
    measured = json.loads((tmp_path / "bias.json").read_text())
    logged = action_run.monitor.history[-1]
    assert measured["layer_order"] == logged["layer_order"] and measured["clip"] == logged["clip"]
    for tap in logged["layer_order"]:
        a, b = measured["layers"][tap], logged["layers"][tap]
        for key in ("num_pairs", "unit_counts", "layer_dims", "layer_scores", "layer_percent", "threshold_sweep"):
            assert a[key] == b[key], (tap, key)


def test_wandb_gets_line_charts_a_table_and_the_settings(action_run):
    run = next((action_run.out / "wandb").glob("offline-run-*"))
    tables = list((run / "files" / "media" / "table").glob("bias_table_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    taps = list(action_run.module.model.taps)
    assert table["columns"][:4] == ["epoch", "global_step", "stage", "tap"]
    assert [row[3] for row in table["data"]] == taps and {row[0] for row in table["data"]} == {0}
    logged = action_run.monitor.history[-1]["layers"]
    for row in table["data"]:
        assert row[4:7] == [logged[row[3]]["layer_percent"][k] for k in ("static", "dynamic", "identical")]
    charts = {p.name.split("_table")[0] for p in (run / "files" / "media" / "table" / "bias_chart").glob("*.json")}
    assert charts == set(taps), "one line chart (and its data table) per tap"
    assert action_run.wandb_config["bias_monitor"]["num_pairs"] == 7
    assert action_run.wandb_config["bias_monitor"]["network"] == "model"


class PlainModule(LightningModule):
    """Any LightningModule: its network is ``self.net``, a plain nn.Sequential without taps or input spec."""

    def __init__(self):
        super().__init__()
        self.save_hyperparameters({"num_classes": 8})  # what ActionDataModule checks its data against
        self.net = nn.Sequential(nn.Conv3d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(),
                                 nn.Linear(6, 8))
        self.steps = 0

    def training_step(self, batch, batch_idx):
        self.steps += 1
        return nn.functional.cross_entropy(self.net(batch["video"]), batch["label"])

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _plain_fit(tmp_path, monitor):
    module = PlainModule()
    data = ActionDataModule(task="motion", num_frames=4, size=16, num_classes=8, num_videos=8, val_videos=4,
                            batch_size=4)
    trainer_for(tmp_path, [monitor], limit_train_batches=1, num_sanity_val_steps=0).fit(module, data)
    return module


@pytest.mark.parametrize("kwargs,message", [
    ({}, "no attribute 'model'.*network="),
    ({"network": "net"}, "declares no taps"),
    ({"network": "net", "taps": ["9"]}, "unknown tap '9'"),
    ({"network": "net", "taps": ["1"], "num_pairs": 16}, "16 pairs asked for.*holds 4 videos.*allow-fewer-pairs"),
])
def test_monitor_on_any_module_fails_in_setup_saying_what_to_pass(tmp_path, kwargs, message):
    module = PlainModule()
    data = ActionDataModule(task="motion", num_frames=4, size=16, num_classes=8, num_videos=8, val_videos=4,
                            batch_size=4)
    trainer = trainer_for(tmp_path, [BiasMonitor(plot=False, **kwargs)], limit_train_batches=1)
    with pytest.raises(ValueError, match=f"BiasMonitor: .*{message}"):
        trainer.fit(module, data)
    assert module.steps == 0, "the error comes before any training step"


def test_monitor_on_any_module_with_named_network_and_pair_rule(tmp_path):
    calls = []

    def make_pairs(items, seed):
        calls.append(len(items))
        return ActionPairs(items, seed=seed)

    monitor = BiasMonitor(network="net", taps=["1", "4"], num_pairs=4, batch_size=2, plot=False, make_pairs=make_pairs)
    module = _plain_fit(tmp_path, monitor)
    assert module.steps == 1 and calls and calls[0] == 4
    entry = monitor.history[-1]
    assert entry["layer_order"] == ["1", "4"] and entry["tap_modules"] == {"1": "1", "4": "4"}
    assert entry["layers"]["1"]["num_pairs"] == {"dynamic": 4, "static": 4}
    assert monitor.documents[-1].context["epoch"] == 0


def test_vos_run_logs_every_bias_key(tmp_path):
    seed_everything(0)
    module = VOSModule("fusionseg")
    data = VOSDataModule("synthetic-vos:diffuse", num_videos=2, val_videos=2, num_frames=4, size=SIZE, batch_size=4)
    monitor = BiasMonitor(num_pairs=4, batch_size=4, plot=False)
    trainer = trainer_for(tmp_path, [monitor], logger=CSVLogger(str(tmp_path), name="csv"), limit_train_batches=1)
    trainer.fit(module, data)
    logged = set(trainer.callback_metrics)
    taps = list(module.model.taps)
    assert len(taps) == 12 and expected_keys(taps) <= logged
    assert {"val/iou", "val/loss", "train/loss"} <= logged
    assert 0.0 <= float(trainer.callback_metrics["val/iou"]) <= 1.0
    assert monitor.history[-1]["layers"]["mot.layer4"]["num_pairs"] == {"dynamic": 4, "static": 4}


class StopAfterEpoch(Callback):
    """Simulates an interruption: stop once epoch ``epoch`` is done (its checkpoint is written)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            trainer.should_stop = True


def _fit(out, ckpt_path=None, stop_after=None):
    seed_everything(0)
    module = ActionRecognitionModule("fast", num_classes=8, lr=0.05, shuffle_frames=True)
    data = ActionDataModule(task="motion", num_frames=FRAMES, size=SIZE, num_videos=24, val_videos=4, batch_size=8)
    monitor = BiasMonitor(num_pairs=4, batch_size=4, plot=False)
    callbacks = [monitor, ModelCheckpoint(dirpath=str(out), save_last=True)]
    callbacks += [StopAfterEpoch(stop_after)] if stop_after is not None else []
    trainer = trainer_for(out, callbacks, max_epochs=2, num_sanity_val_steps=0)
    trainer.fit(module, data, ckpt_path=ckpt_path)
    return trainer, module, monitor


def test_resume_repeats_the_uninterrupted_run(tmp_path):
    """Stop after epoch 0, resume from last.ckpt: same epochs, same bias history, same final weights."""
    full_trainer, full_module, full_monitor = _fit(tmp_path / "full")
    _, _, first_monitor = _fit(tmp_path / "cut", stop_after=0)
    assert [h["context"]["epoch"] for h in first_monitor.history] == [0]
    trainer, module, monitor = _fit(tmp_path / "cut", ckpt_path=str(tmp_path / "cut" / "last.ckpt"))
    assert trainer.current_epoch == full_trainer.current_epoch == 2
    assert [h["context"]["epoch"] for h in monitor.history] == [0, 1]
    assert monitor.history == full_monitor.history
    for (name, a), b in zip(full_module.state_dict().items(), module.state_dict().values()):
        assert torch.equal(a, b), name


def test_shuffle_frames_is_reproducible_and_moves_frames():
    module = ActionRecognitionModule("fast", num_classes=4, shuffle_frames=True)
    video = torch.arange(8.0).view(1, 1, 8, 1, 1).expand(2, 3, 8, 2, 2)
    index = torch.tensor([5, 6])
    module.train()
    first = module.shuffle(video, index)
    assert torch.equal(first, module.shuffle(video, index))
    order = first[:, 0, :, 0, 0]
    assert all(sorted(o.tolist()) == list(range(8)) for o in order)
    assert all(int((o != torch.arange(8.0)).sum()) >= 4 for o in order)
    assert not torch.equal(order[0], order[1])  # each clip its own order
    module.eval()  # validation: an order per clip that does not depend on the epoch
    assert not torch.equal(module.shuffle(video, index), first)


def test_epoch_sampler_depends_on_seed_and_epoch_only():
    data = list(range(50))
    a, b = EpochShuffleSampler(data, seed=3), EpochShuffleSampler(data, seed=3)
    a.set_epoch(1), b.set_epoch(1)
    assert list(a) == list(b) and sorted(a) == data
    b.set_epoch(2)
    assert list(a) != list(b)


def test_unknown_model_names_the_available_ones():
    with pytest.raises(ValueError, match="Available action models: .*slow.*fast"):
        ActionRecognitionModule("fusionseg")
    with pytest.raises(ValueError, match="Available vos models: fusionseg, matnet, rtnet"):
        VOSModule("slow")
