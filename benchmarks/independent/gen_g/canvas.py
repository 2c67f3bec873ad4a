"""Object canvas on the fine grid (f sub-pixels per 10 m pixel) and shape helpers.

Each painted thing is an Item: a window, a boolean mask, an object uid (its spectrum draw),
a class per season, a truth label (0 background, 1 mine footprint, 2 pond) and a flat flag
(water, paddies, pads: no terrain shading).
"""
import numpy as np
from scipy import ndimage

from . import spectra as S


class Registry:
    """uid -> correlated standard-normal 6-vector (object spectrum draw)."""

    def __init__(self):
        self.z = []
        self.cls = []

    def new(self, rng, cls_name, n=1, bias=0.0):
        a = S.BRIGHT[S.ID[cls_name]]
        z = S.correlated_normals(rng, n, a) + bias
        base = len(self.z)
        self.z.extend(list(z))
        self.cls.extend([S.ID[cls_name]] * n)
        return base if n == 1 else np.arange(base, base + n)

    def extend(self, z, cls_ids):
        self.z.extend(list(z))
        self.cls.extend(list(np.asarray(cls_ids)))

    def array(self):
        return np.clip(np.array(self.z).reshape(-1, 6), -2.5, 2.5)


class Item:
    __slots__ = ("sl", "mask", "uid", "cls", "label", "flat", "t0", "t1")

    def __init__(self, sl, mask, uid, cls, label=0, flat=False, t0=0, t1=10 ** 6):
        self.sl, self.mask, self.uid, self.cls = sl, mask, uid, cls
        self.label, self.flat, self.t0, self.t1 = label, flat, t0, t1

    def cls_at(self, s):
        if not (self.t0 <= s < self.t1):
            return None
        return self.cls(s) if callable(self.cls) else self.cls


def window(F, r, c, rad):
    r0, r1 = int(max(0, np.floor(r - rad))), int(min(F, np.ceil(r + rad) + 1))
    c0, c1 = int(max(0, np.floor(c - rad))), int(min(F, np.ceil(c + rad) + 1))
    if r1 <= r0 or c1 <= c0:
        return None
    return (slice(r0, r1), slice(c0, c1))


def blob(F, rng, r, c, a, b, theta, warp=0.3, cell=6.0):
    """Irregular ellipse (semi-axes a along theta, b across; fine px). Returns (sl, mask)."""
    rad = max(a, b) * (1 + warp) + 2
    sl = window(F, r, c, rad)
    if sl is None:
        return None
    rr, cc = np.mgrid[sl[0], sl[1]]
    dr, dc = rr + 0.5 - r, cc + 0.5 - c
    u = dr * np.cos(theta) + dc * np.sin(theta)
    v = -dr * np.sin(theta) + dc * np.cos(theta)
    q = np.sqrt((u / max(a, 0.5)) ** 2 + (v / max(b, 0.5)) ** 2)
    if warp > 0:
        from .terrain import noise
        big = max(cell, 0.45 * min(a, b))
        q = q + warp * (noise(rng, q.shape, min(big, max(q.shape) / 2 + 1), order=3) +
                        0.2 * noise(rng, q.shape, min(max(cell / 2, 2), max(q.shape) / 2 + 1), order=1))
    m = q <= 1.0
    return (sl, m) if m.any() else None


def rect(F, r, c, h, w, theta):
    rad = 0.75 * np.hypot(h, w) + 1
    sl = window(F, r, c, rad)
    if sl is None:
        return None
    rr, cc = np.mgrid[sl[0], sl[1]]
    dr, dc = rr + 0.5 - r, cc + 0.5 - c
    u = dr * np.cos(theta) + dc * np.sin(theta)
    v = -dr * np.sin(theta) + dc * np.cos(theta)
    m = (np.abs(u) <= h / 2) & (np.abs(v) <= w / 2)
    return (sl, m) if m.any() else None


def disk(F, r, c, rad):
    sl = window(F, r, c, rad + 1)
    if sl is None:
        return None
    rr, cc = np.mgrid[sl[0], sl[1]]
    m = (rr + 0.5 - r) ** 2 + (cc + 0.5 - c) ** 2 <= rad ** 2
    return (sl, m) if m.any() else None


def polyline(F, pts, width):
    """Band of given width (fine px) along a polyline of (r, c) points. Returns (sl, mask)."""
    pts = np.asarray(pts, float)
    if len(pts) < 2:
        return None
    seg = np.diff(pts, axis=0)
    L = np.hypot(seg[:, 0], seg[:, 1])
    dense = [pts[:1]]
    for p, s, l in zip(pts[:-1], seg, L):
        k = max(int(np.ceil(l / 0.5)), 1)
        dense.append(p + s * (np.arange(1, k + 1) / k)[:, None])
    d = np.concatenate(dense)
    rad = width / 2.0
    r0 = int(max(0, np.floor(d[:, 0].min() - rad - 1)))
    r1 = int(min(F, np.ceil(d[:, 0].max() + rad + 2)))
    c0 = int(max(0, np.floor(d[:, 1].min() - rad - 1)))
    c1 = int(min(F, np.ceil(d[:, 1].max() + rad + 2)))
    if r1 <= r0 or c1 <= c0:
        return None
    m = np.zeros((r1 - r0, c1 - c0), bool)
    ir = np.floor(d[:, 0]).astype(int) - r0
    ic = np.floor(d[:, 1]).astype(int) - c0
    ok = (ir >= 0) & (ir < m.shape[0]) & (ic >= 0) & (ic < m.shape[1])
    m[ir[ok], ic[ok]] = True
    if not m.any():
        return None
    if rad > 0.75:
        k = int(np.ceil(rad))
        yy, xx = np.mgrid[-k:k + 1, -k:k + 1]
        m = ndimage.binary_dilation(m, structure=(yy ** 2 + xx ** 2) <= rad ** 2 + 0.25)
    return (slice(r0, r1), slice(c0, c1)), m


def wiggle(rng, a, b, n_mid, amp):
    """Polyline from a to b with n_mid jittered midpoints (switchbacks / meanders)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    t = np.linspace(0, 1, n_mid + 2)
    p = a + (b - a) * t[:, None]
    d = b - a
    nrm = np.array([-d[1], d[0]]) / max(np.hypot(*d), 1e-6)
    off = rng.normal(0, amp, n_mid + 2)
    off[0] = off[-1] = 0
    return p + off[:, None] * nrm


class Frame:
    """Per-season fine-grid rasters."""

    def __init__(self, cls, uid, label, flat):
        self.cls, self.uid, self.label, self.flat = cls, uid, label, flat

    def paint(self, item, s):
        c = item.cls_at(s)
        if c is None:
            return
        sl, m = item.sl, item.mask
        self.cls[sl][m] = S.ID[c]
        self.uid[sl][m] = item.uid
        self.label[sl][m] = item.label
        self.flat[sl][m] = item.flat


def truth_from_fine(foot, pond, f):
    """Apply the truth rule on f x f sub-pixel blocks: 2 if >= half pond, else 1 if >= half
    footprint (ponds included), else 0."""
    n = foot.shape[0] // f
    pf = pond.reshape(n, f, n, f).mean(axis=(1, 3))
    ff = (foot | pond).reshape(n, f, n, f).mean(axis=(1, 3))
    y = np.zeros((n, n), np.uint8)
    y[ff >= 0.5] = 1
    y[pf >= 0.5] = 2
    return y
