#!/usr/bin/env python
"""The whole pipeline against the cost of merely decoding its input, side by side, on the same items over HTTP.

    python benchmarks/bench_pipeline.py [--km 6] [--seasons 6] [--scenes 4] [--latency 0 0] [--mbit 0]
                                        [--method fused] [--dask] [--workdir DIR]

A synthetic catalogue (``geo.sim.demo``: ``--km`` × ``--km`` km at 10 m, ``--seasons`` dry seasons of up to
``--scenes`` acquisitions, 7 COG layers per scene) is served over HTTP by ``python -m RangeHTTPServer``
(``tests/servers.py``) behind ``benchmarks/slownet.py``'s proxy (``--latency`` ms per request and a ``--mbit`` cap;
0 = plain loopback, as the issue measured). On the same items and the same task grids (tile + halo) it times:

* ``minewatch run --sync`` (cold: a fresh process, fresh run folder): wall time, peak RSS (``ru_maxrss`` of its
  largest process), bytes on the wire, run-folder bytes; with ``--dask`` also the default executor (a LocalCluster).
* the same tasks in this process with per-stage times: read (``load_stack``), mask (SCL + finite), composite
  (``median_composite``), detect (``classify``), write (task rasters), vectorise+report (``build_outputs``).
* the decode floor: every item × layer of every task read and warped onto the task grid through GDAL
  ``/vsicurl/`` with 2 threads, nothing else.
* ``odc.stac.load`` of the same items, bands and grids (bilinear, SCL nearest, 2 threads, grouped by solar day).

Each timing starts cold (fresh URLs and emptied header caches). Ratios are against the decode floor. The
machine is shared: the load average is printed before and after; read the figures with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "tests", REPO / "benchmarks"):
    sys.path.insert(0, str(p))

from servers import RangeServer  # noqa: E402
from slownet import SlowProxy  # noqa: E402

LAYERS = ("blue", "green", "red", "nir", "swir16", "swir22", "scl")


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def catalogue(work: Path, km: float, seasons: int, scenes: int):
    from geo.sim.demo import write_demo_dataset
    from geo.sim.scene import SimConfig

    px = int(round(km * 100)) // 2 * 2
    n_sites = max(3, int(km * km / 4))
    cfg = SimConfig(seed=24, width=px, height=px, margin=20, start_year=2019, end_year=2019 + seasons - 1,
                    acquisitions_per_season=scenes, initial_sites=min(n_sites, 40), new_sites_per_season=2,
                    abandoned_sites=min(4, n_sites // 3))
    t0 = time.perf_counter()
    ds = write_demo_dataset(work / f"cat_{km:g}km_{seasons}x{scenes}", config=cfg)
    return ds, time.perf_counter() - t0


def http_items(ds, base: str, out: Path) -> Path:
    """The catalogue's items with hrefs on ``base`` and a fresh query string (cold for every cache)."""
    run = uuid.uuid4().hex[:10]
    doc = json.loads(ds.items_path.read_text())
    for f in doc["features"]:
        for a in f["assets"].values():
            rel = Path(a["href"]).resolve().relative_to(ds.root.resolve())
            a["href"] = f"{base}/{rel}?run={run}"
    out.write_text(json.dumps(doc))
    return out


def forget_caches() -> None:
    from servers import fresh_process_caches

    fresh_process_caches()


def plan(ds, items_path: Path, out: Path, method: str):
    from geo.aoi import read_aoi
    from geo.config import DetectConfig, RunParams, SearchConfig
    from geo.run.pipeline import RunRequest, plan_tasks, search_all

    params = RunParams(search=SearchConfig(provider=str(items_path), max_cloud=100.0),
                       detect=DetectConfig(method=method))
    req = RunRequest(ds.aoi_path, tuple(ds.periods), out, params, executor="sync")
    aoi = read_aoi(ds.aoi_path)
    found = search_all(aoi, req)
    return req, aoi, found, plan_tasks(aoi, req, found)


