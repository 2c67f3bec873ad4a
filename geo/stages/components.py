"""Shape and neighbourhood measures of labelled connected components (8-connected), vectorised over labels.

Used by the spectral rules' post-processing (:mod:`geo.stages.detect`): elongated water is a river, not a pond;
bare land counts as cleared only near a pond.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    return ndimage.label(mask, structure=np.ones((3, 3), bool))


def _elongation(labels: np.ndarray, n: int) -> np.ndarray:
    """Major/minor axis ratio per component (index 1..n → position 0..n-1) from second moments (float64
    ``bincount`` sums over the labelled pixels in raster order: ``ndimage.mean``'s numbers, no full-size images)."""
    if n == 0:
        return np.zeros(0)
    at = np.flatnonzero(labels)
    lab = labels.ravel()[at]
    y, x = (v.astype(np.float64) for v in np.divmod(at, labels.shape[1]))
    cnt = np.bincount(lab, minlength=n + 1)[1:n + 1].astype(np.float64)

    def mean(v: np.ndarray) -> np.ndarray:
        return np.bincount(lab, weights=v, minlength=n + 1)[1:n + 1] / cnt

    with np.errstate(invalid="ignore", divide="ignore"):  # a label with no pixel: NaN, as ndimage gives
        my, mx = mean(y), mean(x)
        vyy = mean(y * y) - my**2 + 1 / 12
        vxx = mean(x * x) - mx**2 + 1 / 12
        vxy = mean(y * x) - my * mx
        tr, det = vyy + vxx, vyy * vxx - vxy**2
        disc = np.sqrt(np.maximum(tr**2 / 4 - det, 0))
        l1, l2 = tr / 2 + disc, np.maximum(tr / 2 - disc, 1e-9)
        out = np.sqrt(l1 / l2)
    out[cnt < 3] = 1.0
    return out


def _near(labels: np.ndarray, n: int, target: np.ndarray, dist_px: float) -> np.ndarray:
    """Bool per component (0..n-1): some pixel lies within ``dist_px`` of a True pixel in ``target`` (distances
    only in the components' box widened by ``dist_px``; any near pixel, not a sorted per-component minimum)."""
    if n == 0:
        return np.zeros(0, bool)
    if not target.any():
        return np.zeros(n, bool)
    rows, cols = np.flatnonzero(labels.any(axis=1)), np.flatnonzero(labels.any(axis=0))
    if rows.size == 0:
        return np.zeros(n, bool)
    pad = int(np.ceil(max(dist_px, 0))) + 1
    box = (slice(max(rows[0] - pad, 0), rows[-1] + pad + 1), slice(max(cols[0] - pad, 0), cols[-1] + pad + 1))
    if not target[box].any():
        return np.zeros(n, bool)
    close = ndimage.distance_transform_edt(~target[box]) <= dist_px
    return np.bincount(labels[box][close], minlength=n + 1)[1:n + 1] > 0


def _keep(labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    lut = np.concatenate([[False], keep])
    return lut[labels]
