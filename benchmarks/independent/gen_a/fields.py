"""Noise fields, terrain, illumination and small raster helpers."""
import numpy as np
from scipy import ndimage as ndi
from skimage.draw import line as _line


def fbm(rng, shape, beta=3.0, lowcut=1.0):
    """Gaussian 1/f^beta noise, zero mean, unit std (float32)."""
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None] * h
    fx = np.fft.rfftfreq(w)[None, :] * w
    f = np.sqrt(fx ** 2 + fy ** 2 * (w / h) ** 2)
    f[0, 0] = 1.0
    amp = 1.0 / np.maximum(f, lowcut) ** (beta / 2)
    amp[0, 0] = 0.0
    spec = amp * (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape))
    z = np.fft.irfft2(spec, s=shape)
    z = (z - z.mean()) / (z.std() + 1e-12)
    return z.astype(np.float32)


def up(a, f, order=1):
    """Upsample a 2-D field by integer factor f to exactly (h*f, w*f)."""
    h, w = a.shape
    out = ndi.zoom(a, f, order=order, mode="nearest", grid_mode=True)
    return out[: h * f, : w * f].astype(np.float32)


def terrain(rng, n, rough):
    """DEM (metres) on the 10 m grid: hills 1,500-2,500 m, V-ish valleys."""
    a = fbm(rng, (n, n), beta=rng.uniform(3.4, 4.0), lowcut=0.7)
    r = fbm(rng, (n, n), beta=rng.uniform(3.3, 3.7), lowcut=0.7)
    ridged = ndi.gaussian_filter(1.0 - np.abs(r), 1.5)
    z = a + 0.6 * (ridged - ridged.mean()) / (ridged.std() + 1e-9)
    z = z + 0.03 * fbm(rng, (n, n), beta=2.6)
    z = (z - z.min()) / (np.ptp(z) + 1e-9)
    relief = rng.uniform(500, 900) * (n / 512) ** 0.6 * (1.4 if rough else 1.0)
    return (rng.uniform(1500, 1800) + relief * z).astype(np.float32)


def slope_aspect(dem, px=10.0):
    gy, gx = np.gradient(dem, px)
    slope = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, gy)  # 0 = slope faces north (+row is south), clockwise
    return slope.astype(np.float32), aspect.astype(np.float32), gx, gy


def illumination(dem, sun_el, sun_az, px=10.0):
    """cos(incidence)/cos(zenith) direct factor (>= 0) and a cast-shadow mask, on the DEM grid."""
    slope, aspect, _, _ = slope_aspect(dem, px)
    z = np.deg2rad(90 - sun_el)
    az = np.deg2rad(sun_az)
    cosi = np.cos(z) * np.cos(slope) + np.sin(z) * np.sin(slope) * np.cos(az - aspect)
    direct = np.clip(cosi, 0, None) / np.cos(z)
    # cast shadows: march towards the sun; shadowed if terrain rises above the sun ray
    h, w = dem.shape
    dr, dc = -np.cos(az), np.sin(az)  # towards sun: north is -row
    tan_el = np.tan(np.deg2rad(sun_el))
    shadow = np.zeros(dem.shape, bool)
    pad = 60
    dp = np.pad(dem, pad, mode="edge")
    for k in range(1, pad):
        r0, c0 = int(round(k * dr)), int(round(k * dc))
        shifted = dp[pad + r0: pad + r0 + h, pad + c0: pad + c0 + w]
        shadow |= shifted - dem > k * px * np.hypot(dr, dc) * tan_el
    return direct.astype(np.float32), shadow


def dist_to_path(n, pts):
    """Distance (in grid px) on an n x n grid to a polyline given as (row, col) points."""
    m = np.ones((n, n), bool)
    for (r0, c0), (r1, c1) in zip(pts[:-1], pts[1:]):
        rr, cc = _line(int(r0), int(c0), int(r1), int(c1))
        ok = (rr >= 0) & (rr < n) & (cc >= 0) & (cc < n)
        m[rr[ok], cc[ok]] = False
    if m.all():
        return np.full((n, n), 1e6, np.float32)
    return ndi.distance_transform_edt(m).astype(np.float32)


def draw_path(mask, pts, radius=1):
    """Burn a polyline (fine-grid (row, col) points) into bool mask, dilated by `radius` px."""
    h, w = mask.shape
    thin = np.zeros_like(mask)
    for (r0, c0), (r1, c1) in zip(pts[:-1], pts[1:]):
        rr, cc = _line(int(r0), int(c0), int(r1), int(c1))
        ok = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        thin[rr[ok], cc[ok]] = True
    if radius > 0:
        thin = ndi.binary_dilation(thin, iterations=radius)
    mask |= thin
    return thin


def wander(rng, start, heading, steps, step_len, turn_sd, bounds, steer=None, pull=0.5):
    """Random-walk polyline; `steer(r, c, heading)` may return a preferred heading."""
    r, c = start
    pts = [(r, c)]
    for _ in range(steps):
        if steer is not None:
            pref = steer(r, c, heading)
            if pref is not None:
                d = np.angle(np.exp(1j * (pref - heading)))
                heading += pull * d
        heading += rng.normal(0, turn_sd)
        r, c = r + step_len * np.sin(heading), c + step_len * np.cos(heading)
        pts.append((r, c))
        if not (-bounds * 0.1 <= r <= bounds * 1.1 and -bounds * 0.1 <= c <= bounds * 1.1):
            break
    return np.array(pts)


def blob(rng, radius_px, elong=1.0, roughness=0.35, angle=None):
    """Irregular bool blob in a square window of side ~2.6*radius (centre at window centre)."""
    half = int(np.ceil(radius_px * max(elong, 1.0) * 1.3)) + 2
    yy, xx = np.mgrid[-half: half + 1, -half: half + 1].astype(np.float32)
    a = rng.uniform(0, np.pi) if angle is None else angle
    u = (xx * np.cos(a) + yy * np.sin(a)) / (radius_px * elong)
    v = (-xx * np.sin(a) + yy * np.cos(a)) / (radius_px / elong)
    rr = np.sqrt(u * u + v * v)
    nz = fbm(rng, rr.shape, beta=2.6)
    return rr + roughness * nz < 1.0, half
