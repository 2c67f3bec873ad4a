"""Physical spectra on a 400-2500 nm grid, integrated over Sentinel-2 spectral responses.

Everything here is built from absorption / scattering physics, then reduced to the six bands
(B02 B03 B04 B08 B11 B12) by a Gaussian SRF x solar-irradiance weighted average.
Models (see README for sources):
  * leaf: plate model (Allen et al. 1969) stacked with Stokes' N-layer formula (as in PROSPECT,
    Jacquemoud & Baret 1990) with analytic specific-absorption curves for chlorophyll,
    carotenoids, brown pigments, water and dry matter;
  * canopy: Kubelka-Munk two-stream layer (SAIL-style scattering coefficients for a spherical
    leaf-angle distribution) over a soil/litter background, plus a crown-shadow term;
  * soil / spoil: Hapke isotropic multiple-scattering reflectance of an intimate mixture whose
    absorption is the abundance-weighted sum of hematite, goethite, kaolinite, organic matter,
    matrix and soil-water absorption;
  * water: Lee et al. (1998, 1999) semi-analytical shallow-water model;
  * plastics / roofs / char / ash: simple pigment + polymer absorption spectra.
"""
import numpy as np
from scipy.special import exp1

WL = np.arange(400.0, 2501.0, 5.0)                      # nm
BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
# Sentinel-2A centre wavelength / FWHM (nm), ESA S2 MSI spectral response document (S2-SRF v3)
_S2 = [(492.4, 66.0), (559.8, 36.0), (664.6, 31.0), (832.8, 106.0), (1613.7, 91.0), (2202.4, 175.0)]
CENTRES = np.array([c for c, _ in _S2])


def _g(c, w):
    """Gaussian of centre c and 1/e half-width w (nm) on WL."""
    return np.exp(-((WL - c) / w) ** 2)


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _solar():
    """Top-of-atmosphere solar spectral irradiance shape: 5778 K Planck curve (relative)."""
    lam = WL * 1e-9
    return 1.0 / (lam ** 5 * (np.exp(1.4388e-2 / (lam * 5778.0)) - 1.0))


_W = np.stack([np.exp(-4 * np.log(2) * ((WL - c) / f) ** 2) for c, f in _S2]) * _solar()[None]
_W /= _W.sum(1, keepdims=True)


def to_bands(spec):
    """(..., len(WL)) spectrum -> (..., 6) band-equivalent reflectance."""
    return np.asarray(spec) @ _W.T


# ---- pure water absorption, m^-1: Pope & Fry 1997 (400-700), Kou et al. 1993 and Hale & Querry 1973
# (700-2500), values read at knots and interpolated in log space.
_AW = np.array([
    (400, .0066), (420, .0045), (440, .0064), (460, .0098), (480, .0145), (500, .0257), (520, .0477),
    (540, .0503), (560, .0708), (580, .108), (600, .222), (620, .276), (640, .312), (660, .410),
    (680, .465), (700, .624), (720, 1.17), (740, 2.6), (760, 2.6), (780, 2.4), (800, 2.0), (820, 2.6),
    (840, 3.4), (860, 4.6), (880, 5.5), (900, 6.8), (920, 15.), (940, 27.), (960, 42.), (980, 46.),
    (1000, 36.), (1050, 16.), (1100, 20.), (1150, 80.), (1200, 104.), (1250, 80.), (1300, 115.),
    (1350, 330.), (1400, 1200.), (1450, 2900.), (1500, 2000.), (1550, 1000.), (1600, 670.),
    (1650, 580.), (1700, 700.), (1750, 850.), (1800, 950.), (1850, 2500.), (1900, 7500.),
    (1940, 11400.), (2000, 7000.), (2050, 3500.), (2100, 2600.), (2150, 1900.), (2200, 1650.),
    (2250, 2000.), (2300, 2500.), (2350, 3500.), (2400, 5200.), (2450, 7500.), (2500, 9500.)])
A_WATER = np.exp(np.interp(WL, _AW[:, 0], np.log(_AW[:, 1])))      # m^-1

# ---- leaf specific absorption coefficients (shapes after PROSPECT-5 / Feret et al. 2008)
K_CAB = (0.075 * _g(440, 55) + 0.060 * _g(672, 24) + 0.020 * _g(625, 35) + 0.0095 * _g(560, 90)) \
    * _sig((745 - WL) / 8)                                                            # cm2/ug
K_CAR = 0.22 * _g(470, 38) * _sig((525 - WL) / 6)                                     # cm2/ug
K_BROWN = 1.4 * np.exp(-(WL - 400) / 150) * _sig((1000 - WL) / 40)                    # per unit
K_W = A_WATER / 100.0                                                                  # cm^-1
K_M = (3.0 + 70 * np.exp(-(WL - 400) / 110) + 9 * _sig((WL - 1450) / 60) + 14 * _g(1730, 45)
       + 6 * _g(1200, 60) + 32 * _g(2100, 70) + 26 * _g(2300, 60) + 10 * _sig((WL - 2200) / 50))  # cm2/g


