#!/usr/bin/env python
"""Which COG reader should minewatch use? GDAL ``/vsicurl/``, odc-stac and the hand range reader, side by side,
over a loopback network with realistic latency and a bandwidth cap.

    python benchmarks/bench_read.py [--latency 50 100] [--mbit 200] [--threads 4] [--repeat 3]
                                    [--cases demo s2] [--workdir DIR]

The COGs are served by ``python -m RangeHTTPServer`` (``tests/servers.py``) behind :class:`slownet.SlowProxy`:
50–100 ms before each answer's first byte (one more on a new connection) and one shared bandwidth cap. Each
method loads the same STAC items onto the same 10 m grid (20 m bands and SCL warped, ``--threads`` reads in
flight), cold: fresh URLs (``?run=<uuid>``) so GDAL's per-process ``/vsicurl/`` cache cannot help, and
minewatch's header cache emptied.

* ``hand ranges``: :func:`geo.sources.load.load_stack` with the hand reader (``reader="ranges"``) when this
  checkout still has it.
* ``GDAL /vsicurl/``: :func:`geo.sources.load.load_stack` reading through GDAL's own HTTP client
  (``reader="gdal"``): :data:`geo.sources.gdal_http.GDAL_ENV` plus ``GDAL_HTTP_MULTIRANGE=PARALLEL``,
  ``GDAL_HTTP_MERGE_CONSECUTIVE_RANGES=YES``, ``GDAL_HTTP_MAX_RETRY``, ``VSI_CACHE``.
* ``GDAL /vsicurl/ untuned``: the same with only ``GDAL_DISABLE_READDIR_ON_OPEN`` set.
* ``odc-stac``: ``odc.stac.load`` of the same items and bands onto the same GeoBox (bilinear; SCL nearest),
  a pool of ``--threads``, cloud defaults.

Cases: ``demo`` — a simulated 6 × 6 km catalogue (``geo.sim.demo``, 23 scenes × 7 layers, 256-px tiles, the
whole file is the window); ``s2`` — Sentinel-2-sized files (4096 px 10 m bands, 1024-px tiles like Earth
Search) of which a 640-px AOI window off the tile grid is read, ``--s2-items`` items.
Times are medians of ``--repeat`` cold runs; requests and MB as counted by the proxy in the last run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pystac

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))

from servers import RangeServer  # noqa: E402
from slownet import SlowProxy  # noqa: E402

from geo.grid import GeoGrid  # noqa: E402
from geo.sources import load as load_mod  # noqa: E402

REFL = ("B02", "B03", "B04", "B08", "B11", "B12")
TUNED = {"GDAL_HTTP_MULTIRANGE": "PARALLEL", "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES", "VSI_CACHE": "TRUE",
         "GDAL_HTTP_MAX_RETRY": "3", "GDAL_HTTP_RETRY_DELAY": "0.5"}


def fresh_items(items: list[dict], base: str, root: Path) -> list[pystac.Item]:
    """The items with hrefs on ``base`` (the proxy) and a fresh query string: nothing cached can serve them."""
    run = uuid.uuid4().hex[:12]
    out = []
    for d in items:
        d = json.loads(json.dumps(d))
        for a in d["assets"].values():
            href = a["href"]
            rel = Path(href).resolve().relative_to(root.resolve()) if not href.startswith("http") else \
                href.split("/", 3)[3]
            a["href"] = f"{base}/{rel}?run={run}"
        out.append(pystac.Item.from_dict(d))
    return out


def forget() -> None:
    if hasattr(load_mod, "forget_headers"):
        load_mod.forget_headers()
    else:
        try:
            from geo.sources.cog_ranges import clear_header_cache

            clear_header_cache()
        except ImportError:
            pass


def readers() -> list[str]:
    """The http(s) readers this checkout's ``load_stack`` offers."""
    try:
        from geo.sources.gdal_http import READERS
    except ImportError:
        return []
    return list(READERS)


