"""Noise fields, DEM with a river valley, sun illumination and cast shadows (10 m grid)."""
import numpy as np
from scipy import ndimage

DX = 10.0


def noise(rng, shape, cell, order=3):
    """Unit-variance smooth random field with correlation length ~cell pixels."""
    cell = max(float(cell), 1.0)
    gh, gw = int(np.ceil(shape[0] / cell)) + 4, int(np.ceil(shape[1] / cell)) + 4
    g = rng.standard_normal((gh, gw))
    z = ndimage.zoom(g, cell, order=order, mode="nearest", prefilter=order > 1)
    o = int(cell)
    z = z[o:o + shape[0], o:o + shape[1]]
    if z.shape != tuple(shape):          # very small cells: pad by edge
        z = np.pad(z, [(0, shape[0] - z.shape[0]), (0, shape[1] - z.shape[1])], mode="edge")
    s = z.std()
    return (z - z.mean()) / (s if s > 0 else 1.0)


def fbm(rng, shape, cells, amps, order=3):
    out = np.zeros(shape)
    for c, a in zip(cells, amps):
        out += a * noise(rng, shape, c, order)
    return out


class Valley:
    """A meandering river centreline: v = c(u) in metres in a rotated frame."""

    def __init__(self, rng, n):
        ext = n * DX
        self.theta = rng.uniform(0, np.pi)
        self.v0 = rng.uniform(-0.3, 0.3) * ext
        self.amp = rng.uniform(0.05, 0.18) * ext + 60
        self.lam = rng.uniform(0.6, 1.4) * ext + 500
        self.phi = rng.uniform(0, 2 * np.pi)
        self.width = rng.uniform(18, 60)            # wetted width, m (dry season)
        self.W = rng.uniform(1000, 2000)           # valley half-width scale, m
        self.floor = self.width / 2 + rng.uniform(40, 200)   # flat valley floor half-width
        self.z0 = rng.uniform(1000, 1500)
        self.zslope = rng.uniform(-0.015, 0.015)
        self.centre = ext / 2

    def frame(self, rows_m, cols_m):
        x = cols_m - self.centre
        y = self.centre - rows_m
        u = x * np.cos(self.theta) + y * np.sin(self.theta)
        v = -x * np.sin(self.theta) + y * np.cos(self.theta)
        return u, v

    def cu(self, u):
        return self.v0 + self.amp * np.sin(2 * np.pi * u / self.lam + self.phi)

    def curvature_sign(self, u):
        return -np.sign(np.sin(2 * np.pi * u / self.lam + self.phi))

    def dist(self, rows_m, cols_m):
        """Signed across-valley distance (m) and along-valley coordinate u."""
        u, v = self.frame(rows_m, cols_m)
        slope = self.amp * 2 * np.pi / self.lam * np.cos(2 * np.pi * u / self.lam + self.phi)
        return (v - self.cu(u)) / np.sqrt(1 + slope ** 2), u

    def point(self, u, dv=0.0):
        """(row_m, col_m) of along-coordinate u, offset dv across."""
        v = self.cu(u) + dv
        x = u * np.cos(self.theta) - v * np.sin(self.theta)
        y = u * np.sin(self.theta) + v * np.cos(self.theta)
        return self.centre - y, x + self.centre


def make_dem(rng, n, valley):
    r = (np.arange(n) + 0.5) * DX
    rows, cols = np.meshgrid(r, r, indexing="ij")
    d, u = valley.dist(rows, cols)
    relief = rng.uniform(700, 1300)
    big = fbm(rng, (n, n), [150, 75, 35], [1.0, 0.5, 0.25])
    ridged = 1 - np.abs(noise(rng, (n, n), 50))
    creeks = 110 * np.abs(noise(rng, (n, n), 28)) + 35 * np.abs(noise(rng, (n, n), 11))
    small = fbm(rng, (n, n), [5, 2.5], [6.0, 2.0])
    R = relief * (0.6 + 0.2 * big + 0.15 * ridged) + creeks + small
    dd = np.clip(np.abs(d) - valley.floor, 0, None)
    h = 1 - np.exp(-(dd / valley.W) ** 1.25)
    dem = valley.z0 + valley.zslope * u + np.clip(R, 50, None) * h
    return dem, d, u


def slope_aspect_grads(dem):
    gr, gc = np.gradient(dem, DX)
    ge, gn = gc, -gr                                   # dz/d(east), dz/d(north)
    slope = np.arctan(np.hypot(ge, gn))
    return slope, ge, gn


def illumination(dem, sun_zen, sun_az, shadow_steps=30):
    """cos(i)/cos(sz) ratio, sky-view proxy and cast-shadow mask on the DEM grid."""
    slope, ge, gn = slope_aspect_grads(dem)
    sz, az = np.radians(sun_zen), np.radians(sun_az)
    s = np.array([np.sin(sz) * np.sin(az), np.sin(sz) * np.cos(az), np.cos(sz)])
    norm = np.sqrt(ge ** 2 + gn ** 2 + 1)
    cosi = (-ge * s[0] - gn * s[1] + s[2]) / norm
    sky = (1 + np.cos(slope)) / 2
    n = dem.shape[0]
    ii, jj = np.mgrid[0:n, 0:n]
    dr, dc = -np.cos(az), np.sin(az)                    # step toward the sun in rows / cols
    tan_e = np.tan(np.pi / 2 - sz)
    shadow = np.zeros(dem.shape, bool)
    for t in range(1, shadow_steps + 1):
        st = 2.0 * t
        r = np.clip(np.rint(ii + dr * st).astype(np.int32), 0, n - 1)
        c = np.clip(np.rint(jj + dc * st).astype(np.int32), 0, n - 1)
        shadow |= dem[r, c] - dem > st * DX * tan_e + 1.0
    return np.clip(cosi, 0, None) / np.cos(sz), sky, shadow | (cosi <= 0)


def descend(grad, r0, c0, steps, rng, jitter=0.25):
    """Steepest-descent path (rows, cols in DEM pixels, float) from (r0, c0);
    grad = np.gradient(dem) (pass the negated pair to climb)."""
    gr, gc = grad
    n = gr.shape[0]
    pts = [(r0, c0)]
    r, c = r0, c0
    for _ in range(steps):
        i, j = int(np.clip(r, 0, n - 1)), int(np.clip(c, 0, n - 1))
        g = np.array([-gr[i, j], -gc[i, j]])
        nrm = np.hypot(*g)
        if nrm < 1e-3:
            break
        g = g / nrm + rng.normal(0, jitter, 2)
        g /= max(np.hypot(*g), 1e-6)
        r, c = r + 0.7 * g[0], c + 0.7 * g[1]
        if not (0 <= r < n and 0 <= c < n):
            break
        pts.append((r, c))
    return np.array(pts)
