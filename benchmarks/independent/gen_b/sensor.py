"""Terrain illumination, residual haze and the Sentinel-2 L2A sensor model for generator B."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import layout
from .render import NOISE0, NOISE1
from .water import haze
from .world import S, World


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    h, w = a.shape
    return a.reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def _to_10m(a20: np.ndarray) -> np.ndarray:
    """Bilinear resampling of a 20 m band to the 10 m grid (pixel centres aligned)."""
    n = a20.shape[0] * 2
    c = (np.arange(n) + 0.5) / 2 - 0.5
    rr, cc = np.meshgrid(c, c, indexing="ij")
    return ndimage.map_coordinates(a20, [rr, cc], order=1, mode="nearest")


def observe(w: World, R: np.ndarray, mine: np.ndarray, pond: np.ndarray, sun_zen: float, sun_az: float,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    cfg, n = w.cfg, w.size
    # terrain illumination on the 10 m DEM, bilinearly upsampled to the fine grid
    f_dir = rng.uniform(*cfg["f_dir"])
    ill = layout.upsample(layout.illumination(w.z, 10.0, sun_zen, sun_az, f_dir), S)
    R *= ill[None]
    del ill
    # residual haze (L2A): path + transmittance, with a smooth spatial variation of tau
    tau550 = rng.uniform(*cfg["tau"])
    tau_field = np.clip(1 + 0.25 * layout.fractal(rng, n, beta=3.5, kmin=1), 0.4, 1.8)
    path, trans = haze(rng, tau550, sun_zen)
    # sensor: area-average 10 m bands, 20 m bands; PSF; misregistration; noise; gain/offset
    x = np.empty((6, n, n), np.float32)
    psf = rng.uniform(0.38, 0.55)
    for b in range(6):
        if b < 4:
            a = _block_mean(R[b], S)
            a = ndimage.gaussian_filter(a, psf)
        else:
            a = _block_mean(R[b], 2 * S)
            a = _to_10m(ndimage.gaussian_filter(a, psf))
        a = path[b] * tau_field + (1 - (1 - trans[b]) * tau_field) * a
        sh = rng.normal(0, cfg["misreg"], 2)
        a = ndimage.shift(a, sh, order=1, mode="nearest")
        noise = np.sqrt(NOISE0[b] ** 2 + (NOISE1[b] * a) ** 2) * cfg["noise"] / 2.0  # /2: composite median
        a = a + noise * rng.standard_normal(a.shape)
        a = a * rng.normal(1.0, cfg["gain"]) + rng.normal(0.0, cfg["offset"])
        x[b] = np.round(np.clip(a, 0.0, 1.0) * 10000.0) / 10000.0
    pf = _block_mean(pond.astype(np.float32), S)
    mf = _block_mean(mine.astype(np.float32), S)
    y = np.zeros((n, n), np.uint8)
    y[mf >= 0.5] = 1
    y[pf >= 0.5] = 2
    return x, y
