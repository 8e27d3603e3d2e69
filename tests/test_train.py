"""train.py: LightningCLI subcommands, every config, the embedded default, resuming, reproducibility, W&B, usage
errors through the command line, 2-process DDP, and the shuffle experiment over seeds."""
import csv
import json
import math
import os
import re
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from lit_stbias.lightning import ActionDataModule, ActionRecognitionModule, BiasMonitor, VOSDataModule, VOSModule
from lit_stbias.lightning.cli import TrainCLI, UsageError, run
from lit_stbias.lightning.experiments import (
    DEFAULT_MODELS,
    action_config,
    main,
    seed_interval,
    shuffle_experiment,
)
from lit_stbias.models import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
# the tests give LightningCLI its arguments while sys.argv holds pytest's
pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI's args parameter")


def tiny_config(out, name="tiny", epochs=1, **overrides):
    """A complete, few-step fit configuration."""
    cfg = action_config("fast", "motion", epochs=epochs, frames=8, size=32, num_videos=16, val_videos=8,
                        batch_size=8, num_pairs=5, out=str(out), name=name, wandb=False, **overrides)
    cfg["trainer"].update(limit_train_batches=2, enable_progress_bar=False, enable_model_summary=False,
                          accelerator="cpu")
    cfg["bias"].update(batch_size=2, plot=False)
    cfg["overwrite"] = False  # as a user's run: an occupied run folder is refused
    return cfg


def tiny_args(out, name="tiny", epochs=1, subcommand="fit", **extra):
    """The same as command-line options."""
    args = [subcommand, "--config", yaml.safe_dump(tiny_config(out, name, epochs))]
    for key, value in extra.items():
        args += [f"--{key}", str(value)]
    return args


def history(run_dir):
    return json.loads((Path(run_dir) / "bias_history.json").read_text())["history"]


def snapshot(folder):
    """Every path under ``folder`` with its size and modification time: 'nothing written' is equality."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in Path(folder).rglob("*")}


class BuildOnly(TrainCLI):
    """TrainCLI that builds model, data and trainer but does not train (LightningCLI calls ``self.fit``)."""

    def fit(self, **kwargs):
        self.fit_kwargs = kwargs

    def after_fit(self):
        pass


# -- parsing -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_config_parses(config, capsys):
    """Every YAML in configs/ parses under its command: `fit --print_config` or the experiment's own."""
    command = config.stem.replace("_", "-") if config.stem.endswith("_experiment") else "fit"
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    if command == "fit":
        assert printed["model"]["init_args"]["model_name"] == config.stem.split("_")[0]
        assert printed["trainer"]["max_epochs"] >= 1 and printed["checkpoint"]["save_last"] is True
    elif command == "shuffle-experiment":
        assert printed["tasks"] == "appearance,mixed,motion" and printed["models"] == "slow,fast"
        assert printed["seeds"] == "0,1,2"
    elif command == "vos-experiment":
        assert printed["models"] == "fusionseg,matnet,rtnet" and printed["seeds"] == "0,1,2"
    else:
        assert printed["tap"] == "stage5" and printed["seeds"] == "0,1,2" and printed["epochs"] >= 1


