#!/usr/bin/env python
"""Robustness of the detector: held-out soil families, pond types, harsh light, real backgrounds, perturbations.

    python benchmarks/bench_robustness.py                     # shipped weights, every suite
    python benchmarks/bench_robustness.py --holdout           # + a model trained WITHOUT the held-out families
    python benchmarks/bench_robustness.py --holdout --write-card   # put the table into models/weights/MODEL_CARD.md

For every suite it prints footprint IoU (truth cleared land + ponds vs detected cleared land + ponds) and pond F1
(pixel level; truth is "pond covers the pixel") for ``rules``, ``model`` and ``fused`` side by side, plus the
share of the held-out REAL no-mining scenes detected as footprint.

Suites (scene seeds 300000+, never used in training):

* ``legacy``: the original simulator (``geo.sim.scene.training_pair``, as the old card measured).
* ``measured``: the measured-spectra simulator (``geo.sim.training.Domain()``, all families).
* ``soil:<family>``: only spoil/fields of one measured soil colour family (``geo.sim.materials.SOIL_FAMILIES``).
* ``pond:<type>``: only one pond type (``geo.sim.materials.POND_TYPES``).
* ``harsh``: low sun (12-22°), steep relief, strong direct light, thick haze, wide gain and noise.
* ``real_bg``: simulated sites pasted into the held-out real Sentinel-2 windows (Virginia test rows, Slovenia 4).
* ``pert:*``: the ``measured`` scenes with gain x0.8 / x1.2, haze +0.03 / +0.06 (B02; other bands follow the
  haze spectrum), blur sigma 1 px, noise sigma 0.01.

``--holdout`` trains a small model (``--steps``) on measured scenes whose soils are only ``red_lateritic``,
``yellow_brown`` and ``dark_organic`` and whose ponds are only ``bright_liner``, ``iron_brown`` and ``turbid_soil``
(no legacy chips), then scores it on ``soil:pale_kaolinitic``, ``soil:grey``, ``pond:milky``, ``pond:dark_liner``
— families it never saw — and on ``harsh``. The shipped model has seen every family (other seeds).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo.sim.atmos import HAZE_SHAPE  # noqa: E402
from geo.sim.materials import POND_TYPES, SOIL_FAMILIES  # noqa: E402
from geo.sim.training import Domain  # noqa: E402

METHODS = ("rules", "model", "fused")
TRAIN_SOILS = ("red_lateritic", "yellow_brown", "dark_organic")
TRAIN_PONDS = ("bright_liner", "iron_brown", "turbid_soil")
HARSH = Domain(sun_elevation=(12.0, 22.0), direct=(0.85, 0.95), relief=(1.8, 2.6), haze=(0.05, 0.1),
               gain=(0.65, 1.45), noise=(0.008, 0.015), psf=(0.6, 1.0), misregistration=0.6)
CARD_BEGIN, CARD_END = "<!-- robustness:begin -->", "<!-- robustness:end -->"


def suites(n: int, size: int, seed0: int = 300000) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    from models.data import implanted_pair, measured_pair, real_negative_scenes, simulator_pair

    seeds = range(seed0, seed0 + n)
    out = {"legacy": [simulator_pair(s, size) for s in seeds],
           "measured": [measured_pair(s, size, small_ponds=0.3) for s in seeds]}
    for f in SOIL_FAMILIES:
        out[f"soil:{f}"] = [measured_pair(s, size, domain=Domain(soil_families=(f,)), small_ponds=0.3) for s in seeds]
    for p in POND_TYPES:
        out[f"pond:{p}"] = [measured_pair(s, size, domain=Domain(pond_types=(p,)), small_ponds=0.3) for s in seeds]
    out["harsh"] = [measured_pair(s, size, domain=HARSH, small_ponds=0.3) for s in seeds]
    bgs = [s.data for s in real_negative_scenes(split="test")]
    real = []
    for i, s in enumerate(seeds):
        bg = bgs[i % len(bgs)] if bgs else None
        if bg is None:
            break
        sz = min(size, bg.shape[1] - bg.shape[1] % 2, bg.shape[2] - bg.shape[2] % 2)
        pair = implanted_pair(s, bg, sz, small_ponds=0.3)
        if pair is not None:
            real.append(pair)
    if real:
        out["real_bg"] = real
    rng = np.random.default_rng(1)
    base = out["measured"]
    from scipy import ndimage

    def pert(fn):
        return [(np.clip(fn(x), 0.0001, 1).astype(np.float32), y) for x, y in base]

    out["pert:gain x0.8"] = pert(lambda x: x * 0.8)
    out["pert:gain x1.2"] = pert(lambda x: x * 1.2)
    out["pert:haze +0.03"] = pert(lambda x: x + 0.03 * HAZE_SHAPE[:, None, None])
    out["pert:haze +0.06"] = pert(lambda x: x + 0.06 * HAZE_SHAPE[:, None, None])
    out["pert:blur 1px"] = pert(lambda x: ndimage.gaussian_filter(x, (0, 1, 1)))
    out["pert:noise 0.01"] = pert(lambda x: x + 0.01 * rng.standard_normal(x.shape))
    return out


def score(pairs, method: str, weights: str | None) -> dict[str, float]:
    """Footprint IoU and pond F1 summed over the pairs' pixels."""
    from affine import Affine
    from rasterio.crs import CRS

    from geo.grid import GeoGrid
    from geo.stack import Composite
    from geo.stages.detect import FusionConfig, RuleThresholds, classify

    tp = fp = fn = ptp = pfp = pfn = 0
    for x, y in pairs:
        grid = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 431000, 0, -10, 2840000), y.shape[1], y.shape[0])
        comp = Composite(x, np.full(y.shape, 3, np.uint16), ("B02", "B03", "B04", "B08", "B11", "B12"), grid)
        cfg = RuleThresholds() if method == "rules" else FusionConfig(weights=weights, device="cpu")
        pred = classify(comp, method=method, config=cfg).classes
        t, p = y > 0, pred > 0
        tp += int((t & p).sum()); fp += int((~t & p).sum()); fn += int((t & ~p).sum())
        tq, pq = y == 2, pred == 2
        ptp += int((tq & pq).sum()); pfp += int((~tq & pq).sum()); pfn += int((tq & ~pq).sum())
    return {"iou": tp / max(tp + fp + fn, 1), "pond_f1": 2 * ptp / max(2 * ptp + pfp + pfn, 1)}


