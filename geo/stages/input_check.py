"""Is a composite within what the U-Net was trained on? A cheap check whose result a run can log and record.

The model card (since weights 2.0.0) carries ``input_range``: per-band 0.5 / 50 / 99.5 percentiles of the
training reflectance and the range of per-chip median brightness (``scripts/train_weights.py``).
:func:`check_input` compares a composite with it and logs a warning for each finding; it never changes
the detection.
"""

from __future__ import annotations

import logging

import numpy as np

from geo.stack import Composite

log = logging.getLogger(__name__)

#: A band is flagged when more than this share of valid pixels lies outside the (widened) training range.
OUTSIDE_SHARE_MAX = 0.10
#: Slack on the trained range of median brightness (multiplicative) before a scene is flagged.
BRIGHTNESS_SLACK = 1.25
#: Slack on the per-band training 0.5–99.5 % range (multiplicative): a pixel is outside below p0.5 / slack
#: or above p99.5 · slack (one bright-soil chip of the training data itself has ~12 % of its SWIR above p99.5).
BAND_SLACK = 1.5
#: Pixels sampled for the statistics.
SAMPLE = 200_000


def check_input(composite: Composite, weights: str | None = None) -> dict:
    """Compare a composite's statistics with the training data of the model card next to ``weights``.

    Returns a JSON-ready dict: ``checked`` (False when the card has no ``input_range``), ``in_range``,
    ``warnings`` (human-readable findings, also logged at WARNING), ``median_brightness`` (median over valid
    pixels of the six-band mean reflectance) with the ``trained_median_brightness`` range, and
    ``outside_share`` per band (share of valid pixels outside the training 0.5–99.5 % range widened by
    :data:`BAND_SLACK`; a log model's per-band floor is applied first, since the model sees a darker pixel as the
    floor, see :func:`models.infer.input_transform`).
    """
    from models.infer import load_card  # local: the card is read only when checked

    card = load_card(weights)
    rng_ = (card.extra or {}).get("input_range")
    if not rng_:
        return {"checked": False, "in_range": True, "warnings": [],
                "reason": f"model card {card.version} records no input_range"}
    bands = list(card.bands)
    idx = [list(composite.bands).index(b) for b in bands if b in composite.bands]
    if len(idx) != len(bands):
        return {"checked": False, "in_range": False, "warnings": ["composite lacks the model's bands"],
                "reason": "band mismatch"}
    data = composite.data[idx].reshape(len(idx), -1)
    valid = composite.valid.reshape(-1) & np.all(np.isfinite(data), axis=0)
    pix = data[:, valid]
    if pix.shape[1] == 0:
        return {"checked": False, "in_range": True, "warnings": [], "reason": "no valid pixels"}
    if pix.shape[1] > SAMPLE:
        pix = pix[:, np.random.default_rng(0).choice(pix.shape[1], SAMPLE, replace=False)]
    if card.transform == "log":  # below its floor a band reads as the floor to the model: not outside its range
        pix = np.maximum(pix, card.floors()[:, None])
    lo, hi = np.asarray(rng_["bands_p0.5"]), np.asarray(rng_["bands_p99.5"])
    lo, hi = lo / BAND_SLACK, hi * BAND_SLACK
    outside = ((pix < lo[:, None]) | (pix > hi[:, None])).mean(axis=1)
    med = float(np.median(pix.mean(axis=0)))
    bmin, bmax = rng_["median_brightness"]
    warnings = []
    if not bmin / BRIGHTNESS_SLACK <= med <= bmax * BRIGHTNESS_SLACK:
        warnings.append(f"scene median brightness {med:.3f} is outside the trained range {bmin:.3f}-{bmax:.3f} "
                        "(wrong scaling/offset, heavy haze or an unusual landscape?)")
    for b, share in zip(bands, outside):
        if share > OUTSIDE_SHARE_MAX:
            warnings.append(f"{share:.0%} of {b} pixels lie outside the training range {lo[bands.index(b)]:.3f}-"
                            f"{hi[bands.index(b)]:.3f}")
    for w in warnings:
        log.warning("input check (model %s): %s; detections may be unreliable, validate with minewatch evaluate",
                    card.version, w)
    return {"checked": True, "in_range": not warnings, "warnings": warnings, "model_version": card.version,
            "median_brightness": round(med, 4), "trained_median_brightness": [bmin, bmax],
            "outside_share": {b: round(float(s), 4) for b, s in zip(bands, outside)}}


