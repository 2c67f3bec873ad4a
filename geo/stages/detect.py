"""Per-pixel detection of mining footprints: a spectral-rules baseline, the U-Net and their fusion.

Classes (see ARCHITECTURE.md): 0 background, 1 cleared land, 2 leaching pond.

The rules encode the physics of the scene:

* **Leaching ponds** are small bodies of water: high MNDWI (green ≫ SWIR1), very low SWIR (water absorbs at 1.6
  and 2.2 µm), low NIR — whatever their colour (turquoise, milky, red-brown from dissolved iron or sediment). They
  sit inside or next to cleared land.
* **Cleared land** is bare, bright, often reddish soil: low NDVI, positive BSI, high SWIR1.
* **Rivers and lakes** are water too but large or elongated; bare land along them (sand and gravel bars) is not
  cleared land.
* **Fields and villages** also show bare soil. Without a pond nearby they are background
  (configurable with :attr:`RuleThresholds.cleared_requires_pond_within_m`).

Pixels without a clear observation (NaN in the composite or ``clear_count == 0``) are class 0 with confidence 0.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from geo.config import VIEWS
from geo.errors import ConfigError, RasterError
from geo.grid import GeoGrid
from geo.stages.components import _components, _elongation, _keep, _near  # noqa: F401  (tests import them here)
from geo.stages.fusion import drop_large_pondless, drop_small, keep_rules_footprints, ponds_off_rivers
from geo.stages.indices import brightness, bsi, mndwi, ndvi
from geo.stack import Composite

log = logging.getLogger(__name__)

BACKGROUND, CLEARED, POND = 0, 1, 2
CLASS_NAMES = {BACKGROUND: "background", CLEARED: "cleared_land", POND: "leaching_pond"}
METHODS = ("rules", "model", "fused")
#: Bands the rules read.
RULE_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")


@dataclass(frozen=True)
class Detection:
    """Result of :func:`classify`.

    Attributes:
        classes: uint8 ``(y, x)``: 0 background, 1 cleared land, 2 leaching pond.
        confidence: float32 ``(y, x)`` in 0–1, confidence in the assigned class (0 where no clear
            observation exists).
        grid: georeferencing of both arrays.
        input_check: for the model methods, :func:`geo.stages.input_check.check_input`'s report (is the
            composite within what the model was trained on?), for the run's manifest; ``None`` for the rules.
        model_fp: for the model methods, the model's footprint probability before fusion (float16, ``(y, x)``).
        rules_classes: for ``"fused"``, the rules' own classes (what the fused map could have lost).
    """

    classes: np.ndarray
    confidence: np.ndarray
    grid: GeoGrid
    input_check: dict | None = None
    model_fp: np.ndarray | None = None
    rules_classes: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.classes.shape != self.grid.shape or self.confidence.shape != self.grid.shape:
            raise RasterError(
                f"detection arrays {self.classes.shape}/{self.confidence.shape} do not match grid {self.grid.shape}"
            )


@dataclass(frozen=True)
class RuleThresholds:
    """Thresholds of the rules classifier. Reflectances are L2A surface reflectance (0–1).

    Attributes:
        water_mndwi_min: MNDWI (Xu) above which a pixel is water (unitless, −1..1). Open water,
            turbid or not, is > 0.2; bare soil, built-up and forest are < 0.
        water_swir1_max: B11 reflectance below which a pixel may be water. Water absorbs at
            1.6 µm; even sediment-laden ponds stay < 0.08, soil is > 0.15.
        water_nir_max: B08 reflectance upper bound for water. Milky ponds reach ≈0.15; vegetation
            is > 0.2.
        water_ndvi_max: NDVI upper bound for water (excludes floating/emergent vegetation).
        water_ndvi_strict_max: NDVI below which a pixel counts as water even when its 20 m SWIR is
            mixed with surrounding soil (small ponds); land surfaces are > 0.
        pond_green_min: smallest B03 reflectance of a leaching pond. Leach liquor carries
            suspended clay, precipitates and dissolved iron, so ponds are turquoise, milky or
            red-brown (B03 ≈ 0.08–0.25); natural ponds, marsh pools and shadowed water are dark
            (B03 < 0.065 in the real no-mining scenes).
        pond_min_area_m2: smallest pond kept, m² (one 10 m pixel is 100 m²).
        pond_max_area_m2: largest pond, m²; larger water bodies are rivers or lakes.
        pond_max_elongation: largest major/minor axis ratio of a pond; more elongated water is a
            river or channel.
        pond_requires_bare_within_m: a pond must lie within this distance (m) of bare soil
            (ponds are dug into cleared land). ``None`` disables the rule.
        bare_ndvi_max: NDVI below which land is unvegetated.
        bare_bsi_min: Bare Soil Index above which land is bare soil.
        bare_swir1_min: B11 reflectance above which land may be bare soil (dry soil reflects strongly
            at 1.6 µm, ≈ 0.25–0.4 in sun, lower on shaded slopes).
        bare_brightness_min: smallest mean reflectance of the six analysis bands for cleared
            land (fresh laterite ≈ 0.2, ≈ 0.07 on shaded slopes; deep shadow and burnt land are lower).
        bare_min_area_m2: smallest cleared-land patch kept, m².
        cleared_requires_pond_within_m: bare soil counts as cleared land only if a pond lies within
            this distance (m); separates mine sites from fallow fields and villages. ``None``
            disables the rule.
        river_min_area_m2: water bodies at least this large (m²) are treated as rivers/lakes.
        river_buffer_m: bare land within this distance (m) of a river is a sand/gravel bar, not
            cleared land.
        full_confidence_clear_count: number of clear observations that give full confidence; fewer
            scale confidence down linearly.
        softness: width (in index units) of the soft ramp used to turn threshold margins into
            confidence.
    """

    water_mndwi_min: float = 0.2
    water_swir1_max: float = 0.08
    water_nir_max: float = 0.16
    water_ndvi_max: float = 0.2
    water_ndvi_strict_max: float = -0.08
    pond_green_min: float = 0.065
    pond_min_area_m2: float = 100.0
    pond_max_area_m2: float = 40_000.0
    pond_max_elongation: float = 5.0
    pond_requires_bare_within_m: float | None = 50.0
    bare_ndvi_max: float = 0.3
    bare_bsi_min: float = 0.02
    bare_swir1_min: float = 0.07
    bare_brightness_min: float = 0.05
    bare_min_area_m2: float = 500.0
    cleared_requires_pond_within_m: float | None = 150.0
    river_min_area_m2: float = 40_000.0
    river_buffer_m: float = 30.0
    full_confidence_clear_count: int = 2
    softness: float = 0.1

    def __post_init__(self) -> None:
        if self.pond_min_area_m2 > self.pond_max_area_m2:
            raise ConfigError("pond_min_area_m2 must not exceed pond_max_area_m2")
        if self.softness <= 0:
            raise ConfigError("softness must be > 0")
        if self.full_confidence_clear_count < 1:
            raise ConfigError("full_confidence_clear_count must be >= 1")


@dataclass(frozen=True)
class FusionConfig:
    """How :func:`classify` fuses the U-Net with the rules (``method="fused"``).

    Attributes:
        rules: thresholds of the rules classifier.
        rules_weight: weight (0–1) of the rules' one-hot vote against the model probabilities.
        rules_fill_below_cover: a kept rules footprint adds its cleared land only where the fused map covers
            less than this share of it (0.5 added rules' false footprints: measured-sim IoU 0.50 vs 0.65).
        rules_fill_min_m2: a kept rules footprint of at least this area (m²) adds all its cleared land whatever
            the model covers (``None``: off, the default). Measured in December 2026 with 10 ha and not adopted:
            mean fused IoU on the gen_d/e/g tuning scenes 0.428 -> 0.451 (gen_d base 0.551 -> 0.692), but on the
            held-out blind-generator scenes (gen_a-g, seeds 900000+) only 0.560 -> 0.562, against the +0.01
            decided beforehand, and the own measured-spectra suite fell 0.520 -> 0.477.
        rules_vote_background: whether the rules also vote where they find nothing. Off since 2.0.0: it erased
            unsure model cleared land (demo growth −5.3 pp vs −2.1 pp; legacy cleared IoU 0.76 vs 0.80).
        pondless_clearing_max_m2: the largest cleared-land patch kept without any sign of a pond
            (:func:`geo.stages.fusion.drop_large_pondless`): a patch at least this large (m²; default 10 ha)
            becomes background when nothing within ``rules.cleared_requires_pond_within_m`` is pond or has pond
            probability ``>= pond_evidence_min``. Weights 2.1.0 call a 15 ha harvested field in held-out Virginia
            cleared land (0.15 % of the scene; 0.04 % without it). 0.02 kept that field; 0.05 was chosen looking at
            that held-out scene. 1 ha scored better on the blind generators (gen_a/b/c tuning seeds: mean
            footprint IoU 0.496 -> 0.499; held-out gen_d/e 0.583 -> 0.591) but erased abandoned sites, whose ponds are
            gone and whose clearings are still mining footprint: the demo's 2021-22 area fell 8.5 % short and its
            95 % interval missed the truth in 3 of 6 seasons, so it stays 10 ha. ``None`` turns the check off.
        pond_evidence_min: see ``pondless_clearing_max_m2``.
        ponds_off_rivers: fused only: a model pond that overlaps the rules' rivers and lakes is not a leaching pond
            (:func:`geo.stages.fusion.ponds_off_rivers`): it joins the cleared land it touches, else becomes
            background. Chosen on the gen_a/b/c tuning seeds (mean pond F1 0.264 -> 0.290, IoU unchanged); see
            the model card for the held-out check and how that variant was picked.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` for the model.
        views: flipped views the model's probabilities are averaged over (1, 2 or 4; :func:`models.infer.predict_proba`;
            4x the model's time for 4). 1 by default: what 4 gained and cost is in the model card's limits.
        weights: path to a weights file; ``None`` uses the shipped weights.
        tile: largest inference tile in px (tiles are trimmed to the raster; 384–768 px run equally
            fast on 2 CPU cores, see ``benchmarks/bench_infer.py --sweep``).
        overlap: least tile overlap in px (blended).
        batch_size: tiles per forward pass (memory grows with ``batch_size × tile²``).
        cleared_needs_pond: apply the rules' context check to the model's map too: cleared land
            counts only within ``rules.cleared_requires_pond_within_m`` of a pond (mine sites have
            ponds; bright fallow fields do not). Off by default: on simulated scenes it removes
            pond-less (e.g. abandoned) cleared land and drops cleared-land IoU from 0.83 to 0.64.
        keep_rules_below: the fused map never loses what the rules find: every footprint the rules
            detect (8-connected component of cleared land + ponds) is kept — its ponds always, its cleared
            land where the model missed most of it (:func:`geo.stages.fusion.keep_rules_footprints`) —
            unless the model's mean footprint probability over the component is below this value (0 keeps
            every rules footprint). The model vetoes only
            what it is confident is background, such as bright fields in the real no-mining scenes.
            Weights 2.0.0: rules' false footprints in held-out Virginia get 0.007-0.13 (one of 14 px 0.39);
            true rules footprints on measured-spectra scenes >= 0.25 (5 % quantile 0.59).
    """

    rules: RuleThresholds = field(default_factory=RuleThresholds)
    rules_weight: float = 0.3
    device: str = "auto"
    weights: str | None = None
    tile: int = 384
    overlap: int = 32
    batch_size: int = 4
    cleared_needs_pond: bool = False
    keep_rules_below: float = 0.15
    rules_vote_background: bool = False
    rules_fill_below_cover: float = 0.1
    rules_fill_min_m2: float | None = None
    pondless_clearing_max_m2: float | None = 100_000.0
    pond_evidence_min: float = 0.05
    ponds_off_rivers: bool = True
    views: int = 1

    def __post_init__(self) -> None:
        if self.views not in VIEWS or isinstance(self.views, bool):
            raise ConfigError(f"views must be 1, 2 or 4 (flipped copies the model averages), not {self.views!r}")


def _ramp(x: np.ndarray, softness: float) -> np.ndarray:
    """Map a signed margin to 0–1 (0.5 at the threshold) with a logistic of width ``softness``."""
    with np.errstate(over="ignore", invalid="ignore"):
        return (1.0 / (1.0 + np.exp(-4.0 * x / softness))).astype(np.float32)


def rule_scores(data: np.ndarray, bands: tuple[str, ...], t: RuleThresholds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soft per-pixel ``(water, bare soil, pond-coloured water)`` scores (0–1, 0.5 on the threshold)
    from spectra alone."""
    b = {k: data[bands.index(k)] for k in RULE_BANDS}
    s = t.softness
    with np.errstate(invalid="ignore"):
        # 20 m SWIR of a 2-3 px pond mixes with the soil around it, so the 10 m NDVI/NIR test can
        # stand in for the SWIR test (either suffices)
        swir_test = np.minimum(_ramp(mndwi(green=b["B03"], swir1=b["B11"]) - t.water_mndwi_min, s),
                               _ramp((t.water_swir1_max - b["B11"]) * 5, s))
        water = np.minimum.reduce([
            np.maximum(swir_test, _ramp(t.water_ndvi_strict_max - ndvi(red=b["B04"], nir=b["B08"]), s)),
            _ramp((t.water_nir_max - b["B08"]) * 3, s),
            _ramp(t.water_ndvi_max - ndvi(red=b["B04"], nir=b["B08"]), s),
        ])
        bare = np.minimum.reduce([
            _ramp(t.bare_ndvi_max - ndvi(red=b["B04"], nir=b["B08"]), s),
            _ramp(bsi(blue=b["B02"], red=b["B04"], nir=b["B08"], swir1=b["B11"]) - t.bare_bsi_min, s),
            _ramp((b["B11"] - t.bare_swir1_min) * 3, s),
            _ramp((brightness(blue=b["B02"], green=b["B03"], red=b["B04"], nir=b["B08"], swir1=b["B11"],
                              swir2=b["B12"]) - t.bare_brightness_min) * 3, s),
        ])
        # leaching-pond colour: brighter than natural dark water
        pond = np.minimum(water, _ramp((b["B03"] - t.pond_green_min) * 5, s))
    return np.nan_to_num(water, nan=0.0), np.nan_to_num(bare, nan=0.0), np.nan_to_num(pond, nan=0.0)


def classify_rules(composite: Composite, thresholds: RuleThresholds | None = None) -> Detection:
    """The spectral-rules classifier (see module docstring and :class:`RuleThresholds`)."""
    return _rules(composite, thresholds or RuleThresholds())[0]


def _rules(composite: Composite, t: RuleThresholds) -> tuple[Detection, np.ndarray]:
    """:func:`classify_rules` and the rules' mask of rivers and lakes (large or elongated water bodies)."""
    bands = tuple(composite.bands)
    missing = [b for b in RULE_BANDS if b not in bands]
    if missing:
        raise RasterError(f"the rules need bands {', '.join(missing)}; the composite has {', '.join(bands)}")
    data = composite.data.astype(np.float32, copy=False)
    valid = composite.valid & np.all(np.isfinite(data), axis=0)
    water_s, bare_s, pond_s = rule_scores(data, bands, t)
    for a in (water_s, bare_s, pond_s):
        a[~valid] = 0
    px_area = composite.grid.pixel_area
    res = composite.grid.resolution

    water = water_s > 0.5
    wl, wn = _components(water)
    warea = np.asarray(ndimage.sum(water, wl, np.arange(1, wn + 1))) * px_area if wn else np.zeros(0)
    elong = _elongation(wl, wn)
    river_c = (warea >= t.river_min_area_m2) | ((elong > t.pond_max_elongation) & (warea > 4 * t.pond_min_area_m2))
    coloured = np.asarray(ndimage.mean(pond_s, wl, np.arange(1, wn + 1))) > 0.5 if wn else np.zeros(0, bool)
    pond_c = (~river_c & coloured & (warea >= t.pond_min_area_m2) & (warea <= t.pond_max_area_m2)
              & (elong <= t.pond_max_elongation))
    river = _keep(wl, river_c)

    bare = (bare_s > 0.5) & ~water
    bl, bn = _components(bare)
    barea = np.asarray(ndimage.sum(bare, bl, np.arange(1, bn + 1))) * px_area if bn else np.zeros(0)
    bar_c = _near(bl, bn, river, t.river_buffer_m / res + 1)
    bare_ok_c = (barea >= t.bare_min_area_m2) & ~bar_c
    bare_ok = _keep(bl, bare_ok_c)

    if t.pond_requires_bare_within_m is not None:
        pond_c &= _near(wl, wn, bare_ok, t.pond_requires_bare_within_m / res + 1)
    pond = _keep(wl, pond_c)
    if t.cleared_requires_pond_within_m is not None:
        bare_ok_c &= _near(bl, bn, pond, t.cleared_requires_pond_within_m / res + 1)
    cleared = _keep(bl, bare_ok_c)

    classes = np.zeros(composite.grid.shape, np.uint8)
    classes[cleared] = CLEARED
    classes[pond] = POND
    conf = np.where(pond, pond_s, np.where(cleared, bare_s, 1.0 - np.maximum(water_s, bare_s)))
    # spectrally positive but rejected by shape/context rules: moderately confident background
    rejected = ~pond & ~cleared & ((water_s > 0.5) | (bare_s > 0.5))
    conf = np.where(rejected, np.maximum(conf, 0.6), conf).astype(np.float32)
    conf *= np.clip(composite.clear_count.astype(np.float32) / t.full_confidence_clear_count, 0, 1)
    conf[~valid] = 0
    classes[~valid] = BACKGROUND
    log.debug("rules: %d pond px, %d cleared px of %d", int(pond.sum()), int(cleared.sum()), classes.size)
    return Detection(classes, conf.astype(np.float32), composite.grid), river & valid


def classify(composite: Composite, *, method: str = "rules", config=None) -> Detection:
    """Classify a composite into background / cleared land / leaching pond.

    Args:
        composite: reflectance composite (NaN or ``clear_count == 0`` where there is no clear
            observation; those pixels become class 0 with confidence 0).
        method: ``"rules"`` (spectral rules only), ``"model"`` (U-Net only) or ``"fused"``
            (U-Net probabilities blended with the rules, then the rules' shape/context checks).
        config: :class:`RuleThresholds` for ``"rules"``; :class:`FusionConfig` for ``"model"``
            and ``"fused"`` (a :class:`RuleThresholds` is accepted too). ``None`` = defaults.

    Raises:
        ConfigError: unknown method or config type.
        WeightsError: model weights missing or not matching the composite's bands.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown detection method '{method}'; use one of {', '.join(METHODS)}")
    if method == "rules":
        if config is not None and not isinstance(config, RuleThresholds):
            config = getattr(config, "rules", None)
            if config is None:
                raise ConfigError("method='rules' needs a RuleThresholds (or FusionConfig) config")
        return classify_rules(composite, config)
    if config is None:
        config = FusionConfig()
    elif isinstance(config, RuleThresholds):
        config = FusionConfig(rules=config)
    elif not isinstance(config, FusionConfig):
        raise ConfigError(f"method='{method}' needs a FusionConfig, got {type(config).__name__}")
    return _classify_model(composite, config, fuse=(method == "fused"))


@functools.lru_cache(maxsize=4)
def _cached_model(weights: str | None, device: str, mtime: float):
    from models.infer import load_model  # local: torch is imported only when the model is used

    return load_model(weights, device=device)


def _classify_model(composite: Composite, config: FusionConfig, *, fuse: bool) -> Detection:
    """U-Net (optionally fused with the rules) → classes + confidence."""
    from models.infer import DEFAULT_WEIGHTS, predict_proba

    path = Path(config.weights) if config.weights else DEFAULT_WEIGHTS
    mtime = path.stat().st_mtime if path.exists() else -1.0  # a rewritten file is reloaded
    model, card = _cached_model(config.weights, config.device, mtime)
    valid = composite.valid & np.all(np.isfinite(composite.data), axis=0)
    proba = predict_proba(
        model, card, composite.data, composite.bands,
        tile=config.tile, overlap=config.overlap, batch_size=config.batch_size, device=config.device, reorder=True,
        views=config.views,
    )  # (3, y, x)
    t = config.rules
    model_fp = 1.0 - proba[BACKGROUND]
    rules = None
    if fuse:
        rules, river = _rules(composite, t)
        onehot = np.eye(3, dtype=np.float32)[rules.classes].transpose(2, 0, 1)
        if config.rules_vote_background is False:  # the rules only vote for what they find
            onehot = np.where(rules.classes == BACKGROUND, proba, onehot)
        w = float(np.clip(config.rules_weight, 0, 1))
        proba = (1 - w) * proba + w * onehot
    classes = np.argmax(proba, axis=0).astype(np.uint8)
    # specks below the rules' minimum pond / cleared-land areas are noise, not footprints
    classes = drop_small(classes, composite.grid.pixel_area, t.pond_min_area_m2, t.bare_min_area_m2)
    if rules is not None:
        fill_px = (None if config.rules_fill_min_m2 is None
                   else int(np.ceil(config.rules_fill_min_m2 / composite.grid.pixel_area)))
        classes = keep_rules_footprints(classes, rules.classes, model_fp, config.keep_rules_below,
                                        config.rules_fill_below_cover, fill_min_px=fill_px)
        if config.ponds_off_rivers:
            classes = ponds_off_rivers(classes, river)
    if config.pondless_clearing_max_m2 is not None and t.cleared_requires_pond_within_m is not None:
        g = composite.grid
        classes = drop_large_pondless(classes, proba[POND], int(np.ceil(config.pondless_clearing_max_m2 / g.pixel_area)),
                                      config.pond_evidence_min, int(round(t.cleared_requires_pond_within_m / g.resolution)))
    if config.cleared_needs_pond and t.cleared_requires_pond_within_m is not None:
        lab, n = _components(classes == CLEARED)
        near = _near(lab, n, classes == POND, t.cleared_requires_pond_within_m / composite.grid.resolution + 1)
        classes[_keep(lab, ~near)] = BACKGROUND
    conf = np.take_along_axis(proba, classes[None].astype(np.int64), axis=0)[0]
    conf = conf * np.clip(composite.clear_count.astype(np.float32) / t.full_confidence_clear_count, 0, 1)
    classes[~valid] = BACKGROUND
    conf = np.where(valid, conf, 0).astype(np.float32)
    from geo.stages.input_check import check_input
    return Detection(classes, conf, composite.grid, check_input(composite, config.weights), model_fp.astype(np.float16),
                     None if rules is None else rules.classes)

