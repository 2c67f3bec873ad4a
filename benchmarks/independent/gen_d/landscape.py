"""Season-independent landscape plan: terrain, land-cover fields, rivers, roads, villages, swidden, landslides,
and the mining sites (with their start season, growth, pond clusters and pond fates)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from . import layout
from .spectra import POND_KINDS

PIX = 10.0  # output grid (m)
FINE = 4  # fine sub-pixels per 10 m pixel -> 2.5 m
MAX_SEASONS = 12


def noise(rng: np.random.Generator, n: int, beta: float, out: int | None = None) -> np.ndarray:
    """zero-mean unit-std power-law (1/f^beta) random field, n x n, optionally bilinearly resized."""
    k = np.fft.fftfreq(n)
    kk = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    kk[0, 0] = 1.0
    spec = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) * kk ** (-beta / 2.0)
    spec[0, 0] = 0
    f = np.fft.ifft2(spec).real
    f = (f - f.mean()) / (f.std() + 1e-12)
    if out is not None and out != n:
        f = ndi.zoom(f, out / n, order=1, grid_mode=True, mode="reflect")
    return f.astype(np.float32)


def _polyline(rng, n_pts, size, wiggle):
    """random sinuous path across the square, from one edge to the opposite one (coords in pixels)."""
    t = np.linspace(0, 1, n_pts)
    a, b = rng.uniform(0.1, 0.9, 2) * size
    base = a + (b - a) * t
    off = np.zeros(n_pts)
    for _ in range(3):
        off += rng.uniform(0.2, 1) * wiggle * np.sin(2 * np.pi * (rng.uniform(0.5, 2.5) * t + rng.random()))
    along = t * size * 1.1 - 0.05 * size
    p = np.c_[along, base + off]
    return p[:, ::-1] if rng.random() < 0.5 else p  # (x, y) or swapped


@dataclass
class Pond:
    dx: float  # metres from site centre
    dy: float
    size: float  # metres (side or diameter)
    square: bool
    angle: float
    kind: str
    spectrum_seed: int
    start: int  # season it appears
    drain: int  # season it drains (>= MAX_SEASONS: never)
    reveg: bool  # after draining: revegetates (True) or stays bare mud / empty liner


@dataclass
class Site:
    cx: float  # output-pixel coordinates
    cy: float
    radius0: float  # metres, at its first season
    growth: float  # fractional radius growth per season
    start: int
    elong: float
    angle: float
    terraced: bool
    pale_frac: float  # share of kaolinitic spoil
    shape_seed: int
    ponds: list[Pond] = field(default_factory=list)
    n_tarps: int = 0


@dataclass
class Plan:
    size: int
    dem: np.ndarray  # metres, output grid
    dry: np.ndarray  # 0..1 deciduous / browned canopy share (output grid)
    dens: np.ndarray  # 0..1 canopy density
    grass: np.ndarray  # 0..1 grassland share
    river_d: np.ndarray | None  # distance to river centreline (m), output grid
    river_w: float
    roads: list  # polylines in output-pixel coords
    villages: list  # (cx, cy, n_houses)
    swiddens: list  # (cx, cy, r_m, state, seed)
    slides: list  # (cx, cy, len_m, width_m, angle)
    sites: list[Site]


def make_dem(rng, size, variant):
    n = max(64, size)
    relief = rng.uniform(500, 800) * (1.4 if variant == "rough" else 1.0) * size / 512
    relief = max(relief, 150.0)
    dem = noise(rng, n, 3.6, size) * relief / 3.0
    ridge = 1.0 - np.abs(noise(rng, n, 3.2, size))  # sharp ridge lines
    dem = dem + ridge * relief * 0.25 + rng.uniform(1500, 2000)
    return dem


def _fates(rng, start):
    drain = MAX_SEASONS + 1
    if rng.random() < 0.3:
        drain = start + int(rng.integers(1, 4))
    return drain, bool(rng.random() < 0.4)


def make_plan(seed: int, variant: str, size: int) -> Plan:
    rng = np.random.default_rng([seed, 7301])
    dem = make_dem(rng, size, variant)
    # river: carve a valley along a sinuous path through the scene
    river_d, river_w = None, 0.0
    if rng.random() < 0.7:
        line = _polyline(rng, 200, size, size * 0.15)
        m = np.zeros((size, size), bool)
        ij = np.round(line).astype(int)
        ok = (ij[:, 0] >= 0) & (ij[:, 0] < size) & (ij[:, 1] >= 0) & (ij[:, 1] < size)
        dense = np.concatenate([np.linspace(ij[i], ij[i + 1], 8) for i in range(len(ij) - 1)]).round().astype(int)
        ok = (dense[:, 0] >= 0) & (dense[:, 0] < size) & (dense[:, 1] >= 0) & (dense[:, 1] < size)
        if ok.any():
            m[dense[ok, 1], dense[ok, 0]] = True
            river_d = ndi.distance_transform_edt(~m).astype(np.float32) * PIX
            river_w = rng.uniform(15, 60)
            dem = dem - rng.uniform(150, 350) * np.exp(-(river_d / 600.0) ** 2)
            floor = ndi.gaussian_filter(dem, 8.0)  # valley floor: smoothed local height
            wgt = np.clip(1.5 - river_d / (river_w * 3), 0, 1)
            dem = ndi.gaussian_filter(dem * (1 - wgt) + floor * wgt, 1.0)
    dry_amt = {"base": (0.08, 0.3), "pale": (0.35, 0.65), "rough": (0.2, 0.5)}[variant]
    dry = np.clip(rng.uniform(*dry_amt) + 0.25 * noise(rng, 128, 2.6, size), 0, 1)
    dens = np.clip(0.85 + 0.1 * noise(rng, 128, 2.2, size), 0.55, 1.0)
    hi = (dem - dem.mean()) / (dem.std() + 1e-6)
    grass = np.clip((hi - 1.0) * 0.6 + 0.3 * noise(rng, 128, 2.5, size), 0, 1) * rng.uniform(0.3, 1.0)
    roads = [_polyline(rng, 60, size, size * rng.uniform(0.05, 0.2)) for _ in range(rng.integers(1, 4))]
    villages = [(rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.9) * size, int(rng.integers(8, 60)))
                for _ in range(rng.integers(0, 3))]
    swiddens = [(rng.uniform(0, size), rng.uniform(0, size), float(np.sqrt(rng.uniform(0.3, 6) * 1e4 / np.pi)),
                 rng.choice(["burnt", "bare", "crop", "fallow", "fallow"]), int(rng.integers(1 << 30)))
                for _ in range(int(rng.integers(2, 12) * size / 512) + 1)]
    slides = [(rng.uniform(0, size), rng.uniform(0, size), rng.uniform(60, 350), rng.uniform(12, 45),
               rng.uniform(0, np.pi)) for _ in range(rng.integers(0, 5))]
    # mining sites
    sites = []
    n0 = int(rng.integers(0, 11))
    starts = [0] * n0 + [k for k in range(1, MAX_SEASONS) for _ in range(rng.poisson(0.8))]
    pale_mean = {"base": 0.15, "pale": 0.8, "rough": 0.25}[variant]
    for st in starts[:16]:
        area = np.exp(rng.uniform(np.log(0.5), np.log(30.0))) * 1e4
        xy, sq = layout.draw_cluster(rng)
        ext = float(np.abs(xy).max()) if len(xy) else 0.0
        r0 = max(np.sqrt(area / np.pi), ext + 20.0)
        r_px = r0 / PIX
        lo = min(r_px * 0.5, size / 2.0)
        cx, cy = rng.uniform(lo, size - lo), rng.uniform(lo, size - lo)
        iy, ix = int(np.clip(cy, 2, size - 3)), int(np.clip(cx, 2, size - 3))
        gy, gx = np.gradient(dem[iy - 2: iy + 3, ix - 2: ix + 3], PIX)
        downhill = float(np.arctan2(-gy.mean(), -gx.mean()))  # clearings run down the slope
        s = Site(cx, cy, r0, rng.uniform(0.0, 0.25), st, rng.uniform(1.0, 2.2), downhill + rng.normal(0, 0.3),
                 bool(rng.random() < 0.4), float(np.clip(rng.normal(pale_mean, 0.15), 0, 1)),
                 int(rng.integers(1 << 30)), n_tarps=int(rng.integers(0, 6)))
        base_size = rng.uniform(8, 20)
        kinds_p = np.array([0.12, 0.10, 0.06, 0.2, 0.14, 0.18, 0.2])
        if variant == "pale":
            kinds_p = kinds_p * np.array([1, 1, 1, 1.2, 2.2, 0.6, 0.8])
        kinds_p /= kinds_p.sum()
        site_kind = rng.choice(len(POND_KINDS), p=kinds_p)
        for (dx, dy), isq in zip(xy, sq):
            k = site_kind if rng.random() < 0.6 else rng.choice(len(POND_KINDS), p=kinds_p)
            pst = st if rng.random() < 0.8 else st + int(rng.integers(1, 3))
            dr, rv = _fates(rng, pst)
            s.ponds.append(Pond(float(dx), float(dy), float(np.clip(base_size * rng.lognormal(0, 0.35), 5, 40)),
                                bool(isq), float(rng.normal(0, 0.15)), POND_KINDS[k], int(rng.integers(1 << 30)),
                                pst, dr, rv))
        sites.append(s)
    return Plan(size, dem.astype(np.float32), dry.astype(np.float32), dens.astype(np.float32),
                grass.astype(np.float32), river_d, river_w, roads, villages, swiddens, slides, sites)


def shading(dem: np.ndarray, sun_el: float, sun_az: float, f_dir: float | None):
    """terrain illumination factor (relative to flat ground): direct part cos(i)/cos(sz) with cast shadows,
    diffuse part by sky-view (1 + cos slope)/2, plus a little terrain-reflected light."""
    gy, gx = np.gradient(dem, PIX)
    slope = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, gy)  # downslope direction, clockwise from north (y axis points south)
    sz, az = np.radians(90 - sun_el), np.radians(sun_az)
    cos_i = np.cos(sz) * np.cos(slope) + np.sin(sz) * np.sin(slope) * np.cos(az - aspect)
    lit = _cast_shadow(dem, sun_el, sun_az)
    direct = np.clip(cos_i, 0, None) * lit / np.cos(sz)
    sky = (1 + np.cos(slope)) / 2
    sky = sky + 0.03 * (1 - np.cos(slope))
    if f_dir is None:
        return direct.astype(np.float32), sky.astype(np.float32)
    return (f_dir * direct + (1 - f_dir) * sky).astype(np.float32)


def _cast_shadow(dem, sun_el, sun_az, steps=48):
    """horizon test along the sun direction (output grid)."""
    dx, dy = np.sin(np.radians(sun_az)), -np.cos(np.radians(sun_az))  # toward the sun (north up)
    tan_el = np.tan(np.radians(sun_el))
    lit = np.ones(dem.shape, bool)
    n = dem.shape[0]
    for k in range(1, steps + 1):
        step = 1.0 + k * k * 0.25  # denser near the pixel
        ox, oy = int(round(dx * step)), int(round(dy * step))
        if abs(ox) >= n or abs(oy) >= n:
            break
        sh = np.full(dem.shape, -1e9, np.float32)
        ys = slice(max(0, -oy), n - max(0, oy))
        yd = slice(max(0, oy), n - max(0, -oy))
        xs = slice(max(0, -ox), n - max(0, ox))
        xd = slice(max(0, ox), n - max(0, -ox))
        sh[ys, xs] = dem[yd, xd]
        lit &= sh - dem < np.hypot(ox, oy) * PIX * tan_el
    return ndi.uniform_filter(lit.astype(np.float32), 2)
