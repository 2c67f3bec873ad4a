"""Run configuration: frozen dataclasses (units in field docs), loadable from a TOML run file."""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from geo.errors import ConfigError

log = logging.getLogger(__name__)


#: SCL classes kept as clear by default: 2 dark area (terrain shadow), 4 vegetation, 5 not vegetated,
#: 6 water, 7 unclassified. Excluded: 0 no data, 1 saturated/defective, 3 cloud shadow,
#: 8/9 cloud medium/high probability, 10 thin cirrus, 11 snow.
#: Class 2 is kept because in steep terrain it marks slopes facing away from the low dry-season sun:
#: masking it would hide whole hillsides, exactly where hillside mining is, in every scene of a season.
#: Cloud shadows are class 3 and are masked (and buffered).
DEFAULT_CLEAR_CLASSES: frozenset[int] = frozenset({2, 4, 5, 6, 7})


def check_number(name: str, value, lo: float | None = None, hi: float | None = None, *, whole: bool = False,
                 lo_open: bool = False, unit: str = "") -> None:
    """Raise :class:`ConfigError` unless ``value`` is a number (a whole one if ``whole``) within ``lo``–``hi``
    (``lo`` excluded when ``lo_open``). Settings are checked so, before any network request or allocation."""
    import math

    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not isinstance(value, int)) \
            or not math.isfinite(value):
        raise ConfigError(f"{name} must be {kind}, got {value!r}; fix it in the run config (--config)")
    low_bad = lo is not None and (value <= lo if lo_open else value < lo)
    if low_bad or (hi is not None and value > hi):
        parts = [] if lo is None else [f"{'greater than' if lo_open else 'at least'} {lo:g}{unit}"]
        parts += [] if hi is None else [f"at most {hi:g}{unit}"]
        raise ConfigError(f"{name} must be {' and '.join(parts)}, got {value!r}; fix it in the run config (--config)")


@dataclass(frozen=True)
class CloudMaskConfig:
    """How SCL is turned into a clear mask.

    Attributes:
        clear_classes: SCL values counted as clear.
        buffer_px: pixels (10 m) by which cloud and shadow are grown, to catch their soft edges.
    """

    clear_classes: frozenset[int] = DEFAULT_CLEAR_CLASSES
    buffer_px: int = 2

    def __post_init__(self) -> None:
        check_number("[cloud] buffer_px", self.buffer_px, 0, 100, whole=True, unit=" pixels")
        for c in self.clear_classes:
            check_number("[cloud] clear_classes entry", c, 0, 11, whole=True, unit=" (an SCL class)")


@dataclass(frozen=True)
class SiteConfig:
    """How polygons are grouped into sites.

    Attributes:
        link_distance_m: polygons closer than this (edge to edge, metres) belong to one site.
        min_ponds: a cluster needs at least this many leaching-pond polygons to count as a site.
        min_footprint_m2: clusters with less footprint area (m²) are dropped.
        extent: ``"hull"`` (convex hull of the members) or ``"buffer"`` (members grown by half the
            link distance, unioned, then shrunk back) — the site extent polygon.
    """

    link_distance_m: float = 120.0
    min_ponds: int = 1
    min_footprint_m2: float = 1000.0
    extent: str = "hull"

    def __post_init__(self) -> None:
        check_number("[sites] link_distance_m", self.link_distance_m, 0, 100_000, unit=" m")
        check_number("[sites] min_ponds", self.min_ponds, 0, whole=True)
        check_number("[sites] min_footprint_m2", self.min_footprint_m2, 0, unit=" m²")
        if self.extent not in ("hull", "buffer"):
            raise ValueError(f"site extent must be 'hull' or 'buffer', not {self.extent!r}")


@dataclass(frozen=True)
class ChangeConfig:
    """Change rules.

    Attributes:
        min_clear_fraction: periods with a smaller fraction (0–1) of AOI pixels holding at least one
            clear observation are flagged low confidence.
        expand_ratio: a site whose footprint grew by more than this fraction (0.1 = 10 %) is "expanded";
            one that lost more than this fraction is "shrunk"; otherwise "persisted".
    """

    min_clear_fraction: float = 0.8
    expand_ratio: float = 0.1

    def __post_init__(self) -> None:
        check_number("[change] min_clear_fraction", self.min_clear_fraction, 0, 1)
        check_number("[change] expand_ratio", self.expand_ratio, 0, 100)


