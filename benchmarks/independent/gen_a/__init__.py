"""Independent Sentinel-2 L2A scene generator A ("hand-set from literature") for blind evaluation of
rare-earth mining detectors in the Kachin (Chipwi-Pangwa) belt.  See README.md."""
import numpy as np

from .materials import scene_palette
from .render import render
from .sites import make_site
from .world import build

VARIANTS = ("base", "pale", "rough")
BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
__all__ = ["VARIANTS", "BANDS", "scene", "series"]


def _rng(seed, variant, size, *tag):
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, VARIANTS.index(variant), int(size), *tag])


def _world(seed, variant, size):
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if size < 8:
        raise ValueError("size must be >= 8")
    rng = _rng(seed, variant, size, 1)
    pal = scene_palette(rng, variant)
    w = build(rng, size, variant, pal)
    w["pal"] = pal
    return w


def _sites_for(w, seed, variant, size, season, taken):
    """Sites born in `season` (season 0: the initial 0-10 sites, of various ages)."""
    rng = _rng(seed, variant, size, 2, season)
    area = (size / 512) ** 2
    if season == 0:
        k = rng.integers(0, 11) * area
        k = int(k) + (rng.random() < k - int(k))
        births = [-int(rng.integers(0, 5)) for _ in range(k)]
    else:
        births = [season] * int(rng.poisson(1.5 * area))
    out = []
    for b in births:
        s = make_site(rng, w, w["pal"], variant, b, taken)
        if s is not None:
            taken.append(s["ctr"])
            out.append(s)
    return out


def series(seed: int, variant: str = "base", seasons: int = 4, size: int = 512):
    """The same landscape in `seasons` successive dry seasons while mining expands."""
    w = _world(seed, variant, size)
    taken, sites, out = [], [], []
    for t in range(seasons):
        sites += _sites_for(w, seed, variant, size, t, taken)
        out.append(render(w, sites, t, _rng(seed, variant, size, 3, t), variant, size))
    return out


def scene(seed: int, variant: str = "base", size: int = 512):
    """One cloud-free dry-season composite: x float32 (6, size, size) reflectance, y uint8 (size, size)."""
    return series(seed, variant, 1, size)[0]
