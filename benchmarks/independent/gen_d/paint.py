"""Paint the plan at fine resolution (2.5 m): per-pixel 6-band surface reflectance from the material curves,
plus fine masks of the mining footprint and of pond water / lined pools."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from . import spectra as sp
from .landscape import FINE, PIX, Plan, noise

FP = PIX / FINE  # fine pixel (m)


def _b(curve) -> np.ndarray:
    return sp.to_bands(curve).astype(np.float32)


def _up(a: np.ndarray) -> np.ndarray:
    return ndi.zoom(a, FINE, order=1, grid_mode=True, mode="nearest").astype(np.float32)


def _box(cx, cy, r, F):
    """fine-pixel bounding box (slices) around a centre (fine px) with radius r (fine px)."""
    x0, x1 = int(max(0, cx - r)), int(min(F, cx + r + 1))
    y0, y1 = int(max(0, cy - r)), int(min(F, cy + r + 1))
    return (slice(y0, y1), slice(x0, x1)) if x1 > x0 and y1 > y0 else None


def _thick_line(mask, pts, half_w):
    """rasterise a polyline (fine px) into mask with half-width half_w (fine px)."""
    F = mask.shape[0]
    seg = []
    for p, q in zip(pts[:-1], pts[1:]):
        n = int(np.hypot(*(q - p))) + 2
        seg.append(np.linspace(p, q, n))
    xy = np.concatenate(seg).round().astype(int)
    ok = (xy[:, 0] >= 0) & (xy[:, 0] < F) & (xy[:, 1] >= 0) & (xy[:, 1] < F)
    m = np.zeros_like(mask)
    m[xy[ok, 1], xy[ok, 0]] = True
    if half_w >= 1:
        m = ndi.binary_dilation(m, iterations=int(round(half_w)))
    return m


def paint(plan: Plan, season: int, variant: str, seed: int):
    S = plan.size
    F = S * FINE
    vcode = {"base": 0, "pale": 1, "rough": 2}[variant]
    mrng = np.random.default_rng([seed, vcode, 911])  # landscape colours persist through the seasons
    trng = np.random.default_rng([seed, vcode, 913, season])  # per-season texture / phenology
    # --- forest background: evergreen / deciduous-browned mix, density, crown texture
    ever = [_b(sp.green_canopy(mrng)) for _ in range(3)]
    drys = [_b(sp.dry_canopy(mrng)) for _ in range(2)]
    under = _b(0.5 * sp.lateritic_soil(mrng, 0.3) + 0.5 * sp.dry_canopy(mrng))
    grass_c = _b(0.6 * sp.dry_canopy(mrng) + 0.4 * sp.green_canopy(mrng, "deciduous"))
    mixf = _up(np.clip(0.5 + 0.35 * noise(mrng, 128, 2.4, S), 0, 1))
    dry = _up(np.clip(plan.dry + trng.normal(0, 0.05), 0, 1))
    dens = _up(plan.dens)
    grass = _up(plan.grass)
    e = (ever[0][:, None, None] * mixf + ever[1][:, None, None] * (1 - mixf)) * 0.8 + 0.2 * ever[2][:, None, None]
    d = drys[0][:, None, None] * mixf + drys[1][:, None, None] * (1 - mixf)
    R = e * (1 - dry) + d * dry
    R = R * dens + under[:, None, None] * (1 - dens)
    R = R * (1 - grass) + grass_c[:, None, None] * grass
    crown = 1.0 + 0.16 * ndi.gaussian_filter(trng.standard_normal((F, F)).astype(np.float32), 1.2) * 2.5
    R *= crown[None]
    R = np.ascontiguousarray(R.transpose(1, 2, 0))  # (F, F, 6)
    yy, xx = np.mgrid[0:F, 0:F].astype(np.float32)

    def put(sl, m, spec, tex=0.0):
        v = spec[None, :] * (1.0 + tex * trng.standard_normal((int(m.sum()), 1)).astype(np.float32))
        R[sl][m] = v

    # --- swidden fields / fallows
    for cx, cy, r, state, s in plan.swiddens:
        rr = np.random.default_rng(s)
        box = _box(cx * FINE, cy * FINE, r / FP * 1.6, F)
        if box is None:
            continue
        dist = np.hypot(xx[box] - cx * FINE, (yy[box] - cy * FINE) * rr.uniform(0.6, 1.4)) / (r / FP)
        wob = ndi.zoom(rr.standard_normal((8, 8)), (dist.shape[0] / 8, dist.shape[1] / 8), order=1)
        m = dist < 1 + 0.3 * wob[: dist.shape[0], : dist.shape[1]]
        soil = sp.lateritic_soil(rr, rr.uniform(0, 0.3))
        if state == "burnt":
            c = 0.5 * soil * rr.uniform(0.4, 0.7) + 0.5 * sp.dry_canopy(rr) * 0.35
        elif state == "bare":
            c = 0.7 * soil + 0.3 * sp.dry_canopy(rr)
        elif state == "crop":
            c = 0.4 * sp.green_canopy(rr, "deciduous") + 0.35 * sp.dry_canopy(rr) + 0.25 * soil
        else:
            c = 0.55 * sp.green_canopy(rr, "deciduous") + 0.35 * sp.dry_canopy(rr) + 0.1 * soil
        put(box, m, _b(c), 0.08)
    # --- landslide scars (elongated, bare rock / saprolite)
    for cx, cy, ln, w, ang in plan.slides:
        box = _box(cx * FINE, cy * FINE, ln / FP, F)
        if box is None:
            continue
        u = (xx[box] - cx * FINE) * np.cos(ang) + (yy[box] - cy * FINE) * np.sin(ang)
        v = -(xx[box] - cx * FINE) * np.sin(ang) + (yy[box] - cy * FINE) * np.cos(ang)
        taper = np.clip(1 - np.abs(u) / (ln / FP / 2), 0, 1) ** 0.5
        m = (np.abs(u) < ln / FP / 2) & (np.abs(v) < w / FP / 2 * taper)
        put(box, m, _b(sp.rock_scar(mrng)), 0.12)
    # --- river with sand / gravel bars
    if plan.river_d is not None:
        rd = _up(plan.river_d) + 6.0 * _up(noise(trng, 128, 2.0, S))
        bw = plan.river_w * (1.0 + 1.6 * np.clip(_up(noise(mrng, 64, 3.0, S)), 0, None))  # bars widen / pinch
        bars = (rd < bw) & (_up(noise(mrng, 128, 2.5, S)) > 0.3)
        put(slice(None), bars & (rd >= plan.river_w / 2), _b(sp.sand_gravel(mrng, 0.1)), 0.1)
        put(slice(None), rd < plan.river_w / 2, _b(sp.river_water(trng)), 0.03)
    # --- roads (dirt tracks), villages
    road_c = _b(sp.lateritic_soil(mrng) * 1.1)
    for line in plan.roads:
        m = _thick_line(np.zeros((F, F), bool), line * FINE, mrng.uniform(0.5, 1.2))
        put(slice(None), m, road_c, 0.1)
    for cx, cy, n in plan.villages:
        rad = np.sqrt(n) * 14 / FP
        box = _box(cx * FINE, cy * FINE, rad * 1.5, F)
        if box is None:
            continue
        dist = np.hypot(xx[box] - cx * FINE, yy[box] - cy * FINE)
        put(box, dist < rad * 1.2, _b(0.5 * sp.lateritic_soil(mrng) + 0.5 * sp.dry_canopy(mrng)), 0.1)
        for _ in range(n):
            hx, hy = cx * FINE + mrng.normal(0, rad / 2), cy * FINE + mrng.normal(0, rad / 2)
            hw, hh = mrng.uniform(6, 14) / FP / 2, mrng.uniform(5, 10) / FP / 2
            b2 = _box(hx, hy, max(hw, hh), F)
            if b2 is None:
                continue
            m = (np.abs(xx[b2] - hx) <= hw) & (np.abs(yy[b2] - hy) <= hh)
            roof = sp.metal_roof(mrng) if mrng.random() < 0.6 else sp.thatch(mrng)
            put(b2, m, _b(roof), 0.03)
    # --- mining sites
    mine = np.zeros((F, F), bool)
    pondm = np.zeros((F, F), bool)
    fine_dem = None
    for s in plan.sites:
        if s.start > season:
            continue
        rr = np.random.default_rng(s.shape_seed)
        r = s.radius0 * (1 + s.growth * (season - s.start)) / FP
        # access road (label 0 outside the footprint): a winding track leaving the site
        a0, ln = rr.uniform(0, 2 * np.pi), rr.uniform(2.0, 5.0) * r
        t = np.linspace(0, 1, 12)[:, None]
        bend = rr.normal(0, 0.25, 12).cumsum()[:, None] * r * 0.3 * t
        path = (np.array([[s.cx * FINE, s.cy * FINE]]) + t * ln * np.array([[np.cos(a0), np.sin(a0)]])
                + bend * np.array([[-np.sin(a0), np.cos(a0)]]))
        put(slice(None), _thick_line(np.zeros((F, F), bool), path, 1.0), road_c, 0.1)
        box = _box(s.cx * FINE, s.cy * FINE, r * 2.3, F)
        if box is None:
            continue
        u0, v0 = xx[box] - s.cx * FINE, yy[box] - s.cy * FINE
        u = u0 * np.cos(s.angle) + v0 * np.sin(s.angle)
        v = -u0 * np.sin(s.angle) + v0 * np.cos(s.angle)
        dist = np.hypot(u / np.sqrt(s.elong), v * np.sqrt(s.elong)) / r
        wob = ndi.zoom(rr.standard_normal((10, 10)), (dist.shape[0] / 10 + 1e-3, dist.shape[1] / 10 + 1e-3), order=3)
        m = dist < 1 + 0.3 * wob[: dist.shape[0], : dist.shape[1]]
        # ponds (cluster around the centre) also enlarge the footprint with their berms
        pond_specs = []
        pm_all = np.zeros(m.shape, bool)
        for p in s.ponds:
            if p.start > season:
                continue
            px, py = s.cx * FINE + p.dx / FP, s.cy * FINE - p.dy / FP
            half = p.size / FP / 2
            pu, pv = xx[box] - px, yy[box] - py
            if p.square:
                a = s.angle + p.angle
                qu, qv = pu * np.cos(a) + pv * np.sin(a), -pu * np.sin(a) + pv * np.cos(a)
                pm = (np.abs(qu) <= half) & (np.abs(qv) <= half)
            else:
                pm = np.hypot(pu, pv) <= half
            if not pm.any():
                continue
            pm_all |= pm
            m |= ndi.binary_dilation(pm, iterations=2)
            pond_specs.append((p, pm))
        # soils: lateritic vs kaolinitic spoil mixed by a noise field; pads brighter; terraces
        lat = sp.lateritic_soil(rr, rr.uniform(0, 0.25))
        kao = sp.kaolinitic_spoil(rr, rr.uniform(0, 0.2))
        mixn = ndi.zoom(rr.standard_normal((12, 12)), (m.shape[0] / 12 + 1e-3, m.shape[1] / 12 + 1e-3), order=1)
        kf = np.clip(s.pale_frac + 0.35 * mixn[: m.shape[0], : m.shape[1]], 0, 1)[..., None]
        soil = (_b(lat)[None, None] * (1 - kf) + _b(kao)[None, None] * kf)
        if s.terraced:
            if fine_dem is None:
                fine_dem = _up(plan.dem)
            spacing = rr.uniform(3, 8)
            stripe = np.sin(2 * np.pi * fine_dem[box] / spacing)
            soil = soil * (1 + 0.12 * stripe)[..., None]
        remnant = (ndi.zoom(rr.standard_normal((16, 16)), (m.shape[0] / 16 + 1e-3, m.shape[1] / 16 + 1e-3),
                            order=1)[: m.shape[0], : m.shape[1]] > 1.3)[..., None]  # residual shrubs
        soil = np.where(remnant, 0.5 * soil + 0.5 * _b(sp.green_canopy(rr, "deciduous")), soil)
        soil = soil * (1 + 0.08 * trng.standard_normal(soil.shape[:2]).astype(np.float32))[..., None]
        sub = R[box]
        sub[m] = soil[m]
        # berms / pads around ponds: compacted spoil, brighter
        berm = ndi.binary_dilation(pm_all, iterations=2) & ~pm_all
        sub[berm] = soil[berm] * 1.12
        # tracks inside the site
        for _ in range(int(rr.integers(1, 4))):
            a = rr.uniform(0, np.pi)
            off = rr.uniform(-r * 0.5, r * 0.5)
            tr = np.abs(-u0 * np.sin(a) + v0 * np.cos(a) - off) < rr.uniform(1.0, 2.0)
            sub[tr & m & ~pm_all] = _b(lat * 1.15)
        # tarps / sheds
        for _ in range(s.n_tarps):
            tx, ty = rr.normal(0, r * 0.4, 2)
            tw, th = rr.uniform(2, 5, 2)
            tm = (np.abs(u0 - tx) <= tw) & (np.abs(v0 - ty) <= th) & m & ~pm_all
            col = rr.choice(["blue", "blue", "black", "white", "roof"])
            sub[tm] = _b(sp.metal_roof(rr) if col == "roof" else sp.plastic(rr, col))
        # pond contents by season (active water / lined, drained, revegetated)
        for p, pm in pond_specs:
            pr = np.random.default_rng(p.spectrum_seed)
            if season < p.drain:
                spec = sp.pond(pr, p.kind, lat)
                sub[pm] = _b(spec)[None] * (1 + 0.02 * trng.standard_normal((int(pm.sum()), 1)))
                pondm[box] |= pm
            elif p.reveg:
                sub[pm] = _b(0.5 * sp.dry_canopy(pr) + 0.3 * sp.green_canopy(pr, "deciduous") + 0.2 * lat)
                m &= ~pm
            elif p.kind.startswith("lined"):
                sub[pm] = _b(sp.plastic(pr, p.kind.split("_")[1]) * 0.9)  # empty liner: still a lined pool
                pondm[box] |= pm
            else:
                sub[pm] = _b(sp._wet(lat * pr.uniform(0.7, 1.0), 0.6))  # drained mud: footprint, not pond
        R[box] = sub
        mine[box] |= m
    return R, mine, pondm
