"""Belt-scale benchmark: a whole ``minewatch run`` on a synthetic catalogue of a given area, seasons and scenes.

Usage::

    python benchmarks/bench_belt.py --side-px 3200 --seasons 6 --scenes 9 [--workers 2] [--workdir DIR]

``--side-px 3200`` is a 32 × 32 km AOI (1,024 km²); ``--scenes 9`` gives 8 or 9 acquisitions per season (the
simulator draws the given number or one fewer). The catalogue is written once with the demo writer (its COGs are
the run's input; reused when it already exists) and the run is a real ``minewatch run`` subprocess, default
executor, fresh run folder, no window cache. While it runs, the resident set size of the main process and of every
process it starts (Dask workers) is sampled every 0.2 s (psutil).

Printed side by side: wall time (and per km²), the input bytes (every COG of the catalogue the run read) against
the run folder's bytes and their ratio (target < 1; issue 12 asks ≤ 0.5), and the peak RSS of the main process and of
the largest worker against the 2 GB target. A whole-belt estimate (2,491 km², 6 seasons) scales the measured time
per km²·season linearly (tasks are independent; per-task cost is set by the tile and the scenes per season).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing it
BELT_KM2, BELT_SEASONS = 2491.0, 6


def _bytes(root: Path, suffix: str | None = None) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and (suffix is None or p.suffix == suffix))


def write_catalogue(root: Path, side_px: int, seasons: int, scenes: int):
    from geo.sim.demo import write_demo_dataset
    from geo.sim.scene import SimConfig

    cfg = SimConfig(width=side_px, height=side_px, margin=20, start_year=2019, end_year=2019 + seasons - 1,
                    acquisitions_per_season=scenes, initial_sites=max(4, side_px // 100),
                    new_sites_per_season=max(1, side_px // 400), abandoned_sites=max(1, side_px // 400))
    return write_demo_dataset(root, config=cfg)


class PeakRss:
    """Largest RSS of a process and, separately, of each of its descendants, sampled every ``every`` s."""

    def __init__(self, pid: int, every: float = 0.2):
        import psutil

        self.proc, self.every = psutil.Process(pid), every
        self.main, self.children = 0, {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                self.main = max(self.main, self.proc.memory_info().rss)
                for c in self.proc.children(recursive=True):
                    try:
                        self.children[c.pid] = max(self.children.get(c.pid, 0), c.memory_info().rss)
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._t.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--side-px", type=int, default=3200, help="AOI edge in 10 m pixels (3200 = 1,024 km²)")
    ap.add_argument("--seasons", type=int, default=6)
    ap.add_argument("--scenes", type=int, default=9, help="acquisitions per season (the simulator draws this or one fewer)")
    ap.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: minewatch's choice)")
    ap.add_argument("--method", default="fused", choices=("rules", "model", "fused"))
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/minewatch-bench-belt"))
    a = ap.parse_args()

    cat_dir = a.workdir / f"catalogue-{a.side_px}px-{a.seasons}s-{a.scenes}n"
    t0 = time.perf_counter()
    ds = write_catalogue(cat_dir, a.side_px, a.seasons, a.scenes)
    sim_s = time.perf_counter() - t0
    items = json.loads(Path(ds.items_path).read_text())["features"]
    in_bytes = _bytes(cat_dir / "scenes", ".tif")
    out = a.workdir / f"run-{a.side_px}px-{a.seasons}s-{a.scenes}n-{int(time.time())}"
    cmd = [sys.executable, "-m", "geo", "run", "--aoi", str(ds.aoi_path), "--start", "2019",
           "--end", str(2019 + a.seasons - 1), "--out", str(out), "--stac-url", str(ds.items_path),
           "--max-cloud", "100", "--method", a.method]
    if a.workers:
        cmd += ["--workers", str(a.workers)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rss = PeakRss(proc.pid)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    rss.stop()
    if proc.returncode != 0:
        sys.exit(f"run failed ({proc.returncode}): {stderr[-3000:]}")
    man = json.loads((out / "manifest.json").read_text())
    km2 = man["inputs"]["aoi_area_km2"]
    out_bytes = _bytes(out)
    per_season = {}
    for it in items:
        per_season[it["properties"]["datetime"][:7]] = per_season.get(it["properties"]["datetime"][:7], 0) + 1
    worker_peak = max(rss.children.values(), default=0)
    per_km2_season = wall / km2 / a.seasons
    print(f"catalogue   {len(items)} scenes over {a.seasons} seasons, {in_bytes / 1e6:,.1f} MB of COGs "
          f"(simulated in {sim_s:,.0f} s; reused if 0)")
    print(f"AOI         {km2:,.1f} km², {man['tasks']['total']} tasks (tile {man['parameters']['tile_px']} px)")
    print(f"{'':28s}{'measured':>14s}{'target':>14s}{'ratio':>10s}")
    print(f"{'wall time, s':28s}{wall:14.1f}")
    print(f"{'s per km²':28s}{wall / km2:14.3f}")
    print(f"{'s per km² per season':28s}{per_km2_season:14.4f}")
    print(f"{'run folder / input bytes':28s}{out_bytes / 1e6:12.1f}MB{in_bytes / 1e6:12.1f}MB{out_bytes / in_bytes:10.2f}")
    print(f"{'peak RSS main, MB':28s}{rss.main / 1e6:14.0f}{2000:14d}{rss.main / 2e9:10.2f}")
    print(f"{'peak RSS worker, MB':28s}{worker_peak / 1e6:14.0f}{2000:14d}{worker_peak / 2e9:10.2f}"
          f"   ({len(rss.children)} child processes)")
    belt = per_km2_season * BELT_KM2 * BELT_SEASONS
    print(f"whole belt ({BELT_KM2:,.0f} km², {BELT_SEASONS} seasons) at this rate: {belt / 3600:,.1f} h on this machine")
    print(f"run folder {out}")


if __name__ == "__main__":
    main()
