"""The VOS pipeline for every published network: views built by the one pair-kind rule (one frame, or RTNet's
two frames with forward and backward flow), synthetic backward flow, Stylized DAVIS pairs over repetitions,
training each tiny network through VOSModule, and the fixed-blob baseline."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from lightning.pytorch import Trainer, seed_everything
from PIL import Image
from torch.utils.data import Subset

from lit_stbias.data import STYLIZED_DAVIS_STYLES, DavisLike, StylizedDavis, SyntheticVOS, farneback_flow
from lit_stbias.data.vos import BackwardFlowFrames, partner_offset
from lit_stbias.lightning import BiasMonitor, VOSDataModule, VOSModule
from lit_stbias.lightning.cli import SUMMARY_FILE
from lit_stbias.lightning.experiments import (
    VOS_SCHEDULES,
    main,
    seed_interval,
    vos_config,
    vos_experiment,
    vos_rows,
    vos_table,
)
from lit_stbias.lightning.vos import blob_baseline, frame_jaccard
from lit_stbias.models import InputSpec, build, load_weights
from lit_stbias.pairs import flow_to_rgb, item_generator, pair_loader, stylize_image
from lit_stbias.pairs.views import draw_flow_jitter, draw_hue_saturation, make_vos_views, random_style_pair
from lit_stbias.pairs.vos_pairs import ONE_FRAME, TWO_FRAMES, VOSPairs, input_form, keyed_generator, vos_frames
from lit_stbias.probe import BiasProbe

SIZE = 32
ONE = InputSpec(1, SIZE, two_stream=True)
TWO = InputSpec(2, SIZE, two_stream=True, backward_flow=True)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks on a shared CPU: one torch thread avoids oversubscription (RTNet's many small operations ran
    about 40x slower with two threads on a loaded 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def videos():
    return SyntheticVOS(num_videos=3, num_frames=6, size=SIZE, seed=4)


def expected_jitter(flows, generator):
    """The rule restated: per frame h and s drawn once, each 3-channel flow image its own ColorJitter draw."""
    frames = []
    for frame in flows.reshape(-1, *flows.shape[-3:]):
        h, s = draw_hue_saturation(generator)
        frames.append(torch.cat([draw_flow_jitter(generator, hue=h, saturation=s)(img) for img in frame.split(3)]))
    return torch.stack(frames).reshape(flows.shape)


def assert_same(x, y):
    assert x["index"] == y["index"] and x["styles"] == y["styles"]
    for key in ("anchor", "dynamic", "static"):
        assert all(torch.equal(a, b) for a, b in zip(x[key], y[key]))


# ------------------------------------------------------------------------------------------------ the rule


def test_each_published_network_has_its_input_form():
    assert input_form(build("fusionseg").input_spec) == input_form(build("matnet").input_spec) == ONE_FRAME
    assert input_form(build("rtnet").input_spec) == TWO_FRAMES == input_form(TWO)
    assert input_form(None) == ONE_FRAME
    with pytest.raises(ValueError, match="clips"):
        input_form(build("slow").input_spec)
    with pytest.raises(ValueError, match="no VOS view rule"):
        input_form(InputSpec(2, SIZE, two_stream=True))


def test_one_frame_views_follow_the_rule(videos):
    frames = videos.frames()
    pairs = VOSPairs(frames, seed=7, spec=ONE)
    assert len(pairs) == 3 * 5
    item, frame = pairs[8], frames[8]
    video, t = frame["video_index"], frame["t"]
    a, b = random_style_pair(keyed_generator(7, 0, video))  # one style pair per sequence (and repetition)
    flow = flow_to_rgb(frame["flow"])
    assert item["styles"] == (a, b) and item["index"] == 8
    assert torch.equal(item["anchor"][0], stylize_image(frame["frame"], a)) and torch.equal(item["anchor"][1], flow)
    # dynamic: another style, the same flow image
    assert torch.equal(item["dynamic"][0], stylize_image(frame["frame"], b)) and torch.equal(item["dynamic"][1], flow)
    # static: the anchor's frame, the flow image jittered with the frame's own draws
    assert torch.equal(item["static"][0], item["anchor"][0])
    assert torch.equal(item["static"][1], expected_jitter(flow, keyed_generator(7, 0, video, t)))
    assert not torch.equal(item["static"][1], flow)
    # the frames of one video share the style pair; every frame draws its own jitter
    same_video = [pairs[k] for k in frames.frame_indices(video)]
    assert {p["styles"] for p in same_video} == {(a, b)}


def test_rtnet_views_carry_both_frames_and_both_flows_and_jitter_each_image(videos):
    frames = videos.frames(backward_flow=True)
    assert len(frames) == 3 * 4 and [frames[k]["t"] for k in range(4)] == [1, 2, 3, 4]  # frames with both flows
    pairs = VOSPairs(frames, seed=3, spec=TWO)
    k = 5
    item, anchor = pairs[k], frames[k]
    partner = frames[anchor["partner_index"]]
    assert partner["video_index"] == anchor["video_index"]  # the partner is a frame of the same video
    assert anchor["other"] == partner_offset(videos.seed, 0, anchor["video_index"])
    a, b = item["styles"]
    rgb = torch.stack([anchor["frame"], partner["frame"]])
    flows = torch.stack([torch.cat([flow_to_rgb(f["flow"]), flow_to_rgb(f["flow_bw"])]) for f in (anchor, partner)])
    assert item["anchor"][0].shape == (2, 3, SIZE, SIZE) and item["anchor"][1].shape == (2, 6, SIZE, SIZE)
    assert torch.equal(item["anchor"][0], stylize_image(rgb, a)) and torch.equal(item["anchor"][1], flows)
    assert torch.equal(item["dynamic"][0], stylize_image(rgb, b)) and torch.equal(item["dynamic"][1], flows)
    assert torch.equal(item["static"][0], item["anchor"][0])
    expected = expected_jitter(flows, keyed_generator(3, 0, anchor["video_index"], anchor["t"]))
    assert torch.equal(item["static"][1], expected)
    # collated views are what RTNet takes
    batch = next(iter(pair_loader(pairs, batch_size=3)))
    assert [tuple(x.shape) for x in batch["static"]] == [(3, 2, 3, SIZE, SIZE), (3, 2, 6, SIZE, SIZE)]


def test_the_forward_and_backward_images_of_a_frame_get_their_own_draws():
    image = flow_to_rgb(torch.randn(2, 16, 16) * 3)
    flows = torch.cat([image, image])[None].repeat(2, 1, 1, 1)  # 2 frames whose two flow images are equal
    views = make_vos_views(torch.rand(2, 3, 16, 16), flows, ("astronaut", "hubble"), torch.Generator().manual_seed(0))
    static = views["static"][1]
    assert not torch.equal(static[0, :3], static[0, 3:]) and not torch.equal(static[1, :3], static[1, 3:])
    assert torch.equal(static, expected_jitter(flows, torch.Generator().manual_seed(0)))


def test_synthetic_backward_flow_is_exact(videos):
    """Carrying each object pixel of frame t by the backward flow lands on the object of frame t-1."""
    item = videos[1]
    assert item["flow_bw"].shape == item["flow"].shape == (2, 5, SIZE, SIZE)
    ys, xs = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    for t in range(1, 6):
        on = item["masks"][t] > 0
        flow = item["flow_bw"][:, t - 1]
        tx = (xs[on] + flow[0][on]).round().long().clamp(0, SIZE - 1)
        ty = (ys[on] + flow[1][on]).round().long().clamp(0, SIZE - 1)
        assert item["masks"][t - 1][ty, tx].mean() > 0.85
    # the backward flow is the motion played backwards, not the forward flow negated in place
    assert not torch.allclose(item["flow_bw"][:, 0], -item["flow"][:, 0])


def test_pairs_are_a_function_of_seed_and_item_in_any_order_and_share(videos):
    frames = videos.frames(backward_flow=True)
    pairs = VOSPairs(frames, seed=1, spec=TWO)
    forward = [pairs[k] for k in range(len(pairs))]
    backward = [VOSPairs(frames, seed=1, spec=TWO)[k] for k in reversed(range(len(pairs)))][::-1]
    for x, y in zip(forward, backward):
        assert_same(x, y)
    # two ranks' shares, and a Subset of the frames, give the same views of the same frames
    shares = [list(pair_loader(pairs, batch_size=2, rank=r, world_size=2)) for r in (0, 1)]
    assert torch.equal(shares[1][0]["static"][1][0], forward[1]["static"][1])
    chosen = VOSPairs(Subset(frames, [7, 2]), seed=1, spec=TWO)
    assert torch.equal(chosen[0]["static"][1], forward[7]["static"][1])
    assert torch.equal(chosen[1]["anchor"][0], forward[2]["anchor"][0])
    other_seed = VOSPairs(frames, seed=2, spec=TWO)[0]
    assert not torch.equal(other_seed["static"][1], forward[0]["static"][1])


def test_keyed_generator_is_item_generator_for_two_keys():
    for seed, index in ((0, 0), (3, 17), (-1, 5)):
        assert torch.equal(torch.rand(4, generator=keyed_generator(seed, index)),
                           torch.rand(4, generator=item_generator(seed, index)))


def test_rtnet_pairs_need_frames_with_both_flows(videos):
    with pytest.raises(ValueError, match="backward flow"):
        VOSPairs(Subset(videos.frames(), [0, 1]), spec=TWO)[0]
    # a source that is not a Subset gets the frames RTNet needs
    assert len(VOSPairs(videos, spec=TWO)) == len(videos.frames(backward_flow=True))
    with pytest.raises(ValueError, match="flow images"):
        make_vos_views(torch.rand(2, 3, 8, 8), torch.rand(2, 5, 8, 8), ("astronaut", "hubble"))


def test_rtnet_pairs_give_a_real_bias_analysis(videos):
    """The probe runs tiny RTNet on its own views and measures every tap on both frames' rows."""
    torch.manual_seed(0)
    model = build("rtnet").eval()
    pairs = VOSPairs(Subset(vos_frames(videos, model.input_spec), [0, 3, 5, 9]), seed=0, spec=model.input_spec)
    probe = BiasProbe(model, ["app.layer4", "mot.layer4", "fusion.layer3"])
    for batch in pair_loader(pairs, batch_size=2):
        probe.update(batch)
    results = probe.compute()
    assert set(results) == {"app.layer4", "mot.layer4", "fusion.layer3"}
    assert results["fusion.layer3"].num_pairs == {"dynamic": 8, "static": 8}  # 4 pairs x 2 frames
    assert all(np.isfinite(r.scalars()["score_dynamic"]) for r in results.values())


