"""The static landscape (no mining): terrain, forest, grass, swidden, rivers, roads, villages, landslides,
painted at the fine resolution FINE_M (2.5 m)."""
import numpy as np
from scipy import ndimage as ndi
from skimage.draw import polygon as _poly

from . import fields as F
from .materials import around, draw

FINE = 4          # fine pixels per 10 m pixel -> 2.5 m
FINE_M = 10.0 / FINE


def _paint(refl, mask, spec, tex=None, alpha=None, r0=0, c0=0):
    """refl[:, window] = mix(refl, spec * tex, alpha) where mask (window at r0, c0)."""
    h, w = mask.shape
    sub = refl[:, r0: r0 + h, c0: c0 + w]
    m = mask[: sub.shape[1], : sub.shape[2]]
    val = spec[:, None]
    if tex is not None:
        val = val * tex[: sub.shape[1], : sub.shape[2]][m][None, :]
    if alpha is None:
        sub[:, m] = val
    else:
        a = alpha[: sub.shape[1], : sub.shape[2]][m][None, :]
        sub[:, m] = sub[:, m] * (1 - a) + val * a


def _clip_window(shape, r, c, half, full):
    """Clip a (2h+1)^2 window centred at (r, c) against a full x full grid -> slices."""
    r0, c0 = r - half, c - half
    a0, b0 = max(0, -r0), max(0, -c0)
    a1 = min(shape[0], full - r0)
    b1 = min(shape[1], full - c0)
    if a1 <= a0 or b1 <= b0:
        return None
    return (slice(a0, a1), slice(b0, b1)), (r0 + a0, c0 + b0)


def stamp(refl, mask_win, r, c, half, spec, tex_sd, rng, alpha=None, label=None):
    """Paint a local bool window centred at fine (r, c) with texture; OR into label mask if given."""
    full = refl.shape[1]
    cl = _clip_window(mask_win.shape, int(r), int(c), half, full)
    if cl is None:
        return
    (sa, sb), (r0, c0) = cl
    m = mask_win[sa, sb]
    tex = (1 + tex_sd * rng.standard_normal(m.shape)).astype(np.float32)
    al = None if alpha is None else alpha[sa, sb]
    _paint(refl, m, spec, tex, al, r0, c0)
    if label is not None:
        label[r0: r0 + m.shape[0], c0: c0 + m.shape[1]] |= m


def rect(h, w, angle):
    """Bool mask of a rotated h x w rectangle (fine px) centred in a square window; returns (mask, half)."""
    half = int(np.ceil(np.hypot(h, w) / 2)) + 1
    ca, sa = np.cos(angle), np.sin(angle)
    corners = np.array([[-h / 2, -w / 2], [-h / 2, w / 2], [h / 2, w / 2], [h / 2, -w / 2]])
    rr = corners[:, 0] * ca - corners[:, 1] * sa + half
    cc = corners[:, 0] * sa + corners[:, 1] * ca + half
    m = np.zeros((2 * half + 1, 2 * half + 1), bool)
    pr, pc = _poly(rr, cc, m.shape)
    m[pr, pc] = True
    if not m.any():
        m[half, half] = True
    return m, half


