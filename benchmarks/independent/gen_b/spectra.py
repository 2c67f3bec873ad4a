"""Band-integrated material spectra for generator B (physics-based).

Everything is reduced to the six Sentinel-2 bands BANDS through Gaussian approximations of the
Sentinel-2A spectral response functions (centre / FWHM, nm): B02 492/66, B03 560/36, B04 665/31,
B08 833/106, B11 1614/91, B12 2202/175.

Sources of the material spectra (see README.md for ranges):
- canopy: PROSPECT-5 + 4SAIL (package `prosail`), run per scene at the scene's sun zenith;
- soil / spoil / sand bars: measured ICRAF-ISRIC soil spectra shipped with `earthlib`;
- roofs (metal), thatch (npv / litter), gravel: `earthlib` ASD spectra;
- water: own semi-analytic shallow-water model (water.py);
- plastic liners / tarps: hand-set band values (README.md says where they come from).
"""
from __future__ import annotations

import functools
import logging

import numpy as np

log = logging.getLogger(__name__)

BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
CENTRE = np.array([492.0, 560.0, 665.0, 833.0, 1614.0, 2202.0])
FWHM = np.array([66.0, 36.0, 31.0, 106.0, 91.0, 175.0])


def srf_weights(wl_nm: np.ndarray) -> np.ndarray:
    """(6, len(wl)) normalised Gaussian SRF weights on the sample wavelengths wl_nm."""
    sig = FWHM / 2.3548
    w = np.exp(-0.5 * ((wl_nm[None, :] - CENTRE[:, None]) / sig[:, None]) ** 2)
    w[w < 1e-4] = 0.0
    return w / w.sum(axis=1, keepdims=True)


def to_bands(wl_nm: np.ndarray, spectra: np.ndarray) -> np.ndarray:
    """Integrate (..., len(wl)) spectra over the six SRFs -> (..., 6)."""
    return np.asarray(spectra) @ srf_weights(np.asarray(wl_nm, float)).T


# ---------------------------------------------------------------- canopy (PROSAIL)
LAI_GRID = np.array([0.4, 1.2, 2.5, 4.0, 6.0])
BROWN_GRID = np.array([0.0, 0.35, 0.9])


def canopy_table(rng: np.random.Generator, sun_zenith: float, dry: bool) -> np.ndarray:
    """(len(LAI_GRID), len(BROWN_GRID), 6) PROSAIL canopy reflectance table for one scene.

    Leaf biochemistry is drawn once per scene (a scene is one forest type under one sun); the
    brown-pigment axis carries the dry-season browning / deciduousness, the LAI axis the density.
    """
    import prosail  # lazy: numba import is slow

    wl = np.arange(400, 2501, dtype=float)
    W = srf_weights(wl)
    cab = rng.uniform(30, 55) if not dry else rng.uniform(22, 45)
    cw = rng.uniform(0.010, 0.020) if not dry else rng.uniform(0.006, 0.013)
    n = rng.uniform(1.4, 1.9)
    cm = rng.uniform(0.006, 0.012)
    ala = rng.uniform(45, 65)
    hspot = rng.uniform(0.05, 0.2)
    psi = rng.uniform(60, 140)
    out = np.empty((len(LAI_GRID), len(BROWN_GRID), 6))
    for i, lai in enumerate(LAI_GRID):
        for j, cb in enumerate(BROWN_GRID):
            cbrown = cb * (1.6 if dry else 1.0)
            r = prosail.run_prosail(n=n, cab=cab * (1 - 0.5 * cb), car=cab / 5, cbrown=cbrown,
                                    cw=cw * (1 - 0.6 * cb), cm=cm, lai=lai, lidfa=ala, hspot=hspot,
                                    tts=sun_zenith, tto=5.0, psi=psi, typelidf=2,
                                    rsoil=rng.uniform(0.6, 1.1), psoil=rng.uniform(0.5, 1.0))
            out[i, j] = W @ r
    return out


