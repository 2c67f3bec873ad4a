"""Read and validate AOI GeoJSON, pick the UTM CRS, and lay the analysis grid and its tiles.

AOIs are RFC 7946 GeoJSON: longitude/latitude in EPSG:4326, polygons only. Every feature should
carry ``name``, ``source`` and ``note`` properties (``aoi/*.geojson`` do).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer
from rasterio.crs import CRS
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from geo.errors import AoiError
from geo.grid import GeoGrid

#: Largest AOI accepted by default (km²); the whole Chipwi–Pangwa belt is ~1,500 km².
MAX_AOI_KM2 = 20_000.0


@dataclass(frozen=True)
class Aoi:
    """An area of interest.

    Attributes:
        name: short name (file stem when features have no ``name``).
        geometry: polygon or multipolygon in EPSG:4326 (lon, lat).
        properties: the first feature's properties (``name``, ``source``, ``note``).
        path: the file it came from, if any.
    """

    name: str
    geometry: BaseGeometry
    properties: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` in degrees."""
        return tuple(self.geometry.bounds)  # type: ignore[return-value]

    @property
    def utm_crs(self) -> CRS:
        return utm_crs_for(self.geometry)

    def to_utm(self) -> BaseGeometry:
        return reproject_geometry(self.geometry, CRS.from_epsg(4326), self.utm_crs)

    def area_km2(self) -> float:
        return self.to_utm().area / 1e6

    def to_geojson(self) -> dict:
        return {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": dict(self.properties), "geometry": mapping(self.geometry)}],
        }


