"""Material recipes: random physical parameters -> 6-band reflectance (via spectra.py).

Parameter ranges are from the literature cited in README (PROSPECT calibration ranges, tropical
LAI syntheses, soil iron-oxide contents of Ultisols/Oxisols, pond-water optical constituents).
"""
import numpy as np

from . import spectra as S

LAI_GRID = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
BROWN_GRID = np.array([0.0, 0.25, 0.5, 0.75, 1.0])

# vegetation types of the background layer
VEG = ("evergreen", "semidec", "bamboo", "grass", "shrub")
_VEG_P = {  # N, Cab, Cw, Cm, crown-shadow fraction at 45 deg sun
    "evergreen": (1.8, 50, 0.014, 0.0075, 0.42),
    "semidec": (1.7, 40, 0.012, 0.0065, 0.36),
    "bamboo": (1.5, 38, 0.011, 0.0050, 0.25),
    "grass": (1.4, 30, 0.009, 0.0045, 0.08),
    "shrub": (1.5, 42, 0.012, 0.0055, 0.18),
}


def soil_params(rng, family, role="pad", wet=0.0):
    """Randomised abundances for a soil family and role on the mine or a landslide."""
    u = rng.uniform
    if family == "red":
        p = dict(hem=u(.02, .06), goe=u(.01, .03), kao=u(.2, .45), org=u(.004, .02), grain=u(.9, 1.3))
    elif family == "yellow":
        p = dict(hem=u(.002, .012), goe=u(.03, .07), kao=u(.3, .5), org=u(.006, .025), grain=u(.9, 1.3))
    elif family == "pale":
        p = dict(hem=u(0, .004), goe=u(.003, .015), kao=u(.55, .9), org=u(0, .006), grain=u(.5, .9))
    elif family == "topsoil":
        p = dict(hem=u(.005, .02), goe=u(.01, .03), kao=u(.15, .3), org=u(.04, .1), grain=u(1., 1.4))
    else:   # river sand: quartz with thin coatings, coarse
        p = dict(hem=u(.001, .005), goe=u(.004, .012), kao=u(.02, .08), org=u(.002, .008), grain=u(1.2, 2.0))
    p["moist"] = u(.02, .08) + wet
    if role == "riser":      # fresh saprolite face: less iron and organic, more clay
        p["kao"] = min(0.95, p["kao"] + u(.05, .2))
        p["hem"] *= u(.5, .9)
        p["org"] *= 0.3
    elif role == "spoil":    # loose tipped material, partly leached, mixed with topsoil
        p["org"] += u(.005, .02)
        p["grain"] *= u(1.05, 1.3)
        p["moist"] += u(0, .06)
    elif role == "track":
        p["grain"] *= u(.8, .95)
        p["moist"] *= 0.5
    return p


def soil(rng, family, role="pad", wet=0.0):
    return S.to_bands(S.soil(**soil_params(rng, family, role, wet)))


def soil_spec(rng, family, role="pad", wet=0.0):
    return S.soil(**soil_params(rng, family, role, wet))


def litter_spec(rng):
    """Dense dry leaf litter / slash: senescent leaves in a thick layer over topsoil."""
    r, t = S.leaf(N=rng.uniform(1.8, 2.5), cab=rng.uniform(1, 6), car=2, brown=rng.uniform(.6, 1.5),
                  cw=rng.uniform(0.0005, 0.003), cm=rng.uniform(.006, .01))
    return S.canopy(r, t, rng.uniform(1.5, 3), soil_spec(rng, "topsoil"), shadow=0.15)


def veg_lut(rng, vtype, variant, season_dry):
    """LUT of canopy band reflectance over (LAI, brown-leaf fraction): shape (10, 5, 6), + shadow."""
    N, cab, cw, cm, sh = _VEG_P[vtype]
    jit = rng.uniform(0.9, 1.1, 4)
    dry = 1.0 - (0.25 if variant == "pale" else 0.0) - 0.1 * season_dry
    rg, tg = S.leaf(N=N * jit[0], cab=cab * jit[1], car=cab * jit[1] / 4.5, cw=cw * jit[2] * dry, cm=cm * jit[3])
    rb, tb = S.leaf(N=N * jit[0] + 0.3, cab=rng.uniform(2, 8), car=3, brown=rng.uniform(.5, 1.2),
                    cw=cw * 0.15, cm=cm * jit[3] * 1.1)
    bg = 0.6 * litter_spec(rng) + 0.4 * soil_spec(rng, "topsoil")
    out = np.empty((len(LAI_GRID), len(BROWN_GRID), 6))
    for j, fb in enumerate(BROWN_GRID):
        r, t = (1 - fb) * rg + fb * rb, (1 - fb) * tg + fb * tb
        for i, lai in enumerate(LAI_GRID):
            out[i, j] = S.to_bands(S.canopy(r, t, lai, bg, shadow=0.0))
    leaf_t = S.to_bands(0.5 * (tg + tb))
    return out, sh, leaf_t


