#!/usr/bin/env python
"""`minewatch run` end to end on the blind generators' multi-season series, beside the same scenes scored one by one.

    python benchmarks/bench_run_independent.py                                  # gen_d and gen_e, every variant
    python benchmarks/bench_run_independent.py --generators gen_e --variants pale --series 2 --method rules

``bench_independent.py --series`` classifies each season's scene in memory. Users get figures from ``minewatch run``
instead: scenes found through a STAC API, read as COGs, cloud-masked and composited per dry season, detected in
tiles with a halo, polygonised, small polygons dropped, sites grouped. This writes each season of a generator's
series as one clear Sentinel-2 L2A acquisition (COGs, 20 m SWIR as 2x2 means, an all-clear SCL, an Earth Search-shaped
STAC ItemCollection), runs the real ``minewatch run`` on it in a subprocess, and prints, per series, first -> last
season:

* the truth's footprint area and site-count growth (sites counted on the truth raster as ``bench_independent`` does);
* the same growth from the scenes classified one by one in memory (``bench_independent.detect``);
* the run's growth from its ``summary.csv``;
* first- and last-season footprint area against the truth's, in memory and from the run.
* how many of the run's seasons its self-check flags ``model_doubtful``, and how many ``rules_disagree`` (the fused
  map left out a material part of what the rules alone find), both in docs/MODEL_CHECKS.md.
* in how many landscapes the truth's footprint growth lies inside the run's own 95 % growth interval
  (``footprint_growth_pct_low`` / ``_high`` of its summary; docs/INTERVALS.md). That interval covers pixel, boundary
  and unobserved-ground error, not detector error: this column measures how far it can be trusted here.

Areas and site counts are summed over ``--series`` landscapes per generator variant before growth is taken.

A gap between the in-memory and the run columns is the pipeline's doing (compositing, tiling, polygons, site
grouping), not the detector's. Seeds: ``--seed0`` + 500 + k, the series ``bench_independent`` uses.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_independent as bi  # noqa: E402

from geo.results.run_inputs import model_checks_of  # noqa: E402

FIRST_YEAR = 2019  # dry season 2019-20 is the series' first season


def _grid(h: int, w: int, res: float = 10.0):
    from affine import Affine
    from rasterio.crs import CRS

    from geo.grid import GeoGrid

    return GeoGrid(CRS.from_epsg(32647), Affine(res, 0, 431000, 0, -res, 2840000), w, h)


def write_catalogue(root: Path, seq: list[tuple[np.ndarray, np.ndarray]], swir_m: int = 20) -> tuple[Path, Path]:
    """One clear acquisition per season of ``seq`` as COGs + an ItemCollection; returns (items.json, aoi.geojson).

    ``swir_m`` 20: B11/B12 written as 20 m assets (2x2 means of the generator's 10 m grid; the run resamples them back
    as it does real Sentinel-2); 10: written on the 10 m grid as the generator gave them (the run then reads exactly
    the in-memory input)."""
    from geo.sim.demo import ASSETS, COG_TYPE, _grid_polygon_wgs84, _write_tif

    h, w = seq[0][0].shape[1:]
    g10, g20 = _grid(h, w), _grid(h // 2, w // 2, 20.0)
    geom = _grid_polygon_wgs84(g10)
    items = []
    for t, (x, _) in enumerate(seq):
        date = dt.datetime(FIRST_YEAR + t + 1, 1, 15, 4, 0, tzinfo=dt.timezone.utc)
        iid = f"S2A_47RMJ_{date:%Y%m%d}_0_L2A"
        folder = root / "scenes" / iid
        folder.mkdir(parents=True, exist_ok=True)
        assets = {}
        for i, (band, (key, title, _)) in enumerate(ASSETS.items()):
            arr, g = x[i], g10
            if band in ("B11", "B12") and swir_m == 20:  # back to the 20 m Sentinel-2 gives
                arr, g = arr[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)), g20
            dn = np.clip(np.round(np.nan_to_num(arr, nan=0.0) * 10000), 1, 65535).astype(np.uint16)
            _write_tif(folder / f"{band}.tif", dn, g, nodata=0)
            assets[key] = {"href": str((folder / f"{band}.tif").resolve()), "type": COG_TYPE, "title": title,
                           "eo:bands": [{"name": band}], "roles": ["data", "reflectance"],
                           "proj:shape": [g.height, g.width], "proj:transform": list(g.transform)[:6],
                           "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": 0.0}]}
        _write_tif(folder / "SCL.tif", np.full((h // 2, w // 2), 4, np.uint8), g20, nodata=0)
        assets["scl"] = {"href": str((folder / "SCL.tif").resolve()), "type": COG_TYPE, "roles": ["data"],
                         "proj:shape": [h // 2, w // 2], "proj:transform": list(g20.transform)[:6],
                         "raster:bands": [{"nodata": 0, "data_type": "uint8"}]}
        items.append({
            "type": "Feature", "stac_version": "1.0.0", "id": iid, "collection": "sentinel-2-l2a", "links": [],
            "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                                "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
                                "https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
            "geometry": geom.__geo_interface__, "bbox": list(geom.bounds), "assets": assets,
            "properties": {"datetime": date.strftime("%Y-%m-%dT%H:%M:%SZ"), "platform": "sentinel-2a",
                           "constellation": "sentinel-2", "eo:cloud_cover": 0.0, "proj:epsg": 32647,
                           "s2:processing_baseline": "05.10", "earthsearch:boa_offset_applied": True,
                           "minewatch:simulated": True}})
    (root / "catalog").mkdir(exist_ok=True)
    items_path = root / "catalog" / "items.json"
    items_path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    aoi = root / "aoi.geojson"
    aoi.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "bench"}, "geometry": _grid_polygon_wgs84(g10, 5.0).__geo_interface__}]}))
    return items_path, aoi


def run_minewatch(items: Path, aoi: Path, out: Path, seasons: int, method: str, tile_px: int) -> list[dict]:
    """``minewatch run`` in a subprocess; its summary.csv rows (raises with the run's last line on failure)."""
    cmd = [sys.executable, "-m", "geo", "-q", "run", "--aoi", str(aoi), "--start", str(FIRST_YEAR),
           "--end", str(FIRST_YEAR + seasons - 1), "--out", str(out), "--stac-url", str(items), "--max-cloud", "100",
           "--method", method, "--tile-px", str(tile_px), "--sync"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(f"minewatch run exited {p.returncode}: {(p.stderr or p.stdout).strip().splitlines()[-1:]}")
    with open(out / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def series_row(gname: str, variant: str, k: int, seasons: int, size: int, seed0: int, method: str,
               tile_px: int, work: Path, swir_m: int = 20) -> dict:
    gen = bi.generators([gname])[gname]
    seq = gen.series(seed0 + 500 + k, variant, seasons, size)
    truth = [((y > 0).sum() * 100.0, bi.site_count(y)) for _, y in seq]
    mem = []
    for x, _ in (seq[0], seq[-1]):
        c = bi.detect(x, method, None)
        mem.append(((c > 0).sum() * 100.0, bi.site_count(c)))
    root = work / f"{gname}-{variant}-{k}"
    items, aoi = write_catalogue(root, seq, swir_m)
    rows = run_minewatch(items, aoi, root / "run", seasons, method, tile_px)
    run = [(float(rows[i]["footprint_area_m2"]), int(rows[i]["site_count"])) for i in (0, -1)]
    doubtful = sum(r.get("model_doubtful") == "True" for r in rows)  # the run's self-check (docs/MODEL_CHECKS.md)
    checks = model_checks_of(root / "run").values()
    disagree = sum(bool(c.get("rules_disagree")) for c in checks if isinstance(c, dict))
    lo, hi = (float(rows[-1].get(f"footprint_growth_pct_{e}") or "nan") for e in ("low", "high"))
    covered = bool(lo <= bi.growth(truth[0][0], truth[-1][0]) <= hi)  # the map's own 95 % interval holds the truth
    return {"truth": [truth[0], truth[-1]], "memory": mem, "run": run, "doubtful": doubtful, "disagree": disagree,
            "covered": covered,
            "seasons": len(rows)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generators", nargs="*", default=["gen_d", "gen_e", "gen_f", "gen_g"])
    ap.add_argument("--variants", nargs="*", default=None)
    ap.add_argument("--series", type=int, default=3, help="landscapes per variant (areas and sites summed over them)")
    ap.add_argument("--seasons", type=int, default=4)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seed0", type=int, default=900000)
    ap.add_argument("--method", choices=("rules", "model", "fused"), default="fused")
    ap.add_argument("--tile-px", type=int, default=256, help="the run's tile size (several tiles per scene)")
    ap.add_argument("--swir-m", type=int, choices=(10, 20), default=20,
                    help="B11/B12 asset resolution: 20 as Sentinel-2 delivers them, 10 = the generator's own 10 m grid")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--write-card", type=Path, nargs="?", const=ROOT / "models" / "weights" / "MODEL_CARD.md",
                    default=None, help="put the table into this model card (default: the shipped MODEL_CARD.md)")
    args = ap.parse_args(argv)
    if args.series < 1 or args.seasons < 2:
        ap.error("--series must be >= 1 and --seasons >= 2")
    t0 = time.perf_counter()
    g = bi.growth
    lines: list[str] = []

    def print(text: str = "", **_) -> None:  # noqa: A001  (every line also goes to the card)
        lines.append(text)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    print(f"{args.method}, first -> last of {args.seasons} seasons, {args.series} landscapes of {args.size} px per row "
          f"(areas and sites summed), one clear acquisition per season, SWIR assets at {args.swir_m} m")
    print("| generator:variant | truth growth % (area / sites) | in memory | minewatch run | run minus truth, pp "
          "| footprint area / truth's, first; last season (in memory; run) "
          "| seasons the run flags model-doubtful; rules-disagree | landscapes whose truth growth lies in the run's 95 % "
          "interval |")
    print("|---|---|---|---|---|---|---|---|")
    report = {}
    with tempfile.TemporaryDirectory(prefix="minewatch-bench-run-") as tmp:
        for gname, gen in bi.generators(args.generators).items():
            for variant in args.variants or gen.VARIANTS:
                tot = {k: np.zeros((2, 2)) for k in ("truth", "memory", "run")}
                flagged, disagree, covered = [0, 0], 0, 0
                for k in range(args.series):
                    r = series_row(gname, variant, k, args.seasons, args.size, args.seed0, args.method,
                                   args.tile_px, Path(tmp), args.swir_m)
                    for key in tot:
                        tot[key] += np.asarray(r[key], float)
                    flagged = [flagged[0] + r["doubtful"], flagged[1] + r["seasons"]]
                    disagree += r["disagree"]
                    covered += r["covered"]
                (ta0, ts0), (ta1, ts1) = tot["truth"]
                (ma0, ms0), (ma1, ms1) = tot["memory"]
                (ra0, rs0), (ra1, rs1) = tot["run"]
                name = f"{gname}:{variant}"
                report[name] = {**{k: v.tolist() for k, v in tot.items()}, "doubtful_seasons": flagged,
                                "rules_disagree_seasons": disagree, "truth_in_interval": [covered, args.series]}

                def ratio(a: float, t: float) -> str:
                    return f"{a / t:.2f}" if t else "-"

                print(f"| {name} | {g(ta0, ta1):+.1f} / {g(ts0, ts1):+.1f} | {g(ma0, ma1):+.1f} / {g(ms0, ms1):+.1f} "
                      f"| {g(ra0, ra1):+.1f} / {g(rs0, rs1):+.1f} | {g(ra0, ra1) - g(ta0, ta1):+.1f} / "
                      f"{g(rs0, rs1) - g(ts0, ts1):+.1f} | {ratio(ma0, ta0)}; {ratio(ma1, ta1)} ({ratio(ra0, ta0)}; "
                      f"{ratio(ra1, ta1)}) | {flagged[0]} of {flagged[1]}; {disagree} | {covered} of {args.series} |",
                      flush=True)
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.write_card:
        write_card(args.write_card, lines)
    return 0


CARD_BEGIN, CARD_END = "<!-- run-independent:begin -->", "<!-- run-independent:end -->"


def write_card(card: Path, lines: list[str]) -> None:
    """Put the table between the card's ``run-independent`` markers (before ``## Limits`` the first time)."""
    bi.write_card(card, lines, "run-independent", "## The blind generators' series through `minewatch run`",
                  "`benchmarks/bench_run_independent.py`: each season written as a clear Sentinel-2 L2A acquisition "
                  "(COGs, Earth Search-shaped STAC items), run through the real `minewatch run`, beside the same scenes "
                  "classified in memory:")


if __name__ == "__main__":
    raise SystemExit(main())