def mw_load(items, grid, threads, reader=None, env=None):
    forget()
    kw = {"reader": reader} if reader else {}
    if env is not None:
        import rasterio

        with rasterio.Env(**env):
            return load_mod.load_stack(items, grid, bands=REFL, workers=threads, **kw)
    return load_mod.load_stack(items, grid, bands=REFL, workers=threads, **kw)


def odc_load(items, grid, threads):
    import odc.stac
    from odc.geo.geobox import GeoBox

    odc.stac.configure_rio(cloud_defaults=True, **TUNED)
    gb = GeoBox((grid.height, grid.width), grid.transform, grid.crs.to_wkt())
    keys = ["blue", "green", "red", "nir", "swir16", "swir22", "scl"]
    ds = odc.stac.load(items, bands=keys, geobox=gb, groupby="solar_day", chunks=None, pool=threads,
                       resampling={"*": "bilinear", "scl": "nearest"}, fail_on_error=True)
    return {k: ds[k].values for k in keys}


def demo_case(work: Path) -> tuple[Path, list[dict], GeoGrid, str]:
    from geo.sim.demo import write_demo_dataset
    from geo.sim.scene import SimConfig

    cfg = SimConfig(seed=24, width=600, height=600, margin=20, start_year=2019, end_year=2024,
                    acquisitions_per_season=4)
    ds = write_demo_dataset(work / "demo6km", config=cfg)
    items = json.loads(ds.items_path.read_text())["features"]
    from affine import Affine

    halo = 32
    g = ds.grid
    grid = GeoGrid(g.crs, g.transform @ Affine.translation(-halo, -halo), g.width + 2 * halo, g.height + 2 * halo)
    return ds.root, items, grid, f"demo 6x6 km: {len(items)} scenes x 7 layers, whole files ({grid.width} px grid)"