#: The model is unsure of a pixel whose footprint probability (before fusion) lies in [UNSURE_LOW, UNSURE_HIGH).
UNSURE_LOW, UNSURE_HIGH = 0.1, 0.5
#: A season is "model doubtful" when more than this share of its possible-footprint pixels (probability >=
#: UNSURE_LOW) are ones the model is unsure of. Chosen on 90 scenes of the blind generators gen_d, gen_e, gen_g
#: (tuning seeds 800000+, weights 2.1.0; docs/MODEL_CHECKS.md): scenes with a share >= 0.5 had fused footprint IoU
#: 0.20-0.38 on average, scenes below 0.4 had 0.62-0.73 (Spearman correlation of share and IoU -0.79).
UNSURE_SHARE_MAX = 0.5
#: Fewer possible-footprint pixels than this (5 ha at 10 m) say nothing about the model's certainty.
UNSURE_MIN_PX = 500


def unsure_counts(model_fp: np.ndarray, mask: np.ndarray) -> dict:
    """Possible-footprint pixels (model probability >= UNSURE_LOW) inside ``mask`` and how many of them the model
    is unsure of (< UNSURE_HIGH), for a task's ``done.json``."""
    p = model_fp[mask]
    cand = p >= UNSURE_LOW
    return {"candidate_px": int(cand.sum()), "unsure_px": int((cand & (p < UNSURE_HIGH)).sum())}


def _count(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def season_check(records: list) -> dict:
    """One season's model check from its tasks' ``model_check`` records (``done.json``).

    Returns ``model_uncertain_share`` (None when it cannot be told), ``model_check_unavailable`` (why not, or
    None), ``input_warnings``: the input check's findings, one per band (the worst tile's share), and the rules'
    areas of :func:`geo.stages.rules_check.season_rules`.
    """
    from geo.stages.rules_check import season_rules

    rules = season_rules(records)  # known also where the model's own check is not (a model blind to the scene)

    def none(why: str | None) -> dict:
        return {"model_uncertain_share": None, "model_check_unavailable": why, "input_warnings": [], **rules}

    if not records or all(r is None for r in records):
        return none(None)  # the rules ran (or the season has no tasks): no model to check
    if any(r is None for r in records):
        return none("some of its tasks were made by an older minewatch; delete tasks/<season> and rerun to "
                    "check it")
    cand = unsure = 0
    for r in records:  # a hand-edited done.json says nothing rather than stopping the report
        c, u = (_count(r.get("candidate_px")), _count(r.get("unsure_px"))) if isinstance(r, dict) else (None, None)
        if c is None or u is None or u > c:
            return none("a task's model_check record is damaged; delete tasks/<season> and rerun to check it")
        cand, unsure = cand + c, unsure + u
    if cand < UNSURE_MIN_PX:
        return none(f"fewer than {UNSURE_MIN_PX} pixels were possible footprint ({cand})")
    worst: dict[str, tuple[int, str]] = {}  # per band (the text after "NN% of "): the worst tile's warning
    for r in records:
        ws = r.get("input_warnings")
        for w in ws if isinstance(ws, list) else []:
            if not isinstance(w, str):
                continue
            pct, _, rest = w.partition("% of ")
            key, share = (rest, int(pct)) if pct.isdigit() and rest else (w, 0)
            if key not in worst or share > worst[key][0]:
                worst[key] = (share, w)
    return {"model_uncertain_share": round(unsure / cand, 4), "model_check_unavailable": None,
            "input_warnings": [w for _, w in worst.values()][:10], **rules}


def clean_share(v) -> float | None:
    """A season's ``model_uncertain_share`` as read back from a file: a finite number in 0-1, else None."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return None
    try:
        f = float(v)
    except ValueError:
        return None
    return f if 0.0 <= f <= 1.0 else None  # NaN and inf fail both comparisons


def clean_warnings(v) -> list[str]:
    """A season's ``input_warnings`` as read back from a file: its strings, else nothing."""
    return [w for w in v if isinstance(w, str)][:10] if isinstance(v, list) else []


def is_doubtful(share) -> bool:
    """True when a season's ``model_uncertain_share`` is above UNSURE_SHARE_MAX."""
    f = clean_share(share)
    return f is not None and f > UNSURE_SHARE_MAX


def season_checks(coverage: dict) -> dict[str, dict]:
    """Per season of ``coverage`` (``coverage.json``, checked): ``model_uncertain_share``, ``model_doubtful``
    (None when the share is unknown), ``model_check_unavailable`` and ``input_warnings`` — what the summary, the
    report and the manifest all say; with the rules' areas and ``rules_disagree`` (:mod:`geo.stages.rules_check`)."""
    from geo.stages.rules_check import clean_rules

    out = {}
    for p, c in coverage.items():
        c = c if isinstance(c, dict) else {}
        share = clean_share(c.get("model_uncertain_share"))
        why = c.get("model_check_unavailable")
        out[p] = {"model_uncertain_share": share, "model_doubtful": None if share is None else share > UNSURE_SHARE_MAX,
                  "model_check_unavailable": why if isinstance(why, str) else None,
                  "input_warnings": clean_warnings(c.get("input_warnings")), **clean_rules(c)}
    return out
