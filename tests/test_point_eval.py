"""`minewatch evaluate --stac`: a real-label check at point labels over scenes found through a STAC API.

A small simulated Sentinel-2 L2A archive (geo.sim.demo) is served on 127.0.0.1 by ``rustac serve`` (the STAC API)
and RangeHTTPServer (the COGs), each behind a counting proxy. Pool points sit on the simulator's known ponds (like
the Earth Genome / Ballinger pool points: a CSV of x/lon, y/lat), negatives on background at least 150 m from any
footprint, and the reference layer is the truth footprint polygons. Every refused input is one ``Error:`` line
with its documented exit code (docs/ERRORS.md 101–114), before any network access.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from scipy import ndimage
from shapely.geometry import Point, box

from geo.aoi import read_aoi
from geo.cli.main import main
from geo.grid import GeoGrid
from geo.sim.demo import write_demo_dataset
from geo.sim.scene import SimConfig
from geo.stages.vectorize import polygonize

SIM = SimConfig(seed=5, width=160, height=160, margin=10, start_year=2021, end_year=2023, acquisitions_per_season=2,
                initial_sites=3, new_sites_per_season=1, abandoned_sites=0, site_gap_m=100.0)
WINTER_23 = "2023-11-01/2024-04-30"
DEAD = "http://127.0.0.1:9/stac"  # nothing listens: any search would fail with exit 3


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("point-eval-archive"), config=SIM)


@pytest.fixture(scope="module")
def labels(archive, tmp_path_factory):
    """pools.csv (x, y in lon/lat, plus the UTM point as in the Ballinger file), negatives.geojson, reference.geojson."""
    root = tmp_path_factory.mktemp("point-eval-labels")
    with rasterio.open(archive.truth_dir / "classmap_2023-24.tif") as src:
        truth, grid = src.read(1), GeoGrid(src.crs, src.transform, src.width, src.height)
    polys = polygonize(truth, grid)
    ponds = [g.representative_point() for g in polys[polys["class"] == 2].geometry]
    assert len(ponds) >= 8
    pools = gpd.GeoDataFrame({"type": ["square"] * len(ponds)}, geometry=ponds, crs=grid.crs)
    ll = pools.to_crs(4326)
    pd.DataFrame({"x": ll.geometry.x, "y": ll.geometry.y, "type": "square",
                  "geom": [p.wkt for p in pools.geometry]}).to_csv(root / "pools.csv", index=False)
    far = ndimage.distance_transform_edt(truth == 0) > 15  # >= 150 m from any footprint
    far[:5], far[-5:], far[:, :5], far[:, -5:] = False, False, False, False
    ys, xs = np.nonzero(far)
    pick = np.random.default_rng(0).choice(ys.size, 40, replace=False)
    t = grid.transform
    negs = [Point(t.c + (xs[i] + 0.5) * t.a, t.f + (ys[i] + 0.5) * t.e) for i in pick]
    gpd.GeoDataFrame(geometry=negs, crs=grid.crs).to_crs(4326).to_file(root / "negatives.geojson", driver="GeoJSON")
    polys[polys["class"] > 0].to_crs(4326).to_file(root / "reference.geojson", driver="GeoJSON")
    return SimpleNamespace(root=root, pools=root / "pools.csv", negatives=root / "negatives.geojson",
                           reference=root / "reference.geojson", n_pools=len(ponds), grid=grid, pools_utm=pools)


@pytest.fixture(scope="module")
def stac(archive, tmp_path_factory):
    from servers import FaultProxy, RangeServer, RustacServer, free_port, rustac_binary

    if rustac_binary() is None:
        pytest.skip("rustac binary not found; install the dev extra (pip install rustac)")
    pytest.importorskip("RangeHTTPServer")
    root = tmp_path_factory.mktemp("point-eval-api")
    doc = json.loads(archive.items_path.read_text())
    with RangeServer(archive.root) as rs, FaultProxy(rs.url) as files:
        for f in doc["features"]:
            for a in f["assets"].values():
                a["href"] = files.url + "/" + str(Path(a["href"]).resolve().relative_to(archive.root.resolve()))
        items = root / "items_http.json"
        items.write_text(json.dumps(doc))
        port = free_port()
        with FaultProxy(f"http://127.0.0.1:{port}") as api, RustacServer([items], public_url=api.url, port=port):
            yield SimpleNamespace(url=api.url, api=api, files=files, items=doc["features"])


def cli(args, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["-q", *map(str, args)])
    cap = capsys.readouterr()
    return exc.value.code, cap.out, cap.err


def one_line_error(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    return lines[0]


def _ids_in(items, interval: str) -> list[str]:
    start, end = interval.split("/")
    return sorted(f["id"] for f in items if start <= f["properties"]["datetime"][:10] <= end)


# -- the check over a real STAC API ---------------------------------------------------------------------

def test_points_over_loopback_stac(archive, labels, stac, tmp_path, capsys):
    args = ["evaluate", "--stac", stac.url, "--asset-host", stac.files.url.split("//")[1], "--datetime", WINTER_23, "--pools", labels.pools,
            "--negatives", labels.negatives, "--reference", labels.reference, "--max-cloud", "100",
            "--method", "rules", "--aoi", archive.aoi_path, "--cache-dir", tmp_path / "cache", "--csv", tmp_path / "t.csv",
            "--json", tmp_path / "t.json"]
    stac.api.reset_counts()
    stac.files.reset_counts()
    code, out, err = cli(args, capsys)
    assert code == 0, err
    assert stac.api.log and stac.files.log, "the scenes are searched and read through the servers"
    table = pd.read_csv(tmp_path / "t.csv").set_index("role")
    res = json.loads((tmp_path / "t.json").read_text())
    assert sorted(res["items"]) == _ids_in(stac.items, WINTER_23) and res["weights"] is None
    pool, neg, ref = table.loc["pool"], table.loc["negative"], table.loc["reference"]
    assert pool["count"] == pool["in_area"] == labels.n_pools and pool["observed"] >= labels.n_pools - 1
    # the rules find the simulator's ponds at their known positions, and nothing at the far-away negatives
    assert pool["footprint_rate"] >= 0.9 and pool["pond_rate"] >= 0.6, out
    assert neg["count"] == 40 and neg["footprint_rate"] <= 0.05, out
    assert ref["footprint_rate"] >= 0.7 and res["reference"]["pixel_iou"] >= 0.6, out
    for role in ("pool", "negative", "reference"):
        assert any(line.split()[1:2] == [role] for line in out.splitlines()), out
    # per point: the pools' hits counted in the table are the points flagged in the JSON
    pts = [p for p in res["points"] if p["role"] == "pool"]
    assert len(pts) == labels.n_pools and sum(p["pond"] for p in pts) == pool["pond_detected"]

    # a moved point set is a different answer: the same points shifted 300 m east onto background are misses
    shifted = labels.pools_utm.copy()
    shifted["geometry"] = shifted.geometry.translate(300, 0)
    moved = shifted.to_crs(4326)
    inside = moved[moved.within(read_aoi(archive.aoi_path).geometry)]
    inside.to_file(tmp_path / "moved.geojson", driver="GeoJSON")

    # a rerun reads the cached composite: no request at all; the pools given as negatives score as false positives
    stac.api.reset_counts()
    stac.files.reset_counts()
    code, out, err = cli(["evaluate", "--stac", stac.url, "--asset-host", stac.files.url.split("//")[1], "--datetime", WINTER_23, "--negatives", labels.pools,
                          "--negatives", tmp_path / "moved.geojson", "--max-cloud", "100", "--method", "rules",
                          "--aoi", archive.aoi_path,
                          "--cache-dir", tmp_path / "cache", "--json", tmp_path / "t2.json"], capsys)
    assert code == 0, err
    assert stac.api.log == [] and stac.files.log == []
    res2 = json.loads((tmp_path / "t2.json").read_text())
    assert res2["cache_hit"] is True
    as_neg, moved_row = res2["rows"]
    assert as_neg["footprint_rate"] == pool["footprint_rate"]
    assert moved_row["footprint_rate"] < pool["footprint_rate"]


def test_points_with_shipped_weights_record_them(archive, labels, tmp_path, capsys):
    """The fused detector through a local catalogue: the JSON names the weights (sha256, version)."""
    from models.infer import DEFAULT_WEIGHTS, load_card, sha256

    code, out, err = cli(["evaluate", "--stac", archive.items_path, "--datetime", WINTER_23, "--pools", labels.pools,
                          "--max-cloud", "100", "--device", "cpu", "--cache-dir", tmp_path / "c",
                          "--json", tmp_path / "t.json"], capsys)
    assert code == 0, err
    res = json.loads((tmp_path / "t.json").read_text())
    assert res["method"] == "fused"
    assert res["weights"]["sha256"] == sha256(DEFAULT_WEIGHTS) and res["weights"]["version"] == load_card().version
    assert res["rows"][0]["observed"] >= labels.n_pools - 1 and 0 <= res["rows"][0]["pond_rate"] <= 1


# -- refused inputs: one Error line, documented exit code, nothing fetched (docs/ERRORS.md 101–114) ------------------

def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


@pytest.fixture
def bad(labels, tmp_path):
    t = tmp_path
    utm = labels.pools_utm
    pd.DataFrame({"x": utm.geometry.x, "y": utm.geometry.y}).to_csv(t / "utm.csv", index=False)
    gpd.GeoDataFrame(geometry=list(utm.geometry), crs=None).to_file(t / "nocrs.gpkg", driver="GPKG")
    feats = [{"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [p.x, p.y]}}
             for p in utm.geometry]
    _write(t / "projected.geojson", json.dumps({"type": "FeatureCollection", "features": feats}))
    gpd.GeoDataFrame(geometry=[box(98.31, 25.66, 98.32, 25.67)], crs=4326).to_file(t / "poly.geojson", driver="GeoJSON")
    return SimpleNamespace(
        empty=_write(t / "empty.csv", "x,y\n"),
        cols=_write(t / "cols.csv", "easting,northing\n98.3,25.6\n"),
        text=_write(t / "text.csv", "x,y\nabc,25.6\n"),
        utm=t / "utm.csv", nocrs=t / "nocrs.gpkg", projected=t / "projected.geojson", poly=t / "poly.geojson",
        garbage=_write(t / "garbage.geojson", "{not json"),
        nofeat=_write(t / "nofeat.geojson", '{"type": "FeatureCollection", "features": []}'),
    )


def _base(labels, *extra, stac=DEAD):
    return ["evaluate", "--stac", stac, "--datetime", WINTER_23, "--method", "rules", *extra]


def test_refused_point_inputs(labels, bad, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default cache folder would appear here
    far_bbox = "99.0,20.0,99.01,20.01"
    cases = {
        "no points": (_base(labels), 2, "give point labels to score"),
        "no stac": (["evaluate", "--pools", labels.pools, "--datetime", WINTER_23], 2, "give --stac"),
        "no datetime": (["evaluate", "--stac", DEAD, "--pools", labels.pools], 2, "--datetime START/END"),
        "bad datetime": (_base(labels, "--pools", labels.pools)[:4] + ["2024-13-01/2024-12-01", "--pools", labels.pools],
                         2, "--datetime: period"),
        "mixed modes": (_base(labels, "--pools", labels.pools, "--sim-seeds", "1:2"), 2, "separate modes"),
        "missing file": (_base(labels, "--pools", tmp_path / "nope.csv"), 2, "does not exist"),
        "empty": (_base(labels, "--pools", bad.empty), 2, "hold no points"),
        "unknown columns": (_base(labels, "--pools", bad.cols), 2, "no coordinate columns (columns: easting, northing)"),
        "xy-cols missing": (_base(labels, "--pools", bad.cols, "--xy-cols", "lon,lat"), 2, "no column(s) lon, lat"),
        "not numbers": (_base(labels, "--pools", bad.text), 2, "not numbers"),
        "utm in a csv": (_base(labels, "--pools", bad.utm), 4, "look projected"),
        "bad points crs": (_base(labels, "--pools", bad.utm, "--points-crs", "EPSG:nope"), 4, "is no CRS"),
        "no crs": (_base(labels, "--negatives", bad.nocrs), 4, "have no CRS"),
        "projected geojson": (_base(labels, "--negatives", bad.projected), 4, "look projected"),
        "polygons as points": (_base(labels, "--pools", bad.poly), 2, "not points"),
        "unreadable": (_base(labels, "--pools", bad.garbage), 4, "cannot read points"),
        "reference without polygons": (_base(labels, "--pools", labels.pools, "--reference", labels.negatives), 2,
                                       "holds no polygons"),
        "reference unreadable": (_base(labels, "--pools", labels.pools, "--reference", bad.garbage), 4,
                                 "cannot read reference"),
        "points outside the area": (_base(labels, "--pools", labels.pools, "--bbox", far_bbox), 2,
                                    "none of the points lies inside the searched area"),
        "area too large": (_base(labels, "--pools", labels.pools, "--bbox", "98.0,25.3,98.5,25.8"), 2,
                           "over the 1,000 km² limit of one composite; pass a smaller --bbox/--aoi"),
        "bad bbox": (_base(labels, "--pools", labels.pools, "--bbox", "1,2,3"), 2, "--bbox"),
        "projected bbox": (_base(labels, "--pools", labels.pools, "--bbox", "431000,2839000,432000,2840000"), 2,
                           "outside longitude/latitude ranges"),
        "s3 catalogue": (_base(labels, "--pools", labels.pools, stac="s3://bucket/items.json"), 3, "scheme 's3'"),
        "bad weights": (["evaluate", "--stac", DEAD, "--datetime", WINTER_23, "--pools", labels.pools,
                         "--weights", tmp_path / "none.pt"], 5, "not found"),
    }
    for name, (args, want, text) in cases.items():
        code, _, err = cli(args, capsys)
        line = one_line_error(err)
        assert code == want and text in line, (name, code, line)
    assert not (tmp_path / "minewatch-eval-cache").exists(), "a refused check fetches and caches nothing"


def test_points_without_a_clear_observation(archive, labels, tmp_path, capsys):
    """Points inside the searched area but east of every raster: nothing to score there (exit 6)."""
    w, s, e, n = read_aoi(archive.aoi_path).bbox
    pts = gpd.GeoDataFrame(geometry=[Point(e + 0.01, (s + n) / 2), Point(e + 0.012, (s + n) / 2)], crs=4326)
    pts.to_file(tmp_path / "east.geojson", driver="GeoJSON")
    code, _, err = cli(["evaluate", "--stac", archive.items_path, "--datetime", WINTER_23, "--max-cloud", "100",
                        "--method", "rules", "--pools", tmp_path / "east.geojson", "--bbox", f"{w},{s},{e + 0.02},{n}",
                        "--cache-dir", tmp_path / "c"], capsys)
    line = one_line_error(err)
    assert code == 6 and "none of the points in the searched area has a clear observation" in line, line


def test_points_agree_with_a_minewatch_run(archive, labels, tmp_path, capsys):
    """The check classifies the composite `minewatch run` would make: its hits at the pool points match the run's
    class map of the same season read at the same points (rules; the same AOI, so the same 10 m grid)."""
    code, _, err = cli(["run", "--aoi", archive.aoi_path, "--start", "2023", "--end", "2023", "--out", tmp_path / "run",
                        "--stac-url", archive.items_path, "--max-cloud", "100", "--method", "rules", "--sync"], capsys)
    assert code == 0, err
    code, _, err = cli(["evaluate", "--stac", archive.items_path, "--datetime", WINTER_23, "--pools", labels.pools,
                        "--aoi", archive.aoi_path, "--max-cloud", "100", "--method", "rules", "--point-radius-m", "0",
                        "--cache-dir", tmp_path / "c", "--json", tmp_path / "t.json"], capsys)
    assert code == 0, err
    res = json.loads((tmp_path / "t.json").read_text())
    with rasterio.open(tmp_path / "run" / "classmap_2023-24.tif") as src:
        cm = src.read(1)
        assert GeoGrid(src.crs, src.transform, src.width, src.height).to_dict() == res["grid"]
        pts = gpd.GeoDataFrame(geometry=[Point(p["lon"], p["lat"]) for p in res["points"]], crs=4326).to_crs(src.crs)
        run_cls = np.array([cm[src.index(p.x, p.y)] for p in pts.geometry])
    ours_pond = np.array([p["pond"] for p in res["points"]])
    ours_foot = np.array([p["footprint"] for p in res["points"]])
    assert len(run_cls) == labels.n_pools
    assert np.mean(ours_pond == (run_cls == 2)) >= 0.9 and np.mean(ours_foot == (run_cls > 0)) >= 0.9, (run_cls, ours_pond)


def test_point_and_reference_layers_are_named_as_qgis_does(tmp_path):
    """Pools, negatives and the reference layer read one layer of a GeoPackage as ``file.gpkg|layername=NAME``; the
    points are those of that layer, and an unnamed layer of a two-layer file is refused with the syntax to use."""
    from geo.errors import RasterError
    from models.point_eval import read_points, read_reference

    gpkg = tmp_path / "kachin.gpkg"
    pools = [Point(98.30, 25.60), Point(98.31, 25.61)]
    gpd.GeoDataFrame({"id": [1, 2]}, geometry=pools, crs="EPSG:4326").to_file(gpkg, layer="pools", driver="GPKG")
    gpd.GeoDataFrame({"id": [1]}, geometry=[box(98.29, 25.59, 98.32, 25.62)], crs="EPSG:4326").to_file(
        gpkg, layer="predictions", driver="GPKG")
    got = read_points(Path(f"{gpkg}|layername=pools"), "pool")
    assert len(got.points) == 2 and got.name == "kachin:pools"
    ref = read_reference(Path(f"{gpkg}|layername=predictions"))
    assert len(ref) == 1 and ref.geometry.iloc[0].geom_type == "Polygon"
    with pytest.raises(RasterError, match=r"holds 2 layers \(pools, predictions\); name the one to read as .*"
                                          r"kachin.gpkg\|layername=predictions"):
        read_points(gpkg, "pool")