def _load_json(path: Path) -> dict:
    if not path.exists():
        raise AoiError(f"AOI file {path} does not exist; pass a GeoJSON file such as aoi/chipwi_pangwa.geojson")
    if path.is_dir():
        raise AoiError(f"AOI path {path} is a folder; pass one GeoJSON file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is no error
    except (OSError, UnicodeDecodeError) as exc:
        raise AoiError(f"AOI file {path} cannot be read as UTF-8 text ({exc.__class__.__name__}); is it GeoJSON?") from None
    if not text.strip():
        raise AoiError(f"AOI file {path} is empty; it must hold a GeoJSON FeatureCollection of polygons")
    try:
        return json.loads(text)
    except RecursionError:
        raise AoiError(f"AOI file {path} nests its JSON too deeply to be GeoJSON (arrays or objects inside each "
                       "other thousands of levels deep); fix the file or re-export it as GeoJSON") from None
    except json.JSONDecodeError as exc:
        raise AoiError(
            f"AOI file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "fix the file or re-export it as GeoJSON"
        ) from None


def _geometries(doc: object, path: Path) -> list[tuple[dict, dict]]:
    """(properties, geometry-dict) pairs from a FeatureCollection, Feature or bare geometry."""
    if not isinstance(doc, dict) or "type" not in doc:
        raise AoiError(f"AOI file {path} is JSON but not GeoJSON (no 'type' member)")
    kind = doc["type"]
    if kind == "FeatureCollection":
        feats = doc.get("features")
        if not isinstance(feats, list):
            raise AoiError(f"AOI file {path}: FeatureCollection has no 'features' list")
        return [(f.get("properties") or {}, f.get("geometry")) for f in feats if isinstance(f, dict)]
    if kind == "Feature":
        return [(doc.get("properties") or {}, doc.get("geometry"))]
    if kind in ("Polygon", "MultiPolygon", "Point", "MultiPoint", "LineString", "MultiLineString", "GeometryCollection"):
        return [({}, doc)]
    raise AoiError(f"AOI file {path}: unknown GeoJSON type {kind!r}")


def _crs_name(member: object) -> str | None:
    """The CRS name a GeoJSON 2008 ``crs`` member gives (a bare string counts as one); None when it is no CRS."""
    if isinstance(member, str):
        return member
    if not isinstance(member, dict):
        return None
    props = member.get("properties")
    if isinstance(props, str):
        return props
    if isinstance(props, dict):
        return str(props.get("name", ""))
    return "" if props is None else None


def _has_nonfinite(coords: object, depth: int = 0) -> bool:
    """True when the nested coordinate lists hold NaN or ±Infinity (JSON ``NaN``/``Infinity``)."""
    if isinstance(coords, float):
        return not math.isfinite(coords)
    if isinstance(coords, list) and depth < 8:
        return any(_has_nonfinite(c, depth + 1) for c in coords)
    return False


def read_aoi(path: str | Path, *, max_km2: float = MAX_AOI_KM2) -> Aoi:
    """Read an AOI GeoJSON file and validate it; all polygon features are unioned.

    Raises:
        AoiError: with the cause and the fix, for every unusable input.
    """
    path = Path(path)
    doc = _load_json(path)
    crs_member = doc.get("crs") if isinstance(doc, dict) else None
    if crs_member:
        name = _crs_name(crs_member)
        if name is None:
            raise AoiError(
                f"AOI file {path} has a 'crs' member that is no CRS object ({str(crs_member)[:60]!r}); delete it "
                "(GeoJSON is always longitude/latitude, EPSG:4326) or re-export the file as GeoJSON"
            )
        if not any(tok in name.upper() for tok in ("4326", "CRS84")):
            raise AoiError(
                f"AOI file {path} declares CRS {name!r}; GeoJSON must be longitude/latitude (EPSG:4326): "
                "re-export it in EPSG:4326 (e.g. ogr2ogr -t_srs EPSG:4326)"
            )
    pairs = _geometries(doc, path)
    if not pairs:
        raise AoiError(f"AOI file {path} has no features; draw at least one polygon")
    polys: list[BaseGeometry] = []
    other: set[str] = set()
    props: dict = {}
    for i, (p, g) in enumerate(pairs):
        if not isinstance(p, dict):
            raise AoiError(f"AOI file {path}: feature {i} has properties {str(p)[:40]!r}, not a JSON object; "
                           "make them an object such as {\"name\": \"my aoi\"} or null")
        if not g:
            continue
        if _has_nonfinite(g.get("coordinates") if isinstance(g, dict) else None):
            raise AoiError(f"AOI file {path}: feature {i} has a coordinate that is not a finite number (NaN or "
                           "Infinity); fix its coordinates")
        try:
            geom = shape(g)
        except (ValueError, TypeError, AttributeError, IndexError, KeyError, shapely.errors.ShapelyError) as exc:
            raise AoiError(f"AOI file {path}: feature {i} has a malformed geometry ({exc}); fix its coordinates "
                           "(an AOI must be Polygon or MultiPolygon)") from None
        if geom.is_empty:
            continue
        if geom.geom_type in ("Polygon", "MultiPolygon"):
            polys.append(geom)
            props = props or dict(p)
        elif geom.geom_type == "GeometryCollection":
            for part in geom.geoms:
                (polys.append(part) if part.geom_type in ("Polygon", "MultiPolygon") else other.add(part.geom_type))
        else:
            other.add(geom.geom_type)
    if not polys:
        kinds = ", ".join(sorted(other)) or "nothing"
        raise AoiError(f"AOI file {path} holds no polygons (found {kinds}); an AOI must be one or more polygons")
    if other:
        raise AoiError(
            f"AOI file {path} mixes polygons with {', '.join(sorted(other))}; keep only the polygon features"
        )
    for i, geom in enumerate(polys):
        if not geom.is_valid:
            raise AoiError(
                f"AOI file {path}: polygon {i} is invalid ({explain_validity(geom)}); "
                "repair it (QGIS: Fix Geometries, or shapely.make_valid)"
            )
    geom = shapely.union_all(polys)
    _check_lonlat(geom, path)
    aoi = Aoi(name=str(props.get("name") or path.stem), geometry=geom, properties=props, path=path)
    area = aoi.area_km2()
    if area <= 0:
        raise AoiError(f"AOI file {path} has zero area; draw a polygon with an interior")
    if area > max_km2:
        raise AoiError(
            f"AOI in {path} covers {area:,.0f} km², over the {max_km2:,.0f} km² limit; split it into smaller AOIs"
        )
    return aoi


def _check_lonlat(geom: BaseGeometry, path: Path) -> None:
    west, south, east, north = geom.bounds
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= 90 and -90 <= north <= 90):
        if -90 <= west <= 90 and -90 <= east <= 90 and -180 <= south <= 180 and -180 <= north <= 180:
            raise AoiError(
                f"AOI file {path} has coordinates outside longitude/latitude range ({west:.0f}, {south:.0f}, "
                f"{east:.0f}, {north:.0f}) that look swapped: GeoJSON writes [longitude, latitude], this file "
                "[latitude, longitude]; swap each pair and re-export it"
            )
        raise AoiError(
            f"AOI file {path} has coordinates outside longitude/latitude range ({west:.0f}, {south:.0f}, "
            f"{east:.0f}, {north:.0f}): they look projected; GeoJSON must be EPSG:4326 — re-export it"
        )
    if east - west > 180:
        raise AoiError(
            f"AOI file {path} spans {east - west:.0f}° of longitude, so it crosses the antimeridian; "
            "split it into one polygon on each side of 180°"
        )
    if north > 84 or south < -80:
        raise AoiError(
            f"AOI file {path} reaches latitude {north if north > 84 else south:.1f}, outside UTM/Sentinel-2 "
            "analysis coverage (80°S–84°N)"
        )