# ----------------------------------------------------------------------------------------- files on disk

H, W = 24, 40


def write_stylized_davis(root, sequences=("bear", "camel"), frames=5):
    """A tiny Stylized DAVIS release: split, masks, the four style folders, forward and backward flow PNGs."""
    rng = np.random.default_rng(0)
    lines = []
    for s, seq in enumerate(sequences):
        for t in range(frames):
            stem = f"{t:05d}"
            lines.append(f"/JPEGImages/480p/{seq}/{stem}.jpg /Annotations/480p/{seq}/{stem}.png")
            for style in STYLIZED_DAVIS_STYLES:
                (root / "JPEGImages" / style / seq).mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(
                    root / "JPEGImages" / style / seq / f"{stem}.jpg")
            mask = np.zeros((H, W), np.uint8)
            mask[5 + t: 15 + t, 10 + 4 * s: 25 + 4 * s] = 255
            (root / "Annotations" / "480p" / seq).mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(root / "Annotations" / "480p" / seq / f"{stem}.png")
            for folder, present in (("FlowImages_gap1", t < frames - 1), ("FlowImages_gap-1", t > 0)):
                if present:
                    (root / folder / seq).mkdir(parents=True, exist_ok=True)
                    Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(
                        root / folder / seq / f"{stem}.png")
    (root / "ImageSets" / "480p").mkdir(parents=True)
    (root / "ImageSets" / "480p" / "val.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def stylized(tmp_path_factory):
    root = tmp_path_factory.mktemp("stylized") / "DAVIS"
    write_stylized_davis(root)
    return root


def test_stylized_davis_pairs_pick_two_of_the_item_styles_and_use_the_flow_images_as_published(stylized):
    davis = StylizedDavis(stylized, reps=5)
    pairs = VOSPairs(davis, seed=0, spec=ONE)
    assert len(pairs) == len(davis) == 5 * 8
    item, frame = pairs[9], davis[9]
    a, b = item["styles"]
    assert {a, b} <= set(STYLIZED_DAVIS_STYLES) and a != b and item["video_id"] == frame["video_id"]
    assert torch.equal(item["anchor"][0], frame["styled"][a]) and torch.equal(item["dynamic"][0], frame["styled"][b])
    assert torch.equal(item["anchor"][1], frame["flow_image"]) and torch.equal(item["dynamic"][1], frame["flow_image"])
    assert torch.equal(item["static"][1],
                       expected_jitter(frame["flow_image"], keyed_generator(0, frame["rep"], frame["video_index"],
                                                                            frame["t"])))
    # every repetition draws its own styles (per sequence) and its own jitter (per frame)
    per_rep = [pairs[rep * davis.frames_per_rep] for rep in range(5)]
    assert len({p["styles"] for p in per_rep}) > 1
    assert len({p["static"][1].sum().item() for p in per_rep}) == 5
    sequence = [pairs[k]["styles"] for k in davis.frame_indices(1, rep=2)]
    assert len(set(sequence)) == 1
    # a pool of styles restricts the choice
    restricted = VOSPairs(davis, styles=["Lynx", "Zuzka2"], seed=0, spec=ONE)
    assert all(set(restricted[k]["styles"]) == {"Lynx", "Zuzka2"} for k in (0, 13, 30))


def test_stylized_davis_pairs_for_rtnet_stack_the_partner_and_both_flow_images(stylized):
    davis = StylizedDavis(stylized, reps=2, backward_flow=True, seed=5)
    pairs = VOSPairs(davis, seed=0, spec=TWO)
    item, frame = pairs[4], davis[4]
    partner = davis[frame["partner_index"]]
    a, b = item["styles"]
    assert torch.equal(item["anchor"][0], torch.stack([frame["styled"][a], partner["styled"][a]]))
    assert torch.equal(item["dynamic"][0], torch.stack([frame["styled"][b], partner["styled"][b]]))
    flows = torch.stack([torch.cat([f["flow_image"], f["flow_image_bw"]]) for f in (frame, partner)])
    assert torch.equal(item["anchor"][1], flows) and item["anchor"][1].shape == (2, 6, H, W)
    assert frame["other"] == partner_offset(5, frame["rep"], frame["video_index"])  # the one offset rule
    with pytest.raises(ValueError, match="backward_flow=True"):
        VOSPairs(StylizedDavis(stylized, reps=1), spec=TWO)


def test_davis_like_frames_for_rtnet_estimate_the_backward_flow(tmp_path, videos):
    video = videos[0]
    for t in range(video["frames"].shape[1]):
        folder = tmp_path / "JPEGImages" / "480p" / "bear"
        folder.mkdir(parents=True, exist_ok=True)
        array = (video["frames"][:, t].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(array).save(folder / f"{t:05d}.png")
    davis = DavisLike(tmp_path, size=None, cache_dir=tmp_path / "cache")
    frames = vos_frames(davis, TWO)
    assert isinstance(frames, BackwardFlowFrames) and len(frames) == len(davis) - 1  # frame 0 has no previous one
    item = frames[1]
    assert item["t"] == 2 and item["video_index"] == 0
    torch.testing.assert_close(item["flow_bw"], farneback_flow(davis[2]["frame"], davis[1]["frame"]))
    assert frames[item["partner_index"]]["video_index"] == 0
    pairs = VOSPairs(davis, spec=TWO)
    assert pairs[0]["anchor"][1].shape == (2, 6, SIZE, SIZE)


# ------------------------------------------------------------------------------------------------- training


@pytest.mark.parametrize("name", ["fusionseg", "matnet", "rtnet"])
def test_one_training_step_of_each_network(name, tmp_path):
    seed_everything(0)
    module = VOSModule(name)
    data = VOSDataModule("synthetic-vos:centred", num_videos=2, val_videos=1, num_frames=4, size=SIZE, batch_size=2)
    data.setup_for(module, "fit")
    batch = next(iter(data.train_dataloader()))
    frames = 2 if name == "rtnet" else 1
    rgb_shape = (2, 2, 3, SIZE, SIZE) if frames == 2 else (2, 3, SIZE, SIZE)
    assert tuple(batch["rgb"].shape) == rgb_shape and batch["mask"].shape == (2, 1, SIZE, SIZE)
    assert batch["flow_image"].shape[-3] == (6 if frames == 2 else 3)
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    trainer = Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=1, limit_val_batches=1, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      num_sanity_val_steps=0)
    trainer.fit(module, data)
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss"]) and 0.0 <= float(metrics["val/j_mean"]) <= 1.0
    after = module.model.state_dict()
    assert any(v.is_floating_point() and not torch.equal(v, after[k]) for k, v in before.items())  # a step was taken
    trainer.test(module, data, verbose=False)
    assert 0.0 <= float(trainer.callback_metrics["test/j_mean"]) <= 1.0


def test_the_bias_monitor_measures_rtnet_during_training(tmp_path):
    """The monitor's pairs come from the DataModule's frames through the module: RTNet's views, both frames."""
    seed_everything(0)
    module = VOSModule("rtnet")
    data = VOSDataModule("synthetic-vos:diffuse", num_videos=2, val_videos=1, num_frames=4, size=SIZE, batch_size=2)
    monitor = BiasMonitor(taps=["fusion.layer1", "mot.layer4"], num_pairs=2, batch_size=2, plot=False)
    trainer = Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=1, logger=False, callbacks=[monitor],
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      num_sanity_val_steps=0, default_root_dir=str(tmp_path))
    trainer.fit(module, data)
    measured = monitor.history[-1]["layers"]
    assert set(measured) == {"fusion.layer1", "mot.layer4"}
    assert measured["fusion.layer1"]["num_pairs"] == {"dynamic": 4, "static": 4}  # 2 pairs x 2 frames


