"""The two http(s) COG readers: minewatch's range reader (default) and GDAL's own ``/vsicurl/`` reader, which
is used whenever the user set one of GDAL's HTTP settings, so those settings reach the reads."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from geo.errors import AccessDeniedError, ConfigError, StacError
from geo.grid import GeoGrid
from geo.sources.gdal_http import READER_ENV, choose_reader, gdal_options
from geo.sources.load import load_stack
from geo.sources.remote import RetryPolicy

FAST = RetryPolicy(attempts=3, backoff_s=0.05, max_backoff_s=1.0, timeout_s=2.0)
GRID = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 430500, 0, -10, 2839600), 250, 110)


def _items(path, keep=("S2B_47QQU_20211203_0_L2A", "S2B_47QRU_20211203_0_L2A", "S2A_47QQU_20220318_0_L2A")):
    return [pystac.Item.from_dict(f) for f in json.loads(path.read_text())["features"] if f["id"] in keep]


@pytest.fixture
def no_gdal_settings(monkeypatch):
    """An environment without GDAL HTTP settings or a forced reader (whatever the machine running the tests has)."""
    from geo.sources.gdal_http import GDAL_HTTP_SETTINGS

    for k in list(os.environ):
        if GDAL_HTTP_SETTINGS.match(k) or k == READER_ENV:
            monkeypatch.delenv(k)


def test_choose_reader(monkeypatch, no_gdal_settings):
    assert choose_reader() == "ranges"
    assert choose_reader("gdal") == "gdal"
    monkeypatch.setenv("GDAL_HTTP_PROXY", "http://proxy.example:3128")
    assert choose_reader() == "gdal"  # a GDAL setting only GDAL's client honours: GDAL reads
    assert choose_reader("ranges") == "ranges"  # the caller's explicit choice wins
    monkeypatch.delenv("GDAL_HTTP_PROXY")
    with rasterio.Env(GDAL_HTTP_MAX_RETRY="7"):
        assert choose_reader() == "gdal"
        assert "GDAL_HTTP_MAX_RETRY" not in gdal_options()  # the user's value is kept
    assert gdal_options(RetryPolicy(attempts=4))["GDAL_HTTP_MAX_RETRY"] == "3"
    monkeypatch.setenv(READER_ENV, "gdal")
    assert choose_reader() == "gdal"
    monkeypatch.setenv(READER_ENV, "curl")
    with pytest.raises(ConfigError, match="ranges or gdal"):
        choose_reader()


def test_gdal_reader_equals_range_reader(cloud, no_gdal_settings):
    items = _items(cloud.es_items_http)
    a = load_stack(items, GRID, policy=FAST, reader="ranges")
    b = load_stack(items, GRID, policy=FAST, reader="gdal")
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.scl, b.scl)
    assert np.isfinite(a.data).mean() > 0.5


def test_window_reads_reuse_the_process_threads(cloud, monkeypatch, no_gdal_settings):
    """GDAL reads run on threads that outlive each load (no thread ends between loads), a new pool in a forked
    child, and an error ends a load with none of its reads left running."""
    from geo.sources.threads import window_pool

    items = _items(cloud.es_items_http)

    def window_threads():
        return {t.ident for t in threading.enumerate() if t.name.startswith("cog-window")}

    load_stack(items, GRID, policy=FAST, reader="gdal", workers=3)
    first = window_threads()
    first_pool = window_pool(3)
    assert first and window_pool(3) is first_pool
    load_stack(items, GRID, policy=FAST, reader="gdal", workers=3)
    assert window_threads() == first
    from geo.sources import threads

    real_pid = os.getpid()
    with monkeypatch.context() as m:
        m.setattr(threads.os, "getpid", lambda: real_pid + 1)  # as in a forked child: its own pool
        child = window_pool(3)
        assert child is not first_pool and child.submit(lambda: 41 + 1).result(timeout=20) == 42
    bad = [pystac.Item.from_dict(it.to_dict()) for it in items]
    for a in bad[1].assets.values():
        a.href += "?missing=1"
    cloud.files.fail_all("status", code=404)
    with pytest.raises(StacError):
        load_stack(bad, GRID, policy=FAST, reader="gdal", workers=3)
    pool = window_pool(3)
    assert pool.submit(lambda: 1).result(timeout=5) == 1 and pool._work_queue.empty()  # nothing left queued


class HeaderLog:
    """A proxy on 127.0.0.1 that records every request's headers and forwards it to ``upstream``."""

    def __init__(self, upstream: str):
        up = urlsplit(upstream)
        self.seen: list[dict] = []
        log = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                log.seen.append(dict(self.headers.items()))
                c = http.client.HTTPConnection(up.hostname, up.port, timeout=10)
                c.request(self.command, self.path, headers={k: v for k, v in self.headers.items()
                                                            if k.lower() == "range"})
                r = c.getresponse()
                body = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() in ("content-type", "content-range", "accept-ranges", "content-length"):
                        self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                c.close()

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_users_gdal_setting_reaches_the_reads(cloud, no_gdal_settings, tmp_path):
    """``GDAL_HTTP_HEADERS`` set in the environment is sent with every COG request of a run's load."""
    log = HeaderLog(cloud.range.url)
    try:
        items = _items(cloud.es_items_http)
        for it in items:
            for a in it.assets.values():
                a.href = a.href.replace(cloud.files.url, log.url)
        plain = load_stack(items, GRID, policy=FAST)
        assert log.seen and not any("X-Minewatch-Test" in h for h in log.seen)
        log.seen.clear()
        # the setting is in the environment of a process started with it, as a user sets it (this process's
        # environment is never changed while GDAL may be running in it)
        src = tmp_path / "items.json"
        src.write_text(json.dumps({"type": "FeatureCollection", "features": [it.to_dict() for it in items]}))
        child = ("import json, sys, numpy as np, pystac; sys.path.insert(0, sys.argv[1]);"
                 "from test_readers import FAST, GRID; from geo.sources.load import load_stack;"
                 "its = [pystac.Item.from_dict(f) for f in json.load(open(sys.argv[2]))['features']];"
                 "np.save(sys.argv[3], load_stack(its, GRID, policy=FAST).data)")
        env = {**os.environ, "GDAL_HTTP_HEADERS": "X-Minewatch-Test: from-env"}
        r = subprocess.run([sys.executable, "-c", child, str(Path(__file__).parent), str(src), str(tmp_path / "got.npy")],
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        np.testing.assert_array_equal(np.load(tmp_path / "got.npy"), plain.data)
        assert log.seen and all(h.get("X-Minewatch-Test") == "from-env" for h in log.seen)
    finally:
        log.close()


def test_gdal_reader_errors_are_one_clear_line(cloud, no_gdal_settings):
    items = [pystac.Item.from_dict(json.loads(cloud.pc_items_http.read_text())["features"][0])]  # the blob-store stand-in refuses reads without a SAS token
    with pytest.raises(AccessDeniedError, match="HTTP 403"):
        load_stack(items, GRID, policy=FAST, bands=("B04",), with_scl=False, reader="gdal")
    items = _items(cloud.es_items_http)[:1]
    for a in items[0].assets.values():  # URLs GDAL's per-process /vsicurl/ cache has not seen
        a.href += "?never-read=1"
    cloud.files.fail_all("status", code=404)
    with pytest.raises(StacError, match="HTTP 404.*check the URL") as exc:
        load_stack(items, GRID, policy=FAST, bands=("B04",), with_scl=False, reader="gdal")
    assert "?" not in str(exc.value)


def test_both_readers_read_jpeg2000_and_urls_without_extension(tmp_path, no_gdal_settings):
    """Sentinel-2's own JPEG 2000 files and extension-less URLs read alike through the range reader and GDAL's
    ``/vsicurl/`` (which refused them: its allowed extensions were GeoTIFF's only); a file GDAL cannot parse is a
    RasterError naming the file, not a network failure."""
    import functools
    import shutil

    from RangeHTTPServer import RangeRequestHandler

    from geo.errors import RasterError
    from geo.sources.load import read_window

    data = (np.arange(120 * 260, dtype=np.uint16).reshape(120, 260) % 3000 + 100)
    prof = dict(driver="JP2OpenJPEG", width=260, height=120, count=1, dtype="uint16", crs="EPSG:32647",
                transform=Affine(10, 0, 430400, 0, -10, 2839700), QUALITY=100, REVERSIBLE="YES")
    with rasterio.open(tmp_path / "B04.jp2", "w", **prof) as dst:
        dst.write(data, 1)
    shutil.copy(tmp_path / "B04.jp2", tmp_path / "B04")
    (tmp_path / "junk.tif").write_bytes(b"not a raster at all\n" * 50)

    class Quiet(RangeRequestHandler):
        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{srv.server_port}/"
        want = read_window(str(tmp_path / "B04.jp2"), GRID, policy=FAST)
        assert np.isfinite(want).mean() > 0.5
        for name in ("B04.jp2", "B04"):
            for reader in ("ranges", "gdal"):
                got = read_window(base + name, GRID, policy=FAST, reader=reader)
                np.testing.assert_array_equal(got, want, err_msg=f"{name} via {reader}")
        for reader in ("ranges", "gdal"):
            with pytest.raises(RasterError, match="junk.tif"):
                read_window(base + "junk.tif", GRID, policy=FAST, reader=reader)
    finally:
        srv.shutdown()
        srv.server_close()
