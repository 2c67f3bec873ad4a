"""`minewatch sample` / `estimate` / `change` on damaged run folders and on samples that are not this run's.

Each case runs the real command (in-process ``geo.cli.main.main``) on a copy of the test run folder
(:mod:`runfolder`) and checks the exit code, the one ``Error:`` line (no traceback, no stray warning) and that no
file of the run was written or changed.
"""

from __future__ import annotations

import hashlib
import logging
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from geo.cli.main import main
from geo.results.export import read_raster
from geo.results.rasters import write_classmap
from geo.stages.vectorize import NOT_OBSERVED
from runfolder import PERIODS, UNSEEN, run_folder  # noqa: F401  (pytest fixture)


def _cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if "WARNING" not in ln]
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: "), err
    assert "Traceback" not in err and "RuntimeWarning" not in err, err
    return lines[0]


def _digests(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def run_copy(run_folder, tmp_path):  # noqa: F811
    dst = tmp_path / "run"
    shutil.copytree(run_folder.path, dst)
    return dst


def _labelled(run_dir, path, n=60, seed=0):
    """A sample of ``run_dir`` labelled as its own class maps (the truth of the test run folder), written to ``path``."""
    from geo.results.sampling import draw_run_sample

    s = draw_run_sample(run_dir, n, seed=seed)
    s["reference"] = s["map_class"].astype(int)
    s.to_file(path, layer="sample", driver="GPKG")
    return s


def _write(s: gpd.GeoDataFrame, path):
    path.unlink(missing_ok=True)
    s.to_file(path, layer="sample", driver="GPKG")
    return path


# --- 1. sample --out on a file of the run -------------------------------------------------------------------------

@pytest.mark.parametrize("name", [f"classmap_{PERIODS[0]}.tif", "manifest.json", "footprints.gpkg"])
def test_sample_refuses_an_out_that_would_overwrite_a_file_of_the_run(run_copy, capsys, name):
    before = _digests(run_copy)
    code, out, err = _cli(["sample", str(run_copy), "--n", "20", "--out", str(run_copy / name)], capsys)
    line = _one_error_line(err)
    assert code == 2 and name in line and "not a 'minewatch sample' GeoPackage" in line and "sample.gpkg" in line
    assert _digests(run_copy) == before  # nothing written, nothing destroyed


def test_sample_refuses_the_name_of_the_runs_geopackage_even_when_it_is_missing(run_copy, capsys):
    (run_copy / "footprints.gpkg").unlink()  # 'minewatch change' would write it over the sample later
    code, _, err = _cli(["sample", str(run_copy), "--n", "20", "--out", str(run_copy / "footprints.gpkg")], capsys)
    assert code == 2 and "run's own output" in _one_error_line(err)
    assert not (run_copy / "footprints.gpkg").exists()


@pytest.mark.parametrize("name", ["sample.geojson", "sample.tif", "sample"])
def test_sample_requires_a_gpkg_out(run_copy, tmp_path, capsys, name):
    code, _, err = _cli(["sample", str(run_copy), "--n", "20", "--out", str(tmp_path / name)], capsys)
    line = _one_error_line(err)
    assert code == 2 and "does not end in .gpkg" in line
    assert not (tmp_path / name).exists()


def test_sample_refuses_an_existing_file_outside_the_run_that_is_no_sample(run_copy, tmp_path, capsys):
    other = tmp_path / "other.gpkg"
    shutil.copy(run_copy / "footprints.gpkg", other)  # another run's results
    digest = hashlib.sha256(other.read_bytes()).hexdigest()
    code, _, err = _cli(["sample", str(run_copy), "--n", "20", "--out", str(other)], capsys)
    assert code == 2 and "an existing file" in _one_error_line(err)
    assert hashlib.sha256(other.read_bytes()).hexdigest() == digest


def test_sample_may_overwrite_an_earlier_sample_in_the_run_folder(run_copy, capsys):
    out = run_copy / "sample.gpkg"
    for n in ("20", "30"):
        code, _, err = _cli(["sample", str(run_copy), "--n", n, "--out", str(out)], capsys)
        assert code == 0, err
        assert "RuntimeWarning" not in err
    s = gpd.read_file(out, layer="sample")
    assert s.groupby("period").size().max() == 30  # the second sample replaced the first


def test_sample_refuses_to_draw_over_a_labelled_sample(run_copy, capsys):
    """An analyst's labels are hours of work: `sample --out` over a labelled sample would have erased them."""
    out = run_copy / "sample.gpkg"
    s = _labelled(run_copy, out, n=20)
    s.loc[s.index[5:], "reference"] = None  # partly labelled: still refused
    _write(s, out)
    before = out.read_bytes()
    code, _, err = _cli(["sample", str(run_copy), "--n", "30", "--out", str(out)], capsys)
    assert code == 2 and "holds a sample with 5 labelled point(s)" in err
    assert out.read_bytes() == before


# --- 2. a damaged run folder --------------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["gpkg", "garbage", "truncated"])
def test_a_corrupt_class_map_is_one_raster_error_naming_it(run_copy, tmp_path, capsys, damage):
    labels = tmp_path / "labels.gpkg"
    _labelled(run_copy, labels)
    cm = run_copy / f"classmap_{PERIODS[1]}.tif"
    if damage == "gpkg":
        shutil.copy(labels, cm)  # what 'sample --out RUN/classmap_….tif' used to do
    elif damage == "garbage":
        cm.write_bytes(b"\x00garbage" * 100)
    else:
        cm.write_bytes(cm.read_bytes()[:600])
    before = _digests(run_copy)
    for args in (["sample", str(run_copy), "--n", "20", "--out", str(tmp_path / "s.gpkg")],
                 ["estimate", str(run_copy), "--labels", str(labels)],
                 ["change", str(run_copy)]):
        code, _, err = _cli(args, capsys)
        line = _one_error_line(err)
        assert code == 4, (args, err)
        assert cm.name in line and "cannot read" in line and "rerun" in line, line
    assert not (tmp_path / "s.gpkg").exists() and not (run_copy / "estimate.csv").exists()
    assert _digests(run_copy) == before


@pytest.mark.parametrize("content", [b"GPKG\xa0\x00\x8f binary", b"{not json", b"[1, 2]"])
def test_a_corrupt_manifest_is_refused_as_minewatch_change_refuses_it(run_copy, tmp_path, capsys, content):
    labels = tmp_path / "labels.gpkg"
    _labelled(run_copy, labels)
    (run_copy / "manifest.json").write_bytes(content)
    before = _digests(run_copy)
    lines = []
    for args in (["sample", str(run_copy), "--n", "20", "--out", str(tmp_path / "s.gpkg")],
                 ["estimate", str(run_copy), "--labels", str(labels)],
                 ["change", str(run_copy)]):
        code, _, err = _cli(args, capsys)
        line = _one_error_line(err)
        assert code == 2 and "manifest.json is not valid JSON" in line and "minewatch run folder" in line, line
        lines.append(line)
    assert _digests(run_copy) == before and not (tmp_path / "s.gpkg").exists()


# --- 3. periods that are not the run's; an empty estimate.csv ------------------------------------------------------

def test_estimate_refuses_a_sample_of_other_periods_before_writing_anything(run_copy, tmp_path, capsys):
    s = _labelled(run_copy, tmp_path / "l.gpkg")
    s["period"] = s["period"].str.replace("20", "21", n=1, regex=False)  # 2019-20 -> 2119-20, ...
    labels = _write(s, tmp_path / "other.gpkg")
    before = _digests(run_copy)
    code, _, err = _cli(["estimate", str(run_copy), "--labels", str(labels)], capsys)
    line = _one_error_line(err)
    assert code == 2 and "no sample point" in line and "matches the run's periods" in line and "2119-20" in line
    assert not (run_copy / "estimate.csv").exists() and _digests(run_copy) == before
    # the run folder still recomputes (it used to fail on the empty estimate.csv)
    code, _, err = _cli(["change", str(run_copy)], capsys)
    assert code == 0, err


def test_estimate_refuses_a_sample_with_some_foreign_periods(run_copy, tmp_path, capsys):
    s = _labelled(run_copy, tmp_path / "l.gpkg")
    s.loc[s.index[:3], "period"] = "2030-31"
    labels = _write(s, tmp_path / "edited.gpkg")
    code, _, err = _cli(["estimate", str(run_copy), "--labels", str(labels)], capsys)
    line = _one_error_line(err)
    assert code == 2 and line.startswith(f"Error: 3 of {len(s)} sample points") and "2030-31" in line
    assert not (run_copy / "estimate.csv").exists()


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00 not a csv \x00", b"a,b\n1,2\n"])
def test_change_skips_an_unreadable_estimate_csv_with_a_warning(run_copy, capsys, caplog, content):
    (run_copy / "estimate.csv").write_bytes(content)
    with caplog.at_level(logging.WARNING):
        code, _, err = _cli(["change", str(run_copy)], capsys)
    assert code == 0, err
    assert "Traceback" not in err
    assert any("estimate.csv cannot be read" in r.getMessage() and "minewatch estimate" in r.getMessage()
               for r in caplog.records)
    assert "Good-practice area estimate" not in (run_copy / "report.md").read_text(encoding="utf-8")


# --- 4. points that contradict the run's class maps, duplicates, added points ---------------------------------------

def test_estimate_refuses_a_sample_drawn_from_another_run(run_copy, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(run_copy, other)
    for p in PERIODS:  # another run over the same grid: its footprints lie elsewhere
        classes, grid = read_raster(other / f"classmap_{p}.tif")
        write_classmap(np.roll(classes, 40, axis=1), grid, other / f"classmap_{p}.tif")
    s = _labelled(other, tmp_path / "other.gpkg", n=60, seed=5)
    before = _digests(run_copy)
    code, _, err = _cli(["estimate", str(run_copy), "--labels", str(tmp_path / "other.gpkg")], capsys)
    line = _one_error_line(err)
    assert code == 2 and f"of {len(s)} sample points" in line and "disagree with the run's class maps" in line
    assert "not drawn from this run" in line
    assert _digests(run_copy) == before and not (run_copy / "estimate.csv").exists()


def test_estimate_refuses_edited_map_class_or_stratum(run_copy, tmp_path, capsys):
    s = _labelled(run_copy, tmp_path / "l.gpkg")
    edited = s.copy()
    edited["map_class"] = 2
    n_bad = int((s["map_class"] != 2).sum())
    code, _, err = _cli(["estimate", str(run_copy), "--labels", str(_write(edited, tmp_path / "m.gpkg"))], capsys)
    line = _one_error_line(err)
    assert code == 2 and line.startswith(f"Error: {n_bad} of {len(s)} sample points") and "edited" in line
    edited = s.copy()
    i = s.index[s["stratum"] == 0][0]
    edited.loc[i, "stratum"] = 1
    code, _, err = _cli(["estimate", str(run_copy), "--labels", str(_write(edited, tmp_path / "h.gpkg"))], capsys)
    line = _one_error_line(err)
    assert code == 2 and line.startswith(f"Error: 1 of {len(s)} sample points") and f"fid {i + 1}" in line
    assert not (run_copy / "estimate.csv").exists()
    # the untouched sample is accepted
    code, _, err = _cli(["estimate", str(run_copy), "--labels", str(tmp_path / "l.gpkg")], capsys)
    assert code == 0, err


def test_estimate_refuses_duplicated_points(run_copy, tmp_path, capsys):
    s = _labelled(run_copy, tmp_path / "l.gpkg")
    twice = gpd.GeoDataFrame(pd.concat([s, s], ignore_index=True), geometry="geometry", crs=s.crs)
    code, _, err = _cli(["estimate", str(run_copy), "--labels", str(_write(twice, tmp_path / "d.gpkg"))], capsys)
    line = _one_error_line(err)
    assert code == 2 and line.startswith(f"Error: {len(s)} of {2 * len(s)} sample points")
    assert "repeat the period, row and col" in line and f"fid {len(s) + 1}" in line
    assert not (run_copy / "estimate.csv").exists()


@pytest.mark.parametrize("stratum", [7, -1, None])
def test_estimate_refuses_points_without_a_valid_stratum(run_copy, tmp_path, capsys, stratum):
    s = _labelled(run_copy, tmp_path / "l.gpkg")
    s["stratum"] = s["stratum"].astype(float)
    s.loc[s.index[:2], "stratum"] = np.nan if stratum is None else stratum
    code, _, err = _cli(["estimate", str(run_copy), "--labels", str(_write(s, tmp_path / "x.gpkg"))], capsys)
    line = _one_error_line(err)
    assert code == 2 and line.startswith(f"Error: 2 of {len(s)} sample points") and "only points drawn" in line
    assert not (run_copy / "estimate.csv").exists()


def test_estimate_refuses_points_added_by_hand(run_copy, tmp_path, capsys):
    s = _labelled(run_copy, tmp_path / "l.gpkg")
    added = s.iloc[:2].copy()
    for f in ("stratum", "map_class", "row", "col"):
        added[f] = np.nan
    added["stratum_name"], added["reference"] = None, 1
    both = gpd.GeoDataFrame(pd.concat([s, added], ignore_index=True), geometry="geometry", crs=s.crs)
    code, _, err = _cli(["estimate", str(run_copy), "--labels", str(_write(both, tmp_path / "a.gpkg"))], capsys)
    line = _one_error_line(err)
    assert code == 2 and f"2 of {len(both)} sample points" in line and f"fid {len(s) + 1}" in line
    assert "stratified design" in line and not (run_copy / "estimate.csv").exists()


def test_estimate_still_accepts_a_sample_with_deleted_points(run_copy, tmp_path, capsys):
    s = _labelled(run_copy, tmp_path / "l.gpkg", n=80)
    kept = s.drop(index=s.index[s["stratum"] == 0][:10])
    code, _, err = _cli(["estimate", str(run_copy), "--labels", str(_write(kept, tmp_path / "k.gpkg"))], capsys)
    assert code == 0, err
    est = pd.read_csv(run_copy / "estimate.csv")
    assert int(est[(est["class"] == "background") & (est["period"] == PERIODS[0])]["n_sample"].iloc[0]) \
        == int(((kept["period"] == PERIODS[0]) & (kept["map_class"] == 0)).sum())


def test_estimate_refuses_points_moved_off_their_pixel_but_takes_a_reprojected_sample(run_copy, tmp_path, capsys):
    """A point dragged in QGIS was labelled somewhere the estimate does not weigh (its row/col stayed)."""
    from shapely.affinity import translate

    s = _labelled(run_copy, tmp_path / "l.gpkg", n=40)
    moved = s.copy()
    moved.loc[moved.index[3:6], "geometry"] = moved.geometry.iloc[3:6].apply(lambda g: translate(g, xoff=25.0))
    code, _, err = _cli(["estimate", str(run_copy), "--labels", str(_write(moved, tmp_path / "m.gpkg"))], capsys)
    assert code == 2 and "3 of" in err and "no longer lie in the pixel of their row/col" in err and "fid 4" in err
    ll = s.to_crs(4326)  # saved in another CRS: the same places
    code, _, err = _cli(["estimate", str(run_copy), "--labels", str(_write(ll, tmp_path / "ll.gpkg"))], capsys)
    assert code == 0, err


# --- 5. the buffer stratum is background near footprint only, never near nodata -------------------------------------

def test_buffer_stratum_borders_footprint_not_nodata(run_copy):
    from geo.results.sampling import BUFFER_PX, population, strata_of

    classes, _ = read_raster(run_copy / f"classmap_{PERIODS[0]}.tif")
    assert (classes[UNSEEN] == NOT_OBSERVED).all()
    strata = strata_of(classes)
    fp = (classes == 1) | (classes == 2)
    # taxicab distance to the nearest footprint pixel (the dilation grows by one 4-neighbour step per iteration)
    dist = ndi.distance_transform_cdt(~fp, metric="taxicab")
    assert (strata[strata == 3] == 3).any()
    assert (dist[strata == 3] <= BUFFER_PX).all() and (classes[strata == 3] == 0).all()
    # background just above the never-observed strip, far from any footprint, is background
    edge = slice(UNSEEN[0].start - BUFFER_PX, UNSEEN[0].start)
    far = dist[edge, :] > BUFFER_PX
    assert far.any() and (strata[edge, :][far] == 0).all()
    # nodata alone makes no buffer stratum
    only_nodata = np.zeros((20, 20), np.uint8)
    only_nodata[10:, :] = NOT_OBSERVED
    assert not (strata_of(only_nodata) == 3).any()
    # the sampled population's stratum 3 is the same
    pop, inside, _ = population(run_copy, PERIODS[0])
    assert ((pop == 3) & inside & (dist > BUFFER_PX)).sum() == 0


def test_sample_draws_no_buffer_point_next_to_nodata_only(run_copy, tmp_path, capsys):
    out = tmp_path / "s.gpkg"
    code, _, err = _cli(["sample", str(run_copy), "--n", "300", "--out", str(out)], capsys)
    assert code == 0, err
    s = gpd.read_file(out, layer="sample")
    for p in PERIODS:
        classes, _ = read_raster(run_copy / f"classmap_{p}.tif")
        dist = ndi.distance_transform_cdt(~((classes == 1) | (classes == 2)), metric="taxicab")
        pts = s[(s["period"] == p) & (s["stratum"] == 3)]
        assert len(pts) and (dist[pts["row"].to_numpy(), pts["col"].to_numpy()] <= 2).all()


def test_a_sample_drawn_with_the_old_strata_is_estimated_with_the_strata_it_was_drawn_from(run_copy, tmp_path,
                                                                                        monkeypatch, capsys):
    """Labelled samples drawn before the fix stay usable: estimated with the legacy strata, as drawn."""
    import geo.results.sampling as sampling

    new = sampling.strata_of
    monkeypatch.setattr(sampling, "strata_of", lambda c, legacy=False: new(c, legacy=True))
    s = _labelled(run_copy, tmp_path / "old.gpkg", n=120)
    ring = []  # periods whose sample holds a point of the old buffer stratum that borders nodata only
    for p in PERIODS:
        classes, _ = read_raster(run_copy / f"classmap_{p}.tif")
        dist = ndi.distance_transform_cdt(~((classes == 1) | (classes == 2)), metric="taxicab")
        pts = s[(s["period"] == p) & (s["stratum"] == 3)]
        if (dist[pts["row"].to_numpy(), pts["col"].to_numpy()] > 2).any():
            ring.append(p)
    assert ring  # the old rule drew points in the ring around nodata
    expected = sampling.estimate_run(run_copy, tmp_path / "old.gpkg").set_index(["period", "class"])
    (run_copy / "estimate.csv").unlink()
    monkeypatch.setattr(sampling, "strata_of", new)
    code, _, err = _cli(["estimate", str(run_copy), "--labels", str(tmp_path / "old.gpkg")], capsys)
    assert code == 0, err
    got = pd.read_csv(run_copy / "estimate.csv").set_index(["period", "class"])
    for col in ("area_m2", "area_m2_low", "area_m2_high", "users_accuracy"):
        assert np.allclose(got.loc[ring, col], expected.loc[ring, col], rtol=1e-5, equal_nan=True), col


def test_sample_says_when_too_few_points_fall_on_mapped_footprint_for_a_map_check(run_copy, tmp_path, capsys):
    """A check of the map needs 50 sample points on mapped footprint per season (geo.results.change.MIN_CHECK_POINTS):
    a small sample says so when it is drawn, not after the labelling; a large one does not."""
    code, out, err = _cli(["sample", str(run_copy), "--n", "40", "--out", str(tmp_path / "small.gpkg")], capsys)
    assert code == 0 and out.startswith(f"  {PERIODS[0]}:")
    assert f"Note: fewer than 50 points fall on mapped footprint in {PERIODS[0]} (" in err and "--n 80" in err
    code, out, err = _cli(["sample", str(run_copy), "--n", "1000", "--out", str(tmp_path / "large.gpkg")], capsys)
    s = gpd.read_file(tmp_path / "large.gpkg", layer="sample")
    assert code == 0 and (s[s["map_class"].isin([1, 2])].groupby("period").size() >= 50).all()
    assert "fewer than 50 points" not in err
