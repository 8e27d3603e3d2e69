"""Issue 12 as a hostile but realistic user meets it: crafted, random, truncated and empty checkpoints, partial
and bit-rotted videos, too few videos, read-only and file outputs, bad option values, unknown names, foreign
documents, bad config files, and Ctrl-C in the middle of a measurement or a training epoch, each through the
command lines (``analyze.py``, ``train.py``, ``python -m lit_stbias.pairs.render``). Every case checks the exit
code, that stderr is the one line naming the problem and what to do (no traceback), and what is on disk
afterwards: nothing written, or the previous complete results untouched. Every ``bias.json`` must be strict JSON.

How the commands run. Each command is its own process with its own argv, stdout, stderr and exit status. The
interrupted ones are plain ``python analyze.py ...`` / ``python train.py ...`` processes. The others are forked
from one Python process that has already imported the libraries (importing torch, torchmetrics and Lightning
costs about 10 s of CPU per process, and this module runs some 50 commands): the fork runs the script file as
``__main__`` with its argv, stdin from /dev/null and stdout/stderr into files; an exception that escapes the
script is printed by ``sys.excepthook`` and exits with status 1, as the interpreter does, and the exit handlers
run before the process ends.

Whether a check ran *before* the measurement is observable through the command line too: the model of those
cases is a user model (``--model reliability_user:held_net``) whose factory leaves a marker file when it is
called, so "the model was never built" is "no marker". The same module holds a network that waits in its
forward pass while a hold file exists, and a Lightning callback that waits at a chosen training batch: the
interrupts land mid-measurement and mid-epoch by construction, not by timing.
"""
from __future__ import annotations

import json
import os
import pickle
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
ANALYZE = str(ROOT / "analyze.py")
TRAIN = str(ROOT / "train.py")
RENDER = ["-m", "lit_stbias.pairs.render"]

# -- running commands ------------------------------------------------------------------------------------------

SERVER = r'''
import atexit, gc, json, os, runpy, sys

import lit_stbias.analysis.cli, lit_stbias.analysis.loading, lit_stbias.analysis.outputs  # noqa: E401
import lit_stbias.analysis.session, lit_stbias.lightning.experiments, lit_stbias.pairs.render, lit_stbias.reports


def serve():
    """Fork once per request line; return in the child (set up as the command's process), answer in the parent."""
    gc.freeze()  # the imported objects stay shared with the children, untouched by their garbage collection
    for line in sys.stdin:
        job = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.chdir(job["cwd"])
            for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                                    (1, job["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                    (2, job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
                handle = os.open(path, flags, 0o644)
                os.dup2(handle, fd)
                os.close(handle)
            return job["argv"]
        _, status = os.waitpid(pid, 0)
        print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
    sys.exit(0)


argv = serve()
code = 0
try:
    if argv[0] == "-m":  # python -m package.module ...
        sys.argv = argv[1:]
        sys.modules.pop(argv[1], None)  # imported above to be shared; python -m finds it not yet imported
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:  # python script.py ...
        sys.argv = argv
        sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
        runpy.run_path(argv[0], run_name="__main__")
except SystemExit as done:
    if done.code is None or isinstance(done.code, int):
        code = done.code or 0
    else:
        print(done.code, file=sys.stderr)
        code = 1
except BaseException:
    sys.excepthook(*sys.exc_info())
    code = 1
atexit._run_exitfuncs()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
'''


