"""Rare-earth in-situ-leaching mine sites: lobed clearings on spurs, gullies, terraces, pads,
tracks, tarps and clusters of leaching ponds whose layout comes from the real pool points."""
import numpy as np

from . import pools
from .canvas import Item, blob, disk, polyline, rect, wiggle
from .landscape import _rng
from .terrain import DX, descend

WATER_P = {"pond_turquoise": 0.25, "pond_milky": 0.25, "pond_blue": 0.1, "pond_green": 0.15,
           "pond_redbrown": 0.1, "pond_muddy": 0.15}


def _TPL_W():
    w = np.sqrt([len(t) for t in pools.templates()])
    return w / w.sum()


class Site:
    def __init__(self, L, key, birth, at10, others=()):
        self.L, self.key, self.birth, self.others = L, key, birth, list(others)
        rng = _rng(L.seed, 11, *key)
        f, n = L.f, L.n
        # climb toward the spur crest: mines sit on upper slopes and ridges
        up = descend((-L.grad[0], -L.grad[1]), at10[0], at10[1], int(rng.integers(0, 8)), rng, 0.3)
        r10, c10 = up[-1]
        self.r10, self.c10 = r10, c10
        ext = n * DX
        S = float(np.clip(rng.lognormal(0.0, 0.45), 0.4, 2.6))
        S = min(S, 0.2 * ext / 110.0)
        self.material = rng.choice(["spoil_laterite", "spoil_yellow", "spoil_kaolin"], p=[0.5, 0.35, 0.15])
        self.lobes = []
        nl = int(rng.integers(2, 8))
        n_now = int(rng.integers(1, nl + 1))
        pos = np.array([r10, c10], float)
        lb = birth
        along = rng.random() < 0.4            # some sites string out along the ridge
        for k in range(nl):
            th = L.down_angle(*pos)
            a = rng.uniform(40, 110) * S / DX
            b = rng.uniform(25, 70) * S / DX
            if k > 0:
                if k >= n_now:
                    lb += int(rng.integers(0, 2)) + (1 if k == n_now else 0)
                dirn = th + (rng.choice([-1, 1]) * np.pi / 2 if along and rng.random() < 0.6 else 0)
                dirn += rng.normal(0, 0.5)
                step = (a + self.lobes[-1]["a"]) * rng.uniform(0.45, 0.8)
                pos = pos + step * np.array([np.sin(dirn), np.cos(dirn)])
                pos = np.clip(pos, 0, n - 1)
                th = L.down_angle(*pos)
            mat = self.material if rng.random() < 0.75 else rng.choice(
                ["spoil_laterite", "spoil_yellow", "spoil_kaolin", "pad_compact"])
            self.lobes.append(dict(
                r=(pos[0] + 0.5) * f, c=(pos[1] + 0.5) * f, a=a * f, b=b * f, th=th, t0=lb,
                g0=rng.uniform(0.65, 0.95), mat=mat, uid=L.reg.new(rng, mat),
                reveg=(lb + int(rng.integers(2, 4))) if (k > 0 and rng.random() < 0.12) else None,
                ruid=L.reg.new(rng, "reveg"),
                terr=rng.uniform(8, 16) * f / DX if rng.random() < 0.45 else None,
                buid=L.reg.new(rng, "pad_compact"), seed=int(rng.integers(2 ** 31))))
        # erosion gullies / spoil tongues leaving the lower lobes
        self.gullies = []
        for lo in self.lobes[1:] if len(self.lobes) > 1 else self.lobes:
            for _ in range(int(rng.integers(0, 4))):
                r0 = lo["r"] / f + 0.8 * lo["a"] / f * np.sin(lo["th"]) + rng.normal(0, 1.5)
                c0 = lo["c"] / f + 0.8 * lo["a"] / f * np.cos(lo["th"]) + rng.normal(0, 1.5)
                p = descend(L.grad, r0, c0, int(rng.integers(3, 18)), rng, 0.3)
                if len(p) > 1:
                    self.gullies.append(((p + 0.5) * f, rng.uniform(3, 9) / DX * f, lo["t0"] + 1,
                                         L.reg.new(rng, lo["mat"], bias=-0.8)))
            # rills: short dark incisions inside the lobe
            for _ in range(int(rng.integers(2, 7))):
                rr = lo["r"] / f + rng.normal(0, 0.35) * lo["b"] / f
                cc = lo["c"] / f + rng.normal(0, 0.35) * lo["b"] / f
                p = descend(L.grad, rr, cc, int(rng.integers(2, 6)), rng, 0.2)
                if len(p) > 1:
                    self.gullies.append(((p + 0.5) * f, rng.uniform(1.5, 3.5) / DX * f, lo["t0"] + 1,
                                         L.reg.new(rng, lo["mat"], bias=-1.2)))
        # leaching pond clusters on pads at the lower lobes
        tpl = pools.templates()
        self.clusters = []
        for _ in range(int(rng.integers(1, 4))):
            now = [k for k, lo in enumerate(self.lobes) if lo["t0"] == birth]
            k = now[int(rng.integers(len(now) // 2, len(now)))] if rng.random() < 0.7 else \
                int(rng.integers(len(self.lobes) // 2, len(self.lobes)))
            lo = self.lobes[k]
            t = tpl[int(rng.choice(len(tpl), p=_TPL_W()))]
            rot = rng.uniform(0, 2 * np.pi)
            R = np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
            off = t[:, :2] @ R.T                           # metres east / north
            rc = np.column_stack([-off[:, 1], off[:, 0]]) / DX * f
            cr = lo["r"] + rng.normal(0, 0.3) * lo["b"]
            cc = lo["c"] + rng.normal(0, 0.3) * lo["b"]
            sizes = pools.pond_sizes(rng, t[:, 3]) / DX * f
            dom = rng.choice(list(WATER_P), p=list(WATER_P.values()))
            kinds = [dom if rng.random() < 0.7 else rng.choice(list(WATER_P)) for _ in range(len(t))]
            t0 = lo["t0"] + int(rng.random() < 0.3)
            ponds = []
            for j in range(len(t)):
                drain = t0 + int(rng.integers(1, 5)) if rng.random() < 0.3 else 10 ** 6
                fill = drain + int(rng.integers(1, 3)) if rng.random() < 0.5 else 10 ** 6
                rim = rng.choice(["pad_compact", "tarp_black", "tarp_blue", "tarp_white"], p=[.55, .2, .15, .1])
                ponds.append(dict(r=cr + rc[j, 0], c=cc + rc[j, 1], s=sizes[j], circ=t[j, 2] > 0.5,
                                  th=rot + rng.normal(0, 0.1), kind=kinds[j], drain=drain, fill=fill,
                                  rimw=rng.uniform(0.7, 2.0) / DX * f, rim=rim,
                                  uid=L.reg.new(rng, kinds[j]), duid=L.reg.new(rng, "pond_drained"),
                                  fuid=L.reg.new(rng, "pad_compact"), rimuid=L.reg.new(rng, rim),
                                  t0=t0 + (1 if rng.random() < 0.15 else 0)))
            ext_r = np.ptp(rc[:, 0]) / 2 + sizes.max() + 8 / DX * f
            ext_c = np.ptp(rc[:, 1]) / 2 + sizes.max() + 8 / DX * f
            self.clusters.append(dict(r=cr + rc[:, 0].mean(), c=cc + rc[:, 1].mean(), er=ext_r, ec=ext_c,
                                      t0=t0, ponds=ponds, uid=L.reg.new(rng, "pad_compact")))
        # tarps and sheds
        self.tarps = []
        for _ in range(int(rng.integers(0, 5))):
            lo = self.lobes[int(rng.integers(len(self.lobes)))]
            kind = rng.choice(["tarp_blue", "tarp_white", "tarp_black", "roof_metal"], p=[.4, .25, .2, .15])
            self.tarps.append((lo["r"] + rng.normal(0, 0.4) * lo["b"], lo["c"] + rng.normal(0, 0.4) * lo["b"],
                               rng.uniform(4, 14) / DX * f, rng.uniform(3, 9) / DX * f, rng.uniform(0, np.pi),
                               kind, lo["t0"], L.reg.new(rng, kind)))
        self.track_uid = L.reg.new(rng, "road_dirt")
        self.track_w = rng.uniform(3.5, 5.5) / DX * f
        self.track_seed = int(rng.integers(2 ** 31))
        self.lookalikes = self._lookalikes(rng)

    def _lookalikes(self, rng):
        """Background objects tied to the site: access track, landslide beside the clearing,
        adjacent swidden, gravel bar in the river below.  They appear with the site."""
        L, f = self.L, self.L.f
        keep = L.items
        L.items = []
        lo = self.lobes[0]
        me = np.array([lo["r"], lo["c"]])
        targets = [L.road_pts] if len(L.road_pts) else []
        targets += [np.array([[o.lobes[0]["r"], o.lobes[0]["c"]]]) for o in self.others]
        if targets:
            tp = np.vstack(targets)
            d = np.hypot(*(tp - me).T)
            tgt = tp[int(np.argmin(d))]
            if d.min() < 1500 / DX * f:
                line = wiggle(rng, me, tgt, max(2, int(d.min() / (25 * f))), 40 / DX * f)
                L._add(polyline(L.F, line, self.track_w), L.road_uid, "road_dirt", t0=self.birth)
        if rng.random() < 0.5:
            lz = self.lobes[int(rng.integers(len(self.lobes)))]
            side = rng.choice([-1, 1])
            off = (lz["b"] + rng.uniform(3, 15) / DX * f) * side
            at = (lz["r"] + off * np.cos(lz["th"]), lz["c"] - off * np.sin(lz["th"]))
            L.add_landslide(rng, t0=self.birth, fresh_age=0, at=at)
        if rng.random() < 0.35:
            side = rng.choice([-1, 1])
            off = (lo["b"] + rng.uniform(40, 90) / DX * f) * side
            L.add_swidden(rng, age=0, t0=self.birth,
                          at=(lo["r"] + off * np.cos(lo["th"]), lo["c"] - off * np.sin(lo["th"])))
        if rng.random() < 0.8:
            p = descend(L.grad, self.r10, self.c10, 220, rng, 0.1)
            w = L.valley.width / 2 + 40
            for (r, c) in p:
                i, j = int(np.clip(r, 0, L.n - 1)), int(np.clip(c, 0, L.n - 1))
                if abs(L.d10[i, j]) < w:
                    L.add_bar_at(rng, (r + 0.5) * f, (c + 0.5) * f, t0=self.birth)
                    break
        out, L.items = L.items, keep
        return out

    # ------------------------------------------------------------------ per-season items
    def items(self, s):
        if s < self.birth:
            return [], []
        L, F = self.L, self.L.F
        bg, fg = list(self.lookalikes), []

        def add(lst, shape, uid, cls, **kw):
            if shape is not None:
                lst.append(Item(shape[0], shape[1], uid, cls, t0=0, **kw))

        active = []
        for k, lo in enumerate(self.lobes):
            if s < lo["t0"]:
                continue
            g = min(1.0, lo["g0"] + 0.12 * (s - lo["t0"]))
            shp = blob(F, np.random.default_rng(lo["seed"]), lo["r"], lo["c"], lo["a"] * g, lo["b"] * g,
                       lo["th"], 0.35, cell=5.0)
            if shp is None:
                continue
            if lo["reveg"] is not None and s >= lo["reveg"]:
                add(bg, shp, lo["ruid"], "reveg")
                continue
            active.append(lo)
            add(fg, shp, lo["uid"], lo["mat"], label=1)
            if lo["terr"] is not None:
                sl, m = shp
                z = L.dem_f[sl]
                slope = np.tan(np.clip(L.slope[int(np.clip(lo["r"] / L.f, 0, L.n - 1)),
                                               int(np.clip(lo["c"] / L.f, 0, L.n - 1))], 0.1, 1.2))
                step = lo["terr"] * DX / L.f * slope
                bench = m & (np.mod(z / step, 1.0) < 0.62)
                if bench.any():
                    fg.append(Item(sl, bench, lo["buid"], "pad_compact", label=1, flat=True))
        for pts, w, t0, uid in self.gullies:
            if s >= t0:
                add(fg, polyline(F, pts, w), uid, L.reg_cls_name(uid), label=1)
        if len(active) > 1:
            rng = np.random.default_rng(self.track_seed)
            pts = np.array([[lo["r"], lo["c"]] for lo in active])
            for a, b in zip(pts[:-1], pts[1:]):
                add(fg, polyline(F, wiggle(rng, a, b, 2, 0.1 * np.hypot(*(b - a))), self.track_w),
                    self.track_uid, "road_dirt", label=1)
        for cl in self.clusters:
            if s < cl["t0"]:
                continue
            add(fg, blob(F, np.random.default_rng(cl["uid"]), cl["r"], cl["c"], cl["er"], cl["ec"], 0.0, 0.15),
                cl["uid"], "pad_compact", label=1, flat=True)
            for p in cl["ponds"]:
                if s < p["t0"]:
                    continue
                if s >= p["fill"]:
                    add(fg, disk(F, p["r"], p["c"], p["s"] / 2), p["fuid"], "pad_compact", label=1, flat=True)
                    continue
                outer = p["s"] + 2 * p["rimw"]
                if p["circ"]:
                    add(fg, disk(F, p["r"], p["c"], outer / 2), p["rimuid"], p["rim"], label=1, flat=True)
                    inner = disk(F, p["r"], p["c"], p["s"] / 2)
                else:
                    add(fg, rect(F, p["r"], p["c"], outer, outer, p["th"]), p["rimuid"], p["rim"],
                        label=1, flat=True)
                    inner = rect(F, p["r"], p["c"], p["s"], p["s"], p["th"])
                if s >= p["drain"]:
                    add(fg, inner, p["duid"], "pond_drained", label=2, flat=True)
                else:
                    add(fg, inner, p["uid"], p["kind"], label=2, flat=True)
        for (r, c, h, w, th, kind, t0, uid) in self.tarps:
            if s >= t0:
                add(fg, rect(F, r, c, h, w, th), uid, kind, label=1)
        return bg, fg


def place_sites(L, season, existing):
    """Initial sites (season 0) or sites that open in `season` >= 1."""
    rng = _rng(L.seed, 21, season)
    area = (L.n * DX / 1000.0) ** 2
    if season == 0:
        k = max(1, int(rng.poisson(rng.uniform(0.4, 1.2) * area)))
    else:
        k = int(rng.poisson(0.2 * len(existing) + 0.15))
    cond = ((L.slope > np.radians(12)) & (L.slope < np.radians(42)) &
            (np.abs(L.d10) > L.valley.width / 2 + 120) & (L.ridge > -3))
    if not cond.any():
        cond = np.abs(L.d10) > L.valley.width / 2 + 30
    centres = [(st.r10, st.c10) for st in existing]
    min_sep = min(25.0, L.n / 4)
    out = []
    for i in range(k):
        for _ in range(30):
            p = L.pick(rng, cond)[0] + rng.uniform(0, 1, 2)
            if all(np.hypot(p[0] - a, p[1] - b) > min_sep for a, b in centres):
                break
        st = Site(L, (season, i), season, p, existing + out)
        centres.append((st.r10, st.c10))
        out.append(st)
    return out
