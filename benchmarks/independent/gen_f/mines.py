"""Season-dependent objects: rare-earth leaching sites (benches along contours, spoil fans
downslope, tracks, tarps, real-geometry pond clusters) and dynamic look-alikes (landslides,
swidden cut/burn/crop/fallow cycle)."""
import numpy as np
from scipy import ndimage as ndi

from . import materials as M
from . import pools as P
from . import terrain as T
from .canvas import F

VCODE = {"base": 0, "pale": 1, "rough": 2}
HORIZON = 12          # seasons for which births are scheduled


def _ok(L, r, c, smin=14, smax=40, dmin=60):
    n = L["size"]
    r, c = int(r), int(c)
    if not (0 <= r < n and 0 <= c < n):
        return False
    return (smin <= L["slope"][r, c] <= smax and not L["paddy10"][r, c] and not L["water10"][r, c]
            and L["ter"]["d_any"][r, c] > dmin and not L["roads10"][r, c])


def _pick(L, rng, near=None, spread=60.0, tries=60, **kw):
    n = L["size"]
    for _ in range(tries):
        if near is None:
            r, c = rng.uniform(0.08, 0.92, 2) * (n - 1)
        else:
            r, c = np.asarray(near) + rng.normal(0, spread, 2)
        if _ok(L, r, c, **kw):
            return np.array([r, c])
    return None


def _frame(L, rc):
    dem = L["dem"]
    r, c = np.clip(np.round(rc).astype(int), 0, L["size"] - 1)
    r0, r1, c0, c1 = max(0, r - 4), r + 5, max(0, c - 4), c + 5
    gy, gx = np.gradient(dem[r0:r1, c0:c1])
    g = np.array([gy.mean(), gx.mean()])
    v = -g / (np.hypot(*g) + 1e-9)           # downslope, (row, col)
    return v, np.array([-v[1], v[0]])


def plan(L):
    seed, n = L["seed"], L["size"]
    rng = np.random.default_rng([seed, 0x517E, n])
    area = (n * 0.01) ** 2                               # km^2
    scale = min(1.0, n / 180.0)
    clusters = P.clusters()
    sites = []

    def new_site(birth, near):
        rc = _pick(L, rng, near=near, spread=45 if near is not None else 0, dmin=220)
        if rc is None:
            rc = _pick(L, rng, dmin=220)
        if rc is None:
            rc = _pick(L, rng, smin=5, smax=60, tries=200)
        if rc is None:
            rc = np.array([n / 2.0, n / 2.0])
        v, u = _frame(L, rc)
        # a random real pool's cluster (size-weighted); 1-3 clusters per site on different benches
        w = np.array([len(c[0]) for c in clusters], float)
        picks = [clusters[i] for i in rng.choice(len(clusters), 1 + min(2, int(rng.poisson(0.6))), p=w / w.sum())]
        shift = 0.0
        offs = []
        for o, _, _ in picks:
            o = o - o.mean(0)
            offs.append(o + [shift, 0])
            shift += np.ptp(o[:, 0]) + rng.uniform(20, 45)
        off = np.concatenate(offs)
        off = off - [shift / 2 - rng.uniform(10, 20), 0]
        sz = np.concatenate([c[1] for c in picks])
        sq = np.concatenate([c[2] for c in picks])
        # rotate the real cluster so its long axis lies along the contour (ponds sit on benches)
        ev = np.linalg.eigh(np.cov(off.T) + 1e-6 * np.eye(2))[1][:, -1] if len(off) > 2 else np.array([1.0, 0])
        ang = np.arctan2(ev[1], ev[0])
        rot = np.array([[np.cos(-ang), -np.sin(-ang)], [np.sin(-ang), np.cos(-ang)]])
        loc = off @ rot.T                                # [along, across] metres
        ext = np.ptp(loc, 0) if len(loc) > 1 else np.zeros(2)
        A = max(rng.uniform(60, 200) * scale, 0.6 * ext[0] + 25)
        B = max(rng.uniform(50, 130) * scale, 0.9 * ext[1] + 30)
        s = {"rc": rc, "u": u, "v": v, "A": A, "B": B, "birth": birth,
             "age0": rng.uniform(0.7, 3.2) if birth == 0 else 0.4,
             "tau": rng.uniform(1.2, 2.2), "fan": rng.uniform(30, 140) * scale,
             "bench": rng.uniform(3, 6), "rf": rng.uniform(.3, .45),
             "abandon": int(rng.integers(1, 4)) if rng.random() < 0.12 else 99,
             "ploc": loc, "psz": sz * rng.uniform(.8, 1.2), "psq": sq,
             "pdown": rng.uniform(0.15, 0.45), "phase": rng.uniform(0, 2 * np.pi, 3),
             "id": len(sites), "zc": None}
        s["zc"] = float(L["dem"][int(np.clip(rc[0], 0, n - 1)), int(np.clip(rc[1], 0, n - 1))])
        sites.append(s)

    ncl = int(rng.integers(1, 4))
    centres = [_pick(L, rng) for _ in range(ncl)]
    centres = [c for c in centres if c is not None] or [np.array([n / 2.0, n / 2.0])]
    n0 = max(1, int(rng.poisson(0.35 * area + 1)))
    for k in range(n0):
        new_site(0, centres[k % len(centres)] if rng.random() < 0.8 else None)
    for t in range(1, HORIZON):
        for _ in range(int(rng.poisson(0.28 * n0 + 0.15))):
            new_site(t, sites[int(rng.integers(len(sites)))]["rc"] if rng.random() < 0.7 else None)
    # ---- look-alike schedules
    slides, swid = [], []
    for _ in range(int(rng.poisson(1.2 * area + 1))):
        rc = _pick(L, rng, smin=30, smax=80)
        if rc is not None:
            slides.append({"rc": rc, "birth": int(rng.integers(-3, HORIZON)), "len": rng.uniform(80, 300),
                           "w0": rng.uniform(12, 25), "w1": rng.uniform(25, 60), "fam": rng.choice(["red", "yellow", "topsoil"])})
    vill = L["villages"] or [None]
    for _ in range(int(rng.poisson(1.5 * area + 1))):
        near = vill[int(rng.integers(len(vill)))]
        rc = _pick(L, rng, near=near, spread=80, smin=6, smax=38) if near is not None else _pick(L, rng, smin=6, smax=38)
        if rc is not None:
            swid.append({"rc": rc, "birth": int(rng.integers(-3, HORIZON)), "A": rng.uniform(40, 130),
                         "B": rng.uniform(25, 80), "burn": rng.random() < 0.6, "ph": rng.uniform(0, 6.28, 2)})
    return {"sites": sites, "slides": slides, "swid": swid}


