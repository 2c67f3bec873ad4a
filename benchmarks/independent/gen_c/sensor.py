"""Terrain illumination, Sentinel-2-like aggregation/PSF/misregistration, residual atmosphere, noise, truth."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .landscape import F, Landscape
from .spectra import WAVELENGTH_UM
from .terrain import fractal, illumination, upsample

# fraction of surface irradiance that is diffuse sky light, per band (clear dry-season sky)
DIFFUSE = np.array([0.26, 0.21, 0.16, 0.10, 0.05, 0.03])


def season_params(variant: str, rng: np.random.Generator) -> dict:
    rough = variant == "rough"
    return {
        "sun_elev": rng.uniform(22, 35) if rough else rng.uniform(35, 55),
        "sun_az": rng.uniform(135, 165),
        "topo_k": rng.uniform(0.9, 1.0) if rough else rng.uniform(0.55, 0.9),  # residual after terrain correction
        "path550": rng.uniform(0.012, 0.035) if rough else rng.uniform(0.002, 0.012),
        "haze_var": rng.uniform(0.1, 0.3) if rough else rng.uniform(0.0, 0.12),
        "angstrom": rng.uniform(0.9, 1.8),
        "trans_loss": rng.uniform(0.01, 0.06) if rough else rng.uniform(0.0, 0.03),
        "adjacency": rng.uniform(0.08, 0.16) if rough else rng.uniform(0.03, 0.08),
        "psf_sigma": rng.uniform(0.3, 0.5),
        "misreg_sd": 0.15 if rough else 0.08,
        "gain_sd": 0.06 if rough else 0.02,
        "offset_sd": 0.008 if rough else 0.003,
        "noise_k": rng.uniform(1.8, 3.0) if rough else rng.uniform(0.8, 1.2),
    }


def _block(a: np.ndarray, f: int) -> np.ndarray:
    c, h, w = a.shape
    return a.reshape(c, h // f, f, w // f, f).mean((2, 4))


def observe(Rf: np.ndarray, pond: np.ndarray, foot: np.ndarray, L: Landscape, variant: str,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    size = L.size
    P = season_params(variant, rng)
    # truth from fine fractions
    pf = _block(pond[None].astype(np.float32), F)[0]
    ff = _block((foot | pond)[None].astype(np.float32), F)[0]
    y = np.zeros((size, size), np.uint8)
    y[ff >= 0.5] = 1
    y[pf >= 0.5] = 2
    # 10 m bands: area average; 20 m bands: area average at 20 m (edge-padded to an even size)
    r10 = _block(Rf[:4], F)
    pad = size % 2
    Rf20 = Rf[4:] if not pad else np.pad(Rf[4:], ((0, 0), (0, F), (0, F)), mode="edge")
    r20 = _block(Rf20, 2 * F)
    # illumination at 10 m (DEM resolution), residual after imperfect terrain correction
    cosi, lit = illumination(L.dem, P["sun_elev"], P["sun_az"])
    lit_s = ndi.gaussian_filter(lit.astype(np.float32), 0.7)
    cos_sz = np.sin(np.radians(P["sun_elev"]))
    svf = (1 + np.cos(L.slope)) / 2
    d = np.clip(DIFFUSE * (1 + 8 * P["path550"]), 0, 0.6)[:, None, None]
    topo = (1 - d) * (cosi * lit_s / cos_sz)[None] + d * svf[None]
    topo = 1 + P["topo_k"] * (topo - 1)
    r10 = r10 * topo[:4]
    t20 = _block(np.pad(topo[4:], ((0, 0), (0, pad), (0, pad)), mode="edge"), 2)
    r20 = r20 * t20
    # PSF blur and per-band misregistration
    out10 = np.empty_like(r10)
    for b in range(4):
        out10[b] = ndi.shift(ndi.gaussian_filter(r10[b], P["psf_sigma"]), rng.normal(0, P["misreg_sd"], 2),
                             order=1, mode="nearest")
    out20 = np.empty_like(r20)
    for b in range(2):
        out20[b] = ndi.shift(ndi.gaussian_filter(r20[b], P["psf_sigma"]), rng.normal(0, P["misreg_sd"] / 2, 2),
                             order=1, mode="nearest")
    gain = 1 + rng.normal(0, P["gain_sd"], 6)
    off = rng.normal(0, P["offset_sd"], 6)
    rel = WAVELENGTH_UM / 0.55
    haze = 1 + P["haze_var"] * fractal((size + pad, size + pad), 3.0, rng)
    bands = []
    for b in range(6):
        x = out10[b] if b < 4 else out20[b - 4]
        hz = haze[:size, :size] if b < 4 else haze[::2, ::2][: x.shape[0], : x.shape[1]]
        # adjacency: part of the signal comes from the ~300 m surroundings (blur in pixels of this grid)
        a = P["adjacency"] * rel[b] ** -1.0
        x = (1 - a) * x + a * ndi.gaussian_filter(x, 30 if b < 4 else 15, mode="reflect")
        x = x * (1 - P["trans_loss"] * rel[b] ** -P["angstrom"] * hz)
        x = x + P["path550"] * rel[b] ** -P["angstrom"] * hz
        x = x * gain[b] + off[b]
        x = x + rng.normal(0, 1, x.shape) * P["noise_k"] * (0.0008 + 0.006 * np.abs(x))
        if b >= 4:
            x = upsample(x, 2)[:size, :size]
        bands.append(x)
    xs = np.clip(np.round(np.stack(bands) * 10000) / 10000, 0, 1).astype(np.float32)
    return xs, y
