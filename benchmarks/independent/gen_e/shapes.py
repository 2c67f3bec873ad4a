"""Small raster-shape helpers on the fine grid (local windows, never whole-image boolean passes)."""
from __future__ import annotations

import numpy as np


def blob_params(rng: np.random.Generator, rough: float = 0.25) -> np.ndarray:
    """Harmonic edge perturbation coefficients (k = 2..6): amplitude, phase."""
    k = np.arange(2, 7)
    return np.stack([k, rng.normal(0, rough, k.size) / k ** 0.8, rng.uniform(0, 2 * np.pi, k.size)], 1)


def blob(a: float, b: float, ang: float, harm: np.ndarray, g: float = 1.0):
    """Irregular ellipse, semi-axes a (along ang) and b, in fine px; scaled by g. Returns (mask, r0, c0 offset)."""
    R = int(np.ceil(max(a, b) * g * 1.6)) + 2
    yy, xx = np.mgrid[-R:R + 1, -R:R + 1].astype(np.float32)
    u = xx * np.cos(ang) + yy * np.sin(ang)
    v = -xx * np.sin(ang) + yy * np.cos(ang)
    rho = np.hypot(u / a, v / b)
    phi = np.arctan2(v / b, u / a)
    thr = np.ones_like(rho)
    for k, c, p in harm:
        thr += c * np.cos(k * phi + p)
    return rho < np.clip(thr, 0.45, 1.6) * g, -R, -R


def rect(w: float, h: float, ang: float):
    """Rotated rectangle w x h fine px. Returns (mask, r_off, c_off)."""
    R = int(np.ceil(np.hypot(w, h) / 2)) + 1
    yy, xx = np.mgrid[-R:R + 1, -R:R + 1].astype(np.float32)
    u = xx * np.cos(ang) + yy * np.sin(ang)
    v = -xx * np.sin(ang) + yy * np.cos(ang)
    return (np.abs(u) <= w / 2) & (np.abs(v) <= h / 2), -R, -R


def disk(d: float):
    R = int(np.ceil(d / 2)) + 1
    yy, xx = np.mgrid[-R:R + 1, -R:R + 1].astype(np.float32)
    return np.hypot(yy, xx) <= d / 2, -R, -R


def window(shape, r: int, c: int, m: np.ndarray):
    """Clip a local mask placed with top-left (r, c) to an image of `shape`. Returns (slices, clipped mask) or None."""
    H, W = shape[-2:]
    h, w = m.shape
    r0, c0, r1, c1 = max(r, 0), max(c, 0), min(r + h, H), min(c + w, W)
    if r0 >= r1 or c0 >= c1:
        return None
    return (slice(r0, r1), slice(c0, c1)), m[r0 - r:r1 - r, c0 - c:c1 - c]


def paint(cube: np.ndarray, r: int, c: int, m: np.ndarray, spec: np.ndarray, tex: np.ndarray | None = None,
          masks: tuple = ()):
    """Set cube[:, mask] = spec (x tex) for a local mask at (r, c); also set each boolean array in masks there."""
    w = window(cube.shape, r, c, m)
    if w is None:
        return
    (sr, sc), mm = w
    v = cube[:, sr, sc]
    if tex is None:
        v[:, mm] = spec[:, None]
    else:
        v[:, mm] = spec[:, None] * tex[sr, sc][mm][None]
    for arr, val in masks:
        arr[sr, sc][mm] = val


def curve(rng: np.random.Generator, start, heading: float, length_px: int, wiggle: float = 0.08):
    """Smooth random-walk centreline (rows, cols) with 1 px steps."""
    turn = np.cumsum(rng.normal(0, wiggle, length_px))
    turn = np.convolve(turn, np.ones(25) / 25, mode="same")
    h = heading + turn
    r = start[0] + np.cumsum(np.sin(h))
    c = start[1] + np.cumsum(np.cos(h))
    return r, c


def stamp_line(shape, r: np.ndarray, c: np.ndarray, width: float) -> tuple:
    """Indices (rows, cols) of pixels within width/2 of a centreline sampled every ~1 px."""
    m, _, _ = disk(max(width, 1.0))
    R = m.shape[0] // 2
    dy, dx = np.nonzero(m)
    dy, dx = dy - R, dx - R
    rr = (np.round(r)[:, None] + dy[None]).ravel().astype(np.int64)
    cc = (np.round(c)[:, None] + dx[None]).ravel().astype(np.int64)
    ok = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
    return rr[ok], cc[ok]
