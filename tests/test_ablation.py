"""Unit ablation (``analyze.py ablate``) and the debiased split of the synthetic ``mixed`` task.

The causal check runs on a planted model whose answer is known: a readout of the direction of motion from the
planted Lucas-Kanade velocity units. Silencing the units the probe classifies dynamic must drop it to chance,
while as many random units leave it standing. The command itself runs end to end on a tiny checkpoint trained
here, and every refusal is one line and exit code 2 with nothing written.
"""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from lit_stbias.analysis import BiasDocument, ClipSettings
from lit_stbias.analysis.ablation import ABLATED_CLASSES, ABLATION_FILES, ablation_conditions
from lit_stbias.analysis.cli import main
from lit_stbias.data import SyntheticVideos, from_spec
from lit_stbias.data.imagery import SCENES
from lit_stbias.data.synthetic import tied_scene
from lit_stbias.intervene import document_unit_classes, unit_classes
from lit_stbias.lightning.cli import run
from lit_stbias.lightning.experiments import action_config
from lit_stbias.metrics import static_dynamic_bias
from lit_stbias.probe.planted import PlantedUnits

ROOT = Path(__file__).resolve().parents[1]
FRAMES, SIZE = 8, 32
DYNAMIC_TAP = "planted.layers.mostly_dynamic"
U_CHANNELS = list(range(4, 8)) + list(range(12, 16))  # the horizontal velocity units of mostly_dynamic (width 4)


# -- models for the command line (user models: ``--model test_ablation:<factory>``) -------------------------------
class PlantedMotionReadout(nn.Module):
    """The planted network's ``mostly_dynamic`` layer read out as right (class 0) vs left (class 1): +1 / -1 on
    its horizontal-velocity units, 0 on every other unit."""

    def __init__(self) -> None:
        super().__init__()
        self.planted = PlantedUnits(seed=0)
        videos = SyntheticVideos("motion", num_videos=32, num_frames=FRAMES, size=SIZE, num_classes=2, seed=123)
        self.planted.calibrate(torch.stack([videos[i]["video"] for i in range(len(videos))]))
        self.head = nn.Linear(36, 2)
        with torch.no_grad():
            self.head.weight.zero_()
            self.head.bias.zero_()
            self.head.weight[0, U_CHANNELS] = 1.0
            self.head.weight[1, U_CHANNELS] = -1.0

    def forward(self, video):
        return self.head(self.planted(video)[:, 36:])  # the second planted layer: mostly_dynamic


def planted_readout() -> nn.Module:
    return PlantedMotionReadout()


class OneUnit(nn.Module):
    """One unit, the clip's mean brightness (unchanged by shuffling frames, changed by a style): a tap whose
    only unit is static, so silencing the class silences every unit."""

    def __init__(self) -> None:
        super().__init__()
        self.unit = nn.Identity()
        self.head = nn.Linear(1, 2)

    def forward(self, video):
        return self.head(self.unit(video.mean(dim=(1, 2, 3, 4))[:, None]))


def one_unit() -> nn.Module:
    return OneUnit()


