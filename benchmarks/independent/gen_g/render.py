"""World state across seasons, object painting, within-object texture and the sensor chain."""
import numpy as np
from scipy import ndimage

from . import sensor
from . import spectra as S
from .canvas import Frame, Registry, truth_from_fine
from .landscape import Landscape, _rng
from .mines import place_sites
from .terrain import illumination, noise

F_SUB = 3          # fine sub-pixels per 10 m pixel (3.33 m painting grid)
VARIANTS = ("base", "pale", "rough")

ASH = np.array([0.16, 0.17, 0.18, 0.20, 0.26, 0.22])       # white ash / grey burn residue
_ids = lambda names: np.array([S.ID[k] for k in names])
# texture amplitudes per class: canopy-crown (fine, 3-10 m) and mottle (~20 m)
AMP_CROWN = np.zeros((len(S.NAMES), 6))
AMP_MOTTLE = np.full((len(S.NAMES), 6), 0.05)
AMP_CROWN[_ids(["forest_evergreen", "forest_semidec"])] = (0.24, 0.22, 0.24, 0.10, 0.16, 0.20)
AMP_CROWN[_ids(["bamboo", "shrub_fallow"])] = (0.14, 0.12, 0.14, 0.08, 0.10, 0.12)
AMP_CROWN[_ids(["grass_ridge", "young_fallow", "reveg", "landslide_old"])] = 0.06
AMP_CROWN[_ids(list(S.SPOIL) + ["swidden_dry", "field_harvested", "landslide_fresh", "sand_bar",
                                "road_dirt", "village_ground", "quarry_rock"])] = 0.04
AMP_MOTTLE[_ids(list(S.SPOIL) + ["landslide_fresh", "sand_bar", "swidden_dry", "quarry_rock"])] = 0.09
WATERS = _ids(list(S.POND_WATER) + ["river_water", "natural_pond", "paddy_wet", "pond_drained"])
AMP_MOTTLE[WATERS] = 0.03
AMP_MOTTLE[_ids(["tarp_blue", "tarp_white", "tarp_black", "roof_metal"])] = 0.02
SPOIL_IDS = _ids(S.SPOIL)


class World:
    def __init__(self, seed, size):
        self.seed, self.n, self.f = int(seed), int(size), F_SUB
        self.reg = Registry()
        self.L = Landscape(self.seed, self.n, self.f, self.reg)
        self.sites, self.extra = [], []
        self.mu0 = None
        self.ill = None
        self.done = -1

    def advance(self, s):
        """Create what is new in season s (must be called for s = 0, 1, 2, ... in order)."""
        assert s == self.done + 1
        self.extra += self.L.season_items(s)
        self.sites += place_sites(self.L, s, self.sites)
        self.done = s

    def frame(self, s):
        L = self.L
        fr = Frame(L.cls.copy(), L.uid.copy(), np.zeros(L.cls.shape, np.uint8), L.flat.copy())
        for it in L.items + self.extra:
            fr.paint(it, s)
        per = [st.items(s) for st in self.sites]
        for bg, _ in per:
            for it in bg:
                fr.paint(it, s)
        for _, fg in per:
            for it in fg:
                fr.paint(it, s)
        return fr


def _textures(rng, F):
    w = rng.standard_normal((F, F)).astype(np.float32)
    crown = ndimage.gaussian_filter(w, 1.5)
    crown -= 0.6 * ndimage.uniform_filter(crown, 7)
    crown /= crown.std() + 1e-6
    mottle = noise(rng, (F, F), 6, order=1).astype(np.float32)
    mix = noise(rng, (F, F), 14, order=1).astype(np.float32)
    return np.clip(crown, -2.5, 2.5), mottle, mix


def render(world, s, variant):
    L, f, n, seed = world.L, world.f, world.n, world.seed
    vi = VARIANTS.index(variant)
    P = sensor.draw(_rng(seed, 51, vi, s), variant)
    P["dry"] = float(np.clip(P["dry"] + _rng(seed, 52, s).normal(0, 0.05), 0, 1))
    fr = world.frame(s)
    y = truth_from_fine(fr.label >= 1, fr.label == 2, f)
    # class means: scene draw (shared by variants and seasons) + small season shift
    mu = S.class_means(variant, _rng(seed, 41), P["dry"])
    zs = S.correlated_normals(_rng(seed, 42, s), len(S.NAMES), S.BRIGHT)
    mu = mu * np.exp(0.25 * S.SCENE_CV[:, None] * S.CV * zs)
    Z = world.reg.array()
    rc = np.array(world.reg.cls, dtype=np.int64)
    jit = 0.03 * _rng(seed, 43, s).standard_normal(Z.shape)
    E = np.exp(S.CV[rc] * Z + jit).astype(np.float32)             # per-object multiplier
    crown, mottle, mix = _textures(_rng(seed, 44, s), L.F)
    cls, uid = fr.cls, fr.uid
    refl = np.empty((6,) + cls.shape, np.float32)
    for b in range(6):
        tex = 1 + AMP_CROWN[:, b].astype(np.float32)[cls] * crown + \
            AMP_MOTTLE[:, b].astype(np.float32)[cls] * mottle
        refl[b] = mu[:, b].astype(np.float32)[cls] * E[uid, b] * np.clip(tex, 0.3, None)
    # sub-object mixing: regrowth on spoil, white ash on burnt swidden, wet edges on sand
    m = np.isin(cls, SPOIL_IDS)
    if m.any():
        v = np.clip(0.10 + 0.12 * mix[m], 0, 0.45)
        veg = mu[S.ID["young_fallow"]][:, None]
        refl[:, m] = (1 - v) * refl[:, m] + v * veg.astype(np.float32)
    m = cls == S.ID["swidden_burnt"]
    if m.any():
        a = np.clip(0.2 + 0.25 * mix[m], 0, 0.7)
        refl[:, m] = (1 - a) * refl[:, m] + a * ASH[:, None].astype(np.float32)
    # terrain illumination
    if world.ill is None or world.ill[0] != (variant, s):
        cosr, sky, sh = illumination(L.dem, P["sz"], P["az"], 45 if P["rough"] else 25)
        sh = ndimage.gaussian_filter(sh.astype(np.float32), 0.7)
        world.ill = ((variant, s), [ndimage.zoom(a, f, order=1) for a in (cosr, sky, sh)])
    cosr, sky, sh = world.ill[1]
    refl = sensor.illuminate(refl, cosr, sky, sh, fr.flat, P["k"])
    x = sensor.to_product(refl, f, P, _rng(seed, 53, vi, s))
    return x, y
