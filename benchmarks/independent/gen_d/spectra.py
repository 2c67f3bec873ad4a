"""Continuous-wavelength (400-2500 nm) reflectance curves of every material, and their integration over
Gaussian Sentinel-2 spectral response functions.  All anchor values are textbook-order numbers (see README);
every curve takes a numpy Generator so that each scene / object draws its own variant."""
from __future__ import annotations

import numpy as np

WL = np.arange(400.0, 2501.0, 5.0)  # nm
BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
# published S2 MSI centre / FWHM (nm)
SRF_CENTRE = np.array([492.0, 560.0, 665.0, 833.0, 1614.0, 2202.0])
SRF_FWHM = np.array([66.0, 36.0, 31.0, 106.0, 91.0, 175.0])


def srf_matrix(wl: np.ndarray = WL) -> np.ndarray:
    sig = SRF_FWHM / 2.354820045
    w = np.exp(-0.5 * ((wl[None, :] - SRF_CENTRE[:, None]) / sig[:, None]) ** 2)
    return w / w.sum(axis=1, keepdims=True)


_SRF = srf_matrix()


def to_bands(curve: np.ndarray) -> np.ndarray:
    """(..., len(WL)) reflectance curve(s) -> (..., 6) band reflectance."""
    return np.asarray(curve) @ _SRF.T


def _pw(anchors) -> np.ndarray:
    a = np.asarray(anchors, dtype=float)
    return np.interp(WL, a[:, 0], a[:, 1])


def _dip(centre: float, width: float, depth: float) -> np.ndarray:
    """multiplicative Gaussian absorption feature (depth 0..1)."""
    return 1.0 - depth * np.exp(-0.5 * ((WL - centre) / width) ** 2)


def _sig(centre: float, width: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(WL - centre) / width))


def _water_dips(strength: float) -> np.ndarray:
    """liquid-water absorption in leaves / moist materials: 970, 1200, 1450, 1940 nm (+ SWIR slope)."""
    s = strength
    return (_dip(975, 25, 0.04 * s) * _dip(1200, 40, 0.10 * s) * _dip(1450, 55, 0.55 * s)
            * _dip(1940, 70, 0.70 * s) * _dip(2500, 180, 0.35 * s))


# ----------------------------------------------------------------------------------------------- vegetation
def green_canopy(rng: np.random.Generator, kind: str = "evergreen") -> np.ndarray:
    """closed green canopy: chlorophyll well at 670 nm, red edge, NIR plateau, leaf-water dips."""
    green = rng.uniform(0.045, 0.075)
    red = rng.uniform(0.018, 0.032)
    nir = rng.uniform(0.27, 0.38) if kind == "evergreen" else rng.uniform(0.30, 0.42)
    edge = rng.uniform(712.0, 726.0)
    vis = _pw([(400, 0.022), (450, 0.025), (500, 0.032), (550, green), (580, 0.8 * green + 0.2 * red),
               (640, red * 1.1), (670, red), (690, red * 1.3), (2500, red)])
    nir_sh = nir * _pw([(400, 1), (800, 1.0), (1000, 0.97), (1100, 0.95), (1250, 0.93), (1650, 0.62),
                        (1800, 0.55), (2200, 0.34), (2500, 0.25)])
    nir_sh *= rng.uniform(0.85, 1.12) ** (WL > 1300)  # SWIR / NIR ratio varies with leaf water & structure
    ed = _sig(edge, 11.0)
    c = vis * (1 - ed) + nir_sh * ed
    return np.clip(c * _water_dips(rng.uniform(0.85, 1.05)), 0.004, 1.0)


def dry_canopy(rng: np.random.Generator) -> np.ndarray:
    """dry-season browned / senescent canopy or dry grass: weak chlorophyll well, lower NIR, higher SWIR,
    cellulose-lignin dip near 2100 nm, weaker water dips."""
    blue = rng.uniform(0.03, 0.05)
    red = rng.uniform(0.055, 0.11)
    nir = rng.uniform(0.22, 0.32)
    swir1 = rng.uniform(0.26, 0.36)
    c = _pw([(400, blue * 0.8), (490, blue), (560, 0.5 * (blue + red) + 0.01), (665, red), (700, red * 1.25),
             (760, nir * 0.93), (900, nir), (1300, nir * 1.05), (1650, swir1), (2000, swir1 * 0.85),
             (2200, swir1 * rng.uniform(0.68, 0.85)), (2500, swir1 * 0.55)])
    return np.clip(c * _dip(2100, 40, rng.uniform(0.05, 0.12)) * _water_dips(rng.uniform(0.2, 0.5)), 0.004, 1)


def thatch(rng: np.random.Generator) -> np.ndarray:
    return np.clip(dry_canopy(rng) * rng.uniform(1.0, 1.3), 0, 0.8)


