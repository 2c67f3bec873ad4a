"""A small but realistic run folder, built without the simulator, for tests of outputs and their clients.

Four dry seasons on a 200×200 px, 10 m grid in UTM 47N (EPSG:32647) inside the Chipwi–Pangwa belt.
Rectangles of known size are burnt into ``classmap_<period>.tif`` files, so every expected count and
area below is known from the drawing alone (not from the code under test):

- site A (north-west): two ponds and a cleared patch from the first season; the patch grows every season;
- site B (north-east): appears in the second season (new) and gains a pond in the fourth (expanded);
- site C (south-west): present in the first two seasons, gone from the third (abandoned);
- site D (south-east): appears in the last season (new).

A strip along the southern edge (:data:`UNSEEN`) was never seen clear: it is the class maps' nodata (255,
"not observed"), neither background nor mining, and holds no composite value.

Sites are > 300 m apart (well over the default 120 m link distance); polygons in one site are 20–60 m apart.
The folder also holds a task composite (``tasks/<last>/t0/composite.tif``, like the pipeline writes),
``manifest.json`` with the run parameters and ``coverage.json``, then the real
:func:`geo.results.outputs.write_vectors_and_report` writes every vector, table and report output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from geo.config import RunParams
from geo.results.export import write_raster
from geo.results.rasters import write_classmap, write_confidence
from geo.stages.vectorize import NOT_OBSERVED
from geo.fsutil import write_json
from geo.grid import GeoGrid

PERIODS = ("2019-20", "2020-21", "2021-22", "2022-23")
AOI_NAME = "Test belt (synthetic)"
GRID = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 431000, 0, -10, 2840000), 200, 200)
STORED_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")

# (row0, col0, rows, cols, class) per period; rectangles never touch one of the same class.
_A = [(20, 20, 6, 8, 2), (20, 34, 5, 5, 2)]            # site A ponds (30 m gap → one site)
_B = [(20, 150, 6, 6, 2), (30, 150, 10, 12, 1)]        # site B: pond + cleared (40 m gap)
_C = [(140, 20, 7, 7, 2), (140, 33, 8, 8, 1)]          # site C: pond + cleared
_D = [(150, 150, 8, 8, 2), (160, 150, 6, 10, 1)]       # site D: pond + cleared


def _site_a_cleared(i: int) -> tuple:
    return (30, 20, 8 + 3 * i, 10 + 2 * i, 1)          # grows each season


LAYOUT: dict[str, list[tuple]] = {
    PERIODS[0]: _A + [_site_a_cleared(0)] + _C,
    PERIODS[1]: _A + [_site_a_cleared(1)] + _B + _C,
    PERIODS[2]: _A + [_site_a_cleared(2)] + _B,
    PERIODS[3]: _A + [_site_a_cleared(3)] + _B + [(20, 160, 5, 6, 2)] + _D,
}
#: Pixels never seen clear in any season (class map nodata, "not observed"): a strip along the southern edge.
UNSEEN = (slice(185, 200), slice(0, 200))

#: Sites per period (by letter), and the change class of each site between consecutive periods.
SITES = {PERIODS[0]: "AC", PERIODS[1]: "ABC", PERIODS[2]: "AB", PERIODS[3]: "ABD"}
CHANGES = {
    (PERIODS[0], PERIODS[1]): {"expanded": 1, "new": 1, "persisted": 1},            # A grew, B new, C same
    (PERIODS[1], PERIODS[2]): {"expanded": 1, "persisted": 1, "abandoned": 1},      # A grew, B same, C gone
    (PERIODS[2], PERIODS[3]): {"expanded": 2, "new": 1},                            # A, B grew; D new
}


@dataclass(frozen=True)
class Expected:
    """What the drawing holds for one period (areas in m², from pixel counts × 100 m²)."""

    n_ponds: int
    n_cleared: int
    pond_area_m2: float
    cleared_area_m2: float
    n_sites: int

    @property
    def n_features(self) -> int:
        return self.n_ponds + self.n_cleared

    @property
    def footprint_area_m2(self) -> float:
        return self.pond_area_m2 + self.cleared_area_m2


@dataclass(frozen=True)
class RunFolder:
    """A run folder and what it should contain."""

    path: Path
    periods: tuple[str, ...]
    grid: GeoGrid
    expected: dict[str, Expected] = field(default_factory=dict)
    changes: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    @property
    def n_change_features(self) -> int:
        return sum(sum(c.values()) for c in self.changes.values())


def classmap(period: str) -> np.ndarray:
    """The class map of ``period`` (uint8 0 background / 1 cleared land / 2 leaching pond)."""
    a = np.zeros(GRID.shape, np.uint8)
    for r, c, h, w, k in LAYOUT[period]:
        a[r : r + h, c : c + w] = k
    return a


def expected(period: str) -> Expected:
    rects = LAYOUT[period]
    ponds = [h * w for _, _, h, w, k in rects if k == 2]
    cleared = [h * w for _, _, h, w, k in rects if k == 1]
    px = GRID.pixel_area
    return Expected(len(ponds), len(cleared), sum(ponds) * px, sum(cleared) * px, len(SITES[period]))


def rgb_composite(classes: np.ndarray, seed: int = 3) -> np.ndarray:
    """A plausible true-colour reflectance composite ``(3, y, x)`` (B04, B03, B02): forest, bare soil, ponds."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : GRID.height, 0 : GRID.width]
    relief = 0.01 * np.sin(xx / 13.0) * np.cos(yy / 17.0)
    forest = np.array([0.03, 0.05, 0.025])[:, None, None]
    soil = np.array([0.16, 0.13, 0.10])[:, None, None]
    pond = np.array([0.05, 0.11, 0.12])[:, None, None]
    rgb = np.where(classes == 1, soil, np.where(classes == 2, pond, forest)) + relief
    rgb = rgb + rng.normal(0, 0.004, rgb.shape)
    return np.clip(rgb, 0.001, 1).astype(np.float32)


