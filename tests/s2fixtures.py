"""Small Sentinel-2 L2A scenes for tests: real UTM COGs plus STAC items shaped like Earth Search v1
and Planetary Computer items (their asset keys, ids, properties and href layouts).

Pixel values are a known function of position so tests can check windows, offsets and resampling:
10 m band k:  DN = 1000 + 100*k + (column index on the 10 m world grid) % 97   (+1000 if baseline >= 04.00)
20 m band k:  DN = 1500 + 100*k                                              (+1000 if baseline >= 04.00)
SCL:          4 (vegetation), 9 (cloud) where the 20 m column index % 16 < 4
The last ``nodata_rows`` rows of every 10 m raster (and their 20 m counterparts) are 0 = nodata.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_geom

EPSG = 32647
#: x origin of the "world" 10 m grid the DN gradient is defined on.
X0 = 430000.0
Y_TOP = 2840000.0
BANDS_10 = ("B02", "B03", "B04", "B08")
BANDS_20 = ("B11", "B12")
ES_KEYS = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B11": "swir16", "B12": "swir22", "SCL": "scl"}
K = {"B02": 0, "B03": 1, "B04": 2, "B08": 3, "B11": 4, "B12": 5}

#: Two overlapping "MGRS tiles" (x origin, label); overlap 560 m like a shrunk 9.8 km S2 overlap.
TILES = {"47QQU": 430000.0, "47QRU": 432000.0}


def expected_dn(band: str, x_centres: np.ndarray, new_baseline: bool) -> np.ndarray:
    """DN of a 10 m band at easting pixel centres (see module doc)."""
    col = np.floor((x_centres - X0) / 10.0).astype(int)
    return 1000 + 100 * K[band] + col % 97 + (1000 if new_baseline else 0)


def write_cog(path: Path, arr: np.ndarray, transform: Affine, *, blocksize: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    prof = dict(driver="COG", width=arr.shape[1], height=arr.shape[0], count=1, dtype=arr.dtype.name,
                crs=CRS.from_epsg(EPSG), transform=transform, nodata=0, compress="deflate",
                blocksize=blocksize, overview_resampling="nearest")
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(arr, 1)


@dataclass
class Scene:
    tile: str
    when: dt.datetime
    baseline: str
    cloud: float
    platform: str = "sentinel-2b"
    orbit: int = 104
    generation: dt.datetime | None = None


def write_rasters(root: Path, scene: Scene, *, size: int = 256, blocksize: int = 128,
                  nodata_rows: int = 8) -> dict[str, Path]:
    """Write the 7 COGs of a scene; return band id → path."""
    x0 = TILES[scene.tile]
    new = tuple(int(x) for x in scene.baseline.split(".")) >= (4, 0)
    add = 1000 if new else 0
    folder = root / scene.tile / scene.when.strftime("%Y%m%d") / scene.baseline.replace(".", "")
    out = {}
    cols10 = x0 + 10 * np.arange(size) + 5
    for b in BANDS_10:
        row = expected_dn(b, cols10, new).astype(np.uint16)
        arr = np.repeat(row[None, :], size, axis=0)
        arr[size - nodata_rows:] = 0
        out[b] = folder / f"{b}.tif"
        write_cog(out[b], arr, Affine(10, 0, x0, 0, -10, Y_TOP), blocksize=blocksize)
    h = size // 2
    for b in BANDS_20:
        arr = np.full((h, h), 1500 + 100 * K[b] + add, np.uint16)
        arr[h - nodata_rows // 2:] = 0
        out[b] = folder / f"{b}.tif"
        write_cog(out[b], arr, Affine(20, 0, x0, 0, -20, Y_TOP), blocksize=blocksize)
    cols20 = np.floor((x0 + 20 * np.arange(h) + 10 - X0) / 20).astype(int)
    scl = np.where(cols20 % 16 < 4, 9, 4).astype(np.uint8)
    arr = np.repeat(scl[None, :], h, axis=0)
    arr[h - nodata_rows // 2:] = 0
    out["SCL"] = folder / "SCL.tif"
    write_cog(out["SCL"], arr, Affine(20, 0, x0, 0, -20, Y_TOP), blocksize=blocksize)
    return out


def _footprint(x0: float, size: int) -> dict:
    ring = [(x0, Y_TOP), (x0 + 10 * size, Y_TOP), (x0 + 10 * size, Y_TOP - 10 * size), (x0, Y_TOP - 10 * size),
            (x0, Y_TOP)]
    g = transform_geom(f"EPSG:{EPSG}", "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})
    return {"type": "Polygon", "coordinates": [[list(map(float, p)) for p in g["coordinates"][0]]]}


def make_item(scene: Scene, hrefs: dict[str, str], *, style: str = "earth-search", size: int = 256) -> dict:
    """A STAC item dict shaped like Earth Search v1 (``style="earth-search"``) or Planetary Computer."""
    x0 = TILES[scene.tile]
    geom = _footprint(x0, size)
    xs = [p[0] for p in geom["coordinates"][0]]
    ys = [p[1] for p in geom["coordinates"][0]]
    bbox = [min(xs), min(ys), max(xs), max(ys)]
    new = tuple(int(x) for x in scene.baseline.split(".")) >= (4, 0)
    d = scene.when.strftime("%Y%m%d")
    gen = scene.generation or scene.when + dt.timedelta(hours=5)
    sat = scene.platform[-1].upper()
    datatake = f"GS2{sat}_{scene.when:%Y%m%dT%H%M%S}_030386_N{scene.baseline.replace('.', '')}"
    iso = scene.when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assets = {}
    for b, href in hrefs.items():
        res = 10 if b in BANDS_10 else 20
        n = size if res == 10 else size // 2
        a = {"href": href, "type": "image/tiff; application=geotiff; profile=cloud-optimized",
             "proj:shape": [n, n], "proj:transform": [res, 0, x0, 0, -res, Y_TOP], "roles": ["data"]}
        if style == "earth-search":
            rb = {"nodata": 0, "data_type": "uint8" if b == "SCL" else "uint16", "spatial_resolution": res}
            if b != "SCL":
                rb.update(scale=0.0001, offset=-0.1 if new else 0.0)
            a["raster:bands"] = [rb]
            assets[ES_KEYS[b]] = a
        else:
            a["gsd"] = res
            assets[b] = a
    # extra assets real items carry (never read)
    assets["thumbnail" if style == "earth-search" else "preview"] = {"href": "https://example.invalid/t.jpg",
                                                                       "type": "image/jpeg", "roles": ["thumbnail"]}
    if style == "earth-search":
        seq = 1 if scene.generation else 0
        item_id = f"S2{sat}_{scene.tile[:2]}{scene.tile[2:]}_{d}_{seq}_L2A"
        props = {
            "datetime": iso, "platform": scene.platform, "constellation": "sentinel-2", "instruments": ["msi"],
            "eo:cloud_cover": scene.cloud, "proj:epsg": EPSG, "mgrs:utm_zone": int(scene.tile[:2]),
            "mgrs:latitude_band": scene.tile[2], "mgrs:grid_square": scene.tile[3:], "grid:code": f"MGRS-{scene.tile}",
            "s2:processing_baseline": scene.baseline, "s2:product_type": "S2MSI2A", "s2:datatake_id": datatake,
            "s2:generation_time": gen.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "sat:relative_orbit": scene.orbit,
            "earthsearch:boa_offset_applied": False, "created": iso, "updated": iso,
        }
        ext = ["https://stac-extensions.github.io/eo/v1.1.0/schema.json",
               "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
               "https://stac-extensions.github.io/projection/v1.1.0/schema.json"]
    else:
        item_id = f"S2{sat}_MSIL2A_{scene.when:%Y%m%dT%H%M%S}_R{scene.orbit:03d}_T{scene.tile}_{gen:%Y%m%dT%H%M%S}"
        props = {
            "datetime": iso, "platform": f"Sentinel-2{sat}", "constellation": "Sentinel 2", "instruments": ["msi"],
            "eo:cloud_cover": scene.cloud, "proj:epsg": EPSG, "s2:mgrs_tile": scene.tile,
            "s2:processing_baseline": scene.baseline, "s2:product_type": "S2MSI2A", "s2:datatake_id": datatake,
            "s2:generation_time": gen.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "sat:relative_orbit": scene.orbit,
            "sat:orbit_state": "descending",
        }
        ext = ["https://stac-extensions.github.io/eo/v1.0.0/schema.json",
               "https://stac-extensions.github.io/projection/v1.0.0/schema.json"]
    return {"type": "Feature", "stac_version": "1.0.0", "stac_extensions": ext, "id": item_id,
            "collection": "sentinel-2-l2a", "geometry": geom, "bbox": bbox, "properties": props,
            "assets": assets, "links": []}


def default_scenes() -> list[Scene]:
    """A season with both baselines, an overlapping-tile datatake, a reprocessing and a cloudy scene."""
    u = dt.timezone.utc
    return [
        Scene("47QQU", dt.datetime(2021, 12, 3, 4, 12, 30, tzinfo=u), "03.01", 5.0),
        Scene("47QRU", dt.datetime(2021, 12, 3, 4, 12, 34, tzinfo=u), "03.01", 6.0),   # same datatake, next tile
        Scene("47QQU", dt.datetime(2022, 1, 7, 4, 12, 30, tzinfo=u), "03.01", 12.0),
        Scene("47QQU", dt.datetime(2022, 1, 7, 4, 12, 30, tzinfo=u), "04.00", 12.0,   # reprocessed, keep this
              generation=dt.datetime(2023, 3, 1, tzinfo=u)),
        Scene("47QQU", dt.datetime(2022, 2, 11, 4, 12, 30, tzinfo=u), "04.00", 95.0),  # too cloudy
        Scene("47QQU", dt.datetime(2022, 3, 18, 4, 12, 30, tzinfo=u), "04.00", 20.0, platform="sentinel-2a", orbit=104),
    ]


def aoi_geojson(x0: float, y0: float, x1: float, y1: float) -> dict:
    """A FeatureCollection AOI (EPSG:4326) from UTM 47N bounds."""
    ring = [(x0, y1), (x1, y1), (x1, y0), (x0, y0), (x0, y1)]
    g = transform_geom(f"EPSG:{EPSG}", "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "test", "source": "tests", "note": "synthetic"}, "geometry": g}]}