def test_shuffle_experiment_yaml_and_overrides(capsys):
    with pytest.raises(SystemExit):
        main(["shuffle-experiment", "--config", str(ROOT / "configs" / "shuffle_experiment.yaml"), "--epochs", "2",
              "--seeds", "4,5", "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["epochs"] == 2 and printed["seeds"] == "4,5"  # the command line wins over the file


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for subcommand in ("fit", "validate", "test", "default", "shuffle-experiment"):
        assert f"    {subcommand} " in text
    with pytest.raises(SystemExit):
        main(["shuffle-experiment", "--help"])
    text = capsys.readouterr().out
    assert "--seeds" in text and "default: 0,1,2" in text and "--print_config" in text


def test_console_script_points_at_main():
    section = (ROOT / "pyproject.toml").read_text().split("[project.scripts]")[1].split("\n[")[0]
    scripts = dict(re.findall(r'^([\w-]+) = "([^"]+)"$', section, flags=re.M))
    module, _, function = scripts["lit-stbias-train"].partition(":")
    assert getattr(import_module(module), function) is main
    assert scripts["lit-stbias-analyze"] == "lit_stbias.analysis.cli:main"


@pytest.mark.parametrize("model_name", DEFAULT_MODELS)
def test_default_config_builds_the_documented_run(model_name, tmp_path):
    cli = BuildOnly(args={"fit": {**action_config(model_name), "out": str(tmp_path)}})
    assert isinstance(cli.model, ActionRecognitionModule) and isinstance(cli.datamodule, ActionDataModule)
    assert cli.model.hparams.model_name == model_name and cli.datamodule.hparams.task == "motion"
    # FastOnly sees every frame of the clip, SlowOnly every 4th
    assert cli.model.hparams.temporal_stride == {"fast": 1, "slow": 4}[model_name]
    assert any(isinstance(c, BiasMonitor) and c.every_n_epochs == 1 for c in cli.trainer.callbacks)
    checkpoint = cli.trainer.checkpoint_callback
    assert checkpoint.monitor == "val/acc1" and checkpoint.save_last and checkpoint.mode == "max"
    assert Path(checkpoint.dirpath) == tmp_path / f"{model_name}-synthetic-motion" / "checkpoints"
    assert Path(cli.trainer.default_root_dir) == tmp_path / f"{model_name}-synthetic-motion"
    assert {type(lg).__name__ for lg in cli.trainer.loggers} == {"CSVLogger", "EpochAxisWandbLogger"}
    assert all(isinstance(lg, (CSVLogger, WandbLogger)) for lg in cli.trainer.loggers)


def test_vos_config_builds_vos_module(tmp_path):
    cli = BuildOnly(args=["fit", "--config", str(ROOT / "configs" / "rtnet_diffuse.yaml"), "--out", str(tmp_path)])
    assert isinstance(cli.model, VOSModule) and isinstance(cli.datamodule, VOSDataModule)
    assert cli.model.hparams.model_name == "rtnet" and cli.datamodule.spec == "synthetic-vos:diffuse"
    assert cli.trainer.checkpoint_callback.monitor == "val/j_mean"


# -- usage errors: one line on stderr, exit code 2, nothing written ----------------------------------------------
def train_py(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], capture_output=True, text=True,
                          cwd=cwd, env=ENV, timeout=300)


def assert_usage_error(result, *fragments):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("train.py: error: "), result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0]


def no_gpu_case():
    """Asking for an accelerator this machine lacks: a GPU where there is none, else more GPUs than it has."""
    if not torch.cuda.is_available():
        return ["--trainer.accelerator", "gpu"], ("--trainer.accelerator gpu", "no usable GPU")
    count = torch.cuda.device_count()
    return ["--trainer.accelerator", "gpu", "--trainer.devices", str(count + 1)], (f"--trainer.devices {count + 1}",)


USAGE_CASES = {
    "missing-ckpt": (["--ckpt_path", "missing.ckpt"], ("--ckpt_path missing.ckpt", "checkpoint not found")),
    "occupied-run-folder": ([], ("holds a previous run", "--ckpt_path last", "--overwrite true")),
    "escaping-name": (["--name", "../escape"], ("--name ../escape", "not a plain folder name")),
    "no-gpu": no_gpu_case(),
    "devices-abc": (["--trainer.devices", "abc"], ("--trainer.devices abc",)),
    "unknown-model": (["--model.model_name", "resnet9000"],
                      ("unknown action model", "Available action models:", "slow", "fast")),
}


