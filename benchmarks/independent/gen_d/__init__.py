"""gen_d: an independent Sentinel-2 L2A scene generator for blind evaluation of the minewatch detector.

Physics-first design ("sensor physicist"): continuous 400-2500 nm material spectra -> Gaussian S2 SRFs,
a shallow-water pond model, fine (2.5 m) rendering area-averaged to 10 m / 20 m, 6S atmosphere (TOA with
adjacency) and an imperfect L2A inversion.  See README.md."""
from __future__ import annotations

import numpy as np

from . import atmos, landscape, layout, paint, sensor  # noqa: F401 (atmos, layout re-exported)
from .spectra import BANDS as _B

VARIANTS = ("base", "pale", "rough")
BANDS = _B
__all__ = ["VARIANTS", "BANDS", "scene", "series"]


def _labels(mine: np.ndarray, pond: np.ndarray, size: int) -> np.ndarray:
    k = landscape.FINE
    fm = mine.reshape(size, k, size, k).mean(axis=(1, 3))
    fp = pond.reshape(size, k, size, k).mean(axis=(1, 3))
    y = np.zeros((size, size), np.uint8)
    y[(fm + 0) >= 0.5] = 1  # mine footprint incl. ponds covers >= half the pixel
    y[fp >= 0.5] = 2  # pond water / lined pool covers >= half the pixel
    return y


def _render(plan, seed: int, variant: str, season: int):
    R, mine, pond = paint.paint(plan, season, variant, seed)
    rng = np.random.default_rng([seed, VARIANTS.index(variant), 4099, season])
    x = sensor.image(R, plan.dem, variant, rng)
    return x, _labels(mine | pond, pond, plan.size)


def _check(variant: str, size: int) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if size < 16 or size % 2:
        raise ValueError("size must be an even number >= 16")


def scene(seed: int, variant: str = "base", size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """x: float32 (6, size, size) S2 L2A surface reflectance of BANDS on a 10 m grid (B11/B12 formed at 20 m
    and resampled); y: uint8 (size, size) 0 background, 1 mining footprint (not pond), 2 leaching pond.
    scene(seed, v, n) equals series(seed, v, s, n)[0]."""
    _check(variant, size)
    plan = landscape.make_plan(int(seed), variant, size)
    return _render(plan, int(seed), variant, 0)


def series(seed: int, variant: str = "base", seasons: int = 4, size: int = 512):
    """The same landscape in successive dry seasons while mining expands (new sites, growth, ponds that
    drain or revegetate); each element as scene(), with its own illumination / haze / noise draw."""
    _check(variant, size)
    if not 1 <= seasons <= landscape.MAX_SEASONS:
        raise ValueError(f"seasons must be in 1..{landscape.MAX_SEASONS}")
    plan = landscape.make_plan(int(seed), variant, size)
    return [_render(plan, int(seed), variant, k) for k in range(seasons)]
