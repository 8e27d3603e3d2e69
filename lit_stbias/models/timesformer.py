"""TimeSformer with divided space-time attention (Bertasius et al., ICML 2021), compact.

pytorchvideo has no TimeSformer, so it is written here. Parameter names follow the authors' release
(``patch_embed.proj``, ``blocks.i.temporal_attn``, ``temporal_fc``, ...), so their Kinetics checkpoint loads
with :func:`lit_stbias.models.load_weights` (which strips the release's ``model.`` prefix).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import StochasticDepth

from lit_stbias.models.registry import register
from lit_stbias.models.spec import InputSpec, declare
from lit_stbias.probe import Tap


class Attention(nn.Module):
    """Multi-head self-attention within each group of tokens: input (groups, tokens, dim)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(x).reshape(n, length, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DividedSpaceTimeBlock(nn.Module):
    """Temporal attention (each patch position across frames), then spatial attention (each frame's patches
    with the class token), then an MLP. Tokens are ``[cls, frame 0 patches, frame 1 patches, ...]``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.temporal_norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.temporal_attn = Attention(dim, num_heads)
        self.temporal_fc = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = StochasticDepth(drop_path, mode="row")  # drops a sample's whole residual branch

    def forward(self, x: Tensor, num_frames: int) -> Tensor:
        b, _, d = x.shape
        t = num_frames
        cls, patches = x[:, :1], x[:, 1:]
        n = patches.shape[1] // t
        # temporal: attend over the t frames at each of the n patch positions
        xt = patches.reshape(b, t, n, d).transpose(1, 2).reshape(b * n, t, d)
        res = self.temporal_attn(self.temporal_norm1(xt)).reshape(b, n, t, d).transpose(1, 2).reshape(b, t * n, d)
        patches = patches + self.temporal_fc(self.drop_path(res))
        # spatial: attend over the n patches of each frame; every frame gets a copy of the class token
        xs = torch.cat([cls.expand(b, t, d).reshape(b * t, 1, d), patches.reshape(b * t, n, d)], dim=1)
        res = self.drop_path(self.attn(self.norm1(xs)).reshape(b, t, 1 + n, d))
        cls = cls + res[:, :, 0].mean(dim=1, keepdim=True)  # the class token's update, averaged over frames
        x = torch.cat([cls, patches + res[:, :, 1:].reshape(b, t * n, d)], dim=1)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Frame-wise non-overlapping patches: (B, C, T, H, W) -> (B*T, N, dim) and the patch grid (h, w)."""

    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, video: Tensor) -> tuple[Tensor, tuple[int, int]]:
        x = self.proj(video.transpose(1, 2).flatten(0, 1))
        return x.flatten(2).transpose(1, 2), tuple(x.shape[-2:])


class TimeSformer(nn.Module):
    """Video ViT with divided space-time attention; logits from the final class token.

    Positional (per patch) and temporal (per frame) embeddings are interpolated when a clip's grid or length
    differs from the one the model was built for, as the authors' release does.
    """

    def __init__(self, num_classes: int = 400, num_frames: int = 8, size: int = 224, patch_size: int = 16,
                 dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 drop_path: float = 0.1) -> None:
        super().__init__()
        grid = size // patch_size
        self.patch_embed = PatchEmbed(patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        self.time_embed = nn.Parameter(torch.zeros(1, num_frames, dim))
        rates = torch.linspace(0, drop_path, depth).tolist()  # stochastic depth grows with depth
        self.blocks = nn.ModuleList(DividedSpaceTimeBlock(dim, num_heads, mlp_ratio, r) for r in rates)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for p in (self.pos_embed, self.cls_token):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        # temporal mixing starts switched off after the first block, so training starts from a per-frame ViT
        for block in list(self.blocks)[1:]:
            nn.init.zeros_(block.temporal_fc.weight)

    def _embeddings(self, grid: tuple[int, int], num_frames: int) -> tuple[Tensor, Tensor]:
        cls_pos, pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        side = int(pos.shape[1] ** 0.5)
        if (side, side) != grid:
            pos = pos.transpose(1, 2).reshape(1, -1, side, side)
            pos = F.interpolate(pos, size=grid, mode="nearest").flatten(2).transpose(1, 2)
        time = self.time_embed
        if time.shape[1] != num_frames:
            time = F.interpolate(time.transpose(1, 2), size=num_frames, mode="nearest").transpose(1, 2)
        return torch.cat([cls_pos, pos], dim=1), time

    def forward(self, video: Tensor) -> Tensor:
        b, t = video.shape[0], video.shape[2]
        x, grid = self.patch_embed(video)
        pos, time = self._embeddings(grid, t)
        x = (x + pos[:, 1:]).reshape(b, t, -1, x.shape[-1]) + time[:, :, None]
        cls = (self.cls_token + pos[:, :1]).expand(b, -1, -1)
        x = torch.cat([cls, x.flatten(1, 2)], dim=1)
        for block in self.blocks:
            x = block(x, t)
        return self.head(self.norm(x)[:, 0])


def timesformer(
    *, num_classes: int = 400, num_frames: int = 8, size: int = 224, sampling_rate: int | None = None, **kwargs
) -> nn.Module:
    """TimeSformer; taps read each block's tokens, the first of which is the class token (``skip_tokens=1``,
    left out only when the probe pools ``"patches"``)."""
    model = TimeSformer(num_classes=num_classes, num_frames=num_frames, size=size, **kwargs)
    taps = {f"block{i}": Tap(f"blocks.{i}", skip_tokens=1) for i in range(len(model.blocks))}
    return declare(model, taps, InputSpec(num_frames, size, sampling_rate=sampling_rate))


register("timesformer", timesformer, task="action", summary="TimeSformer-B, divided space-time attention, 8x32",
         presets={"full": dict(patch_size=16, dim=768, depth=12, num_heads=12, num_frames=8, size=224,
                               sampling_rate=32),
                  "tiny": dict(patch_size=8, dim=64, depth=4, num_heads=4, drop_path=0.0, num_frames=8, size=64)})
