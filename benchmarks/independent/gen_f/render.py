"""One season: background canopy at 10 m (LUT of the leaf+canopy model), fine object canvas,
terrain illumination (direct beam with cast shadows + sky-view diffuse), area averaging."""
import numpy as np

from . import materials as M
from . import mines as MN
from . import spectra as S
from . import terrain as T
from .canvas import F, block_mean, upsample

SKY = S.to_bands(S.sky_fraction())           # diffuse share of irradiance per band


def sun_for(seed, variant, t):
    rng = np.random.default_rng([seed, 61, MN.VCODE[variant], t])
    zen = rng.uniform(58, 67) if variant == "rough" else rng.uniform(40, 51)
    return float(zen), float(rng.uniform(138, 162))     # dry-season late-morning sun at 25.7 N


def _background(L, rng, variant, season_dry, zen):
    n = L["size"]
    vt = L["vtype"]
    lai = L["lai"] * (1 - 0.12 * season_dry * (vt == 1))
    brown = np.clip(L["brown"] + 0.12 * season_dry + (0.2 if variant == "pale" else 0.0), 0, 1)
    fi = np.interp(lai, M.LAI_GRID, np.arange(len(M.LAI_GRID)))
    fj = np.interp(brown, M.BROWN_GRID, np.arange(len(M.BROWN_GRID)))
    i0 = np.minimum(fi.astype(int), len(M.LAI_GRID) - 2)
    j0 = np.minimum(fj.astype(int), len(M.BROWN_GRID) - 2)
    wi, wj = (fi - i0)[..., None], (fj - j0)[..., None]
    out = np.zeros((n, n, 6))
    shfac = np.clip(np.tan(np.radians(zen)) / np.tan(np.radians(45)), 0.6, 2.2)
    for k, name in enumerate(M.VEG):
        m = vt == k
        if not m.any():
            continue
        lut, sh, leaf_t = M.veg_lut(rng, name, variant, season_dry)
        a, b, wa, wb = i0[m], j0[m], wi[m], wj[m]
        r = (lut[a, b] * (1 - wa) * (1 - wb) + lut[a + 1, b] * wa * (1 - wb)
             + lut[a, b + 1] * (1 - wa) * wb + lut[a + 1, b + 1] * wa * wb)
        shv = min(0.7, sh * shfac) * (1 + 0.25 * L["tex10"][m])[:, None]
        out[m] = r * (1 - shv + shv * np.minimum(SKY + 0.5 * leaf_t, 1))
    return out.transpose(2, 0, 1)


def render(L, plan, t, variant):
    seed, n = L["seed"], L["size"]
    zen, az = sun_for(seed, variant, t)
    rng = np.random.default_rng([seed, 62, MN.VCODE[variant], t])
    season_dry = rng.uniform(0.2, 1.0)
    bg = _background(L, rng, variant, season_dry, zen)
    ter = L["ter"]
    cosi, nz = T.cos_incidence(L["dem"], zen, az)
    shadow = T.cast_shadow(ter["dem_pad"], ter["pad"], n, zen, az)
    dir10 = (cosi / np.cos(np.radians(zen)) * (1 - shadow)).astype(np.float32)
    svf = ((1 + nz) / 2).astype(np.float32)
    # ---- season objects on a copy of the static canvas
    cv = L["canvas"].copy()
    for sl in plan["slides"]:
        MN.paint_slide(cv, L, sl, t, seed)
    for sw in plan["swid"]:
        MN.paint_swidden(cv, L, sw, t, seed)
    roads = np.concatenate(L["road_pts"]) if L["road_pts"] else None
    arng = np.random.default_rng([seed, 64])
    road_id = None
    for s in plan["sites"]:
        if roads is not None and MN.site_scale(s, t) > 0:
            a = s["rc"] + s["v"] * s["B"] / 10.0
            b = roads[np.argmin(np.hypot(*(roads - a).T))]
            if np.hypot(*(b - a)) < 0.3 * n and s["id"] % 3 != 2:
                if road_id is None:
                    road_id = cv.add(M.soil(arng, "yellow", "track"), 0, 0.08)
                path = T.wiggly_path(np.random.default_rng([seed, 65, s["id"]]), a, b, n=30, amp=0.1)
                m = T.polyline_mask((cv.n, cv.n), path * F + (F - 1) / 2, 1.4)
                cv.paint(m & (np.asarray(cv.label)[cv.obj] == 0), road_id)
    for s in plan["sites"]:
        MN.paint_site(cv, L, s, t, variant, (zen, az), seed)
    y = cv.truth()
    # ---- area-average the fine canvas with its own illumination
    dirf = upsample(dir10)
    for r0, c0, m, v in cv.over:
        sub = dirf[r0:r0 + m.shape[0], c0:c0 + m.shape[1]]
        sub[m] = v[m] * (1 - upsample(shadow)[r0:r0 + m.shape[0], c0:c0 + m.shape[1]][m])
    svff = upsample(svf)
    obj = cv.obj
    has = obj > 0
    trng = np.random.default_rng([seed, 63, t])
    texf = 0.6 * upsample(L["tex10"]) + 0.8 * trng.standard_normal(obj.shape, dtype=np.float32)
    g = 1 + np.asarray(cv.tex, np.float32)[obj] * texf
    spec = np.asarray(cv.spec, np.float32)
    bgfrac = block_mean((~has).astype(np.float32))
    phys = np.empty((6, n, n), np.float32)
    for b in range(6):
        val = spec[obj, b] * g * (SKY[b] * svff + (1 - SKY[b]) * dirf)
        val[~has] = 0
        ib = SKY[b] * svf + (1 - SKY[b]) * dir10
        phys[b] = bgfrac * bg[b] * ib + block_mean(val)
    aux = {"zen": zen, "az": az, "svf": svf, "season_dry": season_dry}
    return np.clip(phys, 0, None), y, aux
