"""The catalogue of bad inputs (docs/ERRORS.md): each one, driven through the real ``minewatch`` command,
gives ONE line ``Error: <cause>; <fix>``, its documented non-zero exit code, and no traceback.

Cases already covered in tests/test_cli.py (missing AOI file, end before start, malformed year, future
season, missing --aoi, --max-cloud out of range, unknown subcommand, unreadable GeoJSON bytes, unknown
config key, run folder of another AOI) are not repeated here; docs/ERRORS.md lists both sets.

Runs use a small simulated archive (three dry seasons, 200×200 px) written once per module, copied and
broken per case; every case runs in-process (``--sync``) except a few that go through a subprocess.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from geo.cli.main import main
from geo.sim.demo import write_demo_dataset
from geo.sim.scene import SimConfig
from tests.conftest import REPO

START, END = "2021", "2023"
SMALL = SimConfig(width=200, height=200, margin=20, start_year=2021, end_year=2023, acquisitions_per_season=2,
                  initial_sites=4, new_sites_per_season=1, abandoned_sites=1, site_gap_m=200.0)


# -- helpers -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("bad-inputs-archive"), config=SMALL)


def one_line_error(err: str) -> str:
    """The single ``Error:`` line of ``err``; fails on a traceback or any other output."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    return lines[0]


def cli(args: list[str], capsys) -> tuple[int, str]:
    """Run ``minewatch -q ARGS`` in-process; return (exit code, the one error line)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["-q", *map(str, args)])
    return exc.value.code, one_line_error(capsys.readouterr().err)


def cli_subprocess(args: list[str], **kw) -> tuple[int, str]:
    res = subprocess.run([sys.executable, "-m", "geo", "-q", *map(str, args)], capture_output=True, text=True,
                         timeout=180, cwd=REPO, **kw)
    return res.returncode, one_line_error(res.stderr)


def run_args(ds, out: Path, items: Path | str | None = None, aoi: Path | None = None, *extra) -> list:
    return ["run", "--aoi", aoi or ds.aoi_path, "--start", START, "--end", END, "--out", out,
            "--stac-url", items or ds.items_path, "--sync", *extra]


def catalogue(ds, tmp_path: Path, mutate) -> Path:
    """A copy of the archive's ItemCollection with ``mutate(item_dict)`` applied to every item."""
    doc = json.loads(ds.items_path.read_text())
    for it in doc["features"]:
        mutate(it)
    p = tmp_path / "items.json"
    p.write_text(json.dumps(doc))
    return p


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def aoi_file(tmp_path: Path, geometry: dict | list, name="aoi.geojson") -> Path:
    geoms = geometry if isinstance(geometry, list) else [geometry]
    doc = {"type": "FeatureCollection",
           "features": [{"type": "Feature", "properties": {"name": "t"}, "geometry": g} for g in geoms]}
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def poly(*ring) -> dict:
    return {"type": "Polygon", "coordinates": [list(ring)]}


SQUARE = poly([98.3, 25.6], [98.32, 25.6], [98.32, 25.62], [98.3, 25.62], [98.3, 25.6])


def assert_msg(line: str, cause: str, fix: str) -> None:
    low = line.lower()
    assert cause.lower() in low, f"cause {cause!r} not named in: {line}"
    assert fix.lower() in low, f"fix {fix!r} not named in: {line}"


# -- AOI (exit 2) ------------------------------------------------------------------------------

