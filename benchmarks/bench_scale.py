"""Scale benchmark: the same AOI on 1 and 2 Dask workers, and worker peak memory for AOIs of 1×, 4×, 16× area.

Usage::

    python benchmarks/bench_scale.py [--base-px 384] [--tile-px 512] [--io-threads 4] [--workdir DIR]

A simulated Sentinel-2 archive (three dry seasons, two acquisitions each) is written once, covering the
largest AOI. AOIs are squares of ``base``, ``2·base`` and ``4·base`` pixels (10 m) centred in it.

* Speed-up: the 16× AOI's (period × tile) tasks on a LocalCluster of 1 worker, then of 2 workers (one thread
  each). Clusters are started, and every worker has imported the task's modules, before the clock starts;
  only the task phase is timed (search and the serial merge are reported separately for one run). Each
  timing uses a fresh run folder and window cache (cold), so both do the same work.
* Memory: for each AOI a fresh 1-worker cluster runs all tasks; the worker's resident set size is sampled
  during every task (psutil) and its largest value reported, with the largest traced heap of one task. Memory per task is bounded by the tile (plus halo), so it
  should not grow with the AOI.

The figures print side by side with their ratios against the targets (>= 1.7× speed-up; memory flat
within 20 %). Timings on a shared or busy machine are noisy: repeat a few times and read the spread.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from pyproj import Transformer
from shapely.geometry import box, mapping
import shapely


def _rss_mb() -> float:
    """Current RSS of the calling process in MiB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _warm() -> int:
    import geo.stages.detect  # noqa: F401
    import geo.sources.load  # noqa: F401
    import geo.run.tasks  # noqa: F401

    return os.getpid()


def write_aoi(path: Path, grid, side_px: int) -> Path:
    """A square AOI of ``side_px`` 10 m pixels centred on ``grid`` (written as EPSG:4326 GeoJSON)."""
    w, s, e, n = grid.bounds
    cx, cy = (w + e) / 2, (s + n) / 2
    half = side_px * grid.resolution / 2
    sq = box(cx - half + 5, cy - half + 5, cx + half - 5, cy + half - 5).segmentize(50)
    to_ll = Transformer.from_crs(grid.crs, 4326, always_xy=True)
    ll = shapely.transform(sq, lambda xy: list(zip(*to_ll.transform(xy[:, 0], xy[:, 1]))))
    doc = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": mapping(ll),
           "properties": {"name": f"bench {side_px}px", "source": "simulated", "note": "benchmark AOI"}}]}
    path.write_text(json.dumps(doc))
    return path


def plan(aoi_path: Path, items: Path, out: Path, tile_px: int, io_threads: int = 4):
    from geo.aoi import read_aoi
    from geo.config import RunParams, SearchConfig
    from geo.periods import dry_seasons
    from geo.run.pipeline import RunRequest, plan_tasks, search_all

    periods = tuple(dry_seasons(2021, 2023))
    params = RunParams(search=SearchConfig(provider=str(items), max_cloud=100.0), tile_px=tile_px, io_threads=io_threads)
    req = RunRequest(aoi_path, periods, out, params)
    aoi = read_aoi(aoi_path)
    return req, aoi, plan_tasks(aoi, req, search_all(aoi, req))


def cpu_task(spec) -> dict:
    """Run one task; return the CPU seconds its worker process spent on it."""
    from geo.run.tasks import run_task

    c0 = time.process_time()
    run_task(spec)
    return {"cpu_s": time.process_time() - c0}


def mem_task(spec) -> dict:
    """Run one task while sampling its worker's RSS every 5 ms (psutil) and tracing its heap (tracemalloc).

    Returns ``rss_peak_mb`` (largest RSS seen during the task) and ``heap_peak_mb`` (largest traced heap,
    numpy arrays included), both MiB.
    """
    import threading
    import tracemalloc

    import psutil  # a dependency of dask.distributed

    from geo.run.tasks import run_task

    proc, peak, stop = psutil.Process(), [0], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            stop.wait(0.005)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    tracemalloc.start()
    try:
        run_task(spec)
        heap = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        stop.set()
        t.join()
    return {"rss_peak_mb": peak[0] / 2**20, "heap_peak_mb": heap / 2**20}


def timed_tasks(client, specs, fn=cpu_task) -> tuple[float, list[dict]]:
    from geo.run.executor import run_tasks

    t0 = time.perf_counter()
    res = run_tasks(fn, specs, scheduler=client.scheduler.address)
    return time.perf_counter() - t0, res