def _local(s, R, C):
    dr, dc = R - s["rc"][0], C - s["rc"][1]
    return (dr * s["u"][0] + dc * s["u"][1]) * 10.0, (dr * s["v"][0] + dc * s["v"][1]) * 10.0


def site_scale(s, t):
    if t < s["birth"]:
        return 0.0
    age = s["age0"] + min(t, s["abandon"]) - s["birth"]
    return max(0.3, 1 - np.exp(-age / s["tau"]))


def _blob(al, dn, A, B, ph):
    th = np.arctan2(dn / B, al / A)
    lim = 1 + 0.12 * np.sin(2 * th + ph[0]) + 0.07 * np.sin(3 * th + ph[1])
    return (al / A) ** 2 + (dn / B) ** 2 < lim ** 2


def paint_site(cv, L, s, t, variant, sun, seed):
    sc = site_scale(s, t)
    if sc <= 0:
        return
    A, B = s["A"] * sc, s["B"] * sc
    half = (max(s["A"], s["B"]) + s["fan"] + 40) / 10.0
    win = cv.window(s["rc"][0], s["rc"][1], half)
    if win is None:
        return
    r0, c0, R, C = win
    al, dn = _local(s, R, C)
    mrng = np.random.default_rng([seed, 31, s["id"], VCODE[variant]])
    fam = mrng.choice(["red", "yellow", "pale"], p=[.05, .3, .65] if variant == "pale" else [.45, .35, .2])
    srng = np.random.default_rng([seed, 32, s["id"], VCODE[variant], t])
    nrng = np.random.default_rng([seed, 36, s["id"]])
    rough = T.fractal(nrng, R.shape, 3.0, scale=6)
    clear = _blob(al, dn, A * (1 + 0.22 * rough), B * (1 + 0.22 * rough), s["phase"])
    # ponds: real cluster, visible once inside the (grown) clearing
    ponds = []
    for k, (p, sz, sq) in enumerate(zip(s["ploc"], s["psz"], s["psq"])):
        pa, pd = p[0], p[1] + s["pdown"] * s["B"]
        if (pa / A) ** 2 + (pd / B) ** 2 > 0.85:
            continue
        ponds.append((k, pa, pd, sz, sq))
    near_p = np.zeros_like(clear)
    for k, pa, pd, sz, sq in ponds:
        near_p |= (np.abs(al - pa) < sz / 2 + 6) & (np.abs(dn - pd) < sz / 2 + 6)
    clear |= near_p
    fan_d = dn - B
    fan = (fan_d > -5) & (fan_d < s["fan"] * sc) & \
        (np.abs(al) < A * (0.3 + 0.45 * np.clip(fan_d, 0, None) / (s["fan"] * sc + 1)) * (1 + 0.25 * np.sin(al / 17 + s["phase"][2])))
    fan &= ~clear & (T.fractal(nrng, R.shape, 2.6, scale=3) > -0.9)
    zf = ndi.map_coordinates(L["dem"], [R, C], order=1, mode="nearest")
    q = (zf - s["zc"]) / s["bench"]
    riser = (q - np.floor(q)) < s["rf"]
    inj = dn < -0.35 * B
    wet = 0.0 if variant == "pale" else srng.uniform(0, .05)
    pad_id = cv.add(M.soil(mrng, fam, "pad", wet), 1, 0.07)
    ris_id = cv.add(M.soil(mrng, fam, "riser", wet), 1, 0.07)
    spl_id = cv.add(M.soil(mrng, fam, "spoil", wet), 1, 0.12)
    hose = mrng.uniform(.06, .16)
    inj_id = cv.add((1 - hose) * M.soil(mrng, fam, "pad", wet) + hose * M.plastic("black", mrng), 1, 0.08)
    trk_id = cv.add(M.soil(mrng, fam, "track", 0), 1, 0.05)
    cv.paint(fan, spl_id, r0, c0)
    cv.paint(clear & riser, ris_id, r0, c0)
    cv.paint(clear & ~riser & ~inj, pad_id, r0, c0)
    fam2 = ["red", "yellow", "pale", "topsoil"][s["id"] % 4]     # a second soil horizon exposed in patches
    cv.paint(clear & ~riser & ~inj & (rough > 0.6), cv.add(M.soil(mrng, fam2, "pad", wet), 1, 0.08), r0, c0)
    cv.paint(clear & ~riser & inj, inj_id, r0, c0)
    # illumination overrides: pads are level, risers are ~60 deg cut faces facing downslope
    sx, sy, sz_ = T.sun_vec(*sun)
    beta = np.radians(50 + 20 * ((s["id"] * 0.618) % 1))
    ve, vn = s["v"][1], -s["v"][0]
    cosr = max(0.0, np.sin(beta) * (ve * sx + vn * sy) + np.cos(beta) * sz_) / sz_
    cv.over.append((r0, c0, clear, np.where(riser, cosr, 1.0).astype(np.float32)))
    # switchback tracks across the site (label 1 inside the footprint)
    zz = np.linspace(-0.8, 0.8, 3 + s["id"] % 3)
    pts = [((zz[i] if i % 2 else -zz[i]) * 0.8 * A, zz[i] * B) for i in range(len(zz))]
    pr = [s["rc"] + (a * s["u"] + d * s["v"]) / 10.0 for a, d in pts]
    if len(pr) > 1:
        tr = T.polyline_mask(R.shape, np.array(pr) * F + (F - 1) / 2 - [r0, c0], 1.3)
        cv.paint(tr & (clear | fan), trk_id, r0, c0)
    # ponds (label 2 unless drained) and tarps / sheds
    abandoned = t > s["abandon"]
    lrng = np.random.default_rng([seed, 33, s["id"]])
    base_kind = lrng.choice(M.POND_TYPES[:6], size=len(s["ploc"]), p=[.3, .15, .15, .12, .13, .15])
    liner = lrng.choice(["blue", "black", "white", "mud"], size=len(s["ploc"]), p=[.35, .25, .1, .3])
    grng = np.random.default_rng([seed, 37, s["id"]])    # geometry: same for all variants
    if ponds and not abandoned:
        ca = np.mean([p[1] for p in ponds])
        cd = np.mean([p[2] for p in ponds])
        for j in range(int(grng.integers(1, 6))):
            ta, td = ca + grng.normal(0, 25), cd + grng.normal(0, 15)
            w_, h_ = grng.uniform(4, 12, 2)
            m = (np.abs(al - ta) < w_ / 2) & (np.abs(dn - td) < h_ / 2) & clear
            kind = grng.choice(["blue", "white", "black"], p=[.5, .2, .3])
            cv.paint(m, cv.add(M.plastic(kind, mrng), 1, 0.03), r0, c0)
    for k, pa, pd, sz, sq in ponds:
        m = (np.abs(al - pa) < sz / 2) & (np.abs(dn - pd) < sz / 2) if sq else np.hypot(al - pa, dn - pd) < sz / 2
        prng = np.random.default_rng([seed, 34, s["id"], k, t])
        st = prng.random()
        if abandoned or st < 0.1:
            oid = cv.add(0.6 * M.soil(prng, fam, "spoil", 0.3) + 0.4 * M.plastic(liner[k] if liner[k] != "mud" else "black", prng), 1, 0.05)
        else:
            kind = "lowwater" if st < 0.2 else (base_kind[k] if prng.random() > 0.2 else prng.choice(M.POND_TYPES[:6]))
            oid = cv.add(M.pond_water(prng, kind, liner[k], sun[0]), 2, 0.02)
        cv.paint(m, oid, r0, c0)
    if abandoned:   # revegetation creeps in: regrowth over spoil, label 0
        cover = min(1.0, 0.4 * (t - s["abandon"]))
        tex = T.fractal(np.random.default_rng([seed, 35, s["id"]]), R.shape, 3.0)
        reg = (clear | fan) & (tex < np.quantile(tex, cover) if cover < 1 else True)
        cv.paint(reg, cv.add(M.regrowth(srng, M.soil_spec(srng, fam, "spoil"), srng.uniform(.3, .8)), 0, 0.1), r0, c0)


