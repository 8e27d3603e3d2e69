"""Texler et al.'s GeneratorJ as styles: the reimplementation, safe loading of the published pickles, errors.

The published files are whole ``GeneratorJ`` modules pickled from a module named ``models``. The tests write
such files themselves: a stand-in ``models`` module (below, written for these tests with the attribute layout
and forward of the reference repository's class) is imported from a temporary folder, a tiny generator with
random weights is saved with ``torch.save(model)``, the stand-in is removed from ``sys.modules`` and
``sys.path``, and the file is loaded through lit_stbias.
"""
from __future__ import annotations

import os
import pickletools
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from lit_stbias.pairs import (
    STYLES,
    ActionPairs,
    GeneratorJ,
    available_styles,
    get_style,
    item_generator,
    load_generator,
    load_styles,
    make_action_views,
    random_style_pair,
    stylize,
    stylize_image,
)
from lit_stbias.pairs.texler import REFERENCE_CONFIG, infer_config

STAND_IN = '''
"""Stand-in of the reference repository's models.py: the layout its pickles hold, its forward maths."""
import torch
from torch import nn

NORMS = {"batch_norm": nn.BatchNorm2d, "instance_norm": nn.InstanceNorm2d, None: None}


class UpsamplingLayer(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.layer = nn.Upsample(scale_factor=2)

    def forward(self, x):
        return self.layer(x)


class DiscriminatorN_IN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Conv2d(3, 1, 4)


def named(*pairs):
    block = nn.Sequential()
    for name, module in pairs:
        if module is not None:
            block.add_module(name, module)
    return block


class GeneratorJ(nn.Module):
    def __init__(self, input_size=256, norm_layer="batch_norm", gpu_ids=None, use_bias=False, resnet_blocks=9,
                 tanh=False, filters=(64, 128, 128, 128, 128, 64), input_channels=3, append_smoothers=False):
        super().__init__()
        self.input_size = input_size
        self.norm_layer = NORMS[norm_layer]
        self.gpu_ids = gpu_ids
        self.use_bias = use_bias
        self.resnet_blocks = resnet_blocks
        self.append_smoothers = append_smoothers
        f = filters

        def norm(c):
            return self.norm_layer(num_features=c) if self.norm_layer else None

        def down(cin, cout, k, s, p):
            return named(("conv", nn.Conv2d(cin, cout, k, s, p, bias=use_bias)), ("normalization", norm(cout)),
                         ("nonlinearity", nn.LeakyReLU(0.2)))

        def residual(c):
            relu = nn.ReLU()
            return named(("nonlinearity_0", relu), ("conv_0", nn.Conv2d(c, c, 3, 1, 1, bias=use_bias)),
                         ("normalization", norm(c)), ("nonlinearity_1", relu),
                         ("conv_1", nn.Conv2d(c, c, 3, 1, 1, bias=use_bias)))

        def up(cin, cout):
            parts = [UpsamplingLayer(cin), nn.Conv2d(cin, cout, 3, 1, 1, bias=False), norm(cout), nn.ReLU()]
            return nn.Sequential(*[p for p in parts if p is not None])

        self.conv0 = down(input_channels, f[0], 7, 1, 3)
        self.conv1 = down(f[0], f[1], 3, 2, 1)
        self.conv2 = down(f[1], f[2], 3, 2, 1)
        self.resnets = nn.ModuleList([residual(f[2]) for _ in range(resnet_blocks)])
        self.upconv2 = up(f[3] + f[2], f[4])
        self.upconv1 = up(f[4] + f[1], f[4])
        self.conv_11 = nn.Sequential(nn.Conv2d(f[0] + f[4] + input_channels, f[5], 7, 1, 3, bias=use_bias),
                                     nn.ReLU())
        if append_smoothers:
            self.conv_11_a = nn.Sequential(nn.Conv2d(f[5], f[5], 3, padding=1, bias=use_bias), nn.ReLU(),
                                           nn.BatchNorm2d(num_features=f[5]),
                                           nn.Conv2d(f[5], f[5], 3, padding=1, bias=use_bias), nn.ReLU())
        last = nn.Conv2d(f[5], 3, 1, 1, 0, bias=True)
        self.conv_12 = nn.Sequential(last, nn.Tanh()) if tanh else last

    def forward(self, x):
        a = self.conv0(x)
        b = self.conv1(a)
        out = self.conv2(b)
        skip = self.conv2(b)
        for layer in self.resnets:
            out = layer(out) + out
        out = self.upconv2(torch.cat((out, skip), dim=1))
        out = self.upconv1(torch.cat((out, b), dim=1))
        out = self.conv_11(torch.cat((out, a, x), dim=1))
        if self.append_smoothers:
            out = self.conv_11_a(out)
        return self.conv_12(out)
'''

