"""A compact U-Net in plain torch for 3-class footprint segmentation.

Input: ``(batch, 6, H, W)`` normalised reflectance of B02 B03 B04 B08 B11 B12 (see the model card
for the normalisation); output: ``(batch, n_classes, H, W)`` logits. ``H`` and ``W`` must be
multiples of :attr:`UNetConfig.multiple` (:mod:`models.infer` pads tiles for you).

For CPU speed the network never convolves at full resolution: a lossless space-to-depth
(``pixel_unshuffle`` by ``unshuffle`` = f) folds each f×f block of pixels into channels, the U-Net
runs at 1/f resolution, and a ``pixel_shuffle`` of the head's ``n_classes·f²`` channels restores
per-pixel logits. Nothing is thrown away on the way in or out. A cheap full-resolution
refinement (two 1×1 convolutions over the raw input spectra plus ``refine_context`` shuffled
context channels) adds a per-pixel correction; that is what puts outlines on the right 10 m pixel
(without it, almost all errors sit on footprint boundaries). The receptive field (> 100 px) sees a
pond together with the cleared land around it.
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
        widths: channels per level, finest first; ``len(widths) - 1`` max-pool downsamplings.
        unshuffle: space-to-depth factor of the stem (1 = plain U-Net at full resolution).
        refine: hidden channels of the full-resolution per-pixel refinement (0 = none).
        refine_context: context channels the refinement gets from the decoder (per full-res pixel).
    """

    in_channels: int = 6
    n_classes: int = 3
    widths: tuple[int, ...] = (32, 48, 64)
    unshuffle: int = 4
    refine: int = 16
    refine_context: int = 4

    @property
    def depth(self) -> int:
        return len(self.widths) - 1

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return self.unshuffle * 2**self.depth

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        return cls(int(d["in_channels"]), int(d["n_classes"]), tuple(int(w) for w in d["widths"]),
                   int(d.get("unshuffle", 1)), int(d.get("refine", 0)), int(d.get("refine_context", 0)))


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
        f = config.unshuffle
        self.enc = nn.ModuleList([ConvBlock(config.in_channels * f * f, w[0])])
        for i in range(1, len(w)):
            self.enc.append(ConvBlock(w[i - 1], w[i]))
        self.dec = nn.ModuleList()
        for i in range(len(w) - 1, 0, -1):
            self.dec.append(ConvBlock(w[i] + w[i - 1], w[i - 1]))
        self.head = nn.Conv2d(w[0], config.n_classes * f * f, 1)
        if config.refine:
            self.context = nn.Conv2d(w[0], config.refine_context * f * f, 1)
            self.refine = nn.Sequential(
                nn.Conv2d(config.in_channels + config.refine_context, config.refine, 1),
                nn.ReLU(inplace=True),
                nn.Conv2d(config.refine, config.n_classes, 1),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.config.unshuffle
        inp = x
        if f > 1:
            x = F.pixel_unshuffle(x, f)
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
        logits = self.head(x)
        logits = F.pixel_shuffle(logits, f) if f > 1 else logits
        if self.config.refine:
            ctx = self.context(x)
            ctx = F.pixel_shuffle(ctx, f) if f > 1 else ctx
            logits = logits + self.refine(torch.cat([inp, ctx], dim=1))
        return logits


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def fuse_batchnorm(model: UNet) -> UNet:
    """Fold every eval-mode BatchNorm into the preceding convolution (in place; for inference).

    Mathematically identical output (up to float rounding), fewer memory passes on CPU.
    """
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            layers = list(module)
            for i in range(len(layers) - 1):
                conv, bn = layers[i], layers[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                      conv.padding, bias=True)
                    with torch.no_grad():
                        fused.weight.copy_(conv.weight * scale[:, None, None, None])
                        b0 = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                        fused.bias.copy_((b0 - bn.running_mean) * scale + bn.bias)
                    module[i] = fused
                    module[i + 1] = nn.Identity()
    return model
