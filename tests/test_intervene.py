"""Unit ablation: silencing channels of a tap, unit classes as channel sets, random control sets."""
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from lit_stbias.intervene import channel_means, random_unit_sets, silence, unit_classes
from lit_stbias.metrics import static_dynamic_bias
from lit_stbias.models import build, pack_pathways
from lit_stbias.probe import Tap, resolve_taps


def output_of(model, module, inputs):
    """The output of ``module`` during one forward pass (hook registered last, so it sees any edit)."""
    seen = {}
    handle = module.register_forward_hook(lambda _m, _i, out: seen.setdefault("out", out))
    try:
        with torch.no_grad():
            result = model(*inputs) if isinstance(inputs, tuple) else model(inputs)
    finally:
        handle.remove()
    return seen["out"], result


def hook_counts(model):
    return {name: len(m._forward_hooks) for name, m in model.named_modules()}


@pytest.fixture(scope="module")
def slow():
    torch.manual_seed(0)
    model = build("slow", "tiny", num_classes=4).eval()
    clip = torch.rand(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(1))
    stage5 = resolve_taps(model, ["stage5"])["stage5"][0]
    reference, logits = output_of(model, stage5, clip)
    return model, clip, stage5, reference, logits


def test_silencing_zeroes_exactly_the_chosen_channel_and_changes_the_output(slow):
    model, clip, stage5, reference, logits = slow
    k = 5
    with silence(model, "stage5", [k]) as silenced:
        out, silenced_logits = output_of(model, stage5, clip)
    assert silenced["stage5"].nonzero().flatten().tolist() == [k]
    assert bool((out[:, k] == 0).all()) and bool(reference[:, k].abs().sum() > 0)
    others = torch.ones(out.shape[1], dtype=torch.bool)
    others[k] = False
    assert torch.equal(out[:, others], reference[:, others])
    # the head sees the silenced features: the logits are the head's output on them
    edited = reference.clone()
    edited[:, k] = 0
    with torch.no_grad():
        expected = model.blocks[5](edited)
    assert torch.allclose(silenced_logits, expected, atol=1e-6)
    assert not torch.allclose(silenced_logits, logits)


def test_mask_and_indices_silence_the_same_channels(slow):
    model, clip, stage5, reference, _ = slow
    mask = torch.zeros(reference.shape[1], dtype=torch.bool)
    mask[[1, 4, 9]] = True
    with silence(model, "stage5", mask):
        by_mask, _ = output_of(model, stage5, clip)
    with silence(model, "stage5", [9, 1, 4, 4]):
        by_index, _ = output_of(model, stage5, clip)
    assert torch.equal(by_mask, by_index)
    assert bool((by_mask[:, mask] == 0).all()) and torch.equal(by_mask[:, ~mask], reference[:, ~mask])


def test_mean_mode_puts_the_reference_mean_in_the_channel(slow):
    model, clip, stage5, reference, _ = slow
    other = torch.rand(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(2))
    extra, _ = output_of(model, stage5, other)
    both = torch.cat([reference, extra])  # 3 clips, every position of every clip
    expected = both.double().mean(dim=(0, 2, 3, 4)).float()
    means = channel_means(model, ["stage5"], [clip, other])["stage5"]
    assert torch.allclose(means, expected, atol=1e-6)
    for ref in ([clip, other], means, {"stage5": means}):
        with silence(model, "stage5", [2, 7], mode="mean", reference=ref):
            out, _ = output_of(model, stage5, clip)
        for k in (2, 7):
            assert torch.allclose(out[:, k], expected[k].expand_as(out[:, k]), atol=1e-6)
        assert torch.equal(out[:, 0], reference[:, 0])


def test_hooks_are_gone_after_the_block_and_after_an_exception(slow):
    model, clip, stage5, reference, _ = slow
    before = hook_counts(model)
    with silence(model, {"stage4": [0], "stage5": [3]}):
        assert hook_counts(model) != before
    assert hook_counts(model) == before
    with pytest.raises(KeyError, match="boom"):
        with silence(model, "stage5", [3]):
            raise KeyError("boom")
    assert hook_counts(model) == before
    out, _ = output_of(model, stage5, clip)
    assert torch.equal(out, reference)


def test_several_taps_at_once(slow):
    model, clip, stage5, reference, _ = slow
    stage4 = resolve_taps(model, ["stage4"])["stage4"][0]
    seen = {}
    with silence(model, {"stage4": [0, 1], "blocks.4": [3]}):
        handles = [m.register_forward_hook(lambda _m, _i, o, n=n: seen.setdefault(n, o))
                   for n, m in (("stage4", stage4), ("stage5", stage5))]
        with torch.no_grad():
            model(clip)
        for h in handles:
            h.remove()
    assert bool((seen["stage4"][:, :2] == 0).all()) and bool((seen["stage5"][:, 3] == 0).all())
    assert not torch.equal(seen["stage5"][:, 4:], reference[:, 4:])  # stage4's silencing reached stage5