class Result(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


class CommandServer:
    """Runs command lines as processes forked from one process that has imported the libraries (see the
    module docstring)."""

    def __init__(self, env: dict[str, str], io_dir: Path) -> None:
        self.io_dir = io_dir
        self.process = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)

    def run(self, argv: list, cwd: Path, timeout: float = 300) -> Result:
        out, err = self.io_dir / "stdout", self.io_dir / "stderr"
        job = {"argv": [str(a) for a in argv], "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.process.kill()
            raise AssertionError(f"{argv} did not finish within {timeout} s (or the command server died)")
        return Result(json.loads(line), out.read_text(), err.read_text())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


USER_MODULE = r'''
"""A user's model and callback for the reliability tests: markers show what ran, a hold file makes them wait."""
import time
from pathlib import Path

from lightning.pytorch import Callback
from torch import nn

HERE = Path(__file__).parent


def wait_while_held(name):
    (HERE / f"{name}-started").touch()
    while (HERE / "hold").exists():
        time.sleep(0.05)


class HeldNet(nn.Module):
    def __init__(self, num_classes=2):
        super().__init__()
        self.stem = nn.Conv3d(3, 4, 3, padding=1)
        self.layer = nn.Sequential(nn.Conv3d(4, 6, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(6, num_classes)

    def forward(self, video):
        wait_while_held("forward")
        return self.head(self.layer(self.stem(video)).mean(dim=(2, 3, 4)))


def held_net(num_classes=2):
    (HERE / "built").touch()
    return HeldNet(num_classes)


class HoldAtBatch(Callback):
    """Waits (while the hold file exists) at training batch ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch: int = 1, batch: int = 1):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            wait_while_held("batch")
'''


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("user")
    (folder / "reliability_user.py").write_text(USER_MODULE)
    return folder


@pytest.fixture(scope="module")
def env(user_dir) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(user_dir)]), "WANDB_MODE": "offline"}


@pytest.fixture(scope="module")
def cli(env, tmp_path_factory):
    server = CommandServer(env, tmp_path_factory.mktemp("io"))
    yield server
    server.close()


# -- what the checks share -------------------------------------------------------------------------------------


def one_line_error(result: Result, prog: str, *fragments: str) -> str:
    """Exit code 2 and exactly one line on stderr, ``<prog>: error: ...``, holding every fragment."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def strict_json(text: str):
    """JSON as strict parsers read it: NaN and Infinity are not JSON."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder``: files with their bytes, folders as None. "Nothing written" is equality."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


