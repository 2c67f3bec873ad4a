"""Generator B: an independent, physics-based Sentinel-2 L2A scene generator (see README.md).

scene(seed, variant, size) -> (x float32 (6, size, size) surface reflectance of BANDS, y uint8 labels)
series(seed, variant, seasons, size) -> [(x, y), ...] the same landscape over successive dry seasons.
"""
from __future__ import annotations

import numpy as np

from .spectra import BANDS

VARIANTS = ("base", "pale", "rough")

__all__ = ["VARIANTS", "BANDS", "scene", "series"]


def _check(variant: str, size: int) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if size < 16 or size % 2:
        raise ValueError("size must be an even number >= 16")


def scene(seed: int, variant: str = "base", size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """One clean dry-season composite: x (6, size, size) float32 reflectance, y (size, size) uint8
    (0 background, 1 mining footprint other than pond, 2 leaching pond covering >= half the pixel)."""
    return series(seed, variant, seasons=1, size=size)[0]


def series(seed: int, variant: str = "base", seasons: int = 4, size: int = 512) -> list[tuple[np.ndarray, np.ndarray]]:
    """The same landscape over `seasons` successive dry seasons while mining expands."""
    from .render import render_season
    from .sensor import observe
    from .world import plan

    _check(variant, size)
    if seasons < 1:
        raise ValueError("seasons must be >= 1")
    w = plan(int(seed), variant, int(size), int(seasons))
    out = []
    for s in range(seasons):
        R, mine, pond, sz, sa, rng = render_season(w, s)
        out.append(observe(w, R, mine, pond, sz, sa, rng))
    return out
