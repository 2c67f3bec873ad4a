"""Hand-set 6-band surface-reflectance ranges (B02 B03 B04 B08 B11 B12) for generator C.

Every value is set by hand from general remote-sensing knowledge of the spectral shapes (chlorophyll
absorption in blue/red, green peak, NIR plateau of leaves, leaf-water absorption in SWIR, iron-oxide
absorption below ~0.6 um in lateritic soil, kaolinite Al-OH absorption at ~2.2 um lowering B12 against
B11, strong NIR/SWIR absorption of water, bright flat white plastic, blue polyethylene tarps reflecting
blue and NIR). No spectral library file is read. Each entry is (mean spectrum, relative 1-sigma spread
between objects). The scene draws one multiplicative factor per material and band (scene level) and every
object draws its own factor on top (object level), so no material has one fixed colour.
"""
from __future__ import annotations

import numpy as np

BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
WAVELENGTH_UM = np.array([0.49, 0.56, 0.665, 0.842, 1.61, 2.19])

# name: ((B02, B03, B04, B08, B11, B12), relative spread)
MATERIALS: dict[str, tuple[tuple[float, ...], float]] = {
    # --- vegetation (sunlit canopy, nadir, dry season) ---
    "evergreen": ((0.025, 0.052, 0.028, 0.32, 0.165, 0.075), 0.10),
    "bamboo": ((0.032, 0.068, 0.036, 0.38, 0.205, 0.092), 0.10),
    "pine": ((0.022, 0.042, 0.024, 0.23, 0.120, 0.052), 0.10),
    "deciduous_dry": ((0.042, 0.066, 0.072, 0.26, 0.250, 0.145), 0.14),
    "grass_dry": ((0.058, 0.088, 0.110, 0.25, 0.315, 0.205), 0.14),
    "shrub_fallow": ((0.033, 0.064, 0.048, 0.33, 0.215, 0.108), 0.12),
    # --- swidden stages ---
    "burnt": ((0.038, 0.048, 0.058, 0.105, 0.145, 0.118), 0.18),
    "stubble": ((0.070, 0.098, 0.128, 0.225, 0.305, 0.225), 0.15),
    # --- non-mining bare surfaces (look-alikes) ---
    "sand_bar": ((0.105, 0.140, 0.170, 0.215, 0.280, 0.225), 0.15),
    "gravel_bar": ((0.085, 0.110, 0.130, 0.175, 0.230, 0.195), 0.15),
    "landslide": ((0.085, 0.125, 0.170, 0.235, 0.315, 0.250), 0.18),
    "dirt_road": ((0.080, 0.112, 0.145, 0.205, 0.285, 0.225), 0.15),
    "bare_village": ((0.075, 0.100, 0.125, 0.200, 0.270, 0.215), 0.15),
    "roof_metal_new": ((0.210, 0.225, 0.235, 0.255, 0.230, 0.195), 0.20),
    "roof_metal_rust": ((0.075, 0.090, 0.120, 0.185, 0.225, 0.185), 0.18),
    "roof_thatch": ((0.070, 0.098, 0.128, 0.225, 0.300, 0.225), 0.15),
    "river_water": ((0.045, 0.062, 0.050, 0.028, 0.010, 0.007), 0.25),
    # --- mining surfaces ---
    "laterite_spoil": ((0.080, 0.120, 0.185, 0.255, 0.335, 0.265), 0.16),
    "yellow_spoil": ((0.110, 0.160, 0.215, 0.280, 0.345, 0.275), 0.15),
    "kaolin_spoil": ((0.215, 0.265, 0.315, 0.385, 0.440, 0.310), 0.14),
    "wet_mud": ((0.065, 0.085, 0.105, 0.145, 0.150, 0.110), 0.18),
    "tarp_blue": ((0.200, 0.150, 0.075, 0.380, 0.290, 0.195), 0.18),
    "tarp_white": ((0.430, 0.455, 0.465, 0.490, 0.400, 0.300), 0.12),
    "tarp_black": ((0.035, 0.035, 0.035, 0.040, 0.045, 0.040), 0.20),
    # --- ponds (open water over liner or sediment) ---
    "pond_blue_lined": ((0.125, 0.105, 0.060, 0.055, 0.028, 0.018), 0.20),
    "pond_black_lined": ((0.030, 0.032, 0.030, 0.028, 0.018, 0.014), 0.20),
    "pond_white_lined": ((0.240, 0.265, 0.255, 0.185, 0.070, 0.045), 0.18),
    "pond_turquoise": ((0.095, 0.140, 0.100, 0.055, 0.020, 0.014), 0.20),
    "pond_milky": ((0.155, 0.185, 0.180, 0.115, 0.040, 0.028), 0.20),
    "pond_iron": ((0.060, 0.088, 0.130, 0.080, 0.030, 0.020), 0.20),
    "pond_muddy": ((0.070, 0.098, 0.112, 0.070, 0.025, 0.018), 0.20),
}

POND_TYPES = ("pond_blue_lined", "pond_black_lined", "pond_white_lined", "pond_turquoise",
              "pond_milky", "pond_iron", "pond_muddy")
POND_WEIGHTS = np.array([0.16, 0.10, 0.08, 0.18, 0.16, 0.14, 0.18])


class Palette:
    """Per-scene draw of every material: mean * scene factor (per band, correlated across bands)."""

    def __init__(self, rng: np.random.Generator, variant: str):
        self.rng = rng
        self.spec: dict[str, np.ndarray] = {}
        self.spread: dict[str, float] = {}
        for name, (mean, rel) in MATERIALS.items():
            m = np.asarray(mean, dtype=np.float64)
            # brightness factor shared by bands + small per-band shape jitter
            f = rng.lognormal(0.0, rel * 0.8) * rng.lognormal(0.0, rel * 0.35, size=6)
            self.spec[name] = m * f
            self.spread[name] = rel
        if variant == "pale":
            # drier canopy: less NIR, more red and SWIR in the vegetation; paler spoil overall
            for name in ("evergreen", "bamboo", "pine", "shrub_fallow"):
                self.spec[name] = self.spec[name] * np.array([1.12, 1.05, 1.25, 0.90, 1.12, 1.18])
            for name in ("deciduous_dry", "grass_dry"):
                self.spec[name] = self.spec[name] * np.array([1.08, 1.06, 1.12, 0.94, 1.06, 1.08])

    def obj(self, name: str, rng: np.random.Generator | None = None) -> np.ndarray:
        """One object's spectrum: the scene's material spectrum times an object factor."""
        r = rng if rng is not None else self.rng
        rel = self.spread[name]
        f = r.lognormal(0.0, rel * 0.6) * r.lognormal(0.0, rel * 0.25, size=6)
        return np.clip(self.spec[name] * f, 0.003, 0.9)

    def mix(self, a: str, b: str, w: float, rng: np.random.Generator | None = None) -> np.ndarray:
        return (1 - w) * self.obj(a, rng) + w * self.obj(b, rng)