def _write_task_composite(out: Path, period: str, rgb: np.ndarray) -> None:
    """A task composite like :func:`geo.run.tasks.run_task` writes (DN, bands :data:`STORED_BANDS`)."""
    r, g, b = rgb
    nir, s1, s2 = 0.3 - r, 0.15 + r, 0.1 + r
    data = np.stack([b, g, r, nir, s1, s2])
    dn = np.clip(np.round(data * 10000), 1, 65535).astype(np.uint16)
    dn[(slice(None), *UNSEEN)] = 0  # never clear: no composite value (nodata), as run_task writes it
    tdir = out / "tasks" / period / "t0"
    write_raster(dn, GRID, tdir / "composite.tif", nodata=0, descriptions=STORED_BANDS)
    write_json(tdir / "done.json", {"key": f"{period}/t0", "period": period, "tile": "t0", "n_scenes": 5,
                                    "region_px": GRID.width * GRID.height, "clear_px": GRID.width * GRID.height})


def build_run_folder(out: Path, *, params: RunParams | None = None) -> RunFolder:
    """Write the class maps, task composite, manifest and coverage into ``out``, then every output."""
    from geo.results.outputs import write_vectors_and_report

    params = params or RunParams()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    coverage = {}
    for i, p in enumerate(PERIODS):
        cm = classmap(p)
        conf = np.where(cm > 0, rng.integers(70, 96, cm.shape), 0).astype(np.uint8)
        cm[UNSEEN], conf[UNSEEN] = NOT_OBSERVED, NOT_OBSERVED  # a cloud strip never seen clear (no mining under it)
        write_classmap(cm, GRID, out / f"classmap_{p}.tif")
        write_confidence(conf, GRID, out / f"confidence_{p}.tif")
        coverage[p] = {"clear_fraction": 0.97 - 0.02 * i, "n_scenes": 4 + i % 2}
    rgb = rgb_composite(classmap(PERIODS[-1]))
    rgb[(slice(None), *UNSEEN)] = 0.0
    _write_task_composite(out, PERIODS[-1], rgb)
    write_json(out / "manifest.json", {
        "tool": "minewatch", "status": "complete",
        "inputs": {"aoi_name": AOI_NAME, "periods": list(PERIODS)},
        "parameters": params.to_dict(),
    })
    write_json(out / "coverage.json", coverage)
    write_vectors_and_report(out, AOI_NAME, list(PERIODS), params, coverage, rgb, GRID)
    return RunFolder(out, PERIODS, GRID, {p: expected(p) for p in PERIODS}, dict(CHANGES))


_BUILT: dict[str, RunFolder] = {}


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory) -> RunFolder:
    """A run folder written once per test session (treat it as read-only; copy it to modify).

    Test modules import this fixture, so pytest sees one definition per module; the cache builds it once.
    """
    if "run" not in _BUILT:
        _BUILT["run"] = build_run_folder(tmp_path_factory.mktemp("run") / "run")
    return _BUILT["run"]