# ------------------------------------------------------------------------------------------------- minerals
def lateritic_soil(rng: np.random.Generator, moisture: float = 0.0) -> np.ndarray:
    """red-brown / yellow-brown lateritic soil: steep VIS rise with the Fe3+ charge-transfer shoulder
    (~530 nm), ferric crystal-field dip near 870-900 nm, clay OH (1400/1900) and Al-OH (2200) features."""
    b = rng.uniform(0.055, 0.10)
    g = b * rng.uniform(1.45, 1.9)
    r = g * rng.uniform(1.35, 1.75)
    n = r * rng.uniform(1.05, 1.30)
    s1 = n * rng.uniform(1.15, 1.45)
    s2 = s1 * rng.uniform(0.78, 0.92)
    c = _pw([(400, 0.8 * b), (490, b), (560, g), (665, r), (760, n * 0.98), (900, n * 0.93), (1050, n),
             (1300, 0.5 * (n + s1)), (1650, s1), (2000, 0.5 * (s1 + s2)), (2200, s2), (2500, s2 * 0.8)])
    c = c * _dip(880, 70, rng.uniform(0.04, 0.10)) * _dip(2205, 25, rng.uniform(0.04, 0.10))
    c = c * _dip(1410, 25, 0.12) * _dip(1915, 40, 0.2)
    return _wet(c, moisture)


def kaolinitic_spoil(rng: np.random.Generator, moisture: float = 0.0) -> np.ndarray:
    """pale yellow / whitish kaolinitic spoil: bright, flat NIR, weak iron stain in VIS, kaolinite
    Al-OH doublet 2165 / 2205 nm and 1400 nm OH feature."""
    b = rng.uniform(0.20, 0.32)
    stain = rng.uniform(1.05, 1.35)  # yellowing by goethite
    r = b * stain * rng.uniform(1.1, 1.25)
    n = r * rng.uniform(1.02, 1.15)
    s1 = n * rng.uniform(1.05, 1.2)
    c = _pw([(400, 0.85 * b), (490, b), (560, b * stain), (665, r), (850, n), (1300, 0.5 * (n + s1)),
             (1650, s1), (2100, s1 * 0.95), (2500, s1 * 0.78)])
    d = rng.uniform(0.12, 0.25)
    c = c * _dip(2165, 14, d * 0.7) * _dip(2207, 16, d) * _dip(1400, 15, 0.25) * _dip(1915, 35, 0.25)
    c = c * _dip(900, 70, rng.uniform(0.0, 0.04))
    return _wet(c, moisture)


def sand_gravel(rng: np.random.Generator, moisture: float = 0.0) -> np.ndarray:
    """river sand / gravel bar: quartz-feldspar, slight iron stain, weak carbonate/clay features."""
    b = rng.uniform(0.09, 0.16)
    c = _pw([(400, 0.8 * b), (490, b), (560, b * 1.25), (665, b * 1.5), (850, b * 1.75), (1650, b * 2.2),
             (2200, b * 1.95), (2500, b * 1.7)])
    c = c * _dip(2205, 25, 0.05) * _dip(2340, 25, rng.uniform(0.0, 0.08))
    return _wet(c, moisture)


def rock_scar(rng: np.random.Generator) -> np.ndarray:
    """fresh landslide scar: mix of weathered rock / saprolite and red soil."""
    f = rng.uniform(0.3, 0.8)
    return f * lateritic_soil(rng, rng.uniform(0, 0.3)) + (1 - f) * sand_gravel(rng) * rng.uniform(0.8, 1.2)


def _wet(c: np.ndarray, moisture: float) -> np.ndarray:
    """moisture darkens (Lobell & Asner-type exponential in SWIR, scalar in VNIR) and deepens water dips."""
    if moisture <= 0:
        return c
    dark = 1 - 0.45 * moisture * (1 + 0.6 * (WL > 1300))
    return np.clip(c * dark * _water_dips(moisture * 0.8), 0.005, 1)


# ------------------------------------------------------------------------------------------ man-made
def plastic(rng: np.random.Generator, colour: str) -> np.ndarray:
    """polyethylene liner / tarp: pigment in VIS, C-H absorptions at 1210, 1730, 2310 nm."""
    if colour == "blue":
        pk = rng.uniform(0.18, 0.32)
        c = _pw([(400, pk * 0.8), (460, pk), (520, pk * 0.75), (580, pk * 0.3), (620, 0.05), (680, 0.045),
                 (720, 0.1), (800, rng.uniform(0.35, 0.55)), (1300, 0.45), (1650, 0.40), (2200, 0.33),
                 (2500, 0.25)])
    elif colour == "black":
        lv = rng.uniform(0.03, 0.06)
        c = _pw([(400, lv), (1000, lv * 1.05), (2500, lv * 1.1)])
    else:  # white
        lv = rng.uniform(0.45, 0.70)
        c = _pw([(400, lv * 0.9), (500, lv), (1000, lv * 0.97), (1650, lv * 0.8), (2200, lv * 0.6),
                 (2500, lv * 0.5)])
    d = 0.15 if colour != "black" else 0.03
    return np.clip(c * _dip(1210, 15, d * 0.6) * _dip(1730, 20, d) * _dip(2310, 25, d * 1.2), 0.01, 1)