def real_fp(weights: str | None) -> dict[str, float]:
    """Largest share of a held-out real no-mining scene detected as footprint, per method."""
    from geo.stack import Composite
    from geo.stages.detect import FusionConfig, RuleThresholds, classify
    from models.data import real_negative_scenes

    out = {}
    scenes = real_negative_scenes(split="test")
    for m in METHODS:
        worst = 0.0
        for s in scenes:
            valid = np.all(np.isfinite(s.data), axis=0)
            comp = Composite(s.data, np.where(valid, 2, 0).astype(np.uint16), s.bands, s.grid)
            cfg = RuleThresholds() if m == "rules" else FusionConfig(weights=weights, device="cpu")
            det = classify(comp, method=m, config=cfg)
            worst = max(worst, float(((det.classes > 0) & valid).sum() / max(valid.sum(), 1)))
        out[m] = worst
    return out


def train_holdout(steps: int, n: int, size: int, out: Path) -> str:
    from models.data import mixed_training_set, real_negative_scenes
    from models.infer import save_model
    from models.train import TrainConfig, train

    dom = Domain(soil_families=TRAIN_SOILS, pond_types=TRAIN_PONDS)
    negs = real_negative_scenes(split="train")
    samples = mixed_training_set(range(0, n), size=size, domain=dom, legacy_share=0.0,
                                 backgrounds=[s.data for s in negs], implants_per_background=8)
    cfg = TrainConfig(steps=steps, transform="log", brightness=(0.75, 1.3), small_pond_weight=3.0,
                      mine_at=(0.5, 0.8), version="holdout")
    res = train(samples, cfg, negatives=[(s.data, np.zeros(s.grid.shape, np.uint8)) for s in negs])
    save_model(res.model, res.card, out)
    return str(out)


