"""A compact U-Net in plain torch for 3-class footprint segmentation.

Input: ``(batch, 6, H, W)`` normalised reflectance of B02 B03 B04 B08 B11 B12 (see the model card
for the normalisation); output: ``(batch, n_classes, H, W)`` logits. ``H`` and ``W`` must be
multiples of ``2**depth`` (:mod:`models.infer` pads tiles for you).

The design keeps full-resolution work small (one stem conv and one block of ``base`` channels)
and spends parameters at coarse scales, which makes it fast on CPU while the receptive field
(≈ 70 px at depth 3) still sees a pond together with the cleared land around it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class UNetConfig:
    """Architecture hyper-parameters (stored in the model card).

    Attributes:
        in_channels: input bands (6 for B02 B03 B04 B08 B11 B12).
        n_classes: output classes (3: background, cleared land, leaching pond).
        widths: channels per level, full resolution first; ``len(widths) - 1`` downsamplings.
    """

    in_channels: int = 6
    n_classes: int = 3
    widths: tuple[int, ...] = (16, 32, 48, 64)

    @property
    def depth(self) -> int:
        return len(self.widths) - 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        return cls(int(d["in_channels"]), int(d["n_classes"]), tuple(int(w) for w in d["widths"]))


class ConvBlock(nn.Module):
    """Two 3×3 conv → BatchNorm → ReLU layers."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class UNet(nn.Module):
    """Compact U-Net: max-pool encoder, bilinear-upsample decoder with skip concatenation."""

    def __init__(self, config: UNetConfig = UNetConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.widths
        self.enc = nn.ModuleList([ConvBlock(config.in_channels, w[0])])
        for i in range(1, len(w)):
            self.enc.append(ConvBlock(w[i - 1], w[i]))
        self.dec = nn.ModuleList()
        for i in range(len(w) - 1, 0, -1):
            self.dec.append(ConvBlock(w[i] + w[i - 1], w[i - 1]))
        self.head = nn.Conv2d(w[0], config.n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.enc):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.dec:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
