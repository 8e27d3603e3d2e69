"""Video sources: synthetic action and VOS videos, video files and frame folders, pre-stylized folders, DAVIS-like
folders, the Stylized DAVIS release and the real sample clips; ``from_spec`` turns a ``--data`` string into one of
them, ``ClipSampling`` says which frames of a video make a clip, ``mask_sum`` adds up a VOS dataset's masks.

Every video is a float tensor in [0, 1] shaped (C, T, H, W). See docs/data.md for item formats and layouts.
"""
from lit_stbias.data.davis import (
    STYLIZED_DAVIS_STYLES,
    DavisLike,
    MaskSum,
    StylizedDavis,
    mask_sum,
    read_binary_mask,
    read_flow_file,
)
from lit_stbias.data.flow import farneback_flow
from lit_stbias.data.folders import PrestylizedVideos, SampleVideos, VideoFolder, find_videos, skip_warnings_hidden
from lit_stbias.data.sampling import WINDOWS, ClipSampling, load_annotations, uniform_subsample
from lit_stbias.data.spec import SPEC_FORMS, from_spec
from lit_stbias.data.synthetic import MOTIONS, TASKS, SyntheticVideos, time_reversed_label
from lit_stbias.data.video_io import (
    UnreadableVideo,
    VideoReadError,
    probe_video,
    read_frames,
    read_video,
    sample_indices,
    sample_video_paths,
    write_video,
)
from lit_stbias.data.vos import SyntheticVOS, VOSFrames

__all__ = [
    "ClipSampling",
    "DavisLike",
    "MOTIONS",
    "MaskSum",
    "PrestylizedVideos",
    "SPEC_FORMS",
    "STYLIZED_DAVIS_STYLES",
    "SampleVideos",
    "StylizedDavis",
    "SyntheticVOS",
    "SyntheticVideos",
    "TASKS",
    "UnreadableVideo",
    "VOSFrames",
    "VideoFolder",
    "VideoReadError",
    "WINDOWS",
    "farneback_flow",
    "find_videos",
    "from_spec",
    "load_annotations",
    "mask_sum",
    "probe_video",
    "read_binary_mask",
    "read_flow_file",
    "read_frames",
    "read_video",
    "sample_indices",
    "sample_video_paths",
    "skip_warnings_hidden",
    "time_reversed_label",
    "uniform_subsample",
    "write_video",
]
