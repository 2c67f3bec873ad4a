"""Noise fields, Kachin-like relief (hills ~1,500-2,500 m), slope/aspect illumination and cast shadows."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def fractal(rng: np.random.Generator, n: int, beta: float = 3.0, lo: int = 1) -> np.ndarray:
    """(n, n) power-law noise, zero mean unit sd; spectrum ~ k^-beta/2 in amplitude, k < lo removed."""
    ky = np.fft.fftfreq(n)[:, None] * n
    kx = np.fft.rfftfreq(n)[None, :] * n
    k = np.hypot(ky, kx)
    amp = np.where(k >= lo, np.maximum(k, 1e-6) ** (-beta / 2), 0.0)
    z = (rng.normal(size=k.shape) + 1j * rng.normal(size=k.shape)) * amp
    f = np.fft.irfft2(z, s=(n, n))
    return ((f - f.mean()) / (f.std() + 1e-12)).astype(np.float32)


def upsample(a: np.ndarray, n: int) -> np.ndarray:
    """Bilinear resize of a square field to (n, n)."""
    return ndi.zoom(a, n / a.shape[0], order=1, mode="nearest", grid_mode=True)[:n, :n].astype(np.float32)


def smooth_noise(rng: np.random.Generator, n: int, scale_px: float) -> np.ndarray:
    """Noise with features ~scale_px pixels on an (n, n) grid (generated coarse, then upsampled)."""
    m = max(8, int(np.ceil(n / max(scale_px / 2.0, 1.0))))
    return upsample(fractal(rng, m, beta=2.6), n)


def dem(rng: np.random.Generator, n: int, px_m: float, med_slope_deg: float, river_dist_m: np.ndarray | None) -> np.ndarray:
    """Elevation (m) on an (n, n) grid of px_m pixels, scaled so the median slope is med_slope_deg.
    Ridged fractal around 1,900 m; a valley is cut along the river if given (distance map in m)."""
    m = max(32, n // 4)
    f = fractal(rng, m, beta=3.6)
    r = 1.0 - np.abs(fractal(rng, m, beta=3.2))        # ridged component -> sharper crests
    z = upsample(0.65 * f + 0.35 * (r - r.mean()) / (r.std() + 1e-6), n).astype(np.float64)
    if river_dist_m is not None:
        w = rng.uniform(250, 600)
        z = z - 0.5 * np.ptp(z) * np.exp(-(river_dist_m / w) ** 2)
        z = ndi.gaussian_filter(z, 1.5)
    gy, gx = np.gradient(z, px_m)
    z *= np.tan(np.deg2rad(med_slope_deg)) / (np.median(np.hypot(gx, gy)) + 1e-12)
    return (1900 + z - z.mean()).astype(np.float32)


def illumination(z: np.ndarray, px_m: float, sun_elev: float, sun_az: float, n_steps: int = 24):
    """Return (cos_i / cos_sz clipped, shadow mask) for elevation z (m). sun angles in degrees, az from north cw."""
    gy, gx = np.gradient(z, px_m)
    slope = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, gy)  # downslope direction, az from north (rows increase southwards)
    sz = np.deg2rad(90 - sun_elev)
    az = np.deg2rad(sun_az)
    cos_i = np.cos(sz) * np.cos(slope) + np.sin(sz) * np.sin(slope) * np.cos(az - aspect)
    # cast shadows: march towards the sun on the grid
    dy, dx = -np.cos(az), np.sin(az)     # one pixel step towards the sun (north = -row)
    tan_e = np.tan(np.deg2rad(sun_elev))
    shadow = np.zeros(z.shape, bool)
    for t in range(1, n_steps + 1):
        step = t * 1.5
        zs = ndi.shift(z, (-dy * step, -dx * step), order=1, mode="nearest")
        shadow |= (zs - z) > step * px_m * tan_e
    return (cos_i / np.cos(sz)).astype(np.float32), shadow | (cos_i <= 0)
