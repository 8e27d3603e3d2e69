"""2 CPU processes (gloo) with an uneven split give the single-process answer: the metric alone, the probe,
and the metric inside a user's own LightningModule trained and validated by a DDP Trainer."""
import os

import lightning as L
import numpy as np
import pytest
import torch
from distributed import run_distributed
from reference import correlated_pairs, reference_bias
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset
from torchmetrics import MetricCollection

from lit_stbias.metrics import SCALAR_NAMES, StaticDynamicBias


def _data():
    return correlated_pairs(np.random.default_rng(21), 45, 12, loc=3.0)


def _metric_on_ranks(rank, world_size):
    z1, z2, factor = _data()
    # Uneven: rank 0 takes the first 17 pairs in batches of 5, rank 1 the other 73 in batches of 9.
    lo, hi, batch = (0, 17, 5) if rank == 0 else (17, len(factor), 9)
    metric = StaticDynamicBias(12)
    for i in range(lo, hi, batch):
        j = min(i + batch, hi)
        step = metric.update if rank == 0 else metric  # rank 1 accumulates through forward
        step(torch.from_numpy(z1[i:j]), torch.from_numpy(z2[i:j]), torch.from_numpy(factor[i:j]))
    local = metric.num_pairs
    out = {"result": metric.compute_result().to_dict(include_units=True),
           "scalars": {k: float(v) for k, v in metric.compute().items()}}
    assert metric.num_pairs == local  # the local state is back after each sync, so accumulation can go on
    return out


def _single():
    z1, z2, factor = _data()
    metric = StaticDynamicBias(12)
    metric.update(torch.from_numpy(z1), torch.from_numpy(z2), torch.from_numpy(factor))
    return {"result": metric.compute_result().to_dict(include_units=True),
            "scalars": {k: float(v) for k, v in metric.compute().items()}}


def _probe_views(seed, n):
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(n, 3, 4, 8, 8, generator=g)
    return {"anchor": video, "dynamic": video.flip(1), "static": video.flip(2)}


def _tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv3d(6, 5, 1))


def _probe_on_ranks(rank, world_size):
    from lit_stbias.probe import BiasProbe  # here, so workers of the other tests skip the model imports

    probe = BiasProbe(_tiny_model(), taps=["0", "2"])
    for i in range(rank, 7, world_size):  # 7 batches, uneven shares
        probe.update(_probe_views(i, 3 + i))
    return {k: v.to_dict(include_units=True) for k, v in probe.compute().items()}


# --- a user's own LightningModule, fitted and validated by a real Trainer (1 process vs. DDP on 2) ----------

BATCH = 8  # global batch: 8 on one process, 4 + 4 on two, so every optimizer step sees the same pairs


