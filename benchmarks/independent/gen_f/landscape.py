"""Static landscape of one seed: terrain, vegetation fields, river, sand bars, paddies, villages,
roads, fish ponds (painted once on the fine canvas), and the look-alike / mine schedules."""
import numpy as np
from scipy import ndimage as ndi

from . import materials as M
from . import terrain as T
from .canvas import F, Canvas


def _fine_pts(pts):
    return np.asarray(pts) * F + (F - 1) / 2.0


def build(seed, size):
    rng = np.random.default_rng([seed, 0xF17E, size])
    ter = T.build(rng, size)
    dem = ter["dem"].astype(np.float64)
    gy, gx = np.gradient(dem, T.PIX)
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    n = size
    L = {"seed": seed, "size": n, "ter": ter, "dem": dem, "slope": slope}
    zr = (dem - dem.min()) / (np.ptp(dem) + 1e-9)
    valley = ter["d_main"] < ter["floor"] + 30
    L["valley"] = valley
    # ---- vegetation type / structure fields (10 m)
    n1, n2, n3 = (T.fractal(rng, (n, n), 3.0) for _ in range(3))
    aspect_s = np.clip(-gy / (np.hypot(gx, gy) + 1e-6), -1, 1)      # +1 south-facing (drier)
    vt = np.zeros((n, n), np.int8)                                  # 0 evergreen
    vt[(n1 + 0.6 * aspect_s) > 0.5] = 1                             # semi-deciduous, drier aspects
    vt[(n2 > 1.1) & (zr < 0.6)] = 2                                 # bamboo brakes
    vt[(zr > 0.82) & (slope < 22) & (n3 > -0.3)] = 3                # grassy ridges
    vt[(n3 > 1.2) & ~valley] = 4                                    # old fallow shrub
    vt[valley] = 4
    L["vtype"] = vt
    lai_mean = np.array([5.2, 4.2, 4.5, 1.8, 2.6])[vt]
    L["lai"] = np.clip(lai_mean * (1 + 0.12 * T.fractal(rng, (n, n), 1.6)) + 0.25 * rng.normal(size=(n, n)), 0.3, 7)
    L["brown"] = np.clip(np.array([.05, .25, .12, .55, .2])[vt] + 0.1 * T.fractal(rng, (n, n), 2.5), 0, 1)
    L["tex10"] = T.fractal(rng, (n, n), 2.0).astype(np.float32)
    cv = Canvas(n)
    # ---- river channel, shallow margins, tributaries
    main = ter["paths"][0]
    w = ter["width_main"]
    core = T.polyline_mask((cv.n, cv.n), _fine_pts(main), w * F * 0.55)
    chan = T.polyline_mask((cv.n, cv.n), _fine_pts(main), w * F)
    trib = np.zeros_like(chan)
    for p in ter["paths"][1:]:
        trib |= T.polyline_mask((cv.n, cv.n), _fine_pts(p), rng.uniform(0.8, 1.6))
    cv.paint(trib & ~chan, cv.add(M.river_water(rng, 0.4, 45), 0, 0.05))
    # ---- sand / gravel bars on alternating banks (wide in the dry season)
    bars = np.zeros_like(chan)
    m = len(main)
    for k in range(int(rng.integers(2, 6))):
        j = int(rng.integers(2, m - 3))
        d = main[min(j + 1, m - 1)] - main[j - 1]
        d = d / (np.hypot(*d) + 1e-9)
        side = rng.choice([-1, 1])
        nrm = np.array([-d[1], d[0]]) * side
        cen = main[j] + nrm * (w + rng.uniform(1, 5))
        ln, wd = rng.uniform(8, 40), rng.uniform(2.5, 12)           # half-length / half-width (px)
        win = cv.window(cen[0], cen[1], ln + 2)
        if win is None:
            continue
        r0, c0, R, C = win
        a = (R - cen[0]) * d[0] + (C - cen[1]) * d[1]
        b = (R - cen[0]) * nrm[0] + (C - cen[1]) * nrm[1]
        ell = (a / ln) ** 2 + (b / wd) ** 2 < 1 + 0.15 * np.sin(a / 3 + k)
        bars[r0:r0 + ell.shape[0], c0:c0 + ell.shape[1]] |= ell
    bars &= ~core
    if bars.any():
        dist_w = ndi.distance_transform_edt(~core)
        wet = bars & (dist_w < 3 * F)
        gravel = bars & (T.fractal(rng, bars.shape, 3.0, scale=8) > 0.6)
        cv.paint(bars, cv.add(M.soil(rng, "sand"), 0, 0.08))
        cv.paint(gravel, cv.add(M.soil(rng, "sand") * 0.75, 0, 0.12))
        cv.paint(wet, cv.add(M.soil(rng, "sand", wet=0.45), 0, 0.06))
        # a few alluvial gold-panning pits on bars (water, label 0)
        ys, xs = np.nonzero(bars & ~wet)
        for _ in range(int(rng.integers(0, 4)) if len(ys) else 0):
            i = int(rng.integers(len(ys)))
            rr = rng.uniform(1.5, 4) * F / 2
            pit = T.polyline_mask(bars.shape, [[ys[i], xs[i]], [ys[i] + 1, xs[i] + 2]], rr) & bars
            cv.paint(pit, cv.add(M.pond_water(rng, "muddy", "mud", 45), 0, 0.03))
    cv.paint(chan & ~core, cv.add(M.river_water(rng, rng.uniform(.2, .5), 45), 0, 0.04))
    cv.paint(core, cv.add(M.river_water(rng, rng.uniform(1.5, 3), 45), 0, 0.03))
    L["water10"] = (chan | trib).reshape(n, F, n, F).mean((1, 3)) > 0.2
    # ---- terraced paddies on the valley floor / gentle toe slopes (dry season)
    pad_zone = (valley | ((ter["d_main"] < ter["floor"] + 250) & (slope < 14))) & ~L["water10"]
    pad_zone = ndi.binary_opening(pad_zone, iterations=2) & (T.fractal(rng, (n, n), 3.0) > -0.4)
    L["paddy10"] = pad_zone
    if pad_zone.any():
        zone_f = np.repeat(np.repeat(pad_zone, F, 0), F, 1) & (cv.obj == 0)
        fy, fx = np.nonzero(zone_f)
        zf = ndi.map_coordinates(dem, [(fy + .5) / F - .5, (fx + .5) / F - .5], order=1, mode="nearest")
        step = rng.uniform(0.8, 2.0)
        ang = rng.uniform(0, np.pi)
        cut = ((fx * np.cos(ang) + fy * np.sin(ang)) // (rng.uniform(8, 16) * F)).astype(np.int64)
        pid = (np.floor(zf / step).astype(np.int64) * 7919 + cut) % 9973
        states = [0.5 * M.soil(rng, "topsoil") + 0.5 * M.S.to_bands(M.litter_spec(rng)) for _ in range(5)]
        states += [M.soil(rng, "yellow", wet=0.1) for _ in range(2)]
        states += [M.pond_water(rng, "muddy", "mud", 45), M.regrowth(rng, M.soil_spec(rng, "topsoil"), 0.8)]
        ids = np.array([cv.add(s_, 0, 0.05) for s_ in states])
        pidmap = np.full(zone_f.shape, -1, np.int64)
        pidmap[fy, fx] = pid
        bund = (ndi.maximum_filter(pidmap, 3) != ndi.minimum_filter(pidmap, 3)) & zone_f
        cv.obj[fy, fx] = ids[pid % len(ids)]
        cv.paint(bund, cv.add(M.regrowth(rng, M.soil_spec(rng, "topsoil"), 0.5), 0, 0.05))
    # ---- roads: a valley road that follows a contour above the river, plus spurs
    roads = np.zeros((cv.n, cv.n), bool)
    L["road_pts"] = []
    j = int(rng.integers(0, len(main)))
    start = np.clip(main[j] + rng.normal(0, 12, 2), 0, n - 1)
    for sgn in (1, -1):
        pts = T.trace_contour(dem, start, 3 * n, rng, drift=0.0, sgn=sgn)
        if len(pts) > 2:
            roads |= T.polyline_mask(roads.shape, _fine_pts(pts), rng.uniform(1.2, 2.2))
            L["road_pts"].append(pts)
    road_spec = cv.add(M.soil(rng, rng.choice(["red", "yellow"]), "track"), 0, 0.08)
    # ---- villages on gentle ground near the road / river, with metal and thatch roofs
    cand = np.argwhere((slope < 16) & ~L["water10"] & (ter["d_main"] < 900))
    L["villages"] = []
    nv = int(rng.integers(1, 3 + n // 256)) if len(cand) else 0
    for _ in range(nv):
        vc = cand[int(rng.integers(len(cand)))]
        L["villages"].append(vc)
        rad = rng.uniform(6, 15)
        win = cv.window(vc[0], vc[1], rad + 2)
        if win is None:
            continue
        r0, c0, R, C = win
        comp = np.hypot(R - vc[0], C - vc[1]) < rad * (1 + 0.2 * np.sin(np.arctan2(R - vc[0], C - vc[1]) * 3))
        ground = cv.add(M.soil(rng, rng.choice(["yellow", "topsoil", "red"]), "track"), 0, 0.1)
        cv.paint(comp & (T.fractal(rng, comp.shape, 2.5) > -0.2), ground, r0, c0)
        for _b in range(int(rng.integers(8, 40))):
            h, wd = rng.uniform(5, 14) / 2.5, rng.uniform(4, 10) / 2.5
            py, px = rng.uniform(0, comp.shape[0] - h), rng.uniform(0, comp.shape[1] - wd)
            if not comp[int(py + h / 2), int(px + wd / 2)]:
                continue
            rs, cs = r0 + int(py), c0 + int(px)
            cv.obj[rs:rs + int(h) + 1, cs:cs + int(wd) + 1] = cv.add(M.roof(rng), 0, 0.03)
        roads |= T.polyline_mask(roads.shape, _fine_pts(T.wiggly_path(rng, vc, start, n=30, amp=0.08)), 1.5)
        # fish ponds / natural ponds near the village on flat ground (label 0 water)
        for _p in range(int(rng.integers(0, 5))):
            off = rng.normal(0, rad * 1.5, 2)
            pr, pc = vc + off
            if not (0 <= pr < n and 0 <= pc < n) or slope[int(pr), int(pc)] > 10 or L["water10"][int(pr), int(pc)]:
                continue
            s = rng.uniform(12, 40) / 10 / 2
            win = cv.window(pr, pc, s + 1)
            if win is None:
                continue
            r0, c0, R, C = win
            m_ = (np.abs(R - pr) < s) & (np.abs(C - pc) < s * rng.uniform(.6, 1.6))
            cv.paint(m_, cv.add(M.pond_water(rng, rng.choice(["green", "muddy", "turquoise"]), "mud", 45), 0, .03))
    cv.paint(roads & (cv.obj == 0), road_spec)
    L["roads10"] = roads.reshape(n, F, n, F).any((1, 3))
    L["canvas"] = cv
    return L