def test_slowfast_pathway_tap():
    torch.manual_seed(0)
    model = build("slowfast", "tiny", num_classes=3).eval()
    inputs = pack_pathways(torch.rand(1, 3, 32, 32, 32, generator=torch.Generator().manual_seed(3)), alpha=4)
    block = model.blocks[3]  # the stage whose pathways slow.stage4 / fast.stage4 read, with the fusion after them
    (ref_slow, ref_fast), _ = output_of(model, block, list(inputs))
    with silence(model, "slow.stage4", [0, 6]):
        (slow, fast), _ = output_of(model, block, list(inputs))
    # the slow pathway's channels 0 and 6 are silenced before the fusion, so they stay 0 in the fused output
    assert bool((slow[:, [0, 6]] == 0).all()) and torch.equal(slow[:, 1:6], ref_slow[:, 1:6])
    assert torch.equal(fast, ref_fast)  # fusion runs fast -> slow only
    live = int(ref_fast.abs().sum(dim=(0, 2, 3, 4)).argmax())
    with silence(model, "fast.stage4", [live]):
        (slow, fast), _ = output_of(model, block, list(inputs))
    assert bool((fast[:, live] == 0).all()) and not torch.equal(slow, ref_slow)


def test_two_stream_vos_tap():
    torch.manual_seed(0)
    model = build("fusionseg", "tiny").eval()
    g = torch.Generator().manual_seed(4)
    inputs = (torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g))
    name = next(iter(model.taps))
    module = resolve_taps(model, [name])[name][0]
    reference, mask = output_of(model, module, inputs)
    with silence(model, name, [2]):
        out, silenced_mask = output_of(model, module, inputs)
    assert bool((out[:, 2] == 0).all()) and torch.equal(out[:, 3:], reference[:, 3:])
    assert not torch.equal(silenced_mask, mask)


class TupleModule(nn.Module):
    """Returns a (tokens, extra) tuple, tokens shaped (B, N, C), as transformer blocks do."""

    def forward(self, tokens):
        return tokens, tokens.mean(1)


class TokenModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(4, 6)
        self.pair = TupleModule()
        self.unused = nn.Linear(4, 4)

    def forward(self, x):
        tokens, extra = self.pair(self.embed(x))
        return tokens.mean(1) + extra


def test_user_model_list_output_with_index_and_tokens():
    model = TokenModel()
    x = torch.rand(2, 5, 4)
    (tokens, extra), _ = output_of(model, model.pair, x)
    with silence(model, Tap("pair", index=0), [1, 3]) as silenced:
        (s_tokens, s_extra), _ = output_of(model, model.pair, x)
    assert list(silenced) == ["pair[0]"]
    assert bool((s_tokens[..., [1, 3]] == 0).all()) and torch.equal(s_tokens[..., [0, 2, 4, 5]],
                                                                    tokens[..., [0, 2, 4, 5]])
    assert torch.equal(s_extra, extra)  # the other element of the tuple is left alone
    with pytest.raises(ValueError, match="address one of them"):
        with silence(model, "pair", [1]):
            model(x)
    with pytest.raises(RuntimeError, match="did not run"):
        with silence(model, "unused", [1]):
            model(x)


