"""analyze.py end to end: every zoo model, seeds, devices, bad input, compare and center-bias."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import analyze
import lit_stbias
from lit_stbias.models import available, build

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path, *argv):
    return analyze.main([*map(str, argv)])


def _strict_json(text: str):
    """JSON as strict parsers read it: NaN and Infinity are not JSON."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def _check_doc(out: Path, model: str, two_stream: bool = False, rows_per_pair: int = 1):
    doc = _strict_json((out / "bias.json").read_text())
    assert doc["model"] == model and doc["layer_order"] == list(doc["layers"])
    assert doc["schema"] == "lit_stbias.bias/2"
    modules = doc["tap_modules"]  # which module each tap reads (a list output gives taps name.0, name.1, ...)
    assert all(tap in modules or tap.rsplit(".", 1)[0] in modules for tap in doc["layers"]), modules
    provenance = doc["provenance"]
    assert provenance["lit_stbias"] == lit_stbias.__version__ and provenance["torch"] == torch.__version__
    assert provenance["command"].startswith("analyze.py ") and "--out" in provenance["command"] and provenance["date"]
    # a two-frame input (RTNet) gives a row of features per frame
    assert doc["pairs"]["asked"] * rows_per_pair == doc["num_pairs"]["dynamic"] and doc["pairs"]["skipped"] == []
    assert set(doc["layer_order"]) == set(build(model).taps) or any("." in t for t in doc["layer_order"])
    for tap, layer in doc["layers"].items():
        c = layer["num_units"]
        assert sum(layer["layer_dims"].values()) == c, tap
        assert sum(layer["unit_counts"].values()) == c, tap
        assert layer["layer_scores"]["identical"] == 1.0
        assert sum(layer["layer_percent"].values()) == pytest.approx(100.0)
        for counts in layer["threshold_sweep"].values():
            assert sum(counts.values()) == c
    for name in ("units.csv", "layer_percent.png", "unit_counts.png", "threshold_sweep.png", "report.html"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "two_stream.png").exists() == two_stream
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 and model in html
    return doc


@pytest.mark.parametrize("model", available())
def test_every_zoo_model_gives_a_consistent_analysis(tmp_path, model):
    spec = build(model).input_spec
    vos = spec.two_stream
    data = "synthetic-vos" if vos else "synthetic:motion"
    out = tmp_path / model
    code = _run(tmp_path, "--model", model, "--data", data, "--num-pairs", 4, "--batch-size", 4,
                "--no-progress", "--out", out)
    assert code == 0  # RTNet too: its pairs are two frames with forward and backward flow images
    per_pair = 2 if spec.backward_flow else 1
    doc = _check_doc(out, model, two_stream=vos, rows_per_pair=per_pair)
    assert doc["num_pairs"] == {"dynamic": 4 * per_pair, "static": 4 * per_pair}
    rows = (out / "units.csv").read_text().splitlines()
    assert len(rows) == 1 + sum(layer["num_units"] for layer in doc["layers"].values())


def test_same_seed_gives_identical_json_and_seeds_give_confidence_intervals(tmp_path):
    common = ["--model", "c2d", "--data", "synthetic:appearance", "--num-pairs", 6, "--batch-size", 3,
              "--layers", "stage2,stage5", "--no-progress"]
    assert _run(tmp_path, *common, "--seeds", "3", "--out", tmp_path / "a") == 0
    assert _run(tmp_path, *common, "--seeds", "3", "--out", tmp_path / "b") == 0
    a, b = (json.loads((tmp_path / d / "bias.json").read_text()) for d in "ab")
    assert a.pop("provenance")["command"].endswith("/a") and b.pop("provenance")["command"].endswith("/b")
    assert a == b, "the same seed gives the same numbers (only the command line and date differ)"
    assert (tmp_path / "a" / "units.csv").read_text() == (tmp_path / "b" / "units.csv").read_text()
    assert _run(tmp_path, *common, "--seeds", "0,1,2", "--thresholds", "0.2:0.8:0.3", "--out", tmp_path / "c") == 0
    doc = json.loads((tmp_path / "c" / "bias.json").read_text())
    layer = doc["layers"]["stage5"]
    assert doc["seeds"] == [0, 1, 2] and len(layer["per_seed"]) == 3
    assert list(layer["threshold_sweep"]) == ["0.2", "0.5", "0.8"]
    values = torch.tensor([s["layer_percent"]["static"] for s in layer["per_seed"]], dtype=torch.float64)
    assert layer["mean"]["layer_percent"]["static"] == pytest.approx(float(values.mean()))
    # the release's interval: 1.96 x the population std (ddof 0) / sqrt(seeds), and the document says so
    assert layer["ci95"]["layer_percent"]["static"] == pytest.approx(float(1.96 * values.std(correction=0) / 3 ** 0.5))
    assert doc["interval"]["method"] == "normal" and "ddof 0" in doc["interval"]["formula"]
    assert _run(tmp_path, *common, "--seeds", "0,1,2", "--interval", "student-t", "--out", tmp_path / "t") == 0
    student = json.loads((tmp_path / "t" / "bias.json").read_text())
    t975 = 4.302652729911275  # scipy.stats.t.ppf(0.975, 2)
    assert student["interval"]["method"] == "student-t"
    assert student["layers"]["stage5"]["ci95"]["layer_percent"]["static"] == \
        pytest.approx(float(t975 * values.std(correction=1) / 3 ** 0.5))


