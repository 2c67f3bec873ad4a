"""Per-season rendering: mining sites on the static landscape, terrain illumination, then the sensor
(area averaging to 10 m / 20 m, PSF, band misregistration, residual haze, gain/offset, noise) and truth."""
import numpy as np
from scipy import ndimage as ndi

from . import fields as F
from .sites import render_site
from .world import FINE

WL = np.array([0.490, 0.560, 0.665, 0.842, 1.610, 2.190], np.float32)   # S2 centre wavelengths, um
DIFFUSE = np.array([0.30, 0.24, 0.19, 0.12, 0.08, 0.07], np.float32)     # skylight share, flat ground


def obs_params(rng, variant):
    rough = variant == "rough"
    p = dict(
        sun_el=rng.uniform(25, 36) if rough else rng.uniform(35, 55),
        sun_az=rng.uniform(135, 165),                 # ~10:30 local, dry season (Nov-Apr), 26 N
        topo_k=rng.uniform(0.85, 1.0) if rough else rng.uniform(0.5, 0.85),  # residual (uncorrected) shading
        haze0=rng.uniform(0.012, 0.04) if rough else rng.uniform(0.0, 0.012),
        alpha=rng.uniform(1.0, 2.5),
        tau=rng.uniform(0.08, 0.30) if rough else rng.uniform(0.0, 0.08),
        gain=rng.uniform(0.85, 1.15) if rough else rng.uniform(0.96, 1.04),
        band_gain=rng.normal(1, 0.05 if rough else 0.02, 6),
        offset=rng.normal(0, 0.010 if rough else 0.003, 6),
        noise_a=rng.uniform(0.002, 0.005) if rough else rng.uniform(0.0006, 0.0015),
        noise_b=rng.uniform(0.01, 0.03) if rough else rng.uniform(0.003, 0.01),
        psf=rng.uniform(0.35, 0.6),
        shift=rng.normal(0, 0.12 if rough else 0.08, (6, 2)),
        canopy=rng.normal(1, 0.04, 6),
    )
    return p


def _block(a, f):
    c, h, w = a.shape
    return a.reshape(c, h // f, f, w // f, f).mean(axis=(2, 4))


def render(world, sites, season, obs_rng, variant, n):
    N = n * FINE
    refl = world["refl"].copy()
    refl *= obs_rng.normal(1, 0.03, 6).astype(np.float32)[:, None, None]   # season-to-season phenology
    fp = np.zeros((N, N), bool)
    pond = np.zeros((N, N), bool)
    flat = world["flat"].copy()
    dem_f = F.up(world["dem"], FINE)
    for s in sites:
        if s["birth"] <= season:
            render_site(refl, fp, pond, flat, s, season - s["birth"], dem_f)
    p = obs_params(obs_rng, variant)
    # ---- terrain illumination (10 m grid, upsampled), flat water unshaded, cast shadows
    direct, shadow = F.illumination(world["dem"], p["sun_el"], p["sun_az"])
    direct = np.where(shadow, 0.0, direct).astype(np.float32)
    direct_f = F.up(direct, FINE)
    shadow_f = F.up(shadow.astype(np.float32), FINE)
    direct_f = np.where(flat, 1.0 - shadow_f, direct_f)
    k = p["topo_k"]
    for b in range(6):
        d = DIFFUSE[b] * (1.4 if variant == "rough" else 1.0)
        fac = d + (1 - d) * direct_f
        refl[b] *= (1 - k) + k * fac
    # ---- sensor: area-average to 10 m (B02 B03 B04 B08) and 20 m (B11 B12 -> back to 10 m)
    x = np.empty((6, n, n), np.float32)
    x[:4] = _block(refl[:4], FINE)
    n2 = n + (n % 2)
    if n2 != n:
        refl = np.pad(refl[4:], ((0, 0), (0, FINE), (0, FINE)), mode="edge")
    else:
        refl = refl[4:]
    x20 = _block(refl, 2 * FINE)
    for i in range(2):
        x20[i] = ndi.gaussian_filter(x20[i], p["psf"], mode="nearest")
        x[4 + i] = F.up(x20[i], 2)[:n, :n]
    for b in range(4):
        x[b] = ndi.gaussian_filter(x[b], p["psf"], mode="nearest")
    for b in range(6):
        x[b] = ndi.shift(x[b], p["shift"][b], order=1, mode="nearest")
    # ---- residual atmosphere: path reflectance ~ lambda^-alpha (spatially smooth), transmission
    hz = 1 + 0.3 * F.up(F.fbm(obs_rng, (max(n // 16, 4),) * 2, beta=3.0), 16)[:n, :n] \
        if n >= 64 else np.ones((n, n), np.float32)
    hz = np.pad(hz, ((0, n - hz.shape[0]), (0, n - hz.shape[1])), mode="edge")
    path = p["haze0"] * (WL / WL[0]) ** (-p["alpha"])
    trans = np.exp(-p["tau"] * (WL / 0.55) ** (-1.3))
    x = x * trans[:, None, None] + path[:, None, None] * hz[None]
    # ---- calibration and noise
    x = x * (p["gain"] * p["band_gain"])[:, None, None] + p["offset"][:, None, None]
    sd = p["noise_a"] + p["noise_b"] * np.clip(x, 0, None)
    x = x + sd * obs_rng.standard_normal(x.shape, dtype=np.float32)
    x = np.clip(x, 0.0, 1.0).astype(np.float32)
    # ---- truth from fine fractions
    fp_frac = fp.reshape(n, FINE, n, FINE).mean(axis=(1, 3))
    pond_frac = pond.reshape(n, FINE, n, FINE).mean(axis=(1, 3))
    y = np.zeros((n, n), np.uint8)
    y[fp_frac >= 0.5] = 1
    y[pond_frac >= 0.5] = 2
    return x, y
