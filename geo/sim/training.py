"""Random clear-sky training chips for the pond/cleared-land model (pure; re-exported by :mod:`geo.sim.scene`).

Two spectral worlds: the legacy one (the class table ``geo/data/spectra.csv``, randomised) and, with a
:class:`Domain`, one grounded in measured spectra (:mod:`geo.sim.materials`: spoil, fields and river bars from
measured soils of chosen colour families, ponds from the water model, roofs, roads and tarps from measured
materials) with wide radiometric randomisation (terrain shading, haze, gain, noise, blur, 20 m misregistration)
and look-alikes (swidden clearings, landslides) labelled background.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from geo.sim.atmos import HAZE_SHAPE, mean_2x2, render_surface
from geo.sim.layout import Site, hillshade, make_landscape, make_site_shape, site_state
from geo.sim.materials import (POND_TYPES, SOIL_FAMILIES, draw_material, draw_soil, pond_reflectance)
from geo.sim.spectra import LC, VEGETATION_LC, Spectra, load_spectra
from geo.sim.subpixel import block_mean, coarse_labels, subpixel_ponds, upsample

#: Fine grid of a sub-pixel chip: 10 m / SUBPIXEL_K = 2.5 m.
SUBPIXEL_K = 4


@dataclass(frozen=True)
class Domain:
    """What a measured-spectra training chip may look like (ranges are drawn uniformly per chip).

    Attributes:
        soil_families: soil colour families (:data:`geo.sim.materials.SOIL_FAMILIES`) of spoil, fields and bars.
        pond_types: pond types (:data:`geo.sim.materials.POND_TYPES`).
        sun_elevation: sun elevation range (degrees); low sun = strong terrain shading.
        direct: share of direct light in the terrain illumination (``hillshade``), 0–1.
        relief: multiplier range of the terrain's relief.
        haze: added path reflectance in B02 (reflectance units; other bands follow ``HAZE_SHAPE``).
        gain: overall radiometric gain range (calibration, residual atmosphere, BRDF).
        band_gain: per-band gain jitter (± fraction).
        noise: noise standard deviation range (reflectance units).
        psf: blur sigma range (px) of the sensor point-spread function.
        misregistration: probability that the 20 m bands are shifted by one 10 m px.
        phenology: range of dry-season browning strength (0 none, 1 default, 2 very dry canopy).
        lookalikes: largest number of bare look-alike patches (swidden fields, landslides) per chip.
        field_same_soil: probability that fields and look-alikes share the spoil's soil (forces context).
        subpixel_ponds: probability that a chip is painted on a 2.5 m grid with its pond blobs turned into
            clusters of real-size pools (:func:`geo.sim.subpixel.subpixel_ponds`) and averaged to 10 m, so pond
            pixels are mixed as Sentinel-2 sees them. 0 (the default) draws no extra random numbers.
    """

    soil_families: tuple[str, ...] = SOIL_FAMILIES
    pond_types: tuple[str, ...] = POND_TYPES
    sun_elevation: tuple[float, float] = (25.0, 65.0)
    direct: tuple[float, float] = (0.5, 0.9)
    relief: tuple[float, float] = (0.6, 1.8)
    haze: tuple[float, float] = (0.0, 0.05)
    gain: tuple[float, float] = (0.75, 1.3)
    band_gain: float = 0.06
    noise: tuple[float, float] = (0.001, 0.008)
    psf: tuple[float, float] = (0.3, 0.8)
    misregistration: float = 0.3
    phenology: tuple[float, float] = (0.0, 2.0)
    lookalikes: int = 4
    field_same_soil: float = 0.5
    subpixel_ponds: float = 0.0


def measured_spectra(rng: np.random.Generator, domain: Domain) -> tuple[Spectra, np.ndarray]:
    """The class table with its soil, pond, tarp, bar, road and roof rows replaced by measured draws;
    also returns the spoil soil (6,)."""
    base = load_spectra().randomized(rng)
    mean, std = base.mean.copy(), base.std.copy()
    spoil = draw_soil(rng, domain.soil_families)

    def put(name: str, v: np.ndarray, rel: float = 0.12) -> None:
        mean[LC[name]], std[LC[name]] = v, rel * v

    put("laterite_soil", spoil, float(rng.uniform(0.06, 0.2)))
    put("bare_field", spoil * rng.uniform(0.8, 1.1) if rng.random() < domain.field_same_soil
        else draw_soil(rng, domain.soil_families))
    put("sand_gravel_bar", draw_material(rng, "gravel") if rng.random() < 0.4 else draw_soil(rng, domain.soil_families))
    put("artificial", draw_material(rng, "road"))
    put("roof_metal", draw_material(rng, str(rng.choice(["metal", "roof"]))))
    put("tarp_blue", draw_material(rng, "paint_plastic"), 0.05)
    put("tarp_black", np.full(6, rng.uniform(0.03, 0.07), np.float32), 0.05)
    kinds = rng.choice(domain.pond_types, 3)
    for name, kind in zip(("pond_turquoise", "pond_milky", "pond_brown"), kinds):
        put(name, pond_reflectance(rng, str(kind), soil=spoil), float(rng.uniform(0.03, 0.1)))
    return Spectra(mean.astype(np.float32), std.astype(np.float32)), spoil


def _lookalikes(rng: np.random.Generator, lc: np.ndarray, lc2: np.ndarray, mix: np.ndarray, labels: np.ndarray,
                n: int) -> None:
    """Paint up to ``n`` bare patches (swidden clearings with stubble, landslide scars) on background forest."""
    h, w = lc.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(int(rng.integers(0, n + 1))):
        r0, c0 = rng.uniform(0, h), rng.uniform(0, w)
        if rng.random() < 0.5:  # swidden: blocky, partly regrown
            a, b = rng.uniform(4, 14), rng.uniform(4, 14)
            patch = (np.abs(yy - r0) < a) & (np.abs(xx - c0) < b)
            veg = rng.uniform(0.05, 0.5)
        else:  # landslide: long narrow scar down a slope
            th, length, width = rng.uniform(0, np.pi), rng.uniform(10, 30), rng.uniform(1.5, 4)
            u = (xx - c0) * np.cos(th) + (yy - r0) * np.sin(th)
            v = -(xx - c0) * np.sin(th) + (yy - r0) * np.cos(th)
            patch = (np.abs(u) < length) & (np.abs(v) < width * (1 - np.abs(u) / (1.3 * length)))
            veg = rng.uniform(0.0, 0.25)
        patch &= (labels == 0) & np.isin(lc, VEGETATION_LC)
        lc[patch], lc2[patch], mix[patch] = LC["bare_field"], LC["grassland"], veg


def _radiometry(rng: np.random.Generator, img: np.ndarray, domain: Domain) -> np.ndarray:
    """Haze, gain, noise, blur and 20 m resampling (with optional misregistration) of a surface image."""
    img = img + (HAZE_SHAPE * rng.uniform(*domain.haze))[:, None, None]
    gain = rng.uniform(*domain.gain) * rng.uniform(1 - domain.band_gain, 1 + domain.band_gain, (6, 1, 1))
    img = img * gain.astype(np.float32)
    sigma = rng.uniform(*domain.psf)
    img = ndimage.gaussian_filter(img, (0, sigma, sigma), mode="nearest")
    img += rng.uniform(*domain.noise) * rng.standard_normal(img.shape).astype(np.float32)
    shift = (int(rng.integers(-1, 2)), int(rng.integers(-1, 2))) if rng.random() < domain.misregistration else (0, 0)
    for i in (4, 5):
        band = np.roll(img[i], shift, axis=(0, 1))
        img[i] = np.repeat(np.repeat(mean_2x2(band), 2, axis=0), 2, axis=1)
    return img


def training_pair(seed: int, *, size: int = 256, randomize: bool = True,
                  small_ponds: float = 0.0, domain: Domain | None = None) -> tuple[np.ndarray, np.ndarray]:
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

    ``domain`` switches to the measured-spectra world (:class:`Domain`; a different random stream, so the
    same seed gives a different chip than without it).
    """
    rng = np.random.default_rng([seed, 99] if domain is None else [seed, 99, 11])
    n = size + (size % 2)
    if domain is not None:
        spectra, _spoil = measured_spectra(rng, domain)
    else:
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
    if domain is not None:
        _lookalikes(rng, lc, lc2, mix, labels, domain.lookalikes)
        relief = land.elevation.mean() + (land.elevation - land.elevation.mean()) * rng.uniform(*domain.relief)
        illum = hillshade(relief, rng.uniform(90, 180), rng.uniform(*domain.sun_elevation),
                          direct=float(rng.uniform(*domain.direct)))
        phase, phenology = rng.uniform(0, 1), float(rng.uniform(*domain.phenology))
        fine_rng = np.random.default_rng([seed, 99, 11, 4]) if domain.subpixel_ponds > 0 else None
        if fine_rng is not None and fine_rng.random() < domain.subpixel_ponds:
            k = SUBPIXEL_K
            lc_f, lc2_f, mix_f, lab_f = subpixel_ponds(fine_rng, lc, lc2, mix, labels, k=k, pad_lc=LC["laterite_soil"])
            img = block_mean(render_surface(spectra, lc_f, lc2_f, mix_f, upsample(land.texture, k), phase=phase,
                                            phenology=phenology, illumination=upsample(illum, k), psf_sigma=0.0), k)
            labels = coarse_labels(lab_f, k)
        else:
            img = render_surface(spectra, lc, lc2, mix, land.texture, phase=phase, phenology=phenology,
                                 illumination=illum, psf_sigma=0.0)
        img = np.clip(_radiometry(rng, img, domain), 0.0001, 1.0).astype(np.float32)
        return img[:, :size, :size], labels[:size, :size]
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
