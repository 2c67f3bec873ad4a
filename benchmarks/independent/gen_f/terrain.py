"""Valley-first terrain: rivers are drawn first, hills are raised away from them.

Elevation = river level + valley profile of distance-to-channel (concave, 30-40 deg near the
channel, flattening towards ridges, as in the dissected Kachin hills) + red fractal noise.
Also: slope/aspect, direct-beam illumination cos(i), sky-view, and cast shadows by ray marching.
"""
import numpy as np
from scipy import ndimage as ndi

PIX = 10.0   # metres per output pixel


def fractal(rng, shape, beta=3.0, scale=None):
    """Zero-mean, unit-std red noise by spectral synthesis (power ~ f^-beta)."""
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx ** 2 + fy ** 2)
    f[0, 0] = 1.0
    amp = f ** (-beta / 2)
    if scale is not None:                       # suppress features smaller than `scale` px
        amp *= np.exp(-(f * scale) ** 2)
    amp[0, 0] = 0
    z = np.fft.irfft2((rng.normal(size=amp.shape) + 1j * rng.normal(size=amp.shape)) * amp, s=shape)
    return (z - z.mean()) / (z.std() + 1e-12)


def polyline_mask(shape, pts, radius):
    """Boolean mask of a polyline (pts in pixel (row, col)) painted with discs of `radius` px."""
    pts = np.asarray(pts, float)
    seg = np.diff(pts, axis=0)
    n = np.maximum(1, (np.hypot(seg[:, 0], seg[:, 1]) / max(0.5, radius * 0.5)).astype(int))
    dense = np.concatenate([pts[i] + seg[i] * np.linspace(0, 1, n[i], endpoint=False)[:, None]
                            for i in range(len(seg))] + [pts[-1:]])
    r = int(np.ceil(radius))
    oy, ox = np.mgrid[-r:r + 1, -r:r + 1]
    keep = oy ** 2 + ox ** 2 <= radius ** 2 + 0.25
    oy, ox = oy[keep], ox[keep]
    cy = np.round(dense[:, 0])[:, None].astype(int) + oy[None]
    cx = np.round(dense[:, 1])[:, None].astype(int) + ox[None]
    ok = (cy >= 0) & (cy < shape[0]) & (cx >= 0) & (cx < shape[1])
    m = np.zeros(shape, bool)
    m[cy[ok], cx[ok]] = True
    return m