#: Runs its arguments as a command and prints the largest RSS (KiB) of it and its descendants to stderr.
_RSS_WRAPPER = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def cli_run(ds, items_path: Path, out: Path, method: str, sync: bool) -> tuple[float, float]:
    """``minewatch run`` in a fresh process: wall seconds and the peak RSS (MiB) of its largest process (the main
    process with ``--sync``; the main process or a Dask worker otherwise)."""
    years = [p.start.year for p in ds.periods]
    cmd = [sys.executable, "-m", "geo", "-q", "run", "--aoi", str(ds.aoi_path), "--start", str(min(years)),
           "--end", str(max(years)), "--out", str(out), "--stac-url", str(items_path), "--max-cloud", "100",
           "--method", method] + (["--sync"] if sync else [])
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _RSS_WRAPPER, *cmd], cwd=REPO, check=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    return wall, int(done.stderr.strip().splitlines()[-1]) / 1024


def staged(specs, req, aoi, found, out: Path) -> dict[str, float]:
    """The tasks' stages timed one by one in this process (the same calls as ``geo.run.tasks.run_task``)."""
    import pystac

    from geo.aoi import region_mask
    from geo.grid import GeoGrid
    from geo.results.export import write_raster
    from geo.results.outputs import build_outputs
    from geo.run.tasks import STORED_BANDS, _pad
    from geo.sources.load import load_stack
    from geo.stages.cloud import scl_clear_mask, valid_data_mask
    from geo.stages.composite import median_composite
    from geo.stages.detect import FusionConfig, classify

    t = dict.fromkeys(("read", "mask", "composite", "detect", "write", "vectorise+report"), 0.0)
    for spec in specs:
        clock = time.perf_counter()

        def lap(name):
            nonlocal clock
            now = time.perf_counter()
            t[name] += now - clock
            clock = now

        grid = GeoGrid.from_dict(spec.grid)
        halo = spec.params.detect.halo_px
        load_grid = _pad(grid, halo)
        items = [pystac.Item.from_dict(d) for d in spec.items]
        stack = load_stack(items, load_grid, bands=STORED_BANDS, workers=spec.params.io_threads)
        lap("read")
        clear = scl_clear_mask(stack.scl, spec.params.cloud) & valid_data_mask(stack.data)
        lap("mask")
        comp = median_composite(stack, clear)
        del stack
        lap("composite")
        method = spec.params.detect.method
        det = classify(comp, method=method,
                       config=None if method == "rules" else FusionConfig(device=spec.params.detect.device))
        lap("detect")
        inner = (slice(halo, halo + grid.height), slice(halo, halo + grid.width))
        region = region_mask(spec.aoi_wkt, grid)
        o = Path(spec.out_dir)
        o.mkdir(parents=True, exist_ok=True)
        classes = np.where(region, det.classes[inner], 0).astype(np.uint8)
        count = comp.clear_count[inner]
        dn = np.clip(np.round(np.nan_to_num(comp.data[(slice(None), *inner)] * 10000.0)), 1, 65535).astype(np.uint16)
        write_raster(classes, grid, o / "classes.tif", nodata=None)
        write_raster(np.round(np.where(region, det.confidence[inner], 0) * 100).astype(np.uint8), grid,
                     o / "confidence.tif")
        write_raster(count.astype(np.uint16), grid, o / "clear_count.tif")
        write_raster(dn * (count > 0), grid, o / "composite.tif", nodata=0, descriptions=STORED_BANDS)
        lap("write")
    clock = time.perf_counter()
    build_outputs(out, aoi, req, found)
    t["vectorise+report"] += time.perf_counter() - clock
    return t