@pytest.mark.parametrize("case", USAGE_CASES)
def test_usage_error_through_the_command_line(case, tmp_path):
    options, fragments = USAGE_CASES[case]
    previous = tmp_path / "runs" / "tiny"  # a previous run's files, which no failing command may touch
    (previous / "checkpoints").mkdir(parents=True)
    (previous / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (previous / "config.yaml").write_text("seed_everything: 0\n")
    name = [] if case == "occupied-run-folder" else ["--name", "fresh"]
    before = snapshot(tmp_path)
    result = train_py(*tiny_args(tmp_path / "runs", name="tiny"), *name, *options, cwd=tmp_path)
    assert_usage_error(result, *fragments)
    assert "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before  # no run folder created, the previous one unchanged


def test_neighbouring_usage_errors(tmp_path, capsys):
    """In process: `last` with no run yet, random bytes as a checkpoint, `test` without a test set,
    a module refusing its arguments, a data folder without videos (found before the run writes anything)."""
    (tmp_path / "random.ckpt").write_bytes(os.urandom(2048))
    (tmp_path / "empty").mkdir()
    folder = tiny_args(tmp_path / "runs", subcommand="test") + ["--data.data", str(tmp_path)]
    for args, fragment in ((tiny_args(tmp_path / "runs") + ["--ckpt_path", "last"], "has no last.ckpt yet"),
                           (tiny_args(tmp_path / "runs") + ["--ckpt_path", str(tmp_path / "random.ckpt")],
                            "cannot read"),
                           (folder, "--data.test_data FOLDER"),
                           (tiny_args(tmp_path / "runs") + ["--model.optimizer", "adam"],
                            "optimizer must be one of ('sgd', 'adamw'), got 'adam'"),
                           (tiny_args(tmp_path / "runs") + ["--data.data", str(tmp_path / "empty")], "no videos")):
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and fragment in err
    assert not (tmp_path / "runs").exists()


def test_experiment_threads_are_pinned_and_checked(tmp_path, capsys, monkeypatch):
    """--threads pins torch's CPU threads (a training's numbers depend on them); below 1 is a usage error."""
    from lit_stbias.lightning.experiments import set_threads

    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", ""))  # restored afterwards
    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    finally:
        torch.set_num_threads(before)
    assert main(["shuffle-experiment", "--threads", "0", "--out", str(tmp_path / "shuffle")]) == 2
    assert "--threads 0" in capsys.readouterr().err
    assert not (tmp_path / "shuffle").exists()


def test_shuffle_experiment_bad_seeds_is_a_usage_error(tmp_path, capsys):
    assert main(["shuffle-experiment", "--seeds", "0,x", "--out", str(tmp_path / "shuffle")]) == 2
    assert "--seeds 0,x" in capsys.readouterr().err
    assert not (tmp_path / "shuffle").exists()


# -- runs ----------------------------------------------------------------------------------------------------
def test_resume_with_ckpt_path_last_continues_epochs_and_history(tmp_path):
    first = run(tiny_args(tmp_path, epochs=1))
    run_dir = Path(first["run_dir"])
    assert first["epochs"] == 1 and Path(first["last_checkpoint"]).is_file()
    before = history(run_dir)
    resumed = run(tiny_args(tmp_path, epochs=2, ckpt_path="last"))
    after = history(run_dir)
    assert resumed["epochs"] == 2 and resumed["global_step"] == 2 * first["global_step"]
    assert [h["context"]["epoch"] for h in after] == [0, 1] and after[0] == before[0]
    assert (run_dir / "csv" / "version_1" / "metrics.csv").is_file()  # the resumed part logs beside the first
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["last_checkpoint"] == resumed["last_checkpoint"]
    assert set(summary["bias"]) == {f"stage{i}" for i in range(1, 6)}
    # a fresh start over a run that has checkpoints needs --overwrite
    with pytest.raises(UsageError, match="--ckpt_path last"):
        run(tiny_args(tmp_path))
    # validate the last checkpoint into <name>-validate, leaving the run folder alone
    validated = run(tiny_args(tmp_path, subcommand="validate", ckpt_path="last"))
    assert Path(validated["run_dir"]) == tmp_path / "tiny-validate" and validated["stage"] == "validate"
    assert validated["metrics"]["val/acc1"] == pytest.approx(resumed["metrics"]["val/acc1"])
    # test it on the synthetic test clips (their own seed) into <name>-test
    tested = run(tiny_args(tmp_path, subcommand="test", ckpt_path="last"))
    assert Path(tested["run_dir"]) == tmp_path / "tiny-test" and 0.0 <= tested["metrics"]["test/acc1"] <= 1.0


def test_seeded_training_repeats_itself(tmp_path):
    """Same seed, two run folders: the same weights, bit for bit, and the same bias history (issue 12.6).
    With loader workers, as the configs use them: clips are a function of (seed, index) alone."""
    one = run({"fit": tiny_config(tmp_path, name="one", num_workers=2)})
    two = run({"fit": tiny_config(tmp_path, name="two", num_workers=2)})
    a = read_checkpoint(one["last_checkpoint"])["state_dict"]
    b = read_checkpoint(two["last_checkpoint"])["state_dict"]
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert history(one["run_dir"]) == history(two["run_dir"])
    other = read_checkpoint(run({"fit": tiny_config(tmp_path, name="three", seed=1)})["last_checkpoint"])
    assert not all(torch.equal(a[k], other["state_dict"][k]) for k in a)  # and the seed matters


def test_wandb_run_is_offline_with_config_groups_and_epoch_axis(tmp_path, monkeypatch):
    """Spy on wandb: the run is offline, carries group, tags and the model/data/monitor settings, and the
    validation and bias keys are plotted against the epoch."""
    import wandb
    from wandb.sdk.wandb_run import Run

    monkeypatch.delenv("WANDB_MODE", raising=False)
    seen = {"init": None, "metrics": {}, "config": None}
    real_init, real_define, real_finish = wandb.init, Run.define_metric, Run.finish

    def init(**kwargs):
        seen["init"] = kwargs
        return real_init(**kwargs)

    def define_metric(self, name, *args, **kwargs):
        seen["metrics"][name] = kwargs.get("step_metric")
        return real_define(self, name, *args, **kwargs)

    def finish(self, *args, **kwargs):
        seen["config"] = dict(self.config)
        return real_finish(self, *args, **kwargs)

    monkeypatch.setattr(wandb, "init", init)
    monkeypatch.setattr(Run, "define_metric", define_metric)
    monkeypatch.setattr(Run, "finish", finish)
    summary = run(tiny_args(tmp_path, wandb="true", wandb_group="seeds", wandb_tags="[tiny, test]"))
    assert seen["init"]["mode"] == "offline" and seen["init"]["group"] == "seeds"
    assert seen["init"]["tags"] == ["tiny", "test"] and seen["init"]["project"] == "lit_stbias"
    config = seen["config"]
    assert config["model"]["model_name"] == "fast" and config["model"]["class"] == "ActionRecognitionModule"
    assert config["data"]["task"] == "motion" and config["data"]["num_videos"] == 16
    assert config["bias"]["num_pairs"] == 5 and config["seed_everything"] == 0
    metrics = seen["metrics"]
    assert metrics["val/acc1"] == metrics["bias/stage5/dynamic_percent"] == "epoch"
    assert "train/loss" not in metrics  # per step, on Lightning's trainer/global_step
    assert list((Path(summary["run_dir"]) / "wandb").glob("offline-run-*/run-*.wandb"))
    run_id = (Path(summary["run_dir"]) / "wandb_id.txt").read_text().strip()
    assert seen["init"]["id"] is None and run_id  # a resume would pass this id back to W&B


def test_two_process_ddp_logs_the_single_process_bias(tmp_path):
    """Same weights, same pairs: 2 gloo processes (uneven split, 5 pairs) give the 1-process numbers."""
    trained = run(tiny_args(tmp_path, name="trained"))
    ckpt = trained["last_checkpoint"]
    single = run(tiny_args(tmp_path, name="single", subcommand="validate", ckpt_path=ckpt))
    result = train_py(*tiny_args(tmp_path, name="ddp", subcommand="validate", ckpt_path=ckpt),
                      "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
                      cwd=tmp_path)
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


# -- shuffled frames and seeds -------------------------------------------------------------------------------
def test_shuffled_model_sees_the_ordered_frames_out_of_order():
    """temporal_stride 4: the shuffled input is a permutation of exactly the frames the ordered model sees."""
    video = torch.arange(16.0).view(1, 1, 16, 1, 1).expand(2, 3, 16, 4, 4)  # each frame holds its index
    index = torch.tensor([3, 7])
    ordered = ActionRecognitionModule("slow", num_classes=2, temporal_stride=4)
    shuffled = ActionRecognitionModule("slow", num_classes=2, temporal_stride=4, shuffle_frames=True)
    seen = ordered.model_input(video, index)[:, 0, :, 0, 0]
    assert seen[0].tolist() == [0.0, 4.0, 8.0, 12.0]
    got = shuffled.model_input(video, index)[:, 0, :, 0, 0]
    assert got.shape == seen.shape
    for clip, reference in zip(got, seen):
        assert sorted(clip.tolist()) == reference.tolist() and clip.tolist() != reference.tolist()
    again = shuffled.model_input(video, index)[:, 0, :, 0, 0]
    assert torch.equal(got, again)  # the same order for the same (epoch, index)


def test_seed_interval_is_the_release_formula():
    values = [0.8, 0.9, 1.0]
    mean, half = seed_interval(values)
    population_std = math.sqrt(sum((v - 0.9) ** 2 for v in values) / 3)
    assert mean == pytest.approx(0.9) and half == pytest.approx(1.96 * population_std / math.sqrt(3))
    assert seed_interval([0.7]) == (0.7, 0.0)
    with pytest.raises(ValueError):
        seed_interval([])


def test_shuffle_experiment_over_two_seeds(tmp_path):
    rows = shuffle_experiment(tasks="motion", models="fast", seeds="0,1", epochs=1, frames=8, size=32,
                              num_videos=16, val_videos=8, batch_size=8, out=str(tmp_path))
    assert len(rows) == 1 and rows[0]["num_seeds"] == 2 and rows[0]["seeds"] == [0, 1]
    top1 = {}
    for seed in (0, 1):
        ordered = json.loads((tmp_path / f"fast-motion-seed{seed}" / "summary.json").read_text())
        shuffled = json.loads((tmp_path / f"fast-motion-shuffled-seed{seed}" / "summary.json").read_text())
        assert not ordered["shuffle_frames"] and shuffled["shuffle_frames"] and ordered["seed"] == seed
        top1[seed] = (ordered["metrics"]["val/acc1"], shuffled["metrics"]["val/acc1"])
    with open(tmp_path / "shuffle_runs.csv") as f:
        per_seed = list(csv.DictReader(f))
    assert [(r["seed"], float(r["top1"])) for r in per_seed] == [("0", top1[0][0]), ("1", top1[1][0])]
    with open(tmp_path / "shuffle_table.csv") as f:
        table = list(csv.DictReader(f))
    assert [(r["task"], r["model"], r["num_seeds"]) for r in table] == [("motion", "fast", "2")]
    for column, position in (("top1", 0), ("top1_shuffled", 1)):
        mean, half = seed_interval([top1[0][position], top1[1][position]])
        assert float(table[0][column]) == pytest.approx(mean)
        assert float(table[0][f"{column}_interval"]) == pytest.approx(half)
    assert "mean ± 95% interval over 2 training seeds" in (tmp_path / "shuffle_table.md").read_text()
    assert (tmp_path / "shuffle_chart.png").stat().st_size > 5000


def test_default_takes_seeds(tmp_path, capsys):
    assert main(["default", "--models", "fast", "--seeds", "0,1", "--epochs", "1", "--frames", "8", "--size", "32",
                 "--num_videos", "16", "--val_videos", "8", "--batch_size", "8", "--num_pairs", "4",
                 "--wandb", "false", "--out", str(tmp_path)]) == 0
    summaries = [json.loads((tmp_path / f"fast-synthetic-motion-seed{s}" / "summary.json").read_text())
                 for s in (0, 1)]
    assert [s["seed"] for s in summaries] == [0, 1]
    rows = json.loads((tmp_path / "default_seeds.json").read_text())
    assert [r["tap"] for r in rows] == [f"stage{i}" for i in range(1, 6)]
    stage5 = rows[-1]["dynamic_percent"]
    values = [s["bias"]["stage5"]["layer_percent"]["dynamic"] for s in summaries]
    assert stage5["values"] == values and stage5["mean"] == pytest.approx(seed_interval(values)[0])
    assert "| fast | stage5 |" in (tmp_path / "default_seeds.md").read_text()
