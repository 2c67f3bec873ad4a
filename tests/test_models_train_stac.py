"""`minewatch train` with ``[[scenes]]``: labels over STAC-found scenes.

A small simulated Sentinel-2 L2A archive (geo.sim.demo: COGs, Earth Search-shaped items, truth class maps) is
served by real servers on 127.0.0.1: ``rustac serve`` for the STAC API and RangeHTTPServer for the COGs, each
behind a counting :class:`servers.FaultProxy`. Labels come from the simulator's truth. The tests check what the
trainer saw, the model card, the composite against the one ``minewatch run`` stores, the cache (a rerun makes
no request at all), and every refused input (one ``Error:`` line, a documented exit code, no weights written).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from shapely.geometry import Point

from geo.aoi import analysis_grid, read_aoi
from geo.cli.main import cli
from geo.sim.demo import write_demo_dataset
from geo.grid import GeoGrid
from geo.sim.scene import SimConfig
from geo.stages.vectorize import polygonize
from models.data import rasterize_labels

SIM = SimConfig(seed=5, width=160, height=160, margin=10, start_year=2021, end_year=2023, acquisitions_per_season=2,
                initial_sites=3, new_sites_per_season=1, abandoned_sites=0, site_gap_m=100.0)
WINTER_23 = "2023-11-01/2024-04-30"  # two scenes, one of them cloud-free
WINTER_21 = "2021-11-01/2022-04-30"  # two cloudy scenes
WINTER_22 = "2022-11-01/2023-04-30"  # one scene, 36 % cloud
TRAIN = '[train]\nsteps = 2\nbatch_size = 2\ncrop = 32\nwidths = [8, 12, 16]\nthreads = 1\n'
SECRET = "s3cret-pw"


# -- fixtures ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("stac-train-archive"), config=SIM)


def _truth(archive, label: str) -> tuple[np.ndarray, GeoGrid]:
    with rasterio.open(archive.truth_dir / f"classmap_{label}.tif") as src:
        return src.read(1), GeoGrid(src.crs, src.transform, src.width, src.height)


@pytest.fixture(scope="module")
def labels(archive, tmp_path_factory):
    """Polygons of the 2023-24 truth (GPKG, UTM) and points inside the 2021-22 truth ponds (GeoJSON, lon/lat)."""
    root = tmp_path_factory.mktemp("stac-train-labels")
    truth, grid = _truth(archive, "2023-24")
    polys = polygonize(truth, grid)
    polys.to_file(root / "winter23.gpkg", driver="GPKG")
    truth21, grid21 = _truth(archive, "2021-22")
    ponds = polygonize(truth21, grid21)
    ponds = ponds[ponds["class"] == 2]
    left, bottom, right, top = grid21.bounds
    pts = [p.representative_point() for p in ponds.geometry]
    pts = [p for p in pts if min(p.x - left, right - p.x, p.y - bottom, top - p.y) > 60]
    assert len(pts) >= 3
    gpd.GeoDataFrame({"class": ["leaching_pond"] * len(pts)}, geometry=pts, crs=grid21.crs).to_crs(4326).to_file(
        root / "ponds21.geojson", driver="GeoJSON")
    return SimpleNamespace(root=root, polygons=root / "winter23.gpkg", points=root / "ponds21.geojson",
                           truth23=truth)


@pytest.fixture(scope="module")
def stac(archive, tmp_path_factory):
    """The archive behind rustac serve (API) and RangeHTTPServer (COGs), each behind a counting proxy."""
    from servers import FaultProxy, RangeServer, RustacServer, free_port, rustac_binary

    if rustac_binary() is None:
        pytest.skip("rustac binary not found; install the dev extra (pip install rustac)")
    pytest.importorskip("RangeHTTPServer")
    root = tmp_path_factory.mktemp("stac-train-api")
    doc = json.loads(archive.items_path.read_text())
    with RangeServer(archive.root) as rs, FaultProxy(rs.url) as files:
        for f in doc["features"]:
            for a in f["assets"].values():
                a["href"] = files.url + "/" + str(Path(a["href"]).resolve().relative_to(archive.root.resolve()))
        items = root / "items_http.json"
        items.write_text(json.dumps(doc))
        port = free_port()
        with FaultProxy(f"http://127.0.0.1:{port}") as api, RustacServer([items], public_url=api.url, port=port):
            # the COGs are on another port than the API: scenes on this API vouch for it (asset_hosts)
            TRUSTED[api.url] = files.url.split("://", 1)[1]
            yield SimpleNamespace(url=api.url, api=api, files=files, items=doc["features"])
            TRUSTED.pop(api.url, None)


@pytest.fixture
def served(stac):
    stac.api.reset_counts()
    stac.files.reset_counts()
    return stac


def _ids_in(items, interval: str) -> list[str]:
    """Ids of the items acquired within ``interval``, in acquisition order (as the card lists them)."""
    start, end = interval.split("/")
    inside = [f for f in items if start <= f["properties"]["datetime"][:10] <= end]
    return [f["id"] for f in sorted(inside, key=lambda f: f["properties"]["datetime"])]


#: API URL → the host:port of its COG server, added as ``asset_hosts`` to scenes on that API.
TRUSTED: dict[str, str] = {}


def _scene(stac_url: str, labels: Path, datetime: str, area: str, **extra) -> str:
    extra = {"max_cloud": 100, **extra}
    trusted = [h for url, h in TRUSTED.items() if url.split("://", 1)[1] in stac_url]
    if trusted and "asset_hosts" not in extra:
        extra["asset_hosts"] = trusted
    lines = [f'stac = "{stac_url}"', f'datetime = "{datetime}"', area, f'labels = "{labels}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "[[scenes]]\n" + "\n".join(lines) + "\n"


def _config(tmp_path: Path, *scenes: str, name: str = "train.toml") -> Path:
    p = tmp_path / name
    p.write_text('output = "out/model.pt"\ninit = "none"\n' + "".join(scenes) + TRAIN)
    return p


def _train(config: Path):
    return CliRunner().invoke(cli, ["-q", "train", "--config", str(config)])


def _bbox_of(archive, inset_deg: float = 0.0) -> str:
    w, s, e, n = read_aoi(archive.aoi_path).bbox
    return f"bbox = [{w + inset_deg}, {s + inset_deg}, {e - inset_deg}, {n - inset_deg}]"


# -- training over a real STAC API ------------------------------------------------------------------

def test_train_on_stac_scenes_card_labels_and_cache(archive, labels, served, tmp_path, monkeypatch, caplog):
    import models.train_job as mt

    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real_train = mt.train

    def spy(samples, *a, **kw):
        seen[:] = [(x.copy(), y.copy()) for x, y in samples]
        return real_train(samples, *a, **kw)

    monkeypatch.setattr(mt, "train", spy)
    host = served.url.split("://", 1)[1]
    secret_url = f"http://reader:{SECRET}@{host}/?token={SECRET}"
    cfg = _config(tmp_path,
                  _scene(secret_url, labels.polygons, WINTER_23, _bbox_of(archive)),
                  _scene(served.url, labels.points, WINTER_21, f'aoi = "{archive.aoi_path}"', point_radius_m=15,
                         unlabelled="ignore"))
    caplog.set_level(logging.DEBUG)
    t0 = time.perf_counter()
    r = _train(cfg)
    first_s = time.perf_counter() - t0
    assert r.exit_code == 0, r.output
    assert SECRET not in caplog.text and SECRET not in r.output, "credentials never reach the logs"
    caplog.clear()
    assert served.api.log and served.files.log, "the first run must search the API and read the COGs"
    weights, card_path = tmp_path / "out" / "model.pt", tmp_path / "out" / "model.json"
    assert weights.stat().st_size > 0
    card_text = card_path.read_text()
    assert SECRET not in card_text and "token=" not in card_text and "reader" not in card_text
    card = json.loads(card_text)
    scenes = card["training_data"]["scenes"]
    assert [s["stac"] for s in scenes] == [served.url, served.url]  # credentials and query removed
    assert [s["datetime"] for s in scenes] == [WINTER_23, WINTER_21]
    assert scenes[0]["items"] == _ids_in(served.items, WINTER_23)
    assert scenes[1]["items"] == _ids_in(served.items, WINTER_21)
    assert scenes[0]["collection"] == "sentinel-2-l2a" and scenes[1]["aoi"] == str(archive.aoi_path)
    assert card["training"]["n_samples"] == 2

    # scene 0 (bbox, cloud-free scene in the winter): every truth pixel is labelled, on the 10 m UTM grid
    grid0 = GeoGrid.from_dict(scenes[0]["grid"])
    assert grid0.crs.to_epsg() == 32647 and grid0.resolution == 10.0
    want = np.bincount(labels.truth23.ravel(), minlength=3)
    assert scenes[0]["labelled_px"]["cleared_land"] == want[1] > 100
    assert scenes[0]["labelled_px"]["leaching_pond"] == want[2] > 20
    # scene 1 (AOI file, point labels): the rasterised discs, minus pixels no scene saw clear
    grid1 = analysis_grid(read_aoi(archive.aoi_path))
    assert scenes[1]["grid"] == grid1.to_dict()
    raw = rasterize_labels(labels.points, grid1, point_radius_m=15)
    cache = sorted((tmp_path / "out" / "scene_cache").glob("scene-*.npz"))
    assert len(cache) == 2
    by_dt = {}
    for p in cache:
        with np.load(p) as z:
            by_dt[json.loads(str(z["meta"]))["datetime"]] = (z["data"].copy(), z["clear_count"].copy())
    clear1 = by_dt[WINTER_21][1] > 0
    assert scenes[1]["labelled_px"]["leaching_pond"] == int(((raw == 2) & clear1).sum()) > 0
    assert scenes[1]["labels_without_clear_px"] == int(((raw == 2) & ~clear1).sum())
    assert scenes[1]["labelled_px"]["cleared_land"] == scenes[1]["labelled_px"]["background"] == 0  # "ignore"
    assert scenes[0]["labelled_px"]["background"] > 0 and scenes[0]["unlabelled"] == "background"

    # what the trainer was given: the same counts, finite reflectance wherever a label counts
    assert len(seen) == 2
    for (x, y), rec, g in zip(seen, scenes, (grid0, grid1)):
        assert x.shape == (6, *g.shape) and y.shape == g.shape
        for k, name in enumerate(("background", "cleared_land", "leaching_pond")):
            assert int((y == k).sum()) == rec["labelled_px"][name]
        assert int((y == 255).sum()) == rec["ignored_px"]
        assert np.isfinite(x[:, y != 255]).all()
    assert not list((tmp_path / "out" / "scene_cache").glob("windows-*")), "window caches are removed"

    # a rerun reads the cached composites: not one request to the API or the COG server
    served.api.reset_counts()
    served.files.reset_counts()
    caplog.set_level(logging.INFO, logger="models.stac_scenes")
    t0 = time.perf_counter()
    r = _train(cfg)
    assert r.exit_code == 0, r.output
    assert served.api.log == [] and served.files.log == []
    assert sum("composite cache hit" in m for m in caplog.messages) == 2
    again = json.loads(card_path.read_text())["training_data"]["scenes"]
    assert [s["items"] for s in again] == [s["items"] for s in scenes]
    assert [s["labelled_px"] for s in again] == [s["labelled_px"] for s in scenes]
    print(f"first run {first_s:.1f} s, cached rerun {time.perf_counter() - t0:.1f} s")


def test_scene_composite_equals_run_composite(archive, labels, served, tmp_path):
    """The training composite is the composite `minewatch run` stores for the same AOI and season."""
    cfg = _config(tmp_path, _scene(served.url, labels.points, WINTER_21, f'aoi = "{archive.aoi_path}"'))
    r = _train(cfg)
    assert r.exit_code == 0, r.output
    (cached,) = (tmp_path / "out" / "scene_cache").glob("scene-*.npz")
    with np.load(cached) as z:
        data, count = z["data"], z["clear_count"]
    trust = tmp_path / "trust.toml"
    trust.write_text(f'[search]\nasset_hosts = ["{TRUSTED[served.url]}"]\n')
    r = CliRunner().invoke(cli, ["-q", "run", "--aoi", str(archive.aoi_path), "--start", "2021", "--end", "2021",
                                 "--stac-url", served.url, "--max-cloud", "100", "--method", "rules", "--sync",
                                 "--out", str(tmp_path / "run"), "--config", str(trust)])
    assert r.exit_code == 0, r.output
    (task,) = (tmp_path / "run" / "tasks" / "2021-22").iterdir()
    with rasterio.open(task / "composite.tif") as src:
        stored = src.read()
    with rasterio.open(task / "clear_count.tif") as src:
        assert (src.read(1) == count).all()
    assert 0 < (count == 0).sum() < count.size, "a cloudy season: some pixels have no clear observation"
    dn = np.clip(np.round(np.nan_to_num(data * 10000.0, nan=0.0)), 1, 65535).astype(np.uint16) * (count > 0)
    assert stored.shape == dn.shape and (stored == dn).all()


# -- refused inputs: one Error line, documented exit code, nothing written ----------------------------

def _refused(r, code: int, *needles: str) -> str:
    assert r.exit_code == code, (r.exit_code, r.output, r.exception)
    err = r.stderr
    assert "Traceback" not in r.output
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    for n in needles:
        assert n.lower() in lines[0].lower(), lines[0]
    return lines[0]


BAD_CONFIG = {  # scene-table override -> (exit code, words of the message); no network needed
    "both-bbox-and-aoi": ({"aoi": "AOI"}, 2, ["both bbox and aoi", "keep one"]),
    "neither-bbox-nor-aoi": ({"bbox": None}, 2, ["needs the area", "bbox = [west, south, east, north]"]),
    "bbox-three-numbers": ({"bbox": [98.31, 25.66, 98.33]}, 2, ["bbox must be 4 numbers"]),
    "bbox-west-east-swapped": ({"bbox": [98.33, 25.66, 98.31, 25.68]}, 2, ["west >= east"]),
    "bbox-projected": ({"bbox": [431000, 2838400, 432600, 2840000]}, 2, ["outside longitude/latitude", "degrees"]),
    "bbox-not-numbers": ({"bbox": ["a", "b", "c", "d"]}, 2, ["must be a number"]),
    "bbox-polar": ({"bbox": [10.0, 84.5, 10.1, 84.6]}, 2, ["80°S–84°N"]),
    "bbox-too-large": ({"bbox": [97.0, 25.0, 98.0, 26.0]}, 2, ["km² limit", "split it into several [[scenes]]"]),
    "datetime-not-an-interval": ({"datetime": "last winter"}, 2, ["datetime", "START/END"]),
    "datetime-bad-date": ({"datetime": "2023-13-01/2024-04-30"}, 2, ["malformed date", "YYYY-MM-DD"]),
    "datetime-end-before-start": ({"datetime": "2024-04-30/2023-11-01"}, 2,
                                  ["scenes[0].datetime: period '2024-04-30/2023-11-01' ends (2023-11-01) before it "
                                   "starts (2024-04-30)"]),
    "datetime-missing": ({"datetime": None}, 2, ["needs stac, datetime and labels", "datetime"]),
    "labels-missing-file": ({"labels": "nowhere.geojson"}, 2, ["does not exist", "GeoJSON/GPKG"]),
    "unknown-key": ({"colour": "red"}, 2, ["unknown key", "colour"]),
    "max-cloud-out-of-range": ({"max_cloud": 150}, 2, ["percentage (0–100)"]),
    "limit-zero": ({"limit": 0}, 2, ["limit must be a whole number >= 1"]),
    "aoi-points-only": ({"bbox": None, "aoi": "POINTS"}, 2, ["scenes[0].aoi: AOI file", "no polygons",
                                                           "must be one or more polygons"]),
    "stac-unknown-scheme": ({"stac": "s3://bucket/catalog"}, 3,
                            ["scenes[0].stac", "uses scheme 's3'", "http(s) STAC API URL"]),
    "labels-outside-scene": ({"bbox": [97.80, 25.60, 97.84, 25.64]}, 2,
                             ["no label", "inside the scene's area", "the labels span lon 98.",
                              "check the labels' CRS and the bbox/aoi"]),
    "labels-unreadable": ({"labels": "EMPTY"}, 4, ["cannot read labels", "GeoJSON/GPKG"]),
}


@pytest.mark.parametrize("case", list(BAD_CONFIG))
def test_bad_scene_config(case, archive, labels, served, tmp_path):
    change, code, needles = BAD_CONFIG[case]
    w, s, e, n = read_aoi(archive.aoi_path).bbox
    table = {"stac": served.url, "datetime": WINTER_23, "bbox": [w, s, e, n], "labels": str(labels.polygons)}
    for k, v in change.items():
        if v is None:
            table.pop(k)
        elif v == "AOI":
            table[k] = str(archive.aoi_path)
        elif v == "EMPTY":
            (tmp_path / "empty.geojson").write_bytes(b"")
            table[k] = str(tmp_path / "empty.geojson")
        elif v == "POINTS":
            pts = tmp_path / "points.geojson"
            pts.write_text(json.dumps({"type": "FeatureCollection", "features": [
                {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [w, s]}}]}))
            table[k] = str(pts)
        else:
            table[k] = v
    body = "[[scenes]]\n" + "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n" for k, v in table.items())
    cfg = tmp_path / "bad.toml"
    cfg.write_text('output = "out/model.pt"\ninit = "none"\n' + body + TRAIN, encoding="utf-8")
    _refused(_train(cfg), code, *needles)
    assert served.api.log == [] and served.files.log == [], "refused before any request"
    assert not (tmp_path / "out" / "model.pt").exists()


def test_no_items_for_the_search(labels, served, tmp_path, archive):
    cfg = _config(tmp_path, _scene(served.url, labels.polygons, "2019-11-01/2020-04-30", _bbox_of(archive)))
    _refused(_train(cfg), 6, "no Sentinel-2 scenes found", "widen datetime")
    assert served.api.log and not served.files.log
    assert not (tmp_path / "out" / "model.pt").exists()


def test_every_scene_over_max_cloud(labels, served, tmp_path, archive):
    cfg = _config(tmp_path, _scene(served.url, labels.polygons, WINTER_21, _bbox_of(archive), max_cloud=10))
    _refused(_train(cfg), 6, "no Sentinel-2 scenes found", "under 10% cloud", "raise max_cloud")


def test_unknown_collection(labels, served, tmp_path, archive):
    cfg = _config(tmp_path, _scene(served.url, labels.polygons, WINTER_23, _bbox_of(archive),
                                   collection="landsat-c2-l2"))
    _refused(_train(cfg), 3, "has no collection 'landsat-c2-l2'", "sentinel-2-l2a")


def test_unreachable_stac_url(labels, tmp_path, archive, monkeypatch):
    from geo.sources import providers
    from geo.sources.remote import RetryPolicy
    from servers import free_port

    monkeypatch.setattr(providers, "DEFAULT_POLICY", RetryPolicy(attempts=2, backoff_s=0.01, timeout_s=2))
    url = f"http://nobody:{SECRET}@127.0.0.1:{free_port()}/v1"  # nothing listens there
    cfg = _config(tmp_path, _scene(url, labels.polygons, WINTER_23, _bbox_of(archive)))
    line = _refused(_train(cfg), 3, "failed after 2 tries", "check the URL and your network")
    assert SECRET not in line
    assert not (tmp_path / "out" / "model.pt").exists()


def test_labels_only_on_cloudy_pixels(archive, served, tmp_path):
    """Labels placed where the season's only scene is cloud: nothing left to learn from them."""
    (item,) = [f for f in served.items if f["id"] in _ids_in(served.items, WINTER_22)]
    scl_path = archive.root / "scenes" / item["id"] / "SCL.tif"
    with rasterio.open(scl_path) as src:
        scl, tr = src.read(1), src.transform
    cloudy = np.isin(scl, (3, 8, 9, 10))
    block = cloudy[:-4, :-4].copy()  # a 5 x 5 block (100 m) of cloud
    for dr in range(5):
        for dc in range(5):
            block &= cloudy[dr:dr + scl.shape[0] - 4, dc:dc + scl.shape[1] - 4]
    rows, cols = np.nonzero(block[10:-10, 10:-10])
    assert rows.size, "the 2022-23 scene has a cloud"
    r, c = rows[rows.size // 2] + 10 + 2, cols[rows.size // 2] + 10 + 2
    x, y = rasterio.transform.xy(tr, r, c)
    pts = tmp_path / "cloudy.gpkg"
    gpd.GeoDataFrame({"class": [2]}, geometry=[Point(x, y)], crs=32647).to_file(pts, driver="GPKG")
    cfg = _config(tmp_path, _scene(served.url, pts, WINTER_22, f'aoi = "{archive.aoi_path}"', point_radius_m=15))
    _refused(_train(cfg), 6, "every labelled pixel", "no scene of 2022-11-01/2023-04-30 has a clear observation")


def test_every_scene_cloudy(archive, labels, tmp_path):
    """A local ItemCollection whose SCL says cloud everywhere: no clear pixel to composite."""
    doc = json.loads(archive.items_path.read_text())
    src_scl = Path(doc["features"][0]["assets"]["scl"]["href"])
    with rasterio.open(src_scl) as src:
        prof = src.profile
        prof.update(driver="GTiff")
        prof.pop("blocksize", None)
        with rasterio.open(tmp_path / "cloud.tif", "w", **prof) as dst:
            dst.write(np.full((src.height, src.width), 9, np.uint8), 1)
    for f in doc["features"]:
        f["assets"]["scl"]["href"] = str(tmp_path / "cloud.tif")
    (tmp_path / "items.json").write_text(json.dumps(doc))
    cfg = _config(tmp_path, _scene("items.json", labels.polygons, WINTER_23, _bbox_of(archive)))
    _refused(_train(cfg), 6, "has a clear, valid pixel", "widen datetime")
    assert not list((tmp_path / "out" / "scene_cache").glob("scene-*.npz")), "nothing cached for a failed scene"
