"""Sentinel-2-like image formation: terrain illumination on the fine surface, area-averaging to 10 m / 20 m,
6S atmosphere with adjacency to TOA, PSF, band misregistration, radiometric noise and quantisation, an
imperfect L2A inversion (wrong AOD, no adjacency correction), per-scene gain/offset, 20 m -> 10 m resampling."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from . import atmos
from .landscape import FINE, PIX, noise, shading

VARIANT_ATM = {  # sun elevation (deg), AOD550 range, L2A AOD error (log-sd), gain sd, offset sd, noise x
    "base": dict(el=(35, 55), aod=(0.08, 0.30), aod_err=0.25, gain=0.02, off=0.003, nz=1.0),
    "pale": dict(el=(38, 55), aod=(0.08, 0.30), aod_err=0.25, gain=0.02, off=0.003, nz=1.0),
    "rough": dict(el=(25, 35), aod=(0.30, 0.80), aod_err=0.40, gain=0.05, off=0.008, nz=1.8),
}


def image(R: np.ndarray, dem: np.ndarray, variant: str, rng: np.random.Generator) -> np.ndarray:
    """R: (F, F, 6) fine surface reflectance -> (6, S, S) float32 L2A surface reflectance on the 10 m grid."""
    S = dem.shape[0]
    cfg = VARIANT_ATM[variant]
    el = rng.uniform(*cfg["el"])
    az = rng.uniform(135, 160)  # ~10:30 local solar time, dry season (Nov-Apr), 25.7 N
    sza = 90.0 - el
    aod = rng.uniform(*cfg["aod"])
    aod_field = np.clip(aod * (1 + 0.3 * noise(rng, 64, 3.0, S)), 0.01, 1.2)
    aod_l2a = aod * np.exp(rng.normal(0, cfg["aod_err"]))
    out = np.empty((6, S, S), np.float32)
    direct, sky = shading(dem, el, az, None)
    for b in range(6):
        p_true = atmos.params(b, aod_field, sza)
        f_dir = float(np.mean(p_true["f_dir"]))
        shade = f_dir * direct + (1 - f_dir) * sky
        fac = 2 if b >= 4 else 1  # 20 m bands
        n = S // fac
        k = FINE * fac
        sh = ndi.zoom(shade, FINE, order=1, grid_mode=True, mode="nearest")
        rho = (R[: n * k, : n * k, b] * sh[: n * k, : n * k]).reshape(n, k, n, k).mean(axis=(1, 3))
        env = ndi.gaussian_filter(rho, 500.0 / (PIX * fac), mode="reflect")  # adjacency (~0.5 km)
        p = {kk: (v[::fac, ::fac][:n, :n] if np.ndim(v) else v) for kk, v in p_true.items()}
        toa = atmos.to_toa(rho, env, p)
        toa = ndi.gaussian_filter(toa, 0.42, mode="reflect")  # MTF ~0.3 at Nyquist on top of the box
        toa = ndi.shift(toa, rng.normal(0, 0.12, 2), order=1, mode="nearest")  # co-registration error
        sd = cfg["nz"] * np.sqrt(0.0008 ** 2 + (0.004 * np.sqrt(np.clip(toa, 0, None))) ** 2) / np.sqrt(2.0)
        toa = np.round((toa + rng.standard_normal(toa.shape) * sd) * 1e4) / 1e4  # L1C quantisation
        pa = atmos.params(b, aod_l2a, sza)  # the processor's (wrong, uniform) aerosol
        sr = atmos.to_surface(toa, pa)
        if fac == 2:
            sr = ndi.zoom(sr, 2, order=1, grid_mode=True, mode="nearest")[:S, :S]
            if sr.shape[0] < S:
                sr = np.pad(sr, ((0, S - sr.shape[0]), (0, S - sr.shape[1])), mode="edge")
        out[b] = sr
    gain = 1 + rng.normal(0, cfg["gain"]) + rng.normal(0, cfg["gain"] / 3, 6)
    off = rng.normal(0, cfg["off"]) + rng.normal(0, cfg["off"] / 3, 6)
    out = out * gain[:, None, None] + off[:, None, None]
    out = np.round(out * 1e4) / 1e4  # L2A DN = 10000 * rho + 1000 -> (DN - 1000) / 10000
    return np.clip(out, 0.0, 1.0).astype(np.float32)