class Headless(nn.Module):
    """Features without a classification head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, kernel_size=1)

    def forward(self, video):
        return self.conv(video)


def headless() -> nn.Module:
    return Headless()


# -- the debiased split ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_classes", [2, 4])
def test_conflicting_split_shows_every_clip_on_the_scene_of_another_class(num_classes):
    kwargs = dict(num_videos=240, num_frames=4, size=32, num_classes=num_classes, seed=5)
    biased = from_spec("synthetic:mixed", **kwargs)
    conflicting = from_spec("synthetic:mixed-conflicting", **kwargs)
    assert isinstance(conflicting, SyntheticVideos) and conflicting.task == "mixed-conflicting"
    labels, scenes, others = [], [], []
    for i in range(len(conflicting)):
        a, b = biased.describe(i), conflicting.describe(i)
        # the same clip as the biased split's item i (label, object, motion, path), only the scene differs
        assert (a["label"], a["object"], a["motion"]) == (b["label"], b["object"], b["motion"])
        assert np.array_equal(a["trajectory"].centre, b["trajectory"].centre)
        tied = [tied_scene(c) for c in range(num_classes)]
        assert b["scene_index"] in tied and b["scene_index"] != tied_scene(b["label"])
        labels.append(b["label"])
        scenes.append(b["scene_index"])
        others.append(tied.index(b["scene_index"]))
    labels, others = np.array(labels), np.array(others)
    assert np.bincount(labels).tolist() == [240 // num_classes] * num_classes  # balanced labels
    agreement = np.mean([s == tied_scene(y) for s, y in zip(scenes, labels)])
    assert agreement == 0.0  # the scene never gives the label away (mixed: ~80%)
    biased_agreement = np.mean([biased.describe(i)["scene_index"] == tied_scene(biased.describe(i)["label"])
                                for i in range(len(biased))])
    assert 0.7 < biased_agreement < 0.9
    if num_classes == 4:  # the misleading class is uniform over the other classes
        for label in range(4):
            counts = np.bincount(others[labels == label], minlength=4)
            assert counts[label] == 0 and all(counts[c] >= 8 for c in range(4) if c != label)
    else:
        assert np.array_equal(others, 1 - labels)  # right vs left: always the other class's scene
    # rendered, the object is drawn where the biased clip has it; only the background differs
    frames_a, alpha_a, _ = biased.render(0)
    frames_b, alpha_b, _ = conflicting.render(0)
    assert np.array_equal(alpha_a, alpha_b) and not np.array_equal(frames_a, frames_b)
    # a DataModule's or a document's record of the source rebuilds it
    spec, settings = ClipSettings.of_source(conflicting)
    assert spec == "synthetic:mixed-conflicting"
    rebuilt = from_spec(spec, **settings.source_kwargs(spec, vos=False, seed=0))
    assert rebuilt.describe(7)["scene_index"] == conflicting.describe(7)["scene_index"]
    assert len(SCENES) > 8  # every class of up to 8 has a scene of its own


# -- the library: conditions and the planted model ----------------------------------------------------------------
def test_conditions_skip_empty_classes_and_draw_same_size_controls():
    masks = {"dynamic": torch.tensor([1, 1, 0, 0, 0, 0], dtype=torch.bool),
             "static": torch.tensor([0, 0, 1, 1, 1, 0], dtype=torch.bool),
             "joint": torch.zeros(6, dtype=torch.bool), "residual": torch.tensor([0, 0, 0, 0, 0, 1], dtype=torch.bool)}
    conditions = ablation_conditions({"t": masks}, draws=4, seed=0)
    assert conditions[None] == {}
    assert {k[1] for k in conditions if k is not None} == {"dynamic", "static"}  # joint is empty, residual not ablated
    for cls, size in (("dynamic", 2), ("static", 3)):
        assert torch.equal(conditions[("t", cls, None)]["t"], masks[cls])
        controls = [conditions[("t", cls, k)]["t"] for k in range(4)]
        assert all(int(c.sum()) == size for c in controls)
    assert ablation_conditions({"t": masks}, draws=4, seed=0).keys() == conditions.keys()


def test_document_unit_classes_match_unit_classes_and_average_seeds(tmp_path):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(128, 6, generator=g), torch.randn(128, 6, generator=g)
    b[:64, :3] = a[:64, :3]
    b[64:, 3:] = a[64:, 3:]
    factor = torch.tensor([0] * 64 + [1] * 64)
    result = static_dynamic_bias(a, b, factor)
    doc = BiasDocument.from_results({0: {"t": result}}, model="m")
    doc.write(tmp_path / "bias.json")
    read = BiasDocument.read(tmp_path / "bias.json")
    for lam in (None, 0.3, 0.8):
        from_doc = document_unit_classes(read, "t", lam)
        assert all(torch.equal(from_doc[c], unit_classes(result, lam)[c]) for c in from_doc)
    # two seeds: the scores are averaged before classifying
    other = static_dynamic_bias(a, torch.randn(128, 6, generator=g), factor)  # nothing shared: low scores
    both = BiasDocument.from_results({0: {"t": result}, 1: {"t": other}})
    mean_scores = (result.unit_scores + other.unit_scores) / 2
    expected = (mean_scores[1] > 0.5) & ~(mean_scores[0] > 0.5)
    assert torch.equal(document_unit_classes(both, "t")["static"], expected)
    with pytest.raises(ValueError, match="has no tap 'u'"):
        document_unit_classes(read, "u")
    without = BiasDocument.from_results({0: {"t": result}}, units=False)
    with pytest.raises(ValueError, match="holds no unit scores"):
        document_unit_classes(without, "t")


def ablate(tmp_path, *args, out="out"):
    return main(["ablate", *map(str, args), "--no-progress", "--out", str(tmp_path / out)])


def test_silencing_planted_dynamic_units_breaks_a_motion_readout_and_random_units_do_not(tmp_path, capsys):
    code = ablate(tmp_path, "--model", "test_ablation:planted_readout", "--num-frames", FRAMES, "--size", SIZE,
                  "--layers", DYNAMIC_TAP, "--data", "synthetic:motion", "--task-classes", 2, "--num-pairs", 32,
                  "--eval-data", "synthetic:motion", "--eval-videos", 48, "--draws", 4, "--batch-size", 48)
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "out" / "ablation.json").read_text())
    entry = result["taps"][DYNAMIC_TAP]
    planted = PlantedUnits().planted["mostly_dynamic"]
    assert entry["unit_counts"] == planted  # the probe found the planted classes
    dynamic = entry["classes"]["dynamic"]
    assert dynamic["channels"] == list(range(4, 20))  # u, v of the frame and of its centre, 4 channels each
    assert result["intact"] > 0.75  # the readout works
    assert abs(dynamic["silenced"] - 0.5) < 0.1  # silencing every velocity unit leaves chance
    random = dynamic["random"]
    assert random["at_or_below"] == 0 and random["min"] > dynamic["silenced"] + 0.15  # as many random units: no
    assert len(random["values"]) == 4 and random["min"] <= random["mean"] <= random["max"]
    for cls in ("static", "joint"):  # units the readout does not read: silencing them changes nothing
        assert entry["classes"][cls]["silenced"] == pytest.approx(result["intact"])
    assert result["evaluation"]["chosen"] == "--eval-data" and result["evaluation"]["evaluated"] == 48
    assert result["chance"] == 0.5 and result["metric"] == "top1"


# -- the command on a trained checkpoint ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny FastOnly trained for one epoch on 2-class mixed: its validation set is rebuilt by ablate."""
    root = tmp_path_factory.mktemp("runs")
    config = action_config("fast", "mixed", epochs=1, frames=FRAMES, size=32, num_videos=16, val_videos=12,
                           batch_size=8, bias_every=0, out=str(root), name="fast-mixed", wandb=False,
                           accelerator="cpu")
    config["trainer"]["enable_progress_bar"] = False
    summary = run({"fit": config})
    return summary


