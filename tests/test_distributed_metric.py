"""2 CPU processes (gloo) with an uneven split give the single-process answer."""
import numpy as np
import pytest
import torch
from distributed import run_distributed
from reference import correlated_pairs, reference_bias
from torch import nn

from lit_stbias.metrics import StaticDynamicBias
from lit_stbias.probe import BiasProbe


def _data():
    return correlated_pairs(np.random.default_rng(21), 45, 12, loc=3.0)


def _metric_on_ranks(rank, world_size):
    z1, z2, factor = _data()
    # Uneven: rank 0 takes the first 17 pairs in batches of 5, rank 1 the other 73 in batches of 9.
    lo, hi, batch = (0, 17, 5) if rank == 0 else (17, len(factor), 9)
    metric = StaticDynamicBias(12)
    for i in range(lo, hi, batch):
        j = min(i + batch, hi)
        metric.update(torch.from_numpy(z1[i:j]), torch.from_numpy(z2[i:j]), torch.from_numpy(factor[i:j]))
    result = metric.compute()
    return result.to_dict(include_units=True)


def _single():
    z1, z2, factor = _data()
    metric = StaticDynamicBias(12)
    metric.update(torch.from_numpy(z1), torch.from_numpy(z2), torch.from_numpy(factor))
    return metric.compute().to_dict(include_units=True)


def _probe_views(seed, n):
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(n, 3, 4, 8, 8, generator=g)
    return {"anchor": video, "dynamic": video.flip(1), "static": video.flip(2)}


def _tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv3d(6, 5, 1))


def _probe_on_ranks(rank, world_size):
    probe = BiasProbe(_tiny_model(), taps=["0", "2"])
    for i in range(rank, 7, world_size):  # 7 batches, uneven shares
        probe.update(_probe_views(i, 3 + i))
    return {k: v.to_dict(include_units=True) for k, v in probe.compute().items()}


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
    assert single["layer_scores"]["dynamic"] == pytest.approx(reference_bias(z1, z2, factor)["scores"][0], rel=1e-9)


def test_ddp_probe_equals_single_process():
    probe = BiasProbe(_tiny_model(), taps=["0", "2"])
    for i in range(7):
        probe.update(_probe_views(i, 3 + i))
    single = {k: v.to_dict(include_units=True) for k, v in probe.compute().items()}
    _close(run_distributed(_probe_on_ranks, 2), single)