def test_bad_input_is_one_clear_value_error(slow):
    model, clip, *_ = slow
    cases = [
        (dict(tap="stage9", channels=[0]), "unknown tap 'stage9'"),
        (dict(tap="stage5", channels=[0], mode="max"), "mode must be one of"),
        (dict(tap="stage5", channels=[-1]), ">= 0"),
        (dict(tap="stage5", channels=[0.5]), "integer indices or a bool mask"),
        (dict(tap="stage5", channels=[True, 1]), "mix bools and integers"),
        (dict(tap="stage5", channels=torch.ones(2, 2, dtype=torch.bool)), "must be 1-D"),
        (dict(tap="stage5", channels=torch.ones(4, dtype=torch.bool)), "every one of the 4 units"),
        (dict(tap="stage5", channels=[0], mode="mean"), "needs reference"),
        (dict(tap="stage5", channels=[0], reference=torch.zeros(3)), 'only used with mode="mean"'),
        (dict(tap="stage5", channels=[0], mode="mean", reference=torch.zeros(2, 3)), "1-D tensor"),
        (dict(tap="stage5", channels=[0], mode="mean", reference=torch.tensor([0.0, float("nan")])), "NaN"),
        (dict(tap={"stage4": [0], "stage5": [1]}, mode="mean", reference=torch.zeros(3)), "ambiguous"),
        (dict(tap="stage5", channels=None), "no channels given"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            with silence(model, **kwargs):
                pass
    # checks that need the tap's channel count run on the first forward pass
    units = resolve_taps(model, ["stage5"])["stage5"][0]
    num_units = output_of(model, units, clip)[0].shape[1]
    for channels, message in (
        ([num_units], f"out of range for tap 'stage5', which has {num_units} channels"),
        (torch.arange(num_units - 1) == 0, f"has {num_units - 1} entries but the tap has {num_units}"),
        (list(range(num_units)), f"every one of the {num_units} units"),
    ):
        with pytest.raises(ValueError, match=message):
            with silence(model, "stage5", channels), torch.no_grad():
                model(clip)
    with pytest.raises(ValueError, match="every one of"):  # known on entry from the means
        with silence(model, "stage5", list(range(num_units)), mode="mean", reference=torch.zeros(num_units)):
            pass
    with pytest.raises(ValueError, match="not one tensor"):
        channel_means(model, ["stage5"], clip)
    with pytest.raises(ValueError, match="no batches"):
        channel_means(model, ["stage5"], [])


def test_empty_channel_set_changes_nothing(slow):
    model, clip, stage5, reference, logits = slow
    with silence(model, "stage5", []):
        out, silenced_logits = output_of(model, stage5, clip)
    assert torch.equal(out, reference) and torch.equal(silenced_logits, logits)


def random_result(num_units=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(200, num_units, generator=g)
    mix = torch.rand(num_units, generator=g)
    b = mix * a + (1 - mix) * torch.randn(200, num_units, generator=g)
    b[100:, : num_units // 2] = torch.randn(100, num_units // 2, generator=g)  # half the units lose static pairs
    a[:, -2:] = 1.0  # two dead units
    b[:, -2:] = 1.0
    return static_dynamic_bias(a, b, torch.tensor([0] * 100 + [1] * 100))


@pytest.mark.parametrize("lam", [None, 0.2, 0.5, 0.8])
def test_unit_classes_partition_the_units_with_the_metric_counts(lam):
    result = random_result()
    classes = unit_classes(result, lam)
    stacked = torch.stack([classes[c] for c in ("dynamic", "static", "joint", "residual")])
    assert bool((stacked.sum(0) == 1).all())  # every unit in exactly one class
    counts = result.unit_counts_at([result.threshold if lam is None else lam])
    assert {c: int(m.sum()) for c, m in classes.items()} == next(iter(counts.values()))
    assert bool(classes["residual"][-2:].all())  # dead units are residual
    assert {c: int(m.sum()) for c, m in unit_classes(result, 0.2).items()} != {
        c: int(m.sum()) for c, m in unit_classes(result, 0.8).items()}


def test_random_unit_sets_match_sizes_and_are_reproducible():
    classes = unit_classes(random_result(), 0.5)
    sets = random_unit_sets(classes, draws=4, seed=7)
    for name, draws in sets.items():
        assert len(draws) == 4
        assert all(d.dtype == torch.bool and d.numel() == 32 and int(d.sum()) == int(classes[name].sum())
                   for d in draws)
    again = random_unit_sets(classes, draws=6, seed=7)
    assert all(torch.equal(a, b) for name in sets for a, b in zip(sets[name], again[name]))  # more draws keep these
    other = random_unit_sets(classes, draws=4, seed=8)
    big = max(classes, key=lambda c: int(classes[c].sum()))
    assert any(not torch.equal(a, b) for a, b in zip(sets[big], other[big]))
    assert len({tuple(d.nonzero().flatten().tolist()) for d in sets[big]}) > 1  # draws differ from each other
    with pytest.raises(ValueError, match="draws must be"):
        random_unit_sets(classes, draws=0)
    with pytest.raises(ValueError, match="different lengths"):
        random_unit_sets({"a": torch.ones(3, dtype=torch.bool), "b": torch.ones(4, dtype=torch.bool)})


def test_the_docs_examples_run(capsys):
    text = (Path(__file__).parents[1] / "docs" / "intervene.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 3
    for block in blocks:
        exec(compile(block, "docs/intervene.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["tensor(True) tensor(True)",
                       "{'dynamic': [0, 1, 2], 'static': [3, 4, 5], 'joint': [], 'residual': []}",
                       "256 256"]