AOI_CASES = {
    "not-json": ("{this is not json", "not valid JSON", "fix the file"),
    "empty-file": ("", "is empty", "polygons"),
    "empty-collection": ({"type": "FeatureCollection", "features": []}, "no features", "draw at least one polygon"),
    "points-only": ([{"type": "Point", "coordinates": [98.3, 25.6]},
                     {"type": "MultiPoint", "coordinates": [[98.3, 25.6], [98.31, 25.61]]}],
                    "no polygons (found MultiPoint, Point)", "must be one or more polygons"),
    "lines-only": ([{"type": "LineString", "coordinates": [[98.3, 25.6], [98.31, 25.61]]}],
                   "no polygons (found LineString)", "must be one or more polygons"),
    "self-intersecting": (poly([98.3, 25.6], [98.32, 25.62], [98.32, 25.6], [98.3, 25.62], [98.3, 25.6]),
                          "self-intersection", "Fix Geometries"),
    "projected-coords": (poly([431000, 2836000], [435000, 2836000], [435000, 2840000], [431000, 2840000],
                              [431000, 2836000]), "look projected", "re-export"),
    "declares-utm-crs": ("crs", "declares CRS", "ogr2ogr -t_srs EPSG:4326"),
    "antimeridian": (poly([179.5, 10], [-179.5, 10], [-179.5, 10.5], [179.5, 10.5], [179.5, 10]),
                     "antimeridian", "split it"),
    "too-large": (poly([96, 20], [100, 20], [100, 25], [96, 25], [96, 20]), "limit", "split it into smaller"),
    "outside-s2-coverage": (poly([100, -85], [101, -85], [101, -84.5], [100, -84.5], [100, -85]),
                            "outside UTM/Sentinel-2", "80°S"),
    "mixed-geometries": ([SQUARE, {"type": "Point", "coordinates": [98.31, 25.61]}],
                         "mixes polygons with Point", "keep only the polygon"),
    "aoi-is-folder": ("dir", "is a folder", "pass one GeoJSON file"),
}


@pytest.mark.parametrize("case", list(AOI_CASES))
def test_bad_aoi(case, tmp_path, capsys):
    content, cause, fix = AOI_CASES[case]
    if content == "dir":
        path = tmp_path / "aoi.geojson"
        path.mkdir()
    elif content == "crs":
        path = aoi_file(tmp_path, SQUARE)
        doc = json.loads(path.read_text())
        doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32647"}}
        path.write_text(json.dumps(doc))
    elif isinstance(content, str):
        path = tmp_path / "aoi.geojson"
        path.write_text(content)
    elif isinstance(content, dict) and content.get("type") == "FeatureCollection":
        path = tmp_path / "aoi.geojson"
        path.write_text(json.dumps(content))
    else:
        path = aoi_file(tmp_path, content)
    code, line = cli(["run", "--aoi", path, "--start", START, "--end", END, "--out", tmp_path / "run",
                      "--stac-url", tmp_path / "never-read.json"], capsys)
    assert code == 2
    assert_msg(line, cause, fix)
    assert not (tmp_path / "run").exists(), "a refused AOI must not create the run folder"


# -- dates (exit 2) ----------------------------------------------------------------------------

@pytest.mark.parametrize("start,end,cause,fix", [
    ("2010", "2012", "before Sentinel-2 L2A coverage", "use 2015 or later"),
    ("2021", "2023.5", "'2023.5' is not a valid integer", "minewatch run --help"),
    ("-", "2023", "is not a valid integer", "minewatch run --help"),
])
def test_bad_dates(ds, tmp_path, capsys, start, end, cause, fix):
    code, line = cli(["run", "--aoi", ds.aoi_path, "--start", start, "--end", end, "--out", tmp_path / "run"], capsys)
    assert code == 2
    assert_msg(line, cause, fix)


def test_period_ends_before_it_starts(tmp_path, capsys):
    """`search --period` (and a [[scenes]] datetime) name the interval as written, not a file-name label."""
    aoi = aoi_file(tmp_path, SQUARE)
    code, line = cli(["search", "--aoi", aoi, "--period", "2024-04-30/2023-11-01"], capsys)
    assert code == 2
    assert_msg(line, "period '2024-04-30/2023-11-01' ends (2023-11-01) before it starts (2024-04-30)",
               "earlier date first")
    assert "2024-04-30_2023-11-01" not in line


# -- STAC (exit 3 = cannot search, exit 6 = nothing usable found) --------------------------------

def test_stac_unreachable(ds, tmp_path, capsys, monkeypatch):
    from geo.sources import providers
    from geo.sources.remote import RetryPolicy

    monkeypatch.setattr(providers, "DEFAULT_POLICY", RetryPolicy(attempts=2, backoff_s=0.01, timeout_s=2))
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    code, line = cli(run_args(ds, tmp_path / "run", url), capsys)
    assert code == 3
    assert_msg(line, "failed after 2 tries", "check the URL and your network")


