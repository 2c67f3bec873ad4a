"""Random clear-sky training chips for the pond/cleared-land model (pure; re-exported by :mod:`geo.sim.scene`)."""

from __future__ import annotations

import math

import numpy as np

from geo.sim.atmos import HAZE_SHAPE, mean_2x2, render_surface
from geo.sim.layout import Site, hillshade, make_landscape, make_site_shape, site_state
from geo.sim.spectra import load_spectra


def training_pair(seed: int, *, size: int = 256, randomize: bool = True,
                  small_ponds: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A clear-sky, composite-like chip and its labels.

    Returns:
        image: float32 ``(6, size, size)`` surface reflectance (0–1) in ANALYSIS_BANDS order
            (B02 B03 B04 B08 B11 B12); B11/B12 are 2×2 block means repeated onto the 10 m grid, as a
            20 m band resampled by nearest neighbour looks.
        labels: uint8 ``(size, size)``: 0 background, 1 cleared land, 2 leaching pond.

    With ``randomize`` the class spectra are drawn around the table's mean/std, and haze, noise,
    phenology, sun angle, layout, pond sizes and pond colours vary with ``seed``; without it the table means
    and mild defaults are used (the layout still follows ``seed``).

    ``small_ponds`` (0–1, training only) is the share of sites laid out with small ponds only (2–4 px
    sides, i.e. 4–16 px, often 2×2) and a young clearing that holds only its first pond or two —
    the hardest case for a 10 m model (a new site with one tiny pond). 0 gives the default layouts
    (and draws exactly the same random numbers, so evaluation scenes do not change).
    """
    rng = np.random.default_rng([seed, 99])
    n = size + (size % 2)
    spectra = load_spectra().randomized(rng) if randomize else load_spectra()
    has_river = rng.random() < 0.6
    land = make_landscape(rng, (n, n), river=has_river, river_col=rng.uniform(0.1, 0.9) * n,
                          n_villages=int(rng.integers(0, 3)))
    lc, lc2, mix = land.lc.copy(), land.lc2.copy(), land.mix.copy()
    labels = np.zeros((n, n), np.uint8)
    n_sites = int(rng.choice(7, p=[0.08, 0.12, 0.2, 0.2, 0.15, 0.15, 0.1]))
    placed: list[tuple[float, float, float]] = []
    for _ in range(n_sites):
        small = small_ponds > 0 and rng.random() < small_ponds
        r_max = float(rng.uniform(5, 16))
        if small:
            potential, ponds, tarps = make_site_shape(rng, r_max, min_pond_px=2, max_pond_px=int(rng.integers(2, 5)))
        else:
            potential, ponds, tarps = make_site_shape(rng, r_max, min_pond_px=int(rng.integers(2, 4)),
                                                      max_pond_px=int(rng.integers(5, 9)))
        half = potential.shape[0] // 2
        if potential.shape[0] >= n - 2:
            continue
        abandoned = rng.random() < 0.2
        need0 = ponds[0].need if ponds else 3.0
        young = float(rng.random()) if small else 1.0  # small-pond sites: often just past their first pond
        r_now = r_max - (r_max - min(need0, r_max)) * float(rng.random()) ** 2
        if small and young < 0.5 and len(ponds) > 1:
            r_now = min(r_now, need0 + (ponds[1].need - need0) * float(rng.random()) * 0.999)
        site = Site(0, 0, 0, potential, 0, 1 if abandoned else None, r_now,
                    0.0, r_max, ponds, tarps, np.clip(rng.standard_normal(potential.shape), -2, 2).astype(np.float32))
        st = site_state(site, int(rng.integers(1, 3)) if abandoned else 0)
        if st is None:
            continue
        for _try in range(40):
            r0, c0 = (int(v) for v in rng.integers(-half // 2, n - potential.shape[0] + half // 2, 2))
            cr, cc = r0 + half, c0 + half
            if any(math.hypot(cr - pr, cc - pc) < r_max + pe + 8 for pr, pc, pe in placed):
                continue
            rr, cc_ = np.nonzero(st.cover)
            rr, cc_ = rr + r0, cc_ + c0
            ok = (rr >= 0) & (rr < n) & (cc_ >= 0) & (cc_ < n)
            if land.river_dist[rr[ok], cc_[ok]].min(initial=1e9) < 3:
                continue
            src = (rr[ok] - r0, cc_[ok] - c0)
            dst = (rr[ok], cc_[ok])
            lc[dst], lc2[dst], mix[dst], labels[dst] = st.lc[src], st.lc2[src], st.mix[src], st.classes[src]
            placed.append((cr, cc, r_max))
            break
    if randomize:
        az, el = rng.uniform(110, 160), rng.uniform(35, 65)
        phase, haze, noise = rng.uniform(0, 1), rng.uniform(0, 0.02), rng.uniform(0.001, 0.004)
    else:
        az, el, phase, haze, noise = 140.0, 45.0, 0.5, 0.005, 0.002
    illum = hillshade(land.elevation, az, el)
    img = render_surface(spectra, lc, lc2, mix, land.texture, phase=phase, illumination=illum)
    img += (HAZE_SHAPE * haze)[:, None, None]
    img += noise * rng.standard_normal(img.shape).astype(np.float32)
    for i in (4, 5):  # 20 m bands
        img[i] = np.repeat(np.repeat(mean_2x2(img[i]), 2, axis=0), 2, axis=1)
    img = np.clip(img, 0.0001, 1.0).astype(np.float32)
    return img[:, :size, :size], labels[:size, :size]
