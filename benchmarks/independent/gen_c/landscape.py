"""The static landscape of one (seed, variant, size): terrain, vegetation fields and object lists.

Landscape processes modelled (see README): the river sits in the deepest valley with bars on alternating
banks; dirt roads wind along contours at small grades; villages sit on gentle ground beside roads; swidden
plots of different ages are on mid slopes near roads/villages; landslide scars run downslope on steep
ground; mines are dug on upper slopes and ridges, with spoil fans running downslope below the pads, pond
clusters (real relative geometry) on terraced pads and collection ponds at the downslope edge.
"""
from __future__ import annotations

import numpy as np

from . import layout
from .terrain import fractal, make_dem, slope_aspect

F = 4            # fine pixels per 10 m pixel (2.5 m fine grid)
M2P = F / 10.0   # fine pixels per metre


def _sample(a: np.ndarray, r: float, c: float) -> float:
    h, w = a.shape
    return float(a[min(max(int(r), 0), h - 1), min(max(int(c), 0), w - 1)])


class Landscape:
    def __init__(self, seed: int, variant: str, size: int):
        vi = ("base", "pale", "rough").index(variant)
        rng = np.random.default_rng([seed, vi, 11])
        self.variant, self.size, self.n = variant, size, size * F
        self.key = (int(seed), vi)
        area = (size / 512.0) ** 2
        relief = rng.uniform(900, 1250) if variant == "rough" else rng.uniform(550, 900)
        self.dem, self.dist_river, self.river = make_dem(size, rng, relief)
        slope, gx, gy, conv = slope_aspect(self.dem)
        self.slope, self.gx, self.gy = slope, gx, gy
        elev_n = (self.dem - self.dem.min()) / (np.ptp(self.dem) + 1e-9)
        conv_n = conv / (conv.std() + 1e-9)
        south = np.clip(gy / (np.hypot(gx, gy) + 1e-9), -1, 1)  # +1 where ground faces south (dem rises northward)
        # vegetation preference scores (10 m), thresholded on the fine grid
        self.score = {
            "pine": 1.3 * elev_n + 0.35 * np.clip(conv_n, -2, 2) + 0.45 * fractal((size, size), 1.6, rng),
            "deciduous_dry": 0.8 * fractal((size, size), 1.5, rng) + 0.35 * south - 0.3 * elev_n,
            "bamboo": fractal((size, size), 1.7, rng) + 0.3 * (1 - elev_n),
            "grass_dry": 0.8 * fractal((size, size), 1.6, rng) + 0.3 * np.clip(conv_n, -2, 2) + 0.5 * elev_n,
        }
        dec_share = rng.uniform(0.25, 0.40) if variant == "pale" else rng.uniform(0.08, 0.22)
        self.share = {"pine": rng.uniform(0.05, 0.18), "deciduous_dry": dec_share,
                      "bamboo": rng.uniform(0.05, 0.15), "grass_dry": rng.uniform(0.01, 0.05)}
        self.thr = {k: float(np.quantile(v, 1 - self.share[k])) for k, v in self.score.items()}
        self.tone = fractal((size, size), 1.3, rng)  # smooth canopy-density / vigour field
        self.rng_obj = np.random.default_rng([seed, vi, 12])
        r = self.rng_obj
        self.roads = [self._road(r) for _ in range(max(1, r.poisson(1.8 * area ** 0.5)))]
        self.villages = [self._village(r) for _ in range(r.poisson(1.4 * area))]
        self.villages = [v for v in self.villages if v is not None]
        self.swidden = [self._swidden(r) for _ in range(r.poisson(16 * area))]
        self.swidden = [s for s in self.swidden if s is not None]
        self.slides = [s for s in (self._landslide(r) for _ in range(r.poisson(4 * area))) if s is not None]
        self.bars = self._bars(r)
        self.river_w = r.uniform(10, 35) * M2P
        self.flood_k = r.uniform(1.8, 3.5)
        nsite = int(r.integers(0, 11)) if area >= 0.5 else int(r.binomial(10, min(area, 1) * 0.5))
        self.sites = []
        for _ in range(nsite):
            s = self._site(r, elev_n, conv_n)
            if s is not None:
                self.sites.append(s)

    # ---------- roads: contour-following tracks at small grades ----------
    def _road(self, r):
        """Trace a track both ways from an interior point, following contours at a small grade."""
        s = self.size
        p0 = r.uniform(0.15, 0.85, 2) * s
        h0 = r.uniform(-np.pi, np.pi)
        halves = []
        for head in (h0, h0 + np.pi):
            p, grade, step, pts = p0.copy(), r.uniform(-0.07, 0.07), 1.2, []
            for _ in range(int(s * 2)):
                cands = head + np.linspace(-0.3, 0.3, 7)
                z0 = _sample(self.dem, *p)
                cost = []
                for a in cands:
                    q = p + step * np.array([np.sin(a), np.cos(a)])
                    g = (_sample(self.dem, *q) - z0) / (step * 10.0)
                    cost.append(abs(g - grade) + 0.08 * abs(a - head) + r.normal(0, 0.01))
                head = cands[int(np.argmin(cost))]
                p = p + step * np.array([np.sin(head), np.cos(head)])
                pts.append(p.copy())
                if not (-2 <= p[0] <= s + 1 and -2 <= p[1] <= s + 1):
                    break
                if r.random() < 0.004:
                    grade = r.uniform(-0.07, 0.07)
            halves.append(np.array(pts))
        pts = np.concatenate([halves[1][::-1], p0[None], halves[0]])
        return {"pts": pts * F + F / 2, "width": r.uniform(4, 7) * M2P, "mat": "dirt_road"}

    def _road_point(self, r, max_slope_deg=22):
        for _ in range(30):
            rd = self.roads[int(r.integers(len(self.roads)))]["pts"]
            p = rd[int(r.integers(len(rd)))]
            if 0 <= p[0] < self.n and 0 <= p[1] < self.n and np.degrees(_sample(self.slope, *(p / F))) < max_slope_deg:
                return p
        return None

    def _village(self, r):
        c = self._road_point(r)
        if c is None:
            return None
        rad = r.uniform(40, 140) * M2P
        nroof = int(r.integers(10, 60))
        ang = r.uniform(0, np.pi)
        roofs = []
        for _ in range(nroof):
            d, a = rad * np.sqrt(r.random()), r.uniform(0, 2 * np.pi)
            mat = r.choice(["roof_metal_new", "roof_metal_rust", "roof_thatch"], p=[0.4, 0.3, 0.3])
            roofs.append((c[0] + d * np.sin(a), c[1] + d * np.cos(a), r.uniform(5, 10) * M2P, r.uniform(6, 14) * M2P,
                          ang + r.normal(0, 0.2), str(mat)))
        return {"c": c, "rad": rad, "harm": r.normal(0, 0.12, (4, 2)), "roofs": roofs}

    def _swidden(self, r):
        c = None
        for _ in range(20):
            if self.villages and r.random() < 0.5:
                v = self.villages[int(r.integers(len(self.villages)))]["c"]
                q = v + r.normal(0, 100 * M2P, 2)
            else:
                q = self._road_point(r, 40)
                if q is None:
                    q = r.uniform(0, self.n, 2)
                q = q + r.normal(0, 120 * M2P, 2)
            if 0 <= q[0] < self.n and 0 <= q[1] < self.n and np.degrees(_sample(self.slope, *(q / F))) < 38:
                c = q
                break
        if c is None:
            return None
        area_m2 = np.exp(r.uniform(np.log(2500), np.log(30000)))
        stage = str(r.choice(["burnt", "stubble", "grass_dry", "shrub_fallow", "bamboo"], p=[0.2, 0.3, 0.15, 0.25, 0.1]))
        return {"c": c, "rad": np.sqrt(area_m2 / np.pi) * M2P, "elong": r.uniform(1.0, 2.2), "ang": r.uniform(0, np.pi),
                "harm": np.stack([r.normal(0, 0.08, 3), r.uniform(0, 6.3, 3)], 1), "stage": stage,
                "trees": r.uniform(0.0, 0.25), "age": r.uniform(0, 1)}

    def _downslope(self, rr, cc):
        gy, gx = _sample(self.gy, rr, cc), _sample(self.gx, rr, cc)
        return np.arctan2(-gy, -gx)

    def _landslide(self, r):
        for _ in range(30):
            q = r.uniform(0, self.size, 2)
            if np.degrees(_sample(self.slope, *q)) > 28:
                return {"c": q * F, "ang": self._downslope(*q), "len": r.uniform(80, 400) * M2P,
                        "w0": r.uniform(15, 50) * M2P, "w1": r.uniform(20, 70) * M2P, "regrow": r.uniform(0, 0.5)}
        return None

    def _bars(self, r):
        path = self.river * F + F / 2
        bars, i, side = [], int(r.integers(0, 40)), 1
        while i < len(path) - 2:
            j = min(i + 4, len(path) - 1)
            d = path[j] - path[i]
            ang = np.arctan2(d[0], d[1])
            L, W = r.uniform(30, 160) * M2P, r.uniform(10, 45) * M2P
            off = r.uniform(4, 18) * M2P + 0.4 * W
            c = path[i] + side * off * np.array([np.cos(ang), -np.sin(ang)])
            bars.append({"c": c, "L": L, "W": W, "ang": ang, "mat": "sand_bar" if r.random() < 0.5 else "gravel_bar",
                         "veg": r.uniform(0, 0.3)})
            side = -side
            i += int(r.integers(25, 120))
        return bars

    # ---------- mining sites ----------
    def _site(self, r, elev_n, conv_n):
        s = self.size
        w = np.clip(elev_n - 0.35, 0, None) ** 2 * (0.4 + np.clip(conv_n, 0, 2)) * (self.dist_river > 25)
        w = w.ravel()
        if w.sum() <= 0:
            return None
        for _ in range(20):
            k = int(r.choice(w.size, p=w / w.sum()))
            cy, cx = divmod(k, s)
            if all(np.hypot(cy - st["c"][0] / F, cx - st["c"][1] / F) > 45 for st in self.sites):
                break
        else:
            return None
        c = np.array([cy + 0.5, cx + 0.5]) * F
        down = self._downslope(cy, cx)
        area_ha = np.exp(r.uniform(np.log(0.5), np.log(30)))
        off, sq, _ = layout.draw_cluster(r)
        ext = np.ptp(off, 0).max() if len(off) > 1 else 10.0
        pad_area = area_ha * 1e4 * r.uniform(0.45, 0.7)
        rad_m = max(np.sqrt(pad_area / np.pi), 0.55 * ext + 12)
        rad = rad_m * M2P
        # pond cluster sits on the pad, slightly upslope of the centre
        cc = c - np.array([np.sin(down), np.cos(down)]) * rad * r.uniform(0, 0.3)
        nn = layout.nn_spacing(off)
        dom = int(r.choice(7, p=layout_weights()))
        ang = r.uniform(0, np.pi / 2)
        t0 = r.uniform(-0.6, 0.8)
        ponds = []
        for (e, nrt), s_q, d in zip(off, sq, nn):
            side = float(np.clip(r.uniform(0.45, 0.8) * d, 4, 40)) if len(off) > 3 else r.uniform(8, 30)
            mat = dom if r.random() < 0.7 else int(r.choice(7, p=layout_weights()))
            ponds.append({"c": cc + np.array([-nrt, e]) * M2P, "side": side * M2P, "square": bool(s_q),
                          "ang": ang + r.normal(0, 0.08), "mat": int(mat), "built": t0 + r.uniform(0, 0.35),
                          "drain": r.uniform(0.75, 2.5)})
        for _ in range(int(r.integers(0, 3))):  # collection ponds at the downslope edge of the pad
            p = c + np.array([np.sin(down), np.cos(down)]) * rad * r.uniform(0.6, 1.0) + r.normal(0, rad * 0.2, 2)
            ponds.append({"c": p, "side": r.uniform(15, 40) * M2P, "square": r.random() < 0.5, "ang": r.uniform(0, 3),
                          "mat": int(r.choice([3, 4, 6, 5])), "built": t0 + r.uniform(0, 0.3), "drain": r.uniform(0.8, 3)})
        objs = []
        for _ in range(int(r.integers(0, 7))):
            d, a = rad * 0.8 * np.sqrt(r.random()), r.uniform(0, 2 * np.pi)
            mat = str(r.choice(["tarp_blue", "tarp_white", "tarp_black", "roof_metal_new", "roof_metal_rust"],
                               p=[0.35, 0.2, 0.2, 0.15, 0.1]))
            objs.append({"c": c + d * np.array([np.sin(a), np.cos(a)]), "h": r.uniform(3, 12) * M2P,
                         "w": r.uniform(4, 15) * M2P, "ang": r.uniform(0, 3.2), "mat": mat, "built": t0 + r.uniform(0, 0.4)})
        if self.variant == "pale":
            spoil = str(r.choice(["kaolin_spoil", "yellow_spoil"], p=[0.65, 0.35]))
        else:
            spoil = str(r.choice(["laterite_spoil", "yellow_spoil", "kaolin_spoil"], p=[0.55, 0.38, 0.07]))
        fan_len = rad * r.uniform(0.8, 2.2)
        gullies = [r.uniform(-0.35, 0.35) for _ in range(int(r.integers(0, 4)))]
        roads = []
        for _ in range(int(r.integers(1, 3))):
            a = down + r.uniform(-1.5, 1.5)
            L = rad * r.uniform(1.0, 1.6)
            k = np.linspace(0, 1, 12)[:, None]
            pts = c + k * L * np.array([np.sin(a), np.cos(a)]) + np.sin(k * np.pi * r.uniform(1, 3)) * rad * 0.15
            roads.append(pts)
        acc = self._access(r, roads[0][-1])
        return {"c": c, "rad": rad, "elong": r.uniform(1.0, 1.9), "ang": down + np.pi / 2,
                "harm": np.stack([r.normal(0, 0.1, 8) / np.arange(1, 9) ** 0.5, r.uniform(0, 6.3, 8)], 1),
                "down": down, "t0": t0,
                "ponds": ponds, "objs": objs, "spoil": spoil, "fan_len": fan_len, "fan_w": rad * r.uniform(1.0, 1.8),
                "gullies": gullies, "roads": roads, "access": acc, "terrace_m": r.uniform(3, 8),
                "terraced": r.random() < 0.6, "abandon": r.uniform(0.3, 0.9) if r.random() < 0.15 else 9.0}

    def _access(self, r, start):
        if not self.roads:
            return None
        best, bd = None, 1e18
        for rd in self.roads:
            d = np.hypot(*(rd["pts"] - start).T)
            i = int(np.argmin(d))
            if d[i] < bd:
                bd, best = d[i], rd["pts"][i]
        if bd > 600 * M2P:
            return None
        k = np.linspace(0, 1, 20)[:, None]
        perp = np.array([-(best - start)[1], (best - start)[0]]) / (bd + 1e-9)
        return start + k * (best - start) + np.sin(k * np.pi) * perp * r.normal(0, 0.15) * bd


def layout_weights() -> np.ndarray:
    from .spectra import POND_WEIGHTS
    return POND_WEIGHTS / POND_WEIGHTS.sum()
