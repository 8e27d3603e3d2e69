"""StaticDropout: drops only the static channels, only in training steps, at rate p, reproducibly; its random
control; the provider schedule; a tiny zoo training run; building it from the command line."""
import csv
import json
import math
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.cli import LightningCLI
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lit_stbias.analysis import BiasDocument
from lit_stbias.intervene import unit_classes
from lit_stbias.lightning import ActionDataModule, ActionRecognitionModule, BiasMonitor
from lit_stbias.lightning.cli import TrainCLI
from lit_stbias.lightning.experiments import main as train_main
from lit_stbias.lightning.experiments import staticdropout_experiment
from lit_stbias.lightning.static_dropout import MonitorProvider, StaticDropout
from lit_stbias.metrics import static_dynamic_bias
from lit_stbias.probe import Tap

ROOT = Path(__file__).resolve().parents[1]
UNITS = 8
STATIC = [True, True, True, False, False, False, False, False]


class Tiny(LightningModule):
    """Linear -> tap (Identity) -> Linear; records what went into and came out of the tap in every step."""

    def __init__(self, eval_tap_on_odd_steps: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.model = nn.Sequential(OrderedDict(feat=nn.Linear(4, UNITS), tap=nn.Identity(), head=nn.Linear(UNITS, 2)))
        self.model.taps = {"hidden": Tap("tap")}
        self.eval_tap_on_odd_steps = eval_tap_on_odd_steps
        self.records: list[tuple[str, int, torch.Tensor, torch.Tensor]] = []

    def _run(self, batch, stage, batch_idx):
        x, y = batch
        h = self.model.feat(x)
        out = self.model.tap(h)
        self.records.append((stage, self.current_epoch, h.detach().clone(), out.detach().clone()))
        return nn.functional.cross_entropy(self.model.head(out), y)

    def training_step(self, batch, batch_idx):
        if self.eval_tap_on_odd_steps:
            self.model.tap.train(batch_idx % 2 == 0)
        return self._run(batch, "train", batch_idx)

    def validation_step(self, batch, batch_idx):
        self._run(batch, "val", batch_idx)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class CallOutsideSteps(Callback):
    """Calls the model in training mode between steps: no training step, so no drops."""

    def on_train_epoch_end(self, trainer, pl_module):
        pl_module.train()
        pl_module._run(next(iter(trainer.train_dataloader)), "outside", 0)


def loader(n=1600, batch_size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    data = TensorDataset(torch.randn(n, 4, generator=g), torch.randint(0, 2, (n,), generator=g))
    return DataLoader(data, batch_size=batch_size)


def fit(callbacks, module=None, epochs=1, train_batches=100, val_batches=2):
    module = module or Tiny()
    trainer = Trainer(accelerator="cpu", devices=1, callbacks=callbacks, max_epochs=epochs,
                      limit_train_batches=train_batches,
                      limit_val_batches=val_batches, num_sanity_val_steps=1, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, loader(), loader(n=64))
    return module, trainer


def drops(records, stage="train"):
    """Per record, the (B, C) mask of entries the tap set to 0 (the features themselves are never 0)."""
    return [(out == 0) & (h != 0) for s, _, h, out in records if s == stage]


@pytest.fixture(scope="module")
def static_run():
    callback = StaticDropout("hidden", p=0.3, static_units=STATIC, seed=0)
    module, trainer = fit([callback, CallOutsideSteps()], Tiny(eval_tap_on_odd_steps=True))
    return module, trainer, callback


def test_drops_only_static_channels_only_in_training_steps(static_run):
    module, trainer, callback = static_run
    static = torch.tensor(STATIC)
    train = [(h, out) for s, _, h, out in module.records if s == "train"]
    assert len(train) == 100
    active, frozen = train[0::2], train[1::2]  # the tap is in eval mode on odd steps
    for h, out in frozen:
        assert torch.equal(out, h)
    dropped = kept = 0
    for h, out in active:
        assert torch.equal(out[:, ~static], h[:, ~static])  # non-static channels never touched
        zero = out[:, static] == 0
        # kept static channels are scaled by 1 / (1 - p): inverted dropout
        assert torch.allclose(out[:, static][~zero], h[:, static][~zero] / 0.7)
        dropped, kept = dropped + int(zero.sum()), kept + int((~zero).sum())
    rate = dropped / (dropped + kept)  # 50 steps x 16 samples x 3 channels = 2400 draws
    assert abs(rate - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 2400)
    for stage in ("val", "outside"):  # validation, sanity check and calls between steps are untouched
        records = [(h, out) for s, _, h, out in module.records if s == stage]
        assert records and all(torch.equal(out, h) for h, out in records)
    assert trainer.callback_metrics["static_dropout/static_units"] == 3
    assert all(len(m._forward_hooks) == 0 for m in module.modules())  # the hook is gone after fit


def test_random_control_drops_a_fixed_random_set_of_the_same_size(static_run):
    module_static, _, _ = static_run
    callback = StaticDropout("hidden", p=0.3, mode="random", static_units=STATIC, seed=0)
    module, _ = fit([callback])
    chosen = callback.dropped
    assert int(chosen.sum()) == 3 and not torch.equal(chosen, torch.tensor(STATIC))
    masks = drops(module.records)
    assert not any(bool(m[:, ~chosen].any()) for m in masks)  # only the control set is ever dropped
    static_masks = drops(module_static.records)[0::2]
    random_rate = sum(int(m.sum()) for m in masks) / (len(masks) * 16 * UNITS)
    static_rate = sum(int(m.sum()) for m in static_masks) / (len(static_masks) * 16 * UNITS)
    expected = 0.3 * 3 / UNITS  # the same expected number of dropped channels per sample
    for rate, n in ((random_rate, len(masks)), (static_rate, len(static_masks))):
        assert abs(rate - expected) < 4 * math.sqrt(0.3 * 0.7 / (n * 16 * 3)) * 3 / UNITS
    # the control set depends on the seed only
    same = StaticDropout("hidden", mode="random", static_units=STATIC, seed=0)
    assert torch.equal(same.dropped, chosen)
    others = [StaticDropout("hidden", mode="random", static_units=STATIC, seed=s).dropped for s in range(1, 6)]
    assert any(not torch.equal(o, chosen) for o in others)


def test_drop_masks_repeat_with_the_seed_and_ignore_the_global_rng():
    first, _ = fit([StaticDropout("hidden", p=0.5, static_units=STATIC, seed=3)], train_batches=10)
    torch.manual_seed(1234)  # another global RNG state: the masks are drawn from their own keys
    second, _ = fit([StaticDropout("hidden", p=0.5, static_units=STATIC, seed=3)], train_batches=10)
    other, _ = fit([StaticDropout("hidden", p=0.5, static_units=STATIC, seed=4)], train_batches=10)
    a, b, c = drops(first.records), drops(second.records), drops(other.records)
    assert len(a) == 10 and all(torch.equal(x, y) for x, y in zip(a, b))
    assert any(not torch.equal(x, y) for x, y in zip(a, c))


def rank_dependent(trainer, pl_module):
    """A provider that answers differently on every rank: rank 0's answer must win everywhere."""
    return [i % 2 == trainer.global_rank for i in range(UNITS)]


class WriteSets(Callback):
    def __init__(self, out):
        self.out = out

    def on_train_end(self, trainer, pl_module):
        callback = next(c for c in trainer.callbacks if isinstance(c, StaticDropout))
        sets = {"static": callback.static.tolist(), "dropped": callback.dropped.tolist()}
        Path(self.out, f"rank{trainer.global_rank}.json").write_text(json.dumps(sets))


def test_two_processes_drop_from_the_same_sets_as_one(tmp_path):
    callback = StaticDropout("hidden", p=0.5, mode="random", provider=rank_dependent, seed=3)
    trainer = Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", callbacks=[callback, WriteSets(tmp_path)],
                      max_epochs=1, limit_train_batches=2, limit_val_batches=0, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Tiny(), loader(n=64))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    even = [i % 2 == 0 for i in range(UNITS)]
    assert ranks[0] == ranks[1] and ranks[0]["static"] == even  # rank 0's answer, on both ranks
    one_process = StaticDropout("hidden", mode="random", static_units=even, seed=3)
    assert ranks[0]["dropped"] == one_process.dropped.tolist()  # the control set depends on the seed only


def random_result(static_channels, num_units=UNITS):
    """A BiasResult whose static units are exactly ``static_channels`` (the others are dynamic)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, num_units, generator=g), torch.randn(200, num_units, generator=g)
    static = torch.zeros(num_units, dtype=torch.bool)
    static[static_channels] = True
    b[100:, static] = a[100:, static]  # static pairs share the static channels
    b[:100, ~static] = a[:100, ~static]  # dynamic pairs share the others
    return static_dynamic_bias(a, b, torch.tensor([0] * 100 + [1] * 100))


@pytest.mark.parametrize("every", [0, 2])
def test_provider_is_asked_on_the_schedule(every):
    calls = []
    answers = [[0, 1], [6, 7], [2, 3]]

    def provider(trainer, pl_module):
        calls.append(trainer.current_epoch)
        result = random_result(answers[len(calls) - 1])
        return {"hidden": result} if len(calls) % 2 else result  # a mapping tap -> result, or the result

    callback = StaticDropout("hidden", p=0.5, provider=provider, every_n_epochs=every)
    module, _ = fit([callback], epochs=5, train_batches=4)
    assert calls == ([0] if every == 0 else [0, 2, 4])
    for epoch in range(5):
        estimate = 0 if every == 0 else min(len(calls) - 1, epoch // 2)
        expected = torch.zeros(UNITS, dtype=torch.bool)
        expected[answers[estimate]] = True
        epoch_masks = [(out == 0) & (h != 0) for s, e, h, out in module.records if s == "train" and e == epoch]
        assert not any(bool(m[:, ~expected].any()) for m in epoch_masks)
        assert any(bool(m.any()) for m in epoch_masks)
    assert torch.equal(callback.static, unit_classes(random_result(answers[len(calls) - 1]))["static"])


def test_checkpoint_state_restores_the_sets():
    callback = StaticDropout("hidden", mode="random", provider=lambda t, m: STATIC, seed=5)
    callback._set_static(torch.tensor(STATIC), epoch=3, given=True)
    restored = StaticDropout("hidden", mode="random", provider=lambda t, m: STATIC, seed=5)
    restored.load_state_dict(callback.state_dict())
    assert torch.equal(restored.static, callback.static) and torch.equal(restored.dropped, callback.dropped)
    assert restored.estimated_epoch == 3 and not restored._due(3) and restored.static is not None


def test_bad_input_is_one_clear_value_error():
    cases = [
        (dict(p=-0.1), r"p must be in \[0, 1\)"),
        (dict(p=1.0), r"p must be in \[0, 1\)"),
        (dict(p=float("nan")), r"p must be in \[0, 1\)"),
        (dict(mode="dynamic"), "mode must be one of"),
        (dict(static_units=[False] * UNITS), "holds no channel"),
        (dict(static_units=[True] * UNITS), f"every one of its {UNITS} channels"),
        (dict(static_units=[0, 1]), "bool mask over its channels, not indices"),
        (dict(static_units=None), "needs the static set"),
        (dict(provider=lambda t, m: STATIC), "not both static_units and provider"),
        (dict(static_units=None, static_units_from="monitor", provider=lambda t, m: STATIC), "not both"),
        (dict(start_epoch=-1), "start_epoch must be >= 0"),
        (dict(every_n_epochs=2), "needs a provider"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            StaticDropout("hidden", **{"static_units": STATIC, **kwargs})


def test_bad_tap_and_bad_sets_fail_in_fit():
    module = Tiny()
    with pytest.raises(ValueError, match="unknown tap 'stage5'"):
        fit([StaticDropout("stage5", static_units=STATIC)], module)
    assert module.records == []  # checked in setup(), before the sanity check and any step
    with pytest.raises(ValueError, match=f"has 5 entries but the tap has {UNITS} channels"):
        fit([StaticDropout("hidden", static_units=[True, False, False, False, False])])
    with pytest.raises(ValueError, match="no entry for tap 'hidden'"):
        fit([StaticDropout("hidden", provider=lambda t, m: {"other": STATIC})])
    empty = StaticDropout("hidden", provider=lambda t, m: [False] * UNITS)
    with pytest.warns(UserWarning, match="holds no channel; it is used as it is"):  # measured: not a config error
        module, _ = fit([empty], train_batches=3)
    assert not any(bool(m.any()) for m in drops(module.records))
    module = Tiny()
    with pytest.raises(ValueError, match="has 5 entries"):
        fit([StaticDropout("hidden", static_units=[True, False, False, False, False])], module)
    assert all(len(m._forward_hooks) == 0 for m in module.modules())  # removed after the failure too


def test_tiny_zoo_training_run_with_a_monitor_as_provider(tmp_path):
    """A few steps of a tiny SlowOnly on synthetic clips; the static set is measured by a BiasMonitor."""
    torch.manual_seed(0)
    module = ActionRecognitionModule("slow", num_classes=2, lr=0.01)
    data = ActionDataModule(task="motion", num_frames=8, size=32, num_videos=8, val_videos=4, batch_size=4)
    monitor = BiasMonitor(taps=["stage5"], num_pairs=4, batch_size=4, every_n_epochs=0, plot=False)
    callback = StaticDropout("stage5", p=0.5, provider=monitor.measure, threshold=0.5)
    trainer = Trainer(accelerator="cpu", devices=1, callbacks=[callback], max_epochs=1, limit_train_batches=2,
                      limit_val_batches=0,
                      num_sanity_val_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=str(tmp_path))
    trainer.fit(module, data)
    static = callback.static
    assert static is not None and 0 < int(static.sum()) < static.numel()
    assert callback.last_drop is not None and tuple(callback.last_drop.shape) == (4, static.numel())
    assert not bool(callback.last_drop[:, ~static].any()) and bool(callback.last_drop.any())
    assert trainer.callback_metrics["static_dropout/static_units"] == int(static.sum())
    assert math.isfinite(float(trainer.callback_metrics["train/loss"]))


def every_third_unit(trainer, pl_module):
    """A provider, named by its import path on the command line."""
    return [i % 3 == 0 for i in range(UNITS)]


def test_built_by_lightning_cli_from_command_line_options():
    mask = ",".join("true" if on else "false" for on in STATIC)
    cli = LightningCLI(
        Tiny, run=False, save_config_callback=None,
        args=["--trainer.accelerator=cpu", "--trainer.logger=false", "--trainer.max_epochs=1",
              "--trainer.limit_train_batches=2", "--trainer.enable_checkpointing=false",
              "--trainer.callbacks+=lit_stbias.lightning.static_dropout.StaticDropout",
              "--trainer.callbacks.tap=hidden", "--trainer.callbacks.p=0.25", "--trainer.callbacks.mode=random",
              "--trainer.callbacks.seed=7", f"--trainer.callbacks.static_units=[{mask}]",
              "--trainer.callbacks+=lit_stbias.lightning.static_dropout.StaticDropout",
              "--trainer.callbacks.tap=feat", "--trainer.callbacks.p=0.1",
              f"--trainer.callbacks.provider={__name__}.every_third_unit", "--trainer.callbacks.every_n_epochs=2"],
    )
    fixed, provided = [c for c in cli.trainer.callbacks if isinstance(c, StaticDropout)]
    assert (fixed.tap, fixed.p, fixed.mode, fixed.seed) == ("hidden", 0.25, "random", 7)
    assert fixed.static.tolist() == STATIC and int(fixed.dropped.sum()) == 3
    assert provided.provider is every_third_unit and provided.every_n_epochs == 2 and provided.static is None
    cli.trainer.fit(cli.model, loader(n=64), loader(n=32))  # and it trains
    assert provided.static.tolist() == every_third_unit(None, None)


# -- the static set from a bias.json ----------------------------------------------------------------------------
class Named(Tiny):
    """Tiny with the hyper-parameters this project's modules record (the model a bias.json is checked against)."""

    def __init__(self, model_name="tiny-net"):
        super().__init__()
        self.save_hyperparameters({"model_name": model_name, "preset": None})


def write_document(path, channels=(0, 1, 2), model="tiny-net", tap_modules=None, units=True, num_units=UNITS):
    result = random_result(list(channels), num_units)
    doc = BiasDocument.from_results({0: {"hidden": result}}, units=units, model=model,
                                    tap_modules=tap_modules or {"hidden": "tap"})
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.write(path, units=units)
    return result


def test_static_set_read_from_a_bias_json(tmp_path):
    result = write_document(tmp_path / "run" / "bias.json", channels=(1, 4, 6))
    for where in (tmp_path / "run" / "bias.json", tmp_path / "run"):  # the file, or the folder analyze.py wrote
        callback = StaticDropout("hidden", p=0.5, static_units_from=str(where), seed=2)
        assert callback.static.nonzero().flatten().tolist() == [1, 4, 6]
        assert torch.equal(callback.static, unit_classes(result)["static"])
    module, _ = fit([callback], Named(), train_batches=20)
    masks = drops(module.records)
    assert any(bool(m.any()) for m in masks) and not any(bool(m[:, ~callback.static].any()) for m in masks)
    # λ re-classifies the document's unit scores
    strict = StaticDropout("hidden", static_units_from=str(tmp_path / "run"), threshold=0.99)
    assert torch.equal(strict.static, unit_classes(result, 0.99)["static"])


def test_bias_json_of_another_model_or_layer_is_refused_naming_the_file(tmp_path):
    good = tmp_path / "good.json"
    write_document(good)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        StaticDropout("hidden", static_units_from=str(tmp_path / "missing.json"))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json is not valid JSON"):
        StaticDropout("hidden", static_units_from=str(tmp_path / "broken.json"))
    with pytest.raises(ValueError, match=f"{good} has no tap 'feat'; it holds hidden"):
        StaticDropout("feat", static_units_from=str(good))
    write_document(tmp_path / "history.json", units=False)
    with pytest.raises(ValueError, match="history.json holds no unit scores"):
        StaticDropout("hidden", static_units_from=str(tmp_path / "history.json"))
    cases = [
        (Named("slow"), good, f"{good} measured model 'tiny-net' but this run trains 'slow'"),
        (Named(), write_document(tmp_path / "other_layer.json", tap_modules={"hidden": "feat"}) and
         tmp_path / "other_layer.json", "tap 'hidden' was module feat there but is tap in this network"),
    ]
    for module, path, message in cases:
        with pytest.raises(ValueError, match=message):
            fit([StaticDropout("hidden", static_units_from=str(path))], module)
        assert module.records == []  # refused in setup, before any step
    write_document(tmp_path / "wide.json", num_units=12)
    with pytest.raises(ValueError, match="wide.json has 12 entries but the tap has 8 channels"):
        fit([StaticDropout("hidden", static_units_from=str(tmp_path / "wide.json"))], Named())


# -- the static set from the trainer's BiasMonitor ----------------------------------------------------------------
class Recorder(Callback):
    """What StaticDropout dropped in every training step, by epoch."""

    def __init__(self):
        self.drops = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        callback = next(c for c in trainer.callbacks if isinstance(c, StaticDropout))
        last = callback.last_drop
        self.drops.append((trainer.current_epoch, None if last is None else last.clone()))
        callback.last_drop = None


def test_monitor_measures_the_static_set_from_the_start_epoch_on(tmp_path):
    torch.manual_seed(0)
    module = ActionRecognitionModule("fast", num_classes=2, lr=0.01)
    data = ActionDataModule(task="mixed", num_frames=8, size=32, num_videos=8, val_videos=4, batch_size=4)
    monitor = BiasMonitor(taps=["stage5"], num_pairs=4, batch_size=4, every_n_epochs=0, plot=False)
    measured = {}
    measure = monitor.measure

    def spy(trainer, pl_module):
        results = measure(trainer, pl_module)
        measured[trainer.current_epoch] = results["stage5"]
        return results

    monitor.measure = spy
    callback = StaticDropout("stage5", p=0.5, static_units_from="monitor", every_n_epochs=1, start_epoch=1,
                             threshold=0.5)
    assert isinstance(callback.provider, MonitorProvider)
    recorder = Recorder()
    sets = {}

    class Sets(Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            sets[trainer.current_epoch] = None if callback.static is None else callback.static.clone()

    trainer = Trainer(accelerator="cpu", devices=1, callbacks=[callback, monitor, recorder, Sets()], max_epochs=3,
                      limit_train_batches=2, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      default_root_dir=str(tmp_path))
    trainer.fit(module, data)
    assert sorted(measured) == [1, 2]  # no estimate before start_epoch, then one every epoch
    assert sets[0] is None and all(d is None for e, d in recorder.drops if e == 0)  # plain training in epoch 0
    for epoch in (1, 2):
        static = unit_classes(measured[epoch], 0.5)["static"]
        assert torch.equal(sets[epoch], static)
        epoch_drops = [d for e, d in recorder.drops if e == epoch]
        assert len(epoch_drops) == 2 and all(d is not None for d in epoch_drops)
        assert not any(bool(d[:, ~static].any()) for d in epoch_drops)
    assert trainer.callback_metrics["static_dropout/static_units"] == int(sets[2].sum())


def test_monitor_provider_refuses_a_trainer_without_a_monitor_of_the_tap():
    module = Tiny()
    with pytest.raises(ValueError, match="needs a BiasMonitor among the trainer's callbacks"):
        fit([StaticDropout("hidden", static_units_from="monitor")], module)
    with pytest.raises(ValueError, match=r"no BiasMonitor measures tap 'feat' \(they measure hidden\)"):
        fit([StaticDropout("feat", static_units_from="monitor"), BiasMonitor(every_n_epochs=0, plot=False)], module)
    with pytest.raises(ValueError, match=r"no BiasMonitor measures tap 'hidden' \(they measure other\)"):
        fit([StaticDropout("hidden", static_units_from="monitor"),
             BiasMonitor(taps=["other"], every_n_epochs=0, plot=False)], module)
    assert module.records == []  # all refused in setup, before any step


# -- from train.py -------------------------------------------------------------------------------------------------
class BuildOnly(TrainCLI):
    """TrainCLI that builds model, data and trainer and stops (LightningCLI calls ``self.fit``)."""

    def fit(self, **kwargs):
        pass

    def after_fit(self):
        pass


def test_train_py_builds_it_from_options_and_from_a_yaml(tmp_path):
    config = str(ROOT / "configs" / "fast_mixed.yaml")
    cli = BuildOnly(args=["fit", "--config", config, "--out", str(tmp_path), "--wandb", "false",
                          "--trainer.callbacks+=lit_stbias.lightning.StaticDropout",
                          "--trainer.callbacks.tap", "stage5", "--trainer.callbacks.static_units_from", "monitor",
                          "--trainer.callbacks.every_n_epochs", "2",
                          "--trainer.callbacks.start_epoch", "1", "--trainer.callbacks.p", "0.3"])
    (callback,) = [c for c in cli.trainer.callbacks if isinstance(c, StaticDropout)]
    assert isinstance(callback.provider, MonitorProvider) and callback.provider.tap == "stage5"
    assert (callback.p, callback.every_n_epochs, callback.start_epoch) == (0.3, 2, 1)
    monitor = next(c for c in cli.trainer.callbacks if isinstance(c, BiasMonitor))
    callback.provider.check(cli.trainer, cli.model)  # train.py's --bias monitor measures every tap: stage5 too
    assert "stage5" in MonitorProvider.measured_taps(monitor, cli.model)
    # a YAML config with the static set of a bias.json of this model
    result = random_result(list(range(0, 128, 3)), num_units=128)
    for model_name, ok in (("fast", True), ("slow", False)):
        path = tmp_path / f"{model_name}.json"
        BiasDocument.from_results({0: {"stage5": result}}, model=model_name, preset="tiny",
                                  tap_modules={"stage5": "blocks.4"}).write(path)
        extra = tmp_path / f"dropout_{model_name}.yaml"
        extra.write_text(yaml.safe_dump({"trainer": {"callbacks": [{
            "class_path": "lit_stbias.lightning.StaticDropout",
            "init_args": {"tap": "stage5", "p": 0.2, "static_units_from": str(path), "mode": "random"}}]}}))
        cli = BuildOnly(args=["fit", "--config", config, "--config", str(extra), "--out", str(tmp_path),
                              "--wandb", "false", "--overwrite", "true"])
        (callback,) = [c for c in cli.trainer.callbacks if isinstance(c, StaticDropout)]
        assert torch.equal(callback.static, unit_classes(result)["static"]) and callback.mode == "random"
        if ok:
            callback.setup(cli.trainer, cli.model, "fit")
            callback.teardown(cli.trainer, cli.model, "fit")
        else:
            with pytest.raises(ValueError, match="measured model 'slow' but this run trains 'fast'"):
                callback.setup(cli.trainer, cli.model, "fit")


# -- the experiment ------------------------------------------------------------------------------------------------
def test_staticdropout_experiment_end_to_end_on_a_tiny_setting(tmp_path, capsys):
    out = tmp_path / "experiment"
    rows = staticdropout_experiment(seeds="0", epochs=1, start_epoch=0, frames=8, size=32, num_videos=16,
                                    val_videos=8, batch_size=8, num_pairs=4, accelerator="cpu", out=str(out))
    assert [(r["model"], r["arm"]) for r in rows] == [("fast", "baseline"), ("fast", "static"), ("fast", "random")]
    for name in ("staticdropout_runs.csv", "staticdropout_table.csv", "staticdropout_table.md",
                 "staticdropout_table.json", "staticdropout_chart.png"):
        assert (out / name).is_file(), name
    runs = list(csv.DictReader(open(out / "staticdropout_runs.csv")))
    assert len(runs) == 3
    for run_row, row in zip(runs, rows):
        # the biased accuracy is the top-1 the run validated its last weights with
        assert float(run_row["top1"]) == pytest.approx(float(run_row["val_acc1"]))
        assert 0 <= row["top1_debiased"] <= 1 and row["top1_interval"] == 0.0  # one seed: no interval
        assert row["units_static"] + row["units_dynamic"] + row["units_joint"] <= 128
    baseline, static, random = rows
    assert baseline["dropped_units"] == 0 and static["dropped_units"] > 0 and random["dropped_units"] > 0
    assert json.loads((out / "staticdropout_table.json").read_text())[1]["arm"] == "static"
    table = (out / "staticdropout_table.md").read_text()
    assert "| fast | static |" in table and "synthetic:mixed-conflicting" in table
    assert table.strip() in capsys.readouterr().out
    for arm in ("baseline", "static", "random"):
        summary = json.loads((out / f"fast-mixed-{arm}" / "summary.json").read_text())
        assert summary["data"] == "synthetic:mixed" and "stage5" in summary["bias"]


def test_staticdropout_experiment_options_and_refusals(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_main(["staticdropout-experiment", "--config", str(ROOT / "configs" / "staticdropout_experiment.yaml"),
                    "--seeds", "4", "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["seeds"] == "4" and printed["models"] == "fast" and printed["tap"] == "stage5"
    for args, message in ((["--p", "1.0"], "--p 1.0: the drop probability must be in [0, 1)"),
                          (["--start_epoch", "8"], "0 <= start_epoch < epochs (8)"),
                          (["--seeds", "0,x"], "--seeds 0,x")):
        assert train_main(["staticdropout-experiment", *args, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
