"""analyze.py end to end: every zoo model, seeds, devices, bad input, compare and center-bias."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import analyze
from lit_stbias.models import available, build

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path, *argv):
    return analyze.main([*map(str, argv)])


def _check_doc(out: Path, model: str, two_stream: bool = False):
    doc = json.loads((out / "bias.json").read_text())
    assert doc["model"] == model and doc["layer_order"] == list(doc["layers"])
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
def test_every_zoo_model_gives_a_consistent_analysis(tmp_path, model, capsys):
    spec = build(model).input_spec
    vos = spec.two_stream
    data = "synthetic-vos" if vos else "synthetic:motion"
    out = tmp_path / model
    code = _run(tmp_path, "--model", model, "--data", data, "--num-pairs", 4, "--batch-size", 4,
                "--no-progress", "--out", out)
    if spec.backward_flow:  # RTNet: the VOS pairs give one frame and its forward flow image, not its two-frame views
        assert code == 2 and "RTNet takes frames (B, 2, 3, H, W)" in capsys.readouterr().err
        assert not (out / "bias.json").exists()
        return
    assert code == 0
    doc = _check_doc(out, model, two_stream=vos)
    assert doc["num_pairs"] == {"dynamic": 4, "static": 4}
    rows = (out / "units.csv").read_text().splitlines()
    assert len(rows) == 1 + sum(layer["num_units"] for layer in doc["layers"].values())


def test_same_seed_gives_identical_json_and_seeds_give_confidence_intervals(tmp_path):
    common = ["--model", "c2d", "--data", "synthetic:appearance", "--num-pairs", 6, "--batch-size", 3,
              "--layers", "stage2,stage5", "--no-progress"]
    assert _run(tmp_path, *common, "--seeds", "3", "--out", tmp_path / "a") == 0
    assert _run(tmp_path, *common, "--seeds", "3", "--out", tmp_path / "b") == 0
    assert (tmp_path / "a" / "bias.json").read_text() == (tmp_path / "b" / "bias.json").read_text()
    assert (tmp_path / "a" / "units.csv").read_text() == (tmp_path / "b" / "units.csv").read_text()
    assert _run(tmp_path, *common, "--seeds", "0,1,2", "--thresholds", "0.2:0.8:0.3", "--out", tmp_path / "c") == 0
    doc = json.loads((tmp_path / "c" / "bias.json").read_text())
    layer = doc["layers"]["stage5"]
    assert doc["seeds"] == [0, 1, 2] and len(layer["per_seed"]) == 3
    assert list(layer["threshold_sweep"]) == ["0.2", "0.5", "0.8"]
    values = torch.tensor([s["layer_percent"]["static"] for s in layer["per_seed"]], dtype=torch.float64)
    assert layer["mean"]["layer_percent"]["static"] == pytest.approx(float(values.mean()))
    assert layer["ci95"]["layer_percent"]["static"] == pytest.approx(float(1.96 * values.std() / 3 ** 0.5))


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
    from lit_stbias.analysis import AnalysisConfig, load_model, make_pairs
    from lit_stbias.lightning import ActionRecognitionModule

    module = ActionRecognitionModule(model_name="slow", num_classes=2, temporal_stride=4)
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "datamodule_hyper_parameters": {"num_frames": 16, "size": 48}}, ckpt)
    config = AnalysisConfig(data="synthetic:motion", ckpt=str(ckpt), num_pairs=4)
    model, info = load_model(config)
    assert info["model"] == "slow" and info["temporal_stride"] == 4 and model.blocks[-1].proj.out_features == 2
    for name, p in model.state_dict().items():
        assert torch.equal(p, module.model.state_dict()[name]), name
    pairs = make_pairs(config, model, info, seed=0)
    assert pairs[0]["anchor"].shape == (3, 4, 48, 48), "16-frame 48 px clips, every 4th frame, as trained"
    assert pairs.source.num_classes == 2, "the synthetic task with the classes the model learnt"
    out = tmp_path / "out"
    assert analyze.main(["--ckpt", str(ckpt), "--data", "synthetic:motion", "--num-pairs", "4", "--layers", "stage5",
                         "--no-progress", "--out", str(out)]) == 0
    doc = json.loads((out / "bias.json").read_text())
    assert doc["model"] == "slow" and doc["checkpoint"] == str(ckpt) and doc["temporal_stride"] == 4


def test_writing_into_an_existing_folder_keeps_other_files(tmp_path):
    out = tmp_path / "shared"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["--model", "x3d", "--data", "synthetic:motion", "--num-pairs", "4", "--layers", "stage5",
            "--no-progress", "--out", str(out)]
    assert analyze.main(argv) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "bias.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".shared.")], "no staging folder left"
