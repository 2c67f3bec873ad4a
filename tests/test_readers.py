"""The two http(s) COG readers: minewatch's range reader (default) and GDAL's own ``/vsicurl/`` reader, which
is used whenever the user set one of GDAL's HTTP settings, so those settings reach the reads."""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    import os

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


def test_a_users_gdal_setting_reaches_the_reads(cloud, monkeypatch, no_gdal_settings):
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
        monkeypatch.setenv("GDAL_HTTP_HEADERS", "X-Minewatch-Test: from-env")
        for it in items:  # new URLs: GDAL's per-process /vsicurl/ cache has not seen them
            for a in it.assets.values():
                a.href += "?fresh=1"
        got = load_stack(items, GRID, policy=FAST)
        np.testing.assert_array_equal(got.data, plain.data)
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
