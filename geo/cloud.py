"""Cloud and shadow masking from the L2A Scene Classification Layer (SCL).

Masks returned here are boolean with **True = clear/valid** (usable for compositing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: SCL classes kept as clear by default: 2 dark area (terrain shadow), 4 vegetation, 5 not vegetated,
#: 6 water, 7 unclassified. Excluded: 0 no data, 1 saturated/defective, 3 cloud shadow,
#: 8/9 cloud medium/high probability, 10 thin cirrus, 11 snow.
#: Class 2 is kept because in steep terrain it marks slopes facing away from the low dry-season sun:
#: masking it would hide whole hillsides, exactly where hillside mining is, in every scene of a season.
#: Cloud shadows are class 3 and are masked (and buffered).
DEFAULT_CLEAR_CLASSES: frozenset[int] = frozenset({2, 4, 5, 6, 7})


@dataclass(frozen=True)
class CloudMaskConfig:
    """How SCL is turned into a clear mask.

    Attributes:
        clear_classes: SCL values counted as clear.
        buffer_px: pixels (10 m) by which cloud and shadow are grown, to catch their soft edges.
    """

    clear_classes: frozenset[int] = DEFAULT_CLEAR_CLASSES
    buffer_px: int = 2


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