def metal_roof(rng: np.random.Generator) -> np.ndarray:
    """galvanised / painted corrugated sheet; some rusted (iron-oxide shape)."""
    if rng.random() < 0.35:
        return np.clip(lateritic_soil(rng) * rng.uniform(0.9, 1.3), 0, 0.9)
    lv = rng.uniform(0.18, 0.45)
    return _pw([(400, lv * 0.95), (700, lv), (1200, lv * 0.95), (2500, lv * 0.85)])


# ---------------------------------------------------------------------------------------------- water
# pure-water absorption (1/m), order of Pope & Fry 1997 (VIS), Kou et al. 1993 / Hale & Querry (NIR-SWIR)
_AW = _pw([(400, 0.0066), (450, 0.0092), (500, 0.0204), (550, 0.0565), (600, 0.222), (650, 0.340),
           (700, 0.650), (750, 2.47), (800, 2.07), (850, 4.3), (900, 6.8), (950, 40.0), (1000, 36.0),
           (1200, 100.0), (1450, 2800.0), (1600, 670.0), (1940, 11000.0), (2200, 1600.0), (2500, 5000.0)])


def water_body(rng: np.random.Generator, spm: float, fe: float, cdom: float, depth: float,
               bottom: np.ndarray | None, spm_iron: float = 0.0) -> np.ndarray:
    """shallow-water above-surface reflectance (pi*Rrs + sky glint).

    spm: suspended clay (g/m3) -> backscatter b_bp = spm * 0.012 * (550/wl)^0.6 m2/g, absorption small;
    fe: dissolved / colloidal iron (arbitrary 0..1): absorption 3*fe*exp(-0.011*(wl-400)) (red-brown colour);
    cdom: a_cdom(440) (1/m), slope 0.016; spm_iron: iron-stained fraction of the particles (absorb blue);
    depth (m) and bottom reflectance: R = R_inf (1 - e^{-2 K H}) + R_b e^{-2 K H}, K = 1.1 (a + b_b)."""
    bbp = spm * 0.012 * (550.0 / WL) ** 0.6
    ap = spm * (0.004 + 0.10 * spm_iron) * np.exp(-0.009 * (WL - 440.0))
    a = _AW + ap + 3.0 * fe * np.exp(-0.011 * (WL - 400.0)) + cdom * np.exp(-0.016 * (WL - 440.0))
    bb = 0.0019 * (550.0 / WL) ** 4.3 + bbp
    u = bb / (a + bb)
    r_inf = 0.33 * u * (1.0 + 0.8 * u)  # irradiance reflectance below the surface
    if bottom is not None:
        att = np.exp(-2.0 * 1.1 * (a + bb) * depth)
        r_sub = r_inf * (1 - att) + bottom * att
    else:
        r_sub = r_inf
    rrs = r_sub / 3.6
    Rrs = 0.52 * rrs / (1 - 1.7 * rrs)
    glint = rng.uniform(0.012, 0.025) * (500.0 / WL) ** 0.5 + rng.uniform(0.0, 0.01)
    return np.clip(np.pi * Rrs + glint, 0.003, 1.0)


POND_KINDS = ("lined_blue", "lined_black", "lined_white", "turquoise", "milky", "iron", "muddy")


def pond(rng: np.random.Generator, kind: str, spoil: np.ndarray) -> np.ndarray:
    """one leaching / collection pond curve."""
    depth = rng.uniform(0.3, 2.0)
    if kind.startswith("lined"):
        liner = plastic(rng, kind.split("_")[1])
        return water_body(rng, rng.uniform(0.5, 15), rng.uniform(0, 0.05), rng.uniform(0, 0.3),
                          rng.uniform(0.2, 1.2), liner)
    if kind == "turquoise":
        return water_body(rng, rng.uniform(8, 40), rng.uniform(0, 0.03), rng.uniform(0, 0.2), depth, None)
    if kind == "milky":
        return water_body(rng, rng.uniform(150, 900), 0.0, rng.uniform(0, 0.2), depth, None)
    if kind == "iron":
        return water_body(rng, rng.uniform(20, 150), rng.uniform(0.3, 1.5), rng.uniform(0, 0.5), depth,
                          None, spm_iron=rng.uniform(0.3, 1.0))
    # muddy: lateritic suspended sediment over a spoil bottom
    return water_body(rng, rng.uniform(60, 400), rng.uniform(0, 0.2), rng.uniform(0.1, 1.0), depth,
                      spoil * 0.6, spm_iron=rng.uniform(0.2, 0.6))


def river_water(rng: np.random.Generator) -> np.ndarray:
    return water_body(rng, rng.uniform(1.5, 25), 0.0, rng.uniform(0.3, 1.5), rng.uniform(0.5, 3.0),
                      sand_gravel(rng) * 0.7, spm_iron=rng.uniform(0, 0.3))
