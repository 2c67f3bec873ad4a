"""Per-period composites: the per-pixel median of clear observations and how many there were."""

from __future__ import annotations

import warnings

import numpy as np

from geo.errors import RasterError
from geo.stack import Composite, ReflectanceStack


def median_composite(stack: ReflectanceStack, clear: np.ndarray) -> Composite:
    """Masked median composite.

    Args:
        stack: reflectance time series ``(time, band, y, x)``.
        clear: bool ``(time, y, x)``, **True where the observation is clear** (see :mod:`geo.stages.cloud`).
            Pixels with a non-finite value in any band are treated as not clear.

    Returns:
        :class:`~geo.stack.Composite` whose ``data`` is the per-band median over clear
        observations (NaN where there is none) and ``clear_count`` the number used.
    """
    t, b, h, w = stack.data.shape
    if clear.shape != (t, h, w):
        raise RasterError(f"clear mask shape {clear.shape} does not match the stack {(t, h, w)}")
    usable = clear & np.isfinite(stack.data).all(axis=1)
    count = usable.sum(axis=0).astype(np.uint16)
    out = np.full((b, h, w), np.nan, dtype=np.float32)
    if t:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices → NaN, as documented
            for i in range(b):  # one band at a time bounds the temporary memory
                band = np.where(usable, stack.data[:, i], np.nan)
                out[i] = np.nanmedian(band, axis=0)
    return Composite(data=out, clear_count=count, bands=stack.bands, grid=stack.grid)
