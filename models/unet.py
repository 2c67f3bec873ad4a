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

import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


_fp32_lock = threading.Lock()
_fp32_state: dict = {"users": 0}  # inferences inside exact_fp32 now, and the TF32 settings to restore after the last


@contextmanager
def exact_fp32(device: torch.device):
    """Full float32 arithmetic on a CUDA device while inside: TF32 off for cuDNN convolutions and for matrix
    products (a session may have allowed both, e.g. ``torch.set_float32_matmul_precision("high")``); the caller's
    settings come back after the last such block ends. A GPU then gives the CPU's classes.

    Measured on an NVIDIA H200 (``benchmarks/check_cuda.py``): with TF32 allowed, probabilities differed from the
    CPU's by up to 1.4e-3 and 84 of 16.8 M pixels changed class; with it off by at most 3e-6 and none changed, at
    the same speed (0.331 against 0.332 s per 4096 x 4096 px).
    """
    if device.type != "cuda":
        yield
        return
    flags = (torch.backends.cudnn, torch.backends.cuda.matmul)
    with _fp32_lock:
        if _fp32_state["users"] == 0:
            _fp32_state["saved"] = [f.allow_tf32 for f in flags]
        _fp32_state["users"] += 1
        for f in flags:
            f.allow_tf32 = False
    try:
        yield
    finally:
        with _fp32_lock:
            _fp32_state["users"] -= 1
            if _fp32_state["users"] == 0:
                for f, v in zip(flags, _fp32_state["saved"]):
                    f.allow_tf32 = v


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

    def __post_init__(self) -> None:
        """Refuse a configuration no network can be built from (e.g. a model card with ``widths = []``)."""
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"widths must list at least one channel count, each >= 1, got {list(self.widths)}")
        if self.in_channels < 1 or self.n_classes < 1 or self.unshuffle < 1:
            raise ValueError(f"in_channels, n_classes and unshuffle must be >= 1, got {self.in_channels}, "
                             f"{self.n_classes} and {self.unshuffle}")
        if self.refine < 0 or self.refine_context < 0:
            raise ValueError(f"refine and refine_context must be >= 0, got {self.refine} and {self.refine_context}")

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

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder and decoder on the (space-to-depth) input: ``widths[0]`` feature channels at its resolution."""
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for block in self.dec:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.config.unshuffle
        inp = x
        if f > 1:
            x = F.pixel_unshuffle(x, f)
        x = self.trunk(x)
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


def _position_major(n_channels: int, positions: int) -> torch.Tensor:
    """Index that reorders ``pixel_unshuffle``'s channel-major channels (``c·P + p``) to ``p·C + c``."""
    return torch.tensor([c * positions + p for p in range(positions) for c in range(n_channels)])


