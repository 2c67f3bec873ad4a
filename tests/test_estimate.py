"""Good-practice area estimation (issue 13): the estimator against Olofsson et al. (2014), allocation, and the
``minewatch sample`` → label → ``minewatch estimate`` loop on a run folder."""

from __future__ import annotations

import shutil
import sqlite3

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geo.cli.main import main
from geo.results.estimate import allocate, draw_sample, estimate_class, overall_accuracy
from geo.results.export import read_raster
from runfolder import PERIODS, run_folder  # noqa: F401  (pytest fixture)

# Olofsson et al. (2014), RSE 148: 42-57, Section 5 worked example. Strata = map classes 1 deforestation,
# 2 forest gain, 3 stable forest, 4 stable non-forest; map areas in 30 m pixels; sample counts, rows = map class,
# columns = reference class (their Table 8).
OLOFSSON_PIXELS = {1: 200_000, 2: 150_000, 3: 3_200_000, 4: 6_450_000}
OLOFSSON_COUNTS = np.array([[66, 0, 5, 4],
                            [0, 55, 8, 12],
                            [1, 0, 153, 11],
                            [2, 1, 9, 313]])
HA_PER_PX = 0.09
# Published results (their Tables 9-10 and text): area ± 95 % CI in ha; accuracies ± 95 % CI.
PAPER_AREA_HA = {1: (21_158, 6_158), 2: (11_686, 3_756), 3: (285_770, 15_510), 4: (581_386, 16_282)}
PAPER_UA = {1: (0.88, 0.07), 2: (0.73, 0.10), 3: (0.93, 0.04), 4: (0.96, 0.02)}
PAPER_PA = {1: (0.75, 0.21), 2: (0.85, 0.25), 3: (0.93, 0.03), 4: (0.96, 0.02)}
PAPER_OA = (0.95, 0.02)


def _units(counts):
    strata, ref = [], []
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            strata += [i + 1] * int(counts[i, j])
            ref += [j + 1] * int(counts[i, j])
    return np.array(strata), np.array(ref)


def test_olofsson_2014_worked_example():
    strata, ref = _units(OLOFSSON_COUNTS)
    total_ha = sum(OLOFSSON_PIXELS.values()) * HA_PER_PX
    for k in range(1, 5):
        e = estimate_class(OLOFSSON_PIXELS, strata, ref, strata, {k})
        area, ci = PAPER_AREA_HA[k]
        assert e["proportion"].value * total_ha == pytest.approx(area, abs=1)
        assert 1.96 * e["proportion"].se * total_ha == pytest.approx(ci, abs=2)
        for name, paper in (("users_accuracy", PAPER_UA[k]), ("producers_accuracy", PAPER_PA[k])):
            assert round(e[name].value, 2) == paper[0], (k, name)
            assert round(1.96 * e[name].se, 2) == pytest.approx(paper[1], abs=0.01), (k, name)
    oa = overall_accuracy(OLOFSSON_PIXELS, strata, ref, strata)
    assert (round(oa.value, 2), round(1.96 * oa.se, 2)) == PAPER_OA


def test_estimator_matches_a_hand_computation():
    """Two strata, a tiny sample, computed by hand from Olofsson Eqs. 9-10 (not from the code)."""
    sizes = {0: 900, 1: 100}                       # W = 0.9, 0.1
    strata = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    ref = np.array([0, 0, 0, 1, 1, 1, 1, 0])       # stratum 0: 1/4 class 1; stratum 1: 3/4 class 1
    e = estimate_class(sizes, strata, ref, strata, {1})
    # p = 0.9*0.25 + 0.1*0.75 = 0.3; var = 0.81*0.25*0.75/3 + 0.01*0.75*0.25/3 = 0.050625 + 0.000625
    assert e["proportion"].value == pytest.approx(0.3)
    assert e["proportion"].se == pytest.approx(np.sqrt(0.05125))
    assert e["users_accuracy"].value == pytest.approx(0.75)
    # PA = 0.075 / 0.3
    assert e["producers_accuracy"].value == pytest.approx(0.25)


def test_smoothing_only_widens_strata_without_errors():
    sizes = {0: 10_000, 1: 500}
    strata = np.array([0] * 50 + [1] * 50)
    ref = np.array([0] * 50 + [1] * 50)  # a perfect sample: Olofsson's SE is 0
    plain = estimate_class(sizes, strata, ref, strata, {1})["proportion"]
    smooth = estimate_class(sizes, strata, ref, strata, {1}, smooth=frozenset({1}))["proportion"]
    assert plain.se == pytest.approx(0, abs=1e-12) and smooth.se > 1e-4 and smooth.value == plain.value


def test_a_stratum_with_one_point_gives_no_zero_width_interval():
    """One labelled point in a stratum has no sample variance. It used to add nothing, so one point per stratum gave
    a 95 % interval of zero width; now a smoothed stratum takes the floor p~(1 - p~), p~ = 1/3, and any other leaves
    the standard error undefined."""
    sizes = {0: 10_000, 1: 500}
    strata = np.array([0] * 50 + [1])
    ref = np.array([0] * 50 + [1])  # perfect agreement
    plain = estimate_class(sizes, strata, ref, strata, {1})
    assert np.isnan(plain["proportion"].se) and plain["proportion"].value == pytest.approx(500 / 10_500)
    smooth = estimate_class(sizes, strata, ref, strata, {1}, smooth=frozenset({1}))["proportion"]
    # var = N_1² · (1/3 · 2/3) / 1 / N², the 50 background points having no spread
    assert smooth.se == pytest.approx(np.sqrt(500**2 * (2 / 9)) / 10_500)
    assert smooth.high - smooth.low > smooth.value  # wider than the estimate itself, not zero


