"""From fine-grid surface reflectance to a Sentinel-2 L2A-like 10 m product.

Order: terrain illumination (fine) -> detector area average (10 m, and 20 m for B11/B12) ->
adjacency blur + residual haze (imperfect atmospheric correction) -> PSF -> band
misregistration -> gain / offset -> noise -> 20 m bands resampled to 10 m -> quantise 1e-4.
"""
import numpy as np
from scipy import ndimage

from .spectra import LAMBDA_UM
from .terrain import noise

# diffuse-sky share of irradiance per band (clear tropical dry season, AOT550 ~0.15-0.3)
DIFFUSE = np.array([0.30, 0.22, 0.17, 0.11, 0.06, 0.05])

PARAMS = {
    # sun zenith, azimuth range; topographic residual k; haze mean (B02) and patchiness;
    # adjacency scale; gain sd; offset sd; misregistration sd (px); noise multiplier; PSF sigma
    "base": dict(sz=(36, 48), az=(140, 160), k=(0.35, 0.55), haze=(0.004, 0.012), patch=0.3,
                 adj=1.0, gain=0.015, off=0.002, mis=0.10, nz=1.0, psf=(0.45, 0.55), dry=(0.15, 0.5)),
    "pale": dict(sz=(36, 48), az=(140, 160), k=(0.35, 0.55), haze=(0.004, 0.012), patch=0.3,
                 adj=1.0, gain=0.015, off=0.002, mis=0.10, nz=1.0, psf=(0.45, 0.55), dry=(0.6, 0.95)),
    "rough": dict(sz=(52, 63), az=(145, 165), k=(0.8, 1.0), haze=(0.01, 0.028), patch=0.9,
                  adj=2.0, gain=0.045, off=0.006, mis=0.25, nz=2.5, psf=(0.5, 0.7), dry=(0.15, 0.6)),
}


def draw(rng, variant):
    p = PARAMS[variant]
    u = lambda lo_hi: rng.uniform(*lo_hi)
    return dict(sz=u(p["sz"]), az=u(p["az"]), k=u(p["k"]), haze=u(p["haze"]), patch=p["patch"],
                adj=p["adj"], gain=1 + rng.normal(0, p["gain"], 6), off=rng.normal(0, p["off"], 6),
                mis=rng.normal(0, p["mis"], (6, 2)), nz=p["nz"], psf=u(p["psf"]), dry=u(p["dry"]),
                rough=variant == "rough")


def illuminate(refl, cosr, sky, shadow, flat, k):
    """refl (6,F,F) *= topographic factor; cosr/sky/shadow already on the fine grid."""
    direct = cosr * (1.0 - shadow)
    for b in range(6):
        ill = (1 - DIFFUSE[b]) * direct + DIFFUSE[b] * sky
        ill = 1.0 + k * (ill - 1.0)
        ill = np.where(flat, 1.0 + 0.15 * (ill - 1.0), ill)
        refl[b] *= np.clip(ill, 0.05, 2.5).astype(np.float32)
    return refl


def _block(a, k):
    n = a.shape[-1] // k
    return a.reshape(a.shape[0], n, k, n, k).mean(axis=(2, 4))


def to_product(refl_f, f, P, rng):
    """refl_f: (6, F, F) fine-grid reflectance; returns (6, n, n) float32."""
    F = refl_f.shape[-1]
    n = F // f
    x10 = _block(refl_f[:4], f)
    n2 = (n + 1) // 2
    sw = refl_f[4:]
    if n % 2:
        sw = np.pad(sw, ((0, 0), (0, f), (0, f)), mode="edge")
    x20 = _block(sw, 2 * f)
    # residual haze / path radiance: smooth field, lambda^-1.3, plus adjacency blur
    H = P["haze"] * np.clip(1 + P["patch"] * noise(rng, (n, n), max(n / 5, 2)) +
                            0.3 * P["patch"] * noise(rng, (n, n), max(n / 15, 2)), 0.1, None)
    H2 = H[::2, ::2] if n > 1 else H
    H2 = np.pad(H2, ((0, n2 - H2.shape[0]), (0, n2 - H2.shape[1])), mode="edge")
    adj = P["adj"] * np.array([0.06, 0.05, 0.04, 0.03, 0.015, 0.01])
    spec = (LAMBDA_UM / 0.49) ** -1.3
    out = np.empty((6, n, n), np.float32)
    for b in range(6):
        a = x10[b] if b < 4 else x20[b - 4]
        hz = H if b < 4 else H2
        scale = 1.0 if b < 4 else 0.5
        a = a + adj[b] * (ndimage.gaussian_filter(a, 25 * scale, mode="reflect") - a)
        a = a * (1 - 1.5 * hz * spec[b]) + hz * spec[b]
        a = ndimage.gaussian_filter(a, P["psf"], mode="nearest")
        a = ndimage.shift(a, P["mis"][b] * scale, order=1, mode="nearest")
        a = a * P["gain"][b] + P["off"][b]
        n0 = np.array([0.0012, 0.0011, 0.0011, 0.0016, 0.0015, 0.0014])[b] * P["nz"]
        sd = np.sqrt(n0 ** 2 + (0.006 * P["nz"] * np.clip(a, 0, None)) ** 2)
        a = a + sd * rng.standard_normal(a.shape)
        if b >= 4:
            a = ndimage.zoom(a, 2, order=1, grid_mode=True, mode="nearest")[:n, :n]
        out[b] = a
    if P["rough"]:                      # detector-module seam: small per-band level step
        ii, jj = np.mgrid[0:n, 0:n]
        seam = (jj - 0.2 * ii) > rng.uniform(0.3, 0.7) * n
        out += (seam[None] * rng.normal(0, 0.003, (6, 1, 1))).astype(np.float32)
    out = np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)
    return (np.round(out * 1e4) / 1e4).astype(np.float32)
