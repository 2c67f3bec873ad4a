"""Requests, bytes and time to load an AOI window from COGs over HTTP: minewatch vs plain GDAL vs local reads.

For each COG tile size (``--blocks``) writes one Sentinel-2-like scene (4×10 m bands, 2×20 m bands, SCL;
DEFLATE COGs with overviews, Earth Search v1 item) into a temp folder, serves it with
``python -m RangeHTTPServer`` on 127.0.0.1 behind a request- and byte-counting proxy, and loads one AOI
window (off the tile grid: it straddles tile edges) several ways, side by side:

* ``minewatch load_stack``: ``geo.sources.load.load_stack`` cold (window cache off, header cache cleared):
  range reads through ``geo.sources.cog_ranges.RangeFile``, 20 m bands and SCL warped onto the 10 m grid.
* ``minewatch load_stack, headers warm``: the same call again in the same process, window cache off
  (what another AOI tile or period over the same assets costs: no header/IFD re-reads).
* ``minewatch load_stack, window cache``: rerun with the window cache warm (must fetch nothing).
* ``minewatch reader, window reads``: ``geo.sources.load.read_window`` per band on that band's native grid
  (a plain window read through minewatch's reader: the like-for-like row against GDAL's).
* ``GDAL /vsicurl/ defaults``: plain ``src.read(1, window=...)`` per band through GDAL's ``/vsicurl/``
  (only ``GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR``, as every COG reader sets); each repeat uses a fresh
  URL so GDAL's process-wide /vsicurl/ cache cannot serve it from an earlier repeat.
* ``GDAL /vsicurl/ tuned``: the same with merge/multirange/cache/retry options set.
* ``rasterio local``: the same window reads from the files on disk (no HTTP: the floor for decode time).

"window bytes" is the uncompressed size of the AOI window at native resolution (what the AOI needs);
"tiles" is the compressed size of the COG tiles the window touches (the floor for any tile reader).
Times are medians over ``--repeat`` runs; requests and bytes are from the last run (they do not vary).

    python benchmarks/bench_load.py [--size 4096] [--blocks 256 1024 512] [--window 400] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pystac
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import from_bounds

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test servers double as benchmark servers

from servers import FaultProxy, RangeServer  # noqa: E402

import geo.sources.cog_ranges  # noqa: E402
from geo.grid import GeoGrid  # noqa: E402
from geo.sources.load import load_stack, read_window  # noqa: E402
from geo.sources.remote import ByteCounter  # noqa: E402

X0, Y0 = 399960.0, 2900040.0  # a real MGRS tile origin in UTM 47N (T47QQU-like)
BANDS = {"B02": ("blue", 10), "B03": ("green", 10), "B04": ("red", 10), "B08": ("nir", 10),
         "B11": ("swir16", 20), "B12": ("swir22", 20), "SCL": ("scl", 20)}
REFL = ("B02", "B03", "B04", "B08", "B11", "B12")
GDAL_DEFAULT = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
GDAL_TUNED = {**GDAL_DEFAULT, "GDAL_HTTP_MULTIRANGE": "PARALLEL", "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
              "CPL_VSIL_CURL_CACHE_SIZE": str(256 << 20), "VSI_CACHE": "TRUE", "GDAL_INGESTED_BYTES_AT_OPEN": "32768",
              "GDAL_HTTP_MAX_RETRY": "4", "GDAL_HTTP_RETRY_DELAY": "0.5"}


def texture(n: int, seed: int) -> np.ndarray:
    """Land-like uint16 DN: smooth fields plus sensor noise (compresses like real L2A, ~2–3×)."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(0, 1, (n // 32 + 2, n // 32 + 2))
    from scipy.ndimage import zoom

    field = zoom(coarse, 32, order=3)[:n, :n]
    return (2200 + 600 * field + rng.normal(0, 6, (n, n))).clip(1, 10000).astype(np.uint16)


