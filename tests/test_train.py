"""train.py: configs, the embedded default, resuming, 2-process DDP, and the shuffle experiment."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from lit_stbias.lightning import ActionDataModule, ActionRecognitionModule, BiasMonitor, VOSDataModule, VOSModule
from lit_stbias.lightning.cli import TrainCLI, run
from lit_stbias.lightning.experiments import DEFAULT_MODELS, action_config, shuffle_experiment

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (ROOT / "configs").glob("*.yaml") if p.stem != "shuffle_experiment")


def tiny_args(out, name="tiny", epochs=1, **extra):
    """A complete, few-step configuration as command-line options."""
    cfg = action_config("fast", "motion", epochs=epochs, frames=8, size=32, num_videos=16, val_videos=8,
                        batch_size=8, num_pairs=5, out=str(out), name=name, wandb=False)
    args = ["--config", yaml.safe_dump(cfg), "--trainer.limit_train_batches", "2",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--bias.batch_size", "2", "--bias.plot", "false"]
    for key, value in extra.items():
        args += [f"--{key}", str(value)]
    return args


def history(run_dir):
    return json.loads((Path(run_dir) / "bias_history.json").read_text())["history"]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_config_parses(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        TrainCLI(args=["--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["init_args"]["model_name"] == config.stem.split("_")[0]
    assert printed["trainer"]["max_epochs"] >= 1


def test_shuffle_experiment_config_parses(capsys):
    shuffle_experiment(["--config", str(ROOT / "configs" / "shuffle_experiment.yaml"), "--epochs", "2",
                        "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["tasks"] == "appearance,mixed,motion" and printed["models"] == "slow,fast"
    assert printed["epochs"] == 2  # the command line wins over the file


@pytest.mark.parametrize("model_name", DEFAULT_MODELS)
def test_default_config_builds_the_documented_run(model_name, tmp_path):
    cli = TrainCLI(args={**action_config(model_name), "out": str(tmp_path)})
    assert isinstance(cli.model, ActionRecognitionModule) and isinstance(cli.datamodule, ActionDataModule)
    assert cli.model.hparams.model_name == model_name and cli.datamodule.hparams.task == "motion"
    # FastOnly sees every frame of the clip, SlowOnly every 4th
    assert cli.model.hparams.temporal_stride == {"fast": 1, "slow": 4}[model_name]
    assert any(isinstance(c, BiasMonitor) and c.every_n_epochs == 1 for c in cli.trainer.callbacks)
    checkpoint = cli.trainer.checkpoint_callback
    assert checkpoint.monitor == "val/acc1" and checkpoint.save_last
    assert Path(checkpoint.dirpath) == tmp_path / f"{model_name}-synthetic-motion" / "checkpoints"
    assert {type(lg) for lg in cli.trainer.loggers} == {CSVLogger, WandbLogger}


def test_vos_config_builds_vos_module(tmp_path):
    cli = TrainCLI(args=["--config", str(ROOT / "configs" / "rtnet_diffuse.yaml"), "--out", str(tmp_path)])
    assert isinstance(cli.model, VOSModule) and isinstance(cli.datamodule, VOSDataModule)
    assert cli.model.hparams.model_name == "rtnet" and cli.datamodule.spec == "synthetic-vos:diffuse"
    assert cli.trainer.checkpoint_callback.monitor == "val/iou"


def test_bad_model_name_lists_the_available_models():
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--config", str(ROOT / "configs" / "fast_motion.yaml"),
         "--model.model_name", "resnet9000"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert result.returncode != 0
    assert "unknown action model 'resnet9000'" in result.stderr
    assert "Available action models:" in result.stderr and "slow" in result.stderr and "fast" in result.stderr
    assert "Traceback" not in result.stderr


def test_resume_with_ckpt_path_last_continues_epochs_and_history(tmp_path):
    first = run(tiny_args(tmp_path, epochs=1))
    run_dir = Path(first["run_dir"])
    assert first["epochs"] == 1 and Path(first["last_checkpoint"]).is_file()
    before = history(run_dir)
    resumed = run(tiny_args(tmp_path, epochs=2, ckpt_path="last", overwrite="false"))
    after = history(run_dir)
    assert resumed["epochs"] == 2 and resumed["global_step"] == 2 * first["global_step"]
    assert [h["context"]["epoch"] for h in after] == [0, 1] and after[0] == before[0]
    assert (run_dir / "csv" / "version_1" / "metrics.csv").is_file()  # the resumed part logs beside the first
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["last_checkpoint"] == resumed["last_checkpoint"]
    assert set(summary["bias"]) == {f"stage{i}" for i in range(1, 6)}
    # a fresh start over a run that has checkpoints needs --overwrite
    with pytest.raises(FileExistsError, match="--ckpt_path last"):
        run(tiny_args(tmp_path, overwrite="false"))


def test_two_process_ddp_logs_the_single_process_bias(tmp_path):
    """Same weights, same pairs: 2 gloo processes (uneven split, 5 pairs) give the 1-process numbers."""
    trained = run(tiny_args(tmp_path, name="trained"))
    ckpt = trained["last_checkpoint"]
    single = run(tiny_args(tmp_path, name="single", stage="validate", ckpt_path=ckpt))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *tiny_args(tmp_path, name="ddp", stage="validate", ckpt_path=ckpt),
         "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ddp_summary = json.loads((tmp_path / "ddp-validate" / "summary.json").read_text())
    assert ddp_summary["stage"] == "validate" and ddp_summary["world_size"] == 2 and single["world_size"] == 1
    one, two = history(single["run_dir"])[-1]["layers"], history(tmp_path / "ddp-validate")[-1]["layers"]
    during_training = history(trained["run_dir"])[-1]["layers"]
    assert set(one) == set(two) == set(during_training)
    for tap in one:
        assert two[tap]["num_pairs"] == one[tap]["num_pairs"] == {"dynamic": 5, "static": 5}  # each pair once
        for other in (two[tap], during_training[tap]):
            assert other["unit_counts"] == one[tap]["unit_counts"]
            assert other["layer_dims"] == one[tap]["layer_dims"]
            for factor in ("dynamic", "static"):
                assert other["layer_scores"][factor] == pytest.approx(one[tap]["layer_scores"][factor], rel=1e-6)


def test_shuffle_experiment_end_to_end(tmp_path):
    rows = shuffle_experiment(["--tasks", "motion", "--models", "fast", "--epochs", "1", "--frames", "8",
                               "--size", "32", "--num_videos", "16", "--val_videos", "8", "--batch_size", "8",
                               "--out", str(tmp_path)])
    assert len(rows) == 1
    ordered = json.loads((tmp_path / "fast-motion" / "summary.json").read_text())
    shuffled = json.loads((tmp_path / "fast-motion-shuffled" / "summary.json").read_text())
    assert not ordered["shuffle_frames"] and shuffled["shuffle_frames"]
    with open(tmp_path / "shuffle_table.csv") as f:
        table = list(csv.DictReader(f))
    assert [(r["task"], r["model"]) for r in table] == [("motion", "fast")]
    top1, top1_shuffled = float(table[0]["top1"]), float(table[0]["top1_shuffled"])
    assert top1 == pytest.approx(ordered["metrics"]["val/acc1"])
    assert top1_shuffled == pytest.approx(shuffled["metrics"]["val/acc1"])
    if top1 > 0:
        assert float(table[0]["relative_drop"]) == pytest.approx(100 * (top1 - top1_shuffled) / top1)
    assert "| motion | fast |" in (tmp_path / "shuffle_table.md").read_text()
    assert (tmp_path / "shuffle_chart.png").stat().st_size > 5000
