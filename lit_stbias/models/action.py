"""Action-recognition models composed by pytorchvideo's ``create_*`` builders: C2D, I3D, Slow, Fast, SlowFast,
X3D and MViT.

The returned modules are pytorchvideo's own, so pytorchvideo model-zoo checkpoints load without renaming.
Departures from the hub functions, none adding or removing a parameter: heads pool globally (adaptive
pooling instead of a kernel fixed to the training crop: identical at the published input size, and the
probe can feed other sizes); heads return logits (X3D's hub head ends in a softmax); SlowFast leaves the
caller's ``[slow, fast]`` list as it was (pytorchvideo overwrites it stage by stage).
"""
from __future__ import annotations

import warnings
from typing import Any

from torch import nn

with warnings.catch_warnings():  # fvcore, imported by pytorchvideo, calls the deprecated torch.jit.script
    warnings.simplefilter("ignore", FutureWarning)
    from pytorchvideo.models.net import MultiPathWayWithFuse
    from pytorchvideo.models.resnet import ResStage, create_resnet
    from pytorchvideo.models.slowfast import FuseFastToSlow, create_slowfast
    from pytorchvideo.models.vision_transformers import create_multiscale_vision_transformers
    from pytorchvideo.models.x3d import create_x3d

from lit_stbias.models.registry import register, register_alias
from lit_stbias.models.spec import InputSpec, declare
from lit_stbias.probe import Tap


def keep_blocks(model: nn.Module, blocks_per_stage: int | None) -> None:
    """Keep the first ``blocks_per_stage`` residual blocks of every stage.

    pytorchvideo's ResNet builders fix stage depths to ResNet-50/101/152. Tiny presets keep each stage's first
    block, the one that carries its stride and projection shortcut, so every shape, temporal kernel and lateral
    connection stays where the full network has it.
    """
    if blocks_per_stage is None:
        return
    for module in model.modules():
        if isinstance(module, ResStage):
            module.res_blocks = module.res_blocks[:blocks_per_stage]


def stage_taps(model: nn.Module) -> dict[str, Tap]:
    """``stage1`` = the stem (``blocks.0``), ``stage2``..``stage5`` = the residual stages in order (C2D and I3D
    put a temporal max-pool between res2 and res3, so stage indices and block indices differ)."""
    stages = [name for name, block in model.blocks.named_children() if isinstance(block, ResStage)]
    return {"stage1": Tap("blocks.0"), **{f"stage{i + 2}": Tap(f"blocks.{name}") for i, name in enumerate(stages)}}


