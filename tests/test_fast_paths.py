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


# -- detection post-processing ---------------------------------------------------------------------------

from geo.stages import detect  # noqa: E402


def reference_elongation(labels: np.ndarray, n: int) -> np.ndarray:
    """``_elongation`` as it was: second moments from ``ndimage.mean`` over full-size float64 images."""
    if n == 0:
        return np.zeros(0)
    yy, xx = np.indices(labels.shape, dtype=np.float64)
    idx = np.arange(1, n + 1)
    cnt = ndimage.sum(np.ones_like(yy), labels, idx)
    my, mx = ndimage.mean(yy, labels, idx), ndimage.mean(xx, labels, idx)
    vyy = ndimage.mean(yy * yy, labels, idx) - my**2 + 1 / 12
    vxx = ndimage.mean(xx * xx, labels, idx) - mx**2 + 1 / 12
    vxy = ndimage.mean(yy * xx, labels, idx) - my * mx
    tr, det = vyy + vxx, vyy * vxx - vxy**2
    disc = np.sqrt(np.maximum(tr**2 / 4 - det, 0))
    l1, l2 = tr / 2 + disc, np.maximum(tr / 2 - disc, 1e-9)
    out = np.sqrt(l1 / l2)
    out[cnt < 3] = 1.0
    return out


def reference_near(labels: np.ndarray, n: int, target: np.ndarray, dist_px: float) -> np.ndarray:
    """``_near`` as it was: the minimum of a whole-raster distance transform per component."""
    if n == 0:
        return np.zeros(0, bool)
    if not target.any():
        return np.zeros(n, bool)
    dist = ndimage.distance_transform_edt(~target)
    return np.asarray(ndimage.minimum(dist, labels, np.arange(1, n + 1))) <= dist_px


def _blobs(rng, shape, density, smooth):
    """Random blobby masks: smoothed noise thresholded (ponds, rivers, fields of many sizes)."""
    noise = ndimage.gaussian_filter(rng.random(shape), smooth)
    return noise > np.quantile(noise, 1 - density)


CASES = [((1, 1), 0.5, 0.5), ((3, 40), 0.3, 0.5), ((64, 64), 0.05, 1.0), ((97, 131), 0.2, 2.0),
         ((200, 150), 0.4, 3.0), ((256, 256), 0.01, 0.7), ((120, 90), 0.0, 1.0)]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("shape,density,smooth", CASES)
def test_elongation_equals_reference(seed, shape, density, smooth):
    rng = np.random.default_rng(seed)
    lab, n = detect._components(_blobs(rng, shape, density, smooth))
    got, ref = detect._elongation(lab, n), reference_elongation(lab, n)
    assert got.shape == ref.shape == (n,)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("shape,density,smooth", CASES)
@pytest.mark.parametrize("dist_px", [0.0, 1.0, 2.5, 4.0, 16.0, 400.0])
def test_near_equals_reference(seed, shape, density, smooth, dist_px):
    rng = np.random.default_rng(100 + seed)
    lab, n = detect._components(_blobs(rng, shape, density, smooth))
    target = _blobs(rng, shape, density / 2, smooth) & (lab == 0)
    if seed == 2:  # targets far from every component, or a single one
        target = np.zeros(shape, bool)
        target[-1, -1] = lab[-1, -1] == 0
    got, ref = detect._near(lab, n, target, dist_px), reference_near(lab, n, target, dist_px)
    assert got.dtype == bool and got.shape == ref.shape == (n,)
    np.testing.assert_array_equal(got, ref)


def test_near_on_overlapping_target():
    """A target that overlaps the components (distance 0) counts at any distance >= 0."""
    lab, n = detect._components(np.eye(30, dtype=bool) | np.fliplr(np.eye(30, dtype=bool)))
    target = np.zeros((30, 30), bool)
    target[15, 15] = True
    np.testing.assert_array_equal(detect._near(lab, n, target, 0.0), reference_near(lab, n, target, 0.0))


def test_classify_rules_unchanged_on_a_simulated_scene(monkeypatch):
    """The whole rules classifier gives the same classes and confidence with the reference helpers."""
    from geo.sim.scene import SimConfig, render_acquisition, simulate
    from geo.stack import Composite

    scn = simulate(SimConfig(seed=3, width=200, height=200, margin=20, start_year=2020, end_year=2022,
                             acquisitions_per_season=1, initial_sites=3, new_sites_per_season=1, abandoned_sites=1,
                             site_gap_m=200.0, cloud_amount=0.0))
    acq = render_acquisition(scn, 0)
    bands = detect.RULE_BANDS
    data = np.stack([np.kron(acq.reflectance[b], np.ones((2, 2), np.float32))
                     if acq.reflectance[b].shape != acq.valid.shape else acq.reflectance[b] for b in bands])
    comp = Composite(data=data.astype(np.float32), clear_count=np.full(acq.valid.shape, 3, np.uint16), bands=bands,
                     grid=scn.scene_grid)
    fast = detect.classify_rules(comp)
    monkeypatch.setattr(detect, "_elongation", reference_elongation)
    monkeypatch.setattr(detect, "_near", reference_near)
    ref = detect.classify_rules(comp)
    assert (ref.classes > 0).sum() > 50  # the scene has footprints to find
    np.testing.assert_array_equal(fast.classes, ref.classes)
    np.testing.assert_array_equal(fast.confidence, ref.confidence)