#: Flipped views the U-Net's probabilities may be averaged over (``[detect] views``, ``FusionConfig.views``).
VIEWS = (1, 2, 4)


@dataclass(frozen=True)
class DetectConfig:
    """Detection settings.

    Attributes:
        method: ``"fused"`` (U-Net probabilities fused with the spectral rules; default), ``"model"`` (U-Net
            alone) or ``"rules"`` (spectral rules alone, no torch needed; the documented fallback).
        min_area_m2: cleared-land polygons smaller than this (m²) are dropped; 10 m pixels are 100 m².
        min_pond_area_m2: pond polygons smaller than this (m²) are dropped. 100 m² (one pixel) since issue 11:
            with 200 m², a run dropped every one-pixel pool the detector had found, and with it many sites (site
            growth off by 1,275 pp summed over 9 tuning rows of the blind generators, against 626 pp keeping them).
        halo_px: pixels of context read around each tile so detection near tile edges matches the interior.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` for the model.
        weights: U-Net weights file (``.pt`` with its ``.json`` model card beside it); ``""`` uses the shipped
            weights. In a TOML run file a relative path is relative to the run file; ``--weights`` overrides it.
        views: flipped copies of each tile's composite the U-Net's probabilities are averaged over (1, 2 or 4;
            test-time augmentation; 4 takes 4x the model's time). 1 by default: 4 views scored better on the
            generators minewatch was tuned on but no better on held-out ones (model card, "Test-time views").
    """

    method: str = "fused"
    min_area_m2: float = 200.0
    min_pond_area_m2: float = 100.0
    halo_px: int = 32
    device: str = "auto"
    weights: str = ""
    views: int = 1

    def __post_init__(self) -> None:
        if self.method not in ("rules", "model", "fused"):
            raise ConfigError(f"detection method must be rules, model or fused, not {self.method!r}")
        check_number("[detect] min_area_m2", self.min_area_m2, 0, unit=" m²")
        check_number("[detect] min_pond_area_m2", self.min_pond_area_m2, 0, unit=" m²")
        check_number("[detect] halo_px", self.halo_px, 0, 512, whole=True, unit=" pixels")
        if self.views not in VIEWS or isinstance(self.views, bool):
            raise ConfigError(f"[detect] views must be 1, 2 or 4, not {self.views!r}; fix it in the run config (--config)")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"[detect] device must be auto, cpu or cuda, not {self.device!r}; fix it in the run config (--config)")


@dataclass(frozen=True)
class SearchConfig:
    """Scene search settings.

    Attributes:
        provider: ``earth-search``, ``planetary-computer``, a STAC API URL, or a local ItemCollection JSON path.
        max_cloud: scenes with more scene cloud cover (percent, 0–100) are skipped.
        asset_hosts: extra hosts whose http(s) asset hrefs may be read (and redirected to), besides the STAC
            API's own host and port and the provider profile's known hosts: ``host`` (ports 80/443),
            ``host:port``, ``.example.org`` (any sub-domain).
        collection: STAC collection to search; empty for the provider's own (``sentinel-2-l2a``).
    """

    provider: str = "earth-search"
    max_cloud: float = 80.0
    asset_hosts: tuple[str, ...] = ()
    collection: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.max_cloud, bool) or not isinstance(self.max_cloud, (int, float)) \
                or not 0 <= self.max_cloud <= 100:
            raise ConfigError(f"max_cloud is a percentage (0–100), got {self.max_cloud!r}")


