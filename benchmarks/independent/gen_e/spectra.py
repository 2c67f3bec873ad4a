"""Material spectra (B02 B03 B04 B08 B11 B12 surface reflectance).

Background materials come from REAL Sentinel-2 pixels (endmembers.npz, built by build_endmembers.py).
Mining materials (spoil, ponds, liners, tarps) have no real example here: hand-set from general remote-sensing
knowledge (see README for the reasoning and ranges), randomised per scene and per object.
"""
from __future__ import annotations

import os

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_TABLE: dict | None = None


def table() -> dict:
    global _TABLE
    if _TABLE is None:
        d = np.load(os.path.join(_HERE, "endmembers.npz"))
        _TABLE = {str(k): d[str(k)].astype(np.float32) for k in d["classes"]}
        _TABLE["_texture"] = d["forest_texture"].astype(np.float32)
    return _TABLE


def real(rng: np.random.Generator, cls: str, n: int = 1) -> np.ndarray:
    """n real spectra of class cls, shape (n, 6)."""
    s = table()[cls]
    return s[rng.integers(0, len(s), n)]


def real_sorted_pair(rng: np.random.Generator, cls: str) -> tuple[np.ndarray, np.ndarray]:
    """A darker and a brighter real spectrum of one class (by NIR+SWIR), for texture interpolation."""
    s = real(rng, cls, 8)
    o = np.argsort(s[:, 3] + s[:, 4])
    return s[o[1]], s[o[-2]]


# Hand-set spectra: (mean, relative per-object jitter). Order B02 B03 B04 B08 B11 B12.
HAND = {
    # mining spoil / cleared soil
    "laterite":     ([0.065, 0.095, 0.165, 0.235, 0.330, 0.270], 0.15),
    "yellowbrown":  ([0.095, 0.135, 0.185, 0.255, 0.340, 0.290], 0.15),
    "kaolin_pale":  ([0.200, 0.250, 0.290, 0.340, 0.410, 0.320], 0.12),
    "kaolin_white": ([0.290, 0.330, 0.360, 0.400, 0.450, 0.350], 0.10),
    "wet_spoil":    ([0.050, 0.065, 0.090, 0.140, 0.170, 0.130], 0.20),
    # leaching / collection ponds (water-filled)
    "pond_turquoise": ([0.085, 0.115, 0.065, 0.030, 0.010, 0.008], 0.25),
    "pond_milky":     ([0.140, 0.170, 0.160, 0.090, 0.025, 0.018], 0.25),
    "pond_iron":      ([0.050, 0.070, 0.105, 0.070, 0.020, 0.015], 0.25),
    "pond_muddy":     ([0.070, 0.090, 0.100, 0.080, 0.030, 0.022], 0.25),
    "pond_dark":      ([0.040, 0.050, 0.032, 0.015, 0.006, 0.005], 0.25),
    "pond_blue_liner":  ([0.160, 0.130, 0.070, 0.060, 0.030, 0.022], 0.25),
    "pond_black_liner": ([0.030, 0.030, 0.030, 0.030, 0.022, 0.016], 0.25),
    "pond_white_liner": ([0.250, 0.270, 0.260, 0.150, 0.050, 0.040], 0.20),
    # tarps, sheds, roofs
    "tarp_blue":    ([0.280, 0.200, 0.100, 0.350, 0.250, 0.180], 0.20),
    "tarp_white":   ([0.480, 0.500, 0.500, 0.530, 0.440, 0.340], 0.12),
    "metal_roof":   ([0.250, 0.270, 0.280, 0.300, 0.300, 0.260], 0.20),
    "rusty_roof":   ([0.100, 0.120, 0.160, 0.220, 0.280, 0.240], 0.20),
    "burnt":        ([0.035, 0.045, 0.055, 0.100, 0.150, 0.120], 0.25),
    "rock":         ([0.120, 0.140, 0.165, 0.215, 0.290, 0.245], 0.15),
}
POND_KINDS = ("pond_turquoise", "pond_milky", "pond_iron", "pond_muddy", "pond_dark",
              "pond_blue_liner", "pond_black_liner", "pond_white_liner")
POND_P = np.array([0.20, 0.17, 0.12, 0.15, 0.08, 0.12, 0.10, 0.06])


def hand(rng: np.random.Generator, name: str) -> np.ndarray:
    """One per-object draw: overall brightness scale (jitter) times a small per-band shape jitter."""
    mean, jit = HAND[name]
    m = np.asarray(mean, np.float32)
    scale = np.exp(rng.normal(0, jit))
    shape = np.exp(rng.normal(0, jit * 0.35, 6))
    return np.clip(m * scale * shape, 0.002, 0.95).astype(np.float32)


def mix(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    return ((1 - w) * a + w * b).astype(np.float32)


def forest_texture(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, n) multiplicative canopy texture at 10 m, mosaicked from REAL forest tiles (random flips / 90-degree
    turns), blended in log space with half-overlapping raised-cosine windows so there are no seams."""
    tiles = np.log(table()["_texture"])
    k = tiles.shape[-1]
    st = k // 2
    m = (n + k) // st + 1
    acc = np.zeros((m * st + k, m * st + k), np.float32)
    wsum = np.zeros_like(acc)
    h = np.sin(np.pi * (np.arange(k) + 0.5) / k) ** 2
    win = np.outer(h, h).astype(np.float32)
    for i in range(m):
        for j in range(m):
            t = tiles[rng.integers(len(tiles))]
            t = np.rot90(t, rng.integers(4))
            if rng.random() < 0.5:
                t = t[::-1]
            acc[i * st:i * st + k, j * st:j * st + k] += win * (t - t.mean())
            wsum[i * st:i * st + k, j * st:j * st + k] += win
    o = rng.integers(0, st, 2)
    f = (acc / np.maximum(wsum, 1e-6))[o[0]:o[0] + n, o[1]:o[1] + n]
    return np.exp(f * 1.3).astype(np.float32)  # x1.3 restores the spread lost by overlap averaging
