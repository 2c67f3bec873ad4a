"""Sentinel-2 sampling: area-average fine -> 10 m / 20 m, PSF blur, misregistration, haze, gain/offset, noise."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def block_mean(a: np.ndarray, f: int) -> np.ndarray:
    h, w = a.shape[-2:]
    return a.reshape(*a.shape[:-2], h // f, f, w // f, f).mean(axis=(-3, -1))


def to_s2(fine: np.ndarray, f: int, rng: np.random.Generator, rough: bool) -> np.ndarray:
    """fine: (6, F, F) reflectance at fine pixels (f per 10 m). Returns (6, N, N) float32 on the 10 m grid."""
    n = fine.shape[-1] // f
    out = np.empty((6, n, n), np.float32)
    psf10 = rng.uniform(0.35, 0.55)   # extra Gaussian PSF (10 m px) on top of the pixel box
    for b in range(6):
        if b < 4:
            x = block_mean(fine[b], f)
            x = ndi.gaussian_filter(x, psf10, mode="reflect")
        else:
            fb = fine[b]
            if n % 2:   # odd size: pad one 10 m column/row by edge so the 20 m grid is whole
                fb = np.pad(fb, ((0, f), (0, f)), mode="edge")
            x = block_mean(fb, 2 * f)
            x = ndi.gaussian_filter(x, psf10 * 0.9, mode="reflect")
            x = ndi.zoom(x, 2, order=1, mode="nearest", grid_mode=True)[:n, :n]
        sh = rng.normal(0, 0.12 if b < 4 else 0.2, 2)     # inter-band misregistration (10 m px)
        out[b] = ndi.shift(x, sh, order=1, mode="nearest")
    return out


def atmosphere(x: np.ndarray, rng: np.random.Generator, rough: bool, variant: str) -> np.ndarray:
    """Residual haze (additive, spectrally decaying, spatially smooth), per-band gain/offset, noise."""
    n = x.shape[-1]
    from .terrain import smooth_noise
    aot = rng.uniform(0.03, 0.07) if rough else rng.uniform(0.0, 0.025)
    shape = np.array([1.0, 0.72, 0.50, 0.25, 0.07, 0.03], np.float32)  # ~ lambda^-1.5..-2 path radiance
    field = np.clip(1 + 0.5 * smooth_noise(rng, n, n / 3), 0.2, 2.0)
    trans = 1 - 0.6 * aot * shape
    x = x * trans[:, None, None] + (aot * 0.6) * shape[:, None, None] * field[None]
    gsd = 0.06 if rough else 0.025
    gain = np.exp(rng.normal(0, gsd, 6)).astype(np.float32)
    gain *= np.exp(rng.normal(0, gsd / 2))          # common scene gain
    off = rng.normal(0, 0.006 if rough else 0.003, 6).astype(np.float32)
    x = x * gain[:, None, None] + off[:, None, None]
    nsd = (0.004 if rough else 0.0018) * rng.uniform(0.7, 1.3)
    x = x + rng.normal(0, 1, x.shape).astype(np.float32) * (nsd + 0.01 * np.sqrt(np.clip(x, 0, 1)) * 0.2)
    return np.clip(x, 0.0, 1.0).astype(np.float32)