def test_allocation_gives_rare_strata_a_minimum_and_the_rest_proportionally():
    a = allocate({0: 1_000_000, 1: 5_000, 2: 2_000, 3: 8_000}, 300)
    assert sum(a.values()) == 300
    assert a[1] == a[2] == a[3] == 37 and a[0] == 300 - 3 * 37
    a = allocate({0: 500, 1: 500}, 100)
    assert a == {0: 50, 1: 50}
    assert allocate({0: 1000, 1: 3}, 100)[1] == 3  # never more points than pixels
    assert allocate({0: 0, 1: 100}, 10) == {0: 0, 1: 10}


def test_draw_sample_stays_in_strata_and_population():
    strata = np.zeros((50, 50), int)
    strata[10:20, 10:20] = 1
    valid = np.ones_like(strata, bool)
    valid[:, :5] = False
    r, c, h = draw_sample(strata, valid, {0: 30, 1: 20}, np.random.default_rng(0))
    assert len(r) == 50 and (strata[r, c] == h).all() and valid[r, c].all()
    assert len(set(zip(r.tolist(), c.tolist()))) == 50


def _cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.fixture
def run_copy(run_folder, tmp_path):  # noqa: F811
    dst = tmp_path / "run"
    shutil.copytree(run_folder.path, dst)
    return dst


def test_sample_and_estimate_cli_loop(run_copy, tmp_path, capsys):
    gpkg = tmp_path / "sample.gpkg"
    code, out, err = _cli(["sample", str(run_copy), "--n", "120", "--out", str(gpkg)], capsys)
    assert code == 0, err
    s = gpd.read_file(gpkg, layer="sample")
    assert {"period", "stratum", "reference"} <= set(s.columns)
    assert set(s["period"]) == set(PERIODS) and s["reference"].isna().all()
    assert s.groupby("period").size().max() <= 120
    with sqlite3.connect(gpkg) as con:
        qml = con.execute("SELECT styleQML FROM layer_styles WHERE f_table_name='sample'").fetchone()[0]
    assert "ValueMap" in qml and 'attr="reference"' in qml
    # Unlabelled points: one clear error line, exit 2.
    code, _, err = _cli(["estimate", str(run_copy), "--labels", str(gpkg)], capsys)
    assert code == 2 and err.startswith("Error:") and "reference" in err and len(err.strip().splitlines()) == 1
    # Label every point as the drawn truth: here the class map itself is the truth (runfolder.py burns it in),
    # so the estimate must equal the mapped area, with the map's own classes read back independently.
    for p in PERIODS:
        classes, grid = read_raster(run_copy / f"classmap_{p}.tif")
        sel = s["period"] == p
        t = grid.transform
        col = (s.loc[sel].geometry.x.to_numpy() - t.c) / t.a
        row = (s.loc[sel].geometry.y.to_numpy() - t.f) / t.e
        s.loc[sel, "reference"] = classes[np.floor(row).astype(int), np.floor(col).astype(int)]
    s["reference"] = s["reference"].astype(int)
    gpkg.unlink()
    s.to_file(gpkg, layer="sample", driver="GPKG")
    code, out, err = _cli(["estimate", str(run_copy), "--labels", str(gpkg)], capsys)
    assert code == 0, err
    est = pd.read_csv(run_copy / "estimate.csv")
    assert list(est.columns[:7]) == ["period", "class", "area_m2", "area_m2_low", "area_m2_high",
                                     "users_accuracy", "producers_accuracy"]
    assert set(est["class"]) == {"background", "cleared_land", "leaching_pond", "footprint"}
    fp = est[est["class"] == "footprint"].set_index("period")
    summary = pd.read_csv(run_copy / "summary.csv").set_index("period")
    for p in PERIODS:
        assert fp.loc[p, "area_m2"] == pytest.approx(fp.loc[p, "map_area_m2"])
        assert fp.loc[p, "area_m2_low"] <= summary.loc[p, "footprint_area_m2"] <= fp.loc[p, "area_m2_high"]
        assert fp.loc[p, "users_accuracy"] == 1.0 and fp.loc[p, "producers_accuracy"] == 1.0
    report = (run_copy / "report.md").read_text()
    assert "Good-practice area estimate" in report and "Olofsson" in report


def test_a_sample_too_small_for_its_strata_is_flagged(run_copy, caplog):
    """--n 10 leaves one point in each small stratum: said when the sample is drawn, not only at estimate time."""
    import logging

    from geo.results.sampling import draw_run_sample

    with caplog.at_level(logging.WARNING, logger="geo.results.sampling"):
        draw_run_sample(run_copy, 10, seed=0)
    assert any("fewer than 2 each" in r.getMessage() and "Olofsson" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="geo.results.sampling"):
        draw_run_sample(run_copy, 300, seed=0)
    assert not any("fewer than 2" in r.getMessage() for r in caplog.records)


def test_estimate_rejects_a_file_that_is_no_sample(run_copy, tmp_path, capsys):
    bad = tmp_path / "x.gpkg"
    bad.write_text("not a geopackage")
    code, _, err = _cli(["estimate", str(run_copy), "--labels", str(bad)], capsys)
    assert code == 2 and err.startswith("Error:") and len(err.strip().splitlines()) == 1


def test_sample_refuses_a_folder_without_class_maps(tmp_path, capsys):
    code, _, err = _cli(["sample", str(tmp_path), "--out", str(tmp_path / "s.gpkg")], capsys)
    assert code == 2 and err.startswith("Error:") and "classmap_" in err and len(err.strip().splitlines()) == 1
