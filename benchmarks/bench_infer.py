#!/usr/bin/env python
"""Detection speed of the shipped U-Net vs a TRAINED 48×48-px sliding-window patch classifier doing the same
job (a class map with the same post-processing), on the same real Sentinel-2 scene and device.

    python benchmarks/bench_infer.py [--threads 2] [--repeat 3] [--device cpu|cuda] [--sweep]
                                     [--patch-steps 300] [--patch-weights FILE]

The patch classifier (the approach of the best-known open mining detector: 2×conv32 → pool → 2×conv64 → pool →
2×conv96 → global pool → linear, ~150 k parameters) is trained here, unless ``--patch-weights`` holds one from an
earlier run, on simulator chips (``geo.sim.training.training_pair``, seeds 500000+, never the U-Net's) for
``--patch-steps`` Adam steps: each 48-px window is labelled with the class of its central 24 × 24 cell (pond if
any pond pixel, else cleared land if at least a quarter of it is, else background), normalised with the U-Net's
band statistics. At inference it scores every window at stride 24 and paints its class over the central cell;
then both maps go through the same post-processing (``geo.stages.fusion.drop_small``: specks below the minimum
pond / cleared-land areas removed) and confidence. Both run channels-last with the same thread count.

Printed side by side: seconds, Mpx/s, km²/s and the time-per-km² ratio on the held-out Virginia window (rows
0–640 of the real scene, 1933 px wide, ≈ 124 km²; a random scene of that size when the shared data folder is
absent), post-processing included; and pixel IoU of both on held-out simulator seeds 100000..100007 (the U-Net's
model-card hold-out), so the faster one is not also the one that does not do the job.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from geo.bands import ANALYSIS_BANDS
from geo.stages.detect import FusionConfig, classify
from models.infer import load_model, resolve_device
from models.unet import count_parameters


DEFAULTS = FusionConfig()


PATCH, STRIDE = 48, 24


def patch_classifier() -> nn.Sequential:
    """A typical small 48-px patch CNN: 2×conv32 → pool → 2×conv64 → pool → 2×conv96 → GAP → linear."""
    def c(i, o):
        return [nn.Conv2d(i, o, 3, padding=1), nn.ReLU(inplace=True)]

    return nn.Sequential(*c(6, 32), *c(32, 32), nn.MaxPool2d(2), *c(32, 64), *c(64, 64), nn.MaxPool2d(2),
                         *c(64, 96), *c(96, 96), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, 3))


def normalise(x: np.ndarray, card) -> np.ndarray:
    m = np.asarray(card.mean, np.float32)[:, None, None]
    s = np.asarray(card.std, np.float32)[:, None, None]
    return np.nan_to_num((x - m) / s).astype(np.float32)


def window_labels(y: np.ndarray) -> np.ndarray:
    """Class of each stride-24 window's central 24 × 24 cell (pond if any pond pixel, cleared if >= 25 %)."""
    off = (PATCH - STRIDE) // 2
    t = torch.from_numpy(y[off:, off:].astype(np.int64))
    cells = t.unfold(0, STRIDE, STRIDE).unfold(1, STRIDE, STRIDE)  # (nr, nc, 24, 24)
    nr = (y.shape[0] - PATCH) // STRIDE + 1
    nc = (y.shape[1] - PATCH) // STRIDE + 1
    cells = cells[:nr, :nc]
    pond = (cells == 2).flatten(2).any(-1)
    cleared = (cells == 1).flatten(2).float().mean(-1) >= 0.25
    return torch.where(pond, 2, torch.where(cleared, 1, 0)).reshape(-1).numpy()


