"""Landscape + mining sites at fine resolution (2.5 m), then Sentinel-2 sampling."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from . import layout, sensor, shapes, spectra as S, terrain

F = 4            # fine pixels per 10 m pixel (2.5 m)
PXF = 10.0 / F   # fine pixel size, m
DIFFUSE = np.array([0.32, 0.27, 0.22, 0.13, 0.09, 0.08], np.float32)  # sky-light share per band (clear sky)


def _rep(a: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(a, F, axis=-2), F, axis=-1)


def _background(rng, variant, N, river_m):
    """10 m background spectra (6, N, N): forest density mix, browned canopy, dry grassland."""
    dA, dB = S.real_sorted_pair(rng, "forest_dense")
    oA, oB = S.real_sorted_pair(rng, "forest_open")
    fal = S.real(rng, "fallow", 3)
    grass = S.mix(S.real(rng, "grass_field")[0], fal[0], rng.uniform(0.4, 0.85))  # dry-season grass
    t = np.clip(0.5 + 0.35 * terrain.smooth_noise(rng, N, 12), 0, 1)[None]
    dens = np.clip(0.7 + 0.35 * terrain.smooth_noise(rng, N, 40), 0, 1)[None]
    dense = dA[:, None, None] + t * (dB - dA)[:, None, None]
    opn = oA[:, None, None] + t * (oB - oA)[:, None, None]
    x = (dense * dens + opn * (1 - dens)) * S.forest_texture(rng, N)[None]   # real canopy texture
    brown_amt = rng.uniform(0.25, 0.5) if variant == "pale" else rng.uniform(0.08, 0.3)
    bw = np.clip(terrain.smooth_noise(rng, N, 25) * 0.6 + 0.2, 0, 1)[None] * brown_amt
    x = x * (1 - bw) + fal[1][:, None, None] * bw
    gw = np.clip(terrain.smooth_noise(rng, N, 50) - rng.uniform(0.6, 1.4), 0, 1)[None]
    x = x * (1 - gw) + grass[:, None, None] * gw
    return x.astype(np.float32)


def _world(seed, vid, variant, N):
    rng = np.random.default_rng([seed, vid, N, 1])
    FN = N * F
    w = {"rng": rng}
    river = None
    if rng.random() < 0.75:
        side = rng.integers(4)
        p = rng.uniform(0.1, 0.9) * FN
        start = [(0, p), (p, FN - 1), (FN - 1, p), (p, 0)][side]
        head = [np.pi / 2, np.pi, -np.pi / 2, 0][side] + rng.uniform(-0.5, 0.5)
        rr, cc = shapes.curve(rng, start, head, int(FN * 1.6), wiggle=0.03)
        river = (rr, cc, np.exp(rng.uniform(np.log(15), np.log(90))) / PXF)
    # river distance on the 10 m grid (m) for the valley
    dist_m = None
    if river is not None:
        m10 = np.zeros((N, N), bool)
        r10, c10 = (river[0] / F).astype(int), (river[1] / F).astype(int)
        ok = (r10 >= 0) & (r10 < N) & (c10 >= 0) & (c10 < N)
        m10[r10[ok], c10[ok]] = True
        dist_m = ndi.distance_transform_edt(~m10) * 10.0 if m10.any() else None
    med_slope = rng.uniform(27, 36) if variant == "rough" else rng.uniform(18, 28)   # steep Kachin hills
    w["dem"] = terrain.dem(rng, N, 10.0, med_slope, dist_m)
    w["river"] = river
    w["bg"] = _background(rng, variant, N, dist_m)
    return w


def _landscape(w, variant, N, cube):
    """Paint non-mining look-alikes (label 0) onto the fine cube. Uses the world rng only."""
    rng = w["rng"]
    FN = N * F
    area = (N / 512) ** 2
    gy, gx = np.gradient(w["dem"])
    # river + sand/gravel bars
    if w["river"] is not None:
        rr, cc, wid = w["river"]
        wat = S.real(rng, "water")[0]
        sand = S.real(rng, "sand", 2)
        bar_r, bar_c = shapes.stamp_line((FN, FN), rr, cc, wid * rng.uniform(1.8, 3.0))
        bars = np.zeros((FN, FN), bool)
        bars[bar_r, bar_c] = True
        bn = terrain.upsample(terrain.smooth_noise(rng, N, 5), FN) > rng.uniform(-0.2, 0.5)
        bars &= bn
        sp = S.mix(sand[0], sand[1], 0.5) * rng.uniform(0.8, 1.05)  # sand-gravel mix
        cube[:, bars] = sp[:, None]
        r2, c2 = shapes.stamp_line((FN, FN), rr, cc, wid)
        cube[:, r2, c2] = wat[:, None]
    # swidden fields / fallows (burnt, bare, fallow, regrowth)
    for _ in range(rng.poisson(22 * area)):
        a = np.sqrt(np.exp(rng.uniform(np.log(0.3), np.log(8.0))) * 1e4 / np.pi) / PXF
        e = rng.uniform(1, 2.2)
        m, ro, co = shapes.blob(a * e ** 0.5, a / e ** 0.5, rng.uniform(0, np.pi), shapes.blob_params(rng, 0.3))
        kind = rng.choice(4, p=[0.2, 0.3, 0.35, 0.15])
        spec = [S.hand(rng, "burnt"), S.real(rng, "bare_field")[0], S.real(rng, "fallow")[0],
                S.real(rng, "forest_open")[0]][kind]
        shapes.paint(cube, int(rng.integers(FN)) + ro, int(rng.integers(FN)) + co, m, spec)
    # dirt roads (hillside tracks)
    roads = []
    for _ in range(rng.poisson(2.5 * max(area, 0.3))):
        rr, cc = shapes.curve(rng, rng.uniform(0, FN, 2), rng.uniform(0, 2 * np.pi), int(FN * rng.uniform(0.4, 1.2)), wiggle=0.035)
        r2, c2 = shapes.stamp_line((FN, FN), rr, cc, rng.uniform(3, 7) / PXF)
        cube[:, r2, c2] = (S.real(rng, "bare_field")[0] * rng.uniform(1.0, 1.3))[:, None]
        roads.append((rr, cc))
    # villages
    for _ in range(rng.poisson(1.5 * area)):
        cr, cc0 = rng.uniform(0, FN, 2)
        comp = S.real(rng, "bare_field")[0]
        m, ro, co = shapes.blob(rng.uniform(40, 100) / PXF, rng.uniform(30, 70) / PXF, rng.uniform(0, np.pi),
                                shapes.blob_params(rng, 0.2))
        shapes.paint(cube, int(cr) + ro, int(cc0) + co, m, S.mix(comp, S.real(rng, "grass_field")[0], 0.4))
        ang = rng.uniform(0, np.pi)
        for _ in range(rng.integers(5, 40)):
            k = rng.choice(4, p=[0.35, 0.25, 0.25, 0.15])
            spec = [S.hand(rng, "metal_roof"), S.hand(rng, "rusty_roof"), S.real(rng, "fallow")[0] * 1.15,
                    S.real(rng, "built")[0]][k]
            m, ro, co = shapes.rect(rng.uniform(6, 15) / PXF, rng.uniform(4, 10) / PXF, ang + rng.normal(0, 0.15))
            d = rng.normal(0, 45 / PXF, 2)
            shapes.paint(cube, int(cr + d[0]) + ro, int(cc0 + d[1]) + co, m, spec.astype(np.float32))
    # landslide scars, elongated downslope
    for _ in range(rng.poisson(1.5 * area)):
        r0, c0 = rng.integers(0, FN, 2)
        ang = np.arctan2(gy[r0 // F, c0 // F], gx[r0 // F, c0 // F])
        L, W = rng.uniform(60, 350) / PXF, rng.uniform(15, 60) / PXF
        m, ro, co = shapes.blob(L / 2, W / 2, ang, shapes.blob_params(rng, 0.2))
        spec = S.mix(S.hand(rng, "rock"), S.real(rng, rng.choice(["bare_field", "sand"]))[0], rng.uniform(0.2, 0.8))
        shapes.paint(cube, r0 + ro, c0 + co, m, spec)
    return roads


def _sites(seed, vid, variant, N, dem, state, nseasons):
    """Site plans (deterministic per seed); each with its season-dependent geometry."""
    rng = np.random.default_rng([seed, vid, N, 2])
    n = min(rng.poisson(4.5 * (N / 512) ** 2), int(np.ceil(10 * (N / 512) ** 2)))
    FN = N * F
    gy, gx = np.gradient(dem, 10.0)
    slope = np.hypot(gx, gy)
    plans = []
    for k in range(n):
        c = rng.integers(0, FN, (6, 2))
        best = c[np.argmax(slope[c[:, 0] // F, c[:, 1] // F])]
        plans.append(dict(rng=np.random.default_rng([seed, vid, N, 3, k]), centre=best,
                          down=float(np.arctan2(gy[best[0] // F, best[1] // F], gx[best[0] // F, best[1] // F])),
                          start=0 if rng.random() < 0.6 else int(rng.integers(1, max(nseasons, 2)))))
    return plans


def _spoil_pair(rng, variant):
    if variant == "pale":
        a = "kaolin_pale" if rng.random() < 0.55 else ("kaolin_white" if rng.random() < 0.6 else "yellowbrown")
        b = rng.choice(["kaolin_pale", "kaolin_white", "yellowbrown", "wet_spoil"], p=[0.4, 0.25, 0.25, 0.1])
    else:
        a = "laterite" if rng.random() < 0.5 else "yellowbrown"
        b = rng.choice(["laterite", "yellowbrown", "wet_spoil", "kaolin_pale"], p=[0.35, 0.35, 0.2, 0.1])
    return S.hand(rng, a), S.hand(rng, str(b))


def _paint_site(p, variant, state, nseasons, cube, foot, pond):
    """Draw every random number first (same order whatever the state), then paint the state's geometry."""
    rng = p["rng"]
    FN = cube.shape[-1]
    area_ha = np.exp(rng.uniform(np.log(0.5), np.log(30)))
    r_px = np.sqrt(area_ha * 1e4 / np.pi) / PXF
    e = rng.uniform(1.0, 2.2)
    a, b = r_px * np.sqrt(e), r_px / np.sqrt(e)
    harm = shapes.blob_params(rng, 0.3)
    g0, rate = rng.uniform(0.45, 0.8), rng.uniform(0.1, 0.3)
    rels, sqs, ext = [], [], 0.0
    for j in range(1 + rng.poisson(area_ha / 5)):     # bigger sites hold several real clusters
        rel, sq = layout.draw_cluster(rng)
        rel = rel * rng.uniform(0.8, 1.2) / PXF
        ext = max(ext, np.abs(rel).max() + 20 / PXF)
        if j:
            u, v = rng.uniform(-0.6, 0.6, 2)
            rel = rel + np.array([u * a * np.sin(p["down"]) + v * b * np.cos(p["down"]),
                                  u * a * np.cos(p["down"]) - v * b * np.sin(p["down"])], np.float32)
        rels.append(rel)
        sqs.append(sq)
    rel_px, sq = np.concatenate(rels), np.concatenate(sqs)
    npd = len(rel_px)
    d_px = np.clip(np.exp(rng.normal(np.log(14), 0.5, npd)), 5, 40) / PXF
    main_kind = rng.choice(len(S.POND_KINDS), p=S.POND_P)
    kinds = np.where(rng.random(npd) < 0.6, main_kind, rng.choice(len(S.POND_KINDS), npd, p=S.POND_P))
    pond_specs = [S.hand(rng, S.POND_KINDS[k]) for k in kinds]
    pang = rng.uniform(0, np.pi / 2) + rng.normal(0, 0.1, npd)
    pstart = p["start"] + (rng.random(npd) < 0.3) * rng.integers(0, 2, npd)
    pend = np.where(rng.random(npd) < 0.2, p["start"] + rng.integers(1, max(nseasons, 2) + 1, npd), 10 ** 6)
    drained_spec = S.mix(S.hand(rng, "wet_spoil"), S.real(rng, "grass_field")[0], rng.uniform(0, 0.5))
    if ext > 0.75 * b:
        f = ext / (0.75 * b)
        a, b = a * f, b * f
    sp1, sp2 = _spoil_pair(rng, variant)
    terr = rng.random() < 0.5
    period = rng.uniform(8, 20) / PXF
    tarps = [(rng.choice(["tarp_blue", "tarp_white", "metal_roof"], p=[0.45, 0.3, 0.25]), rng.uniform(3, 10, 2) / PXF,
              rng.normal(0, 0.35, 2), rng.uniform(0, np.pi)) for _ in range(rng.integers(0, 5))]
    tarp_specs = [S.hand(rng, str(t[0])) for t in tarps]
    acc = (rng.uniform(0, 2 * np.pi), int(rng.uniform(200, 1200) / PXF), rng.uniform(4, 7) / PXF)
    acc_spec = S.real(rng, "bare_field")[0] * rng.uniform(1.0, 1.25)
    tex_seed = int(rng.integers(2 ** 31))
    # ---- geometry of this state
    if state is not None and state < p["start"]:
        return
    g = 1.0 if state is None else min(1.2, g0 + rate * (state - p["start"]))
    cr, cc = p["centre"]
    rr, c2 = shapes.curve(rng, (cr, cc), acc[0], acc[1], wiggle=0.05)
    r3, c3 = shapes.stamp_line((FN, FN), rr, c2, acc[2])
    cube[:, r3, c3] = acc_spec[:, None]
    m, ro, co = shapes.blob(a, b, p["down"], harm, g)
    win = shapes.window(cube.shape, cr + ro, cc + co, m)
    if win is None:
        return
    (sr, sc), mm = win
    h, w = mm.shape
    trng = np.random.default_rng(tex_seed)
    L = max(h, w)
    t = np.clip(0.5 + 0.4 * terrain.fractal(trng, L, beta=2.8)[:h, :w], 0, 1)
    fld = sp1[:, None, None] * (1 - t) + sp2[:, None, None] * t
    fld *= 1 + 0.05 * trng.normal(size=(h, w)).astype(np.float32)
    if terr:
        yy, xx = np.mgrid[sr, sc]
        v = (xx - cc) * np.cos(p["down"]) + (yy - cr) * np.sin(p["down"])
        fld *= np.where((v / period) % 1 < 0.65, 1.05, 0.82).astype(np.float32)
    view = cube[:, sr, sc]
    view[:, mm] = fld[:, mm]
    foot[sr, sc] |= mm
    inn = foot[r3, c3]                                 # the access road continues as a mining track inside the site
    cube[:, r3[inn], c3[inn]] = (S.mix(acc_spec, sp1, 0.5) * 1.1)[:, None]
    s = 10 ** 5 if state is None else state
    for i in range(npd):
        pr, pc = cr + rel_px[i, 0] * min(g, 1.0), cc + rel_px[i, 1] * min(g, 1.0)
        lr, lc = int(pr) - (cr + ro), int(pc) - (cc + co)
        inside = 0 <= lr < m.shape[0] and 0 <= lc < m.shape[1] and m[lr, lc]
        if not inside or s < pstart[i]:
            continue
        pm, po, qo = shapes.rect(d_px[i], d_px[i] * rng.uniform(0.7, 1.0), pang[i]) if sq[i] else shapes.disk(d_px[i])
        if state is not None and s >= pend[i]:
            shapes.paint(cube, int(pr) + po, int(pc) + qo, pm, drained_spec, masks=((foot, True),))
        else:
            shapes.paint(cube, int(pr) + po, int(pc) + qo, pm, pond_specs[i], masks=((foot, True), (pond, True)))
    for (name, wh, off, ang), spec in zip(tarps, tarp_specs):
        tr, tc = int(cr + off[0] * b * g), int(cc + off[1] * b * g)
        lr, lc = tr - (cr + ro), tc - (cc + co)
        if 0 <= lr < m.shape[0] and 0 <= lc < m.shape[1] and m[lr, lc]:
            tm, to, uo = shapes.rect(wh[0], wh[1], ang)
            w2 = shapes.window(pond.shape, tr + to, tc + uo, tm)
            if w2 is not None:   # tarps never cover pond water
                tm = tm.copy()
                (a2, b2), mk = w2
                mk &= ~pond[a2, b2]
                shapes.paint(cube, a2.start, b2.start, mk, spec, masks=((foot, True),))


