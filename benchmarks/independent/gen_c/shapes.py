"""Fine-grid shape masks (bounding-box local) and painting helpers."""
from __future__ import annotations

import numpy as np


def _bbox(cy: float, cx: float, r: float, n: int):
    y0, y1 = max(int(cy - r) - 1, 0), min(int(cy + r) + 2, n)
    x0, x1 = max(int(cx - r) - 1, 0), min(int(cx + r) + 2, n)
    if y0 >= y1 or x0 >= x1:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    return (slice(y0, y1), slice(x0, x1)), yy + 0.5 - cy, xx + 0.5 - cx


def blob(cy, cx, radius, n, harm, elong=1.0, angle=0.0, scale=1.0, jit=None, jamp=0.0):
    """Irregular star-shaped blob; harm = array of (amp, phase) for harmonics 2..k. Returns (slices, mask) or None."""
    r = radius * scale
    rmax = r * max(elong, 1.0) * (1 + np.abs(harm[:, 0]).sum()) + 2
    b = _bbox(cy, cx, rmax, n)
    if b is None:
        return None
    sl, dy, dx = b
    ca, sa = np.cos(angle), np.sin(angle)
    u = (dx * ca + dy * sa) / elong
    v = -dx * sa + dy * ca
    th = np.arctan2(v, u)
    rr = np.ones_like(th)
    for k, (a, p) in enumerate(harm, start=2):
        rr += a * np.cos(k * th + p)
    if jit is not None and jamp > 0:
        rr = rr * (1 + jamp * jit[sl])
    return sl, np.hypot(u, v) <= r * rr


def rect(cy, cx, h, w, angle, n):
    b = _bbox(cy, cx, 0.75 * max(h, w) + 1, n)
    if b is None:
        return None
    sl, dy, dx = b
    ca, sa = np.cos(angle), np.sin(angle)
    u = dx * ca + dy * sa
    v = -dx * sa + dy * ca
    return sl, (np.abs(u) <= w / 2) & (np.abs(v) <= h / 2)


def disk(cy, cx, r, n):
    b = _bbox(cy, cx, r + 1, n)
    if b is None:
        return None
    sl, dy, dx = b
    return sl, dy * dy + dx * dx <= r * r


def lobe(cy, cx, length, width0, width1, angle, n):
    """Tapered lobe starting at (cy, cx) pointing along angle (radians, col=cos, row=sin)."""
    b = _bbox(cy + 0.5 * length * np.sin(angle), cx + 0.5 * length * np.cos(angle), 0.6 * length + width0 + 2, n)
    if b is None:
        return None
    sl, dy, dx = b
    dy = dy + 0.5 * length * np.sin(angle)
    dx = dx + 0.5 * length * np.cos(angle)
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    t = np.clip(u / length, 0, 1)
    half = 0.5 * (width0 + (width1 - width0) * t) * (1 - t ** 3) ** 0.5
    return sl, (u >= -width0 * 0.3) & (u <= length) & (np.abs(v) <= half + 0.5)


def polyline_mask(pts: np.ndarray, width: float, n: int):
    """Rasterise a polyline (fine px, (row, col)) of the given width; returns full-size bool mask."""
    m = np.zeros((n, n), bool)
    if len(pts) < 2:
        return m
    seg = np.diff(pts, axis=0)
    L = np.hypot(seg[:, 0], seg[:, 1])
    k = np.maximum(np.ceil(L / 0.7).astype(int), 1)
    idx = np.repeat(np.arange(len(seg)), k)
    frac = np.concatenate([np.arange(kk) / kk for kk in k])
    p = pts[idx] + seg[idx] * frac[:, None]
    r = width / 2
    rr = int(np.ceil(r))
    offs = [(dy, dx) for dy in range(-rr, rr + 1) for dx in range(-rr, rr + 1) if dy * dy + dx * dx <= r * r + 0.25]
    pi = np.round(p).astype(int)
    for dy, dx in offs:
        y, x = pi[:, 0] + dy, pi[:, 1] + dx
        ok = (y >= 0) & (y < n) & (x >= 0) & (x < n)
        m[y[ok], x[ok]] = True
    return m


def paint(R: np.ndarray, sl, mask: np.ndarray, spec: np.ndarray, tex: np.ndarray | None = None, amp: float = 0.0):
    """Write spec (6,) into R[:, sl][mask], modulated by (1 + amp*tex[sl])."""
    sub = R[(slice(None),) + tuple(sl)]
    if tex is None or amp == 0:
        sub[:, mask] = spec[:, None]
    else:
        t = 1 + amp * tex[tuple(sl)][mask]
        sub[:, mask] = spec[:, None] * t[None, :]
