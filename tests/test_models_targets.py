"""The shipped weights meet the issue's targets; `minewatch detect/evaluate/train` work end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from geo.bands import ANALYSIS_BANDS
from geo.stages.detect import FusionConfig, classify
from geo.stack import Composite
from models.data import real_negative_scenes, shared_data_dir, simulator_scene
from models.evaluate import evaluate_samples, format_report
from models.infer import DEFAULT_WEIGHTS, card_path, load_model

pytest.importorskip("geo.sim.scene")
HELD_OUT = range(200000, 200010)  # never used in training (card records the training seeds)


@pytest.fixture(scope="module")
def held_out():
    return [simulator_scene(s, 256) for s in HELD_OUT]


def test_shipped_weights_and_card():
    assert DEFAULT_WEIGHTS.exists()
    size = DEFAULT_WEIGHTS.stat().st_size
    assert 100_000 < size < 5_000_000
    card = json.loads(card_path(DEFAULT_WEIGHTS).read_text())
    assert card["bands"] == list(ANALYSIS_BANDS)
    assert card["classes"] == {"0": "background", "1": "cleared_land", "2": "leaching_pond"}
    assert len(card["normalization"]["mean"]) == 6 and len(card["normalization"]["std"]) == 6
    lo, hi = card["training_data"]["simulator_seeds"]
    assert not set(range(lo, hi)) & set(HELD_OUT)
    assert (Path(DEFAULT_WEIGHTS).parent / "MODEL_CARD.md").exists()
    model, c = load_model(device="cpu")
    assert c.version == card["version"]


@pytest.mark.parametrize("method", ["model", "fused"])
def test_heldout_simulator_iou_targets(held_out, method):
    """Legacy-simulator scenes. Weights 1.x were trained on this simulator alone (cleared IoU 0.88) and failed on
    an independent generator (issue 11); 2.0.0 sees it in a quarter of its chips and trades some of that fit
    (cleared IoU ~0.76-0.80) for soils, ponds and light it never saw (benchmarks/bench_robustness.py)."""
    rep = evaluate_samples(held_out, method=method, device="cpu")
    c = rep["classes"]
    assert c["leaching_pond"]["support"] > 500 and c["cleared_land"]["support"] > 3000
    assert c["leaching_pond"]["iou"] >= 0.8, format_report(rep)
    assert c["cleared_land"]["iou"] >= 0.7, format_report(rep)


@pytest.mark.parametrize("method,limit", [("fused", 0.001), ("model", 0.001), ("rules", 0.01)])
def test_real_no_mining_scenes_false_positive_area(method, limit):
    """Issue target: detected footprint area <= 0.1 % of each real no-mining scene held out from training:
    the Virginia scene (its two held-out windows, 2.5 Mpx) and Slovenia chip 4.

    Model 1.1.0 (trained with hard-negative mining on the training strip) flags ~0.004 % of the window with
    bright ploughed fields that are spectrally fresh laterite (1.0.0: ~0.11 %); each window is held to the
    0.1 % target too. The rules fallback is tuned to the simulator and flags ~0.26 % of the scene (dark
    marsh pools beside the same fields): bounded at 1 %."""
    scenes = real_negative_scenes(split="test")
    if not scenes:
        pytest.skip(f"shared data not found under {shared_data_dir()}")
    by_scene: dict[str, list[int]] = {}
    for s in scenes:
        valid = np.all(np.isfinite(s.data), axis=0)
        comp = Composite(s.data, np.where(valid, 2, 0).astype(np.uint16), s.bands, s.grid)
        det = classify(comp, method=method, config=None if method == "rules" else FusionConfig(device="cpu"))
        hit = int(((det.classes > 0) & valid).sum())
        assert hit / valid.sum() <= limit, f"{s.name}: {hit / valid.sum():.4%} detected"
        key = s.name.split("_rows")[0]
        tot = by_scene.setdefault(key, [0, 0])
        tot[0] += hit
        tot[1] += int(valid.sum())
    assert by_scene["virginia"][1] > 2_000_000  # both held-out windows are in
    for key, (hit, total) in by_scene.items():
        assert hit / total <= limit, f"{key}: {hit / total:.4%} of the scene detected"


def _write_dn_tif(path: Path, scene, *, offset: int = 0, tag: bool = True, extra_band: bool = True):
    import rasterio

    dn = np.round(scene.data * 10000 - offset).clip(1, 65535).astype("uint16")
    bands = list(scene.bands)
    if extra_band:  # an extra band (ignored) and a shuffled order: read by description, not position
        dn = np.concatenate([dn[::-1], dn[:1]])
        bands = bands[::-1] + ["B01"]
    with rasterio.open(path, "w", driver="GTiff", width=scene.grid.width, height=scene.grid.height, count=len(bands),
                       dtype="uint16", crs=scene.grid.crs, transform=scene.grid.transform, nodata=0) as dst:
        dst.write(dn)
        for i, b in enumerate(bands, 1):
            dst.set_band_description(i, b)
        if tag and offset:
            dst.update_tags(offset=str(offset))


def test_cli_detect_geojson_gpkg_raster(tmp_path, held_out):
    import geopandas as gpd
    import rasterio

    from geo.cli.main import cli

    from click.testing import CliRunner

    scene, truth = held_out[0]
    tif = tmp_path / "scene.tif"
    _write_dn_tif(tif, scene, offset=-1000)
    out = tmp_path / "fp.geojson"
    r = CliRunner().invoke(cli, ["detect", str(tif), "--out", str(out), "--raster", str(tmp_path / "c.tif"),
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    gdf = gpd.read_file(out)
    assert gdf.crs.to_epsg() == 4326
    assert {"class", "area_m2", "confidence_pct"} <= set(gdf.columns)
    assert set(gdf["class"]) <= {1, 2} and (gdf["area_m2"] > 0).all()
    # area agrees with the truth footprint within 25 %
    truth_area = (truth > 0).sum() * 100.0
    assert abs(gdf["area_m2"].sum() - truth_area) / truth_area < 0.25
    with rasterio.open(tmp_path / "c.tif") as src:
        classes = src.read(1)
        assert src.crs == scene.grid.crs and src.descriptions[0] == "class"
    assert (((classes > 0) & (truth > 0)).sum() / ((classes > 0) | (truth > 0)).sum()) > 0.7
    # same image without the offset tag but with --offset: same answer; GPKG by extension
    tif2 = tmp_path / "scene2.tif"
    _write_dn_tif(tif2, scene, offset=-1000, tag=False)
    r = CliRunner().invoke(cli, ["detect", str(tif2), "--out", str(tmp_path / "fp.gpkg"), "--offset", "-1000",
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    g2 = gpd.read_file(tmp_path / "fp.gpkg")
    assert g2.crs == scene.grid.crs
    assert g2["area_m2"].sum() == pytest.approx(gdf["area_m2"].sum(), rel=1e-3)


def test_cli_detect_errors(tmp_path, held_out):
    from click.testing import CliRunner

    from geo.cli.main import cli

    scene, _ = held_out[1]
    tif = tmp_path / "s.tif"
    _write_dn_tif(tif, scene)
    r = CliRunner().invoke(cli, ["detect", str(tif), "--out", str(tmp_path / "x.shp")])
    assert r.exit_code == 2 and ".geojson or .gpkg" in r.output
    r = CliRunner().invoke(cli, ["detect", str(tif), "--out", str(tmp_path / "x.geojson"),
                                 "--weights", str(tmp_path / "none.pt")])
    assert r.exit_code == 5 and "not found" in r.output


def test_cli_evaluate_on_simulator(tmp_path):
    from click.testing import CliRunner

    from geo.cli.main import cli

    r = CliRunner().invoke(cli, ["evaluate", "--sim-seeds", "200100:200102", "--method", "fused", "--device", "cpu",
                                 "--json", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    assert "leaching_pond" in r.output and "confusion matrix" in r.output
    rep = json.loads((tmp_path / "r.json").read_text())
    assert sum(map(sum, rep["confusion_matrix"]["counts"])) == 2 * 256 * 256


def test_fused_nan_pixels_and_band_order(held_out):
    scene, truth = held_out[2]
    data = scene.data.copy()
    data[:, 40:90, 40:90] = np.nan
    clear = np.full(truth.shape, 3, np.uint16)
    clear[40:90, 40:90] = 0
    det = classify(Composite(data, clear, scene.bands, scene.grid), method="fused", config=FusionConfig(device="cpu"))
    assert (det.classes[40:90, 40:90] == 0).all() and (det.confidence[40:90, 40:90] == 0).all()
    assert det.confidence.dtype == np.float32 and 0 <= det.confidence.min() and det.confidence.max() <= 1
    # a composite in another band order gives the same map (bands are matched by name, not position)
    order = [5, 3, 1, 0, 2, 4]
    rev = Composite(data[order], clear, tuple(scene.bands[i] for i in order), scene.grid)
    det2 = classify(rev, method="fused", config=FusionConfig(device="cpu"))
    np.testing.assert_array_equal(det.classes, det2.classes)


@pytest.mark.parametrize("case", ["garbage", "empty", "outside"])
def test_cli_evaluate_bad_labels_are_one_error_line(tmp_path, held_out, case):
    from click.testing import CliRunner

    from geo.cli.main import cli

    scene, _ = held_out[0]
    tif = tmp_path / "scene.tif"
    _write_dn_tif(tif, scene)
    lab = tmp_path / "labels.geojson"
    if case == "garbage":
        lab.write_text("{ this is not json")
    elif case == "empty":
        lab.write_text('{"type": "FeatureCollection", "features": []}')
    else:  # a pond in the Atlantic, far from the scene
        lab.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"class": 2}, '
                       '"geometry": {"type": "Point", "coordinates": [-30.0, 10.0]}}]}')
    r = CliRunner().invoke(cli, ["evaluate", "--image", str(tif), "--labels", str(lab), "--device", "cpu"])
    assert r.exit_code in (2, 4), r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in r.output, r.output
    assert str(lab) in lines[0]


def test_cli_evaluate_labelled_image(tmp_path, held_out):
    """`evaluate --image --labels`: labels burnt on the image grid, unlabelled pixels count as background."""
    from click.testing import CliRunner
    from shapely.geometry import box, mapping

    from geo.aoi import reproject_geometry
    from geo.cli.main import cli

    scene, truth = held_out[0]
    tif = tmp_path / "scene.tif"
    _write_dn_tif(tif, scene)
    g = scene.grid
    x0, y1 = g.transform * (0, 0)
    square = box(x0, y1 - 200, x0 + 200, y1)  # the top-left 20×20 px
    geom = reproject_geometry(square, g.crs, "EPSG:4326")
    lab = tmp_path / "labels.geojson"
    lab.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"class": 2}, "geometry": mapping(geom)}]}))
    r = CliRunner().invoke(cli, ["evaluate", "--image", str(tif), "--labels", str(lab), "--device", "cpu",
                                 "--json", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "r.json").read_text())
    counts = np.asarray(rep["confusion_matrix"]["counts"])
    assert counts.sum() == truth.size
    assert 350 <= counts[2].sum() <= 450  # ≈ 400 labelled pond pixels (edges reprojected through EPSG:4326)