def _n_index():
    return 1.47 - 0.08 * (WL - 400) / 2100


def _diffuse_fresnel(n, amax=90.0):
    """Fresnel reflectance averaged over an isotropic incidence cone 0..amax deg (numerical)."""
    th = np.linspace(0, np.radians(amax), 200)[:, None]
    ct, st = np.cos(th), np.sin(th)
    ctt = np.sqrt(np.maximum(1 - (st / n) ** 2, 0))
    rs = ((ct - n * ctt) / (ct + n * ctt)) ** 2
    rp = ((n * ct - ctt) / (n * ct + ctt)) ** 2
    f = 0.5 * (rs + rp) * 2 * st * ct
    return np.trapezoid(f, th[:, 0], axis=0) / np.sin(np.radians(amax)) ** 2


_N = _n_index()
_REXT = _diffuse_fresnel(_N)
_RINT = 1 - (1 - _REXT) / _N ** 2
_RTOP = _diffuse_fresnel(_N, 40.0)       # PROSPECT: top surface lit within a 40 deg cone


def leaf(N=1.6, cab=45.0, car=10.0, brown=0.0, cw=0.012, cm=0.006):
    """Leaf hemispherical reflectance and transmittance spectra (plate + Stokes N-layer)."""
    k = (cab * K_CAB + car * K_CAR + brown * K_BROWN + cw * K_W + cm * K_M) / N
    k = np.maximum(k, 1e-5)
    tau = (1 - k) * np.exp(-k) + k ** 2 * exp1(k)
    t12, t21 = 1 - _REXT, 1 - _RINT
    den = 1 - _RINT ** 2 * tau ** 2
    r1 = _REXT + t12 * t21 * _RINT * tau ** 2 / den
    t1 = t12 * t21 * tau / den
    d = np.sqrt(np.maximum((t1 ** 2 - r1 ** 2 - 1) ** 2 - 4 * r1 ** 2, 1e-12))
    a = (1 + r1 ** 2 - t1 ** 2 + d) / (2 * r1)
    b = (1 - r1 ** 2 + t1 ** 2 + d) / (2 * t1)
    bn = b ** (N - 1)
    den2 = a ** 2 * bn ** 2 - 1
    rsub = a * (bn ** 2 - 1) / den2
    tsub = bn * (a ** 2 - 1) / den2
    # top layer (40 deg incidence cone) added to the (N-1)-layer stack
    rt = _RTOP + (1 - _RTOP) * t21 * _RINT * tau ** 2 / den
    tt = (1 - _RTOP) * t21 * tau / den
    dd = 1 - rsub * r1
    r = rt + tt * t1 * rsub / dd
    t = tt * tsub / dd
    return np.clip(r, 0, 1), np.clip(t, 0, 1)


def sky_fraction():
    """Diffuse (sky) share of surface irradiance: Rayleigh + aerosol, ~lambda^-2.5 (clear tropics)."""
    return np.clip(0.16 * (WL / 550.0) ** -2.5, 0.02, 0.6)


def canopy(r, t, lai, rsoil, shadow=0.3):
    """Kubelka-Munk canopy layer over background rsoil, with a crown-shadow fraction.

    Scattering coefficients as in SAIL for a spherical leaf angle distribution (ddb=2/3, ddf=1/3).
    Shadowed crowns are lit by skylight plus light transmitted through upper leaves.
    """
    att = 1 - (r / 3 + 2 * t / 3)
    sigb = 2 * r / 3 + t / 3
    m = np.sqrt(np.maximum(att ** 2 - sigb ** 2, 1e-10))
    rinf = (att - m) / np.maximum(sigb, 1e-9)
    e = np.exp(-2 * m * lai)
    rs = np.clip(rsoil, 1e-4, 0.999)
    # Kubelka (1948) finite-layer reflectance, divided through by exp(2mL) to stay stable at high LAI
    num = (rs - rinf) / rinf * e - rinf * (rs - 1 / rinf)
    den = (rs - rinf) * e - (rs - 1 / rinf)
    rc = num / den
    rc = np.where(np.isfinite(rc), rc, rinf)
    shade_light = sky_fraction() + 0.5 * t
    return np.clip(rc * (1 - shadow + shadow * np.minimum(shade_light, 1)), 0, 1)