def decode_floor(specs, threads: int = 2) -> float:
    """Read and warp every item × layer of every task onto its grid through GDAL /vsicurl/, ``threads`` at once."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    from geo.grid import GeoGrid
    from geo.run.tasks import _pad

    jobs = []
    for spec in specs:
        g = _pad(GeoGrid.from_dict(spec.grid), spec.params.detect.halo_px)
        for it in spec.items:
            for k in LAYERS:
                jobs.append((it["assets"][k]["href"], g, k == "scl"))

    def one(job):
        href, g, scl = job
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", GDAL_HTTP_MULTIRANGE="PARALLEL",
                          GDAL_HTTP_MERGE_CONSECUTIVE_RANGES="YES", GDAL_INGESTED_BYTES_AT_OPEN="32768"):
            with rasterio.open(href) as src:
                dst = np.zeros(g.shape, np.uint16 if not scl else np.uint8)
                reproject(rasterio.band(src, 1), dst, dst_transform=g.transform, dst_crs=g.crs, src_nodata=0,
                          dst_nodata=0, resampling=Resampling.nearest if scl else Resampling.bilinear, num_threads=1)
        return dst.nbytes

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, jobs))
    return time.perf_counter() - t0


def odc_time(specs, threads: int = 2) -> float:
    import odc.stac
    import pystac
    from odc.geo.geobox import GeoBox

    from geo.grid import GeoGrid
    from geo.run.tasks import _pad

    odc.stac.configure_rio(cloud_defaults=True, GDAL_HTTP_MULTIRANGE="PARALLEL",
                           GDAL_HTTP_MERGE_CONSECUTIVE_RANGES="YES")
    t0 = time.perf_counter()
    for spec in specs:
        g = _pad(GeoGrid.from_dict(spec.grid), spec.params.detect.halo_px)
        gb = GeoBox((g.height, g.width), g.transform, g.crs.to_wkt())
        items = [pystac.Item.from_dict(d) for d in spec.items]
        ds = odc.stac.load(items, bands=list(LAYERS), geobox=gb, groupby="solar_day", chunks=None, pool=threads,
                           resampling={"*": "bilinear", "scl": "nearest"})
        del ds
    return time.perf_counter() - t0


def folder_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--km", type=float, nargs="+", default=[6.0], help="AOI edge(s) in km; one row each")
    ap.add_argument("--seasons", type=int, default=6)
    ap.add_argument("--scenes", type=int, default=4, help="acquisitions per season (each draws this or one fewer)")
    ap.add_argument("--latency", type=float, nargs=2, default=(0.0, 0.0), metavar=("LO_MS", "HI_MS"))
    ap.add_argument("--mbit", type=float, default=0.0, help="bandwidth cap, Mbit/s (0 = none)")
    ap.add_argument("--method", default="fused", choices=("rules", "model", "fused"))
    ap.add_argument("--dask", action="store_true", help="also time the default executor (a Dask LocalCluster)")
    ap.add_argument("--skip", nargs="*", default=[], choices=("run", "stages", "floor", "odc"))
    ap.add_argument("--workdir", type=Path, default=None)
    a = ap.parse_args()
    work = a.workdir or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"CPU cores: {len(os.sched_getaffinity(0))}; load average before: {load_avg()}", flush=True)

    rows = []
    for km in a.km:
        ds, t_write = catalogue(work, km, a.seasons, a.scenes)
        scenes = json.loads(ds.items_path.read_text())["features"]
        cog_bytes = sum(Path(x["href"]).stat().st_size for f in scenes for x in f["assets"].values())
        km2 = ds.grid.width * ds.grid.height / 1e4
        print(f"\n[{km:g} km: {ds.grid.width}x{ds.grid.height} px = {km2:.0f} km², {len(scenes)} scenes in "
              f"{len(ds.periods)} seasons, {cog_bytes / 1e6:.1f} MB of COGs (written in {t_write:.0f} s)]", flush=True)
        r = {"km": km, "km2": km2, "scenes": len(scenes), "cog_mb": cog_bytes / 1e6}
        with RangeServer(ds.root) as rs, SlowProxy(rs.url, latency_ms=tuple(a.latency), mbit_s=a.mbit) as px:
            if "run" not in a.skip:
                for sync in ([True, False] if a.dask else [True]):
                    out = work / f"run_{km:g}_{'sync' if sync else 'dask'}"
                    shutil.rmtree(out, ignore_errors=True)
                    items = http_items(ds, px.url, work / "items_http.json")
                    px.reset_counts()
                    wall, rss = cli_run(ds, items, out, a.method, sync)
                    key = "run_sync" if sync else "run_dask"
                    r[key], r[key + "_rss"], r[key + "_wire"] = wall, rss, px.bytes_sent / 1e6
                    r[key + "_folder"] = folder_bytes(out) / 1e6
                    print(f"  minewatch run {'--sync' if sync else '(Dask)'}: {wall:.2f} s, peak RSS {rss:.0f} MiB, "
                          f"{px.bytes_sent / 1e6:.1f} MB fetched, run folder {r[key + '_folder']:.1f} MB", flush=True)
            items = http_items(ds, px.url, work / "items_http.json")
            req, aoi, found, specs = plan(ds, items, work / f"stages_{km:g}", a.method)
            if "stages" not in a.skip:
                shutil.rmtree(work / f"stages_{km:g}", ignore_errors=True)
                forget_caches()
                r["stages"] = staged(specs, req, aoi, found, work / f"stages_{km:g}")
                print("  stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in r["stages"].items()), flush=True)
            if "floor" not in a.skip:
                items = http_items(ds, px.url, work / "items_http.json")
                r["floor"] = decode_floor(plan(ds, items, work / "floor", a.method)[3])
                print(f"  decode floor (GDAL /vsicurl/ read + warp, 2 threads): {r['floor']:.2f} s", flush=True)
            if "odc" not in a.skip:
                items = http_items(ds, px.url, work / "items_http.json")
                r["odc"] = odc_time(plan(ds, items, work / "odc", a.method)[3])
                print(f"  odc.stac.load (2 threads): {r['odc']:.2f} s", flush=True)
        rows.append(r)

    link = "plain loopback" if a.latency == (0.0, 0.0) and not a.mbit else \
        f"{a.latency[0]:.0f}-{a.latency[1]:.0f} ms per request, {a.mbit:.0f} Mbit/s"
    print(f"\nSide by side ({link}; method {a.method}; load average after: {load_avg()}):")
    print(f"  {'km²':>5s} {'scenes':>6s} {'what':34s} {'s':>7s} {'× floor':>8s} {'s/km²':>7s} {'peak RSS MiB':>12s}")
    for r in rows:
        floor = r.get("floor")

        def line(what, s, rss=None):
            x = f"{s / floor:8.2f}" if floor else f"{'-':>8s}"
            print(f"  {r['km2']:5.0f} {r['scenes']:6d} {what:34s} {s:7.2f} {x} {s / r['km2']:7.3f} "
                  f"{'-' if rss is None else f'{rss:.0f}':>12s}")

        if floor:
            line("decode floor (GDAL read+warp)", floor)
        if "odc" in r:
            line("odc-stac load", r["odc"])
        for key, name in (("run_sync", "minewatch run --sync (cold)"), ("run_dask", "minewatch run, Dask (cold)")):
            if key in r:
                line(name, r[key], r[key + "_rss"])
        if "stages" in r:
            total = sum(r["stages"].values())
            line("stages in-process, total", total)
            for k, v in r["stages"].items():
                print(f"  {'':5s} {'':6s}   {k:32s} {v:7.2f} {100 * v / total:7.1f} %")
        for key in ("run_sync", "run_dask"):
            if key in r:
                print(f"  {'':5s} {'':6s} {key}: {r[key + '_wire']:.1f} MB over HTTP for {r['cog_mb']:.1f} MB of COGs; "
                      f"run folder {r[key + '_folder']:.1f} MB ({r[key + '_folder'] / r['cog_mb']:.2f}x the COGs)")


if __name__ == "__main__":
    main()
