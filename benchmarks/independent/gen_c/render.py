"""Paint the fine (2.5 m) surface-reflectance cube and the fine truth masks of a Landscape at time tau."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.special import ndtri

from . import shapes as S
from .landscape import F, M2P, Landscape
from .spectra import POND_TYPES, Palette
from .terrain import upsample

VEG = ("evergreen", "deciduous_dry", "bamboo", "pine", "grass_dry")


def _norm_noise(rng, n, sigma):
    a = ndi.gaussian_filter(rng.standard_normal((n, n), dtype=np.float32), sigma)
    return a / (a.std() + 1e-9)


def _orng(L: Landscape, *k) -> np.random.Generator:
    return np.random.default_rng([L.key[0], L.key[1], 13, *k])


def background(L: Landscape, pal: Palette):
    n = L.n
    rt = np.random.default_rng([L.key[0], L.key[1], 14])
    fn = _norm_noise(rt, n, 1.2)
    crown = _norm_noise(rt, n, 1.6)
    cls = np.zeros((n, n), np.uint8)
    for i, name in enumerate(VEG[1:], start=1):
        sc = upsample(L.score[name], F) + 0.05 * fn
        cls[sc > L.thr[name]] = i
    lut = np.stack([pal.obj(v, _orng(L, 0, i)) for i, v in enumerate(VEG)], 1).astype(np.float32)  # (6, 5)
    R = lut[:, cls]
    tone = upsample(L.tone, F)
    R[3:] *= 1 + 0.08 * tone
    R[:3] *= 1 - 0.05 * tone
    amp = rt.uniform(0.18, 0.28)
    R *= np.clip(1 + amp * crown, 0.3, None)
    return R, fn, crown


def render_surface(L: Landscape, pal: Palette, tau: float):
    """(R fine (6,n,n) float32, pond fine bool, footprint fine bool)."""
    n = L.n
    R, fn, crown = background(L, pal)
    pond = np.zeros((n, n), bool)
    foot = np.zeros((n, n), bool)
    # swidden plots (stage evolves with time: fallows regrow)
    for i, sw in enumerate(L.swidden):
        m = S.blob(*sw["c"], sw["rad"], n, sw["harm"], sw["elong"], sw["ang"])
        if m is None:
            continue
        sl, mk = m
        stage = sw["stage"]
        if tau - sw["age"] > 0.6 and stage in ("burnt", "stubble"):
            stage = "grass_dry" if stage == "burnt" else "shrub_fallow"
        spec = pal.obj(stage, _orng(L, 1, i))
        keep = mk & (crown[sl] < ndtri(1 - sw["trees"]) if sw["trees"] > 0 else mk)
        S.paint(R, sl, keep, spec, fn, 0.12)
    # landslide scars
    for i, ls in enumerate(L.slides):
        m = S.lobe(*ls["c"], ls["len"], ls["w0"], ls["w1"], ls["ang"], n)
        if m is None:
            continue
        sl, mk = m
        mk = mk & (fn[sl] > -2.5 + 3 * ls["regrow"])
        S.paint(R, sl, mk, pal.obj("landslide", _orng(L, 2, i)), fn, 0.18)
    # valley-floor strip along the channel (gravel, grass, shrubs), then bars, then water
    fp = S.polyline_mask(L.river * F + F / 2, L.river_w * L.flood_k, n)
    r_fp = _orng(L, 9)
    for name, sel in (("gravel_bar", fp & (fn > 0.6)), ("grass_dry", fp & (fn > -0.2) & (fn <= 0.6)),
                      ("shrub_fallow", fp & (fn <= -0.2) & (crown > 0.3))):
        R[:, sel] = pal.obj(name, r_fp)[:, None] * (1 + 0.12 * fn[sel])[None]
    for i, b in enumerate(L.bars):
        m = S.blob(*b["c"], b["W"] / 2, n, np.zeros((1, 2)), b["L"] / b["W"], b["ang"])
        if m is None:
            continue
        sl, mk = m
        mk = mk & (crown[sl] > -2.2 + 4 * b["veg"])
        S.paint(R, sl, mk, pal.obj(b["mat"], _orng(L, 3, i)), fn, 0.15)
    wm = S.polyline_mask(L.river * F + F / 2, L.river_w, n)
    wspec = pal.obj("river_water", _orng(L, 4))
    R[:, wm] = wspec[:, None] * (1 + 0.1 * fn[wm])[None]
    # roads and villages
    for i, rd in enumerate(L.roads):
        rm = S.polyline_mask(rd["pts"], rd["width"], n)
        R[:, rm] = pal.obj(rd["mat"], _orng(L, 5, i))[:, None] * (1 + 0.1 * fn[rm])[None]
    for i, v in enumerate(L.villages):
        m = S.blob(*v["c"], v["rad"], n, v["harm"])
        if m is not None:
            sl, mk = m
            S.paint(R, sl, mk & (crown[sl] < 0.6), pal.obj("bare_village", _orng(L, 6, i)), fn, 0.15)
        r = _orng(L, 7, i)
        for (cy, cx, h, w, a, mat) in v["roofs"]:
            m = S.rect(cy, cx, h, w, a, n)
            if m is not None:
                S.paint(R, m[0], m[1], pal.obj(mat, r))
    for i, st in enumerate(L.sites):
        _site(L, pal, R, pond, foot, fn, st, i, tau)
    return R, pond, foot


def _site(L, pal, R, pond, foot, fn, st, i, tau):
    n = L.n
    if tau < st["t0"]:
        return
    r = _orng(L, 8, i)
    s = float(np.clip(0.45 + 0.55 * (tau - st["t0"]) / 0.6, 0.45, 1.0))
    c, rad, down = st["c"], st["rad"], st["down"]
    dv = np.array([np.sin(down), np.cos(down)])
    spoil = pal.obj(st["spoil"], r)
    mud = pal.obj("wet_mud", r)
    site = np.zeros((n, n), bool)
    # spoil fan below the pad, with gullies
    fm = S.lobe(*(c + dv * rad * 0.45 * s), st["fan_len"] * s, st["fan_w"] * s, 0.45 * st["fan_w"] * s, down, n)
    fan_spec = spoil * r.uniform(0.8, 1.0) * (1 - (w := r.uniform(0, 0.3))) + mud * w
    if fm is not None:
        fm = (fm[0], fm[1] & (fn[fm[0]] > -1.6))
        S.paint(R, fm[0], fm[1], fan_spec, fn, 0.16)
        site[fm[0]] |= fm[1]
        for g in st["gullies"]:
            a = down + g
            pts = c + dv * rad * 0.5 * s + np.linspace(0, 1, 10)[:, None] * st["fan_len"] * s * np.array([np.sin(a), np.cos(a)])
            gm = S.polyline_mask(pts, r.uniform(1.0, 2.5), n) & site
            R[:, gm] = (fan_spec * r.uniform(0.55, 0.8))[:, None]
    # terraced / irregular pad
    pm = S.blob(*c, rad, n, st["harm"], st["elong"], st["ang"], scale=s, jit=fn, jamp=0.05)
    if pm is not None:
        sl, mk = pm
        S.paint(R, sl, mk, spoil, fn, 0.10)
        h, w = mk.shape
        mot = ndi.zoom(r.standard_normal((h // 12 + 2, w // 12 + 2)), 12, order=1)[:h, :w]
        wmix = np.clip(0.5 + 0.35 * mot, 0, 1)[mk]
        alt = (mud if r.random() < 0.5 else pal.obj("laterite_spoil", r)) * r.uniform(0.8, 1.1)
        sub = R[:, sl[0], sl[1]]
        sub[:, mk] = sub[:, mk] * (1 - 0.45 * wmix) + 0.45 * wmix * alt[:, None]
        if st["terraced"]:
            demf = upsample(L.dem[max(sl[0].start // F - 1, 0):sl[0].stop // F + 2,
                                  max(sl[1].start // F - 1, 0):sl[1].stop // F + 2], F)
            oy, ox = sl[0].start - max(sl[0].start // F - 1, 0) * F, sl[1].start - max(sl[1].start // F - 1, 0) * F
            demf = demf[oy:oy + mk.shape[0], ox:ox + mk.shape[1]]
            riser = (np.mod(demf / st["terrace_m"], 1.0) < 0.3) & mk
            sub = R[:, sl[0], sl[1]]
            sub[:, riser] *= r.uniform(0.65, 0.85)
        site[sl] |= mk
    # mining roads inside the site
    for pts in st["roads"]:
        q = c + (pts - c) * s
        rm = S.polyline_mask(q, r.uniform(4, 6) * M2P, n)
        R[:, rm] = (spoil * r.uniform(0.85, 1.1))[:, None]
        site |= rm
    if st["access"] is not None:
        am = S.polyline_mask(c + (st["access"][0] - c) * s + (st["access"] - st["access"][0]), 5 * M2P, n) & ~site
        R[:, am] = pal.obj("dirt_road", r)[:, None]
    abandoned = tau > st["abandon"]
    # tarps, plastic-covered heaps, sheds
    for o in st["objs"]:
        oc = c + (o["c"] - c) * s
        if o["built"] > tau or abandoned:
            continue
        m = S.rect(*oc, o["h"], o["w"], o["ang"], n)
        if m is not None:
            S.paint(R, m[0], m[1], pal.obj(o["mat"], r))
            site[m[0]] |= m[1]
    # ponds with earthen banks
    ptypes = [pal.obj(t, r) for t in POND_TYPES]
    for p in st["ponds"]:
        if p["built"] > tau or np.hypot(*(p["c"] - c)) > rad * s * 1.15 + st["fan_len"] * s * 0.6:
            continue
        bank = r.uniform(0.8, 2.0)
        side = p["side"]
        mk_fn = (lambda sd: S.rect(*p["c"], sd, sd, p["ang"], n)) if p["square"] else (lambda sd: S.disk(*p["c"], sd / 2, n))
        mb = mk_fn(side + 2 * bank)
        if mb is None:
            continue
        S.paint(R, mb[0], mb[1], spoil * r.uniform(0.9, 1.2), fn, 0.1)
        site[mb[0]] |= mb[1]
        mw = mk_fn(side)
        if mw is None:
            continue
        if tau > p["drain"] or abandoned:
            S.paint(R, mw[0], mw[1], mud * r.uniform(0.8, 1.3), fn, 0.15)
            continue
        spec = ptypes[p["mat"]] * r.lognormal(0, 0.08, 6)
        S.paint(R, mw[0], mw[1], spec, fn, 0.05)
        pond[mw[0]] |= mw[1]
    if abandoned:  # revegetation of an abandoned site
        g = float(np.clip((tau - st["abandon"]) / 0.8, 0, 0.9))
        regrow = site & (fn < ndtri(g) if g > 0 else np.zeros_like(site))
        R[:, regrow] = pal.obj("shrub_fallow" if r.random() < 0.5 else "grass_dry", r)[:, None]
        site &= ~regrow
        pond &= ~regrow
    foot |= site