# ---- soil constituents: relative absorption per unit abundance (dimensionless optical depth)
SOIL_K = {
    "matrix": 0.10 + 0.22 * np.exp(-(WL - 400) / 300),
    # hematite: Fe3+ ligand-field / charge-transfer edge ~550-580 nm, 0.65 shoulder, 0.86-0.88 um band
    "hematite": 24 * _sig((560 - WL) / 22) + 4 * _g(640, 40) + 3.5 * _g(870, 85),
    # goethite: edge shifted to ~500 nm, weak 0.65 um band, 0.90-0.93 um band
    "goethite": 18 * _sig((490 - WL) / 22) + 2 * _g(660, 40) + 3 * _g(920, 90),
    # kaolinite: bright; Al-OH doublets 1395/1415 and 2165/2206 nm, 1.9 um adsorbed water
    "kaolinite": 0.003 + 0.6 * _g(1395, 12) + 0.5 * _g(1415, 12) + 0.25 * _g(2165, 14) + 0.4 * _g(2206, 16)
    + 0.4 * _g(1910, 35),
    # humic organic matter: broad, monotonic, strongest in the visible
    "organic": 3.0 + 14 * np.exp(-(WL - 400) / 230),
    # soil water: liquid absorption (cm^-1 x 0.1 mm path) + refractive-index-matching darkening
    "water": 0.35 + K_W * 0.05,
}


def soil(hem=0.02, goe=0.02, kao=0.3, org=0.01, moist=0.05, grain=1.0):
    """Hapke (1981) isotropic-scatterer bihemispherical reflectance of an intimate mixture."""
    alpha = grain * (SOIL_K["matrix"] + hem * SOIL_K["hematite"] + goe * SOIL_K["goethite"]
                     + kao * SOIL_K["kaolinite"] + org * SOIL_K["organic"]) + moist * SOIL_K["water"]
    w = np.exp(-alpha)
    gam = np.sqrt(1 - w)
    return (1 - gam) / (1 + gam)


# ---- man-made and burn materials
def _polymer(base):
    """C-H overtone/combination absorptions of polyethylene/PVC at 1215, 1395, 1730, 2310 nm."""
    return base * (1 - 0.10 * _g(1215, 20) - 0.12 * _g(1395, 25) - 0.30 * _g(1730, 25)
                   - 0.28 * _g(2310, 30) - 0.15 * _g(2350, 25) - 0.08 * _sig((WL - 2150) / 40))


def plastic(kind):
    if kind == "blue":      # phthalocyanine-type blue pigment: transmits 430-500, absorbs 580-720
        base = 0.06 + 0.30 * _g(470, 60) + 0.42 * _sig((WL - 760) / 25)
    elif kind == "white":   # TiO2-filled film
        base = 0.55 + 0.15 * _sig((WL - 420) / 10)
    else:                   # carbon-black filled film
        base = 0.035 + 0.015 * (WL - 400) / 2100
    return np.clip(_polymer(base), 0, 1)


def metal_roof(rust=0.0):
    zinc = 0.32 + 0.06 * (WL - 400) / 2100
    return (1 - rust) * zinc + rust * soil(hem=0.08, goe=0.04, kao=0.1, org=0.0, moist=0.0, grain=1.3)


def char():
    """Charcoal / black ash: dark, slowly rising to SWIR (e.g. Smith et al. 2010)."""
    return 0.035 + 0.045 * (WL - 400) / 2100


def ash():
    """White mineral ash (carbonates): bright, flattish with a weak 2.33 um carbonate band."""
    return 0.35 + 0.10 * _sig((WL - 550) / 80) - 0.05 * _g(2335, 40)


def water(h=1.0, bottom=None, cdom=0.1, nap=0.0, bbp=0.01, eta=1.0, fe=0.0, chl=0.0, pabs=1.0, sz=45.0):
    """Lee et al. (1999) shallow water; returns 'surface reflectance' pi*Rrs + residual glint."""
    # particle absorption tied to backscatter: a_p(443) = pabs * bbp(555) (mineral: 1-5, white precipitate <0.5)
    a = (A_WATER + cdom * np.exp(-0.015 * (WL - 440)) + (nap + pabs * bbp) * np.exp(-0.011 * (WL - 443))
         + fe * (SOIL_K["hematite"] + SOIL_K["goethite"]) / 42.0
         + chl * (0.06 * _g(440, 35) + 0.025 * _g(675, 15) + 0.004))
    bbw = 0.5 * 0.00288 * (WL / 500.0) ** -4.32
    bb = bbw + bbp * (555.0 / WL) ** eta
    kap = a + bb
    u = bb / kap
    cw = np.cos(np.radians(np.degrees(np.arcsin(np.sin(np.radians(sz)) / 1.34))))
    rdp = (0.084 + 0.17 * u) * u
    duc = 1.03 * np.sqrt(1 + 2.4 * u)
    dub = 1.04 * np.sqrt(1 + 5.4 * u)
    if bottom is None:
        bottom = np.zeros_like(WL)
    rrs = rdp * (1 - np.exp(-(1 / cw + duc) * kap * h)) + bottom / np.pi * np.exp(-(1 / cw + dub) * kap * h)
    Rrs = 0.52 * rrs / (1 - 1.7 * rrs)
    return np.clip(np.pi * Rrs + 0.006, 0, 1)