def table(results: dict[str, dict[str, dict[str, float]]], title: str) -> list[str]:
    lines = [title, "", "| suite | rules IoU | model IoU | fused IoU | rules pond F1 | model pond F1 | fused pond F1 |",
             "|---|---|---|---|---|---|---|"]
    for suite, r in results.items():
        lines.append(f"| {suite} | " + " | ".join(f"{r[m]['iou']:.3f}" for m in METHODS) + " | "
                     + " | ".join(f"{r[m]['pond_f1']:.3f}" for m in METHODS) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None, help="weights to score (default: shipped)")
    ap.add_argument("--scenes", type=int, default=12, help="scenes per suite")
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--holdout", action="store_true", help="also train and score a held-out-family model")
    ap.add_argument("--steps", type=int, default=1500, help="training steps of the held-out-family model")
    ap.add_argument("--train-scenes", type=int, default=160, help="training chips of the held-out-family model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write-card", action="store_true", help="write the tables into models/weights/MODEL_CARD.md")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", stream=sys.stderr)
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data = suites(args.scenes, args.size)
    lines = [f"Robustness benchmark (`benchmarks/bench_robustness.py`, {args.scenes} scenes of {args.size} px per "
             "suite, seeds 300000+; footprint = cleared land + ponds):", ""]
    res = {name: {m: score(pairs, m, args.weights) for m in METHODS} for name, pairs in data.items()}
    lines += table(res, "Shipped model (trained on every soil family and pond type, other seeds):")
    fp = real_fp(args.weights)
    lines += ["", "Held-out real no-mining scenes (Virginia rows 0-640 and 1280-1920, Slovenia 4), largest detected "
              "footprint share: " + ", ".join(f"{m} {fp[m]:.4%}" for m in METHODS)]
    if args.holdout:
        with tempfile.TemporaryDirectory() as tmp:
            t1 = time.perf_counter()
            w = train_holdout(args.steps, args.train_scenes, args.size, Path(tmp) / "holdout.pt")
            secs = time.perf_counter() - t1
            keep = [k for k in data if k in ("soil:pale_kaolinitic", "soil:grey", "pond:milky", "pond:dark_liner",
                                              "harsh", "real_bg", "legacy")]
            hres = {k: {m: score(data[k], m, w) for m in METHODS} for k in keep}
            hfp = real_fp(w)
        lines += ["", *table(hres, f"Held-out-family model: trained ({args.steps} steps, {args.train_scenes} chips + "
                             f"real-background implants, {secs:.0f} s) only on soils {', '.join(TRAIN_SOILS)} and "
                             f"ponds {', '.join(TRAIN_PONDS)}, no legacy chips; every suite below holds families, "
                             "light or backgrounds it never saw:"),
                  "", "Its largest real no-mining footprint share: " + ", ".join(f"{m} {hfp[m]:.4%}" for m in METHODS)]
    lines += ["", f"({time.perf_counter() - t0:.0f} s total)"]
    text = "\n".join(lines)
    print(text)
    if args.write_card:
        card = Path(__file__).resolve().parents[1] / "models" / "weights" / "MODEL_CARD.md"
        md = card.read_text()
        block = f"{CARD_BEGIN}\n## Robustness\n\n{text}\n{CARD_END}"
        if CARD_BEGIN in md:
            md = md[:md.index(CARD_BEGIN)] + block + md[md.index(CARD_END) + len(CARD_END):]
        else:
            md = md.replace("## Limits", block + "\n\n## Limits")
        card.write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