def _pairs(seed, n):
    """n pairs of tiny videos; factors 0,0,1,1,... so every half of a batch split by rank holds both kinds."""
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(n, 3, 4, 6, 6, generator=g)
    factor = (torch.arange(n) // 2) % 2
    partner = torch.where(factor.view(-1, 1, 1, 1, 1) == 0, video.flip(-1), video.flip(2))  # restyled / shuffled
    return TensorDataset(video, partner + 0.05 * torch.rand(video.shape, generator=g), factor)


class UserNet(L.LightningModule):
    """Not one of this project's modules: a conv layer whose pooled output of the two views feeds the metric."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv3d(3, 6, 3, padding=1)
        self.train_bias = StaticDynamicBias(6)
        self.val_bias = MetricCollection({"conv": StaticDynamicBias(6)}, prefix="val/bias/")

    def pooled(self, video):
        return self.conv(video).mean(dim=(2, 3, 4))

    def training_step(self, batch, batch_idx):
        view1, view2, factor = batch
        z1, z2 = self.pooled(view1), self.pooled(view2)
        self.log_dict({f"step/{k}": v for k, v in self.train_bias(z1, z2, factor).items()})  # forward every step
        return ((z1 - z2) ** 2).mean()

    def on_train_epoch_end(self):
        self.log_dict({f"train/bias/{k}": v for k, v in self.train_bias.compute().items()})
        self.train_bias.reset()

    def validation_step(self, batch, batch_idx):
        view1, view2, factor = batch
        self.val_bias.update(self.pooled(view1), self.pooled(view2), factor)

    def on_validation_epoch_end(self):
        self.log_dict(self.val_bias.compute())
        self.val_bias.reset()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def _fit_and_validate(rank, world_size, root):
    if world_size > 1:  # the processes exist already (tests/distributed.py): Lightning joins them
        os.environ.update(LOCAL_RANK=str(rank), RANK=str(rank), WORLD_SIZE=str(world_size), NODE_RANK="0")
        torch.set_num_threads(1)  # one thread per worker; the pytest process keeps its own setting

    def loader(seed, n):  # rank r takes pairs r, r + world_size, ...: each step, the ranks split one global batch
        return DataLoader(Subset(_pairs(seed, n), range(rank, n, world_size)), batch_size=BATCH // world_size)

    trainer = L.Trainer(
        accelerator="cpu", devices=world_size, strategy="ddp" if world_size > 1 else "auto",
        use_distributed_sampler=False, precision="64-true", max_epochs=2, num_sanity_val_steps=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=root,
    )
    model = UserNet()
    trainer.fit(model, loader(1, 32), loader(2, 24))
    fitted = {k: float(v) for k, v in trainer.callback_metrics.items() if not k.startswith("step/")}
    validated = {k: float(v) for k, v in trainer.validate(model, loader(2, 24), verbose=False)[0].items()}
    return fitted, validated, {k: v.tolist() for k, v in model.conv.state_dict().items()}  # plain data for the queue


def test_user_lightning_module_logs_the_same_bias_on_one_and_two_ddp_processes(tmp_path):
    fitted, validated, weights = _fit_and_validate(0, 1, str(tmp_path / "one"))
    names = [f"{prefix}/bias/{name}" for prefix in ("train", "val") for name in SCALAR_NAMES]
    assert sorted(fitted) == sorted(names)
    assert sorted(validated) == sorted(n for n in names if n.startswith("val/"))
    # the logged validation values are the metric on the whole validation set with the trained layer
    conv = nn.Conv3d(3, 6, 3, padding=1).double()
    conv.load_state_dict({k: torch.tensor(v, dtype=torch.float64) for k, v in weights.items()})
    view1, view2, factor = _pairs(2, 24).tensors
    metric = StaticDynamicBias(6)
    with torch.no_grad():
        metric.update(conv(view1.double()).mean((2, 3, 4)), conv(view2.double()).mean((2, 3, 4)), factor)
    assert validated == pytest.approx({f"val/bias/{k}": float(v) for k, v in metric.compute().items()}, rel=1e-12)

    ddp_fitted, ddp_validated, ddp_weights = run_distributed(_fit_and_validate, 2, str(tmp_path / "two"))
    for key, value in weights.items():  # DDP averaged the same gradients: the same layer, to rounding
        np.testing.assert_allclose(ddp_weights[key], value, rtol=1e-12, atol=1e-14)
    assert ddp_fitted == pytest.approx(fitted, rel=1e-9, abs=1e-12)
    assert ddp_validated == pytest.approx(validated, rel=1e-9, abs=1e-12)
    assert fitted["train/bias/score_dynamic"] != fitted["val/bias/score_dynamic"]  # two different sets of pairs


def _close(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            _close(a[key], b[key])
        elif isinstance(a[key], list):
            np.testing.assert_allclose(np.asarray(a[key], float), np.asarray(b[key], float), rtol=1e-6, atol=1e-7)
        elif isinstance(a[key], float):
            assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12), key
        else:
            assert a[key] == b[key], key


def test_ddp_metric_equals_single_process_and_reference():
    single = _single()
    _close(run_distributed(_metric_on_ranks, 2), single)
    z1, z2, factor = _data()
    reference = reference_bias(z1, z2, factor)["scores"][0]
    assert single["result"]["layer_scores"]["dynamic"] == pytest.approx(reference, rel=1e-9)


def test_ddp_probe_equals_single_process():
    from lit_stbias.probe import BiasProbe

    probe = BiasProbe(_tiny_model(), taps=["0", "2"])
    for i in range(7):
        probe.update(_probe_views(i, 3 + i))
    single = {k: v.to_dict(include_units=True) for k, v in probe.compute().items()}
    _close(run_distributed(_probe_on_ranks, 2), single)