def test_the_published_fusionseg_head_is_the_default_so_release_files_load(tmp_path):
    """FusionSeg's release has a 2-class head; VOSModule keeps it, so a file in the release's format loads."""
    torch.manual_seed(1)
    published = build("fusionseg", "tiny")
    assert published.classifier.classifier[-1].out_channels == 2
    torch.save({"model_state": published.state_dict(), "cur_itrs": 0}, tmp_path / "release.pth")
    module = VOSModule("fusionseg", init_weights=str(tmp_path / "release.pth"))
    for key, value in published.state_dict().items():
        assert torch.equal(module.model.state_dict()[key], value), key
    one_class = VOSModule("fusionseg", num_classes=1)
    assert one_class.model.classifier.classifier[-1].out_channels == 1
    with pytest.raises(ValueError):
        load_weights(one_class.model, str(tmp_path / "release.pth"))


def test_the_module_pairs_are_the_network_views(videos):
    module = VOSModule("rtnet")
    pairs = module.pairs(Subset(videos.frames(backward_flow=True), [0, 1]), seed=0)
    assert pairs[0]["anchor"][1].shape == (2, 6, SIZE, SIZE)


# ------------------------------------------------------------------------------------------------- the baseline


def frames_with(masks):
    return [{"mask": m[None].float(), "has_mask": True} for m in masks]