def s2_case(work: Path, n_items: int, size: int = 4096, window: int = 640) -> tuple[Path, list[dict], GeoGrid, str]:
    """``n_items`` items whose assets are one Sentinel-2-like scene under different paths (cold for any cache)."""
    from affine import Affine
    from rasterio.crs import CRS

    from bench_load import X0, Y0, write_scene

    root = work / "s2"
    scene = root / "scene"
    if not (scene / "SCL.tif").exists():
        scene.mkdir(parents=True, exist_ok=True)
        assets = write_scene(scene, size, 1024)
        (scene / "assets.json").write_text(json.dumps(assets))
    assets = json.loads((scene / "assets.json").read_text())
    from rasterio.warp import transform_geom
    from shapely.geometry import box, mapping, shape

    foot = transform_geom("EPSG:32647", "EPSG:4326", mapping(box(X0, Y0 - size * 10, X0 + size * 10, Y0)))
    for k, v in assets.items():
        res = 20 if k in ("swir16", "swir22", "scl") else 10
        v.update({"proj:code": "EPSG:32647", "proj:shape": [size * 10 // res] * 2,
                  "proj:transform": [res, 0, X0, 0, -res, Y0]})
    items = []
    for i in range(n_items):
        link = root / f"copy{i}"
        if not link.exists():
            link.symlink_to(scene.resolve(), target_is_directory=True)
        a = {k: {**v, "href": str((link / v["href"]).absolute())} for k, v in assets.items()}
        items.append({"type": "Feature", "stac_version": "1.0.0", "id": f"S2B_47QQU_202401{i + 1:02d}_0_L2A",
                      "geometry": foot, "bbox": list(shape(foot).bounds), "assets": a, "links": [],
                      "properties": {"datetime": f"2024-01-{i + 1:02d}T04:12:30Z", "platform": "sentinel-2b",
                                     "s2:processing_baseline": "05.10", "eo:cloud_cover": 3.0}})
    off = 1024 - window // 3
    grid = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, X0 + off * 10, 0, -10, Y0 - off * 10), window, window)
    # symlinked folders must resolve inside root for the server: keep hrefs relative to root, unresolved
    for it in items:
        for v in it["assets"].values():
            v["href"] = "http://x/" + str(Path(v["href"]).relative_to(root.absolute()))
    return root, items, grid, f"S2-sized: {n_items} items x 7 layers, {size} px files in 1024-px tiles, {window} px window"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, nargs=2, default=(50.0, 100.0), metavar=("LO_MS", "HI_MS"))
    ap.add_argument("--mbit", type=float, default=200.0, help="bandwidth cap of the link, Mbit/s (0 = none)")
    ap.add_argument("--threads", type=int, default=4, help="reads in flight (minewatch io_threads, odc pool)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", nargs="+", default=["demo", "s2"], choices=["demo", "s2"])
    ap.add_argument("--s2-items", type=int, default=4)
    ap.add_argument("--methods", nargs="+", default=None, help="subset of method names to run")
    ap.add_argument("--workdir", type=Path, default=None)
    a = ap.parse_args()
    work = a.workdir or Path(tempfile.mkdtemp(prefix="bench-read-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"link: {a.latency[0]:.0f}-{a.latency[1]:.0f} ms per request (x2 on a new connection), "
          f"{a.mbit:.0f} Mbit/s shared; {a.threads} reads in flight; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)

    methods = {}
    if "ranges" in readers():
        methods["hand ranges (minewatch)"] = lambda it, g: mw_load(it, g, a.threads, "ranges")
    if "gdal" in readers():
        methods["GDAL /vsicurl/ (minewatch)"] = lambda it, g: mw_load(it, g, a.threads, "gdal")
        methods["GDAL /vsicurl/ untuned"] = lambda it, g: mw_load(
            it, g, a.threads, "gdal", env={k: "NO" if k != "GDAL_HTTP_MAX_RETRY" else "0" for k in TUNED} | {
                "GDAL_HTTP_MULTIRANGE": "SERIAL", "VSI_CACHE": "FALSE"})
    if not readers():
        methods["minewatch load_stack"] = lambda it, g: mw_load(it, g, a.threads)
    methods["odc-stac"] = lambda it, g: odc_load(it, g, a.threads)
    if a.methods:
        methods = {k: v for k, v in methods.items() if any(m in k for m in a.methods)}

    results = []
    for case in a.cases:
        root, items, grid, label = demo_case(work) if case == "demo" else s2_case(work, a.s2_items)
        print(f"\n[{label}]", flush=True)
        with RangeServer(root) as rs, SlowProxy(rs.url, latency_ms=tuple(a.latency), mbit_s=a.mbit) as px:
            for name, fn in methods.items():
                times = []
                for _ in range(a.repeat):
                    its = fresh_items(items, px.url, root)
                    px.reset_counts()
                    t0 = time.perf_counter()
                    fn(its, grid)
                    times.append(time.perf_counter() - t0)
                row = (case, name, statistics.median(times), min(times), px.requests, px.connections, px.bytes_sent)
                results.append(row)
                print(f"  {name:30s} median {row[2]:6.2f} s (best {row[3]:6.2f})  {row[4]:5d} requests "
                      f"{row[5]:4d} connections {row[6] / 1e6:7.2f} MB", flush=True)

    print(f"\nSide by side (median of {a.repeat} cold loads; ratio = time / fastest in the case):")
    print(f"  {'case':5s} {'method':30s} {'time s':>7s} {'ratio':>6s} {'requests':>8s} {'MB':>7s}")
    for case in a.cases:
        rows = [r for r in results if r[0] == case]
        best = min(r[2] for r in rows)
        for r in rows:
            print(f"  {case:5s} {r[1]:30s} {r[2]:7.2f} {r[2] / best:6.2f} {r[4]:8d} {r[6] / 1e6:7.2f}")
    print(f"  load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
