"""Per-class surface-reflectance distributions (Sentinel-2 L2A BOA, 0..1).

Bands: B02 B03 B04 B08 B11 B12.  Every land-cover OBJECT draws one mean spectrum
from its class distribution; every SCENE first shifts each class mean.  Spread is
log-normal: log r = log mu + s * z, with z correlated across bands as
    z = sqrt(a) * g + sqrt(1 - a) * e,   e ~ AR(1) over band index, rho = 0.6,
i.e. a shared brightness mode (weight a) plus smooth spectral-shape variation.
Numbers are a photo-interpreter's reading of L2A chips, checked against the
sources listed in README.md (USGS splib07, ECOSTRESS, NBR / LSWI literature,
S2 plastics studies) and against within-class spread measured on real S2 L1C
forest in /work/shared/data/eo-learn-s2-l1c-slovenia (NIR CV ~ 0.2 at 10 m).
"""
import numpy as np

BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
LAMBDA_UM = np.array([0.490, 0.560, 0.665, 0.842, 1.610, 2.190])

# name: (mean[6], object CV[6], scene CV (scalar, times object CV), a = brightness share)
_V = (0.14, 0.12, 0.16, 0.12, 0.13, 0.16)     # vegetation CVs
_S = (0.16, 0.15, 0.15, 0.13, 0.12, 0.13)     # soils / bare ground CVs
_W = (0.25, 0.25, 0.30, 0.45, 0.50, 0.50)     # water CVs (NIR/SWIR relative spread large)
CLASSES = {
    # --- vegetation (label 0) ---
    "forest_evergreen": ((0.022, 0.045, 0.028, 0.300, 0.150, 0.065), _V, 0.5, 0.6),
    "forest_semidec":   ((0.030, 0.052, 0.042, 0.255, 0.185, 0.090), _V, 0.6, 0.6),
    "bamboo":           ((0.027, 0.058, 0.034, 0.345, 0.175, 0.072), _V, 0.5, 0.6),
    "shrub_fallow":     ((0.030, 0.060, 0.042, 0.310, 0.195, 0.092), _V, 0.5, 0.5),
    "grass_ridge":      ((0.050, 0.078, 0.090, 0.240, 0.300, 0.190), _S, 0.6, 0.5),
    "young_fallow":     ((0.040, 0.070, 0.062, 0.280, 0.250, 0.140), _V, 0.6, 0.5),
    # --- bare / burnt / agricultural look-alikes (label 0) ---
    "swidden_burnt":    ((0.045, 0.055, 0.066, 0.095, 0.155, 0.125), (0.30,) * 6, 0.6, 0.8),
    "swidden_dry":      ((0.078, 0.105, 0.140, 0.230, 0.340, 0.255), _S, 0.6, 0.6),
    "field_harvested":  ((0.070, 0.095, 0.120, 0.220, 0.310, 0.230), _S, 0.6, 0.6),
    "paddy_wet":        ((0.050, 0.066, 0.060, 0.095, 0.060, 0.040), _W, 0.6, 0.5),
    "sand_bar":         ((0.115, 0.150, 0.180, 0.230, 0.300, 0.250), _S, 0.6, 0.7),
    "sand_wet":         ((0.070, 0.090, 0.105, 0.130, 0.130, 0.100), _S, 0.6, 0.7),
    "landslide_fresh":  ((0.092, 0.128, 0.172, 0.240, 0.320, 0.262), _S, 0.6, 0.7),
    "landslide_old":    ((0.055, 0.085, 0.095, 0.260, 0.260, 0.170), _S, 0.6, 0.5),
    "road_dirt":        ((0.095, 0.125, 0.160, 0.220, 0.300, 0.250), _S, 0.5, 0.7),
    "roof_metal":       ((0.220, 0.230, 0.235, 0.250, 0.230, 0.190), (0.30,) * 6, 0.5, 0.9),
    "roof_rust_thatch": ((0.080, 0.100, 0.140, 0.220, 0.300, 0.230), _S, 0.5, 0.6),
    "village_ground":   ((0.068, 0.090, 0.110, 0.220, 0.260, 0.190), _S, 0.5, 0.6),
    "river_water":      ((0.045, 0.065, 0.045, 0.025, 0.010, 0.007), _W, 0.7, 0.6),
    "natural_pond":     ((0.040, 0.070, 0.050, 0.045, 0.015, 0.010), _W, 0.6, 0.6),
    "quarry_rock":      ((0.160, 0.180, 0.195, 0.230, 0.280, 0.230), _S, 0.5, 0.8),
    # --- mining footprint (label 1) ---
    "spoil_laterite":   ((0.085, 0.120, 0.195, 0.270, 0.360, 0.290), _S, 0.6, 0.6),
    "spoil_yellow":     ((0.100, 0.145, 0.200, 0.270, 0.350, 0.290), _S, 0.6, 0.6),
    "spoil_kaolin":     ((0.200, 0.240, 0.280, 0.340, 0.440, 0.360), _S, 0.6, 0.7),
    "pad_compact":      ((0.110, 0.140, 0.175, 0.240, 0.330, 0.280), _S, 0.5, 0.7),
    "tarp_blue":        ((0.200, 0.160, 0.085, 0.150, 0.120, 0.090), (0.25,) * 6, 0.5, 0.7),
    "tarp_white":       ((0.450, 0.470, 0.470, 0.480, 0.380, 0.280), (0.18,) * 6, 0.5, 0.8),
    "tarp_black":       ((0.040, 0.040, 0.040, 0.045, 0.045, 0.040), (0.25,) * 6, 0.5, 0.9),
    "reveg":            ((0.045, 0.075, 0.070, 0.260, 0.250, 0.160), _V, 0.6, 0.5),
    # --- leaching pond contents (label 2) ---
    "pond_turquoise":   ((0.090, 0.140, 0.085, 0.045, 0.015, 0.010), _W, 0.6, 0.5),
    "pond_milky":       ((0.170, 0.190, 0.175, 0.110, 0.030, 0.020), _W, 0.6, 0.6),
    "pond_blue":        ((0.110, 0.105, 0.065, 0.040, 0.020, 0.015), _W, 0.6, 0.5),
    "pond_green":       ((0.045, 0.080, 0.055, 0.040, 0.012, 0.008), _W, 0.6, 0.5),
    "pond_redbrown":    ((0.050, 0.075, 0.105, 0.080, 0.025, 0.018), _W, 0.6, 0.5),
    "pond_muddy":       ((0.075, 0.105, 0.125, 0.110, 0.050, 0.035), _W, 0.6, 0.6),
    "pond_drained":     ((0.060, 0.070, 0.075, 0.085, 0.080, 0.065), _S, 0.6, 0.7),
}
NAMES = tuple(CLASSES)
ID = {n: i for i, n in enumerate(NAMES)}
MEAN = np.array([CLASSES[n][0] for n in NAMES], dtype=np.float64)
CV = np.array([CLASSES[n][1] for n in NAMES], dtype=np.float64)
SCENE_CV = np.array([CLASSES[n][2] for n in NAMES], dtype=np.float64)
BRIGHT = np.array([CLASSES[n][3] for n in NAMES], dtype=np.float64)