def test_blob_baseline_is_the_best_single_mask():
    a, b = torch.zeros(8, 8, dtype=torch.bool), torch.zeros(8, 8, dtype=torch.bool)
    a[2:5, 2:5], b[5:8, 5:8] = True, True
    # mean mask: 0.75 on a, 0.25 on b; blob a scores (3 x 1 + 0) / 4 = 0.75, a and b together (4 x 0.5) / 4 = 0.5
    result = blob_baseline(frames_with([a, a, a, b]), frames_with([a, torch.zeros(8, 8, dtype=torch.bool)]))
    assert torch.equal(torch.from_numpy(result.mask), a) and 0.25 <= result.threshold < 0.75
    assert result.train_j_mean == pytest.approx(0.75) and result.j_mean == pytest.approx(0.5) and result.frames == 2
    unannotated = [{"mask": torch.zeros(1, 8, 8), "has_mask": False}]
    with pytest.raises(ValueError, match="no annotated frame"):
        blob_baseline(unannotated, unannotated)


def test_frame_jaccard_counts_two_empty_masks_as_perfect():
    empty, full = torch.zeros(1, 4, 4), torch.ones(1, 4, 4)
    half = torch.zeros(1, 4, 4)
    half[:, :2] = 1
    j = frame_jaccard(torch.stack([empty, full, half]), torch.stack([empty, half, empty]))
    assert j.tolist() == [1.0, 0.5, 0.0]



