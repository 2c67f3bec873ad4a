"""Bytes and time to load an AOI window from COGs over HTTP: minewatch vs plain rasterio window reads.

Writes one Sentinel-2-like scene (4×10 m bands, 2×20 m bands, SCL; DEFLATE COGs with overviews,
Earth Search v1 item) into a temp folder, serves it with ``python -m RangeHTTPServer`` on 127.0.0.1
behind a byte-counting proxy, and loads an AOI window three ways, side by side:

* ``minewatch``: ``geo.load.load_stack`` (range reads through ``geo.remote.RangeFile``, warp onto the grid)
* ``rasterio``: plain ``src.read(1, window=...)`` of each band through GDAL's ``/vsicurl/``
* ``minewatch cached``: the same call again with the window cache warm (must fetch 0 bytes)

"window bytes" is the uncompressed size of the AOI window at native resolution (what the AOI needs);
the target is fetched <= 1.5 × window bytes.

    python benchmarks/bench_load.py [--size 4096] [--block 512] [--window 400] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
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

from geo.grid import GeoGrid  # noqa: E402
from geo.load import load_stack  # noqa: E402
from geo.remote import ByteCounter  # noqa: E402

X0, Y0 = 399960.0, 2900040.0  # a real MGRS tile origin in UTM 47N (T47QQU-like)
BANDS = {"B02": ("blue", 10), "B03": ("green", 10), "B04": ("red", 10), "B08": ("nir", 10),
         "B11": ("swir16", 20), "B12": ("swir22", 20), "SCL": ("scl", 20)}


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096, help="10 m band edge in pixels (real tiles: 10980)")
    ap.add_argument("--block", type=int, default=512, help="COG tile edge in pixels (Earth Search: 1024)")
    ap.add_argument("--window", type=int, default=400, help="AOI window edge at 10 m, pixels")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        assets = write_scene(root, args.size, args.block)
        print(f"scene written in {time.perf_counter() - t0:.1f} s: {args.size} px 10 m bands, {args.block} px COG "
              f"tiles, {sum(p.stat().st_size for p in root.glob('*.tif')) / 1e6:.1f} MB on disk")
        with RangeServer(root) as rs, FaultProxy(rs.url) as px:
            for a in assets.values():
                a["href"] = f"{px.url}/{a['href']}"
            item = pystac.Item.from_dict({
                "type": "Feature", "stac_version": "1.0.0", "id": "S2B_47QQU_20240105_0_L2A",
                "geometry": None, "bbox": None, "assets": assets, "links": [],
                "properties": {"datetime": "2024-01-05T04:12:30Z", "platform": "sentinel-2b",
                               "s2:processing_baseline": "05.10", "eo:cloud_cover": 3.0}})
            # an AOI window off the tile grid (worst realistic case: straddles tile edges)
            off = args.block - args.window // 3
            left, top = X0 + off * 10, Y0 - off * 10
            w = args.window
            grid = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, left, 0, -10, top), w, w)
            window_bytes = sum((w * 10 // res) ** 2 * (1 if b == "SCL" else 2) for b, (k, res) in BANDS.items())

            tile_bytes = 0  # compressed bytes of the COG tiles the window touches: the floor for tile reads
            for b, (key, res) in BANDS.items():
                with rasterio.open(root / f"{b}.tif") as src:
                    win = from_bounds(*grid.bounds, transform=src.transform).round_offsets().round_lengths()
                    bh, bw = src.block_shapes[0]
                    for r in range(int(win.row_off) // bh, (int(win.row_off + win.height) - 1) // bh + 1):
                        for c in range(int(win.col_off) // bw, (int(win.col_off + win.width) - 1) // bw + 1):
                            tile_bytes += int(src.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1) or 0)

            rows = []
            for rep in range(args.repeat):
                # plain rasterio through GDAL /vsicurl/
                px.reset_counts()
                t = time.perf_counter()
                with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", VSI_CACHE="FALSE"):
                    for b, (key, res) in BANDS.items():
                        with rasterio.open(assets[key]["href"]) as src:
                            src.read(1, window=from_bounds(*grid.bounds, transform=src.transform))
                rows.append(("rasterio /vsicurl/ window read", time.perf_counter() - t, px.bytes_sent, len(px.log)))

                px.reset_counts()
                c = ByteCounter()
                t = time.perf_counter()
                load_stack([item], grid, bands=("B02", "B03", "B04", "B08", "B11", "B12"), counter=c)
                rows.append(("minewatch load_stack (no cache)", time.perf_counter() - t, px.bytes_sent, len(px.log)))

                cache = root / f"cache{rep}"
                load_stack([item], grid, cache_dir=cache)
                px.reset_counts()
                t = time.perf_counter()
                load_stack([item], grid, cache_dir=cache)
                rows.append(("minewatch load_stack (cached rerun)", time.perf_counter() - t, px.bytes_sent,
                             len(px.log)))

    print(f"AOI window {w}×{w} px at 10 m; window bytes (uncompressed, native res, 7 layers) = "
          f"{window_bytes / 1e6:.2f} MB; compressed COG tiles it touches = {tile_bytes / 1e6:.2f} MB "
          f"({tile_bytes / window_bytes:.2f} × window, the floor for any tile-based reader)\n")
    print(f"{'method':38s} {'time s (median)':>15s} {'MB fetched':>11s} {'× window':>9s} {'× tiles':>8s} "
          f"{'requests':>9s}")
    for name in dict.fromkeys(r[0] for r in rows):
        rs_ = [r for r in rows if r[0] == name]
        tmed = float(np.median([r[1] for r in rs_]))
        b, n = rs_[-1][2], rs_[-1][3]
        print(f"{name:38s} {tmed:15.3f} {b / 1e6:11.2f} {b / window_bytes:9.2f} {b / tile_bytes:8.2f} {n:9d}")
    print("\nminewatch also warps 20 m bands and SCL onto the 10 m grid and applies the baseline offset;"
          " rasterio rows read native-resolution windows only.")


if __name__ == "__main__":
    main()