def paint_slide(cv, L, sl, t, seed):
    age = t - sl["birth"]
    if age < 0 or age > 5:
        return
    if "dem_s" not in L:
        L["dem_s"] = ndi.gaussian_filter(L["dem"], 1.5)
    dem = L["dem_s"]
    gy, gx = np.gradient(dem)
    p = sl["rc"].astype(float).copy()
    pts = [p.copy()]
    n = L["size"]
    for _ in range(int(sl["len"] / 10)):
        r, c = int(np.clip(p[0], 0, n - 1)), int(np.clip(p[1], 0, n - 1))
        g = np.array([gy[r, c], gx[r, c]])
        p = p - g / (np.hypot(*g) + 1e-9)
        if not (0 <= p[0] < n and 0 <= p[1] < n) or L["water10"][int(p[0]), int(p[1])]:
            break
        pts.append(p.copy())
    if len(pts) < 3:
        return
    rng = np.random.default_rng([seed, 41, int(sl["rc"][0]), int(sl["rc"][1])])
    pts = np.array(pts) * F + (F - 1) / 2
    m = np.zeros((cv.n, cv.n), bool)
    k = len(pts)
    for i in range(0, k - 1, 2):
        rad = (sl["w0"] + (sl["w1"] - sl["w0"]) * i / k) / 2 / (10.0 / F)
        m |= T.polyline_mask(m.shape, pts[i:i + 3], rad)
    spec = M.soil(rng, sl["fam"], "spoil")
    if age >= 2:
        spec = M.regrowth(rng, M.soil_spec(rng, sl["fam"]), min(1, 0.25 * (age - 1)))
    cv.paint(m, cv.add(spec, 0, 0.14))