def resnet3d(
    *,
    num_classes: int = 400,
    num_frames: int = 8,
    size: int = 224,
    sampling_rate: int | None = None,
    blocks_per_stage: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """A single-pathway 3D ResNet (C2D, I3D, Slow, Fast differ only in kernel layout and width)."""
    kwargs.setdefault("head_pool", nn.AdaptiveAvgPool3d)
    model = create_resnet(model_num_class=num_classes, **kwargs)
    keep_blocks(model, blocks_per_stage)
    return declare(model, stage_taps(model), InputSpec(num_frames, size, sampling_rate=sampling_rate))


def slowfast(
    *,
    num_classes: int = 400,
    num_frames: int = 32,
    alpha: int = 4,
    size: int = 224,
    slow_width: int = 64,
    beta_inv: int = 8,
    sampling_rate: int | None = None,
    blocks_per_stage: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """SlowFast: a slow pathway on every ``alpha``-th frame, a fast one with 1/``beta_inv`` of its channels on
    all ``num_frames``, fused fast-to-slow after the stem and after res2..res4.

    Two tap families, as the paper's text and the authors' release measure it:

    - ``slow.stageK`` / ``fast.stageK``: each pathway's block output *before* the lateral connection (the
      pathway modules inside each ``MultiPathWayWithFuse``, whose own output is already fused);
    - ``slow.stageK.fused`` (K = 1..4): the slow pathway *after* the lateral connection, i.e. the slow features
      concatenated with the fast-to-slow convolution of the fast ones, what res(K+1) reads. This is the
      release's default (``--fuse True``). There is no lateral connection after res5, so there the release
      measures ``slow.stage5``; the fast pathway never receives one, so ``fast.stageK`` serves both families.

    ``fused`` is the pooled concatenation of both pathways that the classifier sees.
    """
    kwargs.setdefault("head_pool", nn.AdaptiveAvgPool3d)
    model = create_slowfast(
        model_num_class=num_classes,
        slowfast_channel_reduction_ratio=(beta_inv,),
        slowfast_fusion_conv_stride=(alpha, 1, 1),
        stem_dim_outs=(slow_width, slow_width // beta_inv),
        **kwargs,
    )
    keep_blocks(model, blocks_per_stage)
    for block in model.modules():
        if isinstance(block, MultiPathWayWithFuse):
            block.inplace = False  # else each stage writes its output into the caller's [slow, fast] list
    stages = range(5)
    taps = {f"slow.stage{k + 1}": Tap(f"blocks.{k}.multipathway_blocks.0") for k in stages}
    taps.update({  # res5's fusion is an identity: no lateral connection there
        f"slow.stage{k + 1}.fused": Tap(f"blocks.{k}.multipathway_fusion", index=0)
        for k in stages if isinstance(model.blocks[k].multipathway_fusion, FuseFastToSlow)
    })
    taps.update({f"fast.stage{k + 1}": Tap(f"blocks.{k}.multipathway_blocks.1") for k in stages})
    taps["fused"] = Tap("blocks.5")
    return declare(model, taps, InputSpec(num_frames, size, alpha=alpha, sampling_rate=sampling_rate))


def x3d(
    *, num_classes: int = 400, num_frames: int = 13, size: int = 160, sampling_rate: int | None = None, **kwargs: Any
) -> nn.Module:
    """X3D (channel-wise 3x3x3 convolutions, squeeze-excitation, swish) from ``create_x3d``.

    The sizes XS, S, M and L share the builder: they differ in clip length, crop and depth factor (presets).
    """
    kwargs.setdefault("head_activation", None)  # logits; the hub model ends in a softmax
    model = create_x3d(model_num_class=num_classes, input_clip_length=num_frames, input_crop_size=size, **kwargs)
    model.blocks[-1].pool.pool = nn.AdaptiveAvgPool3d(1)  # the builder sizes this kernel to the training crop
    return declare(model, stage_taps(model), InputSpec(num_frames, size, sampling_rate=sampling_rate))


def mvit(
    *, num_classes: int = 400, num_frames: int = 16, size: int = 224, sampling_rate: int | None = None, **kwargs: Any
) -> nn.Module:
    """Multiscale Vision Transformer. Its positional embeddings fix the input to ``num_frames`` x ``size``.

    Every block returns ``(tokens, thw)``: taps read the tokens (``index=0``); the first token is the class
    token (``skip_tokens=1``, left out only when the probe pools ``"patches"``).
    """
    model = create_multiscale_vision_transformers(
        spatial_size=size, temporal_size=num_frames, head_num_classes=num_classes, **kwargs
    )
    taps = {f"block{i}": Tap(f"blocks.{i}", index=0, skip_tokens=1) for i in range(len(model.blocks))}
    return declare(model, taps, InputSpec(num_frames, size, sampling_rate=sampling_rate))


# Kernel layouts: (temporal, height, width). These define each architecture; presets only scale it.
C2D = dict(stem_conv_kernel_size=(1, 7, 7), stage1_pool=nn.MaxPool3d, stage_conv_a_kernel_size=((1, 1, 1),) * 4)
I3D = dict(
    stem_conv_kernel_size=(5, 7, 7),
    stage1_pool=nn.MaxPool3d,
    # per-block alternation inside a stage, as in the published I3D R50
    stage_conv_a_kernel_size=((3, 1, 1), [(3, 1, 1), (1, 1, 1)], [(3, 1, 1), (1, 1, 1)], [(1, 1, 1), (3, 1, 1)]),
)
SLOW = dict(
    stem_conv_kernel_size=(1, 7, 7), stage_conv_a_kernel_size=((1, 1, 1), (1, 1, 1), (3, 1, 1), (3, 1, 1))
)
FAST = dict(stem_conv_kernel_size=(5, 7, 7), stage_conv_a_kernel_size=((3, 1, 1),) * 4)
SLOWFAST = dict(slowfast_fusion_conv_kernel_size=(7, 1, 1))

# Full presets carry the published clip: num_frames x sampling_rate ("8x8": 8 frames, every 8th).
R50 = dict(model_depth=50, stem_dim_out=64, num_frames=8, size=224, sampling_rate=8)
R50_TINY = dict(model_depth=50, stem_dim_out=16, blocks_per_stage=1, num_frames=8, size=64)

register("c2d", resnet3d, task="action", arch=C2D, summary="ResNet-50, 2D convolutions only (temporal kernel 1)",
         presets={"full": R50, "tiny": R50_TINY})
register("i3d", resnet3d, task="action", arch=I3D, summary="inflated 3D ResNet-50",
         # two blocks per stage keep res5's alternating temporal kernel
         presets={"full": R50, "tiny": {**R50_TINY, "blocks_per_stage": 2}})
register("slow", resnet3d, task="action", arch=SLOW, summary="SlowOnly 8x8 R50 (temporal kernels in res4, res5)",
         presets={"full": R50, "tiny": R50_TINY})
register("fast", resnet3d, task="action", arch=FAST,
         summary="FastOnly: SlowFast's fast pathway alone (1/8 channels, temporal kernels everywhere, 4x frames)",
         presets={"full": {**R50, "stem_dim_out": 8, "num_frames": 32, "sampling_rate": 2},
                  "tiny": {**R50_TINY, "stem_dim_out": 4, "num_frames": 32}})

# SlowFast "TxS" names the slow pathway's clip; the model takes the fast one, alpha = 4 times denser.
SLOWFAST_R101 = dict(model_depth=101, slowfast_fusion_conv_kernel_size=(5, 1, 1), slow_width=64, alpha=4, size=224)
register("slowfast", slowfast, task="action", arch=SLOWFAST,
         summary="SlowFast 8x8 R50 (presets r101, 16x8_r101_50_50 for the published R101s)",
         presets={"full": dict(model_depth=50, slow_width=64, num_frames=32, alpha=4, size=224, sampling_rate=2),
                  "tiny": dict(model_depth=50, slow_width=16, beta_inv=4, blocks_per_stage=1, num_frames=32, alpha=4,
                               size=64),
                  "r101": dict(SLOWFAST_R101, num_frames=32, sampling_rate=2),
                  # temporal kernels in res4's first 6 of 23 blocks only, in both pathways
                  "16x8_r101_50_50": dict(SLOWFAST_R101, num_frames=64, sampling_rate=2, stage_conv_a_kernel_sizes=(
                      ((1, 1, 1), (1, 1, 1), ((3, 1, 1),) * 6 + ((1, 1, 1),) * 17, (3, 1, 1)),
                      ((3, 1, 1), (3, 1, 1), ((3, 1, 1),) * 6 + ((1, 1, 1),) * 17, (3, 1, 1))))})

# X3D sizes: one builder; clip length, crop and depth change (X3D-XS 4x12 at 160 px ... X3D-L 16x5 at 312 px).
X3D_S = dict(width_factor=2.0, depth_factor=2.2, num_frames=13, size=160, sampling_rate=6)
register("x3d", x3d, task="action", summary="X3D-S (presets xs, s, m, l for the other published sizes)",
         presets={"full": X3D_S,
                  # depth_factor 0.2 rounds every stage up to one block
                  "tiny": dict(width_factor=1.0, depth_factor=0.2, stem_dim_in=8, head_dim_out=128,
                               num_frames=8, size=64),
                  "xs": {**X3D_S, "num_frames": 4, "sampling_rate": 12},
                  "s": X3D_S,
                  "m": {**X3D_S, "num_frames": 16, "size": 224, "sampling_rate": 5},
                  "l": {**X3D_S, "depth_factor": 5.0, "num_frames": 16, "size": 312, "sampling_rate": 5}})

MVIT_B = dict(depth=16, patch_embed_dim=96, num_heads=1, num_frames=16, size=224, sampling_rate=4,
              embed_dim_mul=[[1, 2.0], [3, 2.0], [14, 2.0]], atten_head_mul=[[1, 2.0], [3, 2.0], [14, 2.0]],
              pool_q_stride_size=[[1, 1, 2, 2], [3, 1, 2, 2], [14, 1, 2, 2]],
              pool_kv_stride_adaptive=[1, 8, 8], pool_kvq_kernel=[3, 3, 3])
register("mvit", mvit, task="action", summary="MViT-B 16x4 (preset 32x3)",
         presets={"full": MVIT_B,
                  "tiny": dict(depth=4, patch_embed_dim=32, num_heads=1, num_frames=8, size=64,
                               embed_dim_mul=[[1, 2.0], [3, 2.0]], atten_head_mul=[[1, 2.0], [3, 2.0]],
                               pool_q_stride_size=[[1, 1, 2, 2], [3, 1, 2, 2]],
                               pool_kv_stride_adaptive=[1, 4, 4], pool_kvq_kernel=[3, 3, 3]),
                  "32x3": {**MVIT_B, "num_frames": 32, "sampling_rate": 3}})

# pytorchvideo's hub names (pytorchvideo.models.hub) for the same networks, as aliases of (model, preset).
# Left out: the detection heads (slow_r50_detection, slowfast_r50_detection: RoI heads on boxes), csn_r101 and
# r2plus1d_r50 (no builder here), efficient_x3d_xs/s (the mobile-CPU X3D, other modules and keys) and
# mvit_base_16 (an image model).
PYTORCHVIDEO_NAMES = {
    "c2d_r50": ("c2d", "full"),
    "i3d_r50": ("i3d", "full"),
    "slow_r50": ("slow", "full"),
    "slowfast_r50": ("slowfast", "full"),
    "slowfast_r101": ("slowfast", "r101"),
    "slowfast_16x8_r101_50_50": ("slowfast", "16x8_r101_50_50"),
    "x3d_xs": ("x3d", "xs"),
    "x3d_s": ("x3d", "s"),
    "x3d_m": ("x3d", "m"),
    "x3d_l": ("x3d", "l"),
    "mvit_base_16x4": ("mvit", "full"),
    "mvit_base_32x3": ("mvit", "32x3"),
}
for _alias, (_name, _preset) in PYTORCHVIDEO_NAMES.items():
    register_alias(_alias, _name, _preset)
