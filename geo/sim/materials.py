"""Measured soils and materials, and a physically based pond-water model, for the training simulator.

* Soils and built materials come from ``geo/data/soil_spectra.csv`` (measured laboratory / field spectra of the
  ``earthlib`` library resampled to Sentinel-2 bands by ``scripts/derive_soil_spectra.py``; see
  ``geo/data/SOILS.md``). Soils are split into colour **families** (:data:`SOIL_FAMILIES`) so that a benchmark
  can train on some and test on others.
* :func:`field_soil` turns a laboratory spectrum (dry, ground, flat) into what a 10 m pixel of a spoil heap or
  a field sees: darker (roughness shadows, moisture) and with SWIR absorbed by water in the soil.
* :func:`pond_reflectance` is a two-flow shallow-water model: the water column's own reflectance from its
  absorption ``a`` and backscatter ``bb`` (pure water, dissolved iron / humics, milky precipitates, suspended
  soil) over a bottom (bright or dark liner, or soil) seen through ``exp(-2·(a+bb)·depth)``, plus surface glint.
  Water absorbs strongly beyond 800 nm, so NIR and SWIR stay low whatever the colour: the physics the rules and
  the model must rely on.

Pure: numpy only; the packaged CSV is the only file read.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources

import numpy as np

from geo.errors import ConfigError

#: Soil colour families of ``soil_spectra.csv`` (rule in ``scripts/derive_soil_spectra.py::soil_family``).
SOIL_FAMILIES: tuple[str, ...] = ("red_lateritic", "yellow_brown", "pale_kaolinitic", "grey", "dark_organic")
#: Pond types of :func:`pond_reflectance`.
POND_TYPES: tuple[str, ...] = ("bright_liner", "dark_liner", "milky", "iron_brown", "turbid_soil")
#: Material groups of the non-soil rows.
MATERIAL_GROUPS: tuple[str, ...] = ("bare_field", "gravel", "road", "paint_plastic", "metal", "roof", "npv", "char")

#: Absorption of pure water (1/m) at B02 B03 B04 B08 B11 B12 (Pope & Fry 1997; Kou et al. 1993 for SWIR),
#: averaged over each band's response.
WATER_ABSORPTION = np.array([0.017, 0.064, 0.43, 2.9, 900.0, 2500.0], np.float32)
#: Backscatter of pure water (1/m) per band (Morel 1974, λ^-4.32).
WATER_BACKSCATTER = np.array([0.0024, 0.0014, 0.0007, 0.0003, 0.00002, 0.000005], np.float32)
#: Band centres (µm) of B02 B03 B04 B08 B11 B12.
CENTRES_UM = np.array([0.492, 0.560, 0.665, 0.833, 1.614, 2.202], np.float32)


@dataclass(frozen=True)
class MaterialTable:
    """Rows of ``soil_spectra.csv``: ``reflectance`` float32 ``(n, 6)`` (B02 B03 B04 B08 B11 B12), ``group`` and
    ``family`` string arrays, ``lat``/``lon`` (NaN where unknown)."""

    reflectance: np.ndarray
    group: np.ndarray
    family: np.ndarray
    lat: np.ndarray
    lon: np.ndarray

    def rows(self, *, group: str, families: tuple[str, ...] | None = None) -> np.ndarray:
        """Reflectance rows of ``group`` (and, for soils, of ``families``)."""
        sel = self.group == group
        if families is not None:
            sel &= np.isin(self.family, list(families))
        if not sel.any():
            raise ConfigError(f"soil_spectra.csv has no rows of group {group!r} families {families}")
        return self.reflectance[sel]


def parse_materials(text: str) -> MaterialTable:
    """Parse ``soil_spectra.csv`` text."""
    refl, group, fam, lat, lon = [], [], [], [], []
    for row in csv.DictReader(io.StringIO(text)):
        v = [float(row[b]) for b in ("B02", "B03", "B04", "B08", "B11", "B12")]
        if not all(0.0 <= x <= 1.0 for x in v):
            raise ConfigError(f"soil_spectra.csv: row {row['name']} outside 0-1; rerun scripts/derive_soil_spectra.py")
        refl.append(v)
        group.append(row["group"])
        fam.append(row["family"])
        lat.append(float(row["lat"]) if row["lat"] else np.nan)
        lon.append(float(row["lon"]) if row["lon"] else np.nan)
    return MaterialTable(np.asarray(refl, np.float32), np.asarray(group), np.asarray(fam),
                         np.asarray(lat, np.float32), np.asarray(lon, np.float32))


@functools.lru_cache(maxsize=1)
def load_materials() -> MaterialTable:
    """The packaged table ``geo/data/soil_spectra.csv`` (cached)."""
    return parse_materials(resources.files("geo").joinpath("data/soil_spectra.csv").read_text(encoding="utf-8"))


def field_soil(rng: np.random.Generator, lab: np.ndarray, *, brightness: tuple[float, float] = (0.45, 1.0),
               moisture: tuple[float, float] = (0.0, 0.6)) -> np.ndarray:
    """Field reflectance of a soil measured in the laboratory.

    Lab spectra are of dried, sieved samples; a 10 m pixel of spoil or a field is darker (roughness shadows,
    clods) and moister. We scale by ``brightness`` (drawn) and apply a moisture term ``m`` that darkens all
    bands by ``1 - 0.25 m`` and the SWIR bands further by water absorption (B11 ``1 - 0.35 m``, B12
    ``1 - 0.45 m``; Lobell & Asner 2002 give similar relative drops).
    """
    b = float(rng.uniform(*brightness))
    m = float(rng.uniform(*moisture))
    swir = np.array([1, 1, 1, 1, 1 - 0.35 * m, 1 - 0.45 * m], np.float32)
    return np.clip(lab * b * (1 - 0.25 * m) * swir, 0.003, 0.9).astype(np.float32)


def draw_soil(rng: np.random.Generator, families: tuple[str, ...] | None = None, **kw) -> np.ndarray:
    """A field soil spectrum (6,) drawn from the measured soils of ``families`` (all when ``None``)."""
    rows = load_materials().rows(group="soil", families=families)
    return field_soil(rng, rows[int(rng.integers(len(rows)))], **kw)


def draw_material(rng: np.random.Generator, group: str, *, scale: tuple[float, float] = (0.7, 1.1)) -> np.ndarray:
    """A measured material spectrum (6,) of ``group`` (see :data:`MATERIAL_GROUPS`), scaled by a draw of ``scale``."""
    rows = load_materials().rows(group=group)
    return np.clip(rows[int(rng.integers(len(rows)))] * rng.uniform(*scale), 0.003, 0.9).astype(np.float32)


def water_column(a: np.ndarray, bb: np.ndarray, bottom: np.ndarray, depth_m: float, glint: float = 0.0) -> np.ndarray:
    """Reflectance of a water column over a bottom (two-flow approximation).

    ``R_deep = 0.25·bb/(a+bb)`` (Gordon et al. 1975, ``f ≈ 0.25`` for irradiance reflectance) is the optically deep water's reflectance; the bottom ``bottom`` shows through
    with the round-trip attenuation ``exp(-2·(a+bb)·depth)``; ``glint`` is added flat (surface reflection).
    All per band (6,).
    """
    k = a + bb
    r_deep = 0.25 * bb / k
    t = np.exp(-2.0 * k * depth_m)
    return (r_deep + (bottom - r_deep) * t + glint).astype(np.float32)


def pond_reflectance(rng: np.random.Generator, kind: str, *, soil: np.ndarray | None = None) -> np.ndarray:
    """Surface reflectance (6,) of one leaching pond of type ``kind`` (:data:`POND_TYPES`), drawn at random.

    ``bright_liner``: clear-ish liquor over white/blue HDPE (turquoise); ``dark_liner``: over black liner;
    ``milky``: high backscatter from precipitates (white, flat visible); ``iron_brown``: dissolved iron /
    humics absorbing blue (red-brown); ``turbid_soil``: suspended soil of colour ``soil``.
    """
    if kind not in POND_TYPES:
        raise ConfigError(f"unknown pond type {kind!r}; use one of {', '.join(POND_TYPES)}")
    a = WATER_ABSORPTION.copy()
    bb = WATER_BACKSCATTER.copy()
    depth = float(rng.uniform(0.1, 1.5))
    glint = float(rng.uniform(0.003, 0.015))
    if kind == "bright_liner":
        bottom = np.array([0.55, 0.6, 0.45, 0.6, 0.5, 0.4], np.float32) * rng.uniform(0.5, 1.0)
        if rng.random() < 0.6:  # blue liner
            bottom = bottom * np.array([1.0, 0.8, 0.45, 0.7, 0.6, 0.6], np.float32)
        a += rng.uniform(0.0, 0.5) * np.exp(-6 * (CENTRES_UM - 0.44))  # a little dissolved colour
        bb += rng.uniform(0.0, 0.05) * (0.55 / CENTRES_UM)
    elif kind == "dark_liner":
        bottom = np.full(6, rng.uniform(0.03, 0.06), np.float32)
        bb += rng.uniform(0.0, 0.3) * (0.55 / CENTRES_UM)
    elif kind == "milky":
        bottom = np.full(6, 0.2, np.float32)
        bb += rng.uniform(0.3, 5.0) * (0.55 / CENTRES_UM) ** rng.uniform(0.0, 0.5)
        depth = float(rng.uniform(0.5, 2.0))
    elif kind == "iron_brown":
        bottom = draw_soil(rng) if soil is None else soil
        a += rng.uniform(1.0, 8.0) * np.exp(-8 * (CENTRES_UM - 0.44))
        bb += rng.uniform(0.05, 1.0) * (0.55 / CENTRES_UM)
    else:  # turbid_soil: particles with the soil's colour scatter, the water absorbs
        s = draw_soil(rng) if soil is None else soil
        shape = s / max(float(s[1]), 1e-3)
        bb += rng.uniform(0.1, 3.0) * shape
        bottom = s
    return np.clip(water_column(a, bb, bottom, depth, glint), 0.002, 0.6)
