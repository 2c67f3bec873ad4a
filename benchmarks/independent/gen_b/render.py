"""Render one season of a World: fine 2.5 m reflectance, then the Sentinel-2 sensor model."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import layout, spectra
from .water import pond_spectrum, river_spectrum
from .world import S, World

NOISE0 = np.array([0.0012, 0.0012, 0.0012, 0.0015, 0.0020, 0.0022])  # additive noise std (reflectance)
NOISE1 = np.array([0.006, 0.005, 0.005, 0.004, 0.006, 0.008])        # signal-dependent part (std / R)


def _clip_window(r0, c0, h, w, F):
    a, b = max(r0, 0), max(c0, 0)
    e, f = min(r0 + h, F), min(c0 + w, F)
    if a >= e or b >= f:
        return None
    return (slice(a, e), slice(b, f)), (slice(a - r0, e - r0), slice(b - c0, f - c0))


def _paint(R, win, m, spec, tex=None):
    for b in range(6):
        v = spec[b] if tex is None else spec[b] * tex
        sub = R[b][win]
        sub[m] = v if np.isscalar(v) else v[m]


def _soil_mix(rng, group, h, w, field_factor, k=2):
    """Per-pixel mix of two soil endmembers by smooth noise -> (6, h, w)."""
    a, b = spectra.draw(rng, group), spectra.draw(rng, group)
    n = int(2 ** np.ceil(np.log2(max(h, w, 8))))
    t = np.clip(0.5 + 0.35 * layout.fractal(rng, n, beta=2.2, kmin=2)[:h, :w], 0, 1)
    return (a[:, None, None] * t + b[:, None, None] * (1 - t)) * field_factor


def render_season(w: World, season: int) -> tuple[np.ndarray, np.ndarray]:
    cfg, n = w.cfg, w.size
    F = n * S
    rng = np.random.default_rng([w.seed, 9090, season, ("base", "pale", "rough").index(w.variant)])
    sun_zen = 90.0 - rng.uniform(*cfg["sun_elev"])
    sun_az = rng.uniform(135, 165)
    soils = spectra.soil_classes()
    lib = spectra.earthlib_bands()

    # --- canopy background (PROSAIL table for this season's sun), crown-scale shadowing texture
    table = spectra.canopy_table(rng, sun_zen, cfg["dry"])
    yr_brown = rng.uniform(-0.05, 0.1)
    lai_f = layout.upsample(w.lai, S)
    brown_f = layout.upsample(np.clip(w.brown + yr_brown, 0, 0.95), S)
    R = spectra.canopy_lookup(table, lai_f, brown_f)
    del lai_f, brown_f
    crown = ndimage.gaussian_filter(rng.standard_normal((F, F)).astype(np.float32), 1.3)
    crown = np.clip(rng.uniform(0.80, 0.92) + 0.9 * crown, 0.45, 1.05).astype(np.float32)
    R *= crown[None]
    del crown

    # --- look-alike patches (label 0)
    for p in w.patches:
        h, wd = p.field.shape
        cw = _clip_window(p.r0, p.c0, h, wd, F)
        if cw is None:
            continue
        win, loc = cw
        prng = np.random.default_rng([p.seed, season])
        m = p.field[loc] < p.level
        if p.kind == "grass":
            spec = 0.6 * spectra.canopy_lookup(table, np.array(prng.uniform(0.5, 1.5)),
                                               np.array(prng.uniform(0.5, 0.9))) + 0.4 * spectra.draw(prng, lib["npv"])
            tex = 1 + 0.06 * prng.standard_normal(m.shape)
        elif p.kind == "swidden":
            state = prng.random()
            if state < 0.4:   # freshly cut / burnt: soil with ash
                spec = spectra.draw(prng, soils["all"]) * prng.uniform(0.45, 0.8)
            elif state < 0.7:  # crop stubble / dry weeds
                spec = 0.5 * spectra.draw(prng, lib["npv"]) + 0.5 * spectra.draw(prng, soils["ordinary"]) * 0.8
            else:              # young crop / weeds
                spec = spectra.canopy_lookup(table, np.array(prng.uniform(0.8, 2.0)),
                                             np.array(prng.uniform(0.2, 0.7))) * 0.9
            tex = 1 + 0.08 * ndimage.gaussian_filter(prng.standard_normal(m.shape), 1.0) * 3
        elif p.kind == "fallow":
            spec = spectra.canopy_lookup(table, np.array(prng.uniform(1.2, 3.0)), np.array(prng.uniform(0.1, 0.6)))
            spec = spec * prng.uniform(0.8, 0.95)
            tex = 1 + 0.1 * ndimage.gaussian_filter(prng.standard_normal(m.shape), 1.5) * 3
        elif p.kind == "landslide":
            mix = _soil_mix(prng, soils["all"], *m.shape, prng.uniform(0.7, 0.95))
            g = spectra.draw(prng, lib["gravel"]) * prng.uniform(1.0, 1.8)
            t = prng.uniform(0.2, 0.6)
            spec, tex = None, None
            sub = (1 - t) * mix + t * g[:, None, None]
            for b in range(6):
                R[b][win][m] = sub[b][m]
            continue
        else:  # river bar: sand / gravel, fairly bright
            spec = 0.5 * spectra.draw(prng, lib["gravel"]) * prng.uniform(1.2, 2.2) + \
                0.5 * spectra.draw(prng, soils["pale"]) * prng.uniform(0.7, 0.95)
            tex = 1 + 0.05 * prng.standard_normal(m.shape)
        _paint(R, win, m, spec, tex)

    # --- rivers, roads, villages (label 0)
    for pts, width in w.rivers:
        m = np.zeros((F, F), bool)
        layout.draw_line(m, pts, width)
        spec = river_spectrum(rng, spectra.draw(rng, soils["ordinary"]))
        _paint(R, (slice(None), slice(None)), m, spec)
    for pts, width in w.roads:
        m = np.zeros((F, F), bool)
        layout.draw_line(m, pts, width)
        _paint(R, (slice(None), slice(None)), m, spectra.draw(rng, soils["all"]) * rng.uniform(0.75, 0.95))
    for vr, vc, half, metal, sd in w.villages:
        vrng = np.random.default_rng(sd)
        r0, c0, hh = int(vr - half), int(vc - half), int(2 * half) + 1
        cw = _clip_window(r0 - 2, c0 - 2, hh + 4, hh + 4, F)
        if cw is None:
            continue
        yard = np.ones((hh + 4, hh + 4), bool)[cw[1]]
        _paint(R, cw[0], yard, spectra.draw(vrng, soils["all"]) * 0.8)
        cw = _clip_window(r0, c0, hh, hh, F)
        if cw is None:
            continue
        roof = np.ones((hh, hh), bool)[cw[1]]
        spec = spectra.draw(vrng, lib["metal"]) * vrng.uniform(0.8, 1.6) if metal else \
            spectra.draw(vrng, lib["npv"]) * vrng.uniform(0.7, 1.0)
        _paint(R, cw[0], roof, np.clip(spec, 0, 0.9))

    # --- mining sites (label 1 / 2)
    mine = np.zeros((F, F), bool)
    pond = np.zeros((F, F), bool)
    for st in w.sites:
        lvl = st.level(season)
        if lvl is None:
            continue
        srng = np.random.default_rng([st.seed, 1])      # site materials fixed across seasons
        nrng = np.random.default_rng([st.seed, season])  # per-season variation
        h, wd = st.field.shape
        cw = _clip_window(st.r0, st.c0, h, wd, F)
        if cw is None:
            continue
        win, loc = cw
        m = st.field[loc] < lvl
        for pts in st.roads:  # mining roads: inside the cleared footprint
            rm = np.zeros((h, wd), bool)
            layout.draw_line(rm, pts - [st.r0, st.c0], srng.uniform(3, 5) / 2.5)
            m |= rm[loc] & (st.field[loc] < lvl * 1.15)
        if w.cfg["pale"] and srng.random() < 0.8:
            group, ff = soils["pale"], srng.uniform(0.85, 1.05)
        else:
            group = soils["laterite"] if srng.random() < 0.6 else soils["ordinary"]
            ff = srng.uniform(0.72, 0.95)
        sub = _soil_mix(srng, group, h, wd, ff)[(slice(None),) + loc]
        if st.terraced:
            zf = layout.upsample(w.z, S)[win]
            sub = sub * (0.88 + 0.12 * np.sin(2 * np.pi * zf / st.terrace_h))[None]
        sub = sub * (1 + 0.04 * nrng.standard_normal(m.shape))[None]
        for b in range(6):
            R[b][win][m] = sub[b][m]
        mine[win] |= m
        # ponds
        liner = (lambda k, g=srng: spectra.plastic(g, k, weathering=g.uniform(0, 0.3)))
        for pd in st.ponds:
            if season < pd.start:
                continue
            rr, cc = int(pd.r - st.r0), int(pd.c - st.c0)
            if not (0 <= rr < h and 0 <= cc < wd) or st.field[rr, cc] >= lvl:
                continue
            prng = np.random.default_rng(pd.seed)
            k = int(np.ceil(pd.half)) + 1
            yy, xx = np.mgrid[-k:k + 1, -k:k + 1] + 0.5 - np.array([pd.r % 1, pd.c % 1])[:, None, None]
            pm = (np.maximum(abs(yy), abs(xx)) <= pd.half) if pd.square else (np.hypot(yy, xx) <= pd.half)
            pcw = _clip_window(int(pd.r) - k, int(pd.c) - k, 2 * k + 1, 2 * k + 1, F)
            if pcw is None:
                continue
            pm = pm[pcw[1]]
            bottom = spectra.draw(prng, group) * 0.8
            if season >= pd.drain + 1:  # drained then revegetating
                spec = spectra.canopy_lookup(table, np.array(prng.uniform(0.5, 1.5)), np.array(0.4))
                _paint(R, pcw[0], pm, spec)
                mine[pcw[0]] |= pm
                continue
            if season >= pd.drain:  # drained: wet mud / exposed liner
                spec = bottom * 0.6 if not pd.kind.startswith("lined") else liner(pd.kind.split("_")[1])
                _paint(R, pcw[0], pm, spec)
                mine[pcw[0]] |= pm
                continue
            spec = pond_spectrum(prng, pd.kind, bottom, liner)
            # a 1-fine-pixel berm / liner rim around lined pools
            if pd.kind.startswith("lined"):
                rim = ndimage.binary_dilation(pm) & ~pm
                _paint(R, pcw[0], rim, liner(pd.kind.split("_")[1]))
                mine[pcw[0]] |= rim
            _paint(R, pcw[0], pm, spec)
            pond[pcw[0]] |= pm
            mine[pcw[0]] |= pm
        for sr, sc, half, kind, sd in st.sheds:
            k = int(half) + 1
            pcw = _clip_window(int(sr) - k, int(sc) - k, 2 * k, 2 * k, F)
            if pcw is None or st.field[min(max(int(sr - st.r0), 0), h - 1), min(max(int(sc - st.c0), 0), wd - 1)] >= lvl:
                continue
            g = np.random.default_rng(sd)
            spec = spectra.draw(g, lib["metal"]) * g.uniform(0.9, 1.6) if kind == "metal" else spectra.plastic(g, kind, 0.2)
            pm = np.ones((2 * k, 2 * k), bool)[pcw[1]]
            _paint(R, pcw[0], pm, np.clip(spec, 0, 0.9))
            mine[pcw[0]] |= pm
        if st.access is not None:  # access road: label 0 outside the site
            am = np.zeros((F, F), bool)
            layout.draw_line(am, st.access, srng.uniform(3.5, 6) / 2.5)
            am &= ~mine
            _paint(R, (slice(None), slice(None)), am, spectra.draw(srng, group) * ff * 0.95)
    return R, mine, pond, sun_zen, sun_az, rng