# ------------------------------------------------------------------------------------------------- the experiment


def test_vos_experiment_trains_measures_and_writes_the_table(tmp_path, capsys):
    out = tmp_path / "vos"
    rows = vos_experiment(models="fusionseg", data="diffuse", seeds="0", epochs=1, num_videos=2, val_videos=1,
                          num_frames=4, size=SIZE, batch_size=4, num_pairs=3, out=str(out))
    assert [(r["model"], r["data"], r["seeds"]) for r in rows] == [("fusionseg", "diffuse", [0])]
    assert 0.0 <= rows[0]["j_mean"]["mean"] <= 1.0 and 0.0 <= rows[0]["baseline_j_mean"]["mean"] <= 1.0
    with open(out / "vos_runs.csv") as f:
        runs = list(csv.DictReader(f))
    assert len(runs) == 1 and Path(runs[0]["last_checkpoint"]).is_file() and float(runs[0]["cpu_seconds"]) > 0
    # the baseline is the blob's J on the frames the network was validated on
    data = VOSDataModule("synthetic-vos:diffuse", num_videos=2, val_videos=1, num_frames=4, size=SIZE, seed=0)
    data.setup("fit")
    assert float(runs[0]["baseline_j_mean"]) == blob_baseline(data.train_source, data.val_source).j_mean
    assert (out / "vos_table.md").read_text().startswith("validation J-mean (%), one training seed")
    assert json.loads((out / "vos_table.json").read_text())[0]["j_mean"]["values"] == [float(runs[0]["j_mean"])]
    # the fusion units are the monitor's last-epoch measurement (of every tap by default)
    summary = json.loads((Path(runs[0]["last_checkpoint"]).parents[1] / SUMMARY_FILE).read_text())
    fusion = {tap: b for tap, b in summary["bias"].items() if tap.startswith("fusion.")}
    assert fusion and float(runs[0]["fusion_units"]) == sum(b["num_units"] for b in fusion.values())
    assert float(runs[0]["fusion_dynamic"]) == sum(b["unit_counts"]["dynamic"] for b in fusion.values())
    assert "vos_table.md" in capsys.readouterr().out


