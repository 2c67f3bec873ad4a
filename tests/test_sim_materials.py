"""Measured-spectra simulator parts on tiny rasters: soil table and families, field soils, the pond-water model,
measured-spectra chips, sites pasted into real-like backgrounds, rules-keeping fusion and the input check."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from geo.errors import ConfigError
from geo.grid import GeoGrid
from geo.sim.materials import (POND_TYPES, SOIL_FAMILIES, draw_soil, field_soil, load_materials, pond_reflectance,
                               water_column)
from geo.sim.training import Domain, training_pair
from geo.stack import Composite
from geo.stages.detect import BACKGROUND, CLEARED, POND, keep_rules_footprints


def test_soil_table_has_every_family_with_its_colour():
    t = load_materials()
    for fam in SOIL_FAMILIES:
        rows = t.rows(group="soil", families=(fam,))
        assert len(rows) >= 100, fam
    red = lambda r: np.median(r[:, 2] / r[:, 1])  # noqa: E731
    vis = lambda r: np.median(r[:, :3].mean(1))  # noqa: E731
    assert red(t.rows(group="soil", families=("red_lateritic",))) >= 1.68
    assert vis(t.rows(group="soil", families=("pale_kaolinitic",))) > 2 * vis(t.rows(group="soil", families=("dark_organic",)))
    # about 240 soils of South China / mainland South-East Asia are kept whole
    se = (t.lat > -11) & (t.lat < 35) & (t.lon > 88) & (t.lon < 125) & (t.group == "soil")
    assert se.sum() > 150
    assert len(t.rows(group="paint_plastic")) > 10 and len(t.rows(group="road")) > 10
    with pytest.raises(ConfigError):
        t.rows(group="soil", families=("purple",))


def test_field_soil_is_darker_and_moisture_lowers_swir():
    lab = np.array([0.2, 0.3, 0.4, 0.45, 0.55, 0.5], np.float32)
    rng = np.random.default_rng(0)
    dry = field_soil(rng, lab, brightness=(1.0, 1.0), moisture=(0.0, 0.0))
    wet = field_soil(rng, lab, brightness=(1.0, 1.0), moisture=(1.0, 1.0))
    np.testing.assert_allclose(dry, lab, rtol=1e-6)
    assert np.all(wet < dry)
    assert wet[5] / dry[5] < wet[1] / dry[1]  # SWIR drops more than visible
    assert np.all(draw_soil(rng, ("pale_kaolinitic",)) < 0.9)


def test_water_column_limits():
    a = np.array([0.02, 0.06, 0.4, 2.9, 900, 2500], np.float32)
    bb = np.full(6, 0.01, np.float32)
    bottom = np.full(6, 0.5, np.float32)
    np.testing.assert_allclose(water_column(a, bb, bottom, 0.0), bottom, rtol=1e-6)
    deep = water_column(a, bb, bottom, 1000.0)
    np.testing.assert_allclose(deep, 0.25 * bb / (a + bb), rtol=1e-5)
    shallow = water_column(a, bb, bottom, 0.2)
    assert shallow[0] > shallow[3] > shallow[4]  # the bottom shows in blue, hardly in NIR, not in SWIR


@pytest.mark.parametrize("kind", POND_TYPES)
def test_every_pond_type_is_water_like(kind):
    rng = np.random.default_rng(3)
    for _ in range(30):
        r = pond_reflectance(rng, kind)
        assert r.shape == (6,)
        assert r[4] < 0.04 and r[5] < 0.04, r  # water absorbs SWIR whatever the colour
        assert r[4] < r[1]  # MNDWI > 0
        assert r[3] < max(r[:3]) + 0.01  # NIR no brighter than the visible peak


def test_pond_types_differ_and_bad_type_is_an_error():
    rng = np.random.default_rng(4)
    mean = {k: np.mean([pond_reflectance(rng, k) for _ in range(40)], axis=0) for k in POND_TYPES}
    assert mean["milky"][:3].mean() > 2 * mean["dark_liner"][:3].mean()
    assert mean["iron_brown"][2] > mean["iron_brown"][0]  # red-brown: red above blue
    assert mean["bright_liner"][0] > mean["bright_liner"][2]  # turquoise/blue: blue above red
    with pytest.raises(ConfigError, match="pond type"):
        pond_reflectance(rng, "purple")


def test_measured_chip_is_deterministic_and_follows_its_families():
    a, la = training_pair(3, size=96, domain=Domain())
    b, lb = training_pair(3, size=96, domain=Domain())
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert a.shape == (6, 96, 96) and a.dtype == np.float32 and np.isfinite(a).all()
    assert (a > 0).all() and (a <= 1).all()
    redness = {}
    for fam in ("red_lateritic", "pale_kaolinitic"):
        vals = []
        for s in range(12):
            x, y = training_pair(s, size=96, domain=Domain(soil_families=(fam,), gain=(1, 1), haze=(0, 0)))
            if (y == 1).sum() > 20:
                vals.append(np.median(x[2][y == 1] / x[1][y == 1]))
        redness[fam] = np.median(vals)
    assert redness["red_lateritic"] > redness["pale_kaolinitic"] + 0.2


def test_measured_chip_20m_bands_are_blocky_and_lookalikes_are_background():
    x, y = training_pair(5, size=64, domain=Domain(misregistration=0.0, lookalikes=6))
    for i in (4, 5):  # 20 m bands: constant over each 2x2 block
        blocks = x[i].reshape(32, 2, 32, 2)
        assert np.allclose(blocks, blocks[:, :1, :, :1], atol=1e-6)
    assert set(np.unique(y)) <= {0, 1, 2}


def test_implanted_pair_keeps_the_real_background_outside_the_sites():
    from models.data import implanted_pair

    rng = np.random.default_rng(0)
    bg = (0.05 + 0.02 * rng.random((6, 120, 130))).astype(np.float32)
    out = None
    for seed in range(10):
        out = implanted_pair(seed, bg, 96)
        if out is not None:
            break
    assert out is not None
    x, y = out
    assert x.shape == (6, 96, 96) and y.shape == (96, 96)
    from scipy import ndimage

    far = ~ndimage.binary_dilation(y > 0, np.ones((3, 3), bool))
    # outside the sites (and their one-pixel rim) the pixels are the real ones, from one window of the background
    r = [(r0, c0) for r0 in range(0, 25) for c0 in range(0, 35)
         if np.array_equal(x[:, far], bg[:, r0:r0 + 96, c0:c0 + 96][:, far])]
    assert len(r) == 1
    assert (y > 0).any() and not np.array_equal(x[:, y > 0], bg[:, r[0][0]:r[0][0] + 96, r[0][1]:r[0][1] + 96][:, y > 0])
    assert implanted_pair(0, bg[:, :50, :50], 96) is None  # too small a background


def test_fusion_keeps_rules_footprints_unless_the_model_vetoes():
    fused = np.zeros((20, 20), np.uint8)
    rules = np.zeros((20, 20), np.uint8)
    rules[2:8, 2:8] = CLEARED
    rules[4:6, 4:6] = POND
    rules[12:18, 12:18] = CLEARED
    fp = np.full((20, 20), 0.001, np.float32)
    fp[2:8, 2:8] = 0.3  # the model half-believes the first site
    out = keep_rules_footprints(fused, rules, fp, 0.02)
    assert (out[4:6, 4:6] == POND).all() and (out[2:4, 2:8] == CLEARED).all()
    assert (out[12:18, 12:18] == BACKGROUND).all()  # vetoed: the model is sure it is background
    out0 = keep_rules_footprints(fused, rules, fp, 0.0)
    assert (out0[12:18, 12:18] == CLEARED).all()
    fused[5, 5] = POND
    fused[3, 3] = POND
    out = keep_rules_footprints(fused, rules, fp, 0.02)
    assert out[3, 3] == POND  # a model pond inside the rules' cleared land stays pond
    seen = fused.copy()
    seen[2:8, 2:7] = CLEARED  # the model saw most of the site: its outline stays, the rules' ponds are added
    out = keep_rules_footprints(seen, rules, fp, 0.02, 0.5)
    assert (out[2:8, 7] == BACKGROUND).all() and (out[4:6, 4:6] == POND).all()


def test_fusion_large_rules_footprint_keeps_its_outline():
    rules = np.zeros((20, 20), np.uint8)
    rules[2:12, 2:12] = CLEARED  # 100 px
    rules[5, 5] = POND
    fused = np.zeros((20, 20), np.uint8)
    fused[2:12, 2:6] = CLEARED  # the model drew 40 % of it
    fp = np.full((20, 20), 0.3, np.float32)
    small = keep_rules_footprints(fused, rules, fp, 0.15, 0.1, fill_min_px=101)
    assert (small[2:12, 6:12] == BACKGROUND).all()  # below the size: the model's outline stands
    big = keep_rules_footprints(fused, rules, fp, 0.15, 0.1, fill_min_px=100)
    assert (big[2:12, 6:12] == CLEARED).all() and big[5, 5] == POND
    fp[:] = 0.01  # the veto still wins over size
    assert (keep_rules_footprints(fused, rules, fp, 0.15, 0.1, fill_min_px=1)[2:12, 6:12] == BACKGROUND).all()


def test_input_check_flags_scaled_scenes():
    from geo.stages.input_check import check_input
    from models.infer import load_card

    if not (load_card().extra or {}).get("input_range"):
        pytest.skip("shipped card has no input_range")
    x, _ = training_pair(7, size=96, domain=Domain())
    grid = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 431000, 0, -10, 2840000), 96, 96)
    bands = ("B02", "B03", "B04", "B08", "B11", "B12")
    ok = check_input(Composite(x, np.full((96, 96), 3, np.uint16), bands, grid))
    assert ok["checked"] and ok["in_range"], ok
    bad = check_input(Composite(x * 10, np.full((96, 96), 3, np.uint16), bands, grid))  # DN/1000 mistaken scale
    assert bad["checked"] and not bad["in_range"] and bad["warnings"]


def test_input_check_ignores_what_lies_below_the_models_floor(tmp_path):
    """Over-corrected blue (≈ 0.001) is flagged for a model that sees it, not for one whose floor hides it."""
    import json
    import shutil

    from geo.stages.input_check import check_input
    from models.infer import DEFAULT_WEIGHTS, card_path

    shutil.copy(DEFAULT_WEIGHTS, tmp_path / "w.pt")
    card = json.loads(card_path(DEFAULT_WEIGHTS).read_text())
    if not card.get("input_range"):
        pytest.skip("shipped card has no input_range")
    card["input_range"]["bands_p0.5"][0] = 0.005  # the model was trained on blue down to 0.005
    x, _ = training_pair(7, size=96, domain=Domain())
    x[0] = 0.001  # every blue pixel over-corrected
    grid = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 431000, 0, -10, 2840000), 96, 96)
    comp = Composite(x, np.full((96, 96), 3, np.uint16), ("B02", "B03", "B04", "B08", "B11", "B12"), grid)
    for floor, flagged in (([0.001] * 6, True), ([0.01, 0.01, 0.01, 0.001, 0.001, 0.001], False)):
        card["normalization"]["floor"] = floor
        (tmp_path / "w.json").write_text(json.dumps(card))
        rep = check_input(comp, str(tmp_path / "w.pt"))
        assert (rep["outside_share"]["B02"] == 1.0) is flagged, (floor, rep)
        assert any("B02" in w for w in rep["warnings"]) is flagged


def test_large_cleared_land_without_pond_evidence_is_dropped():
    from geo.stages.fusion import drop_large_pondless

    cls = np.zeros((120, 120), np.uint8)
    cls[10:50, 10:50] = 1          # 1600 px (16 ha at 10 m): big
    cls[70:85, 70:85] = 1          # 225 px: small, left alone
    p = np.zeros((120, 120), np.float32)
    out = drop_large_pondless(cls, p, 1000, 0.05, 15)
    assert (out[10:50, 10:50] == 0).all() and (out[70:85, 70:85] == 1).all()
    p[55, 30] = 0.06               # a hint of a pond 50 m from the big patch keeps it
    assert (drop_large_pondless(cls, p, 1000, 0.05, 15)[10:50, 10:50] == 1).all()
    p[55, 30] = 0.04               # below the evidence threshold: dropped again
    assert (drop_large_pondless(cls, p, 1000, 0.05, 15)[10:50, 10:50] == 0).all()
    far = cls.copy()
    far[110, 110] = 2              # a mapped pond too far away (>150 m) does not count
    assert (drop_large_pondless(far, np.zeros_like(p), 1000, 0.05, 15)[10:50, 10:50] == 0).all()
    near = cls.copy()
    near[52, 20] = 2               # a mapped pond next to it does
    assert (drop_large_pondless(near, np.zeros_like(p), 1000, 0.05, 15)[10:50, 10:50] == 1).all()


def test_model_ponds_in_rivers_are_not_leaching_ponds():
    """A model pond overlapping the rules' river mask joins the cleared land it touches, else becomes background."""
    from geo.stages.fusion import ponds_off_rivers

    cls = np.zeros((60, 60), np.uint8)
    river = np.zeros((60, 60), bool)
    river[:, 5:12] = True                # a river channel
    cls[20:24, 6:10] = 2                 # model pond in the channel, nothing cleared around it: background
    cls[40:50, 20:40] = 1                # a site whose wet spoil the rules take for open water ...
    river[44:47, 12:26] = True
    cls[44:47, 20:24] = 2                # ... and the model for a pond: cleared land
    cls[30:33, 45:48] = 2                # a pond away from any river: kept
    out = ponds_off_rivers(cls, river)
    assert (out[20:24, 6:10] == 0).all()
    assert (out[44:47, 20:24] == 1).all()
    assert (out[30:33, 45:48] == 2).all() and (out[40:50, 20:40][cls[40:50, 20:40] == 1] == 1).all()
    assert (ponds_off_rivers(cls, np.zeros_like(river)) == cls).all()


def test_rules_river_mask_marks_large_water_only():
    from affine import Affine
    from rasterio.crs import CRS

    from geo.grid import GeoGrid
    from geo.stack import Composite
    from geo.stages.detect import RuleThresholds, _rules

    soil = np.array([0.09, 0.12, 0.15, 0.22, 0.30, 0.24], np.float32)
    water = np.array([0.08, 0.10, 0.06, 0.04, 0.02, 0.01], np.float32)
    x = np.broadcast_to(soil[:, None, None], (6, 80, 80)).copy()
    x[:, 5:75, 10:16] = water[:, None, None]   # 420 px river (>= 4 ha, elongated)
    x[:, 40:43, 40:43] = water[:, None, None]  # 9 px pond
    grid = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 431000, 0, -10, 2840000), 80, 80)
    det, river = _rules(Composite(x, np.full((80, 80), 3, np.uint16), ("B02", "B03", "B04", "B08", "B11", "B12"), grid),
                        RuleThresholds())
    assert river[5:75, 10:16].all() and not river[40:43, 40:43].any()
    assert (det.classes[river] == 0).all()
