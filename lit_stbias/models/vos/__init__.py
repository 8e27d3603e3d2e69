"""The paper's two-stream video object segmentation networks, weight-compatible with the authors' release.

- ``fusionseg``: the release's ``twostream_deeplabv3plus_resnet101`` (:mod:`.fusionseg`);
- ``matnet``: the release's ``MATNet`` (:mod:`.matnet`);
- ``rtnet``: the release's RTNet ``Interactive``, ResNeXt-50 (:mod:`.rtnet`).

FusionSeg and MATNet are called as ``model(rgb, flow_image)`` with [0, 1] images (B, 3, H, W); RTNet as
``model(frames, flows)`` with two frames (B, 2, 3, H, W) and each frame's forward and backward flow images
(B, 2, 6, H, W). Each normalises its inputs itself, returns mask logits (B, 1, H, W) at the input size, and
declares taps named as the release's ``stage_map`` (``app.conv1``, ``app.layer1``..., ``mot.*``, ``fusion.*``).
See docs/vos.md.
"""
# importing the network modules registers them (registration order = the order available("vos") lists)
from lit_stbias.models.vos import fusionseg, matnet, rtnet  # noqa: F401
from lit_stbias.models.vos.checkpoints import read_encoder_decoder_folder
from lit_stbias.models.vos.common import RELEASE_STREAMS, ResNetStream, release_stage

__all__ = ["RELEASE_STREAMS", "ResNetStream", "read_encoder_decoder_folder", "release_stage"]
