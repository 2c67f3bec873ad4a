"""Tests of the rules classifier in geo.stages.detect on hand-built scenes with known truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from rasterio.crs import CRS
from affine import Affine

from geo.bands import ANALYSIS_BANDS
from geo.stages.detect import CLEARED, POND, Detection, RuleThresholds, classify
from geo.errors import ConfigError, RasterError
from geo.grid import GeoGrid
from geo.stack import Composite

# Typical L2A surface reflectance, bands B02 B03 B04 B08 B11 B12.
SPECTRA = {
    "forest": (0.03, 0.05, 0.03, 0.32, 0.15, 0.07),
    "bare": (0.10, 0.14, 0.22, 0.28, 0.36, 0.30),
    "pond_turquoise": (0.09, 0.13, 0.08, 0.04, 0.015, 0.01),
    "pond_milky": (0.18, 0.22, 0.20, 0.13, 0.05, 0.03),
    "pond_red": (0.06, 0.09, 0.13, 0.09, 0.04, 0.03),
    "river": (0.06, 0.08, 0.08, 0.06, 0.03, 0.02),
    "sandbar": (0.13, 0.16, 0.19, 0.23, 0.30, 0.26),
    "field": (0.08, 0.11, 0.15, 0.22, 0.30, 0.25),
}


def make_scene(seed: int = 0, size: int = 200):
    """Forest with one mine site (cleared land + 3 ponds of different colours), a river with a sand
    bar, a fallow field and a natural forest pond. Returns (Composite, truth)."""
    rng = np.random.default_rng(seed)
    lab = np.full((size, size), "forest", dtype=object)
    truth = np.zeros((size, size), np.uint8)
    lab[20:80, 20:90] = "bare"
    truth[20:80, 20:90] = CLEARED
    for (r, c), kind in zip([(30, 30), (30, 60), (55, 45)], ["pond_turquoise", "pond_milky", "pond_red"]):
        lab[r:r + 8, c:c + 8] = kind
        truth[r:r + 8, c:c + 8] = POND
    lab[150:162, :] = "river"
    lab[162:170, 50:100] = "sandbar"
    lab[100:130, 120:180] = "field"
    lab[110:115, 30:35] = "river"  # small natural pond in forest, far from bare soil
    data = np.zeros((6, size, size), np.float32)
    for name, spec in SPECTRA.items():
        m = lab == name
        data[:, m] = np.asarray(spec, np.float32)[:, None]
    data *= rng.normal(1.0, 0.04, size=data.shape).astype(np.float32)
    grid = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 431000, 0, -10, 2840000), size, size)
    comp = Composite(data, np.full((size, size), 5, np.uint16), ANALYSIS_BANDS, grid)
    return comp, truth


def iou(pred, truth, cls):
    a, b = pred == cls, truth == cls
    return (a & b).sum() / max((a | b).sum(), 1)


def test_rules_find_site_and_reject_hard_negatives():
    comp, truth = make_scene()
    det = classify(comp, method="rules")
    assert isinstance(det, Detection)
    assert det.classes.dtype == np.uint8 and det.confidence.dtype == np.float32
    assert det.grid == comp.grid
    assert iou(det.classes, truth, POND) > 0.9
    assert iou(det.classes, truth, CLEARED) > 0.9
    # river, sand bar, field and the natural forest pond are all background
    assert (det.classes[150:170] == 0).all()
    assert (det.classes[100:130, 120:180] == 0).all()
    assert (det.classes[110:115, 30:35] == 0).all()
    assert ((det.confidence >= 0) & (det.confidence <= 1)).all()
    assert det.confidence[truth == POND].mean() > 0.7


@pytest.mark.parametrize("kind", ["pond_turquoise", "pond_milky", "pond_red"])
def test_each_pond_colour_is_water(kind):
    comp, truth = make_scene()
    det = classify(comp)
    idx = {"pond_turquoise": (30, 30), "pond_milky": (30, 60), "pond_red": (55, 45)}[kind]
    r, c = idx
    assert (det.classes[r + 1:r + 7, c + 1:c + 7] == POND).mean() > 0.9


def test_nan_pixels_are_background_with_zero_confidence():
    comp, truth = make_scene()
    data = comp.data.copy()
    data[:, 25:45, 25:45] = np.nan  # part of the site without a clear observation
    cc = comp.clear_count.copy()
    cc[25:45, 25:45] = 0
    det = classify(Composite(data, cc, comp.bands, comp.grid))
    assert (det.classes[25:45, 25:45] == 0).all()
    assert (det.confidence[25:45, 25:45] == 0).all()
    # the rest of the site is still found
    assert (det.classes[55:63, 45:53] == POND).mean() > 0.9


def test_confidence_scales_with_clear_count():
    comp, _ = make_scene()
    one = Composite(comp.data, np.ones_like(comp.clear_count), comp.bands, comp.grid)
    full = classify(comp).confidence
    half = classify(one, config=RuleThresholds(full_confidence_clear_count=2)).confidence
    np.testing.assert_allclose(half, full * 0.5, rtol=1e-5)


def test_field_becomes_cleared_when_pond_rule_disabled():
    comp, _ = make_scene()
    cfg = RuleThresholds(cleared_requires_pond_within_m=None)
    det = classify(comp, config=cfg)
    assert (det.classes[100:130, 120:180] == CLEARED).mean() > 0.9
    # the sand bar stays background (river rule)
    assert (det.classes[163:169, 55:95] == 0).all()


def test_thresholds_change_results():
    comp, truth = make_scene()
    strict = classify(comp, config=RuleThresholds(water_mndwi_min=0.7, water_ndvi_strict_max=-0.9))
    assert (strict.classes == POND).sum() < (truth == POND).sum() / 2


def test_band_order_is_by_name():
    comp, truth = make_scene()
    order = (5, 4, 3, 2, 1, 0)
    rev = Composite(comp.data[list(order)], comp.clear_count, tuple(comp.bands[i] for i in order), comp.grid)
    np.testing.assert_array_equal(classify(rev).classes, classify(comp).classes)


def test_errors():
    comp, _ = make_scene(size=60)
    with pytest.raises(ConfigError, match="unknown detection method"):
        classify(comp, method="magic")
    with pytest.raises(ConfigError):
        RuleThresholds(pond_min_area_m2=10, pond_max_area_m2=1)
    no_swir = Composite(comp.data[:4], comp.clear_count, comp.bands[:4], comp.grid)
    with pytest.raises(RasterError, match="B11"):
        classify(no_swir)
    with pytest.raises(dataclasses.FrozenInstanceError):
        RuleThresholds().water_mndwi_min = 0  # type: ignore[misc]


def test_all_forest_scene_has_no_detections():
    comp, _ = make_scene()
    data = np.broadcast_to(np.asarray(SPECTRA["forest"], np.float32)[:, None, None], comp.data.shape).copy()
    det = classify(Composite(data, comp.clear_count, comp.bands, comp.grid))
    assert det.classes.max() == 0