def utm_crs_for(geom: BaseGeometry) -> CRS:
    """WGS 84 / UTM zone CRS of the geometry's centroid (EPSG:326xx north, 327xx south)."""
    c = geom.centroid
    zone = min(60, max(1, int(math.floor((c.x + 180) / 6)) + 1))
    return CRS.from_epsg((32600 if c.y >= 0 else 32700) + zone)


def reproject_geometry(geom: BaseGeometry, src: CRS, dst: CRS) -> BaseGeometry:
    """Reproject a shapely geometry (``always_xy``: x=lon/easting, y=lat/northing)."""
    if src == dst:
        return geom
    tr = Transformer.from_crs(src, dst, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def analysis_grid(aoi: Aoi, *, resolution: float = 10.0, crs: CRS | None = None) -> GeoGrid:
    """The AOI's analysis grid: UTM, ``resolution`` m pixels aligned to multiples of the resolution."""
    crs = crs or aoi.utm_crs
    return GeoGrid.from_bounds(reproject_geometry(aoi.geometry, CRS.from_epsg(4326), crs).bounds, crs, resolution)


@dataclass(frozen=True)
class Tile:
    """One tile of an analysis grid. ``id`` is ``r{row}c{col}``, safe as a file name."""

    id: str
    grid: GeoGrid
    row_off: int
    col_off: int


def split_tiles(grid: GeoGrid, *, tile_px: int = 1024) -> list[Tile]:
    """Split ``grid`` into tiles of at most ``tile_px``×``tile_px`` pixels, row-major."""
    if tile_px <= 0:
        raise AoiError(f"tile size must be positive, got {tile_px}")
    from affine import Affine

    tiles = []
    for r, row_off in enumerate(range(0, grid.height, tile_px)):
        for c, col_off in enumerate(range(0, grid.width, tile_px)):
            t = grid.transform @ Affine.translation(col_off, row_off)
            g = GeoGrid(grid.crs, t, min(tile_px, grid.width - col_off), min(tile_px, grid.height - row_off))
            tiles.append(Tile(f"r{r:03d}c{c:03d}", g, row_off, col_off))
    return tiles


def region_mask(aoi_wkt: str, grid: GeoGrid) -> np.ndarray:
    """Bool ``(y, x)``: True for pixels whose centre lies inside the AOI polygon (in ``grid.crs``)."""
    import rasterio.features

    geom = shapely.wkt.loads(aoi_wkt)
    return rasterio.features.geometry_mask([geom], out_shape=grid.shape, transform=grid.transform, invert=True)
