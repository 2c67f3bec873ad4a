"""Own semi-analytic shallow-water model at the six band centres, and a simple residual-haze model.

Subsurface remote-sensing reflectance (Gordon et al. 1988; Lee et al. 1998 shallow-water form):
    u = bb / (a + bb);  irradiance reflectance R = 1.3 (1 - sqrt(1-u)) / (1 + sqrt(1-u)) (two-stream
    semi-infinite form, scaled so that R -> 0.33 u for small u as in Gordon et al. 1975), rrs_deep = R / Q,
    Q = 4.5 sr (this saturates for very turbid water, as measured: rho ~0.1-0.15 in the red at SPM ~1 g/l)
    Kd ~ (a + bb) / cos(theta_w) * 1.08  (approx.),   attenuation over depth z (two-way)
    rrs = rrs_deep (1 - exp(-2 Kd z)) + (rho_bottom / pi) exp(-2 Kd z)
    Rrs = 0.52 rrs / (1 - 1.7 rrs);   surface reflectance rho = pi Rrs + sky glint
Inherent optical properties:
    pure water a_w: Pope & Fry (1997) in the visible, Kou et al. (1993) in the NIR, Hale & Querry (1973)
        imaginary index k in the SWIR (a = 4 pi k / lambda), read at the band centres;
    pure water bb_w = 0.5 * 0.00288 (lambda/500)^-4.32 (Morel 1974);
    suspended sediment (SPM, g m-3): a_nap = 0.03 SPM exp(-0.0123 (lambda-443)),
        bb_p = bbp* SPM (lambda/555)^-0.4, bbp* 0.008-0.025 m2 g-1 (fine clay higher);
    dissolved iron / CDOM: a_g = a_g440 exp(-0.015 (lambda-440)).
"""
from __future__ import annotations

import numpy as np

from .spectra import CENTRE

A_W = np.array([0.0145, 0.0619, 0.429, 2.75, 666.0, 970.0])  # m-1 at 492 560 665 833 1614 2202 nm
BB_W = 0.5 * 0.00288 * (CENTRE / 500.0) ** -4.32


def water_reflectance(spm: float, ag440: float, depth: float, bottom: np.ndarray,
                      bbp_star: float = 0.015, glint: float = 0.004) -> np.ndarray:
    """Surface reflectance (6,) of a water body (spm g m-3, ag440 m-1, depth m, bottom reflectance (6,))."""
    lam = CENTRE
    a = A_W + 0.03 * spm * np.exp(-0.0123 * (lam - 443)) + ag440 * np.exp(-0.015 * (lam - 440))
    bb = BB_W + bbp_star * spm * (lam / 555.0) ** -0.4
    u = bb / (a + bb)
    sq = np.sqrt(1.0 - u)
    rrs_deep = 1.3 * (1 - sq) / (1 + sq) / 4.5
    kd = 1.08 * (a + bb) / np.cos(np.radians(25.0))
    att = np.exp(-2.0 * kd * depth)
    rrs = rrs_deep * (1 - att) + np.asarray(bottom) / np.pi * att
    Rrs = 0.52 * rrs / (1 - 1.7 * rrs)
    return np.clip(np.pi * Rrs + glint, 0.0, 1.0)


POND_KINDS = ("lined_blue", "lined_black", "lined_white", "turquoise", "milky", "iron", "muddy")


def pond_spectrum(rng: np.random.Generator, kind: str, soil: np.ndarray, liner) -> np.ndarray:
    """One pond's reflectance (6,). `liner(kind)` returns a plastic spectrum; `soil` a bottom soil."""
    glint = rng.uniform(0.001, 0.008)
    if kind.startswith("lined_"):
        bottom = liner(kind.split("_")[1])
        return water_reflectance(rng.uniform(1, 15), rng.uniform(0.0, 0.3), rng.uniform(0.15, 1.2),
                                 bottom, glint=glint)
    if kind == "turquoise":  # clear-ish water with fine clay, over pale bottom
        return water_reflectance(rng.uniform(5, 30), rng.uniform(0.0, 0.2), rng.uniform(0.5, 2.0),
                                 soil * 1.1, bbp_star=rng.uniform(0.02, 0.03), glint=glint)
    if kind == "milky":  # leachate with suspended fine kaolinite / precipitates
        return water_reflectance(rng.uniform(80, 400), rng.uniform(0.0, 0.3), rng.uniform(0.5, 2.0),
                                 soil, bbp_star=rng.uniform(0.02, 0.03), glint=glint)
    if kind == "iron":  # red-brown: dissolved / colloidal iron, CDOM-like absorption plus sediment
        return water_reflectance(rng.uniform(20, 150), rng.uniform(2.0, 8.0), rng.uniform(0.5, 2.0),
                                 soil, bbp_star=rng.uniform(0.01, 0.02), glint=glint)
    # muddy collection pond
    return water_reflectance(rng.uniform(100, 600), rng.uniform(0.3, 2.0), rng.uniform(0.3, 1.5),
                             soil, bbp_star=rng.uniform(0.008, 0.015), glint=glint)


def river_spectrum(rng: np.random.Generator, soil: np.ndarray) -> np.ndarray:
    return water_reflectance(rng.uniform(10, 120), rng.uniform(0.2, 1.2), rng.uniform(1.0, 4.0), soil,
                             glint=rng.uniform(0.002, 0.01))


# ---------------------------------------------------------------- residual haze (L2A)
def haze(rng: np.random.Generator, tau550: float, sun_zenith: float) -> tuple[np.ndarray, np.ndarray]:
    """Residual path reflectance and two-way transmittance left after L2A correction.

    Aerosol optical depth tau(l) = tau550 (l/550)^-alpha (Angstrom), alpha 0.8-1.6 (biomass-burning
    season smoke / regional haze); single-scattering path ~ omega tau P / (4 mu_s mu_v) with a fixed
    phase term, and transmittance exp(-tau (1/mu_s + 1/mu_v)).
    """
    alpha = rng.uniform(0.8, 1.6)
    tau = tau550 * (CENTRE / 550.0) ** -alpha
    mus = np.cos(np.radians(sun_zenith))
    muv = np.cos(np.radians(5.0))
    path = 0.9 * tau * 0.18 / (4 * mus * muv) * 4 * rng.uniform(0.6, 1.0) / 4
    trans = np.exp(-tau * (1 / mus + 1 / muv) * 0.5)  # forward-scatter half counted as transmitted
    return path, trans