TINY = {"use_bias": True, "tanh": True, "append_smoothers": True, "resnet_blocks": 2,
        "filters": (4, 6, 8, 8, 6, 5), "input_channels": 3}


@pytest.fixture(autouse=True)
def registry_restored():
    """Loaded styles stay in this test: other tests draw style pairs from every registered style."""
    before = dict(STYLES)
    yield
    STYLES.clear()
    STYLES.update(before)


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """The stand-in ``models`` module, importable while the test writes files; returns a function that
    removes it again (so loading cannot fall back on importing it)."""
    folder = tmp_path / "reference_code"
    folder.mkdir()
    (folder / "models.py").write_text(STAND_IN)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "models", raising=False)
    import models

    def remove():
        sys.modules.pop("models", None)
        sys.path.remove(str(folder))

    yield models, remove
    sys.modules.pop("models", None)


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and batch-norm statistics (so normalisation matters), eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=g))
            elif tensor.is_floating_point():
                tensor.copy_(0.3 * torch.randn(tensor.shape, generator=g))
    return model.eval()


def expected_style(generator: nn.Module, frames: torch.Tensor) -> torch.Tensor:
    """What the reference generate.py writes, as floats: [0, 1] -> [-1, 1] -> net -> clamp -> [0, 1]."""
    with torch.no_grad():
        return (generator((frames - 0.5) / 0.5).clamp(-1, 1) + 1) / 2


