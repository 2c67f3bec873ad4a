"""Sentinel-2 L2A formation: imperfect terrain correction, residual haze + adjacency, PSF,
20 m SWIR simulation and resampling, band misregistration, gain/offset, noise, quantisation."""
import numpy as np
from scipy import ndimage as ndi

from . import terrain as T
from .spectra import CENTRES

# MSI SNR requirements at reference radiance (ESA S2 MPC / Drusch et al. 2012), per band
SNR = np.array([154, 168, 142, 174, 100, 100], float)
RHO_REF = np.array([0.12, 0.11, 0.09, 0.25, 0.12, 0.07])
SETTINGS = {  # terrain-correction strength, haze tau range, haze unevenness, gain sd, offset sd, noise x, misreg sd
    "base": (0.8, (0.03, 0.08), 0.3, 0.015, 0.002, 1.0, 0.08),
    "pale": (0.8, (0.03, 0.09), 0.3, 0.015, 0.002, 1.0, 0.08),
    "rough": (0.25, (0.12, 0.30), 0.9, 0.04, 0.006, 2.5, 0.2),
}


def _psf(a, sigma):
    return ndi.gaussian_filter(a, sigma, mode="nearest")


def observe(phys, L, aux, variant, rng, sky):
    k, (t0, t1), uneven, gsd, osd, nx, msd = SETTINGS[variant]
    n = phys.shape[1]
    zen = aux["zen"]
    # L2A terrain correction with a coarse (~90 m) DEM, no cast shadows: fine-scale shading remains
    dem_c = ndi.gaussian_filter(L["dem"], 3.0)
    cosi_c, nz_c = T.cos_incidence(dem_c, zen, aux["az"])
    x = np.empty_like(phys)
    for b in range(6):
        c = sky[b] * (1 + nz_c) / 2 + (1 - sky[b]) * cosi_c / np.cos(np.radians(zen))
        x[b] = phys[b] / np.maximum(1 + k * (c - 1), 0.25)
    # residual haze: additive path reflectance ~ tau * lambda^-1.4, multiplicative transmittance error,
    # adjacency blur of the surroundings
    tau = rng.uniform(t0, t1) * np.clip(1 + uneven * T.fractal(rng, (n, n), 3.5), 0.05, None)
    for b in range(6):
        tb = tau * (CENTRES[b] / 550.0) ** -1.4
        adj = 0.15 * np.minimum(tb, 1)
        x[b] = (1 - adj) * x[b] + adj * ndi.uniform_filter(x[b], min(n, 31), mode="reflect")
        x[b] = x[b] * np.exp(-0.25 * tb) + 0.09 * tb
    gain = rng.normal(1, gsd, 6)
    off = rng.normal(0, osd, 6)
    out = np.empty_like(x)
    pad = n % 2
    for b in range(6):
        xb = x[b]
        if b >= 4:      # native 20 m: area average, PSF, noise at 20 m, bilinear back to 10 m
            xe = np.pad(xb, ((0, pad), (0, pad)), mode="edge")
            m = xe.shape[0] // 2
            x20 = _psf(xe.reshape(m, 2, m, 2).mean((1, 3)), 0.5)
            x20 = _noisy(x20, b, nx, rng)
            r = (np.arange(n) - 0.5) / 2
            rr, cc = np.meshgrid(r, r, indexing="ij")
            dy, dx = rng.normal(0, msd / 2, 2)
            xb = ndi.map_coordinates(x20, [rr + dy, cc + dx], order=1, mode="nearest")
        else:
            xb = _noisy(_psf(xb, 0.5), b, nx, rng)
            xb = ndi.shift(xb, rng.normal(0, msd, 2), order=1, mode="nearest")
        out[b] = gain[b] * xb + off[b]
    out = np.clip(np.nan_to_num(out, nan=0.0), 0, 1)
    return (np.round(out * 1e4) / 1e4).astype(np.float32)


def _noisy(a, b, nx, rng):
    sd = nx * (RHO_REF[b] / SNR[b]) * np.sqrt(np.maximum(a, 0) / RHO_REF[b] + 0.05)
    return a + sd * rng.standard_normal(a.shape)
