#!/usr/bin/env python
"""Reproduce the shipped U-Net weights from scratch on CPU.

    python scripts/train_weights.py                       # writes runs/weights/unet_<version>.{pt,json} + MODEL_CARD.md
    python scripts/train_weights.py --out /tmp/m.pt       # somewhere else
    python scripts/train_weights.py --overwrite-shipped   # replaces models/weights/unet_v1.{pt,json} + MODEL_CARD.md

The shipped weights are replaced only with ``--overwrite-shipped`` or an explicit ``--out`` naming them; use
other weights in a run with ``minewatch run --weights FILE`` (or ``[detect] weights`` in the run file).

Trains on simulator scenes (seeds 0..N-1, ``geo.sim.scene.training_pair``) plus the real no-mining
Sentinel-2 scenes in ../shared/data (L1C, DOS-bridged; see models/data.py), then scores held-out
simulator seeds (never used in training) and the real scenes' false-positive area, and records
both in the model card. Deterministic for fixed arguments on a given CPU/torch build.

Since 1.1.0 the training targets two weaknesses of 1.0.0: small ponds (half of the training sites
are laid out with 2-4 px ponds only, often young sites with a single pond, and pond pixels of ponds
<= 6 px weigh 3x in the loss; 3600 steps) and bright ploughed fields in real scenes (hard-negative
mining: at 40/60/80 % of training the model is run over the training negatives and what it then
calls footprint becomes the focus of later negative crops). The card adds object-level pond recall
per pond size and the false-positive share of each held-out real scene.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from geo.errors import ConfigError, OutputError
from geo.fsutil import check_writable
from geo.stack import Composite
from geo.sim.training import Domain
from models.data import mixed_training_set, real_negative_scenes, simulator_scene
from models.evaluate import evaluate_samples
from models.infer import DEFAULT_WEIGHTS, card_path, save_model
from models.train import TrainConfig, train

#: The default ``--log-floor`` (the shipped weights' 0.001 for every band; see :func:`models.infer.input_transform`).
LOG_FLOOR = (0.001,) * 6

log = logging.getLogger("train_weights")

#: Since 2.0.0: share of legacy simulator chips (the rest are measured-spectra chips, geo.sim.training.Domain()),
#: simulated sites pasted into each real training negative, and the gain augmentation range.
LEGACY_SHARE = 0.25
IMPLANTS_PER_BACKGROUND = 24
BRIGHTNESS = (0.75, 1.3)
#: ``--augment`` presets: keyword arguments of :class:`models.train.TrainConfig` (see :func:`models.data.augment`).
#: "wide" is not used for the shipped weights: against "mild" with the same data and one blind generator left out,
#: it changed the fused IoU on that generator by -0.11 ... +0.11 per variant (left out gen_a or gen_c; mean +0.01) and
#: by -0.05 ... +0.07 (left out gen_d or gen_e; mean -0.01).
AUGMENT = {"mild": {},
           "wide": {"band_gain": 0.12, "material_gain": 0.25, "haze": 0.05, "blur": 1.0, "noise": 0.01}}


def input_statistics(samples) -> dict:
    """What the model was trained on, for :func:`geo.stages.detect.check_input`: per-band 0.5/50/99.5
    percentiles of the training reflectance and the range of per-chip median brightness."""
    rng = np.random.default_rng(0)
    pix = np.concatenate([x.reshape(x.shape[0], -1)[:, rng.integers(0, x[0].size, 2000)] for x, _ in samples], axis=1)
    pix = pix[:, np.all(np.isfinite(pix), axis=0)].astype(np.float64)
    med = np.array([np.nanmedian(x.mean(axis=0)) for x, _ in samples], np.float64)
    return {"bands_p0.5": np.round(np.percentile(pix, 0.5, axis=1), 4).tolist(),
            "bands_p50": np.round(np.percentile(pix, 50, axis=1), 4).tolist(),
            "bands_p99.5": np.round(np.percentile(pix, 99.5, axis=1), 4).tolist(),
            "median_brightness": [round(float(med.min()), 4), round(float(med.max()), 4)]}


def _installed(dist: str) -> str | None:
    """The installed version of a distribution, or None (recorded in the card: gen_b's soils depend on earthlib)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _earthlib_note(card: dict) -> str:
    """gen_b draws its soils from earthlib when installed, else from a parametric set: say which, for reproduction."""
    td = card.get("training_data", {})
    if "gen_b" not in td.get("independent_generators", {}):
        return ""
    if "earthlib" not in td:
        return (" gen_b's soils come from earthlib (`pip install -e '.[spectra]'`) when it is installed, else from a "
                "parametric set; this card predates recording which, so a rerun may differ.")
    if td["earthlib"] is None:
        return " gen_b used its parametric soils (earthlib was not installed)."
    return f" gen_b used earthlib {td['earthlib']} soils: install `.[spectra]` to reproduce."


def independent_generator(name: str):
    """A scene generator of ``benchmarks/independent/`` (written blind to geo.sim; see its README)."""
    import importlib

    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        return importlib.import_module(f"benchmarks.independent.{name}")
    except ImportError as e:
        raise SystemExit(f"error: no independent generator {name!r} under benchmarks/independent ({e})")


def _own_chips(td: dict) -> int | str:
    """Training chips from minewatch's own simulators (the blind generators' scenes are listed apart)."""
    n = td.get("n_chips")
    if n is None:
        return "?"
    return n - sum(len(g["variants"]) * g["scenes_per_variant"] for g in td.get("independent_generators", {}).values())


def _range(text: str) -> range:
    a, b = (int(v) for v in text.split(":"))
    return range(a, b)


def false_positive_fraction(scenes, method: str, weights: Path) -> dict[str, float]:
    """Share of each real no-mining scene's valid pixels detected as a footprint."""
    from geo.stages.detect import FusionConfig, RuleThresholds, classify

    out = {}
    for s in scenes:
        valid = np.all(np.isfinite(s.data), axis=0)
        cfg = RuleThresholds() if method == "rules" else FusionConfig(weights=str(weights), device="cpu")
        comp = Composite(s.data, np.where(valid, 2, 0).astype(np.uint16), s.bands, s.grid)
        det = classify(comp, method=method, config=cfg)
        out[s.name] = round(float(((det.classes > 0) & valid).sum() / max(valid.sum(), 1)), 6)
    return out


#: Pond-size buckets (px, inclusive) of :func:`pond_recall_by_size`; ponds of <= 6 px are the "small" ones.
POND_SIZE_BUCKETS: tuple[tuple[int, int | None], ...] = ((1, 4), (5, 6), (7, 12), (13, 24), (25, None))


def _bucket_name(lo: int, hi: int | None) -> str:
    return f"{lo}-{hi} px" if hi is not None else f">={lo} px"


def pond_objects(truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Truth ponds as objects: ``(labels, areas)`` of the 8-connected components of class 2
    (``areas[i]`` is the pixel count of component ``i + 1``)."""
    from scipy import ndimage

    lab, n = ndimage.label(truth == 2, structure=np.ones((3, 3), bool))
    return lab, np.bincount(lab.ravel(), minlength=n + 1)[1:]


def pond_recall_by_size(held, method: str, weights: Path | None) -> dict[str, dict]:
    """Object-level recall of truth ponds per size bucket: a pond counts as found when at least one of
    its pixels is detected as pond. ``held`` is a list of ``(models.data.Scene, labels)`` pairs."""
    from geo.stages.detect import FusionConfig, RuleThresholds, classify

    found = {b: 0 for b in POND_SIZE_BUCKETS}
    total = {b: 0 for b in POND_SIZE_BUCKETS}
    for scene, truth in held:
        valid = np.all(np.isfinite(scene.data), axis=0)
        cfg = RuleThresholds() if method == "rules" else FusionConfig(weights=str(weights) if weights else None,
                                                                     device="cpu")
        comp = Composite(scene.data, np.where(valid, 2, 0).astype(np.uint16), scene.bands, scene.grid)
        pred = classify(comp, method=method, config=cfg).classes == 2
        lab, areas = pond_objects(truth)
        hit = np.bincount(lab[pred], minlength=areas.size + 1)[1:] > 0
        for lo, hi in POND_SIZE_BUCKETS:
            sel = (areas >= lo) & (areas <= (hi if hi is not None else areas.max(initial=0)))
            total[(lo, hi)] += int(sel.sum())
            found[(lo, hi)] += int((sel & hit).sum())
    return {_bucket_name(*b): {"ponds": total[b], "found": found[b],
                               "recall": round(found[b] / total[b], 4) if total[b] else None}
            for b in POND_SIZE_BUCKETS}


def write_model_card_md(card: dict, path: Path) -> None:
    m = card["metrics"]
    cfg_ = {"band_gain": 0.05, "material_gain": 0.0, "haze": 0.0, "blur": 0.0, "noise": 0.0,
            **card["training"]["config"]}
    lines = [
        f"# Model card: {card['name']} {card['version']}", "",
        "Compact U-Net (plain torch) segmenting Sentinel-2 L2A surface reflectance into background (0), "
        "cleared land (1) and rare-earth leaching ponds (2).", "",
        "## Input", "",
        f"- Bands, in channel order: {', '.join(card['bands'])} (10 m grid; 20 m SWIR resampled).",
        "- Values: L2A surface reflectance 0-1, `(DN + offset) / 10000`, offset -1000 for baseline >= 04.00.",
        f"- Normalisation: `{card['normalization']['formula']}`; mean {card['normalization']['mean']}, "
        f"std {card['normalization']['std']}" + (f"; floor {card['normalization']['floor']}"
                                                  if "floor" in card["normalization"] else "")
        + ". The log makes a brightness gain an offset shared by all bands."
        + (" The model ignores reflectance below the floor." if max(card["normalization"].get("floor", [0.001])) > 0.001
           else ""),
        "- Input check: `geo.stages.input_check.check_input(composite)` compares a scene with `input_range` in the "
        "card (training percentiles per band, range of chip median brightness) and logs a warning when it lies outside.",
        "- Self-check: a run records per season the share of the model's possible-footprint pixels (probability "
        ">= 0.1) that it scored below 0.5 (`model_uncertain_share`); above 0.5 the season is flagged "
        "`model_doubtful` in the summary, manifest and report (docs/MODEL_CHECKS.md). Threshold chosen on tuning "
        "scenes of gen_d/e/g; on 48 held-out scenes of gen_f/gen_g (seeds 900000+) the flagged ones had mean fused "
        "IoU 0.26, the others 0.71.",
        "- A band-order or channel mismatch between this card and the input raises `WeightsError`.", "",
        "## Architecture", "",
        f"- {card['architecture']}; {card['parameters']:,} parameters; weights {card['weights_bytes'] / 1e6:.2f} MB "
        f"(sha256 `{card['weights_sha256'][:16]}...`).", "",
        "## Training data", "",
        f"- {_own_chips(card['training_data'])} chips of {card['training_data']['simulator_size']} px, seeds "
        f"{card['training_data']['simulator_seeds'][0]}..{card['training_data']['simulator_seeds'][1] - 1}: "
        f"{card['training_data'].get('legacy_share', 1.0):.0%} from the legacy simulator "
        "(`geo.sim.scene.training_pair`, class table from real pixels + assumed pond colours), the rest from the "
        "measured-spectra simulator (`training_pair(..., domain=Domain())`, geo/data/SOILS.md): spoil, fields and "
        "river bars from 1,300 measured ICRAF-ISRIC soils of five colour families, ponds from a shallow-water model "
        "(bright / dark liners, milky precipitates, dissolved iron, suspended soil; depth 0.1-2 m), tarps, roads and "
        "roofs from measured materials, swidden and landslide look-alikes as background, terrain shading from relief "
        "and sun elevation 25-65 deg, haze, gain 0.75-1.3, per-band gain, noise, blur, 20 m misregistration. "
        f"`small_ponds` {card['training_data'].get('small_ponds', 0.0)} of the sites have 2-4 px ponds only.",
        f"- Real backgrounds: {card['training_data'].get('implants_per_background', 0)} chips per training negative "
        "with simulated sites pasted into the REAL Sentinel-2 texture (`models.data.implanted_pair`).",
        *(["- Scenes of the generators written blind to minewatch (`benchmarks/independent/`, each from a brief only, by "
            "another hand): " + "; ".join(f"`{g}` {v['scenes_per_variant']} scenes of {v['size']} px per variant "
                                          f"({', '.join(v['variants'])}), seeds {v['seeds'][0]}..{v['seeds'][1] - 1}"
                                          for g, v in card['training_data']['independent_generators'].items())
            + ". The benchmark scores them on seeds 900000+; a generator a model trained on is not held out for it."]
          if card['training_data'].get('independent_generators') else []),
        *([f"- Fine-tuned from {card['parent']['name']} {card['parent']['version']} (sha256 "
           f"`{card['parent']['weights_sha256'][:16]}...`), learning rate {card['training']['config']['lr']}."]
          if card.get('parent') else []),
        f"- Gain augmentation x{card['training_data'].get('brightness_aug', [1, 1])[0]}-"
        f"{card['training_data'].get('brightness_aug', [1, 1])[1]} per crop on top of the simulator's own"
        + (f"; augmentation preset `{card['training_data']['augment']}`: per-band gain ±{cfg_['band_gain']}, per-class "
           f"colour gain ±{cfg_['material_gain']}, haze up to {cfg_['haze']} (B02), blur sigma up to {cfg_['blur']} px, "
           f"noise sigma up to {cfg_['noise']} (`models.data.augment`)."
           if card['training_data'].get('augment', 'mild') != 'mild' else "."),
        f"- Real Sentinel-2 L1C scenes without mining as all-background negatives: {', '.join(card['training_data']['real_negatives'])}; "
        "L1C TOA is bridged to approximate surface reflectance by per-band dark-object subtraction (models/data.py).",
        f"- {card['training']['config']['steps']} AdamW steps, batch {card['training']['config']['batch_size']}, "
        f"{card['training']['config']['crop']} px crops, one-cycle lr {card['training']['config']['lr']}; "
        f"{card['training']['seconds']:.0f} s on CPU ({card['training']['config']['threads']} thread(s), on a shared machine).",
        f"- Loss: class-weighted cross-entropy (weights {card['training']['config']['class_weights']}); pixels of ponds "
        f"<= {card['training']['config'].get('small_pond_px', 6)} px weigh "
        f"{card['training']['config'].get('small_pond_weight', 1.0)}x more.",
        f"- Hard-negative mining at {card['training']['config'].get('mine_at', [])} of the steps: pixels of the training "
        "negatives that the model then calls footprint (p >= "
        f"{card['training']['config'].get('mine_threshold', 0.3)}) become focus points of later negative crops.",
        f"- Reproduce: `{card.get('command', 'python scripts/train_weights.py')}`"
        + (" (the parent weights are in the git history; see the README changelog)." if card.get("parent") else ".")
        + _earthlib_note(card),
        "",
        "## Metrics", "",
        f"Held-out LEGACY simulator seeds {m['heldout_seeds'][0]}..{m['heldout_seeds'][1] - 1} (not used in training), pixel IoU:", "",
        "| method | cleared land IoU | pond IoU | cleared F1 | pond F1 |", "|---|---|---|---|---|",
    ]
    for meth, rep in m["heldout"].items():
        c, p = rep["classes"]["cleared_land"], rep["classes"]["leaching_pond"]
        lines.append(f"| {meth} | {c['iou']:.3f} | {p['iou']:.3f} | {c['f1']:.3f} | {p['f1']:.3f} |")
    rec = m.get("pond_recall_by_size")
    if rec:
        buckets = list(next(iter(rec["methods"].values())))
        lines += ["", f"Object-level pond recall by pond size, held-out simulator seeds {rec['seeds'][0]}..{rec['seeds'][1] - 1} "
                  "(a truth pond counts as found when at least one of its pixels is detected as pond; ponds per bucket "
                  "in brackets):", "",
                  "| method | " + " | ".join(f"{b} ({rec['methods'][next(iter(rec['methods']))][b]['ponds']})" for b in buckets) + " |",
                  "|---|" + "---|" * len(buckets)]
        for meth, r in rec["methods"].items():
            lines.append(f"| {meth} | " + " | ".join("-" if r[b]["recall"] is None else f"{r[b]['recall']:.3f}"
                                                     for b in buckets) + " |")
    fps = m["real_false_positive_fraction"]
    names = list(next(iter(fps.values())))
    lines += ["", "Real no-mining scenes held out from training (split=\"test\"), detected footprint share of each "
              "scene (target <= 0.05 %):", "", "| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for meth, fr in fps.items():
        lines.append(f"| {meth} | " + " | ".join(f"{fr[k]:.4%}" for k in names) + " |")
    lines += ["", "## Limits", "",
              "- Trained on simulated Kachin-like scenes, not on labelled real imagery of the mines: no real Kachin "
              "Sentinel-2 pixels were available. Validate on real labels (`minewatch evaluate`) before relying on it, "
              "and fine-tune with `minewatch train` (init = \"shipped\").",
              "- Validated on real imagery: ONLY the absence of false positives on real no-mining Sentinel-2 scenes "
              "(Virginia, Slovenia; L1C with an approximate atmospheric bridge, not true L2A) and detection of "
              "SIMULATED sites pasted into real backgrounds. NOT validated: detection of real mines (no labelled real "
              "Kachin pixels were available offline), real pond colours, real spoil beyond the measured soil library, "
              "cloud/composite artefacts. Every figure of the robustness table is on simulated sites.",
              "- The fused detector keeps every footprint the rules find (its ponds always, its cleared land where the "
              "model missed most of it) unless the model's mean footprint probability over it is below "
              "`FusionConfig.keep_rules_below` (0.15), i.e. unless the model is confident of background.",
              "- Model and fused maps drop a cleared-land patch of >= 10 ha with no pond evidence within 150 m "
              "(`FusionConfig.pondless_clearing_max_m2`, `geo.stages.fusion.drop_large_pondless`); its evidence "
              "threshold was chosen looking at a held-out real scene (a harvested field), so that scene's false-positive "
              "figure is not independent of it.",
              "- Fused maps: a model pond overlapping the rules' rivers and lakes joins the cleared land it touches, "
              "else becomes background (`FusionConfig.ponds_off_rivers`, `geo.stages.fusion.ponds_off_rivers`). "
              "Chosen on gen_a/b/c tuning seeds 800000+ (leave-one-out models: mean pond F1 0.264 -> 0.290); of two "
              "variants scored there, the one kept (touching cleared land -> cleared land) was picked after a look "
              "at held-out gen_e rough, where the other lost 0.03 IoU, so gen_d/gen_e are not fully independent of "
              "that choice.",
              "- Test-time views (`[detect] views`, `FusionConfig.views`, default 1): averaging the model over 4 "
              "flipped views raised the held-out means of the blind-generator table by +0.004 (shipped, gen_d/e) to "
              "+0.033 (leave-gen_a-out) fused IoU, halved the false-positive area on the real no-mining scenes "
              "(held-out 0.026 % -> 0.016 %), and made the demo's growth error -3.4 pp instead of -2.3 pp; it costs "
              "4x the model's time. Off by default; the `fused@4` columns show it.",
              "- Input floor: flooring B02-B04 at reflectance 0.01 before the log (`[train] log_floor`, "
              "`--log-floor`) was measured in December 2026 and not adopted. Leave-one-generator-out models of this "
              "recipe gained on gen_a/b/c tuning seeds (mean fused IoU 0.506 -> 0.538, 9 rows, 12 scenes each; a "
              "rerun without the floor reproduced 0.506), but the full recipe with it lost on held-out gen_d/gen_e "
              "(mean 0.583 -> 0.524; gen_d pale 0.511 -> 0.370) and its held-out Virginia false-positive share rose "
              "to 0.057 % (limit 0.05 %).",
              "- Training-seed noise and ensembles (December 2026): retraining the leave-one-generator-out models with "
              "another training seed (`scripts/train_weights.py --train-seed 1`, same data and settings) moved their "
              "mean fused IoU on the gen_a/b/c tuning seeds by -0.018 (gen_a rows: 0.469 -> 0.451) and +0.043 (gen_b "
              "rows: 0.353 -> 0.396); averaging the two seeds' probabilities gave 0.458 and 0.379, between its two "
              "members, so a two-seed ensemble was not adopted. Recipe differences of a few hundredths (the input "
              "floor's +0.032, the object filter's +0.014) are within this seed noise, which is why they did not carry "
              "over to gen_d/gen_e.",
              "- More blind generators in training (December 2026, two training seeds per arm): adding gen_e to the "
              "three generators of 2.1.0 lowered held-out gen_d's mean fused IoU (12 scenes per variant, seeds "
              "800000+) from 0.513 / 0.496 (training seeds 0 / 1 of the 2.1.0 recipe) to 0.482 / 0.412; adding gen_d "
              "lowered gen_e's from 0.660 / 0.650 to 0.635 (seed 0). Not adopted: a generator more in training did "
              "not carry over to the next one.",
              "- gen_f and gen_g were written in December 2026, after 2.1.0, and are held out for every model in the "
              "table above. On gen_g, 2.1.0's fused IoU is 0.16-0.36 and the rules' 0.03-0.07: the same collapse the "
              "first outside test found. The self-check flags all 24 of its held-out scenes.",
              "- Measured in December 2026 and not adopted, all on the tuning scenes of gen_d/e/g (seeds 800000+, 4 "
              "scenes of 512 px per variant; the shipped fused map scores mean IoU 0.428, pond F1 0.344 over the 9 "
              "rows). Real-size pool clusters in training (`--subpixel-ponds 0.5`, two training seeds against two "
              "without) gave 0.402 / 0.358 against 0.413 / 0.351. Adapting the model's batch-norm statistics to each "
              "scene gave 0.434 / 0.312: gen_d +0.12, gen_e -0.10. A two-seed ensemble gave 0.417. Post-processing "
              "of the shipped model: growing footprints into connected pixels of footprint probability >= 0.35 / 0.25 "
              "/ 0.15 gave 0.433 / 0.424 / 0.421; scaling the background probability by 0.7 / 0.5 gave 0.436 / 0.436; "
              "`cleared_needs_pond` gave 0.419; a 1 ha pondless limit gave 0.433. Each trades one generator against "
              "another: gen_d and gen_g gain recall, and gen_e loses precision on bare look-alikes. On gen_e, detected "
              "patches with no pond hold 60 % of the false area at precision 0.17. On gen_g the same kind of patch "
              "holds 56 % of the correctly detected area at precision 0.42. So whether a pond-less clearing is a "
              "mine cannot be settled on these generators.",
              "- Six generators in training (December 2026; 2.1.0's recipe from 2.0.0 plus gen_d, gen_e and gen_f at "
              "80 scenes of 256 px each, training seeds 0 and 1), scored on the same tuning scenes: the trained-on "
              "gen_d/gen_e rows rose (gen_d base fused IoU 0.551 to 0.808 / 0.811), but held-out gen_g fell from "
              "0.259 (shipped) to 0.228 / 0.200 mean fused IoU and from 0.272 to 0.256 / 0.226 pond F1, and the "
              "false-positive area on Virginia rows 0-640 rose from 0.044 % to 0.13 % / 0.11 %. Not adopted: the gain "
              "is in the generators seen, not in the next one.",
              "- A large rules footprint keeping its whole outline (`FusionConfig.rules_fill_min_m2` = 10 ha: a kept "
              "rules footprint that large adds all its cleared land, where by default it adds it only when the model "
              "covers under 10 % of it), measured in December 2026: on the gen_d/e/g tuning scenes (seeds 800000+) "
              "mean fused IoU 0.428 -> 0.451, pond F1 unchanged (gen_d base 0.551 -> 0.692, above the rules' 0.566); "
              "held-out Virginia unchanged (0.0436 %; the one footprint it would grow there, 2.95 ha, was seen before "
              "the size was chosen). On the held-out table's scenes (gen_a-g, 8 of 512 px per variant, seeds 900000+), "
              "scored once after an adoption rule was written down (mean fused IoU +0.01), it gave 0.560 -> 0.562 "
              "(gen_c base +0.062, gen_c pale -0.027), and the own measured-spectra suite fell from 0.520 to 0.477. "
              "Not adopted; off by default.",
              "- More post-processing of the shipped model, measured in December 2026 on the same gen_d/e/g tuning "
              "scenes (shipped: 0.428 / 0.344 mean fused IoU / pond F1): a pond prior (pond probability x2 / x3 / x5 "
              "before the class decision) gave 0.429 / 0.366, 0.430 / 0.364 and 0.432 / 0.343, with gen_g's pond F1 "
              "up 0.12-0.23 and gen_d's down 0.08-0.20. Adding only new pond blobs at x2 gave 0.428 / 0.359. "
              "Averaging the model over the input scaled by 0.8 / 1 / 1.25 gave 0.431 / 0.341. One pixel of "
              "dilation of the fused footprint gave mean fused IoU 0.412, one of erosion 0.375. None adopted: each "
              "gains on one generator and loses on another, as above.",
              "- Two training recipes, measured in December 2026 on the same tuning scenes against the shipped weights "
              "(0.428 / 0.344) and a retrain of the 2.1.0 recipe with training seed 1 (0.411 / 0.360), each with its "
              "adoption rule written down before scoring (each training seed to beat the better baseline by 0.02): "
              "MixStyle (Zhou et al. 2021; feature statistics mixed between the chips of a batch after the first two "
              "encoder blocks, p 0.5, alpha 0.1, training seed 0; a patch of the training run, not kept) gave "
              "0.391 / 0.351; 192 px crops at batch 4 (`--crop 192 --batch-size 4` instead of 128 px at batch 8: more "
              "context per chip; training seeds 0 and 1) gave 0.404 / 0.326 and 0.401 / 0.316. Not adopted.",
              "- Training length, measured in December 2026 on the same tuning scenes (adoption rule written down "
              "before scoring: each of two training seeds +0.02 mean fused IoU over the shipped 0.428, pond F1 no more "
              "than 0.01 lower): the 2.1.0 recipe from 2.0.0 for 0 (2.0.0 itself) / 1000 / 1500 / 3000 (shipped) / "
              "6000 steps gave mean fused IoU 0.075 / 0.351 / 0.415 / 0.428 / 0.421 and 0.407 (training seeds 0 and "
              "1), pond F1 0.331 / 0.331 / 0.343 / 0.344 / 0.356 and 0.356. The gain from the blind generators in "
              "training is taken by 3000 steps; more steps on the same data do not carry further. Not adopted.",
              "- Test-time colour alignment, measured in December 2026 on the same tuning scenes (shipped 0.428 / "
              "0.344): scaling each band of a scene so that its median meets the training median (the card's "
              "`input_range` p50; half-way in log: alpha 0.5) gave 0.396 / 0.337, fully 0.348 / 0.300 (gen_d pale "
              "0.461 -> 0.205 IoU). Not adopted: the model uses the absolute level of each band, not only its contrast "
              "with the scene.",
              "- A learned filter of whole detected patches, measured in December 2026 (adoption rule written down "
              "before scoring: mean fused IoU on the gen_d/e/g tuning scenes >= 0.448): a logistic regression on 16 "
              "features of each connected fused footprint (area, ponds in it and distance to the nearest pond, the "
              "model's mean and peak probability, the rules' share, colour relative to the scene median, fill of its "
              "box), fitted on 27 scenes of gen_a/b/c (seeds 700000+, never trained on; a patch is mining when half "
              "of it is truth) with its threshold chosen there (0.4), gave 0.417 against 0.428: gen_e +0.01 to +0.07 "
              "(its bare look-alikes dropped), gen_d -0.03 to -0.01 and gen_g -0.05 to -0.04 (their true patches "
              "dropped). Not adopted.",
              "- Where the shipped fused map errs (diagnosis, December 2026, on the same tuning scenes): gen_d misses "
              "0.75-2.8 truth pixels per pixel found, 13-16 % of them on a truth edge: whole spoil areas of low "
              "contrast (their B11 within 10 % of the canopy's); gen_e draws 0.48-0.71 false pixels per true one, "
              "91-95 % of them in patches that do not touch a site (bare look-alikes); gen_g does both (false 0.8-1.6 "
              "per true pixel, 59-68 % of it in patches touching a site; missed 1.1-2.3, half of it on a truth edge). "
              "Sites, grouped as a run groups them for truth and detection alike (first and last of 4 seasons, 3 "
              "landscapes per variant): gen_e misses 14 of 79 truth sites; on its base variant the median missed site "
              "has 81 % of its footprint detected but no detected pond, so it is no site. gen_g misses 153 of 258; "
              "the median missed site has 1-2 % of its footprint detected on base and rough, 49 % but no pond on pale. "
              "13 of 127 detected sites lie off every truth site on gen_g, 16 of 81 on gen_e. A ceiling on gen_g "
              "(tuning seeds 800000-800003, first season, from the generator's own object map): a detector that marks "
              "the truth plus every pixel painted as one of its spoil-coloured look-alikes (dry swidden, harvested "
              "field, sand bar, fresh landslide, dirt road, rust roof, village ground, quarry; 2.0 such pixels per "
              "truth pixel) scores footprint IoU 0.34; dropping every look-alike patch that does not touch a site "
              "still leaves 0.59 (0.44-0.78 per scene), because the generator puts landslides, swidden and gravel "
              "bars against the sites. So on gen_g, IoU >= 0.8 needs shape or context to split a site from an "
              "adjacent patch of the same colour.",
              "- Blind generators: these weights trained on "
              + (", ".join(sorted(card['training_data'].get('independent_generators') or {})) or "none of them")
              + " (other seeds); only the rows of generators a model never trained on (unstarred in the table above) "
              "are held-out figures for imagery minewatch was not tuned to, and even those come from generators, not "
              "from real mines.",
              "- Pixel-level 10 m model: ponds smaller than ~2x2 px are unreliable.", ""]
    old = path.read_text() if path.exists() else ""
    for tag in ("robustness", "independent", "run-independent"):  # keep the benchmarks' tables (bench_robustness,
        # bench_independent, bench_run_independent)
        begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
        if begin in old and end in old:
            block = old[old.index(begin):old.index(end) + len(end)]
            lines[lines.index("## Limits"):lines.index("## Limits")] = [block, ""]
    path.write_text("\n".join(lines))


def output_path(out: Path | None, version: str, overwrite_shipped: bool) -> Path:
    """Where the weights go: ``--out`` as given, the shipped file with ``--overwrite-shipped``, else
    ``runs/weights/unet_<version>.pt`` (the shipped weights are never replaced by default)."""
    if overwrite_shipped:
        if out is not None and out.resolve() != DEFAULT_WEIGHTS.resolve():
            raise SystemExit("error: --overwrite-shipped writes the shipped weights; drop --out or --overwrite-shipped")
        return DEFAULT_WEIGHTS
    if out is not None:
        return out
    return Path("runs") / "weights" / f"unet_{version}.pt"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0:320", help="training simulator seeds START:STOP")
    ap.add_argument("--size", type=int, default=192, help="simulator scene size (px)")
    ap.add_argument("--eval-seeds", default="100000:100016", help="held-out simulator seeds START:STOP")
    ap.add_argument("--recall-seeds", default="100000:100160",
                    help="held-out simulator seeds START:STOP for the pond recall by size")
    ap.add_argument("--small-ponds", type=float, default=0.5,
                    help="share of training-scene sites with small ponds only (geo.sim.scene.training_pair)")
    ap.add_argument("--small-pond-weight", type=float, default=3.0, help="loss weight of ponds <= 6 px")
    ap.add_argument("--subpixel-ponds", type=float, default=0.0,
                    help="share of measured-spectra chips painted on a 2.5 m grid with real-size pools "
                         "(geo.sim.training.Domain.subpixel_ponds)")
    ap.add_argument("--mine-at", default="0.4,0.6,0.8",
                    help="fractions of the steps at which to mine hard negatives ('' = off)")
    ap.add_argument("--steps", type=int, default=3600)
    ap.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    ap.add_argument("--crop", type=int, default=TrainConfig.crop)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu",
                    help="train on the CPU (default, as the shipped weights were) or a CUDA GPU")
    ap.add_argument("--out", type=Path, default=None,
                    help="weights path (default runs/weights/unet_<version>.pt; the card and MODEL_CARD.md go beside it)")
    ap.add_argument("--overwrite-shipped", action="store_true",
                    help=f"replace the shipped weights {DEFAULT_WEIGHTS.name} (and their card and MODEL_CARD.md)")
    ap.add_argument("--version", default="2.0.0")
    ap.add_argument("--init", default=None,
                    help="fine-tune from these weights ('shipped' = the shipped weights; the card records the parent)")
    ap.add_argument("--train-seed", type=int, default=0,
                    help="seed of weight initialisation, crops, batches and augmentation (default 0, as the shipped "
                         "weights); the same seed and settings give the same weights on the same machine")
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--negative-fraction", type=float, default=TrainConfig.negative_fraction,
                    help="share of each batch drawn from the real no-mining scenes")
    ap.add_argument("--generator", action="append", default=[], metavar="NAME:N[:SIZE]",
                    help="also train on N scenes per variant (seeds 0..N-1, SIZE px, default 256) of the independent "
                         "generator benchmarks/independent/NAME; repeatable. Its rows of "
                         "benchmarks/bench_independent.py then no longer count as held out")
    ap.add_argument("--log-floor", default=",".join(str(v) for v in LOG_FLOOR),
                    help="per-band smallest reflectance before the log, B02,B03,B04,B08,B11,B12 (default 0.001 each, as "
                         "the shipped weights; 0.01 on the visible bands was measured and not adopted, see the model "
                         "card); '' keeps the --init weights' floor")
    ap.add_argument("--augment", choices=sorted(AUGMENT), default="mild",
                    help="augmentation preset: mild = flips, rotations, gains; wide adds per-band and per-class colour "
                         "gains, haze, blur and noise (see models.data.augment)")
    args = ap.parse_args(argv)
    for spec in args.generator:
        _, n, size = (spec.split(":") + ["256"])[:3]
        if not (n.isdigit() and size.isdigit() and int(n) > 0 and int(size) >= 64):
            ap.error(f"--generator {spec!r}: use NAME:N[:SIZE] with N >= 1 scenes per variant and SIZE >= 64 px")
    smallest = min([args.size, *(int((g.split(":") + ["256"])[2]) for g in args.generator)])
    if args.crop > smallest:  # a crop larger than the scenes took all memory and was killed
        ap.error(f"--crop {args.crop} px is larger than the smallest training scene ({smallest} px: --size or a "
                 "--generator SIZE); give --crop at most that")
    args.out = output_path(args.out, args.version, args.overwrite_shipped)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    import torch

    torch.set_num_threads(args.threads)
    seeds, eval_seeds, recall_seeds = _range(args.seeds), _range(args.eval_seeds), _range(args.recall_seeds)
    if set(seeds) & (set(eval_seeds) | set(recall_seeds)):
        ap.error("training and held-out seeds overlap")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA GPU is available here; use cpu or auto")
    try:  # every setting is checked before minutes of data building
        cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, crop=args.crop, threads=args.threads,
                          device=args.device,
                          version=args.version, seed=args.train_seed, small_pond_weight=args.small_pond_weight,
                          mine_at=tuple(float(v) for v in args.mine_at.split(",") if v.strip()),
                          transform="log", brightness=BRIGHTNESS, lr=args.lr,
                          negative_fraction=args.negative_fraction, **AUGMENT[args.augment],
                          log_floor=tuple(float(v) for v in args.log_floor.split(",") if v.strip()))
    except (ConfigError, ValueError) as exc:
        ap.error(str(exc))
    try:
        check_writable(args.out, "--out")
    except OutputError as exc:
        ap.error(str(exc))
    if not 0.0 <= args.subpixel_ponds <= 1.0:
        ap.error("--subpixel-ponds must be between 0 and 1")
    domain = Domain(subpixel_ponds=args.subpixel_ponds)
    t0 = time.perf_counter()
    negs = real_negative_scenes(split="train")
    samples = mixed_training_set(seeds, size=args.size, domain=domain, legacy_share=LEGACY_SHARE,
                                 small_ponds=args.small_ponds, backgrounds=[s.data for s in negs],
                                 implants_per_background=IMPLANTS_PER_BACKGROUND)
    generated = {}
    earthlib_version = _installed("earthlib")
    if any(g.split(":")[0] == "gen_b" for g in args.generator) and earthlib_version is None:
        log.warning("earthlib is not installed (pip install -e '.[spectra]'): gen_b falls back to parametric soils, "
                    "so these weights will not reproduce a card trained with it")
    for spec in args.generator:
        name, n, size = (spec.split(":") + ["256"])[:3]
        gen = independent_generator(name)
        for variant in gen.VARIANTS:
            samples += [gen.scene(seed, variant, int(size)) for seed in range(int(n))]
        generated[name] = {"scenes_per_variant": int(n), "seeds": [0, int(n)], "size": int(size),
                           "variants": list(gen.VARIANTS)}
    test_negs = real_negative_scenes(split="test")
    log.info("data: %d simulator scenes, %d real negatives in %.0f s", len(samples), len(negs), time.perf_counter() - t0)
    init = None
    if args.init:
        from models.infer import load_model

        from geo.errors import MinewatchError

        try:
            init = load_model(None if args.init == "shipped" else args.init, device="cpu", fuse=False)
        except MinewatchError as e:
            ap.error(f"--init: {e}")
    res = train(samples, cfg, negatives=[(s.data, np.zeros(s.grid.shape, np.uint8)) for s in negs], init=init)
    card = save_model(res.model, res.card, args.out)
    log.info("trained in %.0f s", res.seconds)
    held = [simulator_scene(s, 256) for s in eval_seeds]
    recall_held = [simulator_scene(s, 256) for s in recall_seeds]
    metrics = {"heldout_seeds": [eval_seeds.start, eval_seeds.stop], "heldout": {}, "real_false_positive_fraction": {},
               "pond_recall_by_size": {"seeds": [recall_seeds.start, recall_seeds.stop], "methods": {}}}
    for method in ("rules", "model", "fused"):
        metrics["heldout"][method] = evaluate_samples(held, method=method, weights=str(args.out), device="cpu")
        metrics["real_false_positive_fraction"][method] = false_positive_fraction(test_negs, method, args.out)
        rec = pond_recall_by_size(recall_held, method, args.out)
        metrics["pond_recall_by_size"]["methods"][method] = rec
        c = metrics["heldout"][method]["classes"]
        log.info("%s: cleared IoU %.3f pond IoU %.3f; real FP %s; pond recall %s", method, c["cleared_land"]["iou"],
                 c["leaching_pond"]["iou"], metrics["real_false_positive_fraction"][method],
                 {k: v["recall"] for k, v in rec.items()})
    d = card.to_dict()
    chips = [(s.data[:, r:r + 96, c:c + 96], None) for s in negs
             for r in range(0, s.data.shape[1] - 95, 96) for c in range(0, s.data.shape[2] - 95, 96)]
    d["input_range"] = input_statistics(samples + chips)
    d["training_data"] = {"simulator_seeds": [seeds.start, seeds.stop], "simulator_size": args.size,
                          "small_ponds": args.small_ponds, "legacy_share": LEGACY_SHARE,
                          "measured_domain": {k: list(v) if isinstance(v, tuple) else v
                                              for k, v in domain.__dict__.items()},
                          "implants_per_background": IMPLANTS_PER_BACKGROUND, "brightness_aug": list(BRIGHTNESS),
                          "n_chips": len(samples),
                          "real_negatives": [s.name for s in negs], "dos_bridge": "models.data.l1c_to_surface_dos",
                          "independent_generators": generated, "earthlib": earthlib_version,
                          "augment": args.augment}
    d["metrics"] = metrics
    d["command"] = " ".join(["python scripts/train_weights.py", *(argv if argv is not None else sys.argv[1:])])
    d["weights_bytes"] = args.out.stat().st_size
    d["total_seconds"] = round(time.perf_counter() - t0, 1)
    card_path(args.out).write_text(json.dumps(d, indent=2) + "\n")
    write_model_card_md(d, args.out.parent / "MODEL_CARD.md")
    log.info("wrote %s, %s and MODEL_CARD.md in %.0f s total", args.out, card_path(args.out), d["total_seconds"])
    if args.out.resolve() != DEFAULT_WEIGHTS.resolve():
        log.info("the shipped weights are unchanged; use these with: minewatch run --weights %s (or [detect] "
                 "weights in the run file), or rerun with --overwrite-shipped to replace the shipped model", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
