"""The ``[[scenes]]`` table of a training TOML: parsed and checked into a :class:`StacScene`, before any I/O.

See :mod:`models.stac_scenes` for how a scene becomes a composite and a training sample.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from geo.errors import ConfigError, PeriodError, StacError
from geo.periods import Period, parse_interval
from geo.sources.providers import PROVIDERS, Provider, resolve_provider
from geo.sources.remote import redact
from models.labels import IGNORE, LABELS_FIX, MAX_POINT_RADIUS_M, existing_file


#: Keys a ``[[scenes]]`` table may hold.
SCENE_KEYS = ("stac", "collection", "datetime", "bbox", "aoi", "max_cloud", "limit", "asset_hosts", "labels",
              "point_radius_m", "unlabelled")


@dataclass(frozen=True)
class StacScene:
    """One ``[[scenes]]`` entry: a STAC search whose composite is a training image.

    Attributes:
        stac: ``earth-search``, ``planetary-computer``, an http(s) STAC API URL or a local ItemCollection
            JSON path (anything :func:`geo.sources.stac.search` accepts; a relative path is already resolved).
        datetime: ``START/END`` ISO dates, the compositing period (inclusive).
        labels: GeoJSON/GPKG of polygons or points with a ``class`` property.
        bbox: ``(west, south, east, north)`` in degrees (EPSG:4326), or ``None`` when ``aoi`` is given.
        aoi: AOI GeoJSON file (EPSG:4326 polygons), or ``None`` when ``bbox`` is given.
        collection: collection id to search (default: the provider's, ``sentinel-2-l2a``).
        max_cloud: largest scene cloud cover kept, percent.
        limit: keep at most this many scenes (the least cloudy); ``None`` for all.
        asset_hosts: extra hosts whose asset hrefs may be read (as ``[search] asset_hosts`` of a run).
        point_radius_m: radius (m) that turns point labels into discs.
        unlabelled: value of pixels outside every label: 0 (background) or 255 (ignored by the loss).
    """

    stac: str
    datetime: str
    labels: Path
    bbox: tuple[float, float, float, float] | None = None
    aoi: Path | None = None
    collection: str | None = None
    max_cloud: float = 80.0
    limit: int | None = None
    asset_hosts: tuple[str, ...] = ()
    point_radius_m: float = 20.0
    unlabelled: int = 0

    @property
    def period(self) -> Period:
        return parse_interval(self.datetime)

    def provider(self) -> Provider:
        """The :class:`~geo.sources.providers.Provider` to search, with ``collection`` applied."""
        prov = resolve_provider(self.stac)
        return dataclasses.replace(prov, collection=self.collection) if self.collection else prov

    @property
    def source(self) -> str:
        """The catalogue as recorded in model cards and logs: a URL never carries credentials."""
        if self.stac in PROVIDERS:
            return f"{self.stac} ({PROVIDERS[self.stac].url})"
        return redact(self.stac).rstrip("/") if "://" in self.stac else self.stac


def _number(v, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{what} must be a number, got {v!r}")
    return float(v)


def check_bbox(v, where: str) -> tuple[float, float, float, float]:
    """Validate ``[west, south, east, north]`` in degrees; returns it as floats.

    Raises:
        ConfigError: not four numbers, outside longitude/latitude ranges, empty, or crossing the antimeridian.
    """
    fix = "write bbox = [west, south, east, north] in degrees (EPSG:4326), e.g. [97.80, 25.60, 97.84, 25.64]"
    if not isinstance(v, (list, tuple)) or len(v) != 4:
        raise ConfigError(f"{where}.bbox must be 4 numbers, got {v!r}; {fix}")
    w, s, e, n = (_number(x, f"{where}.bbox") for x in v)
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
        raise ConfigError(f"{where}.bbox {list(v)} lies outside longitude/latitude ranges "
                          f"(projected coordinates?); {fix}")
    if w >= e or s >= n:
        raise ConfigError(f"{where}.bbox {list(v)} has west >= east or south >= north "
                          f"(an antimeridian crossing must be split into two scenes); {fix}")
    if n > 84 or s < -80:
        raise ConfigError(f"{where}.bbox {list(v)} reaches outside UTM/Sentinel-2 analysis coverage (80°S–84°N)")
    return (w, s, e, n)


def parse_scene(table: dict, where: str, rel: Callable[[str], Path]) -> StacScene:
    """Build a :class:`StacScene` from one TOML table; every value is checked here, before any network access.

    Args:
        table: the ``[[scenes]]`` table.
        where: its name in messages (``"file.toml: scenes[0]"``).
        rel: resolves a path relative to the TOML file.

    Raises:
        ConfigError: unknown/missing keys, wrong types, bbox and aoi both or neither, bad values.
        PeriodError: a malformed ``datetime``.
        StacError: a ``stac`` value that is no provider, URL or path.
    """
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table ([[scenes]]), got {table!r}")
    unknown = sorted(set(table) - set(SCENE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {list(SCENE_KEYS)}")
    missing = [k for k in ("stac", "datetime", "labels") if k not in table]
    if missing:
        raise ConfigError(f"{where} needs stac, datetime and labels (missing: {', '.join(missing)})")
    for k in ("stac", "datetime", "labels", "aoi", "collection"):
        if k in table and (not isinstance(table[k], str) or not table[k].strip()):
            raise ConfigError(f"{where}.{k} must be a non-empty string, got {table[k]!r}")
    has_bbox, has_aoi = "bbox" in table, "aoi" in table
    if has_bbox and has_aoi:
        raise ConfigError(f"{where} gives both bbox and aoi; keep one of them")
    if not (has_bbox or has_aoi):
        raise ConfigError(f"{where} needs the area to search: "
                          'bbox = [west, south, east, north] or aoi = "file.geojson"')
    try:
        parse_interval(table["datetime"])
    except PeriodError as exc:
        raise PeriodError(f"{where}.datetime: {exc}") from None
    stac = table["stac"].strip()
    if stac not in PROVIDERS and "://" not in stac:
        stac = str(rel(stac))  # a local ItemCollection, relative to the TOML file
    try:
        resolve_provider(stac)  # refuses unknown schemes/names now
    except StacError as exc:
        raise StacError(f"{where}.stac: {exc}") from None
    labels = existing_file(rel(table["labels"]), f"{where}.labels", LABELS_FIX)
    aoi = None
    if has_aoi:
        aoi = rel(table["aoi"])
    bbox = check_bbox(table["bbox"], where) if has_bbox else None
    max_cloud = _number(table.get("max_cloud", 80.0), f"{where}.max_cloud")
    if not 0 <= max_cloud <= 100:
        raise ConfigError(f"{where}.max_cloud is a percentage (0–100), got {max_cloud:g}")
    limit = table.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"{where}.limit must be a whole number >= 1, got {limit!r}")
    hosts = table.get("asset_hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ConfigError(f"{where}.asset_hosts must be a list of host names, got {hosts!r}")
    radius = _number(table.get("point_radius_m", 20.0), f"{where}.point_radius_m")
    if radius <= 0:
        raise ConfigError(f"{where}.point_radius_m must be > 0, got {radius:g}")
    if radius > MAX_POINT_RADIUS_M:
        raise ConfigError(f"{where}.point_radius_m {radius:g} m is over {MAX_POINT_RADIUS_M:g} m: a point label stands "
                          "for one pool, not a hillside; give the pool's radius (default 20)")
    unl = {"background": 0, "ignore": IGNORE}.get(str(table.get("unlabelled", "background")))
    if unl is None:
        raise ConfigError(f"{where}.unlabelled must be 'background' (pixels outside every label are background) or "
                          f"'ignore' (left out of the loss), got {table.get('unlabelled')!r}")
    return StacScene(stac=stac, datetime=table["datetime"].strip(), labels=labels, bbox=bbox, aoi=aoi,
                     collection=table.get("collection"), max_cloud=max_cloud, limit=limit, asset_hosts=tuple(hosts),
                     point_radius_m=radius, unlabelled=unl)
