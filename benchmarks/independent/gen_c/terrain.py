"""Terrain, noise fields, illumination and cast shadows (all on the 10 m grid)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

PIX_M = 10.0


def fractal(shape: tuple[int, int], beta: float, rng: np.random.Generator, kmin: float = 1.0) -> np.ndarray:
    """Zero-mean, unit-std power-law noise, amplitude ~ k^-beta (spectral synthesis)."""
    h, w = shape
    ky = np.fft.fftfreq(h)[:, None] * h
    kx = np.fft.rfftfreq(w)[None, :] * w
    k = np.sqrt(kx ** 2 + ky ** 2)
    amp = np.where(k < 1e-9, 0.0, np.maximum(k, kmin) ** (-beta))
    spec = (rng.normal(size=k.shape) + 1j * rng.normal(size=k.shape)) * amp
    f = np.fft.irfft2(spec, s=(h, w))
    f -= f.mean()
    return f / (f.std() + 1e-12)


def upsample(a: np.ndarray, f: int) -> np.ndarray:
    """Bilinear upsampling by an integer factor, pixel-centre aligned."""
    if f == 1:
        return a.astype(np.float32)
    h, w = a.shape
    yy = (np.arange(h * f) + 0.5) / f - 0.5
    xx = (np.arange(w * f) + 0.5) / f - 0.5
    y0 = np.clip(np.floor(yy).astype(int), 0, h - 1)
    x0 = np.clip(np.floor(xx).astype(int), 0, w - 1)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy = np.clip(yy - y0, 0, 1)[:, None].astype(np.float32)
    wx = np.clip(xx - x0, 0, 1)[None, :].astype(np.float32)
    a = a.astype(np.float32)
    top = a[y0][:, x0] * (1 - wx) + a[y0][:, x1] * wx
    bot = a[y1][:, x0] * (1 - wx) + a[y1][:, x1] * wx
    return top * (1 - wy) + bot * wy


def river_path(size: int, rng: np.random.Generator) -> np.ndarray:
    """A meandering centre line (row, col) crossing the scene, sampled every ~0.5 px."""
    horizontal = rng.random() < 0.5
    n = size * 3
    t = np.linspace(-0.1, 1.1, n)
    base = rng.uniform(0.2, 0.8) * size
    drift = rng.uniform(-0.25, 0.25) * size * (t - 0.5)
    wig = np.zeros(n)
    for _ in range(3):
        lam = rng.uniform(0.15, 0.6)
        wig += rng.uniform(0.02, 0.06) * size * np.sin(2 * np.pi * t / lam + rng.uniform(0, 6.3))
    across = base + drift + wig
    along = t * size
    return np.stack([across, along], 1) if horizontal else np.stack([along, across], 1)


def make_dem(size: int, rng: np.random.Generator, relief_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DEM (m, 1500-2500 m range), river distance (px) and river centre-line; river carved in a valley."""
    dem = fractal((size, size), 2.1, rng, kmin=1.5) + 0.35 * fractal((size, size), 1.6, rng)
    dem = dem / dem.std()
    path = river_path(size, rng)
    m = np.ones((size, size), bool)
    r = np.clip(np.round(path).astype(int), 0, size - 1)
    m[r[:, 0], r[:, 1]] = False
    dist = ndi.distance_transform_edt(m)
    valley_w = rng.uniform(0.12, 0.25) * size
    dem = dem - 1.6 * np.exp(-(dist / valley_w) ** 2) + 0.25 * np.tanh(dist / valley_w)
    dem = (dem - dem.min()) / (np.ptp(dem) + 1e-9)
    dem = 1500.0 + rng.uniform(0, 250) + dem * relief_m
    return dem.astype(np.float32), dist.astype(np.float32), path


def slope_aspect(dem: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    gy, gx = np.gradient(dem.astype(np.float64), PIX_M)  # gy: +row = south
    slope = np.arctan(np.hypot(gx, gy))
    return slope, gx, gy, -ndi.laplace(ndi.gaussian_filter(dem.astype(np.float64), 2.0))


def illumination(dem: np.ndarray, sun_elev_deg: float, sun_az_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """cos(incidence) on the slope and a binary cast-shadow mask (1 = lit)."""
    slope, gx, gy, _ = slope_aspect(dem)
    ze = np.radians(90 - sun_elev_deg)
    az = np.radians(sun_az_deg)
    # unit normal (east, north, up) of the surface z(x_east, y_north): north = -row
    nx, ny, nz = -gx, gy, np.ones_like(gx)
    nn = np.sqrt(nx ** 2 + ny ** 2 + 1)
    sx, sy, sz = np.sin(ze) * np.sin(az), np.sin(ze) * np.cos(az), np.cos(ze)
    cosi = (nx * sx + ny * sy + nz * sz) / nn
    # cast shadows: march toward the sun
    h, w = dem.shape
    lit = np.ones((h, w), bool)
    tan_e = np.tan(np.radians(sun_elev_deg))
    dcol, drow = np.sin(az), -np.cos(az)
    for step in range(1, min(80, max(h, w))):
        dr, dc = int(round(drow * step)), int(round(dcol * step))
        if abs(dr) >= h or abs(dc) >= w:
            break
        src = dem[max(dr, 0):h + min(dr, 0), max(dc, 0):w + min(dc, 0)]
        dst = dem[max(-dr, 0):h + min(-dr, 0), max(-dc, 0):w + min(-dc, 0)]
        blocked = src > dst + step * PIX_M * tan_e * np.hypot(drow, dcol)
        lit[max(-dr, 0):h + min(-dr, 0), max(-dc, 0):w + min(-dc, 0)] &= ~blocked
    return np.clip(cosi, 0, None).astype(np.float32), lit
