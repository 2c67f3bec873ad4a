"""Background (label 0) landscape of the Chipwi-Pangwa hills: forest stands, bamboo, grassy
ridges, river with sand / gravel bars, valley-floor terraced paddies, villages with fish ponds,
roads, swidden at several ages, landslides, a gravel quarry."""
import numpy as np
from scipy import ndimage
from skimage.measure import label as cc_label

from . import spectra as S
from .canvas import Item, blob, disk, polyline, rect, wiggle
from .terrain import DX, Valley, descend, make_dem, noise, slope_aspect_grads


def _rng(seed, *tags):
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *tags])


class Landscape:
    def __init__(self, seed, n, f, reg):
        self.seed, self.n, self.f, self.F = seed, n, f, n * f
        self.reg = reg
        rng = _rng(seed, 1)
        self.valley = Valley(rng, n)
        self.dem, d10, u10 = make_dem(rng, n, self.valley)
        self.slope, self.ge, self.gn = slope_aspect_grads(self.dem)
        self.grad = np.gradient(self.dem)
        self.ridge = self.dem - ndimage.gaussian_filter(self.dem, 15)
        self.d10 = d10
        self.dem_f = ndimage.zoom(self.dem, f, order=1)
        self.items = []
        self.road_pts = np.zeros((0, 2))
        self._base(rng)
        self._river(rng)
        self._roads(rng)
        self._villages(rng)
        self._quarry(rng)
        for _ in range(self._count(rng, 1.3)):
            self.add_swidden(rng, age=int(rng.integers(0, 6)))
        for _ in range(self._count(rng, 0.6)):
            self.add_landslide(rng, t0=0, fresh_age=int(rng.integers(0, 4)))

    # ------------------------------------------------------------------ helpers
    def reg_cls_name(self, uid):
        return S.NAMES[self.reg.cls[uid]]

    def _count(self, rng, per_km2):
        area = (self.n * DX / 1000.0) ** 2
        return int(rng.poisson(per_km2 * area))

    def _zf(self, a, order=1):
        return ndimage.zoom(a, self.f, order=order)

    def _add(self, shape, uid, cls, **kw):
        if shape is not None:
            self.items.append(Item(shape[0], shape[1], uid, cls, **kw))

    def to_fine(self, r10, c10):
        return (r10 + 0.5) * self.f, (c10 + 0.5) * self.f

    def pick(self, rng, cond, k=1):
        idx = np.flatnonzero(cond.ravel())
        if len(idx) == 0:
            idx = np.arange(self.n * self.n)
        sel = rng.choice(idx, size=k)
        return np.column_stack(np.unravel_index(sel, (self.n, self.n))).astype(float)

    def down_angle(self, r10, c10):
        i = int(np.clip(r10, 0, self.n - 1))
        j = int(np.clip(c10, 0, self.n - 1))
        return np.arctan2(self.gn[i, j], -self.ge[i, j])   # theta in (row, col) frame, downslope

    # ------------------------------------------------------------------ base layers
    def _base(self, rng):
        n, F = self.n, self.F
        aspect_south = -self.gn / (np.hypot(self.ge, self.gn) + 1e-6)   # +1 facing south
        zr = (self.dem - self.dem.min()) / (np.ptp(self.dem) + 1e-6)
        semi = 0.9 * aspect_south - 1.2 * zr + 0.8 * noise(rng, (n, n), 20) + rng.uniform(-0.5, 0.3)
        bam = noise(rng, (n, n), 9)
        shrub = noise(rng, (n, n), 14)
        grass = self.ridge / (self.ridge.std() + 1e-6) + 0.8 * zr + 0.7 * noise(rng, (n, n), 10)
        cls = np.full((F, F), S.ID["forest_evergreen"], np.int16)
        semi_f, bam_f = self._zf(semi), self._zf(bam)
        shrub_f, grass_f = self._zf(shrub), self._zf(grass)
        cls[semi_f > 0.4] = S.ID["forest_semidec"]
        cls[bam_f > 1.15] = S.ID["bamboo"]
        cls[shrub_f > 1.35] = S.ID["shrub_fallow"]
        cls[grass_f > rng.uniform(2.0, 2.6)] = S.ID["grass_ridge"]
        # stands: quantised smooth field, connected regions of equal (class, bin) are objects
        stand = self._zf(noise(rng, (n, n), 7) + 0.5 * noise(rng, (n, n), 3))
        code = cls.astype(np.int32) * 64 + np.floor(stand * 1.6).astype(np.int32) + 32
        # valley floor: terraced paddies on gentle ground near the river
        d_f = self._zf(self.d10)
        self.d_f = d_f
        slope_f = self._zf(self.slope)
        w = self.valley.width / 2
        floor_w = rng.uniform(120, 320)
        pad = (np.abs(d_f) > w + 25) & (np.abs(d_f) < w + floor_w) & (slope_f < np.radians(16))
        pad &= self._zf(noise(rng, (n, n), 12)) > -0.6
        step = rng.uniform(1.2, 3.0)
        terr = np.floor(self.dem_f / step).astype(np.int32)
        code = np.where(pad, 10 ** 6 + terr, code)
        lab = cc_label(code, connectivity=1, background=-1)
        n_obj = int(lab.max())
        first = np.zeros(n_obj + 1, np.int64)
        flat_idx = lab.ravel()
        order = np.argsort(flat_idx, kind="stable")
        starts = np.searchsorted(flat_idx[order], np.arange(1, n_obj + 1))
        first[1:] = order[starts]
        obj_cls = cls.ravel()[first[1:]].astype(np.int64)
        is_pad = pad.ravel()[first[1:]]
        u = rng.random(n_obj)
        paddy_cls = np.where(u < 0.15, S.ID["paddy_wet"], np.where(u < 0.3, S.ID["young_fallow"],
                                                                      S.ID["field_harvested"]))
        obj_cls = np.where(is_pad, paddy_cls, obj_cls)
        base_uid = len(self.reg.z)
        z = S.correlated_normals(rng, n_obj, S.BRIGHT[obj_cls])
        self.reg.extend(z, obj_cls)
        self.cls = obj_cls[lab - 1].astype(np.int16)
        self.uid = (lab - 1 + base_uid).astype(np.int32)
        self.flat = pad.copy()
        # paddy bunds: thin grassy lines where the terrace index changes
        e = pad & ((np.diff(terr, axis=0, prepend=terr[:1]) != 0) |
                   (np.diff(terr, axis=1, prepend=terr[:, :1]) != 0))
        e &= rng.random(e.shape) < 0.55
        self.cls[e] = S.ID["young_fallow"]

    def _river(self, rng):
        v, F, d = self.valley, self.F, self.d_f
        w = v.width / 2
        n = self.n
        water = np.abs(d) < w
        uid_w = self.reg.new(rng, "river_water")
        self.cls[water] = S.ID["river_water"]
        self.uid[water] = uid_w
        self.flat |= water
        # point bars on the inner bank of bends + mid-channel bars, wet fringe at the water
        rows = (np.arange(n) + 0.5) * DX
        rr, cc = np.meshgrid(rows, rows, indexing="ij")
        _, u10 = v.dist(rr, cc)
        inner = self._zf(v.curvature_sign(u10))
        barw = self._zf(np.clip(rng.uniform(25, 90) * (0.6 + 0.6 * noise(rng, (n, n), 15)), 0, None))
        side = np.sign(d) == inner
        bar = side & (np.abs(d) >= w) & (np.abs(d) < w + barw)
        bar |= water & (self._zf(noise(rng, (n, n), 6)) > rng.uniform(1.4, 2.0))
        wet = bar & (np.abs(np.abs(d) - w) < rng.uniform(3, 9))
        lab, nb = ndimage.label(bar)
        if nb:
            uids = self.reg.new(rng, "sand_bar", nb)
            uids = np.atleast_1d(uids)
            self.cls[bar] = S.ID["sand_bar"]
            self.uid[bar] = uids[lab[bar] - 1]
            uwet = self.reg.new(rng, "sand_wet")
            self.cls[wet] = S.ID["sand_wet"]
            self.uid[wet] = uwet
        self.flat |= bar

    def add_bar_at(self, rng, r_f, c_f, t0=0):
        """Extra gravel bar at a fine-grid point (used below mines)."""
        th = rng.uniform(0, np.pi)
        self._add(blob(self.F, rng, r_f, c_f, rng.uniform(8, 25) * self.f, rng.uniform(4, 10) * self.f,
                       th, 0.3), self.reg.new(rng, "sand_bar"), "sand_bar", flat=True, t0=t0)

    def _roads(self, rng):
        v, f = self.valley, self.f
        ext = self.n * DX
        side = rng.choice([-1, 1])
        dv = side * (v.width / 2 + rng.uniform(60, 200))
        us = np.linspace(-ext, ext, 160)
        pts = np.array([v.point(u, dv + 25 * np.sin(u / 90.0)) for u in us]) / DX * f
        ok = (pts[:, 0] > -50) & (pts[:, 0] < self.F + 50) & (pts[:, 1] > -50) & (pts[:, 1] < self.F + 50)
        pts = pts[ok]
        uid = self.reg.new(rng, "road_dirt")
        if len(pts) > 1:
            self._add(polyline(self.F, pts, rng.uniform(5, 7.5) / DX * f), uid, "road_dirt")
        self.road_pts = pts
        self.road_uid = uid
        for _ in range(max(1, self._count(rng, 0.25))):      # spur roads up the hills
            if len(pts) < 2:
                break
            a = pts[rng.integers(len(pts))]
            b = self.to_fine(*self.pick(rng, (self.slope > np.radians(10)) &
                                         (self.ridge > 0))[0])
            line = wiggle(rng, a, b, 6, 0.08 * np.hypot(*(np.array(b) - a)))
            self._add(polyline(self.F, line, rng.uniform(4, 6) / DX * f), uid, "road_dirt")
            self.road_pts = np.vstack([self.road_pts, line])

    def _villages(self, rng):
        f = self.f
        near = (np.abs(self.d10) < 600) & (self.slope < np.radians(22))
        for _ in range(max(1, self._count(rng, 0.15))):
            r, c = self.to_fine(*self.pick(rng, near)[0])
            R = rng.uniform(50, 130) / DX * f
            self._add(blob(self.F, rng, r, c, R, R * rng.uniform(0.5, 1), rng.uniform(0, np.pi), 0.3),
                      self.reg.new(rng, "village_ground"), "village_ground")
            th = rng.uniform(0, np.pi)
            for _ in range(int(rng.integers(6, 30))):
                rr, c2 = r + rng.normal(0, R / 2), c + rng.normal(0, R / 2)
                kind = rng.choice(["roof_metal", "roof_rust_thatch", "tarp_blue"], p=[0.5, 0.42, 0.08])
                self._add(rect(self.F, rr, c2, rng.uniform(6, 14) / DX * f, rng.uniform(5, 10) / DX * f,
                               th + rng.normal(0, 0.2)), self.reg.new(rng, kind), kind)
            for _ in range(int(rng.integers(0, 4))):     # fish ponds: square water, look-alike
                ang = rng.uniform(0, 2 * np.pi)
                rr, c2 = r + 1.4 * R * np.cos(ang), c + 1.4 * R * np.sin(ang)
                kind = "natural_pond" if rng.random() < 0.7 else "pond_green"
                s = rng.uniform(12, 40) / DX * f
                self._add(rect(self.F, rr, c2, s, s * rng.uniform(0.6, 1.5), th),
                          self.reg.new(rng, kind), kind, flat=True)

    def _quarry(self, rng):
        if rng.random() < 0.35:
            r, c = self.to_fine(*self.pick(rng, (np.abs(self.d10) < 500) & (np.abs(self.d10) > 80))[0])
            a = rng.uniform(30, 80) / DX * self.f
            self._add(blob(self.F, rng, r, c, a, a * 0.6, rng.uniform(0, np.pi), 0.25),
                      self.reg.new(rng, "quarry_rock"), "quarry_rock")

    # ------------------------------------------------------------------ dynamic objects
    def add_swidden(self, rng, age=0, t0=0, at=None):
        """Swidden patch; class follows the cycle burn/slash -> harvested -> grass -> shrub."""
        f = self.f
        if at is None:
            cond = (self.slope > np.radians(8)) & (np.abs(self.d10) > 150)
            at = self.to_fine(*self.pick(rng, cond)[0])
        a = rng.uniform(50, 200) / DX * f
        burnt = rng.random() < 0.6
        uid = self.reg.new(rng, "swidden_dry")

        def cls(s, a0=age - t0, burnt=burnt):
            k = a0 + s
            if k <= 0:
                return "swidden_burnt" if burnt else "swidden_dry"
            return ("field_harvested" if k == 1 else "young_fallow" if k <= 3 else "shrub_fallow")

        theta = self.down_angle(at[0] / f, at[1] / f)
        self._add(blob(self.F, rng, at[0], at[1], a, a * rng.uniform(0.4, 0.9), theta, 0.35),
                  uid, cls, t0=t0)

    def add_landslide(self, rng, t0=0, fresh_age=0, at=None):
        """Downslope scar: narrow scarp widening into a runout lobe."""
        f = self.f
        if at is None:
            cond = self.slope > np.radians(28)
            r10, c10 = self.pick(rng, cond)[0] + rng.uniform(0, 1, 2)
        else:
            r10, c10 = at[0] / f, at[1] / f
        path = descend(self.grad, r10, c10, int(rng.integers(6, 30)), rng, 0.15)
        if len(path) < 3:
            return
        uid = self.reg.new(rng, "landslide_fresh")
        cls = (lambda s, a0=fresh_age - t0: "landslide_fresh" if a0 + s < 3 else "landslide_old")
        w0, w1 = rng.uniform(8, 20), rng.uniform(20, 55)
        k = len(path)
        for i in range(0, k - 1):
            w = (w0 + (w1 - w0) * i / (k - 1)) / DX * f
            seg = (path[i:i + 2] + 0.5) * f
            self._add(polyline(self.F, seg, w), uid, cls, t0=t0)

    def season_items(self, s):
        """Objects that appear at season s >= 1 (new swidden burns, new landslides)."""
        if s <= 0:
            return []
        rng = _rng(self.seed, 7, s)
        keep = self.items
        self.items = []
        for _ in range(self._count(rng, 0.45)):
            self.add_swidden(rng, age=0, t0=s)
        for _ in range(self._count(rng, 0.2)):
            self.add_landslide(rng, t0=s)
        new, self.items = self.items, keep
        return new