def test_stac_unknown_collection(ds, tmp_path, capsys):
    from servers import RustacServer, rustac_binary

    if rustac_binary() is None:
        pytest.skip("rustac binary not found; install the dev extra (pip install rustac)")

    def other(it):
        it["collection"] = "landsat-c2-l2"
        it["links"] = [ln for ln in it.get("links", []) if ln.get("rel") not in ("collection", "parent", "root")]

    items = catalogue(ds, tmp_path, other)
    with RustacServer([items]) as api:
        code, line = cli(run_args(ds, tmp_path / "run", api.url), capsys)
    assert code == 3
    assert_msg(line, "has no collection 'sentinel-2-l2a' (it has: landsat-c2-l2)", "set the collection")


def test_stac_item_file_missing(ds, tmp_path, capsys):
    code, line = cli(run_args(ds, tmp_path / "run", tmp_path / "nope" / "items.json"), capsys)
    assert code == 3
    assert_msg(line, "does not exist", "pass a STAC API URL")


def test_stac_unsupported_scheme(ds, tmp_path, capsys):
    code, line = cli(run_args(ds, tmp_path / "run", "s3://bucket/items.json"), capsys)
    assert code == 3
    assert_msg(line, "uses scheme 's3'", "http(s) STAC API URL")


def test_stac_no_items_in_period(ds, tmp_path, capsys):
    code, line = cli(["run", "--aoi", ds.aoi_path, "--start", "2016", "--end", "2018", "--out", tmp_path / "run",
                      "--stac-url", ds.items_path, "--sync"], capsys)
    assert code == 6
    assert_msg(line, "no Sentinel-2 scenes found", "check the provider/AOI")


def test_every_scene_too_cloudy(ds, tmp_path, capsys):
    """Scene metadata: every scene is over --max-cloud."""
    def cloudy(it):
        it["properties"]["eo:cloud_cover"] = 60.0 + len(it["id"]) % 30

    items = catalogue(ds, tmp_path, cloudy)
    code, line = cli(run_args(ds, tmp_path / "run", items, None, "--max-cloud", "0"), capsys)
    assert code == 6
    assert_msg(line, "under 0% cloud", "raise --max-cloud")


def _rewrite_scl(ds, tmp_path, value: int) -> Path:
    """Copy every SCL raster with all pixels set to ``value``; point the items at the copies."""
    def mutate(it):
        src = Path(it["assets"]["scl"]["href"])
        dst = tmp_path / "scl" / it["id"] / "SCL.tif"
        dst.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(src) as r:
            prof, arr = r.profile, r.read(1)
        with rasterio.open(dst, "w", **prof) as w:
            w.write(np.full_like(arr, value), 1)
        it["assets"]["scl"]["href"] = str(dst)
    return catalogue(ds, tmp_path, mutate)


def test_every_scene_cloudy_in_pixels(ds, tmp_path, capsys):
    """Scene metadata says clear, but the SCL of every scene is cloud (class 9) over the AOI."""
    items = _rewrite_scl(ds, tmp_path, 9)
    code, line = cli(run_args(ds, tmp_path / "run", items, None, "--max-cloud", "100"), capsys)
    assert code == 6
    assert_msg(line, "has a clear, valid pixel", "add dry seasons")


# -- rasters (exit 4 = unreadable raster, exit 6 = nothing valid in it) --------------------------

def _set_asset(ds, tmp_path, key: str, writer) -> Path:
    """Point asset ``key`` of every item at a file made by ``writer(src_path, dst_path)``."""
    def mutate(it):
        src = Path(it["assets"][key]["href"])
        dst = tmp_path / "assets" / it["id"] / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        writer(src, dst)
        it["assets"][key]["href"] = str(dst)
    return catalogue(ds, tmp_path, mutate)