def regrowth(rng, base_spec, cover):
    """Grass/shrub regrowth of partial cover on bare ground (spectral canopy over that ground)."""
    r, t = S.leaf(N=1.4, cab=rng.uniform(25, 40), car=8, brown=rng.uniform(0, .4), cw=.009, cm=.0045)
    return S.to_bands(S.canopy(r, t, cover * 3.0, base_spec, shadow=0.1))


def plastic(kind, rng, dirt=None):
    d = rng.uniform(0.0, 0.35) if dirt is None else dirt
    return S.to_bands((1 - d) * S.plastic(kind) + d * S.soil(hem=.02, goe=.02, kao=.4, org=.01, moist=.05))


def roof(rng):
    k = rng.choice(["zinc", "rust", "blue", "thatch"], p=[.45, .2, .15, .2])
    if k == "zinc":
        return S.to_bands(S.metal_roof(rng.uniform(0, .2)))
    if k == "rust":
        return S.to_bands(S.metal_roof(rng.uniform(.5, .9)))
    if k == "blue":
        return plastic("blue", rng, rng.uniform(0.1, 0.3)) * np.array([1, 1, 1, .6, .55, .5])
    return S.to_bands(litter_spec(rng))


def burn(rng, severity):
    """Burnt swidden: areal mix of char, white ash, scorched soil and unburnt slash."""
    fc = severity * rng.uniform(.45, .8)
    fa = severity * rng.uniform(.02, .12)
    fs = rng.uniform(.1, .35)
    rest = max(0.0, 1 - fc - fa - fs)
    spec = fc * S.char() + fa * S.ash() + fs * soil_spec(rng, "topsoil") + rest * litter_spec(rng)
    return S.to_bands(spec / (fc + fa + fs + rest))


POND_TYPES = ("turquoise", "milky", "blue", "green", "ironred", "muddy", "lowwater")


def pond_water(rng, kind, liner, sz):
    u = rng.uniform
    lin = {"blue": S.plastic("blue"), "white": S.plastic("white"), "black": S.plastic("black"),
           "mud": S.soil(hem=.02, goe=.03, kao=.4, org=.02, moist=.6)}[liner] * u(.5, .9)
    if kind == "turquoise":
        w = S.water(h=u(.4, 1.5), bottom=lin, bbp=u(.15, .6), eta=.5, cdom=u(.01, .08), pabs=u(.2, .6), sz=sz)
    elif kind == "milky":
        w = S.water(h=u(.8, 2), bottom=lin, bbp=u(.4, 1.3), eta=.2, cdom=.03, pabs=u(.15, .4), sz=sz)
    elif kind == "blue":
        w = S.water(h=u(.3, 1.2), bottom=S.plastic("blue") * u(.6, .9), bbp=u(.01, .08), cdom=.03, sz=sz)
    elif kind == "green":
        w = S.water(h=u(.8, 2), bottom=lin, bbp=u(.05, .3), chl=u(.4, 2), cdom=u(.2, .8), sz=sz)
    elif kind == "ironred":
        w = S.water(h=u(.5, 2), bottom=lin, bbp=u(.4, 1.5), fe=u(.8, 4), pabs=u(1, 2), cdom=.2, sz=sz)
    elif kind == "muddy":
        w = S.water(h=u(.5, 1.5), bottom=lin, bbp=u(.8, 2.5), nap=u(.5, 2), pabs=u(2, 4), cdom=.4, sz=sz)
    else:   # nearly drained: a few cm over the liner
        w = S.water(h=u(.03, .12), bottom=lin, bbp=u(.2, 1), nap=u(.2, 1), pabs=2, cdom=.3, sz=sz)
    return S.to_bands(w)


def river_water(rng, h, sz):
    return S.to_bands(S.water(h=h, bottom=soil_spec(rng, "sand", wet=.5), bbp=rng.uniform(.2, .9),
                              nap=rng.uniform(.2, 1), pabs=rng.uniform(2, 4), cdom=rng.uniform(.2, .6), sz=sz))
