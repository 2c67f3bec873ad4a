"""Probe A: AOI files, item files and COGs that gave a traceback or a wrong result with exit 0.

Each bad input must give ONE ``Error:`` line, its documented exit code (AOI 2, catalogue 3, raster 4) and no
traceback, through the real ``minewatch`` command (in-process); a few checks call the module underneath. Runs use
the small simulated archive of tests/test_bad_inputs.py (written once per module, copied and broken per case).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pystac
import pytest
import rasterio
from affine import Affine

from geo.aoi import read_aoi
from geo.cli.main import main
from geo.errors import RasterError
from geo.periods import Period
from geo.sim.demo import write_demo_dataset
from geo.sources.assets import expect_for
from geo.sources import stac as stac_mod
from tests.test_bad_inputs import END, SMALL, SQUARE, START, aoi_file, catalogue, one_line_error, poly


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("probe-aoi-items-archive"), config=SMALL)


def cli(args: list, capsys) -> tuple[int, str]:
    """``minewatch -q ARGS`` in-process: (exit code, the one error line; fails on a traceback or other output)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["-q", *map(str, args)])
    return exc.value.code, one_line_error(capsys.readouterr().err)


def run_args(ds, out: Path, items=None, aoi=None) -> list:
    return ["run", "--aoi", aoi or ds.aoi_path, "--start", START, "--end", END, "--out", out,
            "--stac-url", items or ds.items_path, "--method", "rules", "--sync"]


def _first(mutate):
    """``mutate`` applied to the first item only (the ``catalogue`` helper applies it to every item)."""
    seen = []

    def once(it):
        if not seen:
            seen.append(it["id"])
            mutate(it)
    return once


# -- 1. AOI files (exit 2) -----------------------------------------------------------------------

def _with(doc_edit):
    def write(tmp_path: Path) -> Path:
        path = aoi_file(tmp_path, SQUARE)
        doc = json.loads(path.read_text())
        doc_edit(doc)
        path.write_text(json.dumps(doc))
        return path
    return write


def _nan(tmp_path: Path) -> Path:
    path = aoi_file(tmp_path, SQUARE)
    path.write_text(path.read_text().replace("98.32", "NaN", 1))
    return path


def _swapped(tmp_path: Path) -> Path:
    return aoi_file(tmp_path, poly(*[[y, x] for x, y in SQUARE["coordinates"][0]]))


def _feature0(key, value):
    return _with(lambda d: d["features"][0].__setitem__(key, value))


AOI_CASES = {
    "crs-is-a-string": (_with(lambda d: d.__setitem__("crs", "EPSG:32647")), "declares CRS 'EPSG:32647'",
                        "re-export it in EPSG:4326"),
    "crs-is-a-list": (_with(lambda d: d.__setitem__("crs", ["x"])), "'crs' member that is no CRS object",
                      "delete it"),
    "crs-properties-string": (_with(lambda d: d.__setitem__("crs", {"type": "name", "properties": "EPSG:32647"})),
                              "declares CRS 'EPSG:32647'", "re-export it in EPSG:4326"),
    "properties-string": (_feature0("properties", "hello"), "has properties 'hello', not a JSON object",
                          "make them an object"),
    "properties-list": (_feature0("properties", [1, 2]), "has properties '[1, 2]', not a JSON object",
                        "make them an object"),
    "circle": (_feature0("geometry", {"type": "Circle", "coordinates": [98.3, 25.6]}),
               "malformed geometry (Unknown geometry type: 'circle')", "Polygon or MultiPolygon"),
    "nan-coordinate": (_nan, "not a finite number (NaN or Infinity)", "fix its coordinates"),
    "lat-lon-swapped": (_swapped, "look swapped", "swap each pair"),
}


@pytest.mark.parametrize("case", list(AOI_CASES))
def test_bad_aoi_gives_one_line_exit_2(case, tmp_path, capsys):
    write, cause, fix = AOI_CASES[case]
    path = write(tmp_path)
    code, line = cli(["run", "--aoi", path, "--start", START, "--end", END, "--out", tmp_path / "run",
                      "--stac-url", tmp_path / "never-read.json"], capsys)
    assert code == 2, line
    assert cause in line and fix in line, line
    assert "look projected" not in line  # a swapped pair is named as such
    assert not (tmp_path / "run").exists()