def folder_state(folder):
    return {p.name: p.read_bytes() for p in Path(folder).iterdir()}


def test_ablate_command_writes_table_json_and_plot(checkpoint, tmp_path, capsys):
    ckpt = checkpoint["last_checkpoint"]
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "bias.json").write_text("a measurement's document")  # another command's output: kept
    code = ablate(tmp_path, "--ckpt", ckpt, "--layers", "stage5", "--data", "synthetic:mixed", "--num-pairs", 8,
                  "--draws", 3, "--threshold", 0.3)
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert sorted(p.name for p in out.iterdir()) == sorted([*ABLATION_FILES, "notes.txt", "bias.json"])
    assert (out / "notes.txt").read_text() == "mine" and (out / "bias.json").read_text() == "a measurement's document"
    text = (out / "ablation.json").read_text()
    result = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-finite {c}"))
    assert result["schema"] == "lit_stbias.ablation/1" and result["model"] == "fast" and result["checkpoint"] == ckpt
    # the evaluation defaults to the checkpoint's validation set, and says so
    evaluation = result["evaluation"]
    assert evaluation["chosen"] == "the checkpoint's validation set" and evaluation["data"] == "synthetic:mixed"
    assert evaluation["items"] == evaluation["evaluated"] == 12
    assert evaluation["from_spec"]["seed"] == 1000 and evaluation["from_spec"]["num_classes"] == 2
    assert result["intact"] == pytest.approx(checkpoint["metrics"]["val/acc1"])  # the top-1 validation logged
    # the classification is the measurement's, written beside it, at the given λ
    doc = BiasDocument.read(out / "ablation_bias.json")
    assert doc.threshold == 0.3 and doc.taps == ["stage5"] and doc.data == "synthetic:mixed"
    classes = document_unit_classes(doc, "stage5")
    entry = result["taps"]["stage5"]
    assert entry["module"] == "blocks.4" and entry["num_units"] == 128
    assert entry["unit_counts"] == {c: int(m.sum()) for c, m in classes.items()}
    table = (out / "ablation.md").read_text().strip()
    assert table in printed.out and "| stage5 | nothing | 0 of 128 |" in table
    for cls in ABLATED_CLASSES:
        row = entry["classes"][cls]
        assert row["units"] == int(classes[cls].sum())
        if row["units"]:
            assert row["channels"] == classes[cls].nonzero().flatten().tolist()
            assert row["drop"] == pytest.approx(result["intact"] - row["silenced"])
            assert len(row["random"]["values"]) == 3
            assert f"| stage5 | {cls} | {row['units']} of 128 |" in table
        else:
            assert row["silenced"] is None and "no units in this class" in row["note"]
            assert f"| stage5 | {cls} | 0 of 128 | — | — | no units in this class" in table
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # again, with mean ablation on the debiased split: the ablation files are replaced, the others kept
    code = ablate(tmp_path, "--ckpt", ckpt, "--layers", "stage5", "--data", "synthetic:mixed", "--num-pairs", 8,
                  "--draws", 2, "--threshold", 0.3, "--mode", "mean", "--eval-data", "synthetic:mixed-conflicting")
    assert code == 0, capsys.readouterr().err
    again = json.loads((out / "ablation.json").read_text())
    assert again["mode"] == "mean" and "mean over the 12 evaluation items" in again["reference"]
    assert again["evaluation"]["data"] == "synthetic:mixed-conflicting"
    assert again["evaluation"]["from_spec"]["seed"] == 1000  # the validation clips, on conflicting scenes
    assert again["draws"] == 2 and (out / "notes.txt").read_text() == "mine"
    assert (out / "bias.json").read_text() == "a measurement's document"


