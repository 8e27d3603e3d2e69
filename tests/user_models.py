"""A user's own video network and factories that go wrong, for ``import_model("user_models:...")`` tests."""
from torch import nn

NOT_CALLABLE = 42


class TinyVideoNet(nn.Module):
    """(B, 3, T, H, W) -> logits; layers named as a user's network would be (``stem``, ``layer1.0``, ``head``)."""

    def __init__(self, width: int = 4, num_classes: int = 3) -> None:
        super().__init__()
        self.stem = nn.Conv3d(3, width, kernel_size=3, padding=1)
        self.layer1 = nn.Sequential(nn.Conv3d(width, width, kernel_size=3, padding=1), nn.ReLU())
        self.head = nn.Linear(width, num_classes)

    def forward(self, video):
        return self.head(self.layer1(self.stem(video)).mean(dim=(2, 3, 4)))


def tiny_video_net(width: int = 4, num_classes: int = 3) -> nn.Module:
    return TinyVideoNet(width, num_classes)


def not_a_module():
    return {"weights": [1.0, 2.0]}


def broken():
    raise RuntimeError("the factory's own bug")