def canopy_lookup(table: np.ndarray, lai: np.ndarray, brown: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of the canopy table at per-pixel (lai, brown) -> (6, *shape)."""
    li = np.interp(lai, LAI_GRID, np.arange(len(LAI_GRID)))
    bi = np.interp(brown, BROWN_GRID, np.arange(len(BROWN_GRID)))
    i0 = np.minimum(li.astype(np.int32), len(LAI_GRID) - 2)
    j0 = np.minimum(bi.astype(np.int32), len(BROWN_GRID) - 2)
    fi = (li - i0).astype(np.float32)
    fj = (bi - j0).astype(np.float32)
    t = table.astype(np.float32)
    out = np.empty((6,) + lai.shape, np.float32)
    for b in range(6):
        tb = t[:, :, b]
        out[b] = ((tb[i0, j0] * (1 - fi) + tb[i0 + 1, j0] * fi) * (1 - fj)
                  + (tb[i0, j0 + 1] * (1 - fi) + tb[i0 + 1, j0 + 1] * fi) * fj)
    return out


# ---------------------------------------------------------------- earthlib libraries
@functools.lru_cache(maxsize=1)
def earthlib_bands() -> dict[str, np.ndarray]:
    """Band-integrated earthlib spectra grouped by LEVEL_3 type: {'soil': (n, 6), ...}.

    Falls back to a small Hapke-like parametric soil set if earthlib is unavailable.
    """
    try:
        import earthlib
        lib = earthlib.library
        wl = np.asarray(lib.sensor.band_centers, float) * 1000.0
        data = np.asarray(lib.data, float)
        meta = lib.metadata
        W = srf_weights(wl)
        bands = data @ W.T
        groups = {}
        for t in ("soil", "gravel", "metal", "npv", "litter", "road", "asphalt"):
            sel = (meta["LEVEL_3"] == t).to_numpy()
            if sel.any():
                groups[t] = bands[sel]
        if "soil" in groups and len(groups["soil"]) > 10:
            return groups
        raise RuntimeError("earthlib soil group missing")
    except Exception as exc:  # pragma: no cover - exercised only without earthlib
        log.warning("gen_b: earthlib unavailable (%s); using parametric soils", exc)
        return _parametric_library()


def _parametric_library() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    bright = rng.uniform(0.12, 0.45, 60)
    iron = rng.uniform(0.0, 1.0, 60)
    shape = np.array([0.55, 0.72, 0.95, 1.12, 1.35, 1.2])
    iron_abs = np.array([0.55, 0.75, 1.0, 1.0, 1.0, 1.0])
    soil = bright[:, None] * shape * (1 - iron[:, None] * (1 - iron_abs)) * 0.8
    return {"soil": soil, "gravel": soil[:5] * 1.1, "metal": np.full((3, 6), 0.35),
            "npv": soil[:3] * 0.9 + 0.05, "litter": soil[:3] * 0.8}


def soil_classes() -> dict[str, np.ndarray]:
    """Split the ICRAF-ISRIC soils by my own colour criteria (on the lab spectra).

    brightness = mean(B02, B03, B04); redness = (B04 - B02) / (B04 + B02).
    - 'laterite': redness >= 0.35 (iron-rich red/yellow-brown soils)
    - 'pale': brightness in the top third and redness < 0.35 (low-iron, kaolinitic-looking)
    - 'ordinary': the rest
    """
    s = earthlib_bands()["soil"]
    br = s[:, :3].mean(axis=1)
    red = (s[:, 2] - s[:, 0]) / (s[:, 2] + s[:, 0] + 1e-6)
    hi = br >= np.quantile(br, 0.66)
    lat = red >= 0.35
    pale = hi & ~lat
    out = {"laterite": s[lat], "pale": s[pale], "ordinary": s[~lat & ~pale], "all": s}
    for k, v in out.items():
        if len(v) == 0:
            out[k] = s
    return out


def draw(rng: np.random.Generator, group: np.ndarray, k: int = 2) -> np.ndarray:
    """A random convex mix of k members of a spectral group (6,)."""
    idx = rng.integers(0, len(group), k)
    w = rng.dirichlet(np.ones(k))
    return (w[:, None] * group[idx]).sum(axis=0)


# ---------------------------------------------------------------- plastics (hand-set)
# Band reflectance ranges (lo, hi) per band, from my reading of published HDPE / PVC / tarp spectra
# (USGS splib07 "Plastic_HDPE", blue polyethylene tarp and black plastic field spectra): white HDPE is
# bright and flat in the VNIR with C-H absorptions lowering 1.7 and 2.3 um; blue tarp pigment
# (phthalocyanine) absorbs red and is transparent in the NIR; black HDPE (carbon black) is dark and flat.
PLASTIC = {
    "white": (np.array([0.55, 0.58, 0.58, 0.60, 0.40, 0.25]), np.array([0.80, 0.82, 0.82, 0.85, 0.60, 0.45])),
    "blue": (np.array([0.16, 0.10, 0.03, 0.30, 0.22, 0.12]), np.array([0.30, 0.18, 0.08, 0.55, 0.40, 0.28])),
    "black": (np.array([0.025, 0.025, 0.025, 0.03, 0.03, 0.025]), np.array([0.06, 0.06, 0.06, 0.07, 0.07, 0.06])),
}


def plastic(rng: np.random.Generator, kind: str, weathering: float = 0.0) -> np.ndarray:
    lo, hi = PLASTIC[kind]
    v = lo + (hi - lo) * rng.uniform(0, 1) + rng.normal(0, 0.01, 6)
    # dust / weathering pulls the sheet toward a soil-like grey-brown
    dust = np.array([0.10, 0.13, 0.16, 0.22, 0.27, 0.22])
    return np.clip((1 - weathering) * v + weathering * dust, 0.01, 0.95)