def test_bad_input_is_one_line_and_exit_2_with_nothing_written(checkpoint, tmp_path, capsys):
    ckpt = checkpoint["last_checkpoint"]
    unlabelled = tmp_path / "unlabelled"
    for video in ("a", "b"):
        (unlabelled / video).mkdir(parents=True)
        for i in range(4):
            cv2.imwrite(str(unlabelled / video / f"{i:05d}.jpg"), np.full((40, 40, 3), 60 * i, np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    (out / "ablation.json").write_text("{}")  # an earlier result: must survive every failure
    before = folder_state(out)
    common = ["--data", "synthetic:motion", "--num-pairs", 4, "--draws", 2]
    cases = [
        (["--ckpt", ckpt, "--layers", "stage9", *common], "unknown tap 'stage9'"),
        (["--ckpt", ckpt, *common], "--layers is required"),
        (["--ckpt", ckpt, "--layers", "stage5", *common, "--eval-data", str(unlabelled)], "have no labels"),
        (["--ckpt", ckpt, "--layers", "stage5", *common, "--eval-data", "synthetic-vos"], "VOS dataset"),
        (["--ckpt", ckpt, "--layers", "stage5", *common[:-1], 0], "--draws must be at least 1"),
        (["--ckpt", ckpt, "--layers", "stage5", *common, "--threshold", 2], "outside [0, 1]"),
        (["--model", "slow", "--layers", "stage5", *common], "name labelled evaluation clips with --eval-data"),
        (["--ckpt", ckpt, "--layers", "stage5", *common, "--eval-data", "synthetic:motion", "--task-classes", 8],
         "labels up to 7 but the model's head has 2 outputs"),
        (["--model", "test_ablation:headless", "--num-frames", 4, "--size", 16, "--layers", "conv", *common,
          "--eval-data", "synthetic:motion", "--eval-videos", 4], "not (batch, classes) logits"),
        (["--model", "test_ablation:one_unit", "--num-frames", 4, "--size", 32, "--layers", "unit", "--task-classes",
          2, "--data", "synthetic:motion", "--num-pairs", 16, "--eval-data", "synthetic:motion", "--eval-videos", 4],
         "every one of the 1 units of tap 'unit' is static"),
    ]
    for args, message in cases:
        code = ablate(tmp_path, *args)
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert message in err and len(err.strip().splitlines()) == 1, (message, err)
        assert folder_state(out) == before, args


def test_the_script_exits_with_code_2(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "analyze.py"), "ablate", "--model", "slow", "--layers",
                           "stage5", "--data", "synthetic:motion", "--draws", "0", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "--draws must be at least 1, got 0" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
