"""gen_f: independent Sentinel-2 L2A scene generator of rare-earth leaching mines in Kachin State.

Persona: field spectroscopist / ecologist. Every material is a physical spectrum on a 400-2500 nm
grid (leaf plate + KM canopy, Hapke soils with iron oxides / kaolinite / organics / water,
Lee shallow-water ponds) reduced to Sentinel-2 bands with Gaussian SRFs; mines follow terrain.

    x, y = scene(seed, variant="base", size=512)        # first season
    seq = series(seed, variant="base", seasons=4, size=512)
"""
import functools

import numpy as np

from . import landscape as _LS
from . import mines as _MN
from . import render as _R
from . import sensor as _SN

VARIANTS = ("base", "pale", "rough")
BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")


def _check(seed, variant, size, seasons=1):
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size must be an int >= 16, got {size!r}")
    if isinstance(seasons, bool) or not isinstance(seasons, (int, np.integer)) or seasons < 1:
        raise ValueError(f"seasons must be an int >= 1, got {seasons!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {seed!r}")
    return int(seed) % (2 ** 63), variant, int(size), int(seasons)


@functools.lru_cache(maxsize=3)
def _world(seed, size):
    L = _LS.build(seed, size)
    return L, _MN.plan(L)


def _season(seed, variant, size, t):
    L, P = _world(seed, size)
    phys, y, aux = _R.render(L, P, t, variant)
    rng = np.random.default_rng([seed, 71, _MN.VCODE[variant], t])
    x = _SN.observe(phys, L, aux, variant, rng, _R.SKY)
    return x, y


def scene(seed, variant="base", size=512):
    """First-season scene: x float32 (6, size, size) L2A reflectance, y uint8 (size, size) truth."""
    seed, variant, size, _ = _check(seed, variant, size)
    return _season(seed, variant, size, 0)


def series(seed, variant="base", seasons=4, size=512):
    """List of (x, y) for consecutive dry seasons; seq[0] == scene(...), seq[-1] is the last."""
    seed, variant, size, seasons = _check(seed, variant, size, seasons)
    return [_season(seed, variant, size, t) for t in range(seasons)]
