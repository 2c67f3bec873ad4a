"""Cloud and shadow masking from the L2A Scene Classification Layer (SCL).

Masks returned here are boolean with **True = clear/valid** (usable for compositing).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from geo.config import CloudMaskConfig  # defined with the run settings


def scl_clear_mask(scl: np.ndarray, config: CloudMaskConfig = CloudMaskConfig()) -> np.ndarray:
    """Clear mask from SCL.

    Args:
        scl: uint8 SCL, ``(y, x)`` or ``(time, y, x)``.
        config: clear classes and buffer.

    Returns:
        bool array of ``scl``'s shape, **True where clear**. Cloud (8, 9, 10) and shadow (3)
        are grown by ``config.buffer_px`` pixels in the two spatial axes before masking.
    """
    scl = np.asarray(scl)
    clear = np.isin(scl, np.fromiter(config.clear_classes, dtype=np.int16))
    if config.buffer_px > 0:
        cloudy = np.isin(scl, (3, 8, 9, 10))
        structure = _disk(config.buffer_px)
        if scl.ndim == 3:
            structure = structure[None]
        grown = ndimage.binary_dilation(cloudy, structure=structure)
        clear &= ~grown
    return clear


def valid_data_mask(data: np.ndarray) -> np.ndarray:
    """True where every band is finite. ``data`` is ``(..., band, y, x)``; returns ``(..., y, x)``."""
    return np.isfinite(data).all(axis=-3)


def clear_fraction(clear: np.ndarray, region: np.ndarray | None = None) -> float:
    """Fraction of pixels (inside ``region``, True = inside) that are clear. ``clear``: True = clear."""
    if region is None:
        return float(clear.mean()) if clear.size else 0.0
    n = int(region.sum())
    return float((clear & region).sum() / n) if n else 0.0


def _disk(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return (x * x + y * y) <= radius * radius