def write_scene(root: Path, size: int, block: int) -> dict:
    assets = {}
    for i, (b, (key, res)) in enumerate(BANDS.items()):
        n = size * 10 // res
        arr = (texture(n, i) if b != "SCL" else np.where(texture(n, 99) > 2300, 4, 5)).astype(
            np.uint8 if b == "SCL" else np.uint16)
        p = root / f"{b}.tif"
        with rasterio.open(p, "w", driver="COG", width=n, height=n, count=1, dtype=arr.dtype.name,
                           crs=CRS.from_epsg(32647), transform=Affine(res, 0, X0, 0, -res, Y0), nodata=0,
                           compress="deflate", predictor=2, blocksize=block,
                           overview_resampling="nearest") as dst:
            dst.write(arr, 1)
        rb = {"nodata": 0, "data_type": arr.dtype.name, "spatial_resolution": res}
        if b != "SCL":
            rb.update(scale=0.0001, offset=-0.1)
        assets[key] = {"href": p.name, "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                       "raster:bands": [rb], "roles": ["data"]}
    return assets


def forget_headers() -> None:
    """Empty minewatch's per-process header cache."""
    geo.sources.cog_ranges.clear_header_cache()


def native_grids(grid: GeoGrid) -> dict[str, GeoGrid]:
    """Each band's own-resolution grid covering ``grid`` (pixel edges snapped outward)."""
    return {b: GeoGrid.from_bounds(grid.bounds, grid.crs, res) for b, (_k, res) in BANDS.items()}


def tile_floor(root: Path, grids: dict[str, GeoGrid]) -> int:
    """Compressed bytes of the COG tiles the native windows touch: the floor for tile reads."""
    total = 0
    for b, g in grids.items():
        with rasterio.open(root / f"{b}.tif") as src:
            win = from_bounds(*g.bounds, transform=src.transform).round_offsets().round_lengths()
            bh, bw = src.block_shapes[0]
            for r in range(int(win.row_off) // bh, (int(win.row_off + win.height) - 1) // bh + 1):
                for c in range(int(win.col_off) // bw, (int(win.col_off + win.width) - 1) // bw + 1):
                    total += int(src.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1) or 0)
    return total


def gdal_reads(hrefs: dict[str, str], grids: dict[str, GeoGrid], env: dict) -> None:
    """Plain window reads of every band through /vsicurl/, on a fresh URL (cold GDAL caches)."""
    fresh = uuid.uuid4().hex
    with rasterio.Env(**env):
        for b, g in grids.items():
            with rasterio.open(f"{hrefs[b]}?run={fresh}") as src:
                src.read(1, window=from_bounds(*g.bounds, transform=src.transform))


def local_reads(root: Path, grids: dict[str, GeoGrid]) -> None:
    for b, g in grids.items():
        with rasterio.open(root / f"{b}.tif") as src:
            src.read(1, window=from_bounds(*g.bounds, transform=src.transform))


def minewatch_reads(hrefs: dict[str, str], grids: dict[str, GeoGrid]) -> None:
    forget_headers()
    c = ByteCounter()
    for b, g in grids.items():
        read_window(hrefs[b], g, kind="scl" if b == "SCL" else "reflectance", counter=c)


def run_case(size: int, block: int, window: int, repeat: int) -> tuple[list, int, int]:
    """All methods on one scene; returns (rows, window bytes, tile bytes)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        assets = write_scene(root, size, block)
        print(f"[{block} px tiles] scene written in {time.perf_counter() - t0:.1f} s: {size} px 10 m bands, "
              f"{sum(p.stat().st_size for p in root.glob('*.tif')) / 1e6:.1f} MB on disk", flush=True)
        off = block - window // 3  # an AOI window off the tile grid (straddles tile edges)
        grid = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, X0 + off * 10, 0, -10, Y0 - off * 10), window, window)
        grids = native_grids(grid)
        window_bytes = sum(g.width * g.height * (1 if b == "SCL" else 2) for b, g in grids.items())
        tiles = tile_floor(root, grids)
        with RangeServer(root) as rs, FaultProxy(rs.url) as px:
            for a in assets.values():
                a["href"] = f"{px.url}/{a['href']}"
            hrefs = {b: assets[k]["href"] for b, (k, _r) in BANDS.items()}
            item = pystac.Item.from_dict({
                "type": "Feature", "stac_version": "1.0.0", "id": "S2B_47QQU_20240105_0_L2A",
                "geometry": None, "bbox": None, "assets": assets, "links": [],
                "properties": {"datetime": "2024-01-05T04:12:30Z", "platform": "sentinel-2b",
                               "s2:processing_baseline": "05.10", "eo:cloud_cover": 3.0}})

            def load_cold():
                forget_headers()
                load_stack([item], grid, bands=REFL)

            def load_cached():
                load_stack([item], grid, bands=REFL, cache_dir=root / "window-cache")

            methods = {
                "minewatch load_stack": load_cold,
                "minewatch load_stack, headers warm": lambda: load_stack([item], grid, bands=REFL),
                "minewatch load_stack, window cache": load_cached,
                "minewatch reader, window reads": lambda: minewatch_reads(hrefs, grids),
                "GDAL /vsicurl/ defaults": lambda: gdal_reads(hrefs, grids, GDAL_DEFAULT),
                "GDAL /vsicurl/ tuned": lambda: gdal_reads(hrefs, grids, GDAL_TUNED),
                "rasterio local": lambda: local_reads(root, grids),
            }
            warmup = {"minewatch load_stack, headers warm": load_cold,
                      "minewatch load_stack, window cache": load_cached}
            rows = []
            for name, fn in methods.items():
                times = []
                for _ in range(repeat):
                    if name in warmup:
                        warmup[name]()
                    px.reset_counts()
                    t = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t)
                http = name != "rasterio local"
                rows.append((block, name, float(np.median(times)), len(px.log) if http else None,
                             px.bytes_sent if http else None))
    return rows, window_bytes, tiles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096, help="10 m band edge in pixels (real tiles: 10980)")
    ap.add_argument("--blocks", type=int, nargs="+", default=[256, 1024, 512],
                    help="COG tile edges in pixels, one case each (Earth Search: 1024)")
    ap.add_argument("--window", type=int, default=400, help="AOI window edge at 10 m, pixels")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    cases = [run_case(args.size, b, args.window, args.repeat) for b in args.blocks]
    w = args.window
    print(f"\nAOI window {w}×{w} px at 10 m, 7 layers (6 bands + SCL), off the tile grid; "
          f"median of {args.repeat} runs; requests and bytes as seen by the proxy")
    print(f"{'tiles':>5s}  {'method':36s} {'requests':>8s} {'MB':>7s} {'× window':>8s} {'× tiles':>7s} "
          f"{'time s':>7s}")
    for rows, window_bytes, tiles in cases:
        for block, name, t, n, b in rows:
            nb = "-" if b is None else f"{b / 1e6:7.2f}"
            xw = "-" if b is None else f"{b / window_bytes:8.2f}"
            xt = "-" if b is None else f"{b / tiles:7.2f}"
            print(f"{block:5d}  {name:36s} {'-' if n is None else n:>8} {nb:>7s} {xw:>8s} {xt:>7s} {t:7.3f}")
        print(f"{'':5s}  (window {window_bytes / 1e6:.2f} MB uncompressed; tiles it touches {tiles / 1e6:.2f} MB "
              "compressed)")
    print("\nload_stack rows also warp 20 m bands and SCL onto the 10 m grid and apply the baseline offset; "
          "the reader, GDAL and local rows read native-resolution windows only.")


if __name__ == "__main__":
    main()
