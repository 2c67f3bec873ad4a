"""Deterministic Sentinel-2 L2A-like scenes of a small Kachin-like AOI with growing rare-earth mines.

Pure (numpy/scipy, seeded ``numpy.random.Generator`` only, no file I/O apart from the packaged spectral
table). :func:`simulate` lays out the landscape, the mining sites and their per-season truth;
:func:`render_acquisition` renders one acquisition's digital numbers (10 m bands at 10 m, B11/B12 and SCL
at 20 m); :func:`training_pair` renders a random clear-sky composite-like chip and its labels for model
training. The writer of COGs and STAC items is :mod:`geo.sim.demo`.

Truth classes: 0 background, 1 cleared land (incl. tarps and regrowing land with vegetation fraction
≤ 0.5), 2 leaching pond. ``site_count`` of a season counts sites with working ponds.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from geo.bands import ANALYSIS_BANDS
from geo.errors import ConfigError
from geo.grid import GeoGrid
from geo.periods import Period, dry_season
from geo.sim.atmos import (all_2x2, apply_atmosphere, draw_atmosphere, mean_2x2, mode_2x2, render_surface,
                                scene_scl, surface_scl, to_dn)
from geo.sim.layout import (Landscape, Site, hillshade, make_landscape, make_site_shape, site_state,
                                 smooth_noise)
from geo.sim.spectra import Spectra, load_spectra

#: Scenes on/after this date carry processing baseline 04.00 and the +1000 DN offset.
BASELINE_04_DATE = dt.date(2022, 1, 25)
#: Sentinel-2C took over from Sentinel-2A on this date.
S2C_DATE = dt.date(2025, 1, 21)
_REVISIT_REF = dt.date(2019, 11, 3)
_LAT_DEG = 25.65


@dataclass(frozen=True)
class SimConfig:
    """Scene-simulator settings. Distances on the 10 m truth grid are in pixels unless the name says m.

    Attributes:
        seed: master seed; everything is a deterministic function of the config.
        width, height: truth-grid size in 10 m pixels (even).
        origin_x, origin_y: UTM easting of the truth grid's west edge and northing of its north edge (m).
        epsg: CRS of every raster (UTM 47N).
        margin: scene pixels beyond the truth grid on each side (even), as real tiles extend past an AOI.
        start_year, end_year: first and last dry season (season ``Y`` = Nov Y – Apr Y+1).
        acquisitions_per_season: acquisitions per season (each season draws this or one fewer).
        initial_sites: sites working in the first season.
        new_sites_per_season: sites opened in each later season.
        abandoned_sites: first-season sites abandoned mid-series (ponds gone, land regrows).
        site_gap_m: minimum edge-to-edge distance between sites' largest footprints (m).
        river_clearance_m: minimum distance from a site footprint to river water or bars (m).
        cloud_amount: mean cloud fraction of an acquisition (0–1).
        clear_probability: probability that an acquisition is cloud-free (0–1).
        cirrus_probability: probability of thin cirrus in an acquisition (0–1).
        haze: largest residual haze path reflectance in B02 (reflectance units).
        noise: sensor noise standard deviation (reflectance units).
        phenology: scale of dry-season vegetation browning (0 = none, 1 = default).
        nodata_probability: probability that an acquisition is cut by a swath edge (0–1).
    """

    seed: int = 7
    width: int = 400
    height: int = 400
    origin_x: float = 431000.0
    origin_y: float = 2840000.0
    epsg: int = 32647
    margin: int = 40
    start_year: int = 2019
    end_year: int = 2024
    acquisitions_per_season: int = 5
    initial_sites: int = 10
    new_sites_per_season: int = 2
    abandoned_sites: int = 4
    site_gap_m: float = 400.0
    river_clearance_m: float = 200.0
    cloud_amount: float = 0.15
    clear_probability: float = 0.4
    cirrus_probability: float = 0.2
    haze: float = 0.02
    noise: float = 0.003
    phenology: float = 1.0
    nodata_probability: float = 0.1

    def __post_init__(self) -> None:
        for name in ("width", "height", "margin"):
            v = getattr(self, name)
            if v < 0 or v % 2:
                raise ConfigError(f"SimConfig.{name}={v} must be a non-negative even number of 10 m pixels "
                                  "(20 m bands need whole 2x2 blocks)")
        if self.width < 100 or self.height < 100:
            raise ConfigError(f"SimConfig truth grid {self.width}x{self.height} px is too small; use >= 100 px")
        if self.end_year < self.start_year or self.end_year - self.start_year < 2:
            raise ConfigError(f"SimConfig seasons {self.start_year}..{self.end_year}: need at least 3 seasons, "
                              "end_year >= start_year + 2")
        if self.acquisitions_per_season < 1:
            raise ConfigError("SimConfig.acquisitions_per_season must be >= 1")
        if self.abandoned_sites > self.initial_sites:
            raise ConfigError("SimConfig.abandoned_sites cannot exceed initial_sites")
        for name in ("cloud_amount", "clear_probability", "cirrus_probability", "nodata_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"SimConfig.{name}={getattr(self, name)} must lie in 0-1")

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class AcquisitionPlan:
    """When and how one acquisition was taken (everything except pixels).

    Attributes:
        index: position in the whole series; season: season index; date: acquisition day.
        datetime: UTC time of the overpass; platform: ``sentinel-2a|b|c``.
        baseline: L2A processing baseline; offset_dn: 1000 for baseline ≥ 04.00 else 0.
        cloud_fraction: fraction of the scene under cloud (0–1); sun angles in degrees.
    """

    index: int
    season: int
    date: dt.date
    datetime: dt.datetime
    platform: str
    baseline: str
    offset_dn: int
    cloud_fraction: float
    sun_azimuth: float
    sun_elevation: float

    @property
    def phase(self) -> float:
        """Position in the dry season, 0 (1 Nov) to 1 (30 Apr)."""
        start = dt.date(self.date.year if self.date.month >= 11 else self.date.year - 1, 11, 1)
        return min(1.0, (self.date - start).days / 181.0)


@dataclass(frozen=True)
class SeasonTruth:
    """Truth of one season on the truth grid: ``classes`` uint8 (0/1/2), areas in m², active site ids."""

    period: Period
    classes: np.ndarray
    pond_area_m2: float
    cleared_area_m2: float
    site_count: int
    site_area_m2: dict[int, float]

    @property
    def footprint_area_m2(self) -> float:
        return self.pond_area_m2 + self.cleared_area_m2


@dataclass(frozen=True)
class Scenario:
    """Everything :func:`simulate` decided: grids, periods, landscape, sites, truth and acquisitions."""

    config: SimConfig
    scene_grid: GeoGrid
    truth_grid: GeoGrid
    periods: tuple[Period, ...]
    landscape: Landscape
    sites: tuple[Site, ...]
    truth: tuple[SeasonTruth, ...]
    plans: tuple[AcquisitionPlan, ...]
    spectra: Spectra = field(repr=False)

    @property
    def truth_window(self) -> tuple[slice, slice]:
        m = self.config.margin
        return slice(m, m + self.config.height), slice(m, m + self.config.width)


@dataclass(frozen=True)
class Acquisition:
    """One rendered acquisition.

    Attributes:
        plan: its :class:`AcquisitionPlan`.
        dn: uint16 digital numbers per band id (B02 B03 B04 B08 at 10 m; B11 B12 at 20 m), 0 = no data.
        scl: uint8 SCL at 20 m (mode of the 10 m classes), 0 = no data.
        reflectance: float32 reflectance per band id before quantisation (same shapes as ``dn``).
        cloud, shadow: float32 10 m cloud opacity and shadow strength (0–1); valid: bool 10 m, True = has data.
    """

    plan: AcquisitionPlan
    dn: dict[str, np.ndarray]
    scl: np.ndarray
    reflectance: dict[str, np.ndarray]
    cloud: np.ndarray
    shadow: np.ndarray
    valid: np.ndarray


def sun_angles(when: dt.datetime, lat_deg: float = _LAT_DEG, lon_deg: float = 98.33) -> tuple[float, float]:
    """Approximate solar azimuth and elevation (degrees) at ``when`` (UTC)."""
    doy = when.timetuple().tm_yday
    decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365)
    solar_h = when.hour + when.minute / 60 + lon_deg / 15
    ha = math.radians(15 * (solar_h - 12))
    lat = math.radians(lat_deg)
    el = math.asin(math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(ha))
    az = math.atan2(math.sin(ha), math.cos(ha) * math.sin(lat) - math.tan(decl) * math.cos(lat)) + math.pi
    return math.degrees(az) % 360, math.degrees(el)


def baseline_for(date: dt.date) -> tuple[str, int]:
    """Processing baseline and DN offset of an L2A product from ``date``."""
    if date >= BASELINE_04_DATE:
        return "04.00", 1000
    return ("03.01" if date >= dt.date(2021, 6, 30) else "02.14"), 0


def plan_acquisitions(cfg: SimConfig, rng: np.random.Generator) -> tuple[AcquisitionPlan, ...]:
    """Acquisition dates on the 5-day constellation revisit, ``acquisitions_per_season`` (−0/−1) per season."""
    plans: list[AcquisitionPlan] = []
    for s, year in enumerate(range(cfg.start_year, cfg.end_year + 1)):
        period = dry_season(year)
        first = period.start + dt.timedelta(days=(-(period.start - _REVISIT_REF).days) % 5)
        slots = [first + dt.timedelta(days=5 * k) for k in range(((period.end - first).days // 5) + 1)]
        n = max(1, cfg.acquisitions_per_season - int(rng.integers(0, 2)))
        for d in sorted(rng.choice(slots, size=min(n, len(slots)), replace=False)):
            k = (d - _REVISIT_REF).days // 5
            platform = "sentinel-2b" if k % 2 else ("sentinel-2c" if d >= S2C_DATE else "sentinel-2a")
            when = dt.datetime(d.year, d.month, d.day, 4, 2, 0, tzinfo=dt.timezone.utc) + dt.timedelta(
                seconds=int(rng.integers(0, 240)))
            az, el = sun_angles(when)
            clear = rng.random() < cfg.clear_probability
            mean_cloudy = cfg.cloud_amount / max(1e-6, 1 - cfg.clear_probability)
            cf = 0.0 if clear else float(min(0.9, rng.exponential(mean_cloudy)))
            baseline, offset = baseline_for(d)
            plans.append(AcquisitionPlan(len(plans), s, d, when, platform, baseline, offset, cf, az, el))
    return tuple(plans)


def _place_sites(cfg: SimConfig, rng: np.random.Generator, land: Landscape) -> tuple[Site, ...]:
    n_seasons = cfg.end_year - cfg.start_year + 1
    starts = [-int(rng.integers(1, 5)) for _ in range(cfg.initial_sites)]
    starts += [s for s in range(1, n_seasons) for _ in range(cfg.new_sites_per_season)]
    order = np.argsort(starts, kind="stable")
    abandon: dict[int, int] = {}
    if cfg.abandoned_sites:
        seasons = np.round(np.linspace(2, max(2, n_seasons - 2), cfg.abandoned_sites)).astype(int)
        for i, a in zip(order[: cfg.abandoned_sites], seasons):
            abandon[int(i)] = int(a)
    gap = cfg.site_gap_m / 10.0
    clear_px = cfg.river_clearance_m / 10.0
    m = cfg.margin
    placed: list[tuple[float, float, float]] = []  # centre row, col, extent
    sites: list[Site] = []
    for i, start in enumerate(starts):
        for shrink in (1.0, 0.85, 0.7):
            r_max = float(rng.uniform(8.5, 11.5)) * shrink
            potential, ponds, tarps = make_site_shape(rng, r_max)
            half = potential.shape[0] // 2
            fp = potential < r_max
            fr, fc = np.nonzero(fp)
            ext = float(np.sqrt((fr - half) ** 2 + (fc - half) ** 2).max()) + 0.5
            lo_r, hi_r = m + 2 - fr.min(), m + cfg.height - 3 - fr.max()
            lo_c, hi_c = m + 2 - fc.min(), m + cfg.width - 3 - fc.max()
            # Tight packing: among valid random candidates take the one closest to the sites placed so far.
            best, best_slack = None, math.inf
            for _ in range(600):
                r0, c0 = int(rng.integers(lo_r, hi_r + 1)), int(rng.integers(lo_c, hi_c + 1))
                cr, cc = r0 + half, c0 + half
                slack = min((math.hypot(cr - pr, cc - pc) - ext - pe - gap for pr, pc, pe in placed), default=0.0)
                if slack < 0 or slack >= best_slack:
                    continue
                if land.river_dist[fr + r0, fc + c0].min() < clear_px or land.human_dist[fr + r0, fc + c0].min() < 6:
                    continue
                best, best_slack = (r0, c0), slack
            if best is None:
                continue
            r0, c0 = best
            cr, cc = r0 + half, c0 + half
            break
        else:
            raise ConfigError(f"only {len(sites)} of {len(starts)} mining sites fit {cfg.site_gap_m:.0f} m apart; "
                              "lower initial_sites/new_sites_per_season or enlarge width/height")
        placed.append((cr, cc, ext))
        growth = float(rng.uniform(0.4, 0.85))
        r0_ = max(float(rng.uniform(3.5, 5.0)), ponds[0].need if ponds else 0.0)
        noise = np.clip(rng.standard_normal(potential.shape) * 0.5
                        + make_noise_like(rng, potential.shape), -2, 2).astype(np.float32)
        sites.append(Site(i + 1, r0, c0, potential, start, abandon.get(i), min(r0_, r_max), growth, r_max,
                          ponds, tarps, noise))
    return tuple(sites)


def make_noise_like(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return smooth_noise(rng, shape, 4)


def site_id_map(scn: Scenario) -> np.ndarray:
    """int32 map on the truth grid: the id of the site whose footprint (class 1 or 2) covers each pixel in any
    season, 0 elsewhere."""
    ids = np.zeros(scn.scene_grid.shape, np.int32)
    for site in scn.sites:
        for t in range(len(scn.periods)):
            st = site_state(site, t)
            if st is not None:
                h, w = st.classes.shape
                ids[site.row:site.row + h, site.col:site.col + w][st.classes > 0] = site.site_id
    return ids[scn.truth_window]


def season_cover(scn: Scenario | None, t: int, *, land: Landscape | None = None,
                 sites: tuple[Site, ...] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    """Land cover of season ``t`` on the scene grid: ``(lc, lc2, mix, classes, site_pixels)``."""
    land = land if land is not None else scn.landscape
    sites = sites if sites is not None else scn.sites
    lc, lc2, mix = land.lc.copy(), land.lc2.copy(), land.mix.copy()
    classes = np.zeros(lc.shape, np.uint8)
    site_px: dict[int, tuple[int, int, int]] = {}
    for site in sites:
        st = site_state(site, t)
        if st is None:
            continue
        h, w = st.cover.shape
        win = (slice(site.row, site.row + h), slice(site.col, site.col + w))
        c = st.cover
        lc[win][c], lc2[win][c], mix[win][c] = st.lc[c], st.lc2[c], st.mix[c]
        classes[win][c] = st.classes[c]
        site_px[site.site_id] = (int((st.classes == 2).sum()), int((st.classes == 1).sum()), int(site.active(t)))
    return lc, lc2, mix, classes, site_px


def simulate(config: SimConfig | None = None) -> Scenario:
    """Lay out the scene, its mining sites, per-season truth and the acquisition plan (no rendering)."""
    cfg = config or SimConfig()
    rng = np.random.default_rng([cfg.seed, 0])
    crs = CRS.from_epsg(cfg.epsg)
    truth_grid = GeoGrid(crs, Affine(10.0, 0, cfg.origin_x, 0, -10.0, cfg.origin_y), cfg.width, cfg.height)
    m = cfg.margin
    scene_grid = GeoGrid(crs, Affine(10.0, 0, cfg.origin_x - 10 * m, 0, -10.0, cfg.origin_y + 10 * m),
                         cfg.width + 2 * m, cfg.height + 2 * m)
    land = make_landscape(rng, scene_grid.shape, river_col=m + rng.uniform(0.05, 0.15) * cfg.width)
    sites = _place_sites(cfg, rng, land)
    periods = tuple(dry_season(y) for y in range(cfg.start_year, cfg.end_year + 1))
    win = (slice(m, m + cfg.height), slice(m, m + cfg.width))
    truth = []
    for t, period in enumerate(periods):
        _, _, _, classes, site_px = season_cover(None, t, land=land, sites=sites)
        cls = classes[win].copy()
        truth.append(SeasonTruth(
            period, cls, float((cls == 2).sum() * 100.0), float((cls == 1).sum() * 100.0),
            sum(1 for p, _, a in site_px.values() if a and p > 0),
            {sid: (p + c) * 100.0 for sid, (p, c, _) in site_px.items() if p + c > 0}))
    plans = plan_acquisitions(cfg, np.random.default_rng([cfg.seed, 1]))
    return Scenario(cfg, scene_grid, truth_grid, periods, land, sites, tuple(truth), plans, load_spectra())


def render_acquisition(scn: Scenario, index: int) -> Acquisition:
    """Render acquisition ``index`` of ``scn`` (deterministic; independent of other acquisitions)."""
    plan = scn.plans[index]
    cfg = scn.config
    rng = np.random.default_rng([cfg.seed, 2, index])
    lc, lc2, mix, _, _ = season_cover(scn, plan.season)
    illum = hillshade(scn.landscape.elevation, plan.sun_azimuth, plan.sun_elevation)
    surface = render_surface(scn.spectra, lc, lc2, mix, scn.landscape.texture, phase=plan.phase,
                             phenology=cfg.phenology, illumination=illum)
    surface *= np.float32(1 + 0.015 * rng.standard_normal())  # radiometric gain jitter
    atm = draw_atmosphere(rng, lc.shape, cloud_fraction=plan.cloud_fraction, haze=cfg.haze,
                          cirrus_probability=cfg.cirrus_probability, nodata_probability=cfg.nodata_probability,
                          sun_azimuth_deg=plan.sun_azimuth, sun_elevation_deg=plan.sun_elevation)
    obs = apply_atmosphere(surface, atm)
    scl10 = scene_scl(surface_scl(surface, lc), atm)
    valid20 = all_2x2(atm.valid)
    dn: dict[str, np.ndarray] = {}
    refl: dict[str, np.ndarray] = {}
    for i, band in enumerate(ANALYSIS_BANDS):
        r = obs[i] if band not in ("B11", "B12") else mean_2x2(obs[i])
        r = np.clip(r + cfg.noise * rng.standard_normal(r.shape).astype(np.float32), 0.0001, 1.5)
        refl[band] = r
        dn[band] = to_dn(r, plan.offset_dn, atm.valid if r.shape == atm.valid.shape else valid20)
    scl = mode_2x2(scl10)
    scl[~valid20] = 0
    return Acquisition(plan, dn, scl, refl, atm.cloud, atm.shadow, atm.valid)


from geo.sim.training import training_pair  # noqa: E402  (re-export for the model-training helper)

__all__ = ["SimConfig", "Scenario", "Acquisition", "AcquisitionPlan", "SeasonTruth", "simulate",
           "render_acquisition", "site_id_map", "training_pair", "baseline_for", "BASELINE_04_DATE"]
