"""gen_g: object-based statistical Sentinel-2 L2A scene generator of rare-earth in-situ-leaching
mining in the Chipwi-Pangwa hills (Kachin State).  See README.md.

    x, y = scene(seed, variant="base", size=512)          # x (6,size,size) float32, y uint8
    seq = series(seed, variant="base", seasons=4, size=512)
"""
import numbers

from .render import VARIANTS, World, render

BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")

__all__ = ["VARIANTS", "BANDS", "scene", "series"]


def _check(seed, variant, size, seasons):
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 16:
        raise ValueError(f"size must be an integer >= 16, got {size!r}")
    if isinstance(seasons, bool) or not isinstance(seasons, numbers.Integral) or seasons < 1:
        raise ValueError(f"seasons must be an integer >= 1, got {seasons!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")


def series(seed, variant="base", seasons=4, size=512):
    """Successive dry-season scenes (one a year); seq[0] == scene(...), seq[-1] is the last."""
    _check(seed, variant, size, seasons)
    world = World(int(seed), int(size))
    out = []
    for s in range(int(seasons)):
        world.advance(s)
        out.append(render(world, s, variant))
    return out


def scene(seed, variant="base", size=512):
    """The FIRST season of series(seed, variant, size=size)."""
    return series(seed, variant, 1, size)[0]