def staging_left(out: Path) -> list[str]:
    """Hidden folders an interrupted or failed analysis could leave beside ``out``."""
    return [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


class RunsCommand:
    """Unpickling this calls os.system: the payload of a crafted checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A tiny Lightning-style checkpoint of this project, and the bad files made from it."""
    from lit_stbias.models import build

    folder = tmp_path_factory.mktemp("checkpoints")
    state = {f"model.{k}": v for k, v in build("x3d").state_dict().items()}
    good = folder / "good.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": {"model_name": "x3d", "preset": "tiny"}}, good)
    crafted = folder / "crafted.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": {"model_name": "x3d"},
                "payload": RunsCommand(folder / "payload-ran")}, crafted)
    pickled = folder / "crafted.pkl"
    pickled.write_bytes(pickle.dumps({"payload": RunsCommand(folder / "payload-ran")}))
    random_bytes = folder / "random.ckpt"
    random_bytes.write_bytes(bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                                 dtype=torch.uint8).tolist()))
    whole = good.read_bytes()
    truncated = folder / "truncated.ckpt"
    truncated.write_bytes(whole[: len(whole) // 2])  # an interrupted download
    empty = folder / "empty.ckpt"
    empty.write_bytes(b"")
    return {"good": good, "crafted": crafted, "pickle": pickled, "random": random_bytes, "truncated": truncated,
            "empty": empty, "marker": folder / "payload-ran"}


def rot_frame(path: Path, frame: int) -> None:
    """Overwrite the first bytes of one frame's data (its NAL length): bit rot that the header probe cannot see
    and the decoder notices."""
    import av

    with av.open(str(path)) as container:
        position = container.streams.video[0].index_entries[frame].pos
    data = bytearray(path.read_bytes())
    data[position:position + 4] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """Four good videos, a partial download (its index cut off) and a bit-rotted video that passes the probe."""
    from lit_stbias.data import read_video, sample_video_paths, write_video

    folder = tmp_path_factory.mktemp("videos")
    footage = read_video(sample_video_paths()["carphone_pristine"], max_frames=12, size=(48, 64))
    for i in range(4):
        write_video(folder / f"good_{i}.mp4", footage.roll(9 * i, dims=-1))
    whole = write_video(folder.parent / "whole.mp4", footage).read_bytes()
    (folder / "partial.mp4").write_bytes(whole[: int(len(whole) * 0.6)])
    write_video(folder / "rotten.mp4", footage)
    rot_frame(folder / "rotten.mp4", frame=7)
    return folder


MARKER_MODEL = ["--model", "reliability_user:held_net", "--layers", "stem,layer", "--num-frames", "4",
                "--size", "16"]


def no_gpu_case(prefix: str) -> tuple[list[str], tuple[str, ...]]:
    """An accelerator this machine lacks: a GPU where there is none, else more GPUs than it has."""
    if not torch.cuda.is_available():
        return [f"{prefix}accelerator", "gpu"], (f"{prefix}accelerator gpu", "no usable GPU", "cpu")
    count = torch.cuda.device_count()
    return [f"{prefix}accelerator", "gpu", f"{prefix}devices", str(count + 1)], (f"{prefix}devices {count + 1}",)


# -- analyze.py: checkpoints ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, fragments", [
    ("crafted", ("refused to load", "nothing from the file was run")),
    ("pickle", ("refused to load", "nothing from the file was run")),
    ("random", ("cannot read", "as a checkpoint", "save or download it again")),
    ("truncated", ("cannot read", "truncated", "save or download it again")),
    ("empty", ("empty file", "save or download it again")),
])
def test_bad_checkpoint_is_one_line_and_runs_nothing(cli, checkpoints, tmp_path, kind, fragments):
    path = checkpoints[kind]
    result = cli.run([ANALYZE, "--ckpt", path, "--data", "synthetic:motion", "--out", tmp_path / "out"], tmp_path)
    one_line_error(result, "analyze.py", str(path), *fragments)
    assert not checkpoints["marker"].exists(), "the checkpoint's payload ran"
    assert list(tmp_path.iterdir()) == [], "nothing written"


def test_crafted_checkpoint_as_train_ckpt_path_runs_nothing(cli, checkpoints, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(train_config(tmp_path / "runs")))
    before = snapshot(tmp_path)
    result = cli.run([TRAIN, "fit", "--config", config, "--ckpt_path", checkpoints["crafted"]], tmp_path)
    one_line_error(result, "train.py", "--ckpt_path", "refused to load", "nothing from the file was run")
    assert not checkpoints["marker"].exists(), "the checkpoint's payload ran"
    assert snapshot(tmp_path) == before


# -- analyze.py: data ------------------------------------------------------------------------------------------------