def _garbage(src: Path, dst: Path) -> None:
    dst.write_bytes(b"II*\x00" + os.urandom(2048))


def _truncated(src: Path, dst: Path) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 3])


def _all_nodata(src: Path, dst: Path) -> None:
    with rasterio.open(src) as r:
        prof = r.profile
    with rasterio.open(dst, "w", **prof) as w:
        w.write(np.zeros((prof["count"], prof["height"], prof["width"]), prof["dtype"]))


def _elsewhere(src: Path, dst: Path) -> None:
    """Same pixels, georeferenced 300 km east: the window over the AOI has zero size."""
    with rasterio.open(src) as r:
        prof, arr = r.profile, r.read()
    prof["transform"] = Affine.translation(300_000, 0) @ prof["transform"]
    with rasterio.open(dst, "w", **prof) as w:
        w.write(arr)


def _no_crs(src: Path, dst: Path) -> None:
    with rasterio.open(src) as r:
        prof, arr = r.profile, r.read()
    prof["crs"] = None
    with rasterio.open(dst, "w", **prof) as w:
        w.write(arr)


@pytest.mark.parametrize("writer,cause,fix", [
    (_garbage, "cannot read", "may be corrupt"),
    (_truncated, "cannot read", "may be corrupt"),
    (_no_crs, "has no CRS", "never assumes one"),
])
def test_unreadable_raster(ds, tmp_path, capsys, writer, cause, fix):
    items = _set_asset(ds, tmp_path, "red", writer)
    code, line = cli(run_args(ds, tmp_path / "run", items), capsys)
    assert code == 4
    assert_msg(line, cause, fix)


@pytest.mark.parametrize("writer", [_all_nodata, _elsewhere], ids=["all-nodata", "zero-size-window"])
def test_raster_without_valid_pixels(ds, tmp_path, capsys, writer):
    def every(it):
        for key in list(it["assets"]):
            if it["assets"][key].get("href", "").endswith(".tif"):
                src = Path(it["assets"][key]["href"])
                dst = tmp_path / "assets" / it["id"] / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                writer(src, dst)
                it["assets"][key]["href"] = str(dst)
                if writer is _elsewhere and "proj:transform" in it["assets"][key]:  # the catalogue says so too
                    it["assets"][key]["proj:transform"][2] += 300_000
        if writer is _elsewhere and "proj:transform" in it["properties"]:
            it["properties"]["proj:transform"][2] += 300_000

    items = catalogue(ds, tmp_path, every)
    code, line = cli(run_args(ds, tmp_path / "run", items), capsys)
    assert code == 6
    assert_msg(line, "has a clear, valid pixel", "check that the catalogue's rasters cover the AOI")


def test_missing_band(ds, tmp_path, capsys):
    items = catalogue(ds, tmp_path, lambda it: it["assets"].pop("swir22"))
    code, line = cli(run_args(ds, tmp_path / "run", items), capsys)
    assert code == 4
    assert_msg(line, "no asset for band B12", "pass asset_keys=")
    assert not (tmp_path / "run" / "tasks").exists(), "a missing band must be refused before any task runs"


def test_unknown_reflectance_offset(ds, tmp_path, capsys):
    def strip(it):
        it["properties"].pop("s2:processing_baseline", None)
        it["properties"].pop("earthsearch:boa_offset_applied", None)
        for a in it["assets"].values():
            a.pop("raster:bands", None)

    items = catalogue(ds, tmp_path, strip)
    code, line = cli(run_args(ds, tmp_path / "run", items), capsys)
    assert code == 4
    assert_msg(line, "reflectance offset is unknown", "use a catalogue that publishes them")


# -- model weights (exit 5), through `minewatch detect --method model` ---------------------------

