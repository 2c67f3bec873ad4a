#!/usr/bin/env python
"""The composite and the rules' post-processing: today's code vs the plain implementations they replaced.

    python benchmarks/bench_stages.py [--px 664] [--scenes 4 8 25] [--repeat 3]

The replaced implementations are the reference ones kept in ``tests/test_fast_paths.py`` (which also checks
that both give identical outputs). Inputs: a random reflectance stack of ``--px`` square (a 600 px tile plus
its 32 px halo) with 30 % of observations cloudy and 5 % nodata, for each ``--scenes``; and a simulated scene
(``geo.sim``) for the rules classifier. Best of ``--repeat`` runs, side by side with the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from test_fast_paths import reference_elongation, reference_median, reference_near  # noqa: E402

from geo.grid import GeoGrid  # noqa: E402
from geo.stack import Composite, ReflectanceStack  # noqa: E402
from geo.stages import detect  # noqa: E402
from geo.stages.composite import median_composite  # noqa: E402


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def sim_composite(px: int) -> Composite:
    from geo.sim.scene import SimConfig, render_acquisition, simulate

    scn = simulate(SimConfig(seed=5, width=px, height=px, margin=20, start_year=2020, end_year=2022,
                             acquisitions_per_season=1, cloud_amount=0.0, initial_sites=max(3, px // 60)))
    acq = render_acquisition(scn, 0)
    bands = detect.RULE_BANDS
    data = np.stack([acq.reflectance[b] if acq.reflectance[b].shape == acq.valid.shape
                     else np.kron(acq.reflectance[b], np.ones((2, 2), np.float32)) for b in bands])
    return Composite(data=data.astype(np.float32), clear_count=np.full(acq.valid.shape, 3, np.uint16), bands=bands,
                     grid=scn.scene_grid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--px", type=int, default=664)
    ap.add_argument("--scenes", type=int, nargs="+", default=[4, 8, 25])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    rng = np.random.default_rng(0)
    from affine import Affine
    from rasterio.crs import CRS

    grid = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 500000, 0, -10, 2800000), a.px, a.px)
    for t in a.scenes:
        data = rng.random((t, 6, a.px, a.px), dtype=np.float32)
        data[rng.random(data.shape) < 0.05] = np.nan
        clear = rng.random((t, a.px, a.px)) < 0.7
        st = ReflectanceStack(data, None, tuple(f"B{i}" for i in range(6)),
                              tuple(dt.datetime(2021, 1, 1 + i) for i in range(t)), tuple(map(str, range(t))), grid)
        rows.append((f"median composite, {t} scenes", best(lambda: reference_median(data, clear), a.repeat),
                     best(lambda: median_composite(st, clear), a.repeat)))
    comp = sim_composite(a.px - 40)
    new = best(lambda: detect.classify_rules(comp), a.repeat)
    fast = detect._elongation, detect._near
    detect._elongation, detect._near = reference_elongation, reference_near
    try:
        old = best(lambda: detect.classify_rules(comp), a.repeat)
    finally:
        detect._elongation, detect._near = fast
    rows.append((f"rules classifier, {comp.grid.width} px simulated scene", old, new))
    print(f"\n{'':44s} {'before s':>9s} {'now s':>7s} {'speed-up':>9s}")
    for name, old, new in rows:
        print(f"{name:44s} {old:9.3f} {new:7.3f} {old / new:8.1f}x")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
