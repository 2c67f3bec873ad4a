"""Landscape and mining-site layout for the scene simulator (pure numpy/scipy, no I/O).

Pixel units throughout (10 m pixels on the scene grid). The landscape is static across seasons; mining
sites change per season (see :func:`site_state`). Land cover is rendered as a per-pixel mixture of two
classes: ``out = (1 - mix)·spectrum(lc) + mix·spectrum(lc2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from geo.sim.spectra import LC, POND_LC

#: Regrowth: vegetation fraction gained per season after abandonment, and its per-pixel spread.
REGROWTH_PER_SEASON = 0.28
REGROWTH_SPREAD = 0.18
#: A regrowing pixel stops counting as cleared land (truth class 1 → 0) above this vegetation fraction.
REGROWN_VEG_FRACTION = 0.5


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Spatially correlated noise, float32, zero mean and unit std; ``scale`` is the blob size in pixels.

    White noise low-pass filtered in the Fourier domain with a Gaussian of σ = scale/2 px (periodic edges).
    """
    h, w = shape
    sigma = max(scale, 0.5) / 2.0
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    spec = np.fft.rfft2(rng.standard_normal(shape)) * np.exp(-2 * (np.pi * sigma) ** 2 * (fx**2 + fy**2))
    out = np.fft.irfft2(spec, s=shape)
    out -= out.mean()
    return (out / (out.std() + 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class Landscape:
    """Static scene: terrain, river, fields, villages and natural cover.

    Attributes:
        lc, lc2: uint8 land-cover class indices (see :data:`geo.sim.spectra.LC`).
        mix: float32 fraction of ``lc2`` in each pixel (0–1).
        elevation: float32 metres.
        texture: float32 unit-variance surface texture (canopy, soil), static across dates.
        river_dist: float32 distance in pixels to river water or its sand/gravel bars.
        human_dist: float32 distance in pixels to fields, villages and roads.
        water: bool, river water pixels.
    """

    lc: np.ndarray
    lc2: np.ndarray
    mix: np.ndarray
    elevation: np.ndarray
    texture: np.ndarray
    river_dist: np.ndarray
    human_dist: np.ndarray
    water: np.ndarray


def make_landscape(rng: np.random.Generator, shape: tuple[int, int], *, river: bool = True,
                   river_col: float | None = None, n_villages: int = 2) -> Landscape:
    """Hilly forest with a meandering N–S river, sand/gravel bars, valley fields, villages and a road."""
    h, w = shape
    rows = np.arange(h, dtype=np.float32)[:, None]
    cols = np.arange(w, dtype=np.float32)[None, :]
    lc = np.full(shape, LC["forest"], np.uint8)
    lc2 = lc.copy()
    mix = np.zeros(shape, np.float32)
    # Natural cover: patches of another forest type, shrub and grass (old swidden clearings).
    n1, n2 = smooth_noise(rng, shape, 40), smooth_noise(rng, shape, 12)
    lc[n1 > 0.9] = LC["forest_lowland"]
    lc[n2 > 1.1] = LC["shrubland"]
    lc[n2 > 1.7] = LC["grassland"]
    water = np.zeros(shape, bool)
    bars = np.zeros(shape, bool)
    human = np.zeros(shape, bool)
    if river:
        x0 = river_col if river_col is not None else rng.uniform(0.15, 0.3) * w
        y = rows[:, 0]
        a1, l1, p1 = rng.uniform(8, 16), rng.uniform(140, 220), rng.uniform(0, 2 * np.pi)
        a2, l2, p2 = rng.uniform(3, 7), rng.uniform(50, 90), rng.uniform(0, 2 * np.pi)
        drift = rng.uniform(-0.08, 0.08)
        xc = x0 + drift * y + a1 * np.sin(2 * np.pi * y / l1 + p1) + a2 * np.sin(2 * np.pi * y / l2 + p2)
        curv = np.gradient(np.gradient(xc))
        width = rng.uniform(6, 9) * (1 + 0.2 * np.sin(2 * np.pi * y / 97 + p2))
        dx = cols - xc[:, None]
        half = (width / 2)[:, None]
        water = np.abs(dx) < half
        bar_w = (3 + 9 * np.clip(np.abs(curv) / (np.abs(curv).max() + 1e-9), 0, 1))[:, None]
        inner = np.sign(dx) == np.sign(curv)[:, None]
        nb = smooth_noise(rng, shape, 10)
        bars = inner & (np.abs(dx) >= half) & (np.abs(dx) < half + bar_w) & (nb > -0.3)
        bars |= water & (np.abs(dx) < half - 1.5) & (nb > 1.3)  # mid-channel bars
        water &= ~bars
        lc[water] = LC["river_turbid"]
        lc[bars] = LC["sand_gravel_bar"]
        river_dist = ndimage.distance_transform_edt(~(water | bars)).astype(np.float32)
        # Valley fields: Voronoi cells in a band beside the river, some kept as forest.
        valley = (river_dist >= 2) & (river_dist < 42 + 8 * n1)
        vr, vc = np.nonzero(valley)
        if vr.size:
            n_seeds = max(4, vr.size // 160)
            pick = rng.choice(vr.size, n_seeds, replace=False)
            seeds = np.stack([vr[pick], vc[pick]], 1).astype(np.float32)
            cell = cKDTree(seeds).query(np.stack([vr, vc], 1).astype(np.float32))[1]
            kinds = rng.choice(5, n_seeds, p=[0.3, 0.15, 0.2, 0.15, 0.2])  # crop, bare, fallow, stubble, forest
            k = kinds[cell]
            field_lc = np.array([LC["crop_field"], LC["bare_field"], LC["grassland"], LC["bare_field"], 255])
            fl = field_lc[k]
            keep = fl != 255
            lc[vr[keep], vc[keep]] = fl[keep]
            stub = k == 3
            lc2[vr[stub], vc[stub]] = LC["grassland"]
            mix[vr[stub], vc[stub]] = 0.45
            human[vr[keep], vc[keep]] = True
        # Villages: artificial ground with trees and metal roofs.
        cand = np.argwhere((river_dist > 8) & (river_dist < 26))
        for _ in range(n_villages if cand.size else 0):
            r0, c0 = cand[rng.integers(len(cand))]
            rad = rng.uniform(5, 8)
            disk = (rows - r0) ** 2 + (cols - c0) ** 2 < rad**2
            lc[disk], lc2[disk], mix[disk] = LC["artificial"], LC["forest"], 0.3
            roofs = disk & (rng.random(shape) < 0.35)
            lc[roofs], lc2[roofs], mix[roofs] = LC["roof_metal"], LC["artificial"], 0.25
            human |= disk
        # A dirt road along the valley, ~5 m wide (half a pixel, mixed with what it crosses).
        side = rng.choice([-1.0, 1.0])
        road = np.abs(dx - side * (half + 12 + 3 * np.sin(2 * np.pi * rows / 150))) < 0.5
        road &= ~(water | bars)
        lc2[road], lc[road], mix[road] = lc[road], LC["artificial"], 0.5
        human |= road
    else:
        river_dist = np.full(shape, 1e4, np.float32)
    human_dist = ndimage.distance_transform_edt(~human).astype(np.float32) if human.any() \
        else np.full(shape, 1e4, np.float32)
    # Terrain: hills rising away from the river.
    hills = 250 * smooth_noise(rng, shape, 70) + 90 * smooth_noise(rng, shape, 22) + 15 * smooth_noise(rng, shape, 6)
    rise = 1 - np.exp(-((np.minimum(river_dist, 400) / 60.0) ** 2))
    elevation = (300 + (hills + 350) * (0.1 + 0.9 * rise)).astype(np.float32)
    texture = (0.75 * smooth_noise(rng, shape, 2) + 0.66 * rng.standard_normal(shape)).astype(np.float32)
    return Landscape(lc, lc2, mix, elevation, texture, river_dist, human_dist, water)


def hillshade(elevation: np.ndarray, sun_azimuth_deg: float, sun_elevation_deg: float, *,
              pixel_m: float = 10.0, direct: float = 0.7) -> np.ndarray:
    """Illumination factor (≈1 on flat ground): ``(1-direct) + direct·cos(i)/cos(zenith)``, clipped 0.3–1.6."""
    gy, gx = np.gradient(elevation.astype(np.float32), pixel_m)
    # Surface normal in (east, north, up); rows grow southward so d/dnorth = -gy.
    nx, ny, nz = -gx, gy, np.ones_like(gx)
    norm = np.sqrt(nx**2 + ny**2 + nz**2)
    az, el = np.radians(sun_azimuth_deg), np.radians(sun_elevation_deg)
    sx, sy, sz = np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)
    cos_i = (nx * sx + ny * sy + nz * sz) / norm
    return np.clip((1 - direct) + direct * cos_i / sz, 0.3, 1.6).astype(np.float32)


@dataclass(frozen=True)
class Pond:
    """One leaching pond inside a site window: ``mask`` (bool, window shape), colour class and the
    cleared radius the site needs before the pond exists."""

    mask: np.ndarray
    lc: int
    need: float


@dataclass(frozen=True)
class Site:
    """A mining site: a cleared hillside patch that grows, with leaching ponds and tarps.

    Attributes:
        site_id: 1-based id.
        row, col: window upper-left corner on the scene grid (px).
        potential: float32 window; a pixel is cleared once the site's radius exceeds its value.
        start: first season index with a footprint (negative: already present before the series).
        abandon: first season index without ponds (regrowth begins), or ``None`` if active to the end.
        r0: radius (px) in the start season; growth: px per season; r_max: largest radius.
        ponds, tarps: ordered by ``need``. Tarps are cleared land (class 1) covered by liner sheets.
        regrow_noise: float32 window, per-pixel spread of regrowth speed.
    """

    site_id: int
    row: int
    col: int
    potential: np.ndarray
    start: int
    abandon: int | None
    r0: float
    growth: float
    r_max: float
    ponds: tuple[Pond, ...]
    tarps: tuple[Pond, ...]
    regrow_noise: np.ndarray

    def radius(self, t: int) -> float:
        """Cleared radius (px) in season ``t`` (0 before start; frozen once abandoned)."""
        if t < self.start:
            return 0.0
        last = t if self.abandon is None else min(t, self.abandon - 1)
        return float(min(self.r_max, self.r0 + self.growth * (last - self.start)))

    def active(self, t: int) -> bool:
        """True when the site has working ponds in season ``t``."""
        return self.start <= t and (self.abandon is None or t < self.abandon)


def make_site_shape(rng: np.random.Generator, r_max: float, *, min_pond_px: int = 3, max_pond_px: int = 6,
                    pond_density: float = 0.55) -> tuple[np.ndarray, tuple[Pond, ...], tuple[Pond, ...]]:
    """Potential field of an irregular, elongated clearing plus its pond and tarp layout."""
    half = int(np.ceil(r_max * 1.5)) + 3
    size = 2 * half + 1
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
    theta, elong = rng.uniform(0, np.pi), np.sqrt(rng.uniform(1.0, 1.8))
    u = (xx * np.cos(theta) + yy * np.sin(theta)) / elong
    v = (-xx * np.sin(theta) + yy * np.cos(theta)) * elong
    potential = np.sqrt(u**2 + v**2) / (1 + 0.22 * np.clip(smooth_noise(rng, (size, size), 5), -1.8, 1.8))
    occupied = np.zeros((size, size), bool)
    inner = np.argwhere(potential < r_max - 1.5)
    area = float((potential < r_max).sum())
    max_ponds = max(2, int(pond_density * area / ((min_pond_px + max_pond_px) / 2) ** 2))
    ponds: list[Pond] = []
    tarps: list[Pond] = []
    struct = np.ones((3, 3), bool)
    for attempt in range(400):
        if len(ponds) >= max_ponds:
            break
        r, c = (half, half) if attempt == 0 else inner[rng.integers(len(inner))]
        is_tarp = len(ponds) >= 1 and len(tarps) < 2 and rng.random() < 0.08
        lo = 2 if (is_tarp or rng.random() < 0.1) else min_pond_px
        ph, pw = rng.integers(lo, max_pond_px + 1, 2) if not is_tarp else rng.integers(2, 4, 2)
        m = np.zeros((size, size), bool)
        r0, c0 = r - ph // 2, c - pw // 2
        if r0 < 1 or c0 < 1 or r0 + ph >= size - 1 or c0 + pw >= size - 1:
            continue
        if not is_tarp and rng.random() < 0.38:  # circular pond
            d = (ph + pw) / 2
            m = (yy - (r0 - half + (d - 1) / 2)) ** 2 + (xx - (c0 - half + (d - 1) / 2)) ** 2 <= (d / 2) ** 2 + 0.25
        else:
            m[r0:r0 + ph, c0:c0 + pw] = True
        grown = ndimage.binary_dilation(m, struct)
        if (grown & occupied).any() or potential[grown].max() >= r_max - 0.2:
            continue
        need = float(potential[grown].max()) + 0.3
        occupied |= m
        if is_tarp:
            tarps.append(Pond(m, int(rng.choice([LC["tarp_blue"], LC["tarp_black"]])), need))
        else:
            lc = int(rng.choice(POND_LC, p=[0.45, 0.25, 0.30]))
            ponds.append(Pond(m, lc, need))
    ponds.sort(key=lambda p: p.need)
    tarps.sort(key=lambda p: p.need)
    return potential.astype(np.float32), tuple(ponds), tuple(tarps)


@dataclass(frozen=True)
class SiteState:
    """A site's footprint in one season (window arrays): truth classes 0/1/2, land cover and mixture."""

    classes: np.ndarray
    lc: np.ndarray
    lc2: np.ndarray
    mix: np.ndarray
    cover: np.ndarray  # bool: pixels this site paints (cleared or regrowing)


def site_state(site: Site, t: int) -> SiteState | None:
    """Footprint of ``site`` in season index ``t``, or ``None`` if it has none.

    Active: cleared where ``potential < radius(t)`` (laterite with up to 25 % grass), ponds and tarps whose
    ``need`` ≤ radius. Abandoned (``t >= abandon``): no ponds; the last cleared area re-vegetates with
    vegetation fraction ``REGROWTH_PER_SEASON·(t-abandon+1) + REGROWTH_SPREAD·noise``; it is truth class 1
    while that fraction ≤ ``REGROWN_VEG_FRACTION`` and background after.
    """
    r = site.radius(t)
    if r <= 0:
        return None
    cleared = site.potential < r
    shape = cleared.shape
    classes = cleared.astype(np.uint8)
    lc = np.full(shape, LC["laterite_soil"], np.uint8)
    lc2 = np.full(shape, LC["grassland"], np.uint8)
    mix = np.clip(0.1 + 0.08 * site.regrow_noise, 0.0, 0.25).astype(np.float32)
    cover = cleared.copy()
    if site.active(t):
        for tarp in site.tarps:
            if tarp.need <= r:
                lc[tarp.mask], mix[tarp.mask] = tarp.lc, 0.0
        for pond in site.ponds:
            if pond.need <= r:
                lc[pond.mask], mix[pond.mask], classes[pond.mask] = pond.lc, 0.0, 2
    else:
        assert site.abandon is not None
        veg = REGROWTH_PER_SEASON * (t - site.abandon + 1) + REGROWTH_SPREAD * site.regrow_noise
        veg = np.clip(veg, 0.0, 1.0).astype(np.float32)
        lc2[:] = LC["shrubland"]
        mix = veg
        classes[cleared & (veg > REGROWN_VEG_FRACTION)] = 0
        cover &= veg < 1.0
    return SiteState(classes * cover, lc, lc2, mix, cover)