def paint_swidden(cv, L, sw, t, seed):
    ph = t - sw["birth"]
    if ph < 0 or ph > 4:
        return
    win = cv.window(sw["rc"][0], sw["rc"][1], (sw["A"] + 20) / 10)
    if win is None:
        return
    r0, c0, R, C = win
    v, u = _frame(L, sw["rc"])
    s = {"rc": sw["rc"], "u": u, "v": v}
    al, dn = _local(s, R, C)
    m = _blob(al, dn, sw["A"], sw["B"], sw["ph"])
    rng = np.random.default_rng([seed, 51, int(sw["rc"][0]), int(sw["rc"][1]), t])
    if ph == 0:
        spec = M.burn(rng, rng.uniform(.5, 1)) if sw["burn"] else \
            0.7 * M.S.to_bands(M.litter_spec(rng)) + 0.3 * M.soil(rng, "topsoil")
    elif ph == 1:       # harvested upland rice: dry straw stubble over soil
        spec = 0.55 * M.S.to_bands(M.litter_spec(rng)) + 0.45 * M.soil(rng, rng.choice(["topsoil", "yellow", "red"]))
    else:
        spec = M.regrowth(rng, M.soil_spec(rng, "topsoil"), 0.3 * (ph - 1))
    cv.paint(m, cv.add(spec, 0, 0.1), r0, c0)
