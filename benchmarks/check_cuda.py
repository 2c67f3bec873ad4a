#!/usr/bin/env python
"""Does the U-Net answer the same on a CUDA GPU as on the CPU, and how much faster is it there? A device check
in three steps, because the GPU machine need not have minewatch's geospatial stack (only numpy, scipy, torch):

    python benchmarks/check_cuda.py --write-inputs inputs.npz          # CPU machine with ../shared/data
    python benchmarks/check_cuda.py --check inputs.npz --out DIR       # GPU machine: DIR/check.json, gpu_probs.npz
    python benchmarks/check_cuda.py --fused inputs.npz DIR             # CPU machine: fused class maps compared

Inputs: blind-generator scenes never trained or tuned on (gen_d base/rough, gen_e pale/rough, seed 900000,
384 px) and a held-out window of the real Virginia scene (rows 0–384, 768 px wide), with this machine's CPU
probabilities, and six simulator chips for the training step.

``--check`` computes the probabilities on the GPU machine's CPU and on its GPU three ways: with TF32 allowed for
convolutions and matrix products (as a session may set it) through minewatch's inference, which turns it off inside
(:func:`models.unet.exact_fp32`); the same without that guard; and with TF32 off. It prints the largest probability
difference and the share of pixels whose most probable class changes, and times one 2048 × 2048 px raster on both
(the GPU after a warm-up, synchronised). It also times training steps on both devices (``TrainConfig.device``) and
checks that weights trained on the GPU come back on the CPU and run there; that step imports ``models.train``,
which needs rasterio and affine (carry them as wheels).

``--fused`` then runs minewatch's fused detector here with the GPU's probabilities in place of the CPU's and counts
the pixels whose class differs: what a user with a GPU would see change.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")


def write_inputs(path: Path) -> None:
    from benchmarks.independent import gen_d, gen_e
    from models.data import real_negative_scenes
    from models.infer import load_model, predict_proba

    scenes = {f"gen_d_{v}": gen_d.scene(900000, v, 384)[0] for v in ("base", "rough")}
    scenes |= {f"gen_e_{v}": gen_e.scene(900000, v, 384)[0] for v in ("pale", "rough")}
    real = real_negative_scenes(split="test")[0]
    scenes["virginia_test"] = np.ascontiguousarray(real.data[:, :384, :768], np.float32)
    model, card = load_model(None, device="cpu")
    out = {}
    from models.data import measured_pair

    for k in range(6):  # training samples for --check's training step (the simulator's, seeds 700000+)
        out[f"train_x_{k}"], out[f"train_y_{k}"] = measured_pair(700000 + k, 192, small_ponds=0.3)
    for name, x in scenes.items():
        out[f"x_{name}"] = x.astype(np.float32)
        out[f"cpu_{name}"] = predict_proba(model, card, x, BANDS, device="cpu", reorder=True)
    np.savez_compressed(path, **out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {', '.join(scenes)}")


def _probs(x, device, tf32, guarded=True):
    """Probabilities with the session's TF32 settings ``tf32``; ``guarded=False`` also without minewatch's
    :func:`models.unet.exact_fp32` (what inference gave before it)."""
    import contextlib
    from unittest import mock

    import torch

    from models.infer import load_model, predict_proba

    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    model, card = load_model(None, device=device)
    guard = contextlib.nullcontext() if guarded else \
        mock.patch("models.infer.exact_fp32", lambda dev: contextlib.nullcontext())
    with guard:
        return predict_proba(model, card, x, BANDS, device=device, reorder=True)


def _timed(x, device, repeat=3):
    import torch

    from models.infer import load_model, predict_proba

    model, card = load_model(None, device=device)
    predict_proba(model, card, x, BANDS, device=device, reorder=True)  # warm-up
    times = []
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        predict_proba(model, card, x, BANDS, device=device, reorder=True)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return min(times)


def _train_check(data) -> dict:
    """Seconds per training step (batch 8, crop 128, the shipped architecture) on the CPU and the GPU, and whether
    weights trained on the GPU come back on the CPU and run there."""
    import torch

    from models.infer import load_model, predict_proba
    from models.train import TrainConfig, train

    samples = [(data[f"train_x_{k}"], data[f"train_y_{k}"]) for k in range(6) if f"train_x_{k}" in data.files]
    _, card = load_model(None, device="cpu")
    cfg = dict(batch_size=8, crop=128, threads=torch.get_num_threads(), transform="log", log_every=1000)
    steps = 60
    out = {}
    for dev in ("cpu", "cuda"):
        train(samples, TrainConfig(**cfg, steps=5, device=dev))  # warm-up
        res = train(samples, TrainConfig(**cfg, steps=steps, device=dev))
        out[f"{dev}_s_per_step"] = res.seconds / steps
        if dev == "cuda":
            on_cpu = all(p.device.type == "cpu" for p in res.model.parameters())
            p = predict_proba(res.model, res.card, data["train_x_0"], BANDS, device="cpu")
            out["gpu_weights_on_cpu_and_run"] = bool(on_cpu and np.isfinite(p).all())
    out["speedup"] = out["cpu_s_per_step"] / out["cuda_s_per_step"]
    return out


def check(inputs: Path, out_dir: Path) -> dict:
    import torch

    data = np.load(inputs)
    names = [k[2:] for k in data.files if k.startswith("x_")]
    rep = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
           "cpu_threads": torch.get_num_threads(), "scenes": {}}
    if rep["gpu"] is None:
        raise SystemExit("no CUDA GPU here")
    keep = {}
    for name in names:
        x = data[f"x_{name}"]
        ref = data[f"cpu_{name}"]
        local = _probs(x, "cpu", True)
        row = {"cpu_here_vs_cpu_inputs_max_dp": float(np.abs(local - ref).max())}
        for tag, tf32, guarded in (("gpu_tf32_allowed", True, True), ("gpu_tf32_unguarded", True, False),
                                   ("gpu_no_tf32", False, True)):
            p = _probs(x, "cuda", tf32, guarded)
            row[f"{tag}_max_dp"] = float(np.abs(p - ref).max())
            row[f"{tag}_argmax_changed"] = float((p.argmax(0) != ref.argmax(0)).mean())
            if tag == "gpu_tf32_allowed":
                keep[f"gpu_{name}"] = p
        rep["scenes"][name] = row
        print(name, json.dumps(row), flush=True)
    torch.backends.cudnn.allow_tf32 = True
    big = np.tile(data[f"x_{names[0]}"], (1, 6, 6))[:, :2048, :2048].copy()
    rep["seconds_2048px"] = {"cpu": _timed(big, "cpu"), "cuda": _timed(big, "cuda")}
    rep["seconds_2048px"]["speedup"] = rep["seconds_2048px"]["cpu"] / rep["seconds_2048px"]["cuda"]
    print("2048x2048 px:", json.dumps(rep["seconds_2048px"]), flush=True)
    rep["training"] = _train_check(data)
    print("training:", json.dumps(rep["training"]), flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "check.json").write_text(json.dumps(rep, indent=1))
    np.savez_compressed(out_dir / "gpu_probs.npz", **keep)
    return rep


def fused(inputs: Path, result_dir: Path) -> None:
    from unittest import mock

    from affine import Affine
    from rasterio.crs import CRS

    import geo.stages.detect as D
    from geo.grid import GeoGrid
    from geo.stack import Composite

    data = np.load(inputs)
    gpu = np.load(result_dir / "gpu_probs.npz")
    rep = json.loads((result_dir / "check.json").read_text())
    print(f"GPU {rep['gpu']}, torch {rep['torch']}; largest probability difference / share of pixels whose most "
          "probable class changed, and the fused detector's class maps (GPU probabilities in place of the CPU's):")
    print(f"{'scene':16s} {'max dp':>8s} {'argmax':>8s} {'unguarded':>10s} {'no-TF32 dp':>10s} "
          f"{'fused px differ':>16s} {'footprint px cpu → gpu':>24s}")
    for name, row in rep["scenes"].items():
        x = data[f"x_{name}"]
        h, w = x.shape[1:]
        grid = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 431000, 0, -10, 2840000), w, h)
        valid = np.all(np.isfinite(x), axis=0)
        comp = Composite(x, np.where(valid, 3, 0).astype(np.uint16), BANDS, grid)
        cfg = D.FusionConfig(device="cpu")
        with mock.patch("models.infer.predict_proba", lambda *a, **k: data[f"cpu_{name}"]):
            a = D.classify(comp, method="fused", config=cfg).classes
        with mock.patch("models.infer.predict_proba", lambda *a, **k: gpu[f"gpu_{name}"]):
            b = D.classify(comp, method="fused", config=cfg).classes
        print(f"{name:16s} {row['gpu_tf32_allowed_max_dp']:8.1e} {row['gpu_tf32_allowed_argmax_changed']:8.1e} "
              f"{row['gpu_tf32_unguarded_argmax_changed']:10.1e} {row['gpu_no_tf32_max_dp']:10.1e} "
              f"{int((a != b).sum()):16d} {int((a > 0).sum()):>11d} → {int((b > 0).sum())}")
    s = rep["seconds_2048px"]
    print(f"2048 x 2048 px: CPU ({rep['cpu_threads']} threads) {s['cpu']:.2f} s, GPU {s['cuda']:.3f} s: "
          f"{s['speedup']:.0f}x")
    if "training" in rep:
        t = rep["training"]
        print(f"training step (batch 8, crop 128): CPU {t['cpu_s_per_step']:.3f} s, GPU {t['cuda_s_per_step']:.3f} s:"
              f" {t['speedup']:.1f}x; GPU-trained weights back on the CPU and run there: "
              f"{t['gpu_weights_on_cpu_and_run']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write-inputs", type=Path)
    ap.add_argument("--check", type=Path)
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "cuda_check")))
    ap.add_argument("--fused", nargs=2, type=Path, metavar=("INPUTS", "RESULT_DIR"))
    a = ap.parse_args(argv)
    if a.write_inputs:
        write_inputs(a.write_inputs)
    elif a.check:
        check(a.check, a.out)
    elif a.fused:
        fused(*a.fused)
    else:
        ap.error("give --write-inputs, --check or --fused")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
