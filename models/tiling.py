"""Tiling for whole-raster inference: tile sizes and offsets, blending ramps, space-to-depth (pure numpy/torch)."""

from __future__ import annotations

import numpy as np
import torch


def _ramp(n: int, overlap: int) -> np.ndarray:
    """1-D blending weights: 1 in the middle, linear ramps over ``overlap`` px at each end (always > 0)."""
    ramp = np.ones(n, np.float32)
    overlap = min(overlap, n // 2)  # a raster smaller than the overlap is one short tile (crashed before)
    if overlap > 0:
        r = (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)
        ramp[:overlap] = np.minimum(ramp[:overlap], r)
        ramp[n - overlap:] = np.minimum(ramp[n - overlap:], r[::-1])
    return ramp


def axis_tiles(n: int, tile: int, overlap: int, multiple: int) -> tuple[int, list[int]]:
    """Tile length and start offsets covering ``n`` px with as little padding and recomputation as possible.

    Uses the fewest tiles of at most ``tile`` px that overlap by at least ``overlap`` px, then shrinks
    the tile to the smallest multiple of ``multiple`` that still covers ``n`` and spaces the starts
    evenly. A length below one tile gives one tile of ``n`` rounded up to ``multiple``.
    """
    if n <= tile:
        return int(np.ceil(n / multiple) * multiple), [0]
    k = int(np.ceil((n - overlap) / (tile - overlap)))
    t = min(tile, int(np.ceil((n + (k - 1) * overlap) / k / multiple) * multiple))
    return t, [int(round(i * (n - t) / (k - 1))) for i in range(k)]


def unshuffle(x: torch.Tensor, f: int) -> torch.Tensor:
    """``(C, H, W)`` → ``(H/f, W/f, f²·C)`` space-to-depth, channels position-major (``p·C + c``, ``p = i·f + j``).

    The channels-last layout :class:`models.unet.FoldedUNet` takes; ``H`` and ``W`` must be multiples of ``f``.
    A new tensor unless nothing moves (one band and ``f = 1``).
    """
    c, h, w = x.shape
    return x.reshape(c, h // f, f, w // f, f).permute(1, 3, 2, 4, 0).reshape(h // f, w // f, -1)


def shuffle(y: torch.Tensor, f: int) -> torch.Tensor:
    """Inverse of :func:`unshuffle`: ``(H/f, W/f, f²·K)`` position-major → ``(K, H, W)``."""
    h, w, pk = y.shape
    k = pk // (f * f)
    return y.reshape(h, w, f, f, k).permute(4, 0, 2, 1, 3).reshape(k, h * f, w * f)