@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A 64×64 six-band L2A GeoTIFF (EPSG:32647) whose band descriptions name the bands."""
    from geo.results.export import write_raster
    from geo.grid import GeoGrid

    rng = np.random.default_rng(0)
    grid = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 431000, 0, -10, 2840000), 64, 64)
    arr = rng.integers(500, 3000, (6, 64, 64)).astype(np.uint16)
    p = tmp_path_factory.mktemp("img") / "scene.tif"
    return write_raster(arr, grid, p, nodata=0, descriptions=("B02", "B03", "B04", "B08", "B11", "B12"))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A small, valid weights file with its card (saved by the project's own save_model)."""
    from models.infer import ModelCard, save_model
    from models.unet import UNet, UNetConfig

    cfg = UNetConfig(widths=(8, 12), unshuffle=1)
    card = ModelCard("test", "0", ("B02", "B03", "B04", "B08", "B11", "B12"), (0.1,) * 6, (0.05,) * 6,
                     {0: "background", 1: "cleared_land", 2: "leaching_pond"}, cfg.to_dict())
    path = tmp_path_factory.mktemp("weights") / "unet.pt"
    save_model(UNet(cfg), card, path)
    return path


def _variant(weights: Path, tmp_path: Path, payload: bytes | None, *, fix_checksum: bool = True) -> Path:
    """A copy of ``weights`` (and card) with the file's bytes replaced by ``payload``."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    dst = tmp_path / "w.pt"
    dst.write_bytes(payload if payload is not None else weights.read_bytes())
    card = json.loads(weights.with_suffix(".json").read_text())
    if fix_checksum:
        card["weights_sha256"] = hashlib.sha256(dst.read_bytes()).hexdigest()
    dst.with_suffix(".json").write_text(json.dumps(card))
    return dst


def _card_edit(weights: Path, tmp_path: Path, **normalization) -> Path:
    """A copy of ``weights`` whose card's ``normalization`` has the given fields changed."""
    dst = _variant(weights, tmp_path, None)
    card = json.loads(dst.with_suffix(".json").read_text())
    card["normalization"].update(normalization)
    dst.with_suffix(".json").write_text(json.dumps(card))
    return dst


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _torch_bytes(obj) -> bytes:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_weights_ok_baseline(image, weights, tmp_path, capsys):
    """The valid fixture loads: the failures below come from the damage, not from the set-up."""
    with pytest.raises(SystemExit) as exc:
        main(["-q", "detect", str(image), "--out", str(tmp_path / "fp.geojson"), "--method", "model",
              "--weights", str(weights), "--device", "cpu"])
    assert exc.value.code == 0
    assert (tmp_path / "fp.geojson").exists()


