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
