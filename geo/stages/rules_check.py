"""What the spectral rules alone find, and how much of it the fused map leaves out (docs/MODEL_CHECKS.md).

The fused detector keeps a rules footprint unless the model is confident it is background
(:func:`geo.stages.fusion.keep_rules_footprints`). That veto removes the rules' bright-field false alarms on real
no-mining imagery, and it also removes real spoil the model has never seen: on gen_d tuning scenes the veto left
out up to a third of the true footprint. Which of the two happened cannot be told without labels, so a run records the
disagreement per season (``rules_m2``, ``rules_dropped_m2``, ``footprint_m2`` in each task's ``done.json``) and the
report says RULES DISAGREE where the rules footprint the fused map left out is a material part of the season's area.
"""

from __future__ import annotations

import math

import numpy as np

#: The rules footprint the fused map left out must be at least this large (m², 5 ha) ...
RULES_MIN_DROPPED_M2 = 50_000.0
#: ... and at least this share of the fused footprint for the season to be flagged: its area could be off by that much.
RULES_DROPPED_SHARE = 0.25
_KEYS = ("rules_m2", "rules_dropped_m2", "footprint_m2")


def rules_counts(rules_classes: np.ndarray, classes: np.ndarray, mask: np.ndarray, pixel_area: float) -> dict:
    """A task's areas (m², inside ``mask``): the rules' footprint, the part of it ``classes`` (the fused map) calls
    background, and the fused footprint (classes 1 and 2)."""
    rules = (rules_classes > 0) & mask
    fused = ((classes == 1) | (classes == 2)) & mask
    return {"rules_m2": float(rules.sum()) * pixel_area, "rules_dropped_m2": float((rules & ~fused).sum()) * pixel_area,
            "footprint_m2": float(fused.sum()) * pixel_area}


def _area(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 else None


def _clean(rec) -> dict | None:
    """The three areas of a record (read back from a file), or None when any is missing or damaged."""
    vals = [_area(rec.get(k)) for k in _KEYS] if isinstance(rec, dict) else [None]
    if any(v is None for v in vals) or vals[1] > vals[0]:
        return None
    return dict(zip(_KEYS, vals))


def season_rules(records: list) -> dict:
    """A season's areas summed over its tasks' ``model_check`` records; all None unless every task has them (the
    rules or the model alone ran, or a task was made by an older minewatch)."""
    clean = [_clean(r) for r in records]
    if not clean or any(c is None for c in clean):
        return dict.fromkeys(_KEYS)
    return {k: round(sum(c[k] for c in clean), 1) for k in _KEYS}


def clean_rules(coverage_record: dict) -> dict:
    """A season's areas as read back from ``coverage.json`` (None when damaged) and ``rules_disagree``: True when
    the dropped rules footprint is at least RULES_MIN_DROPPED_M2 and RULES_DROPPED_SHARE of the fused footprint,
    None when unknown."""
    c = _clean(coverage_record)
    if c is None:
        return {**dict.fromkeys(_KEYS), "rules_disagree": None}
    drop = c["rules_dropped_m2"]
    return {**c, "rules_disagree": drop >= RULES_MIN_DROPPED_M2 and drop >= RULES_DROPPED_SHARE * c["footprint_m2"]}
