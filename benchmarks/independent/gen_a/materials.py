"""Hand-set 6-band surface reflectance ranges (B02 B03 B04 B08 B11 B12), from general published
ranges for each cover type (see README.md, "Spectra").  Every material is drawn per scene and
per object: a shared position t in [0, 1] inside the (lo, hi) box plus a small per-band jitter and
a brightness factor, so objects differ in brightness and in shape of spectrum.
"""
import numpy as np

# name: (lo, hi) per band  -- B02, B03, B04, B08, B11, B12
SPECTRA = {
    # vegetation
    "evergreen":   ((0.018, 0.038, 0.016, 0.24, 0.12, 0.050), (0.035, 0.062, 0.035, 0.38, 0.18, 0.085)),
    "deciduous":   ((0.032, 0.055, 0.045, 0.20, 0.19, 0.100), (0.052, 0.082, 0.085, 0.30, 0.27, 0.165)),
    "grass_dry":   ((0.040, 0.065, 0.070, 0.22, 0.27, 0.160), (0.065, 0.095, 0.110, 0.32, 0.35, 0.230)),
    "grass_green": ((0.025, 0.055, 0.035, 0.30, 0.19, 0.090), (0.040, 0.080, 0.060, 0.42, 0.26, 0.140)),
    "shrub":       ((0.022, 0.045, 0.028, 0.26, 0.16, 0.075), (0.040, 0.070, 0.055, 0.36, 0.23, 0.120)),
    # soils / spoil
    "laterite":    ((0.055, 0.085, 0.140, 0.21, 0.30, 0.240), (0.090, 0.130, 0.220, 0.30, 0.42, 0.350)),
    "yellowbrown": ((0.075, 0.110, 0.160, 0.23, 0.32, 0.250), (0.115, 0.160, 0.220, 0.31, 0.41, 0.340)),
    "kaolin":      ((0.170, 0.240, 0.260, 0.32, 0.40, 0.290), (0.280, 0.360, 0.380, 0.45, 0.53, 0.420)),
    "ash_burn":    ((0.035, 0.045, 0.060, 0.10, 0.18, 0.140), (0.060, 0.080, 0.100, 0.18, 0.28, 0.220)),
    "slash_dry":   ((0.050, 0.075, 0.095, 0.20, 0.30, 0.210), (0.080, 0.110, 0.140, 0.28, 0.38, 0.280)),
    "rockscar":    ((0.080, 0.105, 0.130, 0.19, 0.27, 0.210), (0.140, 0.175, 0.220, 0.29, 0.38, 0.300)),
    "sand":        ((0.100, 0.140, 0.170, 0.22, 0.30, 0.240), (0.170, 0.210, 0.250, 0.31, 0.39, 0.320)),
    "gravel":      ((0.075, 0.095, 0.105, 0.15, 0.20, 0.160), (0.125, 0.145, 0.165, 0.23, 0.29, 0.230)),
    "mud_wet":     ((0.045, 0.065, 0.080, 0.10, 0.12, 0.080), (0.080, 0.105, 0.130, 0.17, 0.20, 0.150)),
    "dirt_road":   ((0.085, 0.115, 0.150, 0.21, 0.29, 0.240), (0.135, 0.170, 0.220, 0.30, 0.38, 0.320)),
    "asphalt":     ((0.055, 0.065, 0.075, 0.09, 0.11, 0.100), (0.090, 0.100, 0.110, 0.13, 0.16, 0.140)),
    # water
    "river":       ((0.035, 0.050, 0.035, 0.015, 0.004, 0.003), (0.070, 0.095, 0.085, 0.050, 0.015, 0.010)),
    "pond_turq":   ((0.055, 0.090, 0.045, 0.015, 0.004, 0.003), (0.100, 0.155, 0.090, 0.050, 0.015, 0.010)),
    "pond_milky":  ((0.110, 0.130, 0.120, 0.060, 0.015, 0.010), (0.210, 0.230, 0.220, 0.140, 0.040, 0.030)),
    "pond_iron":   ((0.035, 0.055, 0.085, 0.050, 0.012, 0.008), (0.070, 0.100, 0.160, 0.120, 0.040, 0.030)),
    "pond_muddy":  ((0.055, 0.085, 0.095, 0.060, 0.012, 0.008), (0.095, 0.135, 0.155, 0.120, 0.040, 0.025)),
    "pond_dark":   ((0.020, 0.030, 0.020, 0.008, 0.003, 0.002), (0.040, 0.050, 0.040, 0.025, 0.010, 0.008)),
    # plastics / roofs
    "plastic_blue":  ((0.120, 0.110, 0.050, 0.28, 0.16, 0.100), (0.230, 0.200, 0.120, 0.45, 0.27, 0.190)),
    "plastic_black": ((0.025, 0.025, 0.025, 0.030, 0.030, 0.025), (0.050, 0.050, 0.050, 0.060, 0.060, 0.050)),
    "plastic_white": ((0.420, 0.440, 0.440, 0.45, 0.36, 0.270), (0.650, 0.670, 0.670, 0.68, 0.55, 0.440)),
    "metal_new":   ((0.220, 0.240, 0.250, 0.27, 0.25, 0.210), (0.400, 0.420, 0.430, 0.45, 0.42, 0.360)),
    "metal_rust":  ((0.070, 0.090, 0.140, 0.19, 0.25, 0.220), (0.120, 0.140, 0.210, 0.27, 0.34, 0.300)),
    "metal_blue":  ((0.100, 0.100, 0.070, 0.12, 0.10, 0.080), (0.200, 0.170, 0.120, 0.22, 0.20, 0.170)),
    "thatch":      ((0.060, 0.090, 0.120, 0.20, 0.30, 0.220), (0.100, 0.135, 0.175, 0.28, 0.38, 0.300)),
}

POND_KINDS = ("pond_turq", "pond_milky", "pond_iron", "pond_muddy", "pond_dark",
              "plastic_blue", "plastic_black", "plastic_white")
POND_P = (0.18, 0.16, 0.12, 0.18, 0.08, 0.12, 0.10, 0.06)


def draw(rng, name, spread=1.0):
    """One 6-band spectrum for one object (or one scene) of material `name`."""
    lo, hi = (np.asarray(a, np.float32) for a in SPECTRA[name])
    t = rng.uniform(0.0, 1.0)
    t_b = np.clip(t + rng.normal(0.0, 0.08 * spread, 6), -0.1, 1.1)
    s = lo + (hi - lo) * t_b
    return (s * rng.uniform(1 - 0.06 * spread, 1 + 0.06 * spread)).astype(np.float32)


def scene_palette(rng, variant):
    """Per-scene centre spectra; objects are then drawn around them with `around`."""
    pal = {k: draw(rng, k) for k in SPECTRA}
    if variant == "pale":  # drier canopy: shift evergreen towards the browned canopy
        f = rng.uniform(0.25, 0.45)
        pal["evergreen"] = (1 - f) * pal["evergreen"] + f * pal["deciduous"]
        pal["grass_green"] = 0.5 * pal["grass_green"] + 0.5 * pal["grass_dry"]
    return pal


def around(rng, pal, name, rel=0.10):
    """Per-object spectrum near the scene's palette entry, with relative scatter `rel`."""
    s = pal[name] * rng.normal(1.0, rel * 0.25, 6) * rng.uniform(1 - rel, 1 + rel)
    return np.clip(s, 0.001, 0.95).astype(np.float32)
