"""Sub-pixel ponds of the training simulator (geo.sim.subpixel) on tiny rasters."""

import numpy as np
import pytest

from geo.sim.spectra import LC
from geo.sim.subpixel import block_mean, coarse_labels, subpixel_ponds, upsample
from geo.sim.training import Domain, training_pair


def test_block_mean_inverts_upsample_and_averages_areas():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert np.array_equal(block_mean(upsample(a, 4), 4), a)
    fine = np.zeros((4, 4), np.float32)
    fine[:2, :2] = 1.0  # a quarter of the pixel
    assert block_mean(fine, 4)[0, 0] == pytest.approx(0.25)
    assert block_mean(np.ones((2, 8, 8)), 4).shape == (2, 2, 2)


def test_coarse_labels_use_the_half_pixel_rule():
    fine = np.ones((4, 12), np.uint8)  # three 10 m pixels of cleared land at k = 4
    fine[:, 0:2] = 2  # 8 of 16 sub-pixels pond: pond
    fine[:3, 4:6] = 2  # 6 of 16 pond, the rest cleared land: cleared land
    fine[:, 8:11] = 0  # 12 of 16 background: background
    assert coarse_labels(fine, 4).tolist() == [[2, 1, 0]]


def _site(size=12):
    lc = np.full((size, size), LC["forest"] if "forest" in LC else 0, np.uint8)
    lab = np.zeros((size, size), np.uint8)
    lab[2:10, 2:10] = 1
    lab[4:8, 4:8] = 2  # one 40 m pond blob
    lc[lab == 1] = LC["laterite_soil"]
    lc[lab == 2] = LC["pond_turquoise"]
    return lc, np.zeros_like(lc), np.zeros((size, size), np.float32), lab


def test_pond_blob_becomes_pools_inside_the_footprint():
    lc, lc2, mix, lab = _site()
    lc_f, _, mix_f, lab_f = subpixel_ponds(np.random.default_rng(3), lc, lc2, mix, lab, k=4,
                                           pad_lc=LC["laterite_soil"], share=1.0, drop=0.0)
    assert lab_f.shape == (48, 48)
    pond = lab_f == 2
    assert pond.any()
    assert not (pond & (upsample(lab, 4) == 0)).any()  # pools stay on the site
    assert (lc_f[pond] == LC["pond_turquoise"]).all() and (mix_f[pond] == 0).all()
    # pools leave a rim of pad: less of the blob is water than before, and the rest became cleared land
    assert pond.sum() < (upsample(lab, 4) == 2).sum()
    assert ((lab_f == 1) & (upsample(lab, 4) == 2)).any()
    assert (lc_f[(lab_f == 1) & (upsample(lab, 4) == 2)] == LC["laterite_soil"]).all()
    # background is untouched; a pool at the blob's edge may reach into the cleared land around it
    coarse = upsample(lab, 4)
    assert (lab_f[coarse == 0] == 0).all()
    assert (lab_f[coarse == 1] > 0).all()


def test_share_zero_only_upsamples_and_seed_repeats():
    lc, lc2, mix, lab = _site()
    out = subpixel_ponds(np.random.default_rng(0), lc, lc2, mix, lab, k=4, pad_lc=LC["laterite_soil"], share=0.0)
    assert np.array_equal(out[3], upsample(lab, 4))
    a = subpixel_ponds(np.random.default_rng(9), lc, lc2, mix, lab, k=4, pad_lc=LC["laterite_soil"], share=1.0)
    b = subpixel_ponds(np.random.default_rng(9), lc, lc2, mix, lab, k=4, pad_lc=LC["laterite_soil"], share=1.0)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_no_pond_no_change():
    lc, lc2, mix, lab = _site()
    lab[lab == 2] = 1
    out = subpixel_ponds(np.random.default_rng(0), lc, lc2, mix, lab, k=3, pad_lc=LC["laterite_soil"], share=1.0)
    assert np.array_equal(out[3], upsample(lab, 3))


def test_training_chip_with_subpixel_ponds_has_mixed_pond_pixels():
    """A pond pixel of a sub-pixel chip mixes water with pad, so it is brighter in NIR than the same seed's
    whole-pixel ponds; the labels keep their classes and the chip its shape."""
    seed = next(s for s in range(20, 80)
                if (training_pair(s, size=96, small_ponds=0.5, domain=Domain())[1] == 2).sum() >= 20)
    x0, y0 = training_pair(seed, size=96, small_ponds=0.5, domain=Domain())
    x1, y1 = training_pair(seed, size=96, small_ponds=0.5, domain=Domain(subpixel_ponds=1.0))
    assert x1.shape == x0.shape and x1.dtype == np.float32 and np.isfinite(x1).all()
    assert set(np.unique(y1)) <= {0, 1, 2}
    assert np.array_equal(y0 > 0, y1 > 0)  # the footprint is the same; only ponds were redrawn
    assert 0 < (y1 == 2).sum() < (y0 == 2).sum()
    nir = 3
    assert np.median(x1[nir][y1 == 2]) > np.median(x0[nir][y0 == 2])
