"""Train the U-Net on (reflectance, label) pairs: simulator scenes, real negatives, user labels.

Everything is deterministic for a given :class:`TrainConfig` on CPU (seeded numpy and torch,
fixed thread count). Pure apart from optionally saving the result (:func:`models.infer.save_model`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from geo.bands import ANALYSIS_BANDS
from geo.errors import ConfigError
from models.data import augment, hard_negative_pixels, random_crop
from models.infer import ModelCard
from models.unet import UNet, UNetConfig, count_parameters

log = logging.getLogger(__name__)

CLASSES = {0: "background", 1: "cleared_land", 2: "leaching_pond"}


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters.

    Attributes:
        steps: optimiser steps.
        batch_size: crops per step.
        crop: crop size in px (multiple of ``unshuffle * 2**depth``).
        lr: peak learning rate of the one-cycle schedule.
        weight_decay: AdamW weight decay.
        class_weights: cross-entropy weight per class (background, cleared land, pond); ponds are
            rare, so they weigh more.
        negative_fraction: share of crops drawn from all-background samples (real negatives).
        focus: share of crops placed to contain a footprint pixel (sites are sparse) or, in
            negatives, a pixel the rules mistake for water or bare soil (hard negatives).
        widths: U-Net channels per level.
        unshuffle: space-to-depth factor of the U-Net stem.
        refine: hidden channels of the U-Net's full-resolution refinement (0 = none).
        seed: seed of numpy and torch.
        threads: torch CPU threads (the shared machine has 2 cores).
        version: version string written into the model card.
    """

    steps: int = 1800
    batch_size: int = 8
    crop: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    class_weights: tuple[float, float, float] = (1.0, 2.0, 3.0)
    negative_fraction: float = 0.35
    focus: float = 0.4
    widths: tuple[int, ...] = (32, 48, 64)
    unshuffle: int = 4
    refine: int = 16
    seed: int = 0
    threads: int = 2
    version: str = "1.0.0"

    def __post_init__(self) -> None:
        mult = self.unshuffle * 2 ** (len(self.widths) - 1)
        if self.crop % mult:
            raise ConfigError(f"crop {self.crop} must be a multiple of {mult} for widths {self.widths}")
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("steps and batch_size must be >= 1")
        if not 0 <= self.negative_fraction <= 1:
            raise ConfigError("negative_fraction must lie in 0-1")
        if len(self.class_weights) != len(CLASSES):
            raise ConfigError(f"class_weights needs {len(CLASSES)} values")


