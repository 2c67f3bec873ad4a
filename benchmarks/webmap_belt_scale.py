"""Belt-scale report map: size and season-switch time in headless Chromium, minewatch's map vs a naive one.

Synthetic belt-sized AOI (44 × 57 km at 10 m, UTM 47N) with N_BLOBS irregular footprints per season (rasterised
discs polygonised by minewatch, so edges are pixel staircases like real output), SEASONS seasons, one composite.

- **minewatch**: the map as shipped (6-decimal coordinates, simplified geometry below the detail zoom, canvas above
  CANVAS_ABOVE polygons);
- **naive baseline**: the same page with 15-digit coordinates, no simplified copy and one SVG path per polygon
  (close to inlining the GeoJSON files into a default Leaflet map; it still gets the packed encoding and the cache).

Prints sizes and the median time (ms) to switch season (draw until the next two animation frames) side by side,
with the ratio. Needs /usr/bin/chromium, chromedriver and selenium. Run: ``.venv/bin/python benchmarks/webmap_belt_scale.py``
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo.grid import GeoGrid  # noqa: E402
from geo.results import webmap  # noqa: E402
from geo.results.layers import confidence_pct, with_period  # noqa: E402
from geo.results.sites import group_sites  # noqa: E402
from geo.config import SiteConfig  # noqa: E402
from geo.stages.vectorize import polygonize  # noqa: E402

N_BLOBS = 4000
SEASONS = 6
GRID = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 410000, 0, -10, 2870000), 4400, 5700)


def seasons_data(rng) -> list:
    yy, xx = np.mgrid[-7:8, -7:8]
    centres = np.column_stack([rng.integers(20, GRID.height - 20, N_BLOBS * 2), rng.integers(20, GRID.width - 20, N_BLOBS * 2)])
    out = []
    for s in range(SEASONS):
        cls = np.zeros(GRID.shape, np.uint8)
        pick = centres[rng.choice(len(centres), N_BLOBS, replace=False)]
        for (r, c), rad, k in zip(pick, rng.uniform(2.0, 6.5, N_BLOBS), rng.integers(1, 3, N_BLOBS)):
            disc = (yy**2 + xx**2) <= rad**2
            cls[r - 7 : r + 8, c - 7 : c + 8][disc] = k
        conf = np.where(cls > 0, 0.8, 0.0).astype(np.float32)
        fp = polygonize(cls, GRID, confidence=conf)
        sites, member = group_sites(fp, SiteConfig())
        fp["site_id"] = member
        label = f"{2019 + s}-{(20 + s) % 100:02d}"
        out.append((label, confidence_pct(with_period(fp, label)), with_period(sites, label)))
    return out


def page(fragment: str) -> str:
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>b</title></head><body>{fragment}</body></html>"


SWITCH = """const done = arguments[arguments.length - 1]; const m = window.minewatchMap; const times = [];
(async () => { for (let k = 0; k < 2 * m.seasons.length; k++) {
  const t0 = performance.now(); m.show(k % m.seasons.length);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  times.push(performance.now() - t0); } done(times); })();"""


def measure(html: Path) -> tuple[float, list[float]]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900",
              "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9"]:
        o.add_argument(a)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_script_timeout(300)
    try:
        t0 = time.perf_counter()
        d.get(html.as_uri())
        WebDriverWait(d, 300).until(lambda x: x.execute_script("return !!window.minewatchMap"))
        load = time.perf_counter() - t0
        return load, d.execute_async_script(SWITCH)
    finally:
        d.quit()


def main() -> None:
    rng = np.random.default_rng(5)
    t0 = time.perf_counter()
    seasons = seasons_data(rng)
    print(f"{len(seasons)} seasons × ~{len(seasons[0][1])} footprints on {GRID.width}×{GRID.height} px "
          f"(built in {time.perf_counter() - t0:.0f} s)")
    rgb = np.clip(rng.normal(0.08, 0.02, (3, 1100, 1425)), 0.001, 1).astype(np.float32)
    qgrid = GeoGrid(GRID.crs, Affine(40, 0, GRID.transform.c, 0, -40, GRID.transform.f), 1100, 1425)
    dates = {s: ("", "") for s, _, _ in seasons}
    data = webmap.map_data(seasons, dates=dates, imagery={seasons[-1][0]: (rgb, qgrid)}, attribution="bench")
    naive = dict(data)
    webmap.PRECISION = 15
    naive["footprints"] = {s: webmap.feature_collection(fp, webmap.FOOTPRINT_PROPS) for s, fp, _ in seasons}
    naive["footprints_lo"] = naive["footprints"]
    naive["detail_zoom"] = 0
    naive["canvas_above"] = 10**9
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "minewatch.html", Path(tmp) / "naive.html"
        a.write_text(page(webmap.map_html(data)), encoding="utf-8")
        b.write_text(page(webmap.map_html(naive)), encoding="utf-8")
        rows = []
        for name, path in (("minewatch", a), ("naive baseline", b)):
            load, times = measure(path)
            rows.append((name, path.stat().st_size / 1e6, load, statistics.median(times)))
    print(f"{'':16} {'HTML MB':>8} {'load s':>7} {'switch ms':>10}")
    for name, mb, load, sw in rows:
        print(f"{name:16} {mb:8.1f} {load:7.2f} {sw:10.0f}")
    (_, mb_a, load_a, sw_a), (_, mb_b, load_b, sw_b) = rows
    print(f"{'naive/minewatch':16} {mb_b / mb_a:8.2f} {load_b / load_a:7.2f} {sw_b / sw_a:10.2f}")
    print(json.dumps({"features_per_season": len(seasons[0][1]), "seasons": len(seasons)}))


if __name__ == "__main__":
    main()