def windows(x: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(x)
    pt = t.unfold(1, PATCH, STRIDE).unfold(2, PATCH, STRIDE)  # (band, nr, nc, 48, 48)
    return pt.permute(1, 2, 0, 3, 4).reshape(-1, x.shape[0], PATCH, PATCH)


def train_patch_classifier(card, steps: int, seed: int = 0) -> tuple[nn.Module, float]:
    """Train on simulator chips (seeds 500000+); returns the net and the seconds it took."""
    from models.data import simulator_pair

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    xs, ys = [], []
    for s in range(500000, 500048):
        x, y = simulator_pair(s, 192, small_ponds=0.5)
        xs.append(windows(normalise(x, card)))
        ys.append(torch.from_numpy(window_labels(y)))
    X, Y = torch.cat(xs), torch.cat(ys)
    counts = torch.bincount(Y, minlength=3).float()
    w = (1.0 / counts.clamp(min=1))[Y]  # balanced batches: footprints are rare
    net = patch_classifier()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for step in range(steps):
        idx = torch.multinomial(w, 64, replacement=True, generator=gen)
        xb = X[idx]
        if step % 2:
            xb = xb.flip(-1)
        loss = nn.functional.cross_entropy(net(xb.contiguous(memory_format=torch.channels_last)), Y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval(), time.perf_counter() - t0


def patch_detect(net: nn.Module, card, comp, *, batch: int = 256):
    """The patch classifier's Detection: windows at stride 24 → class over each central cell → same
    post-processing and confidence as the U-Net path."""
    from geo.stages.detect import BACKGROUND, Detection, RuleThresholds
    from geo.stages.fusion import drop_small

    x = normalise(comp.data, card)
    h, w = x.shape[1:]
    pt = windows(x)
    nr, nc = (h - PATCH) // STRIDE + 1, (w - PATCH) // STRIDE + 1
    probs = []
    with torch.inference_mode():
        for i in range(0, pt.shape[0], batch):
            probs.append(torch.softmax(net(pt[i:i + batch].contiguous(memory_format=torch.channels_last)), 1))
    p = torch.cat(probs).reshape(nr, nc, 3).numpy()
    off = (PATCH - STRIDE) // 2
    proba = np.zeros((3, h, w), np.float32)
    proba[0] = 1.0
    cell = np.repeat(np.repeat(p.transpose(2, 0, 1), STRIDE, 1), STRIDE, 2)
    proba[:, off:off + cell.shape[1], off:off + cell.shape[2]] = cell
    t = RuleThresholds()
    classes = drop_small(np.argmax(proba, 0).astype(np.uint8), comp.grid.pixel_area, t.pond_min_area_m2,
                         t.bare_min_area_m2)
    conf = np.take_along_axis(proba, classes[None].astype(np.int64), 0)[0]
    conf = conf * np.clip(comp.clear_count.astype(np.float32) / t.full_confidence_clear_count, 0, 1)
    valid = comp.valid & np.all(np.isfinite(comp.data), axis=0)
    classes[~valid] = BACKGROUND
    return Detection(classes, np.where(valid, conf, 0).astype(np.float32), comp.grid)


def as_composite(data: np.ndarray, px_area: float):
    from affine import Affine
    from rasterio.crs import CRS

    from geo.grid import GeoGrid
    from geo.stack import Composite

    res = float(np.sqrt(px_area))
    grid = GeoGrid(CRS.from_epsg(32647), Affine(res, 0, 431000, 0, -res, 2840000), data.shape[2], data.shape[1])
    return Composite(data=data.astype(np.float32), clear_count=np.full(data.shape[1:], 3, np.uint16),
                     bands=tuple(ANALYSIS_BANDS), grid=grid)


def heldout_iou(detect_fn) -> dict[str, float]:
    """Pixel IoU of cleared land and ponds over held-out simulator seeds 100000..100007."""
    from models.data import simulator_scene
    from models.evaluate import class_metrics, confusion_matrix

    cm = np.zeros((3, 3), np.int64)
    for s in range(100000, 100008):
        sc, y = simulator_scene(s, 256)
        cm += confusion_matrix(y, detect_fn(as_composite(sc.data, 100.0)).classes)
    m = class_metrics(cm)
    return {"cleared_iou": round(m["cleared_land"].iou, 3), "pond_iou": round(m["leaching_pond"].iou, 3)}


def scene() -> tuple[np.ndarray, float, str]:
    from models.data import real_negative_scenes

    for s in real_negative_scenes(split="test"):
        if s.name.startswith("virginia_rows0"):
            return s.data, s.grid.pixel_area, s.name
    rng = np.random.default_rng(0)
    return rng.uniform(0, 0.4, (6, 640, 1933)).astype(np.float32), 100.0, "random"


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--tile", type=int, default=DEFAULTS.tile)
    ap.add_argument("--overlap", type=int, default=DEFAULTS.overlap)
    ap.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    ap.add_argument("--sweep", action="store_true", help="also time tiles 256/384/512/768 px")
    ap.add_argument("--patch-steps", type=int, default=300, help="training steps of the patch classifier")
    ap.add_argument("--patch-weights", type=Path, default=None,
                    help="load the trained patch classifier from here if it exists, else train and save it there")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    data, px_area, name = scene()
    comp = as_composite(data, px_area)
    h, w = data.shape[1:]
    mpx, km2 = h * w / 1e6, h * w * px_area / 1e6
    model, card = load_model(device=str(dev.type))
    if args.patch_weights and args.patch_weights.exists():
        pnet = patch_classifier()
        pnet.load_state_dict(torch.load(args.patch_weights))
        pnet.eval()
        t_train = None
    else:
        pnet, t_train = train_patch_classifier(card, args.patch_steps)
        if args.patch_weights:
            torch.save(pnet.state_dict(), args.patch_weights)
    pnet = pnet.to(dev, memory_format=torch.channels_last)

    def unet(c=comp, tile=args.tile, batch=args.batch_size):
        return classify(c, method="model", config=FusionConfig(device=dev.type, tile=tile, batch_size=batch,
                                                               overlap=args.overlap))

    def patches(c=comp):
        return patch_detect(pnet, card, c)

    unet(), patches()  # warm-up
    t_u = best_of(unet, args.repeat)
    t_p = best_of(patches, args.repeat)
    q_u, q_p = heldout_iou(unet), heldout_iou(patches)
    res = {
        "scene": name, "size_px": [h, w], "mpx": round(mpx, 3), "km2": round(km2, 2), "device": str(dev),
        "threads": args.threads, "unet_params": count_parameters(model), "patch_params": count_parameters(pnet),
        "tile": args.tile, "overlap": args.overlap, "batch_size": args.batch_size,
        "unet_s": round(t_u, 3), "unet_km2_per_s": round(km2 / t_u, 1), "patch_s": round(t_p, 3),
        "patch_km2_per_s": round(km2 / t_p, 1), "speedup_time_per_km2": round(t_p / t_u, 1),
        "patch_training_steps": args.patch_steps, "patch_training_s": None if t_train is None else round(t_train, 1),
        "unet_heldout": q_u, "patch_heldout": q_p,
    }
    rows = [(f"U-Net tile {args.tile} batch {args.batch_size} (default)", t_u, q_u)]
    if args.sweep:
        res["sweep"] = {}
        for tile, batch in ((256, 4), (384, 2), (512, 1), (768, 1)):
            if (tile, batch) != (args.tile, args.batch_size):
                unet(tile=tile, batch=batch)
                t = best_of(lambda: unet(tile=tile, batch=batch), args.repeat)
                rows.append((f"U-Net tile {tile} batch {batch}", t, q_u))
                res["sweep"][f"{tile}/{batch}"] = {"unet_s": round(t, 3), "speedup_time_per_km2": round(t_p / t, 1)}
    print(f"scene {name}: {h}x{w} px = {mpx:.2f} Mpx = {km2:.1f} km2 on {dev} ({args.threads} threads), best of "
          f"{args.repeat}, class map + post-processing included; IoU on held-out simulator seeds 100000..100007")
    print(f"{'detector':<40}{'params':>9}{'seconds':>9}{'km2/s':>8}{'vs patch':>10}{'cleared IoU':>13}{'pond IoU':>10}")
    for label, t, q in rows:
        print(f"{label:<40}{res['unet_params']:>9,}{t:>9.3f}{km2 / t:>8.1f}{t_p / t:>9.1f}x"
              f"{q['cleared_iou']:>13.3f}{q['pond_iou']:>10.3f}")
    trained = "loaded" if t_train is None else f"{args.patch_steps} steps, {t_train:.0f} s"
    print(f"{'patch CNN 48/24 (' + trained + ')':<40}{res['patch_params']:>9,}{t_p:>9.3f}"
          f"{km2 / t_p:>8.1f}{1:>9.1f}x{q_p['cleared_iou']:>13.3f}{q_p['pond_iou']:>10.3f}")
    print(f"U-Net needs {res['speedup_time_per_km2']}x less time per km2 than the trained patch classifier, "
          f"post-processing included; load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == "__main__":
    main()
