"""Fast checks of independent generator E (tiny rasters)."""
import ast
import os

import numpy as np
import pytest

from benchmarks.independent import gen_e
from benchmarks.independent.gen_e import layout, spectra

PKG = os.path.dirname(gen_e.__file__)


def test_api_constants():
    assert gen_e.VARIANTS == ("base", "pale", "rough")
    assert gen_e.BANDS == ("B02", "B03", "B04", "B08", "B11", "B12")


@pytest.mark.parametrize("variant", ["base", "pale", "rough"])
def test_scene_shapes_ranges(variant):
    x, y = gen_e.scene(1, variant, size=64)
    assert x.shape == (6, 64, 64) and x.dtype == np.float32
    assert y.shape == (64, 64) and y.dtype == np.uint8
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    assert set(np.unique(y)) <= {0, 1, 2}
    # vegetated landscape: NIR well above red on average
    assert x[3].mean() > 2 * x[2].mean()


def test_odd_size():
    x, y = gen_e.scene(3, "rough", size=37)
    assert x.shape == (6, 37, 37) and y.shape == (37, 37)


def test_deterministic():
    a = gen_e.scene(5, "pale", size=48)
    b = gen_e.scene(5, "pale", size=48)
    c = gen_e.scene(6, "pale", size=48)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_mining_present_over_seeds():
    shares = [np.bincount(gen_e.scene(s, "base", size=128)[1].ravel(), minlength=3) for s in range(6)]
    tot = np.sum(shares, axis=0)
    assert tot[1] > 0


def test_series_grows_and_differs():
    ser = gen_e.series(2, "base", seasons=3, size=96)
    assert len(ser) == 3
    for x, y in ser:
        assert x.shape == (6, 96, 96) and y.shape == (96, 96)
    assert not np.array_equal(ser[0][0], ser[1][0])        # new illumination / haze / noise draw
    assert (ser[-1][1] > 0).sum() >= (ser[0][1] > 0).sum() * 0.8


def test_bad_args():
    with pytest.raises(ValueError):
        gen_e.scene(0, "nope", size=32)
    with pytest.raises(ValueError):
        gen_e.series(0, "base", seasons=0, size=32)


def test_endmember_table_small_and_plausible():
    assert os.path.getsize(os.path.join(PKG, "endmembers.npz")) < 200_000
    t = spectra.table()
    for k in ("forest_dense", "forest_open", "grass_field", "fallow", "bare_field", "built", "water", "sand"):
        assert len(t[k]) >= 50
        assert np.all((t[k] > 0) & (t[k] < 1))
    f, w = t["forest_dense"].mean(0), t["water"].mean(0)
    assert f[3] > 3 * f[2]          # red edge
    assert w[3] < w[1]              # water dark in NIR


def test_pond_clusters_exclude_holdout(monkeypatch, tmp_path, capsys):
    cl = layout.clusters()
    if cl:
        assert sum(len(r) for r, _ in cl) <= 1430
    monkeypatch.setattr(layout, "_CLUSTERS", None)
    monkeypatch.setenv("MINEWATCH_SHARED_DATA", str(tmp_path))
    rel, sq = layout.draw_cluster(np.random.default_rng(0))   # falls back to a random layout
    assert rel.shape[1] == 2 and len(rel) == len(sq)
    assert "RANDOM pond-cluster" in capsys.readouterr().err
    monkeypatch.setattr(layout, "_CLUSTERS", None)


def test_imports_only_allowed():
    allowed = {"numpy", "scipy", "skimage", "__future__", "os", "sys", "csv", "json", "argparse", "rasterio"}
    for fn in os.listdir(PKG):
        if fn.endswith(".py"):
            tree = ast.parse(open(os.path.join(PKG, fn)).read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for n in names:
                    assert n.split(".")[0] in allowed, (fn, n)
            assert len(open(os.path.join(PKG, fn)).read().splitlines()) < 400
