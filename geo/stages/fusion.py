"""How the fused detector keeps what the rules find (pure numpy/scipy; classes 0 background, 1 cleared land, 2 pond)."""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from geo.stages.components import _components, _keep, _near

log = logging.getLogger(__name__)


def keep_rules_footprints(classes: np.ndarray, rule_classes: np.ndarray, model_footprint: np.ndarray,
                          veto_below: float, covered_min: float = 0.1,
                          ponds_only_if_none: bool = True, fill_min_px: int | None = None) -> np.ndarray:
    """Fused classes that keep every rules footprint the model does not veto.

    A rules footprint is an 8-connected component of ``rule_classes > 0``; it is vetoed when the mean of
    ``model_footprint`` (the model's probability of cleared land + pond, 0–1) over it is below ``veto_below``.
    In a kept component the rules' ponds are ponds; its cleared land is added where ``classes`` says background
    only when the fused map covers less than ``covered_min`` of the component (the model missed the site; where
    it saw the site, its own outline is kept), or, with ``fill_min_px``, when the component has at least that many
    pixels (a large rules footprint keeps its whole outline even where the model drew a smaller one). With
    ``ponds_only_if_none`` the rules' ponds are added only to components where the fused map has no pond
    (measured-spectra scenes: pond F1 0.86 -> 0.90; legacy unchanged).
    A model pond inside rules' cleared land stays pond.
    """
    out = classes.copy()
    lab, n = ndimage.label(rule_classes > 0, structure=np.ones((3, 3), bool))
    if n == 0:
        return out
    idx = np.arange(1, n + 1)
    mean_fp = np.asarray(ndimage.mean(model_footprint, lab, idx))
    covered = np.asarray(ndimage.mean(classes > 0, lab, idx))
    keep = np.concatenate([[False], mean_fp >= veto_below])[lab]
    outline = covered < covered_min
    if fill_min_px is not None:
        outline |= np.bincount(lab.ravel(), minlength=n + 1)[1:] >= fill_min_px
    fill = np.concatenate([[False], (mean_fp >= veto_below) & outline])[lab]
    if ponds_only_if_none:  # the rules' ponds are added where the model found no pond in the footprint
        has_pond = np.asarray(ndimage.maximum(classes == 2, lab, idx)).astype(bool)
        keep &= np.concatenate([[False], ~has_pond])[lab]
    out[keep & (rule_classes == 2)] = 2
    out[fill & (rule_classes == 1) & (out == 0)] = 1
    vetoed = int((mean_fp < veto_below).sum())
    if vetoed:
        log.debug("fused: the model vetoed %d of %d rules footprints", vetoed, n)
    return out


def ponds_off_rivers(classes: np.ndarray, river: np.ndarray) -> np.ndarray:
    """Ponds (class 2) the model draws in a river or lake are not leaching ponds.

    ``river`` is the rules' mask of large or elongated water bodies (:func:`geo.stages.detect.classify_rules`).
    A pond component (8-connected) that overlaps it becomes cleared land when it touches cleared land (wet or shaded
    spoil the rules' water test takes for open water), otherwise background (a river reach, a lake shore). The rules
    apply the same shape test to their own ponds; this applies it to the model's.
    """
    lab, n = _components(classes == 2)
    if n == 0 or not river.any():
        return classes
    hit = np.bincount(lab[river], minlength=n + 1)[1:n + 1] > 0
    if not hit.any():
        return classes
    touch = _near(lab, n, classes == 1, 1.5)
    out = classes.copy()
    out[_keep(lab, hit & touch)] = 1
    out[_keep(lab, hit & ~touch)] = 0
    log.debug("fused: %d model pond(s) in rivers or lakes (%d joined cleared land)", int(hit.sum()), int((hit & touch).sum()))
    return out


def drop_large_pondless(classes: np.ndarray, pond_proba: np.ndarray, min_px: int, evidence: float,
                        within_px: int) -> np.ndarray:
    """Cleared land without any sign of a pond: a cleared-land component (8-connected class 1) of at least
    ``min_px`` pixels becomes background when no pixel within ``within_px`` of it is a pond or has pond
    probability ``>= evidence``.

    In-situ leaching needs its pools: a mine clearing of several hectares holds some, even when they are too small
    to be mapped as ponds (the model then still gives them a little pond probability), whereas a ploughed field, a
    quarry or a landslide that large has none. Smaller clearings are left alone (young sites, pads being dug).
    """
    lab, n = _components(classes == 1)
    size = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    big = size >= min_px
    if not big.any():
        return classes
    drop = big & ~_near(lab, n, (pond_proba >= evidence) | (classes == 2), max(int(within_px), 0))
    if not drop.any():
        return classes
    out = classes.copy()
    out[_keep(lab, drop)] = 0
    log.debug("dropped %d cleared-land component(s) of >= %d px without pond evidence", int(drop.sum()), min_px)
    return out


def drop_small(classes: np.ndarray, pixel_area: float, pond_min_m2: float, cleared_min_m2: float) -> np.ndarray:
    """Specks are noise, not footprints: pond components (class 2) under ``pond_min_m2`` and cleared-land components
    (class 1) under ``cleared_min_m2`` become background."""
    out = classes.copy()
    for cls, min_area in ((2, pond_min_m2), (1, cleared_min_m2)):
        lab, n = _components(out == cls)
        if n:
            area = np.bincount(lab.ravel(), minlength=n + 1)[1:] * pixel_area
            out[_keep(lab, area < min_area)] = 0
    return out
