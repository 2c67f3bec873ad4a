"""Mining sites: cleared / terraced hillside patches with spoil, pads, internal roads, tarps/sheds and
clusters of leaching / collection ponds laid out from real pool clusters.  Sites grow with age; ponds
appear as the site reaches them, and some later drain (label 1) or revegetate (label 0)."""
import numpy as np
from scipy import ndimage as ndi

from . import fields as F
from .layout import cluster
from .materials import POND_KINDS, POND_P, SPECTRA, around
from .world import FINE, FINE_M, _clip_window, rect


def _pick_centre(rng, w, N, taken, min_sep):
    n = w["slope"].shape[0]
    for _ in range(200):
        r, c = rng.integers(0, n, 2)
        s = np.rad2deg(w["slope"][r, c])
        if not (6 <= s <= 40) or w["occupied"][r * FINE, c * FINE]:
            continue
        if any(np.hypot(r * FINE - a, c * FINE - b) < min_sep for a, b in taken):
            continue
        return r * FINE + FINE // 2, c * FINE + FINE // 2
    return None


def make_site(rng, w, pal, variant, birth, taken):
    """Describe one site (all geometry drawn now; rendering depends on age)."""
    N = w["refl"].shape[1]
    area_ha = float(np.exp(rng.uniform(np.log(0.5), np.log(30))))
    area_ha = min(area_ha, 0.25 * (N * FINE_M) ** 2 / 1e4)
    rad = np.sqrt(area_ha * 1e4 / np.pi) / FINE_M                # fine px
    ctr = _pick_centre(rng, w, N, taken, rad * 1.5)
    if ctr is None:
        return None
    elong = rng.uniform(1.0, 2.2)
    r10, c10 = min(ctr[0] // FINE, w["slope"].shape[0] - 1), min(ctr[1] // FINE, w["slope"].shape[0] - 1)
    down = np.arctan2(np.sin(w["aspect"][r10, c10]), -np.cos(w["aspect"][r10, c10]))
    ang = down + rng.normal(0, 0.4)     # sites stretch down the slope (spoil runs downhill)
    # ponds (relative geometry of a real cluster)
    n_ponds_on = rng.random() < 0.85
    off, sq = cluster(rng, max_extent_m=2.0 * rad * FINE_M * max(elong, 1.0))
    off = off / FINE_M
    half = int(np.ceil(rad * max(elong, 1.0) * 1.4 + np.abs(off).max(initial=0) + 12))
    yy, xx = np.mgrid[-half: half + 1, -half: half + 1].astype(np.float32)
    u = (xx * np.cos(ang) + yy * np.sin(ang)) / (rad * elong)
    v = (-xx * np.sin(ang) + yy * np.cos(ang)) / (rad / elong)
    field = np.sqrt(u * u + v * v) + rng.uniform(0.2, 0.45) * F.fbm(rng, u.shape, beta=2.5)
    ponds = []
    if n_ponds_on:
        nn = np.full(len(off), 40.0 / FINE_M)
        if len(off) > 1:
            dd = np.hypot(*(off[:, None, :] - off[None, :, :]).transpose(2, 0, 1))
            dd[np.arange(len(off)), np.arange(len(off))] = 1e9
            nn = dd.min(1)
        for (dr, dc), is_sq, gap in zip(off, sq, nn):
            size_m = float(np.clip(np.exp(rng.normal(np.log(13), 0.5)), 5, 40))
            size = min(size_m / FINE_M, 0.85 * gap)
            size = max(size, 5 / FINE_M)
            kind = rng.choice(POND_KINDS, p=POND_P)
            pad = np.hypot(yy - dr, xx - dc) / (size * 0.5 + rng.uniform(2, 6) / FINE_M * 2)
            delay = rng.uniform(0.0, 0.9)   # pond (and its pad) appear once the site has grown to it
            field = np.minimum(field, delay + pad * 0.5)
            ponds.append(dict(r=float(dr), c=float(dc), size=size, sq=bool(is_sq), ang=rng.uniform(0, np.pi),
                              kind=kind, spec=around(rng, pal, kind, 0.2), depth=rng.uniform(0.7, 1.0),
                              end=int(rng.integers(2, 6)) if rng.random() < 0.3 else 99,
                              fate="drain" if rng.random() < 0.6 else "reveg"))
    if variant == "pale":
        soils = [("kaolin", 0.6), ("yellowbrown", 0.3), ("laterite", 0.1)]
    else:
        soils = [("laterite", 0.45), ("yellowbrown", 0.45), ("kaolin", 0.10)]
    names, p = zip(*soils)
    sa, sb = rng.choice(names, p=p), rng.choice(names, p=p)
    if variant == "pale" and rng.random() < 0.85:
        sa = "kaolin"          # pale sites: mostly whitish kaolinitic spoil
    tarps = [(rng.normal(0, rad / 2.5, 2), rng.uniform(2, 8) / FINE_M, rng.uniform(2, 6) / FINE_M,
              rng.choice(["plastic_blue", "plastic_white", "plastic_black", "metal_new", "metal_rust"]))
             for _ in range(rng.integers(0, 7))]
    lanes = [F.wander(rng, (0.0, 0.0), rng.uniform(0, 2 * np.pi), int(rad / 4) + 2, 4.0, 0.15, 1e9)
             for _ in range(rng.integers(0, 4))]
    # access road to the nearest point of an existing road (or off the scene edge)
    pts = np.concatenate(w["road_pts"]) if w["road_pts"] else np.zeros((0, 2))
    if len(pts):
        k = np.argmin(np.hypot(pts[:, 0] - ctr[0], pts[:, 1] - ctr[1]))
        tgt = pts[k]
    else:
        tgt = np.array([ctr[0], -10.0])
    dist = np.hypot(*(tgt - np.array(ctr)))
    toward = lambda r, c, h: np.arctan2(tgt[0] - r, tgt[1] - c)  # noqa: E731
    access = F.wander(rng, ctr, toward(*ctr, 0), int(dist / 6) + 2, 8.0, 0.3, 1e9, steer=toward, pull=0.3)
    k = np.argmin(np.hypot(access[:, 0] - tgt[0], access[:, 1] - tgt[1]))
    access = access[: k + 1]
    veg = F.fbm(rng, u.shape, beta=2.2)
    return dict(ctr=ctr, half=half, field=field.astype(np.float32), ponds=ponds, birth=birth,
                soil=(around(rng, pal, sa, 0.12), around(rng, pal, sb, 0.12)),
                mix=np.clip(0.5 + 0.4 * F.fbm(rng, u.shape, beta=2.4), 0, 1).astype(np.float32),
                terraced=rng.random() < 0.4, terr_h=rng.uniform(3, 8), veg=veg, veg_thr=rng.uniform(1.3, 2.2),
                tarps=tarps, lanes=lanes, access=access, grow=rng.uniform(0.1, 0.25),
                s0=rng.uniform(0.45, 0.75), road_spec=around(rng, pal, "dirt_road", 0.1),
                mud=around(rng, pal, "mud_wet", 0.15), regrow=around(rng, pal, "grass_green", 0.15),
                tex_seed=int(rng.integers(2 ** 31)))


def render_site(refl, fp, pond, flat, site, age, dem_f):
    """Paint one site at `age` (>= 0) into refl, OR its footprint and pond truth into fp / pond."""
    N = refl.shape[1]
    rng = np.random.default_rng(site["tex_seed"] + 7919 * age)
    s = min(1.0, site["s0"] + site["grow"] * age)
    half = site["half"]
    r, c = int(site["ctr"][0]), int(site["ctr"][1])
    # access road outside the site (label 0 outside the footprint)
    thin = np.zeros((N, N), bool)
    F.draw_path(thin, site["access"], radius=1)
    refl[:, thin] = site["road_spec"][:, None] * (1 + 0.06 * rng.standard_normal(int(thin.sum()),
                                                                                   dtype=np.float32))
    cl = _clip_window(site["field"].shape, r, c, half, N)
    if cl is None:
        return
    (wa, wb), (r0, c0) = cl
    field = site["field"][wa, wb]
    m = field < s
    m &= ~(site["veg"][wa, wb] > site["veg_thr"])        # residual vegetation islands
    lab, k = ndi.label(m)
    if k > 1:                                             # drop detached specks (< 0.1 ha)
        sizes = np.bincount(lab.ravel())
        keep = sizes >= 160
        keep[0] = False
        m = keep[lab]
    h, w = m.shape
    sub = refl[:, r0: r0 + h, c0: c0 + w]
    mix = site["mix"][wa, wb]
    A, B = site["soil"]
    spec = A[:, None, None] * mix + B[:, None, None] * (1 - mix)
    tex = 1 + 0.10 * rng.standard_normal((h, w), dtype=np.float32)
    if site["terraced"]:
        z = dem_f[r0: r0 + h, c0: c0 + w]
        tex = tex * (1 + 0.14 * np.sign(np.sin(2 * np.pi * z / site["terr_h"])))
    # fresh excavation near the centre is brighter, old spoil at the rim slightly darker
    tex = tex * (1.08 - 0.16 * np.clip(field / max(s, 1e-3), 0, 1))
    sub[:, m] = (spec * tex)[:, m]
    # internal lanes (mining roads inside the site are footprint)
    lane = np.zeros((h, w), bool)
    for pts in site["lanes"]:
        F.draw_path(lane, pts + np.array([half - wa.start, half - wb.start]), radius=1)
    lane &= m
    sub[:, lane] = site["road_spec"][:, None]
    fpw = fp[r0: r0 + h, c0: c0 + w]
    fpw |= m
    # tarps / sheds
    for off, a, b, kind in site["tarps"]:
        tm, th = rect(a, b, rng.uniform(0, np.pi))
        rr, cc = int(half + off[0] - wa.start), int(half + off[1] - wb.start)
        if th <= rr < h - th and th <= cc < w - th and m[rr, cc]:
            win = (slice(rr - th, rr + th + 1), slice(cc - th, cc + th + 1))
            lo, hi = (np.asarray(x, np.float32) for x in SPECTRA[kind])
            val = lo + (hi - lo) * rng.uniform(0, 1)
            view = sub[:, win[0], win[1]]
            view[:, tm] = val[:, None]
    # ponds
    pw = pond[r0: r0 + h, c0: c0 + w]
    fw = flat[r0: r0 + h, c0: c0 + w]
    for p in site["ponds"]:
        pr, pc = int(round(half + p["r"] - wa.start)), int(round(half + p["c"] - wb.start))
        if not (0 <= pr < h and 0 <= pc < w) or site["field"][half + int(p["r"]), half + int(p["c"])] >= s:
            continue   # site has not yet grown to this pond
        sz = p["size"]
        if p["sq"]:
            pm, ph = rect(sz, sz * rng.uniform(0.8, 1.25), p["ang"])
        else:
            ph = int(np.ceil(sz / 2)) + 1
            yy, xx = np.mgrid[-ph: ph + 1, -ph: ph + 1]
            pm = np.hypot(yy, xx) <= sz / 2
        a0, b0 = pr - ph, pc - ph
        ia, ib = max(0, -a0), max(0, -b0)
        ja, jb = min(pm.shape[0], h - a0), min(pm.shape[1], w - b0)
        if ja <= ia or jb <= ib:
            continue
        pm = pm[ia:ja, ib:jb]
        sl = (slice(a0 + ia, a0 + ja), slice(b0 + ib, b0 + jb))
        view = sub[:, sl[0], sl[1]]
        if age >= p["end"]:
            if p["fate"] == "drain":
                view[:, pm] = site["mud"][:, None] * (1 + 0.08 * rng.standard_normal(int(pm.sum()),
                                                                                     dtype=np.float32))
                fpw[sl][pm] = True
            else:
                view[:, pm] = site["regrow"][:, None] * (1 + 0.1 * rng.standard_normal(int(pm.sum()),
                                                                                        dtype=np.float32))
                fpw[sl][pm] = False
            continue
        # water with a slight depth/turbidity gradient; lined pools get a bright rim (berm / liner edge)
        rim = pm & ~_erode(pm)
        view[:, pm] = p["spec"][:, None] * (1 + 0.04 * rng.standard_normal(int(pm.sum()), dtype=np.float32))
        if p["kind"].startswith("pond") and rng.random() < 0.5:
            view[:, rim] = 0.5 * view[:, rim] + 0.5 * A[:, None]
        pw[sl] |= pm
        fpw[sl] |= pm
        fw[sl] |= pm


def _erode(m):
    out = m.copy()
    out[1:] &= m[:-1]
    out[:-1] &= m[1:]
    out[:, 1:] &= m[:, :-1]
    out[:, :-1] &= m[:, 1:]
    return out
