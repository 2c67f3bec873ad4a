"""Per-period composites: the per-pixel median of clear observations and how many there were."""

from __future__ import annotations

import numpy as np

from geo.errors import RasterError
from geo.stack import Composite, ReflectanceStack

#: Rows composited at once: bounds the temporary memory to ``time × ROWS × width`` floats per band and keeps
#: the sort's working set in cache.
ROWS = 64


def median_composite(stack: ReflectanceStack, clear: np.ndarray) -> Composite:
    """Masked median composite.

    Args:
        stack: reflectance time series ``(time, band, y, x)``.
        clear: bool ``(time, y, x)``, **True where the observation is clear** (see :mod:`geo.stages.cloud`).
            Pixels with a non-finite value in any band are treated as not clear.

    Returns:
        :class:`~geo.stack.Composite` whose ``data`` is the per-band median over clear
        observations (NaN where there is none) and ``clear_count`` the number used.

    The median is the one ``np.nanmedian`` gives (the mean of the two middle values when the count is
    even, in float32), computed by sorting each block of rows along time once per band (NaN sorts last)
    and picking the middle of the first ``count`` values: the same numbers, several times faster, and
    no full-size copy of the stack.
    """
    data = stack.data
    t, b, h, w = data.shape
    if clear.shape != (t, h, w):
        raise RasterError(f"clear mask shape {clear.shape} does not match the stack {(t, h, w)}")
    out = np.full((b, h, w), np.nan, dtype=np.float32)
    count = np.zeros((h, w), np.uint16)
    nan = np.float32(np.nan)
    for r0 in range(0, h if t else 0, ROWS):
        rows = slice(r0, min(h, r0 + ROWS))
        block = data[:, :, rows]
        usable = clear[:, rows] & np.isfinite(block).all(axis=1)
        c = usable.sum(axis=0)
        count[rows] = c
        hi = (c // 2)[None]  # middle (odd count) or upper middle (even) of the sorted clear values
        lo = (np.maximum(c, 1) - 1)[None] // 2  # the same (odd) or the lower middle (even)
        none = c == 0
        for i in range(b):  # one band at a time bounds the temporary memory
            band = np.where(usable, block[:, i], nan)
            band.sort(axis=0)
            med = (np.take_along_axis(band, lo, 0)[0] + np.take_along_axis(band, hi, 0)[0]) / np.float32(2)
            med[none] = nan
            out[i, rows] = med
    return Composite(data=out, clear_count=count, bands=stack.bands, grid=stack.grid)
