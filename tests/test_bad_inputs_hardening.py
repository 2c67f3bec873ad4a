"""Bad inputs, hardening part (issue 15): errors that cross Dask keep their class and exit code, a full disk is
exit 7 everywhere, a COG contradicting its item is refused, nonsense settings are refused before any request,
size guards act before allocating, and the smaller cases (deep JSON, cloud cover strings, run-folder lock, failed
manifest, escaped report, torch's unsafe advice, batch script messages, partial dates, --collection).

Task-level cases run on the executor users get by default (Dask LocalCluster, several tasks: ``--tile-px 100``
on a 200×200 px archive gives 12 tasks) through a subprocess, and in-process (``--sync``). Helpers and the
archive come from tests/test_bad_inputs.py.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from tests.conftest import REPO
from tests.test_bad_inputs import (END, START, SQUARE, _torch_bytes, _variant, aoi_file, assert_msg, catalogue,  # noqa: F401
                                   cli, ds, image, one_line_error, run_args, weights)

DASK = ["--tile-px", "100", "--workers", "2"]


def run_on(executor: str, ds, out: Path, items, *extra) -> tuple[int, str, str]:
    """``minewatch -q run`` in a subprocess on ``executor`` (``"dask"``: the default executor, several tasks;
    ``"sync"``: in-process); returns (exit code, the one error line, stderr)."""
    args = ["run", "--aoi", ds.aoi_path, "--start", START, "--end", END, "--out", out, "--stac-url", items,
            *(DASK if executor == "dask" else ["--sync"]), *extra]
    res = subprocess.run([sys.executable, "-m", "geo", "-q", *map(str, args)], capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    return res.returncode, one_line_error(res.stderr) if res.returncode else "", res.stderr


def _assets(ds, tmp_path: Path, key: str, writer, mutate_item=None) -> Path:
    def mutate(it):
        src = Path(it["assets"][key]["href"])
        dst = tmp_path / "assets" / it["id"] / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        writer(src, dst)
        it["assets"][key]["href"] = str(dst)
        if mutate_item:
            mutate_item(it)
    return catalogue(ds, tmp_path, mutate)


def _garbage(src: Path, dst: Path) -> None:
    dst.write_bytes(b"II*\x00" + os.urandom(2048))


def _as_float_reflectance(src: Path, dst: Path) -> None:
    """The same pixels as float32 reflectance 0–1 (what a careless re-export makes)."""
    with rasterio.open(src) as r:
        prof, arr = r.profile, r.read()
    prof.update(dtype="float32", nodata=0)
    with rasterio.open(dst, "w", **prof) as w:
        w.write(arr.astype(np.float32) / 10000.0)


def _copy(src: Path, dst: Path) -> None:
    dst.write_bytes(src.read_bytes())


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


# -- errors keep their class and exit code across the executor ----------------------------------------------

def _through_dask_protocol(exc: BaseException) -> BaseException:
    """What a Dask client receives for ``exc`` raised in a worker (distributed's own serialisation)."""
    from distributed.core import clean_exception, error_message

    msg = error_message(exc)
    from distributed.protocol import pickle as dpickle
    return dpickle.loads(msg["exception"].data if hasattr(msg["exception"], "data") else msg["exception"])


def test_errors_survive_dask_serialisation_without_their_cause(tmp_path):
    """A RasterError raised while rasterio's error is handled chains it (``from None`` only hides it); Dask
    pickles the chain, and rasterio's CPLE errors cannot be rebuilt, so the client got a bare ``Exception``."""
    from geo.errors import AccessDeniedError, RasterError, exit_code_for, portable_error

    bad = tmp_path / "x.tif"
    _garbage(bad, bad)
    try:
        try:
            rasterio.open(bad)
        except rasterio.errors.RasterioIOError:
            raise RasterError("cannot read x.tif (TIFFReadDirectory failed); the file may be corrupt") from None
    except RasterError as e:
        raw = e
    assert type(_through_dask_protocol(raw)) is Exception, "the set-up reproduces the bug: the chained cause breaks it"
    back = _through_dask_protocol(portable_error(raw))
    assert type(back) is RasterError and exit_code_for(back) == 4 and "cannot read x.tif" in str(back)
    denied = pickle.loads(pickle.dumps(AccessDeniedError("refused", 403)))
    assert denied.status == 403 and str(denied) == "refused"


def test_unforeseen_errors_become_one_picklable_line():
    from geo.errors import OutputError, UnexpectedError, exit_code_for, portable_error

    try:
        {}["missing"]
    except KeyError as e:
        err = portable_error(e, "task 2021-22/r0c0 failed with ")
    assert isinstance(err, UnexpectedError) and exit_code_for(err) == 1
    assert "task 2021-22/r0c0 failed with KeyError: 'missing' at test_bad_inputs_hardening.py:" in str(err)
    assert type(pickle.loads(pickle.dumps(err))) is UnexpectedError
    full = portable_error(OSError(28, "No space left on device"))
    assert isinstance(full, OutputError) and exit_code_for(full) == 7
    import sqlite3
    assert exit_code_for(portable_error(sqlite3.OperationalError("database or disk is full"))) == 7
    assert exit_code_for(portable_error(OSError("26896 requested and 19424 written"))) == 7  # numpy's short write


@pytest.mark.parametrize("executor", ["dask", "sync"])
def test_corrupt_cog_on_every_executor(ds, tmp_path, executor):
    """Before issue 15, the Dask run exited 1 with a traceback and a "Compute Failed" dump per task."""
    items = _assets(ds, tmp_path, "red", _garbage)
    code, line, err = run_on(executor, ds, tmp_path / "run", items)
    assert code == 4, err
    assert_msg(line, "cannot read", "may be corrupt")
    assert "Compute Failed" not in err
    man = _manifest(tmp_path / "run")
    assert man["status"] == "failed" and "cannot read" in man["error"], "a failed run must not stay 'running'"


def test_cog_server_down_on_dask(ds, tmp_path):
    """The COG host stops answering (nothing listens on its port): exit 3 and one line on Dask, not exit 1."""
    from tests.test_bad_inputs import free_port

    port = free_port()
    items = catalogue(ds, tmp_path, lambda it: it["assets"]["red"].update(href=f"http://127.0.0.1:{port}/{it['id']}.tif"))
    args = ["run", "--aoi", ds.aoi_path, "--start", "2021", "--end", "2021", "--out", tmp_path / "run",
            "--stac-url", items, "--method", "rules", *DASK]
    res = subprocess.run([sys.executable, "-m", "geo", "-q", *map(str, args)], capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert res.returncode == 3, res.stderr
    assert_msg(one_line_error(res.stderr), "failed after 5 tries (last: ConnectionError)", "rerun later")
    assert _manifest(tmp_path / "run")["status"] == "failed"


# -- a COG that contradicts its item (exit 4) ----------------------------------------------------------------

@pytest.mark.parametrize("executor", ["dask", "sync"])
def test_cog_data_type_contradicts_item(ds, tmp_path, executor):
    """float32 0–1 reflectance where raster:bands says uint16: refused, not silently used."""
    items = _assets(ds, tmp_path, "red", _as_float_reflectance)
    code, line, err = run_on(executor, ds, tmp_path / "run", items)
    assert code == 4, err
    assert_msg(line, "holds float32 pixels but item", "re-export the COG as the item describes it")
    assert "raster:bands data_type uint16" in line


def test_float_cog_without_stated_data_type(ds, tmp_path, capsys):
    def no_dtype(it):
        for rb in it["assets"]["red"].get("raster:bands", []):
            rb.pop("data_type", None)

    items = _assets(ds, tmp_path, "red", _as_float_reflectance, no_dtype)
    code, line = cli(run_args(ds, tmp_path / "run", items), capsys)
    assert code == 4
    assert_msg(line, "not Sentinel-2 L2A digital numbers", "use the catalogue's L2A COGs")


def test_cog_crs_contradicts_item(ds, tmp_path, capsys):
    items = _assets(ds, tmp_path, "red", _copy, lambda it: it["properties"].update({"proj:epsg": 32646}))
    code, line = cli(run_args(ds, tmp_path / "run", items), capsys)
    assert code == 4
    assert_msg(line, "is in EPSG:32647 but item", "fix the catalogue entry")


# -- a full disk (exit 7), on the default executor ----------------------------------------------------------

@pytest.fixture
def tiny_disk(tmp_path):
    """A 3 MiB tmpfs (needs root); the run fills it part-way."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_disk_full_on_dask(ds, tiny_disk, tmp_path):
    out = tiny_disk / "run"
    code, line, err = run_on("dask", ds, out, ds.items_path, "--method", "rules")
    assert code == 7, err
    assert_msg(line, "the disk is full", "free disk space")
    assert "Traceback" not in err and "_tiffWriteProc" not in err
    assert _manifest(out)["status"] == "failed", "even a full disk leaves the manifest saying the run failed"
    for done in out.rglob("done.json"):  # every finished task is complete
        assert {p.name for p in done.parent.iterdir()} >= {"classes.tif", "composite.tif", "clear_count.tif"}
    assert not [p for p in out.rglob(".*partial-*")], "no temporary left"


def test_disk_full_in_window_cache(tmp_path, monkeypatch):
    import shutil

    from geo.errors import OutputError
    from geo.sources.cache import WindowCache

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10 << 20, 10 << 20, 1000))
    with pytest.raises(OutputError, match="the disk is full"):
        WindowCache(tmp_path).put("ab" * 20, np.zeros((100, 100), np.float32))
    assert not list(tmp_path.rglob("*.npy")) and not list(tmp_path.rglob(".tmp-*"))


def test_disk_full_in_geopackage_styles(tmp_path, monkeypatch):
    import sqlite3

    from geo.errors import OutputError, exit_code_for
    from geo.results import styles

    class Full:
        def execute(self, *a):
            raise sqlite3.OperationalError("database or disk is full")

        def close(self):
            pass

    monkeypatch.setattr(styles.sqlite3, "connect", lambda *a: Full())
    with pytest.raises(OutputError) as exc:
        styles.write_layer_styles(tmp_path / "x.gpkg", {"footprints": "<qgis/>"})
    assert exit_code_for(exc.value) == 7 and "disk is full" in str(exc.value)


# -- nonsense settings: refused before any request (exit 2) -------------------------------------------------

@pytest.mark.parametrize("toml,cause", [
    ("resolution_m = -10\n", "resolution_m must be greater than 0"),
    ("resolution_m = 0\n", "resolution_m must be greater than 0"),
    ("tile_px = 1e9\n", "tile_px must be a whole number"),
    ("tile_px = 1000000000\n", "at most 8192 pixels"),
    ("[detect]\nhalo_px = -3\n", "halo_px must be at least 0"),
    ("[detect]\ndevice = 'tpu'\n", "device must be auto, cpu or cuda"),
    ("[detect]\nviews = 3\n", "views must be 1, 2 or 4"),
    ("[detect]\nmin_pond_area_m2 = -1\n", "min_pond_area_m2 must be at least 0"),
    ("[cloud]\nbuffer_px = 2.5\n", "buffer_px must be a whole number"),
    ("[change]\nmin_clear_fraction = 2\n", "min_clear_fraction must be at least 0 and at most 1"),
    ("[sites]\nmin_ponds = -1\n", "min_ponds must be at least 0"),
    ("io_threads = 0\n", "io_threads must be at least 1"),
])
def test_nonsense_settings_refused_before_network(ds, tmp_path, capsys, toml, cause):
    from tests.test_bad_inputs_hostile import Listener

    cfg = tmp_path / "run.toml"
    cfg.write_text(toml)
    with Listener() as api:
        code, line = cli(run_args(ds, tmp_path / "run", api.url, None, "--config", cfg), capsys)
        assert api.requests == [], "settings are checked before any request"
    assert code == 2
    assert_msg(line, cause, "fix it in the run config")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("address,cause,fix,exit_code", [
    ("nonsense", "is not a Dask scheduler address", "give tcp://host:port", 2),
    ("tcp://127.0.0.1:{port}", "cannot reach the Dask scheduler at tcp://127.0.0.1:", "leave --scheduler out", 8),
])
def test_bad_scheduler_address(ds, tmp_path, capsys, address, cause, fix, exit_code):
    from tests.test_bad_inputs import free_port

    extra = ["--scheduler", address.format(port=free_port())]
    args = [a for a in run_args(ds, tmp_path / "run", None, None, *extra) if a != "--sync"]
    code, line = cli(args, capsys)
    assert code == exit_code
    assert_msg(line, cause, fix)
    assert not (tmp_path / "run").exists()


# -- size guards and empty images (`minewatch detect`) ------------------------------------------------------

def test_detect_refuses_huge_image_before_allocating(tmp_path, capsys):
    """A header-only 200,000 × 200,000 × 6 TIFF (sparse: a few KB on disk) would need hundreds of GiB."""
    p = tmp_path / "huge.tif"
    with rasterio.open(p, "w", driver="GTiff", width=200_000, height=200_000, count=6, dtype="uint16",
                       crs=CRS.from_epsg(32647), transform=Affine(10, 0, 400000, 0, -10, 3000000), tiled=True,
                       sparse_ok=True, nodata=0) as w:
        for i, b in enumerate(("B02", "B03", "B04", "B08", "B11", "B12"), start=1):
            w.set_band_description(i, b)
    assert p.stat().st_size < 50 << 20
    code, line = cli(["detect", p, "--out", tmp_path / "fp.geojson", "--method", "rules"], capsys)
    assert code == 4
    assert_msg(line, "200,000 × 200,000 px × 6 bands", "cut it into tiles")
    assert not (tmp_path / "fp.geojson").exists()


def test_detect_on_all_nodata_image(tmp_path, capsys):
    from geo.grid import GeoGrid
    from geo.results.export import write_raster

    grid = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 431000, 0, -10, 2840000), 64, 64)
    p = write_raster(np.zeros((6, 64, 64), np.uint16), grid, tmp_path / "empty.tif", nodata=0,
                     descriptions=("B02", "B03", "B04", "B08", "B11", "B12"))
    code, line = cli(["detect", p, "--out", tmp_path / "fp.geojson", "--method", "rules"], capsys)
    assert code == 6
    assert_msg(line, "has no valid pixel", "check its nodata value")


def test_weights_error_never_advises_unsafe_loading(image, weights, tmp_path, capsys):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("true",))

    bad = _variant(weights, tmp_path / "x", _torch_bytes({"weight": Exploit()}))
    code, line = cli(["detect", image, "--out", tmp_path / "fp.geojson", "--method", "model", "--weights", bad,
                      "--device", "cpu"], capsys)
    assert code == 5
    assert_msg(line, "cannot load", "not a plain state dict")
    low = line.lower()
    assert "weights_only" not in low and "re-running" not in low and "trusted source" not in low, line


# -- AOI, STAC and report ------------------------------------------------------------------------------------

def test_aoi_nested_200000_deep(tmp_path, capsys):
    p = tmp_path / "deep.geojson"
    p.write_text("[" * 200_000 + "]" * 200_000)
    code, line = cli(["run", "--aoi", p, "--start", START, "--end", END, "--out", tmp_path / "run",
                      "--stac-url", tmp_path / "never.json"], capsys)
    assert code == 2
    assert_msg(line, "nests its JSON too deeply", "re-export it as GeoJSON")


def test_huge_aoi_is_searched_by_its_bounding_box(cloud, tmp_path):
    """An AOI of 20,000 vertices is not sent to the API as-is (APIs refuse such bodies): its bounding box is,
    and the items are matched against the full AOI."""
    import shapely

    from geo.aoi import read_aoi
    from geo.periods import parse_interval
    from geo.sources.providers import Provider
    from geo.sources.stac import search

    ring = shapely.Point(98.35, 25.64).buffer(0.05, quad_segs=5000)
    p = aoi_file(tmp_path, shapely.geometry.mapping(ring))
    aoi = read_aoi(p)
    assert shapely.get_num_coordinates(aoi.geometry) > 19_000
    items = search(aoi, parse_interval("2021-11/2022-04"), provider=Provider("es", cloud.es_api.url), max_cloud=100)
    bodies = [b for b in cloud.es_api.bodies if "intersects" in b]
    assert bodies and all(len(b) < 5000 for b in bodies), "the search body must stay small"
    assert all(shapely.geometry.shape(i.geometry).intersects(aoi.geometry) for i in items)


def _with_clouds(ds, tmp_path, values) -> Path:
    vals = iter(values)
    return catalogue(ds, tmp_path, lambda it: it["properties"].update({"eo:cloud_cover": next(vals)}))


def test_cloud_cover_strings_and_negatives(ds, tmp_path):
    from geo.aoi import read_aoi
    from geo.periods import parse_interval
    from geo.sources.stac import cloud_cover, search

    n = len(json.loads(ds.items_path.read_text())["features"])
    values = [7, "lots", -5, "12.5", None, float("nan")] + [50] * n
    items_path = _with_clouds(ds, tmp_path, values)
    aoi = read_aoi(ds.aoi_path)
    found = search(aoi, parse_interval("2021-11-01/2024-04-30"), provider=str(items_path), max_cloud=100)
    assert len(found) == n, "items with unusable cloud cover are kept (scene cloud is only a hint)"
    assert sorted(c for c in map(cloud_cover, found) if c is not None)[:2] == [7.0, 12.5]
    best = search(aoi, parse_interval("2021-11-01/2024-04-30"), provider=str(items_path), max_cloud=100, limit=1)
    assert cloud_cover(best[0]) == 7.0, "a negative or garbled cloud cover never ranks as the clearest"
    assert search(aoi, parse_interval("2021-11-01/2024-04-30"), provider=str(items_path), max_cloud=10)


def test_search_accepts_partial_dates(ds, tmp_path, capsys):
    from geo.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["-q", "search", "--aoi", str(ds.aoi_path), "--period", "2022-11/2023-04", "--provider",
              str(ds.items_path), "--max-cloud", "100"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "2022-11" in out or "2023-0" in out
    from geo.periods import parse_interval

    p = parse_interval("2023-11/2024-02")
    assert (p.start.isoformat(), p.end.isoformat()) == ("2023-11-01", "2024-02-29")
    assert parse_interval("2023/2023").end.isoformat() == "2023-12-31"


def test_collection_is_selectable(cloud, tmp_path, capsys):
    from geo.errors import StacError
    from geo.aoi import read_aoi
    from geo.periods import parse_interval
    from geo.sources.providers import Provider
    from geo.sources.stac import search

    aoi = read_aoi(aoi_file(tmp_path, SQUARE))
    with pytest.raises(StacError, match="no collection 'landsat-c2-l2'"):
        search(aoi, parse_interval("2021-11/2022-04"), provider=Provider("es", cloud.es_api.url),
               collection="landsat-c2-l2")
    from geo.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["-q", "run", "--aoi", str(aoi_file(tmp_path, SQUARE, "a.geojson")), "--start", "2021", "--end", "2021",
              "--out", str(tmp_path / "run"), "--stac-url", cloud.es_api.url, "--collection", "landsat-c2-l2", "--sync"])
    assert exc.value.code == 3
    assert "no collection 'landsat-c2-l2'" in capsys.readouterr().err


def test_report_escapes_the_aoi_name(ds, tmp_path, capsys):
    hostile = "<img src=x onerror=alert(1)>[click](javascript:alert(1)) *b* #h"
    doc = json.loads(ds.aoi_path.read_text())
    for f in doc["features"]:
        f.setdefault("properties", {})["name"] = hostile
    aoi = tmp_path / "hostile.geojson"
    aoi.write_text(json.dumps(doc))
    from geo.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["-q", *map(str, run_args(ds, tmp_path / "run", None, aoi, "--method", "rules"))])
    assert exc.value.code == 0, capsys.readouterr().err
    md = (tmp_path / "run" / "report.md").read_text()
    assert "<img" not in md and "](javascript:" not in md
    assert "&lt;img src=x onerror=alert\\(1\\)&gt;\\[click\\]\\(javascript:alert\\(1\\)\\) \\*b\\* \\#h" in md


# -- the run folder: a lock, and a manifest that says how the run ended ------------------------------------

def test_two_runs_into_one_folder(ds, tmp_path, capsys):
    from geo.run.runfolder import LOCK_NAME, lock_run_dir

    out = tmp_path / "run"
    out.mkdir()
    held = lock_run_dir(out)  # another run is writing here
    try:
        code, line = cli(run_args(ds, out), capsys)
    finally:
        held.close()
    assert code == 7
    assert_msg(line, f"another minewatch run (process {os.getpid()}) is writing into {out}", "choose another --out")
    assert not (out / "manifest.json").exists() and not (out / LOCK_NAME).exists()
    code = subprocess.run([sys.executable, "-m", "geo", "-q", *map(str, run_args(ds, out, None, None, "--method",
                                                                                  "rules"))],
                          capture_output=True, text=True, timeout=300, cwd=REPO).returncode
    assert code == 0, "once the other run ends, the folder is free"
    assert _manifest(out)["status"] == "complete" and not (out / LOCK_NAME).exists()


def test_help_texts(capsys):
    from geo.cli.main import main

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    assert "%%" not in text and "(%)" in text and "--collection" in text
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "run_all_aois.py"), "--help"], capture_output=True,
                         text=True, timeout=60)
    assert "-- <minewatch run flags>" in res.stdout and "passed to 'minewatch run' unchanged" in res.stdout


def test_batch_script_messages(tmp_path):
    aois = tmp_path / "aois"
    aois.mkdir()
    (aois / "broken.geojson").write_text("{ not json")
    out = tmp_path / "batch"
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "run_all_aois.py"), "--aoi-dir", str(aois),
                          "--start", "2021", "--end", "2021", "--out", str(out), "--", "--sync"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    failed = [ln for ln in res.stderr.splitlines() if "FAILED" in ln]
    assert len(failed) == 1 and failed[0].strip().startswith("FAILED (exit 2) after ")
    assert failed[0].rstrip().endswith("re-export it as GeoJSON"), "the elapsed time is not glued onto the message"
    last = res.stderr.strip().splitlines()[-1]
    tables = last.split("tables: ", 1)[1].split(";")[0].split(", ")
    assert tables and all(Path(t).exists() for t in tables), f"the script names a table it did not write: {last}"
    assert not (out / "batch_summary.csv").exists()