def test_weights_bad(image, weights, tmp_path, capsys):
    from models.unet import UNet, UNetConfig

    marker = tmp_path / "pwned"
    cases = {
        "missing": (tmp_path / "none.pt", "not found", "run scripts/train_weights.py"),
        "corrupt": (_variant(weights, tmp_path / "c", weights.read_bytes()[: weights.stat().st_size // 2]),
                    "cannot load", "corrupt or not a plain state dict"),
        "random-bytes": (_variant(weights, tmp_path / "r", np.random.default_rng(3).bytes(4096)),
                         "cannot load", "corrupt or not a plain state dict"),
        "checksum": (_variant(weights, tmp_path / "s", weights.read_bytes()[:-100], fix_checksum=False),
                     "does not match the checksum", "corrupt or from another model"),
        "wrong-shape": (_variant(weights, tmp_path / "w", _torch_bytes(UNet(UNetConfig(widths=(16, 24), unshuffle=1)).state_dict())),
                        "do not fit the architecture", "in the card"),
        "code-exec-pickle": (_variant(weights, tmp_path / "x", _torch_bytes({"weight": _Exploit(marker)})),
                             "cannot load", "safely"),
        "unknown-transform": (_card_edit(weights, tmp_path / "t", transform="sqrt"),
                              "transform 'sqrt' is unknown", "use one of linear, log"),
    }
    for name, (path, cause, fix) in cases.items():
        if not path.exists() and name != "missing":
            raise AssertionError(name)
        code, line = cli(["detect", image, "--out", tmp_path / f"{name}.geojson", "--method", "model",
                          "--weights", path, "--device", "cpu"], capsys)
        assert code == 5, (name, line)
        assert_msg(line, cause, fix)
        assert not (tmp_path / f"{name}.geojson").exists()
    assert not marker.exists(), "the pickle's code ran: weights must be loaded with weights_only=True"


# -- config (exit 2) ---------------------------------------------------------------------------

@pytest.mark.parametrize("toml,cause,fix", [
    ("[search]\nmax_cloud = 'lots'\n", "max_cloud must be float, got str", "[search]"),
    ("[detect]\nmethod = 'magic'\n", "must be rules, model or fused", "'magic'"),
    ("tile_px = 'big'\n", "tile_px must be a number", "'big'"),
    ("tile_px = 8\n", "at least 64 pixels", "got 8"),
    ("[serch]\nmax_cloud = 5\n", "unknown section(s) [serch]", "allowed: search"),
    ("workers = 4\n", "unknown key 'workers'", "allowed at top level"),
    ("[search\n", "not valid TOML", "run.toml"),
])
def test_bad_config(ds, tmp_path, capsys, toml, cause, fix):
    cfg = tmp_path / "run.toml"
    cfg.write_text(toml)
    code, line = cli(run_args(ds, tmp_path / "run", None, None, "--config", cfg), capsys)
    assert code == 2
    assert_msg(line, cause, fix)


# -- output folder (exit 7) --------------------------------------------------------------------

def test_out_is_a_file(ds, tmp_path, capsys):
    f = tmp_path / "taken"
    f.write_text("x")
    code, line = cli(run_args(ds, f), capsys)
    assert code == 2  # click refuses it as a usage error before the run starts
    assert_msg(line, "is a file", "minewatch run --help")


def test_out_not_writable(ds, tmp_path, capsys):
    """A folder that cannot be created (its parent is a file; as root, permissions would not stop us)."""
    f = tmp_path / "file"
    f.write_text("x")
    code, line = cli(run_args(ds, f / "run"), capsys)
    assert code == 7
    assert_msg(line, "cannot create run folder", "choose a writable --out")


def test_out_read_only_filesystem(ds, capsys):
    ro = Path("/proc/minewatch-run")
    code, line = cli(run_args(ds, ro), capsys)
    assert code == 7
    assert_msg(line, str(ro), "writable --out")


def test_disk_full_mid_run(ds, tmp_path, capsys, monkeypatch):
    """ENOSPC when a task result is moved into place: a clear message, and nothing half-written."""
    import geo.fsutil as fsutil

    real = os.replace
    calls = {"n": 0}

    def replace(src, dst, *a, **kw):
        calls["n"] += 1
        if str(dst).endswith(".tif") and "tasks" in str(dst):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(fsutil.os, "replace", replace)
    out = tmp_path / "run"
    code, line = cli(run_args(ds, out), capsys)
    assert code == 7
    assert_msg(line, "No space left on device", "free disk space")
    left = [p for p in out.rglob("*") if p.is_file() and (p.name.startswith(".") or p.suffix == ".tif")]
    assert left == [], f"half-written files left: {left}"
    assert not list(out.rglob("done.json"))


def test_existing_run_of_other_aoi_subprocess(ds, tmp_path):
    """Same refusal as tests/test_cli.py, but from a real earlier run and through the installed command."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"tool": "minewatch", "inputs": {"aoi_sha256": "f" * 64, "aoi_path": "belt.geojson"}}))
    code, line = cli_subprocess(run_args(ds, out))
    assert code == 7
    assert_msg(line, "different AOI (belt.geojson)", "choose another --out folder")


def test_bad_aoi_subprocess(tmp_path):
    bad = aoi_file(tmp_path, [{"type": "LineString", "coordinates": [[98.3, 25.6], [98.31, 25.61]]}])
    code, line = cli_subprocess(["run", "--aoi", bad, "--start", START, "--end", END, "--out", tmp_path / "o"])
    assert code == 2
    assert_msg(line, "no polygons", "must be one or more polygons")


# The security cases (hostile ids, foreign asset hosts and ports, redirects, credentials) are in
# tests/test_bad_inputs_hostile.py; the cases of issue 15 (Dask, disk full, data types, settings) in
# tests/test_bad_inputs_hardening.py.