def build(rng, n, variant, pal):
    """Return dict: dem (n x n, 10 m), refl (6, nF, nF) static fine reflectance, masks used later."""
    rough = variant == "rough"
    N = n * FINE
    dem = F.terrain(rng, n, rough)
    # rivers (carved into the DEM first so they run in valleys)
    river_d = np.full((n, n), 1e6, np.float32)
    rivers = []
    for _ in range(rng.choice([0, 1, 1, 1, 2])):
        side = rng.integers(4)
        t = rng.uniform(0.15, 0.85) * n
        start, head = [((0, t), np.pi / 2), ((t, 0), 0.0), ((n - 1, t), -np.pi / 2), ((t, n - 1), np.pi)][side]
        pts = F.wander(rng, start, head + rng.normal(0, 0.3), 4 * n, 2.0, 0.22, n,
                       steer=lambda r, c, h, h0=head: h0, pull=0.04)
        d = F.dist_to_path(n, pts)
        wc = rng.uniform(20, 80) / 10.0  # channel width, 10 m px
        rivers.append((d, wc))
        river_d = np.minimum(river_d, d)
        dem = dem - rng.uniform(120, 300) * np.exp(-(d / rng.uniform(25, 60)) ** 2)
    slope, aspect, _, _ = F.slope_aspect(dem)
    dem_n = (dem - dem.min()) / (np.ptp(dem) + 1e-9)

    # ---- forest: evergreen / deciduous (dry-season browned) mix, crown texture, density
    dec_share = rng.uniform(0.10, 0.30) if variant != "pale" else rng.uniform(0.30, 0.55)
    south = np.cos(aspect - np.pi) * np.sin(slope)  # sunny south-facing slopes dry out first
    wd = F.fbm(rng, (n, n), beta=2.8) + 1.2 * south - 0.8 * dem_n
    thr = np.quantile(wd, 1 - dec_share)
    w_dec = F.up(np.clip((wd - thr) / 0.6 + 0.5, 0, 1), FINE)
    E = around(rng, pal, "evergreen", 0.05)
    D = around(rng, pal, "deciduous", 0.05)
    crown = ndi.gaussian_filter(rng.standard_normal((2 * n, 2 * n)).astype(np.float32), 0.8)
    crown = F.up(crown / (crown.std() + 1e-9), 2)
    refl = (E[:, None, None] * (1 - w_dec) + D[:, None, None] * w_dec).astype(np.float32)
    ctex = np.array([0.22, 0.20, 0.22, 0.14, 0.18, 0.20], np.float32)
    refl *= 1 + ctex[:, None, None] * crown[None]
    # canopy density: open patches let grass/shrub through
    dens = F.up(F.fbm(rng, (n, n), beta=2.4), FINE)
    gap = np.clip((-dens - rng.uniform(0.8, 1.4)) * 1.5, 0, 0.7)
    S = around(rng, pal, "shrub", 0.08)
    refl = refl * (1 - gap) + S[:, None, None] * gap

    # ---- ridge-top and slope grassland
    g = dem_n + 0.5 * F.fbm(rng, (n, n), beta=2.6)
    gshare = rng.uniform(0.0, 0.12)
    gmask = F.up((g > np.quantile(g, 1 - gshare)).astype(np.float32), FINE) > 0.5 if gshare > 0.005 else None
    if gmask is not None:
        G1, G2 = around(rng, pal, "grass_dry", 0.08), around(rng, pal, "grass_green", 0.08)
        mix = F.up(np.clip(F.fbm(rng, (n, n), beta=2.2) * 0.3 + 0.5, 0, 1), FINE)
        spec = G1[:, None, None] * mix + G2[:, None, None] * (1 - mix)
        tex = 1 + 0.08 * crown
        refl[:, gmask] = (spec * tex)[:, gmask]

    occupied = np.zeros((N, N), bool)   # where mining sites must not be placed
    flat = np.zeros((N, N), bool)       # flat water surfaces (no terrain shading)
    # ---- rivers: water + dry-season sand / gravel bars
    for d, wc in rivers:
        df = F.up(d, FINE) * FINE       # fine px distance
        half_c = wc * FINE / 2
        ww = rng.uniform(0.35, 0.8)
        bn = F.up(F.fbm(rng, (n, n), beta=2.0), FINE)
        water = df < half_c * ww * (1 + 0.25 * bn)
        bars = (df < half_c * (1.25 + 0.6 * bn)) & ~water
        Wt = around(rng, pal, "river", 0.15)
        Sb, Gv = around(rng, pal, "sand", 0.1), around(rng, pal, "gravel", 0.1)
        bmix = np.clip(F.up(F.fbm(rng, (n, n), beta=1.8), FINE) * 0.5 + 0.5, 0, 1)
        bspec = Sb[:, None, None] * bmix + Gv[:, None, None] * (1 - bmix)
        refl[:, bars] = bspec[:, bars] * (1 + 0.06 * rng.standard_normal(int(bars.sum()), dtype=np.float32))
        refl[:, water] = Wt[:, None] * (1 + 0.05 * bn[water])[None]
        occupied |= df < half_c * 2 + 8 * FINE
        flat |= water

    # ---- roads: contour-following dirt tracks (and rarely a paved road)
    gy, gx = np.gradient(dem)
    def contour(r, c, h):
        ri, ci = int(np.clip(r / FINE, 0, n - 1)), int(np.clip(c / FINE, 0, n - 1))
        a = np.arctan2(gx[ri, ci], -gy[ri, ci])  # along-contour direction
        return a if np.cos(a - h) >= 0 else a + np.pi
    roads = np.zeros((N, N), bool)
    road_pts = []
    for k in range(rng.integers(1, 4) + (n >= 256)):
        start = (rng.uniform(0, N), rng.uniform(0, N))
        pts = F.wander(rng, start, rng.uniform(0, 2 * np.pi), int(3 * N / 16), 8.0, 0.08, N, steer=contour, pull=0.3)
        r_mask = np.zeros((N, N), bool)
        F.draw_path(r_mask, pts, radius=1)
        kind = "asphalt" if (k == 0 and rng.random() < 0.15) else "dirt_road"
        _paint(refl, r_mask, around(rng, pal, kind, 0.1),
               (1 + 0.06 * rng.standard_normal((N, N), dtype=np.float32)))
        roads |= r_mask
        road_pts.append(pts)

    # ---- swidden fields / fallows (look-alike clearings, label 0)
    for _ in range(rng.poisson(6 * (n / 512) ** 2) + rng.integers(0, 2)):
        area_ha = np.exp(rng.uniform(np.log(0.5), np.log(8)))
        rad = np.sqrt(area_ha * 1e4 / np.pi) / FINE_M
        m, half = F.blob(rng, rad, elong=rng.uniform(1, 1.8), roughness=0.3)
        r, c = rng.integers(0, N, 2)
        state = rng.choice(["ash_burn", "slash_dry", "yellowbrown", "grass_green", "shrub", "grass_dry"],
                           p=[0.15, 0.2, 0.15, 0.2, 0.15, 0.15])
        cover = np.clip(rng.uniform(0.5, 1.0) + 0.2 * F.fbm(rng, m.shape, beta=2.0), 0, 1).astype(np.float32)
        stamp(refl, m, r, c, half, around(rng, pal, state, 0.12), 0.08, rng, alpha=cover)

    # ---- landslide scars: downslope streaks on steep slopes
    for _ in range(rng.poisson(1.5 * (n / 512) ** 2)):
        steep = np.argwhere(slope > np.deg2rad(28))
        if len(steep) == 0:
            break
        r, c = steep[rng.integers(len(steep))]
        L = rng.uniform(60, 300) / FINE_M
        wdt = rng.uniform(12, 50) / FINE_M
        ang = np.arctan2(np.sin(aspect[r, c]), -np.cos(aspect[r, c]))  # downslope (row, col) angle
        m, half = F.blob(rng, L / 2, elong=np.sqrt(L / wdt), roughness=0.25, angle=ang)
        rc = (r * FINE + np.cos(ang) * L / 2, c * FINE + np.sin(ang) * L / 2)
        mat = "rockscar" if rng.random() < 0.6 else "laterite"
        stamp(refl, m, rc[0], rc[1], half, around(rng, pal, mat, 0.12), 0.12, rng)

    # ---- villages: roofs (metal / thatch) on packed ground near a road
    for _ in range(rng.poisson(1.2 * (n / 512) ** 2)):
        pts = road_pts[rng.integers(len(road_pts))]
        inside = pts[(pts[:, 0] > 0) & (pts[:, 0] < N) & (pts[:, 1] > 0) & (pts[:, 1] < N)]
        if len(inside) == 0:
            continue
        r, c = inside[rng.integers(len(inside))]
        R = rng.uniform(40, 140) / FINE_M
        m, half = F.blob(rng, R, elong=rng.uniform(1, 1.6), roughness=0.3)
        stamp(refl, m, r, c, half, around(rng, pal, "dirt_road", 0.12), 0.1, rng,
              alpha=np.full(m.shape, rng.uniform(0.4, 0.8), np.float32))
        roofmix = rng.dirichlet([2, 2, 1, 2])
        for _b in range(rng.integers(5, 40)):
            hh, ww = rng.uniform(5, 14) / FINE_M, rng.uniform(4, 9) / FINE_M
            bm, bh = rect(hh, ww, rng.uniform(0, np.pi))
            off = rng.normal(0, R / 2.2, 2)
            kind = rng.choice(["metal_new", "metal_rust", "metal_blue", "thatch"], p=roofmix)
            stamp(refl, bm, r + off[0], c + off[1], bh, around(rng, pal, kind, 0.15), 0.05, rng)
        cl = _clip_window(m.shape, int(r), int(c), half, N)
        if cl is not None:
            (sa, sb), (r0, c0) = cl
            occupied[r0: r0 + m[sa, sb].shape[0], c0: c0 + m[sa, sb].shape[1]] |= m[sa, sb]

    return dict(dem=dem, slope=slope, aspect=aspect, refl=refl, occupied=occupied, flat=flat,
                roads=roads, road_pts=road_pts, crown=crown)