def test_two_processes_give_the_numbers_of_one(tmp_path):
    common = [sys.executable, str(ROOT / "analyze.py"), "--model", "slow", "--data", "synthetic:motion",
              "--num-pairs", 7, "--batch-size", 2, "--layers", "stage3,stage5", "--accelerator", "cpu", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for devices, out in (("1", "one"), ("2", "two")):
        strategy = "ddp" if devices == "2" else "auto"
        command = [*map(str, common), "--devices", devices, "--strategy", strategy, "--out", str(tmp_path / out)]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    one, two = (json.loads((tmp_path / d / "bias.json").read_text()) for d in ("one", "two"))
    assert two["devices"] == 2 and one["devices"] == 1
    for tap in one["layers"]:
        a, b = one["layers"][tap], two["layers"][tap]
        assert a["num_pairs"] == b["num_pairs"] == {"dynamic": 7, "static": 7}
        assert a["unit_counts"] == b["unit_counts"] and a["layer_dims"] == b["layer_dims"]
        for key in ("dynamic", "static"):
            assert a["layer_scores"][key] == pytest.approx(b["layer_scores"][key], rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("argv,message", [
    (["--model", "resnet9000", "--data", "synthetic:motion"], "unknown model 'resnet9000'"),
    (["--model", "slow", "--data", "synthetic:motion", "--layers", "stage9"], "unknown tap 'stage9'"),
    (["--model", "slow", "--data", "synthetic:teleport"], "unknown synthetic task"),
    (["--model", "slow", "--data", "synthetic:motion", "--num-pairs", "1"], "at least 2"),
    (["--model", "fusionseg", "--data", "synthetic:motion"], "not a VOS dataset"),
    (["--data", "synthetic:motion"], "name a model"),
])
def test_bad_input_is_one_clear_line_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert analyze.main([*argv, "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("analyze.py: error:") and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_checkpoint_that_does_not_fit_and_empty_dataset(tmp_path, capsys):
    ckpt = tmp_path / "x3d.pt"
    torch.save(build("x3d").state_dict(), ckpt)
    out = tmp_path / "out"
    assert analyze.main(["--model", "slow", "--ckpt", str(ckpt), "--data", "synthetic:motion", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and not out.exists()
    assert analyze.main(["--model", "slow", "--ckpt", str(tmp_path / "nope.pt"), "--data", "synthetic:motion",
                         "--out", str(out)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert analyze.main(["--model", "slow", "--data", str(empty), "--out", str(out)]) == 2
    assert "analyze.py: error:" in capsys.readouterr().err and not out.exists()


def test_plain_state_dict_checkpoint_round_trip(tmp_path):
    model = build("c2d", num_classes=8)
    ckpt = tmp_path / "c2d.pt"
    torch.save(model.state_dict(), ckpt)
    out = tmp_path / "out"
    assert _run(tmp_path, "--model", "c2d", "--num-classes", 8, "--ckpt", ckpt, "--data", "synthetic:motion",
                "--num-pairs", 4, "--layers", "stage5", "--no-progress", "--out", out) == 0
    assert json.loads((out / "bias.json").read_text())["checkpoint"] == str(ckpt)


def test_compare_and_center_bias(tmp_path, capsys):
    for task in ("appearance", "motion"):
        assert _run(tmp_path, "--model", "c2d", "--data", f"synthetic:{task}", "--num-pairs", 4,
                    "--layers", "stage4,stage5", "--no-progress", "--out", tmp_path / task) == 0
    assert analyze.main(["compare", str(tmp_path / "appearance"), str(tmp_path / "motion"), "--out",
                         str(tmp_path / "cmp")]) == 0
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert "synthetic:appearance" in table and "synthetic:motion" in table
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 0
    spreads = {}
    for placement in ("centred", "diffuse"):
        out = tmp_path / placement
        assert analyze.main(["center-bias", "--data", f"synthetic-vos:{placement}", "--num-videos", "12",
                             "--out", str(out)]) == 0
        spreads[placement] = json.loads((out / "center_bias.json").read_text())["spread"]
        assert (out / "center_bias.png").stat().st_size > 0
    assert spreads["centred"] < spreads["diffuse"]
    assert analyze.main(["center-bias", "--data", "synthetic:motion", "--out", str(tmp_path / "x")]) == 2


def test_lightning_checkpoint_carries_its_model_and_clip_sampling(tmp_path):
    from lit_stbias.analysis import ProbeSession, load_model
    from lit_stbias.lightning import ActionRecognitionModule

    module = ActionRecognitionModule(model_name="slow", num_classes=2, temporal_stride=4)
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "datamodule_hyper_parameters": {"num_frames": 16, "size": 48, "scene_bias": 0.3}}, ckpt)
    model, describe, clip = load_model(ckpt=str(ckpt))
    assert describe["model"] == "slow" and clip.temporal_stride == 4 and model.blocks[-1].proj.out_features == 2
    for name, p in model.state_dict().items():
        assert torch.equal(p, module.model.state_dict()[name]), name
    pairs = ProbeSession(model, "synthetic:motion", num_pairs=4, clip=clip).pairs(seed=0)
    assert pairs[0]["anchor"].shape == (3, 4, 48, 48), "16-frame 48 px clips, every 4th frame, as trained"
    assert pairs.source.num_classes == 2, "the synthetic task with the classes the model learnt"
    assert pairs.source.scene_bias == 0.3, "and the DataModule's other settings"
    out = tmp_path / "out"
    assert analyze.main(["--ckpt", str(ckpt), "--data", "synthetic:motion", "--num-pairs", "4", "--layers", "stage5",
                         "--no-progress", "--out", str(out)]) == 0
    doc = json.loads((out / "bias.json").read_text())
    assert doc["model"] == "slow" and doc["checkpoint"] == str(ckpt) and doc["clip"]["temporal_stride"] == 4
    assert doc["clip"] == {"num_frames": 16, "size": 48, "temporal_stride": 4, "task_classes": 2, "scene_bias": 0.3,
                           "camera_pan": None, "data_seed": None, "num_videos": 4, "sampling_rate": None,
                           "window": None, "annotations": None, "cycle": None, "fps": None, "short_side": None,
                           "styles": None}  # synthetic clips are read whole: no window
    # an option on the command line wins over the checkpoint
    assert analyze.main(["--ckpt", str(ckpt), "--data", "synthetic:motion", "--num-pairs", "4", "--layers", "stage5",
                         "--size", "32", "--no-progress", "--out", str(out)]) == 0
    assert json.loads((out / "bias.json").read_text())["clip"]["size"] == 32


def test_writing_into_an_existing_folder_keeps_other_files(tmp_path):
    out = tmp_path / "shared"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["--model", "x3d", "--data", "synthetic:motion", "--num-pairs", "4", "--layers", "stage5",
            "--no-progress", "--out", str(out)]
    assert analyze.main(argv) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "bias.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".shared.")], "no staging folder left"


# ---------------------------------------------------------------------------------------------- failures (issue 12)


def _forbid_measuring(monkeypatch):
    """Any attempt to load a model (the first costly step) fails the test: the check must come before it."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded: the check did not run before the measurement")

    monkeypatch.setattr("lit_stbias.analysis.loading.load_model", refuse)


@pytest.mark.parametrize("extra,message", [
    (["--accelerator", "gpu"], "--accelerator gpu"),
    (["--devices", "abc"], "--devices 'abc'"),
    (["--devices", "0"], "--devices 0"),
    (["--thresholds", "0.1:0.9:0"], "the step must be a positive number"),
    (["--thresholds", "0.7:0.3:0.1"], "STOP is below START"),
    (["--thresholds", "1.5,-3,nan"], "outside [0, 1]"),
    (["--thresholds", "0.1,abc"], "give numbers"),
    (["--threshold", "7"], "--threshold 7 is outside [0, 1]"),
    (["--threshold", "nan"], "threshold"),
    (["--num-pairs", "abc"], "num_pairs"),
    (["--seeds", "0,x"], "--seeds"),
    (["--normalization", "0.5,0.5/1"], "--normalization"),
    (["--interval", "bootstrap"], "interval"),
    (["--bogus-option", "1"], "unrecognized arguments"),
])
def test_bad_options_fail_before_measuring_in_one_line(tmp_path, capsys, monkeypatch, extra, message):
    _forbid_measuring(monkeypatch)
    out = tmp_path / "out"
    argv = ["--model", "slow", "--data", "synthetic:motion", "--out", str(out), *extra]
    assert analyze.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("analyze.py: error:") and len(err.splitlines()) == 1, err
    assert message in err, err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_read_only_or_file_out_fails_before_measuring_and_keeps_it(tmp_path, capsys, monkeypatch):
    _forbid_measuring(monkeypatch)
    out = tmp_path / "results"
    out.mkdir()
    (out / "bias.json").write_text("previous")
    out.chmod(0o555)
    try:
        assert analyze.main(["--model", "slow", "--data", "synthetic:motion", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert "read-only" in err and str(out) in err and len(err.splitlines()) == 1
        assert [p.name for p in out.iterdir()] == ["bias.json"] and (out / "bias.json").read_text() == "previous"
        parent = tmp_path / "locked"
        parent.mkdir(0o555)
        assert analyze.main(["--model", "slow", "--data", "synthetic:motion", "--out", str(parent / "new")]) == 2
        assert "read-only" in capsys.readouterr().err and not (parent / "new").exists()
    finally:
        out.chmod(0o755)
    (tmp_path / "file").write_text("x")
    assert analyze.main(["--model", "slow", "--data", "synthetic:motion", "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_too_few_videos_is_refused_unless_allowed(tmp_path, capsys):
    common = ["--model", "x3d", "--data", "samples", "--num-pairs", "16", "--layers", "stage5", "--no-progress",
              "--num-frames", "4", "--size", "32"]
    out = tmp_path / "out"
    assert analyze.main([*common, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "16 pairs asked for but 'samples' holds 3 videos" in err and "--allow-fewer-pairs" in err
    assert not out.exists()
    assert analyze.main([*common, "--allow-fewer-pairs", "--out", str(out)]) == 0
    doc = json.loads((out / "bias.json").read_text())
    assert doc["pairs"] == {"asked": 16, "measured": [3], "skipped": []}
    assert doc["layers"]["stage5"]["num_pairs"] == {"dynamic": 3, "static": 3}
    assert "16 asked for, measured seed 0: 3" in capsys.readouterr().out


def test_config_file_print_config_and_help(tmp_path, capsys):
    config = tmp_path / "analysis.yaml"
    out = tmp_path / "out"
    config.write_text(f"model: c2d\ndata: synthetic:appearance\nnum_pairs: 3\nlayers: [stage5]\nseeds: [1]\n"
                      f"no_progress: true\nout: {out}\n")
    assert analyze.main(["--config", str(config), "--batch-size", "2"]) == 0
    doc = json.loads((out / "bias.json").read_text())
    assert doc["model"] == "c2d" and doc["seeds"] == [1] and doc["layer_order"] == ["stage5"]
    assert doc["num_pairs"] == {"dynamic": 3, "static": 3}
    capsys.readouterr()
    assert analyze.main(["--config", str(config), "--num-pairs", "5", "--print_config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["num_pairs"] == 5 and printed["model"] == "c2d" and printed["threshold"] == 0.5
    assert analyze.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "default: 64" in text and "--data-seed" in text and "compare" in text and "center-bias" in text
    assert analyze.main(["compare", "--help"]) == 0 and "--labels" in capsys.readouterr().out


def test_old_or_foreign_bias_json_is_one_clear_error(tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    (old / "bias.json").write_text(json.dumps({"model": "slow", "layers": {"stage5": {"num_units": 4}}}))
    assert analyze.main(["compare", str(old), str(old), "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no 'schema' field" in err and "older analyze.py" in err and len(err.splitlines()) == 1


# ---------------------------------------------------------------------------------------------- user models, pooling


def test_user_model_goes_through_import_model(tmp_path, monkeypatch):
    """``--model package.module:factory`` calls lit_stbias.models.import_model with the clip and normalisation."""
    from torch import nn

    from lit_stbias import models
    from lit_stbias.models import InputSpec

    calls = []

    def import_model(target, *, num_frames, size, normalization, **kwargs):
        calls.append((target, num_frames, size, normalization, kwargs))
        net = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 6, 1))
        net.input_spec = InputSpec(num_frames=num_frames, size=size)
        return net

    monkeypatch.setattr(models, "import_model", import_model, raising=False)
    out = tmp_path / "out"
    assert analyze.main(["--model", "mypkg.nets:build", "--layers", "1,2", "--normalization",
                         "0.5,0.5,0.5/0.25,0.25,0.25", "--num-frames", "4", "--size", "16", "--num-classes", "3",
                         "--data", "synthetic:motion", "--num-pairs", "3", "--no-progress", "--out", str(out)]) == 0
    assert calls == [("mypkg.nets:build", 4, 16, ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)), {"num_classes": 3})]
    doc = json.loads((out / "bias.json").read_text())
    assert doc["model"] == "mypkg.nets:build" and doc["preset"] is None and doc["task"] == "action"
    assert doc["tap_modules"] == {"1": "1", "2": "2"} and doc["layers"]["2"]["num_units"] == 6
    assert analyze.main(["--model", "mypkg.nets:build", "--data", "synthetic:motion", "--out", str(out)]) == 2


def test_pool_tokens_reaches_the_tap_resolution(tmp_path, monkeypatch):
    import lit_stbias.probe.probe as probe_module

    seen = []
    real = probe_module.resolve_taps

    def spy(model, taps=None, **options):
        seen.append(options)
        return real(model, taps)

    monkeypatch.setattr(probe_module, "resolve_taps", spy)
    assert analyze.main(["--model", "x3d", "--data", "synthetic:motion", "--num-pairs", "2", "--layers", "stage5",
                         "--pool-tokens", "patches", "--no-progress", "--out", str(tmp_path / "out")]) == 0
    assert seen and all(options == {"pool_tokens": "patches"} for options in seen)


# ---------------------------------------------------------------------------------------------- atomic outputs, skips


def _tiny_document(seed: int, **settings):
    """A real BiasDocument from the metric on random features (no model: fast)."""
    from lit_stbias.analysis import BiasDocument
    from lit_stbias.metrics.functional import static_dynamic_bias

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 6, generator=g)
    partners = torch.cat([x + 0.3 * torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g)])
    result = static_dynamic_bias(torch.cat([x, x]), partners, torch.tensor([0] * 8 + [1] * 8))
    return BiasDocument.from_results({seed: {"stage5": result}}, model=f"run{seed}", data="synthetic:motion",
                                     **settings)


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class FlakyRename:
    """``os.rename`` that fails at the given calls (1-based) and renames otherwise."""

    real = staticmethod(os.rename)

    def __init__(self, failing):
        self.failing, self.calls = set(failing), 0

    def __call__(self, src, dst):
        self.calls += 1
        if self.calls in self.failing:
            raise OSError(f"injected failure at rename {self.calls}")
        self.real(src, dst)


def test_outputs_are_swapped_in_whole_at_every_failing_step(tmp_path, monkeypatch):
    """A failure at any step of writing or swapping leaves either the complete previous results or the complete
    new ones in --out, with the user's own files, and no staging folder behind."""
    from lit_stbias.analysis import OUTPUT_FILES, write_outputs

    new = tmp_path / "new"
    write_outputs(new, _tiny_document(2))
    expected_new = _snapshot(new)
    out = tmp_path / "out"
    write_outputs(out, _tiny_document(1))
    (out / "notes.txt").write_text("mine")
    (out / "mine").mkdir()
    (out / "mine" / "data.txt").write_text("also mine")
    previous = _snapshot(out)
    counting = FlakyRename([])
    monkeypatch.setattr(os, "rename", counting)
    write_outputs(tmp_path / "again", _tiny_document(1))
    assert counting.calls == 1, "a fresh --out: one rename"

    # Into an existing --out the swap is two renames (--out aside, the new folder in) and, when the second
    # fails, a third that puts --out back. Fail each of them.
    for failing in ([1], [2], [2, 3]):
        monkeypatch.setattr(os, "rename", FlakyRename(failing))
        with pytest.raises(OSError, match="injected failure|nor the previous ones"):
            write_outputs(out, _tiny_document(2))
        monkeypatch.setattr(os, "rename", FlakyRename.real)
        if failing == [2, 3]:  # both failed: the previous results lie aside, complete, named in the error
            aside = [p for p in tmp_path.iterdir() if p.name.startswith(".out.old-")]
            assert not out.exists() and len(aside) == 1 and _snapshot(aside[0]) == previous
            os.rename(aside[0], out)
        assert _snapshot(out) == previous, f"failure at rename {failing}: the previous results, complete"
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")], "nothing left beside --out"

    def broken_report(*args, **kwargs):
        raise OSError("disk full while drawing")

    monkeypatch.setattr("lit_stbias.reports.write_report", broken_report)
    with pytest.raises(OSError, match="disk full"):
        write_outputs(out, _tiny_document(2))
    assert _snapshot(out) == previous and not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    monkeypatch.undo()

    write_outputs(out, _tiny_document(2))  # nothing fails: the new results, complete, and the user's files
    now = _snapshot(out)
    assert {k: v for k, v in now.items() if k in OUTPUT_FILES} == expected_new
    assert now["notes.txt"] == b"mine" and now["mine/data.txt"] == b"also mine"


def test_stale_outputs_of_another_run_do_not_survive(tmp_path):
    """A two-stream run's two_stream.png is one of ours: the next run's results replace it by nothing."""
    from lit_stbias.analysis import write_outputs

    out = tmp_path / "out"
    write_outputs(out, _tiny_document(1))
    (out / "two_stream.png").write_bytes(b"an older run's figure")
    write_outputs(out, _tiny_document(2))
    assert not (out / "two_stream.png").exists()


def test_non_finite_numbers_never_reach_bias_json(tmp_path):
    from lit_stbias.analysis import write_outputs

    doc = _tiny_document(1)
    doc.per_seed[1]["stage5"]["layer_scores"]["static"] = float("nan")
    with pytest.raises(ValueError, match="stage5.layer_scores.static is nan"):
        doc.dumps()
    with pytest.raises(ValueError, match="stage5.layer_scores.static"):
        write_outputs(tmp_path / "out", doc)
    assert list(tmp_path.iterdir()) == []
    doc = _tiny_document(1)
    doc.per_seed[1]["stage5"]["unit_scores"]["static"][3] = float("inf")
    with pytest.raises(ValueError, match=r"stage5.per_seed\[0\].unit_scores.static holds non-finite values at \[3\]"):
        doc.dumps()


class _Unreadable(torch.utils.data.Dataset):
    """Synthetic videos where some items cannot be decoded, as a folder source reports them."""

    def __init__(self, bad):
        from lit_stbias.data import SyntheticVideos

        self.videos, self.bad, self.reads = SyntheticVideos("motion", num_videos=6, num_frames=8, size=32), bad, []

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, index):
        from lit_stbias.data import VideoReadError

        self.reads.append(index)
        if index in self.bad:
            err = VideoReadError(f"video_{index}.mp4: moov atom not found")
            err.path, err.reason = f"/data/video_{index}.mp4", "moov atom not found"
            raise err
        return {**self.videos[index], "video_id": f"video_{index}"}


def test_unreadable_videos_are_skipped_never_replaced_and_reported(tmp_path, capsys):
    from lit_stbias.analysis import BiasDocument, ProbeSession, write_outputs
    from lit_stbias.analysis.cli import pairs_note

    source = _Unreadable(bad={1, 4})
    session = ProbeSession(build("x3d"), source, num_pairs=6, taps=["stage5"], batch_size=4,
                           describe={"data": "six videos"})
    doc = session.run(seeds=[0], progress=False)
    assert doc.pairs_asked == 6 and doc.measured() == [4], "two pairs fewer, none replaced"
    assert sorted(source.reads) == list(range(6)), "each video read once"
    assert doc.skipped == [{"index": 1, "path": "/data/video_1.mp4", "reason": "moov atom not found", "seed": 0},
                           {"index": 4, "path": "/data/video_4.mp4", "reason": "moov atom not found", "seed": 0}]
    write_outputs(tmp_path / "out", doc)
    written = json.loads((tmp_path / "out" / "bias.json").read_text())
    assert written["pairs"]["measured"] == [4] and written["pairs"]["skipped"] == doc.skipped
    assert BiasDocument.read(tmp_path / "out").skipped == doc.skipped
    note = pairs_note(doc)
    assert "6 asked for, measured seed 0: 4" in note and "/data/video_4.mp4: moov atom not found" in note