@dataclass(frozen=True)
class RunParams:
    """Everything that shapes a run's results besides the AOI and periods.

    Attributes:
        resolution_m: analysis pixel size in metres.
        tile_px: tile edge in pixels; bounds memory per task.
        io_threads: concurrent asset window reads in one process (hides network latency; does not change results);
            tasks running at once in one Dask worker share them (``geo.sources.threads``).
    """

    search: SearchConfig = field(default_factory=SearchConfig)
    cloud: CloudMaskConfig = field(default_factory=CloudMaskConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    sites: SiteConfig = field(default_factory=SiteConfig)
    change: ChangeConfig = field(default_factory=ChangeConfig)
    resolution_m: float = 10.0
    tile_px: int = 1024
    io_threads: int = 4

    def __post_init__(self) -> None:
        check_number("resolution_m", self.resolution_m, 0, 1000, lo_open=True, unit=" metres")
        check_number("tile_px", self.tile_px, None, None, whole=True)
        if self.tile_px < 64:
            raise ConfigError(f"tile_px must be at least 64 pixels, got {self.tile_px}")
        check_number("tile_px", self.tile_px, 64, 8192, whole=True, unit=" pixels")
        check_number("io_threads", self.io_threads, 1, 64, whole=True)
        if not 1 <= self.io_threads <= 64:
            raise ConfigError(f"io_threads must be 1–64, got {self.io_threads}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["cloud"]["clear_classes"] = sorted(self.cloud.clear_classes)
        return d


_SECTIONS = {"search": SearchConfig, "cloud": CloudMaskConfig, "detect": DetectConfig, "sites": SiteConfig,
             "change": ChangeConfig}


def _build(cls, table: dict, where: str, *, strict: bool = True):
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(names))
    if unknown and strict:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)} in [{where}]; allowed: {', '.join(names)}")
    if unknown:
        log.warning("[%s] has unknown key(s) %s (written by another minewatch version?); ignored", where, ", ".join(unknown))
    kwargs = {}
    for k, v in table.items():
        if k not in names:
            continue
        default = getattr(cls(), k) if cls is not RunParams else None
        if isinstance(default, frozenset):
            v = frozenset(v)
        elif isinstance(default, tuple):
            if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
                raise ConfigError(f"[{where}] {k} must be a list of strings, got {v!r}")
            v = tuple(v)
        elif isinstance(default, bool) and not isinstance(v, bool) or (
            isinstance(default, (int, float)) and not isinstance(default, bool) and (isinstance(v, bool) or not isinstance(v, (int, float)))
        ) or (isinstance(default, str) and not isinstance(v, str)):
            raise ConfigError(f"[{where}] {k} must be {type(default).__name__}, got {type(v).__name__} {v!r}")
        kwargs[k] = v
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[{where}] {exc}") from None


def params_from_toml(path: str | Path) -> RunParams:
    """Read a TOML run file: top-level ``resolution_m``/``tile_px`` and tables ``[search]``, ``[cloud]``, ... ."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({exc})") from None
    top = {k: v for k, v in doc.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in doc.items() if isinstance(v, dict)}
    unknown = sorted(set(tables) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"unknown section(s) [{', '.join(unknown)}] in {path}; allowed: {', '.join(_SECTIONS)}")
    kwargs = {name: _build(_SECTIONS[name], tables[name], name) for name in tables}
    det = kwargs.get("detect")
    if det is not None and det.weights and not Path(det.weights).expanduser().is_absolute():
        # relative to the run file, so a run file and its weights travel together
        kwargs["detect"] = dataclasses.replace(det, weights=str((path.parent / Path(det.weights).expanduser()).absolute()))
    for k, v in top.items():
        if k not in ("resolution_m", "tile_px", "io_threads"):
            raise ConfigError(f"unknown key {k!r} in {path}; allowed at top level: resolution_m, tile_px, io_threads")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{k} must be a number, got {v!r}")
        kwargs[k] = v
    try:
        return RunParams(**kwargs)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def params_from_dict(d: dict, *, strict: bool = False) -> RunParams:
    """Rebuild :class:`RunParams` from :meth:`RunParams.to_dict` output (e.g. a run's ``manifest.json``).

    Unknown keys are ignored with a warning unless ``strict``; wrong types raise :class:`ConfigError`.
    """
    kwargs = {name: _build(cls, d[name], name, strict=strict) for name, cls in _SECTIONS.items()
              if isinstance(d.get(name), dict)}
    for k in ("resolution_m", "tile_px", "io_threads"):
        if k in d:
            kwargs[k] = d[k]
    try:
        return RunParams(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"run parameters are invalid ({exc})") from None