def wiggly_path(rng, a, b, n=80, amp=0.15, waves=3):
    """Meandering path from a to b (pixels): sum of random sinusoids normal to the chord."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    t = np.linspace(0, 1, n)[:, None]
    d = b - a
    L = np.hypot(*d) + 1e-9
    nrm = np.array([-d[1], d[0]]) / L
    off = np.zeros(n)
    for k in range(1, waves + 1):
        off += rng.normal(0, amp / k) * np.sin(np.pi * k * t[:, 0] + rng.uniform(0, 2 * np.pi)) * L
    off *= np.sin(np.pi * t[:, 0])               # pinned at both ends
    return a + d * t + off[:, None] * nrm


def _edge_point(rng, size, side):
    s = rng.uniform(0.1, 0.9) * (size - 1)
    return [(0, s), (size - 1, s), (s, 0), (s, size - 1)][side]


def build(rng, size):
    """Return dict with dem (m), river mask/paths, valley distance (m)."""
    pad = max(8, size // 8)
    n = size + 2 * pad                           # model beyond the edges so slopes are continuous
    side = int(rng.integers(0, 4))
    opp = {0: 1, 1: 0, 2: 3, 3: 2}[side]
    main = wiggly_path(rng, _edge_point(rng, n, side), _edge_point(rng, n, opp), amp=0.12, waves=4)
    paths = [main]
    for _ in range(int(rng.integers(1, 4))):
        j = int(rng.integers(len(main) // 5, 4 * len(main) // 5))
        s2 = int(rng.choice([k for k in range(4) if k not in (side, opp)]))
        paths.append(wiggly_path(rng, _edge_point(rng, n, s2), main[j], n=40, amp=0.1, waves=2))
    width_main = rng.uniform(1.5, 4.0)           # px half-width of the channel
    chan = polyline_mask((n, n), main, width_main)
    trib = np.zeros_like(chan)
    for p in paths[1:]:
        trib |= polyline_mask((n, n), p, rng.uniform(0.6, 1.2))
    d_main = ndi.distance_transform_edt(~chan) * PIX
    d_any = ndi.distance_transform_edt(~(chan | trib)) * PIX
    relief = rng.uniform(600, 1100)
    L = rng.uniform(900, 1600)
    floor = rng.uniform(40, 140)                 # half-width of the flat valley floor (m)
    d_m = ndi.gaussian_filter(d_main, 4.0)
    d_t = ndi.gaussian_filter(d_any, 4.0)
    soft = 25.0 * np.logaddexp(0, (d_m - floor) / 25.0)          # smooth valley-floor shoulder
    prof = relief * (1 - np.exp(-soft / L)) * (0.65 + 0.35 * (1 - np.exp(-d_t / (0.8 * L))))
    noise = fractal(rng, (n, n), beta=4.0) * rng.uniform(110, 220)
    noise += fractal(rng, (n, n), beta=2.6, scale=3.0) * rng.uniform(2, 5)
    ramp = 0.15 + 0.85 * (1 - np.exp(-d_t / 600.0))
    tilt = rng.normal(0, 0.02, 2)
    yy, xx = np.mgrid[0:n, 0:n] * PIX
    dem = 1000 + prof + noise * ramp + tilt[0] * yy + tilt[1] * xx
    s = slice(pad, pad + size)
    shift = np.array([pad, pad])
    return {"dem": dem[s, s].astype(np.float32), "dem_pad": dem, "pad": pad,
            "channel": chan[s, s], "trib": trib[s, s], "d_main": d_main[s, s], "d_any": d_any[s, s],
            "floor": floor, "paths": [p - shift for p in paths], "width_main": width_main}


def normals(dem, pix=PIX):
    gy, gx = np.gradient(dem.astype(np.float64), pix)
    # x east = +col, y north = -row
    nx, ny, nz = -gx, gy, np.ones_like(gx)
    nn = np.sqrt(nx ** 2 + ny ** 2 + 1)
    return nx / nn, ny / nn, nz / nn


def sun_vec(zen, az):
    z, a = np.radians(zen), np.radians(az)
    return np.sin(z) * np.sin(a), np.sin(z) * np.cos(a), np.cos(z)


def cos_incidence(dem, zen, az, pix=PIX):
    nx, ny, nz = normals(dem, pix)
    sx, sy, sz = sun_vec(zen, az)
    return np.clip(nx * sx + ny * sy + nz * sz, 0, 1), nz


def cast_shadow(dem_pad, pad, size, zen, az, pix=PIX):
    """1 where the sun is hidden by terrain (ray marching on a 2x coarser grid, then upsampled)."""
    c = dem_pad[::2, ::2]
    step = 2 * pix
    tanel = np.tan(np.radians(90 - zen))
    dr, dc = -np.cos(np.radians(az)), np.sin(np.radians(az))
    h, w = c.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    shade = np.zeros(c.shape, bool)
    nmax = int(min(250, 1500 * 1.0 / max(tanel, 0.2) / step))
    for k in range(1, nmax):
        rr = np.clip(np.round(rows + dr * k).astype(int), 0, h - 1)
        cc = np.clip(np.round(cols + dc * k).astype(int), 0, w - 1)
        shade |= c[rr, cc] > c + k * step * tanel + 2.0
    up = np.repeat(np.repeat(shade, 2, 0), 2, 1)
    return up[pad:pad + size, pad:pad + size].astype(np.float32)


def trace_contour(dem, start, length, rng, step=1.0, drift=0.0, sgn=None):
    """Follow a contour of `dem` from start (row, col) for `length` px; drift>0 climbs slowly."""
    gy, gx = np.gradient(ndi.gaussian_filter(dem.astype(np.float64), 2))
    p = np.array(start, float)
    out = [p.copy()]
    sgn = rng.choice([-1, 1]) if sgn is None else sgn
    prev = None
    h, w = dem.shape
    for _ in range(int(length / step)):
        r, c = int(np.clip(p[0], 0, h - 1)), int(np.clip(p[1], 0, w - 1))
        g = np.array([gy[r, c], gx[r, c]])
        gn = np.hypot(*g) + 1e-9
        t = sgn * np.array([-g[1], g[0]]) / gn + drift * g / gn
        if prev is not None and np.dot(t, prev) < 0:
            t = -t
        t /= np.hypot(*t) + 1e-9
        prev = t
        p = p + step * t
        if not (0 <= p[0] < h and 0 <= p[1] < w):
            break
        out.append(p.copy())
    return np.array(out)
