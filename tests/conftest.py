"""Shared fixtures: tiny rasters with a real CRS, and paths to the shared real data."""

from __future__ import annotations

from pathlib import Path

import pytest
from affine import Affine
from rasterio.crs import CRS

from geo.grid import GeoGrid
from models.data import shared_data_dir

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = shared_data_dir()


@pytest.fixture
def utm_grid() -> GeoGrid:
    """A 40×50 px, 10 m grid in UTM 47N inside the Chipwi–Pangwa belt."""
    return GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 431000, 0, -10, 2840000), 50, 40)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA

# Real servers on 127.0.0.1 (rustac serve, RangeHTTPServer, fault proxy) for the STAC/load tests.
from servers import cloud, local_cloud  # noqa: E402,F401


@pytest.fixture(autouse=True)
def _no_cog_headers_from_earlier_tests():
    """Each test starts without COG headers cached by earlier ones (servers on reused ports serve other files)."""
    from geo.sources.cog_ranges import clear_header_cache

    clear_header_cache()