@dataclass
class TrainResult:
    """What :func:`train` returns: the model (eval mode), its card and the loss history."""

    model: UNet
    card: ModelCard
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def band_statistics(samples: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-band mean and std over all finite pixels (the card's normalisation)."""
    n = samples[0][0].shape[0]
    s, s2, cnt = np.zeros(n), np.zeros(n), np.zeros(n)
    for x, _ in samples:
        for b in range(n):
            v = x[b][np.isfinite(x[b])].astype(np.float64)
            s[b] += v.sum()
            s2[b] += (v * v).sum()
            cnt[b] += v.size
    mean = s / np.maximum(cnt, 1)
    std = np.sqrt(np.maximum(s2 / np.maximum(cnt, 1) - mean**2, 1e-8))
    return tuple(round(float(v), 5) for v in mean), tuple(round(float(v), 5) for v in std)


def _batch(samples, negatives, cfg: TrainConfig, rng: np.random.Generator, mean, std, hard):
    xs, ys = [], []
    for _ in range(cfg.batch_size):
        if negatives and rng.random() < cfg.negative_fraction:
            i = int(rng.integers(0, len(negatives)))
            x, y = random_crop(*negatives[i], cfg.crop, rng, focus=cfg.focus, targets=hard[i])
            x, y = augment(x, y, rng)
        else:
            x, y = samples[int(rng.integers(0, len(samples)))]
            x, y = random_crop(x, y, cfg.crop, rng, focus=cfg.focus)
            x, y = augment(x, y, rng)
        xs.append(x)
        ys.append(y)
    x = np.nan_to_num((np.stack(xs) - mean) / std, nan=0.0).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(np.stack(ys).astype(np.int64))


def train(
    samples: Sequence[tuple[np.ndarray, np.ndarray]],
    config: TrainConfig = TrainConfig(),
    *,
    negatives: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    bands: tuple[str, ...] = ANALYSIS_BANDS,
    init: tuple[UNet, ModelCard] | None = None,
    extra_card: dict | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train a U-Net.

    Args:
        samples: ``(float32 (band, y, x) reflectance in ``bands`` order, uint8 (y, x) labels)`` pairs;
            labels 0 background, 1 cleared land, 2 pond, 255 = ignore.
        config: hyper-parameters.
        negatives: extra all-background pairs (real no-mining scenes), drawn with
            ``config.negative_fraction``.
        bands: band ids of the inputs (the card records them).
        init: start from this model and card (fine-tuning; keeps its normalisation and architecture).
        extra_card: extra fields for the model card (training data, metrics ...).
        progress: called as ``progress(step, loss)`` after every step.
    """
    if not samples:
        raise ConfigError("no training samples; give images with labels or simulator seeds")
    for x, y in list(samples) + list(negatives):
        if x.shape[0] != len(bands) or x.shape[1:] != y.shape:
            raise ConfigError(f"sample of shape {x.shape} / labels {y.shape} does not fit bands {bands}")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, config.threads))
    if init is not None:
        model, base = init
        model = UNet(model.config).to("cpu").train()
        model.load_state_dict(init[0].state_dict())
        mean_t, std_t = base.mean, base.std
        if tuple(base.bands) != tuple(bands):
            raise ConfigError(f"fine-tuning needs inputs in the base model's band order {base.bands}, got {bands}")
    else:
        model = UNet(UNetConfig(in_channels=len(bands), n_classes=len(CLASSES), widths=config.widths,
                                unshuffle=config.unshuffle, refine=config.refine)).train()
        mean_t, std_t = band_statistics(list(samples))
    mean = np.asarray(mean_t, np.float32)[None, :, None, None]
    std = np.asarray(std_t, np.float32)[None, :, None, None]
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.steps, pct_start=0.15)
    weights = torch.tensor(config.class_weights, dtype=torch.float32)
    hard = [hard_negative_pixels(x, bands) for x, _ in negatives]
    losses: list[float] = []
    t0 = time.perf_counter()
    try:
        for step in range(config.steps):
            x, y = _batch(samples, negatives, config, rng, mean, std, hard)
            loss = F.cross_entropy(model(x), y, weight=weights, ignore_index=255)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(step, losses[-1])
            if step % 50 == 0:
                log.info("step %d/%d loss %.4f", step, config.steps, losses[-1])
    finally:
        torch.set_num_threads(prev_threads)
    model.eval()
    seconds = time.perf_counter() - t0
    card = ModelCard(
        name="minewatch-unet", version=config.version, bands=tuple(bands), mean=tuple(mean_t), std=tuple(std_t),
        classes=dict(CLASSES), architecture=model.config.to_dict(),
        extra={"parameters": count_parameters(model),
               "training": {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
                            "seconds": round(seconds, 1), "final_loss": round(float(np.mean(losses[-20:])), 4),
                            "n_samples": len(samples), "n_negatives": len(negatives)},
               **(extra_card or {})},
    )
    return TrainResult(model, card, losses, seconds)


@dataclass(frozen=True)
class LabelledImage:
    """One training image with its labels.

    Attributes:
        path: GeoTIFF whose band descriptions name Sentinel-2 bands (L2A DN).
        labels: GeoJSON/GPKG of polygons or points with a ``class`` property.
        offset: DN offset (e.g. -1000 for baseline >= 04.00); ``None`` reads the ``offset`` tag.
        point_radius_m: radius (m) that turns point labels into discs.
        unlabelled: value of pixels outside every label: 0 (background) or 255 (ignored by the loss).
    """

    path: Path
    labels: Path
    offset: float | None = None
    point_radius_m: float = 20.0
    unlabelled: int = 0


@dataclass(frozen=True)
class TrainJob:
    """A training run as described by a TOML file (see ``docs`` in :func:`load_job`).

    Attributes:
        images: labelled GeoTIFFs.
        simulator_seeds: simulator scene seeds to add (empty for none).
        simulator_size: simulator scene size in px.
        real_negatives: add the real no-mining scenes from ../shared/data when present.
        init: ``"shipped"`` (fine-tune the shipped weights), a weights path, or ``None`` (from scratch).
        output: where to write the weights (the card goes next to it as ``.json``).
        train: hyper-parameters.
    """

    images: tuple[LabelledImage, ...]
    simulator_seeds: tuple[int, ...]
    simulator_size: int
    real_negatives: bool
    init: str | None
    output: Path
    train: TrainConfig


def load_job(path: Path) -> TrainJob:
    """Read a training TOML file. Relative paths are relative to the file. Example::

        output = "my_model.pt"
        init = "shipped"                 # or "none", or a path to weights
        [[images]]
        path = "scene.tif"
        labels = "labels.geojson"        # polygons, or points buffered by point_radius_m
        offset = -1000                   # optional; else the GeoTIFF's `offset` tag, else 0
        point_radius_m = 20
        unlabelled = "background"        # or "ignore"
        [simulator]
        seeds = [0, 8]                   # range(0, 8)
        size = 128
        [negatives]
        real = true
        [train]
        steps = 100
        crop = 64

    Raises:
        ConfigError: unreadable TOML, unknown keys or wrong types.
    """
    import tomllib

    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read training config {path}: {exc}") from None
    base = path.parent

    def rel(p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else base / q

    allowed = {"output", "init", "images", "simulator", "negatives", "train"}
    unknown = set(doc) - allowed
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    images = []
    for i, im in enumerate(doc.get("images", [])):
        bad = set(im) - {"path", "labels", "offset", "point_radius_m", "unlabelled"}
        if bad or "path" not in im or "labels" not in im:
            raise ConfigError(f"{path}: images[{i}] needs path and labels (unknown: {sorted(bad)})")
        unl = {"background": 0, "ignore": 255}.get(str(im.get("unlabelled", "background")))
        if unl is None:
            raise ConfigError(f"{path}: images[{i}].unlabelled must be 'background' or 'ignore'")
        images.append(LabelledImage(rel(im["path"]), rel(im["labels"]),
                                    None if im.get("offset") is None else float(im["offset"]),
                                    float(im.get("point_radius_m", 20.0)), unl))
    sim = doc.get("simulator", {})
    seeds = sim.get("seeds", [])
    if seeds and (len(seeds) != 2 or not all(isinstance(s, int) for s in seeds)):
        raise ConfigError(f"{path}: simulator.seeds must be [start, stop]")
    tr = dict(doc.get("train", {}))
    fields = set(TrainConfig.__dataclass_fields__)
    if set(tr) - fields:
        raise ConfigError(f"{path}: unknown [train] key(s) {sorted(set(tr) - fields)}; allowed: {sorted(fields)}")
    for k in ("widths", "class_weights"):
        if k in tr:
            tr[k] = tuple(tr[k])
    try:
        cfg = TrainConfig(**tr)
    except TypeError as exc:
        raise ConfigError(f"{path}: bad [train] values ({exc})") from None
    init = doc.get("init", None)
    init = None if init in (None, "none", "") else (init if init == "shipped" else str(rel(init)))
    return TrainJob(tuple(images), tuple(range(*seeds)) if seeds else (), int(sim.get("size", 256)),
                    bool(doc.get("negatives", {}).get("real", False)), init, rel(doc.get("output", "model.pt")), cfg)


def job_samples(job: TrainJob) -> tuple[list, list]:
    """Load the job's ``(samples, negatives)`` lists."""
    from models.data import rasterize_labels, read_geotiff, real_negative_scenes, simulator_pair

    samples = []
    for im in job.images:
        scene = read_geotiff(im.path, offset=im.offset)
        y = rasterize_labels(im.labels, scene.grid, point_radius_m=im.point_radius_m, unlabelled=im.unlabelled)
        samples.append((scene.data, y))
    samples += [simulator_pair(s, job.simulator_size) for s in job.simulator_seeds]
    negatives = []
    if job.real_negatives:
        negatives = [(s.data, np.zeros(s.grid.shape, np.uint8)) for s in real_negative_scenes()]
    return samples, negatives


def run_job(job: TrainJob, progress: Callable[[int, float], None] | None = None) -> TrainResult:
    """Load data, train and save the weights + card to ``job.output``."""
    from models.infer import load_model, save_model

    samples, negatives = job_samples(job)
    init = None
    if job.init is not None:
        init = load_model(None if job.init == "shipped" else job.init, device="cpu", fuse=False)
    extra = {"training_data": {"images": [str(i.path) for i in job.images],
                               "simulator_seeds": [min(job.simulator_seeds), max(job.simulator_seeds) + 1]
                               if job.simulator_seeds else [],
                               "real_negatives": len(negatives), "init": job.init}}
    res = train(samples, job.train, negatives=negatives, init=init, extra_card=extra, progress=progress)
    res.card = save_model(res.model, res.card, job.output)
    return res