def test_partial_and_bit_rotted_videos_are_skipped_never_replaced_and_listed(cli, videos, tmp_path):
    out = tmp_path / "out"
    result = cli.run([ANALYZE, "--model", "x3d", "--data", videos, "--num-pairs", 5, "--layers", "stage5",
                      "--num-frames", 4, "--size", 32, "--no-progress", "--out", out], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = strict_json((out / "bias.json").read_text())
    # five videos pass the header probe (four good, one rotten), five pairs asked; the rotten one fails to
    # decode and is skipped: four measured, no video measured twice
    assert doc["pairs"]["asked"] == 5 and doc["pairs"]["measured"] == [4]
    assert doc["layers"]["stage5"]["num_pairs"] == {"dynamic": 4, "static": 4}
    skipped = {Path(entry["path"]).name: entry for entry in doc["pairs"]["skipped"]}
    assert sorted(skipped) == ["partial.mp4", "rotten.mp4"], doc["pairs"]["skipped"]
    assert all(entry["reason"].startswith("unreadable") and entry["seed"] == 0 for entry in skipped.values())
    assert "cannot decode" in skipped["rotten.mp4"]["reason"]
    # and the command says so, beside the pairs asked for and measured
    assert "5 asked for, measured seed 0: 4" in result.stdout
    assert f"{videos / 'rotten.mp4'}: unreadable" in result.stdout
    assert f"{videos / 'partial.mp4'}: unreadable" in result.stdout
    assert "Traceback" not in result.stderr


def test_more_pairs_than_videos_is_one_line(cli, videos, tmp_path):
    result = cli.run([ANALYZE, "--model", "x3d", "--data", videos, "--num-pairs", 9, "--layers", "stage5",
                      "--num-frames", 4, "--size", 32, "--out", tmp_path / "out"], tmp_path)
    one_line_error(result, "analyze.py", "9 pairs asked for", "holds 5 videos", "--num-pairs 5",
                   "--allow-fewer-pairs", "partial.mp4")
    assert list(tmp_path.iterdir()) == []


def test_empty_data_folder_is_one_line(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli.run([ANALYZE, "--model", "x3d", "--data", tmp_path / "empty", "--out", tmp_path / "out"], tmp_path)
    one_line_error(result, "analyze.py", "no videos under", str(tmp_path / "empty"))
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]


def test_render_skips_partial_and_bit_rotted_videos(cli, videos, tmp_path):
    out = tmp_path / "rendered"
    result = cli.run([*RENDER, "--styles", "astronaut,hubble", "--data", videos, "--out", out, "--size", 16,
                      "--num-frames", 3, "--no-progress"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for style in ("style_1", "style_2"):
        assert sorted(p.name for p in (out / style).iterdir()) == [f"good_{i}" for i in range(4)]
    assert "4 videos rendered" in result.stdout and "2 unreadable" in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 2 and "Traceback" not in result.stderr, result.stderr
    assert any("rotten.mp4" in line and "unreadable" in line for line in lines)
    assert any("partial.mp4" in line and "unreadable" in line for line in lines)


# -- analyze.py: the output folder and option values, checked before the model is built -------------------------


def test_read_only_out_fails_before_the_model_is_built_and_keeps_it(cli, user_dir, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "bias.json").write_text("{}")
    before = snapshot(tmp_path)
    (user_dir / "built").unlink(missing_ok=True)
    out.chmod(0o555)
    try:
        result = cli.run([ANALYZE, *MARKER_MODEL, "--data", "synthetic:motion", "--out", out], tmp_path)
    finally:
        out.chmod(0o755)
    one_line_error(result, "analyze.py", "--out", str(out), "read-only")
    assert not (user_dir / "built").exists(), "the model was built: the check did not come first"
    assert snapshot(tmp_path) == before


def test_out_that_is_a_file_fails_before_the_model_is_built(cli, user_dir, tmp_path):
    (tmp_path / "results").write_text("mine")
    (user_dir / "built").unlink(missing_ok=True)
    result = cli.run([ANALYZE, *MARKER_MODEL, "--data", "synthetic:motion", "--out", tmp_path / "results"], tmp_path)
    one_line_error(result, "analyze.py", "is a file")
    assert not (user_dir / "built").exists()
    assert snapshot(tmp_path) == {"results": b"mine"}


BAD_OPTIONS = {
    "thresholds-no-step": (["--thresholds", "0.1:0.9:0"], ("--thresholds", "step must be a positive number")),
    "thresholds-backwards": (["--thresholds", "0.7:0.3:0.1"], ("--thresholds", "STOP is below START")),
    "thresholds-outside": (["--thresholds", "1.5,-3,nan"], ("--thresholds", "outside [0, 1]")),
    "threshold-7": (["--threshold", "7"], ("--threshold 7", "outside [0, 1]")),
    "devices-abc": (["--devices", "abc"], ("--devices 'abc'", "give a number of devices")),
    "no-gpu": no_gpu_case("--"),
    "num-pairs-0": (["--num-pairs", "0"], ("--num-pairs", "at least 2")),
    "batch-size-negative": (["--batch-size", "-1"], ("--batch-size", "positive")),
    "unknown-preset": (["--preset", "huge"], ("preset", "huge", "tiny")),
    "unknown-option": (["--num-pears", "3"], ("--num-pears",)),
}


@pytest.mark.parametrize("case", BAD_OPTIONS)
def test_bad_option_value_fails_before_the_model_is_built(cli, user_dir, tmp_path, case):
    options, fragments = BAD_OPTIONS[case]
    (user_dir / "built").unlink(missing_ok=True)
    result = cli.run([ANALYZE, *MARKER_MODEL, "--data", "synthetic:motion", *options, "--out", tmp_path / "out"],
                     tmp_path)
    one_line_error(result, "analyze.py", *fragments)
    assert not (user_dir / "built").exists(), "the model was built: the check did not come first"
    assert list(tmp_path.iterdir()) == []


UNKNOWN_NAMES = {
    "model": (["--model", "resnet9000", "--data", "synthetic:motion"], ("unknown model 'resnet9000'", "x3d")),
    "tap": (["--model", "x3d", "--layers", "stage9", "--data", "synthetic:motion"], ("unknown tap 'stage9'", "stage5")),
    "data-spec": (["--model", "x3d", "--data", "synthetic:teleport"], ("unknown synthetic task 'teleport'",)),
    "data-folder": (["--model", "x3d", "--data", "no/such/folder"], ("no/such/folder", "neither a known spec")),
}


@pytest.mark.parametrize("case", UNKNOWN_NAMES)
def test_unknown_name_is_one_line(cli, tmp_path, case):
    options, fragments = UNKNOWN_NAMES[case]
    result = cli.run([ANALYZE, *options, "--out", tmp_path / "out"], tmp_path)
    one_line_error(result, "analyze.py", *fragments)
    assert list(tmp_path.iterdir()) == []


# -- analyze.py: neighbours: foreign documents, config files -----------------------------------------------------------


def test_compare_of_another_tools_bias_json_is_one_line(cli, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "bias.json").write_text(json.dumps({"model": "slow", "layers": {"stage5": {"static": 0.4}}}))
    before = snapshot(tmp_path)
    result = cli.run([ANALYZE, "compare", foreign, foreign, "--out", tmp_path / "cmp"], tmp_path)
    one_line_error(result, "analyze.py", str(foreign / "bias.json"), "schema", "run analyze.py again")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("text, fragments", [
    ("model: x3d\ndata: synthetic:motion\nnum_pair: 3\n", ("num_pair",)),
    ("model: x3d\ndata: synthetic:motion\nnum_pairs: many\n", ("num_pairs", "many")),
], ids=["unknown-key", "wrong-type"])
def test_analyze_config_file_mistake_is_one_line_naming_the_key(cli, tmp_path, text, fragments):
    (tmp_path / "analysis.yaml").write_text(text)
    before = snapshot(tmp_path)
    result = cli.run([ANALYZE, "--config", tmp_path / "analysis.yaml", "--out", tmp_path / "out"], tmp_path)
    one_line_error(result, "analyze.py", *fragments)
    assert snapshot(tmp_path) == before


# -- analyze.py: interrupt and rerun --------------------------------------------------------------------------------


def wait_for(marker: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    """Until ``marker`` exists; fails with the process's output when it ends first."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the command ended (status {process.returncode}) before {marker.name}:\n"
                                 f"{out[-2000:]}\n{err[-3000:]}")
        assert time.monotonic() < deadline, f"no {marker.name} after {timeout} s"
        time.sleep(0.05)


def test_interrupted_analysis_keeps_the_previous_results_and_a_rerun_replaces_them(cli, env, user_dir, tmp_path):
    out = tmp_path / "results"
    command = [ANALYZE, *MARKER_MODEL, "--data", "synthetic:motion", "--num-pairs", 3, "--batch-size", 1,
               "--no-progress", "--out", out]
    previous = cli.run([*command, "--seeds", 0], tmp_path)
    assert previous.returncode == 0, previous.stderr[-3000:]
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    assert strict_json((out / "bias.json").read_text())["seeds"] == [0]

    # Ctrl-C in the middle of the measurement (the network waits in its forward pass while the hold file exists)
    hold, started = user_dir / "hold", user_dir / "forward-started"
    started.unlink(missing_ok=True)
    hold.touch()
    try:
        process = subprocess.Popen([sys.executable, *map(str, command), "--seeds", "1"], cwd=tmp_path, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(started, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        hold.unlink()
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert process.returncode == 130 and "Traceback" not in stderr, stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("analyze.py: interrupted") and "--out" in lines[0], stderr
    assert snapshot(out) == before, "the previous results, complete and untouched"
    assert staging_left(out) == []

    rerun = cli.run([*command, "--seeds", 1], tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    doc = strict_json((out / "bias.json").read_text())
    assert doc["seeds"] == [1] and doc["pairs"]["measured"] == [3]
    assert (out / "notes.txt").read_text() == "mine" and (out / "units.csv").is_file()
    assert (out / "bias.json").read_bytes() != before["bias.json"]
    assert staging_left(out) == []


def tiny_document(seed: int):
    """A real BiasDocument from the metric on random features (no model: fast)."""
    from lit_stbias.analysis import BiasDocument
    from lit_stbias.metrics.functional import static_dynamic_bias

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 6, generator=g)
    partners = torch.cat([x + 0.3 * torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g)])
    result = static_dynamic_bias(torch.cat([x, x]), partners, torch.tensor([0] * 8 + [1] * 8))
    return BiasDocument.from_results({seed: {"stage5": result}}, model="x3d", data="synthetic:motion")


def test_ctrl_c_between_the_renames_of_the_swap_takes_effect_after_it(tmp_path, monkeypatch):
    """In process, as a signal cannot be aimed between two system calls from outside: SIGINT arrives just after
    --out has been renamed aside. The swap still puts the complete new results in place, then Ctrl-C acts."""
    from lit_stbias.analysis import write_outputs

    out = tmp_path / "results"
    write_outputs(out, tiny_document(1), report=False)
    (out / "notes.txt").write_text("mine")
    rename = os.rename

    def rename_then_interrupt(source, target):
        rename(source, target)
        if Path(source) == out:  # --out aside, the new folder not yet in
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(os, "rename", rename_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(out, tiny_document(2), report=False)
    monkeypatch.undo()
    assert strict_json((out / "bias.json").read_text())["seeds"] == [2], "the complete new results"
    assert (out / "notes.txt").read_text() == "mine" and staging_left(out) == []


# -- train.py ----------------------------------------------------------------------------------------------------------


def train_config(out: Path, name: str = "tiny", epochs: int = 1, **trainer) -> dict:
    """A complete few-step fit configuration: tiny FastOnly, 8-frame 32 px clips, 2 batches an epoch."""
    from lit_stbias.lightning.experiments import action_config

    config = action_config("fast", "motion", epochs=epochs, frames=8, size=32, num_videos=16, val_videos=4,
                           batch_size=8, num_pairs=4, out=str(out), name=name, wandb=False)
    config["trainer"].update(limit_train_batches=2, enable_progress_bar=False, enable_model_summary=False,
                             accelerator="cpu", **trainer)
    config["bias"].update(batch_size=4, plot=False, taps=["stage4", "stage5"])
    config["overwrite"] = False  # as a user's run: an occupied run folder is refused
    return config


TRAIN_CASES = {
    "missing-ckpt": (["--ckpt_path", "missing.ckpt"], ("--ckpt_path missing.ckpt", "checkpoint not found")),
    "occupied-run-folder": (["--name", "tiny"], ("holds a previous run", "--ckpt_path last", "--overwrite true")),
    "escaping-name": (["--name", "../escape"], ("--name ../escape", "not a plain folder name")),
    "devices-abc": (["--trainer.devices", "abc"], ("--trainer.devices abc", "Give a number of devices")),
    "no-gpu": no_gpu_case("--trainer."),
    "unknown-option": (["--trainer.max_epoks", "3"], ("trainer.max_epoks",)),
    "wrong-type": (["--trainer.max_epochs", "many"], ("trainer.max_epochs", "many")),
}


@pytest.mark.parametrize("case", TRAIN_CASES)
def test_train_usage_error_is_one_line_and_writes_nothing(cli, tmp_path, case):
    options, fragments = TRAIN_CASES[case]
    previous = tmp_path / "runs" / "tiny"  # a previous run's files, which no failing command may touch
    (previous / "checkpoints").mkdir(parents=True)
    (previous / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (previous / "config.yaml").write_text("seed_everything: 0\n")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(train_config(tmp_path / "runs", name="fresh")))
    before = snapshot(tmp_path)
    result = cli.run([TRAIN, "fit", "--config", tmp_path / "run.yaml", *options], tmp_path)
    one_line_error(result, "train.py", *fragments)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("text, fragments", [
    ("trainer:\n  max_epoks: 3\n", ("trainer.max_epoks",)),
    ("trainer:\n  max_epochs: many\n", ("trainer.max_epochs", "many")),
], ids=["unknown-key", "wrong-type"])
def test_train_config_file_mistake_is_one_line_naming_the_key(cli, tmp_path, text, fragments):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(train_config(tmp_path / "runs")))
    (tmp_path / "mistake.yaml").write_text(text)
    before = snapshot(tmp_path)
    result = cli.run([TRAIN, "fit", "--config", tmp_path / "run.yaml", "--config", tmp_path / "mistake.yaml"],
                     tmp_path)
    one_line_error(result, "train.py", *fragments)
    assert snapshot(tmp_path) == before


def history_epochs(run_dir: Path) -> list[int]:
    return [h["context"]["epoch"] for h in strict_json((run_dir / "bias_history.json").read_text())["history"]]


def test_training_interrupted_mid_epoch_resumes_to_the_uninterrupted_result(cli, env, user_dir, tmp_path):
    from lit_stbias.models import read_checkpoint

    config = train_config(tmp_path / "runs", epochs=2,
                          callbacks=[{"class_path": "reliability_user.HoldAtBatch", "init_args": {"epoch": 1}}])
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    command = [TRAIN, "fit", "--config", tmp_path / "run.yaml"]
    run_dir = tmp_path / "runs" / "tiny"

    # Ctrl-C at the second batch of the second epoch (the callback waits there while the hold file exists)
    hold, started = user_dir / "hold", user_dir / "batch-started"
    started.unlink(missing_ok=True)
    hold.touch()
    try:
        process = subprocess.Popen([sys.executable, *map(str, command)], cwd=tmp_path, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(started, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        hold.unlink()
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert process.returncode == 130 and "Traceback" not in stderr, stderr[-3000:]
    assert lines[-1].startswith("train.py: interrupted") and "--ckpt_path last" in lines[-1], stderr[-3000:]
    assert str(run_dir / "checkpoints" / "last.ckpt") in lines[-1]
    assert read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["epoch"] == 0, "the last complete epoch"
    assert history_epochs(run_dir) == [0]
    first_epoch = strict_json((run_dir / "bias_history.json").read_text())["history"][0]

    # the command the line gives resumes the run
    resume = lines[-1].split("resume with ", 1)[1].rstrip(".").split()
    assert resume[0] == "train.py" and resume[-2:] == ["--ckpt_path", "last"], lines[-1]
    resumed = cli.run([TRAIN, *resume[1:]], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = strict_json((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 2 and history_epochs(run_dir) == [0, 1]
    assert strict_json((run_dir / "bias_history.json").read_text())["history"][0] == first_epoch

    # the same command never interrupted ends with the same weights, bit for bit
    straight = cli.run([*command, "--name", "straight"], tmp_path)
    assert straight.returncode == 0, straight.stderr[-3000:]
    a = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"]
    b = read_checkpoint(tmp_path / "runs" / "straight" / "checkpoints" / "last.ckpt")["state_dict"]
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