def pickled_globals(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    return {arg.replace(" ", ".") for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}


def frames_of(video: torch.Tensor) -> torch.Tensor:
    return video.movedim(0, 1)  # (C, T, H, W) -> (T, C, H, W)


def test_published_pickle_loads_and_stylizes_as_the_reference_forward(tmp_path, stand_in):
    models, remove = stand_in
    reference = randomize(models.GeneratorJ(**TINY))
    styles_dir = tmp_path / "styles"
    styles_dir.mkdir()
    torch.save(reference, styles_dir / "candy.pth")
    torch.save(randomize(models.GeneratorJ(**TINY), seed=1), styles_dir / "mosaic.pth")
    assert {"models.GeneratorJ", "models.UpsamplingLayer"} <= pickled_globals(styles_dir / "candy.pth")
    remove()

    assert load_styles(f"texler:{styles_dir}") == ["candy", "mosaic"]
    assert available_styles()[-2:] == ["candy", "mosaic"]
    assert get_style("candy").source == str((styles_dir / "candy.pth").resolve())
    video = torch.rand(3, 4, 16, 20, generator=torch.Generator().manual_seed(0))
    styled = stylize(video, "candy")
    assert styled.shape == video.shape and styled.dtype == video.dtype
    torch.testing.assert_close(frames_of(styled), expected_style(reference, frames_of(video)), atol=1e-5, rtol=0)
    # the project's own forward with the same weights gives the same frames
    own = GeneratorJ(**TINY).eval()
    own.load_state_dict(reference.state_dict())
    torch.testing.assert_close(frames_of(styled), expected_style(own, frames_of(video)), atol=1e-5, rtol=0)
    assert float((styled - stylize(video, "mosaic")).abs().mean()) > 0.01, "two generators, two styles"


def test_texler_styles_work_wherever_a_style_name_does(tmp_path, stand_in):
    models, remove = stand_in
    for i, name in enumerate(("a", "b")):
        torch.save(randomize(models.GeneratorJ(**TINY), seed=i), tmp_path / f"{name}.pth")
    remove()
    names = load_styles(f"texler:{tmp_path}, astronaut")
    assert names == ["a", "b", "astronaut"]
    video = torch.rand(3, 4, 12, 12, generator=torch.Generator().manual_seed(1))
    views = make_action_views(video, styles=("a", "astronaut"), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(views["anchor"], stylize(video, "a"))
    pair = random_style_pair(torch.Generator().manual_seed(0), names)
    assert len(set(pair)) == 2 and set(pair) <= set(names)
    batch = torch.stack([video, video.flip(-1)])
    torch.testing.assert_close(stylize(batch, "b")[0], stylize(video, "b"), atol=1e-5, rtol=0)
    frame = video[:, 0]
    torch.testing.assert_close(stylize_image(frame, "b"), stylize(video, "b")[:, 0], atol=1e-5, rtol=0)


def test_views_built_on_the_model_device_match_the_pair_dataset():
    """The recipe docs/styles.md gives for stylizing on a GPU draws exactly what ActionPairs draws."""
    clips = [torch.rand(3, 4, 12, 12, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    styles = ["astronaut", "hubble", "rocket"]
    pairs = ActionPairs([{"video": clip} for clip in clips], styles=styles, seed=7)
    for i, clip in enumerate(clips):
        g = item_generator(7, i)
        a, b = random_style_pair(g, styles)
        views = make_action_views(clip, (a, b), g)
        item = pairs[i]
        assert item["styles"] == (a, b)
        for key in ("anchor", "dynamic", "static"):
            assert torch.equal(views[key], item[key])


def test_refused_global_runs_nothing_and_is_named(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    folder = tmp_path / "styles"
    folder.mkdir()
    torch.save(Payload(), folder / "evil.pth")
    with pytest.raises(ValueError, match=r"evil\.pth.*refused to unpickle the global (posix|os|nt)\.system"):
        load_styles(f"texler:{folder}")
    assert not marker.exists()
    assert "evil" not in available_styles()


def test_pickle_naming_another_class_is_refused(tmp_path, stand_in):
    models, remove = stand_in
    torch.save(models.DiscriminatorN_IN(), tmp_path / "disc.pth")
    remove()
    with pytest.raises(ValueError, match=r"disc\.pth.*global models\.DiscriminatorN_IN"):
        load_generator(tmp_path / "disc.pth")


def test_pickled_module_that_contains_itself_is_refused(tmp_path, stand_in):
    models, remove = stand_in
    looped = models.GeneratorJ(**TINY)
    looped.conv1._modules["again"] = looped
    torch.save(looped, tmp_path / "loop.pth")
    remove()
    with pytest.raises(ValueError, match=r"loop\.pth: the pickled module contains itself at conv1\.again"):
        load_generator(tmp_path / "loop.pth")


def test_state_dicts_load_with_and_without_wrapper(tmp_path, stand_in):
    models, remove = stand_in
    reference = randomize(models.GeneratorJ(**TINY))
    remove()
    torch.save(reference.state_dict(), tmp_path / "plain.pth")
    torch.save({"state_dict": reference.state_dict()}, tmp_path / "wrapped.pth")
    torch.save({f"module.{k}": v for k, v in reference.state_dict().items()}, tmp_path / "parallel.pth")
    frames = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    for name in ("plain", "wrapped", "parallel"):
        generator = load_generator(tmp_path / f"{name}.pth")
        assert generator.config == {**TINY, "norm_layer": "batch_norm", "skip_connections": True}
        torch.testing.assert_close(expected_style(generator, frames), expected_style(reference, frames),
                                   atol=1e-5, rtol=0)


def test_instance_norm_needs_its_name_in_a_state_dict(tmp_path, stand_in):
    models, remove = stand_in
    config = {**TINY, "norm_layer": "instance_norm"}
    reference = randomize(models.GeneratorJ(**config))
    torch.save(reference, tmp_path / "pickled.pth")
    remove()
    torch.save(reference.state_dict(), tmp_path / "bare.pth")
    torch.save({"state_dict": reference.state_dict(), "args": {"norm_layer": "instance_norm"}}, tmp_path / "args.pth")
    frames = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    for name in ("pickled", "args"):  # the pickle names its normalisation class; the wrapper its argument
        generator = load_generator(tmp_path / f"{name}.pth")
        assert generator.config["norm_layer"] == "instance_norm"
        torch.testing.assert_close(expected_style(generator, frames), expected_style(reference, frames),
                                   atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"bare\.pth.*no batch-norm statistics.*norm_layer"):
        load_generator(tmp_path / "bare.pth")


def test_files_that_are_not_generators_are_named(tmp_path):
    good = GeneratorJ(**TINY).state_dict()
    wrong = dict(good, **{"resnets.1.conv_1.weight": torch.zeros(8, 8, 5, 5)})
    cases = {
        "wrong_shape": (wrong, r"wrong_shape\.pth does not fit a GeneratorJ.*resnets\.1\.conv_1\.weight"),
        "missing_layer": ({k: v for k, v in good.items() if not k.startswith("upconv1.")},
                          r"missing_layer\.pth does not fit a GeneratorJ.*upconv1"),
        "other_net": ({"fc.weight": torch.zeros(2, 2)}, r"other_net\.pth does not fit a GeneratorJ.*conv0"),
        "tensor": (torch.zeros(3), r"tensor\.pth holds a Tensor, not a GeneratorJ"),
        "numbers": ({"epoch": 3}, r"numbers\.pth holds a dict, not a GeneratorJ"),
        "odd_args": ({"state_dict": good, "args": {"norm_layer": ["batch_norm"]}},
                     r"odd_args\.pth does not fit a GeneratorJ: norm_layer must be"),
        "int_keys": ({"state_dict": {0: torch.zeros(1)}}, r"int_keys\.pth does not fit a GeneratorJ: its keys"),
    }
    for name, (content, _) in cases.items():
        torch.save(content, tmp_path / f"{name}.pth")
    (tmp_path / "random.pth").write_bytes(os.urandom(256))
    cases["random"] = (None, r"random\.pth: not a readable generator file")
    for name, (_, message) in cases.items():
        with pytest.raises(ValueError, match=message):
            load_generator(tmp_path / f"{name}.pth")
    with pytest.raises(FileNotFoundError, match="generator file not found"):
        load_generator(tmp_path / "absent.pth")


def test_legacy_format_module_is_refused_with_a_reason(tmp_path, stand_in):
    models, remove = stand_in
    torch.save(models.GeneratorJ(**TINY), tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    remove()
    with pytest.raises(ValueError, match=r"old\.pth: .*legacy"):
        load_generator(tmp_path / "old.pth")


def test_style_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .pth generator files"):
        load_styles(f"texler:{tmp_path}")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_styles(f"texler:{tmp_path / 'absent'}")
    with pytest.raises(ValueError, match="needs a folder"):
        load_styles("texler:")
    with pytest.raises(ValueError, match="unknown style 'vangogh:x'.*load_styles"):
        load_styles("vangogh:x")
    with pytest.raises(ValueError, match="empty style entry"):
        load_styles("astronaut,,hubble")


def test_names_clash_with_nothing_and_loading_is_all_or_nothing(tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    for folder in (first, second):
        (folder / "nested").mkdir(parents=True)
    for i, path in enumerate((first / "nested" / "model_00010.pth", first / "model_00010.pth",
                              second / "model_00010.pth")):
        torch.save(randomize(GeneratorJ(**TINY), seed=i).state_dict(), path)
    assert load_styles(f"texler:{first}") == ["model_00010", "nested/model_00010"]
    assert load_styles(f"texler:{first}") == ["model_00010", "nested/model_00010"]  # reloading is harmless
    with pytest.raises(ValueError, match=r"'model_00010' is already loaded from .*one"):
        load_styles(f"texler:{second}")
    torch.save(GeneratorJ(**TINY).state_dict(), second / "astronaut.pth")
    torch.save(GeneratorJ(**TINY).state_dict(), second / "zeta.pth")
    before = available_styles()
    with pytest.raises(ValueError, match="built-in"):
        load_styles(f"texler:{second}")
    assert available_styles() == before and get_style("astronaut").source == ""


def test_generators_with_guide_channels_cannot_be_styles(tmp_path):
    torch.save(GeneratorJ(**{**TINY, "input_channels": 6}).state_dict(), tmp_path / "guided.pth")
    with pytest.raises(ValueError, match=r"guided\.pth: .*6 input channels"):
        load_styles(f"texler:{tmp_path}")


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"norm_layer": "instance_norm"},
        {"norm_layer": None},
        {"use_bias": False},
        {"tanh": False},
        {"append_smoothers": False},
        {"resnet_blocks": 0},
        {"input_channels": 6},
        {"skip_connections": False},
        {"filters": (3, 5, 7, 7, 9, 2)},
        {"input_size": 64, "gpu_ids": [0]},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "tiny",
)
def test_every_constructor_option_builds_runs_and_reads_back(options):
    generator = randomize(GeneratorJ(**{**TINY, **options}))
    channels = options.get("input_channels", 3)
    with torch.no_grad():
        out = generator(torch.randn(2, channels, 12, 16))
    assert out.shape == (2, 3, 12, 16) and torch.isfinite(out).all()
    if generator.tanh:
        assert float(out.abs().max()) <= 1.0
    norm = generator.config["norm_layer"]
    config = infer_config(generator.state_dict(), "infer" if norm == "batch_norm" else norm)
    assert config == generator.config  # the weights tell the architecture back
    rebuilt = GeneratorJ(**config)
    rebuilt.load_state_dict(generator.state_dict())


def test_option_values_are_checked():
    with pytest.raises(ValueError, match="norm_layer"):
        GeneratorJ(norm_layer="group_norm")
    with pytest.raises(ValueError, match=r"filters\[3\] must equal filters\[2\]"):
        GeneratorJ(filters=(4, 8, 8, 6, 8, 4))
    with pytest.raises(ValueError, match="six positive"):
        GeneratorJ(filters=(4, 8, 8))


def test_reference_configuration_has_the_published_size():
    """3.27 M parameters for _config/reference_P.yaml (measured on the reference code)."""
    generator = GeneratorJ(**REFERENCE_CONFIG)
    assert sum(p.numel() for p in generator.parameters()) == 3_267_523
    names = set(generator.state_dict())
    assert {"conv0.conv.weight", "conv0.normalization.running_mean", "resnets.6.conv_1.bias", "upconv2.1.weight",
            "upconv1.2.running_var", "conv_11.0.bias", "conv_11_a.2.weight", "conv_12.0.weight"} <= names


def test_frames_of_any_size_and_dtype_come_back_in_range(tmp_path):
    torch.save(randomize(GeneratorJ(**{**TINY, "tanh": False})).state_dict(), tmp_path / "wild.pth")
    load_styles(f"texler:{tmp_path}")
    video = torch.rand(3, 3, 18, 22, generator=torch.Generator().manual_seed(0))
    out = stylize(video, "wild")  # 18 x 22 is padded to 20 x 24 and cropped back
    assert out.shape == video.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    half = stylize(video.half(), "wild")
    assert half.dtype == torch.float16 and half.shape == video.shape
    step = get_style("wild").steps[0]
    step.max_pixels = 18 * 22  # one frame per forward gives the same frames as all at once
    torch.testing.assert_close(stylize(video, "wild"), out, atol=1e-5, rtol=0)


def test_a_generator_that_gives_nan_is_named(tmp_path):
    state = GeneratorJ(**TINY).state_dict()
    state["conv0.normalization.running_var"].fill_(-1.0)  # a broken file: sqrt of a negative variance
    torch.save(state, tmp_path / "broken.pth")
    load_styles(f"texler:{tmp_path}")
    with pytest.raises(ValueError, match="NaN"):
        stylize(torch.rand(3, 2, 8, 8), "broken")
