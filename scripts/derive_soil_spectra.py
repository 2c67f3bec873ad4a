#!/usr/bin/env python
"""Derive ``geo/data/soil_spectra.csv``: Sentinel-2 band reflectance of measured soils and materials.

    python scripts/derive_soil_spectra.py           # writes geo/data/soil_spectra.csv
    python scripts/derive_soil_spectra.py --check   # exit 1 if the committed file differs

Source: the ``earthlib`` spectral library (PyPI, MIT; ``earthlib.full_library``): 4,185 laboratory soil
spectra of the ICRAF-ISRIC world soil database (each with its coordinates), ASD field spectra of bare
ground (dirt, sand, gravel), built materials (roads, paints, metals, roofing) and non-photosynthetic
vegetation / char. Spectra are 0.40-2.45 µm at 10 nm. Each is resampled to the Sentinel-2 MSI bands
with ``earthlib.Spectra.to_sensor(earthlib.sensors.Sentinel2)``, i.e. ``spectral.BandResampler``: a
Gaussian spectral response per band with the band's centre and FWHM (B02 494/95 nm, B03 560/45,
B04 665/39, B08 834/141, B11 1612/..., B12 2194/...), integrated over the 10 nm samples. See
geo/data/SOILS.md for the families and how the simulator uses them.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "geo" / "data" / "soil_spectra.csv"
BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
S2_INDEX = (0, 1, 2, 6, 8, 9)  # earthlib Sentinel2 bands B2 B3 B4 B5 B6 B7 B8 B8A B11 B12
PER_FAMILY = 260
MATERIAL_GROUPS = {  # earthlib LEVEL_3 -> our material group
    "dirt": "bare_field", "sand": "bare_field", "gravel": "gravel", "soil": "bare_field",
    "road": "road", "parking_lot": "road", "asphalt": "road", "driveway": "road", "sidewalk": "road",
    "paint": "paint_plastic", "other": "paint_plastic", "metal": "metal", "comp_shingle": "roof",
    "concrete_tile": "roof", "tile": "roof", "wood_shingle": "roof",
    "litter": "npv", "bark": "npv", "npv": "npv", "wood": "npv", "char": "char",
}


def soil_family(x: np.ndarray) -> np.ndarray:
    """Colour family of each soil spectrum (rows of B02 B03 B04 B08 B11 B12 reflectance).

    ``red_lateritic``: red/green >= 1.68 (iron-oxide rich, the upper quartile of the library);
    ``pale_kaolinitic``: visible mean >= 0.24 and red/green < 1.45 (whitish / pale-yellow clays);
    ``dark_organic``: visible mean < 0.14 (humus-rich or moist-looking dark soils);
    ``yellow_brown``: red/green 1.32-1.68; ``grey``: the rest (neutral, low red/green).
    """
    red = x[:, 2] / np.maximum(x[:, 1], 1e-4)
    vis = x[:, :3].mean(1)
    fam = np.where(red >= 1.32, "yellow_brown", "grey").astype(object)
    fam[vis < 0.14] = "dark_organic"
    fam[(vis >= 0.24) & (red < 1.45)] = "pale_kaolinitic"
    fam[red >= 1.68] = "red_lateritic"
    return fam


def derive() -> str:
    import earthlib

    lib = earthlib.full_library
    s2 = lib.to_sensor(earthlib.sensors.Sentinel2)
    data = np.asarray(s2.data, np.float64)[:, S2_INDEX]
    meta = lib.metadata.reset_index(drop=True)
    rng = np.random.default_rng(11)
    lines = ["name,group,family,lat,lon,source," + ",".join(BANDS)]

    def row(i: int, group: str, family: str) -> str:
        lat, lon = meta.LAT[i], meta.LON[i]
        ll = "," if not (np.isfinite(lat) and np.isfinite(lon)) else f"{lat:.3f},{lon:.3f}"
        v = ",".join(f"{min(max(float(b), 0.0), 1.0):.4f}" for b in data[i])
        return f"{meta.NAME[i].strip()},{group},{family},{ll},{meta.SOURCE[i]},{v}"

    soil = np.nonzero(((meta.LEVEL_3 == "soil") & (meta.SOURCE == "icraf-isric-soil-database")).values)[0]
    ok = soil[np.all(np.isfinite(data[soil]), 1) & (data[soil].min(1) > 0.005)]
    fam = soil_family(data[ok])
    lat, lon = meta.LAT.values[ok].astype(float), meta.LON.values[ok].astype(float)
    se_asia = (lat > -11) & (lat < 35) & (lon > 88) & (lon < 125)
    for f in sorted(set(fam)):
        idx = np.nonzero(fam == f)[0]
        keep = set(idx[se_asia[idx]].tolist())  # all soils of South China / mainland SE Asia
        rest = [i for i in idx if i not in keep]
        keep |= set(rng.choice(rest, min(len(rest), max(0, PER_FAMILY - len(keep))), replace=False).tolist())
        for i in sorted(keep):
            lines.append(row(int(ok[i]), "soil", f))
    for i in range(len(meta)):
        g = MATERIAL_GROUPS.get(meta.LEVEL_3[i])
        if g and meta.SOURCE[i] != "icraf-isric-soil-database" and np.all(np.isfinite(data[i])):
            lines.append(row(i, g, "material"))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed table differs")
    args = ap.parse_args(argv)
    text = derive()
    if args.check:
        same = OUT.exists() and OUT.read_text() == text
        sys.stderr.write("soil_spectra.csv is up to date\n" if same else "soil_spectra.csv differs; rerun\n")
        return 0 if same else 1
    OUT.write_text(text)
    import pandas as pd

    d = pd.read_csv(io.StringIO(text))
    sys.stderr.write(d.groupby(["group", "family"]).size().to_string() + "\n")
    sys.stderr.write(d[d.group == "soil"].groupby("family")[list(BANDS)].median().round(3).to_string() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