class FoldedUNet(nn.Module):
    """Inference form of a :class:`UNet` that never touches full resolution (same maths, refolded weights).

    Input: the space-to-depth image ``(batch, f²·C, H/f, W/f)`` with channels *position-major*
    (channel ``p·C + c`` holds band ``c`` of pixel ``p = i·f + j`` of each f×f block) — see
    :func:`models.tiling.unshuffle`. Output: logits ``(batch, H/f, W/f, f²·K)``, position-major too.

    The full-resolution refinement of :class:`UNet` is a per-pixel two-layer perceptron over the raw
    spectra and ``pixel_shuffle``-d context channels. Because its first layer and the context
    convolution are linear, both fold into one ``w0 → f²·refine`` matrix at low resolution; the
    per-pixel spectra term and the second layer become matrix products on ``(pixels, bands)`` views
    of the position-major input, run in cache-sized chunks of :attr:`CHUNK` low-resolution pixels. No
    ``pixel_unshuffle``/``pixel_shuffle``/``cat`` at full resolution remains — on 2 CPU cores those
    memory passes cost ~30 % of :meth:`UNet.forward`. Built from a BatchNorm-folded copy of the model's
    current weights; rebuild after changing them.
    """

    #: Low-resolution pixels per refinement chunk (its hidden layer, 16·16 floats each, then stays in L2).
    CHUNK = 2048

    def __init__(self, model: UNet) -> None:
        super().__init__()
        import copy

        cfg = model.config
        f, c_in, k = cfg.unshuffle, cfg.in_channels, cfg.n_classes
        p = f * f
        self.config, self.positions = cfg, p
        model = fuse_batchnorm(copy.deepcopy(model)).eval()
        self.model = model
        with torch.no_grad():
            dev = model.head.weight.device
            conv0 = model.enc[0].net[0]
            stem = nn.Conv2d(conv0.in_channels, conv0.out_channels, conv0.kernel_size, conv0.stride,
                             conv0.padding, bias=True).to(dev)
            stem.weight.copy_(conv0.weight[:, _position_major(c_in, p).to(dev)])
            stem.bias.copy_(conv0.bias)
            model.enc[0].net[0] = stem
            out_idx = _position_major(k, p).to(dev)
            head_w = model.head.weight[out_idx, :, 0, 0]  # (P·K, w0)
            head_b = model.head.bias[out_idx].clone()
            self.refine = bool(cfg.refine)
            if self.refine:
                rh, rc = cfg.refine, cfg.refine_context
                w1, b1 = model.refine[0].weight[:, :, 0, 0], model.refine[0].bias  # (rh, C + rc)
                w2, b2 = model.refine[2].weight[:, :, 0, 0], model.refine[2].bias  # (K, rh)
                wc = model.context.weight[:, :, 0, 0].reshape(rc, p, -1)  # context channel m·P + p
                bc = model.context.bias.reshape(rc, p)
                # hidden[p, j] = Σ_m w1[j, C+m]·(wc[m, p]·y + bc[m, p]) + Σ_c w1[j, c]·x[p, c] + b1[j]
                ctx_w = torch.einsum("jm,mpw->pjw", w1[:, c_in:], wc).reshape(p * rh, -1)
                ctx_b = torch.einsum("jm,mp->pj", w1[:, c_in:], bc) + b1
                self.register_buffer("ctx_w", ctx_w.t().contiguous())  # (w0, P·rh)
                self.register_buffer("ctx_b", ctx_b.reshape(-1).contiguous())
                self.register_buffer("in_w", w1[:, :c_in].t().contiguous())  # (C, rh)
                self.register_buffer("out_w", w2.t().contiguous())  # (rh, K)
                head_b += b2.repeat(p)
            self.register_buffer("head_w", head_w.t().contiguous())  # (w0, P·K)
            self.register_buffer("head_b", head_b)
        for name in ("head", "context", "refine"):  # folded into the buffers above
            if hasattr(model, name):
                delattr(model, name)

    def forward(self, xu: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        x = self.model.trunk(xu)  # its stem takes the position-major channels
        n, w0, h, w = x.shape
        y = x.permute(0, 2, 3, 1).reshape(-1, w0)  # (pixels, w0); a view when x is channels-last
        out = torch.empty((y.shape[0], self.head_w.shape[1]), device=y.device, dtype=y.dtype)  # (pixels, P·K)
        pk, k = self.positions, cfg.n_classes
        spectra = xu.permute(0, 2, 3, 1).reshape(-1, cfg.in_channels) if self.refine else None  # (pixels·P, C)
        for s in range(0, y.shape[0], self.CHUNK):  # chunks small enough to keep every pass in cache
            e = min(y.shape[0], s + self.CHUNK)
            torch.addmm(self.head_b, y[s:e], self.head_w, out=out[s:e])
            if self.refine:
                hidden = torch.addmm(self.ctx_b, y[s:e], self.ctx_w).view(-1, cfg.refine)
                hidden.addmm_(spectra[s * pk:e * pk], self.in_w).relu_()
                out[s:e].view(-1, k).addmm_(hidden, self.out_w)
        return out.view(n, h, w, self.positions * cfg.n_classes)