def render(seed: int, variant: str, size: int, state, nseasons: int, variants: tuple):
    vid = variants.index(variant)
    seed = int(seed) % (2 ** 63)
    N = int(size)
    FN = N * F
    w = _world(seed, vid, variant, N)
    cube = np.ascontiguousarray(_rep(w["bg"]))
    crng = np.random.default_rng([seed, vid, N, 4])
    tex = ndi.gaussian_filter(crng.normal(size=(FN, FN)).astype(np.float32), 0.9)
    cube *= 1 + 0.25 * tex[None]                    # sub-pixel crown / gap texture
    _landscape(w, variant, N, cube)
    foot = np.zeros((FN, FN), bool)
    pond = np.zeros((FN, FN), bool)
    for p in _sites(seed, vid, variant, N, w["dem"], state, nseasons):
        _paint_site(p, variant, state, nseasons, cube, foot, pond)
    cube *= 1 + 0.04 * np.roll(tex, (FN // 3, FN // 5), axis=(0, 1))[None]   # within-object speckle
    srng = np.random.default_rng([seed, vid, N, 50, 999999 if state is None else int(state)])
    rough = variant == "rough"
    elev = srng.uniform(24, 35) if rough else srng.uniform(36, 55)
    az = srng.uniform(140, 165)
    ratio, shadow = terrain.illumination(w["dem"], 10.0, elev, az)
    gy, gx = np.gradient(w["dem"], 10.0)
    sky = (1 + np.cos(np.arctan(np.hypot(gx, gy)))) / 2
    kd = DIFFUSE * srng.uniform(0.85, 1.15) * (1.25 if rough else 1.0)
    lit = np.clip(ratio, 0, 2.5) * ~shadow
    for bnd in range(6):
        cube[bnd] *= _rep(((1 - kd[bnd]) * lit + kd[bnd] * sky).astype(np.float32))
    x = sensor.to_s2(cube, F, srng, rough)
    x = sensor.atmosphere(x, srng, rough, variant)
    pf = sensor.block_mean(pond.astype(np.float32), F)
    ff = sensor.block_mean(foot.astype(np.float32), F)
    y = np.where(pf >= 0.5, 2, np.where(ff >= 0.5, 1, 0)).astype(np.uint8)
    return x, y