POND_WATER = ("pond_turquoise", "pond_milky", "pond_blue", "pond_green", "pond_redbrown",
              "pond_muddy")
FOREST = ("forest_evergreen", "forest_semidec", "bamboo", "shrub_fallow")
SPOIL = ("spoil_laterite", "spoil_yellow", "spoil_kaolin", "pad_compact")

_RHO = 0.6
_AR = np.array([[_RHO ** abs(i - j) for j in range(6)] for i in range(6)])
_L_AR = np.linalg.cholesky(_AR)


def correlated_normals(rng, n, a):
    """n x 6 standard normals with a shared brightness mode of weight a (array or scalar)."""
    a = np.broadcast_to(np.asarray(a, dtype=np.float64), (n,))[:, None]
    g = rng.standard_normal((n, 1))
    e = rng.standard_normal((n, 6)) @ _L_AR.T
    return np.sqrt(a) * g + np.sqrt(1.0 - a) * e


def class_means(variant, rng_scene, dryness):
    """Scene-level class means (n_class x 6) after the variant tweak and a scene draw."""
    mu = MEAN.copy()
    if variant == "pale":
        # kaolinitic / whitish spoil dominates; laterite and yellow spoil are bleached
        k = mu[ID["spoil_kaolin"]] * 1.15
        mu[ID["spoil_laterite"]] = 0.2 * mu[ID["spoil_laterite"]] + 0.8 * k
        mu[ID["spoil_yellow"]] = 0.15 * mu[ID["spoil_yellow"]] + 0.85 * k * (1.0, 1.0, 0.97, 0.97, 0.98, 1.0)
        mu[ID["pad_compact"]] = 0.3 * mu[ID["pad_compact"]] + 0.7 * k * 0.95
        mu[ID["spoil_kaolin"]] = k
    # dry-season canopy browning: move leaves toward senescent-grass spectra
    brown = MEAN[ID["grass_ridge"]]
    for n, w in (("forest_evergreen", 0.15), ("forest_semidec", 0.45), ("bamboo", 0.25),
                 ("shrub_fallow", 0.35), ("young_fallow", 0.45), ("reveg", 0.3)):
        mu[ID[n]] = (1 - w * dryness) * mu[ID[n]] + w * dryness * brown
    z = correlated_normals(rng_scene, len(NAMES), BRIGHT)
    return mu * np.exp(SCENE_CV[:, None] * CV * z)


def draw_objects(rng, cls_ids, mu_scene):
    """One mean spectrum per object (n_obj x 6) for class ids cls_ids."""
    cls_ids = np.asarray(cls_ids, dtype=np.int64)
    z = correlated_normals(rng, len(cls_ids), BRIGHT[cls_ids])
    z = np.clip(z, -2.5, 2.5)
    return np.clip(mu_scene[cls_ids] * np.exp(CV[cls_ids] * z), 0.002, 0.9)
