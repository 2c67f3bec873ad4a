"""Independent Sentinel-2 L2A scene generator C ("field-ecologist's landscape"), written blind to geo.sim.

See README.md in this folder for what it models and where every number comes from.
"""
from __future__ import annotations

import numpy as np

from .landscape import Landscape
from .render import render_surface
from .sensor import observe
from .spectra import Palette

VARIANTS = ("base", "pale", "rough")
BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")

__all__ = ["VARIANTS", "BANDS", "scene", "series"]


def _check(variant: str, size: int) -> int:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if int(size) < 8:
        raise ValueError("size must be >= 8")
    return VARIANTS.index(variant)


def scene(seed: int, variant: str = "base", size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """x: float32 (6, size, size) surface reflectance of BANDS (10 m grid; B11/B12 formed at 20 m and resampled);
    y: uint8 (size, size): 0 background, 1 mining footprint (not pond), 2 leaching pond (>= half the pixel)."""
    vi = _check(variant, size)
    L = Landscape(seed, variant, int(size))
    pal = Palette(np.random.default_rng([int(seed), vi, 21]), variant)
    Rf, pond, foot = render_surface(L, pal, 1.0)
    return observe(Rf, pond, foot, L, variant, np.random.default_rng([int(seed), vi, 99]))


def series(seed: int, variant: str = "base", seasons: int = 4, size: int = 512) -> list[tuple[np.ndarray, np.ndarray]]:
    """The same landscape in successive dry seasons while mining expands (sites appear and grow, ponds are
    built, some drain, abandoned sites revegetate); each season has its own illumination/haze/noise draw."""
    vi = _check(variant, size)
    L = Landscape(seed, variant, int(size))
    pal = Palette(np.random.default_rng([int(seed), vi, 21]), variant)
    out = []
    for t in range(int(seasons)):
        tau = 1.0 if seasons == 1 else t / (seasons - 1)
        Rf, pond, foot = render_surface(L, pal, tau)
        out.append(observe(Rf, pond, foot, L, variant, np.random.default_rng([int(seed), vi, 100 + t])))
    return out