def test_aoi_with_utf8_bom_reads_like_without(tmp_path):
    plain = aoi_file(tmp_path, SQUARE, name="plain.geojson")
    bom = tmp_path / "bom.geojson"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    a, b = read_aoi(plain), read_aoi(bom)
    assert b.geometry.equals(a.geometry) and b.name == "t"


# -- 2. item files: no type, an id that is no string (exit 3) -------------------------------------

@pytest.mark.parametrize("mutate,cause", [
    (lambda it: it.pop("type"), "is no valid STAC item (JSON (id = "),
    (lambda it: it.__setitem__("id", 12345), "has id 12345, not a non-empty string"),
    (lambda it: it.__setitem__("id", None), "has id null, not a non-empty string"),
    (lambda it: it.__setitem__("id", "  "), "not a non-empty string"),
], ids=["no-type", "int-id", "null-id", "blank-id"])
def test_bad_item_gives_one_line_exit_3(ds, tmp_path, capsys, mutate, cause):
    items = catalogue(ds, tmp_path, _first(mutate))
    code, line = cli(run_args(ds, tmp_path / "run", items), capsys)
    assert code == 3, line
    assert cause in line and "regenerate the file" in line, line


# -- 3. a COG contradicting its item's proj:shape / proj:transform (exit 4, not 0) -----------------

def _rewrite(src: Path, dst: Path, *, shift_m: float = 0.0, size: int | None = None) -> None:
    with rasterio.open(src) as r:
        prof, arr = r.profile, r.read()
    if size:  # the top-left size × size pixels, same origin and pixel size
        arr = arr[:, :size, :size]
        prof.update(width=size, height=size, tiled=False)
        prof.pop("blockxsize", None), prof.pop("blockysize", None)
    prof["transform"] = Affine.translation(shift_m, 0) @ prof["transform"]
    with rasterio.open(dst, "w", **prof) as w:
        w.write(arr)


def _set_red(ds, tmp_path: Path, **kw) -> Path:
    """The first item's red band replaced by ``_rewrite(**kw)`` of it; the item still states the original."""
    def mutate(it):
        src = Path(it["assets"]["red"]["href"])
        dst = tmp_path / "assets" / it["id"] / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        _rewrite(src, dst, **kw)
        it["assets"]["red"]["href"] = str(dst)
    return catalogue(ds, tmp_path, _first(mutate))  # one scene: the others keep the run going


@pytest.mark.parametrize("kw,said", [
    ({"shift_m": 100_000.0}, "proj:transform"),
    ({"size": 100}, "proj:shape"),
], ids=["shifted-100km", "100px-subset"])
def test_cog_contradicting_item_footprint_is_refused(ds, tmp_path, capsys, kw, said):
    """Before: the scene was silently lost (or cut) and the season's area changed, exit 0."""
    items = _set_red(ds, tmp_path, **kw)
    code, line = cli(run_args(ds, tmp_path / "run", items), capsys)
    assert code == 4, line
    assert "asset 'red'" in line and said in line and "reading it would change the results" in line, line


def _item(ds) -> pystac.Item:
    return pystac.Item.from_dict(json.loads(ds.items_path.read_text())["features"][0])


def test_footprint_check_passes_the_untouched_files_and_catches_the_changed_ones(ds, tmp_path):
    it = _item(ds)
    for key in ("red", "swir16", "scl"):  # 10 m and 20 m assets, each against its own proj:shape/transform
        a = it.assets[key]
        exp = expect_for(it, a, "scl" if key == "scl" else "reflectance", key)
        assert exp.shape is not None and exp.transform is not None
        with rasterio.open(a.href) as src:
            exp.check(src, a.href)
    red = it.assets["red"]
    for kw in ({"shift_m": 30.0}, {"size": 50}):
        dst = tmp_path / f"red-{next(iter(kw))}.tif"
        _rewrite(Path(red.href), dst, **kw)
        with rasterio.open(dst) as src, pytest.raises(RasterError, match="asset 'red' of item"):
            expect_for(it, red, "reflectance", "red").check(src, str(dst))


