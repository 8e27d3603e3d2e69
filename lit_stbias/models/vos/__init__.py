"""The paper's two-stream video object segmentation networks, weight-compatible with the authors' release.

- ``fusionseg``: the release's ``twostream_deeplabv3plus_resnet101`` (:mod:`.fusionseg`);
- ``matnet``: the release's ``MATNet`` (:mod:`.matnet`);
- ``rtnet``: an interim two-stream body (:mod:`.rtnet_interim`) until the release's RTNet lands.

Every network is called as ``model(rgb, flow_image)`` with [0, 1] images (B, 3, H, W), normalises them itself,
returns mask logits (B, 1, H, W) at the input size, and declares taps named as the release's ``stage_map``
(``app.conv1``, ``app.layer1``..., ``mot.*``, ``fusion.*``). See docs/vos.md.
"""
# importing the network modules registers them (registration order = the order available("vos") lists)
from lit_stbias.models.vos import fusionseg, matnet, rtnet_interim  # noqa: F401
from lit_stbias.models.vos.checkpoints import read_encoder_decoder_folder
from lit_stbias.models.vos.common import RELEASE_STREAMS, ResNetStream, release_stage

__all__ = ["RELEASE_STREAMS", "ResNetStream", "read_encoder_decoder_folder", "release_stage"]
