"""Independent Sentinel-2 L2A scene generator E: empirical background endmembers from real Sentinel-2 pixels.

See README.md. Imports only numpy / scipy / stdlib.
"""
from __future__ import annotations

import numpy as np

from .render import render as _render

VARIANTS = ("base", "pale", "rough")
BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")

__all__ = ["VARIANTS", "BANDS", "scene", "series"]


def _check(variant: str, size: int) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if int(size) < 8:
        raise ValueError("size must be >= 8")


def scene(seed: int, variant: str = "base", size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """x: float32 (6, size, size) surface reflectance of BANDS (10 m grid); y: uint8 (size, size) 0/1/2."""
    _check(variant, size)
    return _render(int(seed), variant, int(size), None, 1, VARIANTS)


def series(seed: int, variant: str = "base", seasons: int = 4, size: int = 512) -> list[tuple[np.ndarray, np.ndarray]]:
    """The same landscape over successive dry seasons while mining expands; each element as scene()."""
    _check(variant, size)
    if int(seasons) < 1:
        raise ValueError("seasons must be >= 1")
    return [_render(int(seed), variant, int(size), s, int(seasons), VARIANTS) for s in range(int(seasons))]