def test_item_level_proj_fields_apply_only_at_their_resolution(ds):
    """A 20 m band must not be held to the item's 10 m proj:shape/transform (nor checked at all without them)."""
    it = _item(ds)
    ten = dict(it.assets["red"].extra_fields)
    it.properties["proj:shape"], it.properties["proj:transform"] = ten["proj:shape"], ten["proj:transform"]
    for key in ("red", "swir16"):
        for f in ("proj:shape", "proj:transform"):
            it.assets[key].extra_fields.pop(f)
    red, swir = expect_for(it, it.assets["red"], key="red"), expect_for(it, it.assets["swir16"], key="swir16")
    assert red.shape == tuple(ten["proj:shape"]) and red.transform == tuple(float(v) for v in ten["proj:transform"])
    assert swir.shape is None and swir.transform is None
    with rasterio.open(it.assets["swir16"].href) as src:
        swir.check(src, it.assets["swir16"].href)


# -- 4. unusable footprints: local refused (exit 3), API dropped with a WARNING ----------------------

@pytest.mark.parametrize("mutate,cause", [
    (lambda it: it.__setitem__("bbox", [0, 0, 1]), "has bbox [0, 0, 1], not 4 numbers"),
    (lambda it: (it.__setitem__("geometry", None), it.pop("bbox", None)), "has neither a geometry nor a bbox"),
], ids=["bbox-3-numbers", "no-geometry-no-bbox"])
def test_local_item_without_usable_footprint_is_refused(ds, tmp_path, capsys, mutate, cause):
    items = catalogue(ds, tmp_path, _first(mutate))
    first = json.loads(items.read_text())["features"][0]["id"]
    code, line = cli(run_args(ds, tmp_path / "run", items), capsys)
    assert code == 3, line
    assert f"item {first!r} {cause}" in line and "fix its footprint" in line, line


def test_api_items_without_usable_footprint_are_dropped_with_a_warning(ds, monkeypatch, caplog):
    when = json.loads(ds.items_path.read_text())["features"]
    period = Period(dt.date(2015, 1, 1), dt.date.today(), "all")
    assert len(when) >= 3
    when[0]["bbox"], when[0]["geometry"] = [0, 0, 1], None
    when[1]["geometry"] = None
    when[1].pop("bbox")
    b = when[2]["bbox"]
    when[2]["bbox"] = [b[0], b[1], 0.0, b[2], b[3], 100.0]  # 6 numbers: kept, as [w, s, e, n]
    api = [pystac.Item.from_dict(f) for f in when]
    monkeypatch.setattr(stac_mod, "_search_api", lambda *a, **k: list(api))
    with caplog.at_level(logging.WARNING):
        got = stac_mod.search(read_aoi(ds.aoi_path), period, provider="https://stac.example.invalid/v1",
                              max_cloud=100)
    ids = {it.id for it in got}
    assert when[0]["id"] not in ids and when[1]["id"] not in ids and when[2]["id"] in ids
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "footprint" in r.getMessage()]
    assert len(warned) == 1 and "2 item(s)" in warned[0] and when[0]["id"] in warned[0], warned
    assert next(it for it in got if it.id == when[2]["id"]).bbox == [b[0], b[1], b[2], b[3]]


# -- 5. an asset with an empty href (exit 3, not "cannot read <the catalogue's folder>") -------------

@pytest.mark.parametrize("href,how", [("", "has an empty href"), (None, "has an empty href"),
                                      (5, "has href 5, not a string")], ids=["empty", "null", "number"])
def test_empty_asset_href_is_refused(ds, tmp_path, capsys, href, how):
    items = catalogue(ds, tmp_path, _first(lambda it: it["assets"]["red"].__setitem__("href", href)))
    first = json.loads(items.read_text())["features"][0]["id"]
    code, line = cli(run_args(ds, tmp_path / "run", items), capsys)
    assert code == 3, line
    assert f"item {first!r} asset 'red' {how}" in line and "cannot read" not in line, line