def test_vos_rows_give_mean_and_interval_over_seeds():
    runs = [{"model": "matnet", "data": "centred", "seed": s, "j_mean": j, "baseline_j_mean": 0.4,
             "fusion_static": 10.0, "fusion_dynamic": 2.0 * s, "fusion_joint": 1.0, "fusion_units": 96.0,
             "cpu_seconds": 100.0 + s} for s, j in enumerate([0.7, 0.8, 0.9])]
    (row,) = vos_rows(runs)
    assert row["seeds"] == [0, 1, 2]
    assert (row["j_mean"]["mean"], row["j_mean"]["interval"]) == pytest.approx(seed_interval([0.7, 0.8, 0.9]))
    assert row["baseline_j_mean"]["interval"] == pytest.approx(0.0)
    assert row["fusion_dynamic"]["values"] == [0.0, 2.0, 4.0]
    assert "| matnet | centred | 80.0 ± 9.2 | 40.0 ± 0.0 | 10.0 ± 0.0 | 2.0 ± 1.8 | 96 | 101 ± 1 |" in vos_table([row])


@pytest.mark.parametrize("option, fragment", [(["--models", "fusionseg,slow"], "--models slow: not a VOS network"),
                                              (["--data", "tao"], "--data tao: unknown synthetic VOS placement"),
                                              (["--seeds", "0,x"], "--seeds 0,x")])
def test_vos_experiment_usage_errors_are_one_line(option, fragment, tmp_path, capsys):
    assert main(["vos-experiment", *option, "--out", str(tmp_path / "vos")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and fragment in err and not (tmp_path / "vos").exists()


@pytest.mark.parametrize("model", list(VOS_SCHEDULES))
@pytest.mark.parametrize("placement", ["centred", "diffuse"])
def test_vos_configs_carry_the_measured_schedules(model, placement):
    config = Path(__file__).resolve().parents[1] / "configs" / f"{model}_{placement}.yaml"
    settings = yaml.safe_load(config.read_text())
    schedule = VOS_SCHEDULES[model]
    assert settings["model"]["init_args"]["model_name"] == model
    assert settings["model"]["init_args"]["lr"] == schedule["lr"]
    assert settings["trainer"]["max_epochs"] == schedule["epochs"]
    assert settings["data"]["init_args"]["data"] == f"synthetic-vos:{placement}"
    experiment = vos_config(model, placement, **schedule)["data"]["init_args"]  # the experiment's data, too
    for key in ("num_videos", "val_videos", "num_frames", "size", "batch_size"):
        assert settings["data"]["init_args"][key] == experiment[key], key
