"""Radiometry of the scene simulator: surface reflectance, clouds, shadows, haze, SCL and DN coding.

Pure numpy/scipy. Arrays are ``(band, y, x)`` in :data:`geo.bands.ANALYSIS_BANDS` order on the 10 m
scene grid unless a name says 20 m. ``valid`` masks are True where the sensor has data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from geo.sim.layout import smooth_noise
from geo.sim.spectra import LC, LC_NAMES, Spectra, WATER_LC

#: Dry-season browning: relative change per band at the end of the season for a fully "dry" class.
PHENOLOGY_GAIN = np.array([0.03, 0.02, 0.25, -0.12, 0.12, 0.18], np.float32)
#: How strongly each land-cover class browns during the dry season (0 = not at all).
DRYNESS = np.zeros(len(LC_NAMES), np.float32)
for _name, _d in {"forest": 0.25, "forest_lowland": 0.35, "grassland": 1.0, "shrubland": 0.7, "crop_field": 1.0}.items():
    DRYNESS[LC[_name]] = _d
#: Haze (residual path reflectance) spectral shape, relative to B02.
HAZE_SHAPE = np.array([1.0, 0.72, 0.48, 0.22, 0.06, 0.03], np.float32)
#: Cloud-top and thin-cirrus reflectance (L2A-like), per band.
CLOUD_SPECTRUM = np.array([0.52, 0.52, 0.53, 0.56, 0.40, 0.27], np.float32)
CIRRUS_SPECTRUM = np.array([0.30, 0.30, 0.30, 0.29, 0.20, 0.14], np.float32)
#: Cloud opacity thresholds for SCL: >= HIGH → 9, >= MEDIUM → 8; cirrus >= CIRRUS → 10; shadow >= SHADOW → 3.
SCL_HIGH, SCL_MEDIUM, SCL_CIRRUS, SCL_SHADOW = 0.5, 0.1, 0.06, 0.25
#: 2×2 mode tie-break priority for SCL (higher wins): clouds, cirrus, shadow, water first.
_SCL_PRIORITY = np.array([12, 1, 6, 9, 3, 4, 7, 2, 10, 11, 8, 5], np.int32)


def render_surface(spectra: Spectra, lc: np.ndarray, lc2: np.ndarray, mix: np.ndarray, texture: np.ndarray,
                   *, phase: float = 0.0, phenology: float = 1.0, illumination: np.ndarray | None = None,
                   psf_sigma: float = 0.45) -> np.ndarray:
    """Surface reflectance ``(6, y, x)`` float32 from a two-class mixture map.

    ``phase`` is the position in the dry season (0 = 1 Nov, 1 = 30 Apr); vegetation browns with it.
    ``illumination`` multiplies the result (terrain shading). ``psf_sigma`` (px) blurs like the sensor MTF.
    """
    mean, std = spectra.mean.T, spectra.std.T  # (6, n_classes)
    a = mean[:, lc] + std[:, lc] * texture
    b = mean[:, lc2] + std[:, lc2] * texture
    out = a + (b - a) * mix
    dry = DRYNESS[lc] * (1 - mix) + DRYNESS[lc2] * mix
    out *= 1 + PHENOLOGY_GAIN[:, None, None] * (phase * phenology) * dry
    if illumination is not None:
        out *= illumination
    if psf_sigma > 0:
        out = ndimage.gaussian_filter(out, (0, psf_sigma, psf_sigma), mode="nearest")
    return np.clip(out, 0.001, 1.0).astype(np.float32)


def surface_scl(surface: np.ndarray, lc: np.ndarray) -> np.ndarray:
    """Clear-sky SCL classes at 10 m: 6 water (water-like classes or NDWI > 0.1 with low SWIR),
    4 vegetation (NDVI > 0.4), 2 dark area, 5 not vegetated."""
    b03, b04, b08, b11 = surface[1], surface[2], surface[3], surface[4]
    ndvi = (b08 - b04) / (b08 + b04 + 1e-6)
    ndwi = (b03 - b08) / (b03 + b08 + 1e-6)
    scl = np.full(lc.shape, 5, np.uint8)
    scl[ndvi > 0.4] = 4
    scl[(b03 + b04 + b08 < 0.15) & (b08 < 0.07)] = 2
    scl[np.isin(lc, WATER_LC) | ((ndwi > 0.1) & (b11 < 0.08))] = 6
    return scl


@dataclass(frozen=True)
class Atmosphere:
    """One acquisition's atmosphere on the 10 m scene grid.

    Attributes:
        cloud: float32 cloud opacity 0–1.
        cirrus: float32 thin-cirrus opacity 0–1.
        shadow: float32 cloud-shadow strength 0–1 (the cloud field displaced away from the sun).
        haze: float32 additive path reflectance in B02 (other bands scaled by :data:`HAZE_SHAPE`).
        valid: bool, True where the sensor has data (False beyond a swath edge).
    """

    cloud: np.ndarray
    cirrus: np.ndarray
    shadow: np.ndarray
    haze: np.ndarray
    valid: np.ndarray


def draw_atmosphere(rng: np.random.Generator, shape: tuple[int, int], *, cloud_fraction: float, haze: float,
                    cirrus_probability: float, nodata_probability: float, sun_azimuth_deg: float,
                    sun_elevation_deg: float, pixel_m: float = 10.0) -> Atmosphere:
    """Clouds (smooth noise thresholded to ``cloud_fraction`` of the scene), their shadows, cirrus,
    haze and an optional swath edge."""
    h, w = shape
    if cloud_fraction > 0:
        n = 0.75 * smooth_noise(rng, shape, 70) + 0.35 * smooth_noise(rng, shape, 18) + 0.12 * smooth_noise(rng, shape, 4)
        thr = np.quantile(n, 1 - cloud_fraction)
        cloud = np.clip((n - thr) / 0.45, 0, 1) ** 0.8
        # Shadow: displace by cloud height / tan(sun elevation), away from the sun.
        height_m = rng.uniform(500, 1500)
        dist = height_m / np.tan(np.radians(sun_elevation_deg)) / pixel_m
        az = np.radians(sun_azimuth_deg)
        drow, dcol = int(round(dist * np.cos(az))), int(round(-dist * np.sin(az)))
        shadow = ndimage.shift(cloud, (drow, dcol), order=0, mode="constant", cval=0.0)
    else:
        cloud = np.zeros(shape, np.float32)
        shadow = cloud
    cirrus = np.zeros(shape, np.float32)
    if rng.random() < cirrus_probability:
        cirrus = 0.22 * np.clip(smooth_noise(rng, shape, 90) - 0.2, 0, 2) / 2
    hz = haze * rng.uniform(0.1, 1.0) * np.clip(1 + 0.3 * smooth_noise(rng, shape, 100), 0.3, 1.7)
    valid = np.ones(shape, bool)
    if rng.random() < nodata_probability:
        ang = rng.uniform(-0.4, 0.4) + rng.choice([0.0, np.pi])
        rows, cols = np.mgrid[0:h, 0:w]
        proj = cols * np.cos(ang) + rows * np.sin(ang)
        valid = proj < np.quantile(proj, 1 - rng.uniform(0.05, 0.35))
    return Atmosphere(cloud.astype(np.float32), cirrus.astype(np.float32), shadow.astype(np.float32),
                      hz.astype(np.float32), valid)


def apply_atmosphere(surface: np.ndarray, atm: Atmosphere) -> np.ndarray:
    """Observed L2A-like reflectance: shadowed surface + haze, overlaid by cirrus and cloud."""
    out = surface * (1 - 0.7 * atm.shadow)
    out = out + HAZE_SHAPE[:, None, None] * atm.haze
    out = out + (CIRRUS_SPECTRUM[:, None, None] - out) * atm.cirrus
    tex = 1 + 0.08 * np.tanh(atm.cloud - 0.5)
    out = out + (CLOUD_SPECTRUM[:, None, None] * tex - out) * atm.cloud
    return out.astype(np.float32)


def scene_scl(clear_scl: np.ndarray, atm: Atmosphere) -> np.ndarray:
    """SCL at 10 m: clear-sky classes overlaid by shadow 3, cirrus 10, cloud 8/9; 0 where not valid."""
    scl = clear_scl.copy()
    scl[atm.shadow >= SCL_SHADOW] = 3
    scl[atm.cirrus >= SCL_CIRRUS] = 10
    scl[atm.cloud >= SCL_MEDIUM] = 8
    scl[atm.cloud >= SCL_HIGH] = 9
    scl[~atm.valid] = 0
    return scl


def mean_2x2(a: np.ndarray) -> np.ndarray:
    """Average 2×2 blocks over the last two axes (sizes must be even)."""
    *lead, h, w = a.shape
    return a.reshape(*lead, h // 2, 2, w // 2, 2).mean(axis=(-3, -1)).astype(a.dtype)


def all_2x2(a: np.ndarray) -> np.ndarray:
    """True where all four pixels of a 2×2 block are True."""
    h, w = a.shape
    return a.reshape(h // 2, 2, w // 2, 2).all(axis=(1, 3))


def mode_2x2(scl: np.ndarray) -> np.ndarray:
    """Most frequent SCL class of each 2×2 block; ties go to clouds, cirrus, shadow and water first,
    and a block holding any no-data pixel is no-data (0)."""
    h, w = scl.shape
    blocks = scl.reshape(h // 2, 2, w // 2, 2).transpose(0, 2, 1, 3).reshape(h // 2, w // 2, 4)
    counts = (blocks[..., None] == np.arange(12, dtype=np.uint8)).sum(axis=2).astype(np.int32)
    counts[..., 0] *= 100  # any no-data wins
    score = counts * 16 + np.where(counts > 0, _SCL_PRIORITY, 0)
    return np.argmax(score, axis=-1).astype(np.uint8)


def to_dn(reflectance: np.ndarray, offset_dn: int, valid: np.ndarray) -> np.ndarray:
    """L2A digital numbers: ``round(reflectance·10000) + offset_dn``, clipped to 1–65535; 0 (no data) where
    ``valid`` is False. ``offset_dn`` is 1000 for processing baseline ≥ 04.00, else 0."""
    dn = np.clip(np.round(reflectance * 10000.0) + offset_dn, 1, 65535).astype(np.uint16)
    dn[..., ~valid] = 0
    return dn
