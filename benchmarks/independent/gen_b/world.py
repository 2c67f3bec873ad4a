"""Season-independent landscape plan for generator B: terrain, look-alikes and mining sites."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import layout
from .water import POND_KINDS

S = 4            # fine pixels per 10 m pixel (2.5 m fine grid)
FINE_M = 10.0 / S

VARIANT_CFG = {
    "base": dict(relief=(500, 900), sun_elev=(35, 55), tau=(0.03, 0.12), f_dir=(0.80, 0.90), gain=0.02,
                 offset=0.003, noise=1.0, misreg=0.10, lai=4.2, brown=0.15, dry=False, pale=False),
    "pale": dict(relief=(500, 900), sun_elev=(35, 55), tau=(0.03, 0.12), f_dir=(0.80, 0.90), gain=0.02,
                 offset=0.003, noise=1.0, misreg=0.10, lai=3.4, brown=0.40, dry=True, pale=True),
    "rough": dict(relief=(900, 1400), sun_elev=(22, 35), tau=(0.12, 0.35), f_dir=(0.65, 0.82), gain=0.06,
                  offset=0.010, noise=2.5, misreg=0.20, lai=4.0, brown=0.20, dry=False, pale=False),
}


@dataclass
class Patch:
    kind: str            # grass, swidden, fallow, landslide, bar
    r0: int
    c0: int
    field: np.ndarray    # blob distance field; shape = field < level
    level: float
    seed: int


@dataclass
class Pond:
    r: float             # fine-pixel centre
    c: float
    half: float          # fine-pixel half size
    square: bool
    kind: str
    start: int
    drain: int           # season in which it is drained (large = never)
    seed: int


@dataclass
class Site:
    r: int
    c: int
    field: np.ndarray
    r0: int
    c0: int
    area_px: float       # final area in fine pixels
    start: int
    mat0: float
    grow: float
    terraced: bool
    terrace_h: float
    ponds: list = field(default_factory=list)
    sheds: list = field(default_factory=list)
    roads: list = field(default_factory=list)
    access: np.ndarray | None = None
    seed: int = 0

    def level(self, season: int) -> float | None:
        if season < self.start:
            return None
        frac = min(1.0, self.mat0 + self.grow * (season - self.start))
        return float(np.quantile(self.field, min(frac * self.area_px / self.field.size, 0.9)))


@dataclass
class World:
    size: int
    variant: str
    cfg: dict
    z: np.ndarray                       # 10 m DEM
    lai: np.ndarray                     # 10 m canopy LAI
    brown: np.ndarray                   # 10 m browning
    patches: list = field(default_factory=list)
    rivers: list = field(default_factory=list)    # (pts, width_px)
    roads: list = field(default_factory=list)     # (pts, width_px)
    villages: list = field(default_factory=list)  # list of (r, c, half, metal?)
    sites: list = field(default_factory=list)
    seed: int = 0


def _window_field(rng, h, w, rough=0.35, stretch=1.0, angle=0.0):
    f = layout.blob(rng, h, w, rough=rough, beta=3.1)
    if stretch != 1.0:
        yy, xx = np.mgrid[-1:1:h * 1j, -1:1:w * 1j]
        u = xx * np.cos(angle) + yy * np.sin(angle)
        v = -xx * np.sin(angle) + yy * np.cos(angle)
        f = np.hypot(u, v * stretch) + (f - np.hypot(yy, xx))
    return f.astype(np.float32)


def plan(seed: int, variant: str, size: int, seasons: int) -> World:
    cfg = VARIANT_CFG[variant]
    rng = np.random.default_rng([seed, 7171, ("base", "pale", "rough").index(variant)])
    n, F = size, size * S
    z = layout.terrain(rng, n, 10.0, rng.uniform(*cfg["relief"]) * size / 512)
    lai = np.clip(cfg["lai"] + 1.2 * layout.fractal(rng, n, beta=2.6, kmin=2), 0.6, 6.5)
    brown = np.clip(cfg["brown"] + 0.18 * layout.fractal(rng, n, beta=2.4, kmin=2), 0, 0.95)
    w = World(size, variant, cfg, z, lai.astype(np.float32), brown.astype(np.float32), seed=seed)
    area = (size / 512) ** 2
    gy, gx = np.gradient(z)

    def npatch(lo, hi):
        k = rng.integers(lo, hi + 1) * area
        return int(k) + int(rng.random() < k - int(k))

    # look-alikes (label 0)
    for kind, (lo, hi), ha in (("grass", (1, 4), (2, 20)), ("swidden", (3, 10), (0.3, 5)),
                               ("fallow", (2, 8), (0.5, 6)), ("landslide", (0, 5), (0.1, 3))):
        for _ in range(npatch(lo, hi)):
            a_px = rng.uniform(*ha) * 1e4 / FINE_M ** 2
            side = int(min(np.sqrt(a_px) * 2.2, F * 0.6)) + 8
            r, c = rng.integers(0, F, 2)
            stretch, ang = 1.0, 0.0
            if kind == "landslide":  # elongated down the local fall line
                stretch = rng.uniform(2.5, 4.5)
                ang = np.arctan2(gy[r // S, c // S], gx[r // S, c // S]) + np.pi / 2
            fld = _window_field(rng, side, side, rough=0.3 if kind != "swidden" else 0.2,
                                stretch=stretch, angle=ang)
            lvl = float(np.quantile(fld, min(a_px / fld.size, 0.8)))
            w.patches.append(Patch(kind, r - side // 2, c - side // 2, fld, lvl, int(rng.integers(2**31))))
    if rng.random() < 0.6:  # one river entering at the top edge, flowing roughly southward
        head = rng.uniform(-0.6, 0.6)
        pts = layout.polyline(rng, (rng.uniform(0, F), -10.0), head, int(F / 20) + 8, 24.0, 0.15)[:, ::-1]
        width = rng.uniform(15, 50) / FINE_M
        w.rivers.append((pts, width))
        for _ in range(int(rng.integers(2, 8) * np.sqrt(area)) + 1):  # sand / gravel bars along the banks
            p = pts[rng.integers(len(pts))] + rng.normal(0, width * 0.6, 2)
            side_px = int(rng.uniform(15, 45) / FINE_M * 2.5) + 6
            fld = _window_field(rng, side_px, side_px, rough=0.25, stretch=rng.uniform(1.5, 3),
                                angle=np.pi / 2 - head)
            w.patches.append(Patch("bar", int(p[0]) - side_px // 2, int(p[1]) - side_px // 2, fld,
                                   float(np.quantile(fld, 0.35)), int(rng.integers(2**31))))
    for _ in range(npatch(1, 4)):
        pts = layout.polyline(rng, rng.uniform(0, F, 2), rng.uniform(0, 2 * np.pi), int(F / 16), 16.0, 0.22)
        w.roads.append((pts, rng.uniform(3.5, 7) / FINE_M))
    for _ in range(npatch(0, 3)):
        vr, vc = rng.uniform(0, F, 2)
        rad = rng.uniform(60, 200) / FINE_M
        for _ in range(int(rng.integers(10, 60))):
            d = rad * np.sqrt(rng.random())
            a = rng.uniform(0, 2 * np.pi)
            w.villages.append((vr + d * np.sin(a), vc + d * np.cos(a), rng.uniform(3, 7) / FINE_M,
                               rng.random() < 0.6, int(rng.integers(2**31))))
    _plan_sites(w, rng, seasons, area)
    return w


def _plan_sites(w: World, rng, seasons: int, area: float) -> None:
    F = w.size * S
    clusters = layout.pond_clusters()
    n = int(round(rng.integers(0, 11) * area))
    if area < 1:
        n = max(n, int(rng.random() < 0.75))
    for _ in range(n):
        area_ha = float(np.exp(rng.uniform(np.log(0.5), np.log(30))))
        area_ha = min(area_ha, 0.25 * (F * FINE_M) ** 2 / 1e4)
        a_px = area_ha * 1e4 / FINE_M ** 2
        side = int(np.sqrt(a_px) * 2.4) + 16
        r, c = (int(v) for v in rng.integers(side // 4, max(F - side // 4, side // 4 + 1), 2))
        fld = _window_field(rng, side, side, rough=rng.uniform(0.25, 0.5))
        start = 0 if (seasons == 1 or rng.random() < 0.5) else int(rng.integers(1, seasons))
        site = Site(r, c, fld, r - side // 2, c - side // 2, a_px, start, rng.uniform(0.45, 1.0),
                    rng.uniform(0.1, 0.35), rng.random() < 0.5, rng.uniform(3, 8),
                    seed=int(rng.integers(2**31)))
        if rng.random() < 0.85:
            if clusters:
                # pool-weighted draw (pick a random real pool, take its whole cluster) among clusters
                # that fit the site; the site grows to hold the cluster if none fits
                ext = np.array([np.ptp(o, axis=0).max() for o, _ in clusters])
                cnt = np.array([len(o) for o, _ in clusters], float)
                ok = ext <= np.sqrt(area_ha * 1e4) * 1.2
                wgt = cnt * ok if ok.any() else cnt
                off, sq = clusters[rng.choice(len(clusters), p=wgt / wgt.sum())]
            else:
                off, sq = layout.random_cluster(rng)
            th = rng.uniform(0, 2 * np.pi)
            rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
            o = off @ rot.T
            if len(o) > 1:
                from scipy.spatial import cKDTree
                nn = cKDTree(o).query(o, 2)[0][:, 1]
            else:
                nn = np.array([60.0])
            kinds = rng.choice(POND_KINDS, size=int(rng.integers(1, 4)))
            for k in range(len(o)):
                size_m = min(5 + 35 * rng.beta(1.2, 3.0), 0.85 * nn[k])
                pst = 0 if (seasons == 1 or rng.random() < 0.6) else int(rng.integers(0, seasons))
                drain = 10**6 if rng.random() > 0.15 else pst + int(rng.integers(1, 3))
                site.ponds.append(Pond(r - o[k, 1] / FINE_M, c + o[k, 0] / FINE_M, max(size_m, 3) / FINE_M / 2,
                                       bool(sq[k]), str(rng.choice(kinds)), pst, drain, int(rng.integers(2**31))))
        if site.ponds:  # the cleared pad always holds the ponds (pad margin 3-8 m around each)
            yy, xx = np.mgrid[0:side, 0:side]
            pad = np.zeros((side, side), bool)
            for pd in site.ponds:
                m = rng.uniform(3, 8) / FINE_M + pd.half
                pad |= (np.abs(yy - (pd.r - site.r0)) <= m) & (np.abs(xx - (pd.c - site.c0)) <= m)
            site.field = np.where(pad, np.minimum(site.field, np.quantile(site.field, 0.01)), site.field)
        for _ in range(int(rng.integers(0, 5))):
            d = rng.uniform(0, np.sqrt(a_px) * 0.4)
            a = rng.uniform(0, 2 * np.pi)
            site.sheds.append((r + d * np.sin(a), c + d * np.cos(a), rng.uniform(2, 6) / FINE_M,
                               str(rng.choice(["blue", "white", "metal", "black"])), int(rng.integers(2**31))))
        for _ in range(int(rng.integers(1, 4))):
            site.roads.append(layout.polyline(rng, (c, r), rng.uniform(0, 2 * np.pi), 6,
                                              np.sqrt(a_px) * 0.12, 0.3)[:, ::-1])
        site.access = layout.polyline(rng, (c, r), rng.uniform(0, 2 * np.pi), int(rng.integers(8, 30)),
                                      24.0, 0.25)[:, ::-1]
        w.sites.append(site)