def cluster(n: int):
    from distributed import Client, LocalCluster

    c = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                     silence_logs=logging.CRITICAL)
    client = Client(c)
    client.run(_warm)
    return c, client


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base-px", type=int, default=384, help="side of the 1x AOI in 10 m pixels")
    ap.add_argument("--tile-px", type=int, default=512, help="tile edge in pixels")
    ap.add_argument("--io-threads", type=int, default=4,
                    help="concurrent asset reads inside one task (the run default is 4; 1 makes each worker single-threaded)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the archive and runs here")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.ERROR)

    from geo.sim.demo import write_demo_dataset
    from geo.sim.scene import SimConfig

    work = a.workdir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    side = 4 * a.base_px + 64
    side += side % 2
    t0 = time.perf_counter()
    cfg = SimConfig(width=side, height=side, margin=20, start_year=2021, end_year=2023, acquisitions_per_season=2,
                    initial_sites=8, new_sites_per_season=2, abandoned_sites=2, site_gap_m=300.0)
    ds = write_demo_dataset(work / "archive", config=cfg)
    print(f"simulated archive {side}x{side} px, {len(json.loads(ds.items_path.read_text())['features'])} scenes "
          f"in {time.perf_counter() - t0:.1f} s  ({work})")
    print(f"CPU cores available to this process: {len(os.sched_getaffinity(0))}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    aois = {m: write_aoi(work / f"aoi_{m}x.geojson", ds.grid, a.base_px * k) for m, k in ((1, 1), (4, 2), (16, 4))}

    # -- speed-up on the 16x AOI -----------------------------------------------------------------
    times = {}
    for n in (1, 2):
        c, client = cluster(n)
        try:
            out = work / f"speed_{n}w"
            shutil.rmtree(out, ignore_errors=True)
            req, aoi, specs = plan(aois[16], ds.items_path, out, a.tile_px, a.io_threads)
            load = os.getloadavg()[0]
            wall, res = timed_tasks(client, specs)
            times[n] = (wall, sum(r["cpu_s"] for r in res), load)
        finally:
            client.close()
            c.close()
    n_tasks = len(specs)
    from geo.results.outputs import build_outputs
    from geo.run.pipeline import search_all
    t0 = time.perf_counter()
    items_by_period = search_all(aoi, req)
    t_search = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_outputs(work / "speed_2w", aoi, req, items_by_period)
    t_merge = time.perf_counter() - t0

    # -- peak worker memory per AOI size ---------------------------------------------------------
    mem = {}
    for m, path in aois.items():
        c, client = cluster(1)
        try:
            base = max(client.run(_rss_mb).values())
            out = work / f"mem_{m}x"
            shutil.rmtree(out, ignore_errors=True)
            _req, _aoi, sp = plan(path, ds.items_path, out, a.tile_px, a.io_threads)
            _wall, res = timed_tasks(client, sp, mem_task)
            mem[m] = (len(sp), base, max(r["rss_peak_mb"] for r in res), max(r["heap_peak_mb"] for r in res))
        finally:
            client.close()
            c.close()

    speed = times[1][0] / times[2][0]
    print()
    print(f"Speed-up, 16x AOI ({4 * a.base_px}x{4 * a.base_px} px), {n_tasks} tasks of <= {a.tile_px} px tiles:")
    print(f"  {'workers':>8} {'task phase s':>13} {'tasks/s':>8} {'task CPU s':>11} {'load avg before':>16}")
    for n in (1, 2):
        wall, cpu, load = times[n]
        print(f"  {n:>8} {wall:>13.1f} {n_tasks / wall:>8.2f} {cpu:>11.1f} {load:>16.2f}")
    print(f"  speed-up 2 vs 1 worker: {speed:.2f}x  (target >= 1.7x: {'met' if speed >= 1.7 else 'NOT met'})")
    print(f"  serial parts of one run: search {t_search:.1f} s, merge + vectors + report {t_merge:.1f} s")
    print()
    print("Peak worker memory by AOI area (one worker; RSS sampled every 5 ms during each task, GDAL buffers")
    print("included; heap = largest tracemalloc peak of one task, numpy arrays included):")
    print(f"  {'area':>5} {'tasks':>6} {'idle RSS MiB':>13} {'peak RSS MiB':>13} {'vs 1x':>6} {'task heap MiB':>14} {'vs 1x':>6}")
    for m, (nt, base, peak, heap) in mem.items():
        print(f"  {m:>4}x {nt:>6} {base:>13.0f} {peak:>13.0f} {peak / mem[1][2]:>6.2f} {heap:>14.1f} "
              f"{heap / mem[1][3]:>6.2f}")
    for name, i in (("RSS", 2), ("task heap", 3)):
        vals = [v[i] for v in mem.values()]
        spread = max(vals) / min(vals) - 1
        print(f"  spread of {name} peaks: {100 * spread:.1f} %  (target flat within 20 %: "
              f"{'met' if spread <= 0.2 else 'NOT met'})")
    if a.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
