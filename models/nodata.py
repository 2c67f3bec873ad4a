"""The model's view of pixels without data: each takes the values of its nearest pixel with data.

Nodata (NaN in any band the model reads: outside a scene's swath, beyond the AOI's halo, a season's cloud holes)
used to reach the U-Net as zeros after normalisation, i.e. as the training set's mean spectrum: a flat, soil-and-
forest-mixed patch whose edge the model could take for a clearing. Held-out gen_e series run through `minewatch run`
(whose halo reaches past the scene) got 194-247 px of false clearing along the scene edge that the same scene classified in
memory (edge-replicated) did not (`benchmarks/bench_run_independent.py`). Filling from the nearest pixel with data
continues the surroundings instead, as the inference's own edge padding does. The filled pixels stay nodata in every
output; only their neighbours' context changes.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def fill_nearest(data: np.ndarray, bands: list[int] | None = None) -> np.ndarray:
    """``data`` ``(band, y, x)`` with every pixel that is not finite in all of ``bands`` (default: all bands) given
    the values of the nearest pixel that is (a new array; ``data`` itself when nothing is missing or nothing is
    valid)."""
    missing = np.zeros(data.shape[1:], bool)
    for b in range(data.shape[0]) if bands is None else bands:  # band by band: no copy when nothing is missing
        missing |= ~np.isfinite(data[b])
    if not missing.any() or missing.all():
        return data
    iy, ix = ndimage.distance_transform_edt(missing, return_distances=False, return_indices=True)
    return data[:, iy, ix]
