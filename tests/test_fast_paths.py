"""The fast composite and detection post-processing give exactly what the plain implementations they replaced
gave (kept here as the reference), on random inputs of many shapes."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pytest
from scipy import ndimage

from geo.grid import GeoGrid
from geo.stack import ReflectanceStack
from geo.stages import composite as composite_mod
from geo.stages.composite import median_composite


def reference_median(data: np.ndarray, clear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The composite as it was: ``np.nanmedian`` of an ``np.where`` copy, band by band."""
    t, b, h, w = data.shape
    usable = clear & np.isfinite(data).all(axis=1)
    count = usable.sum(axis=0).astype(np.uint16)
    out = np.full((b, h, w), np.nan, dtype=np.float32)
    if t:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for i in range(b):
                out[i] = np.nanmedian(np.where(usable, data[:, i], np.nan), axis=0)
    return out, count


def _grid(h: int, w: int) -> GeoGrid:
    from affine import Affine
    from rasterio.crs import CRS

    return GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 500000, 0, -10, 2800000), w, h)


def _stack(data: np.ndarray) -> ReflectanceStack:
    t, b, h, w = data.shape
    return ReflectanceStack(data, None, tuple(f"B{i:02d}" for i in range(b)),
                            tuple(dt.datetime(2021, 1, 1 + i) for i in range(t)), tuple(f"s{i}" for i in range(t)),
                            _grid(h, w))


@pytest.mark.parametrize("t", [0, 1, 2, 3, 4, 5, 8, 13, 25])
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (70, 33), (129, 64)])
def test_median_composite_equals_nanmedian(t, shape):
    rng = np.random.default_rng(t * 1000 + shape[0])
    h, w = shape
    data = rng.random((t, 3, h, w), dtype=np.float32)
    # ties (quantised values), nodata in some bands, infinities, negative reflectance, whole-band gaps
    data[:, 0] = np.round(data[:, 0] * 8) / 8
    data[rng.random(data.shape) < 0.1] = np.nan
    data[rng.random(data.shape) < 0.02] = np.inf
    data[:, 1] -= 0.3
    if t:
        data[t // 2, 2, : h // 2] = np.nan
    clear = rng.random((t, h, w)) < 0.7
    comp = median_composite(_stack(data), clear)
    ref, count = reference_median(data, clear)
    np.testing.assert_array_equal(comp.data, ref)  # NaN where NaN, every bit elsewhere
    np.testing.assert_array_equal(comp.clear_count, count)
    assert comp.data.dtype == np.float32 and comp.clear_count.dtype == np.uint16


def test_median_composite_is_blockwise_but_block_size_free(monkeypatch):
    rng = np.random.default_rng(5)
    data = rng.random((6, 2, 50, 20), dtype=np.float32)
    clear = rng.random((6, 50, 20)) < 0.6
    whole = median_composite(_stack(data), clear).data
    monkeypatch.setattr(composite_mod, "ROWS", 7)
    np.testing.assert_array_equal(median_composite(_stack(data), clear).data, whole)
