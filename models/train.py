"""Train the U-Net on (reflectance, label) pairs: simulator scenes, real negatives, user labels.

Everything is deterministic for a given :class:`TrainConfig` on CPU (seeded numpy and torch,
fixed thread count). Pure apart from optionally saving the result (:func:`models.infer.save_model`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from geo.bands import ANALYSIS_BANDS, BANDS
from geo.errors import ConfigError
from models.data import augment, hard_negative_pixels, random_crop
from models.infer import ModelCard, input_transform, resolve_device
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
        device: ``"cpu"`` (default: the card's figures were trained so), ``"cuda"`` or ``"auto"`` (CUDA when there
            is a GPU). The batches are still cut and augmented on the CPU; the weights come back on the CPU.
        version: version string written into the model card.
        small_pond_px: ponds (8-connected truth components in a crop) of at most this many pixels
            are "small" for ``small_pond_weight``.
        small_pond_weight: extra loss weight (multiplies the pond class weight) of the pixels of small
            ponds, which a 10 m model otherwise learns to smear into the cleared land around them
            (1 = off).
        mine_at: fractions of ``steps`` after which the model is run over each negative and the pixels
            it calls footprint (probability of cleared land + pond >= ``mine_threshold``) become
            extra hard negatives (hard-negative mining; empty = off).
        mine_threshold: footprint probability that marks a mined hard negative.
        mine_share: share of focused negative crops centred on a mined pixel (the rest on the rules'
            water / bare-soil look-alikes).
        val_fraction: share of the samples (whole samples, drawn with ``seed``) held out of training and scored
            after it (IoU per class of the U-Net alone, written to the card's ``validation``); 0 = none.
        log_every: log a progress line (step, loss, learning rate, time left) every this many steps.
        transform: input transform of the card (``"linear"`` or ``"log"``, see
            :func:`models.infer.input_transform`); fine-tuning keeps the base model's.
        log_floor: per-band smallest reflectance before the log (the card's ``floor``); empty keeps the base
            model's when fine-tuning, else 0.001 for every band.
        brightness: range of the overall gain drawn per crop (augmentation; (1, 1) = off).
        band_gain, material_gain, haze, blur, noise: the other augmentations of :func:`models.data.augment`
            (per-band gain, per-class colour gain, additive haze, point-spread blur, sensor noise; see there).
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
    device: str = "cpu"
    version: str = "1.0.0"
    small_pond_px: int = 6
    small_pond_weight: float = 1.0
    mine_at: tuple[float, ...] = ()
    mine_threshold: float = 0.3
    mine_share: float = 0.5
    val_fraction: float = 0.0
    log_every: int = 50
    transform: str = "linear"
    log_floor: tuple[float, ...] = ()
    brightness: tuple[float, float] = (1.0, 1.0)
    band_gain: float = 0.05
    material_gain: float = 0.0
    haze: float = 0.0
    blur: float = 0.0
    noise: float = 0.0

    def __post_init__(self) -> None:
        if self.unshuffle < 1 or not self.widths or min(self.widths) < 1 or self.refine < 0:
            raise ConfigError(f"widths must be >= 1 each, unshuffle >= 1 and refine >= 0 "
                              f"(got {self.widths}, {self.unshuffle}, {self.refine})")
        mult = self.unshuffle * 2 ** (len(self.widths) - 1)
        if self.crop % mult or self.crop < mult:
            raise ConfigError(f"crop {self.crop} must be a positive multiple of {mult} for widths {self.widths}")
        if not self.lr > 0 or self.weight_decay < 0 or self.seed < 0 or min(self.class_weights, default=1) <= 0:
            raise ConfigError(f"lr and class_weights must be > 0, weight_decay and seed >= 0 (got lr {self.lr}, "
                              f"class_weights {self.class_weights}, weight_decay {self.weight_decay}, seed {self.seed})")
        if not (0 <= self.focus <= 1 and 0 < self.mine_threshold < 1 and 0 <= self.mine_share <= 1):
            raise ConfigError("focus and mine_share must lie in 0-1 and mine_threshold in (0, 1)")
        if len(self.brightness) != 2 or not 0 < self.brightness[0] <= self.brightness[1]:
            raise ConfigError(f"brightness must be [low, high] with 0 < low <= high, got {list(self.brightness)}")
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("steps and batch_size must be >= 1")
        if not 0 <= self.negative_fraction <= 1:
            raise ConfigError("negative_fraction must lie in 0-1")
        if len(self.class_weights) != len(CLASSES):
            raise ConfigError(f"class_weights needs {len(CLASSES)} values")
        if self.small_pond_weight <= 0 or not all(0 < f < 1 for f in self.mine_at):
            raise ConfigError("small_pond_weight must be > 0 and mine_at fractions must lie in (0, 1)")
        if not 0 <= self.val_fraction < 1 or self.log_every < 1:
            raise ConfigError(f"val_fraction must lie in [0, 1) (got {self.val_fraction}) and log_every be >= 1 "
                              f"(got {self.log_every})")
        if not 0 <= self.band_gain < 1 or not 0 <= self.material_gain < 1 or min(self.haze, self.blur, self.noise) < 0:
            raise ConfigError("band_gain and material_gain must lie in [0, 1); haze, blur and noise must be >= 0")
        if not all(0 < f < 1 for f in self.log_floor):
            raise ConfigError(f"log_floor must give reflectances in (0, 1), got {list(self.log_floor)}")
        if self.transform not in ("linear", "log"):
            raise ConfigError(f"transform must be 'linear' or 'log', got {self.transform!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():  # before minutes of building training data
            raise ConfigError("device 'cuda' was asked for training but no CUDA GPU is available; use cpu or auto")


@dataclass
class TrainResult:
    """What :func:`train` returns: the model (eval mode), its card and the loss history (the card's ``validation``
    holds the held-out scores, ``parent`` the weights a fine-tune started from)."""

    model: UNet
    card: ModelCard
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def band_statistics(samples: Sequence[tuple[np.ndarray, np.ndarray]],
                    transform: str = "linear", floor=None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-band mean and std over all finite pixels (the card's normalisation) of the transformed input."""
    n = samples[0][0].shape[0]
    s, s2, cnt = np.zeros(n), np.zeros(n), np.zeros(n)
    for x, _ in samples:
        x = input_transform(x, transform, floor)
        for b in range(n):
            v = x[b][np.isfinite(x[b])].astype(np.float64)
            s[b] += v.sum()
            s2[b] += (v * v).sum()
            cnt[b] += v.size
    mean = s / np.maximum(cnt, 1)
    std = np.sqrt(np.maximum(s2 / np.maximum(cnt, 1) - mean**2, 1e-8))
    return tuple(round(float(v), 5) for v in mean), tuple(round(float(v), 5) for v in std)


def _augment(x, y, rng, cfg: TrainConfig, wavelengths):
    return augment(x, y, rng, brightness=cfg.brightness, band_gain=cfg.band_gain, material_gain=cfg.material_gain,
                   haze=cfg.haze, blur=cfg.blur, noise=cfg.noise, wavelengths=wavelengths)


def _batch(samples, negatives, cfg: TrainConfig, rng: np.random.Generator, mean, std, hard, mined=None,
           transform: str = "linear", wavelengths=None, floor=None):
    xs, ys = [], []
    for _ in range(cfg.batch_size):
        if negatives and rng.random() < cfg.negative_fraction:
            i = int(rng.integers(0, len(negatives)))
            targets = hard[i]
            if mined is not None and mined[i].size and rng.random() < cfg.mine_share:
                targets = mined[i]
            x, y = random_crop(*negatives[i], cfg.crop, rng, focus=cfg.focus, targets=targets)
            x, y = _augment(x, y, rng, cfg, wavelengths)
        else:
            x, y = samples[int(rng.integers(0, len(samples)))]
            x, y = random_crop(x, y, cfg.crop, rng, focus=cfg.focus)
            x, y = _augment(x, y, rng, cfg, wavelengths)
        xs.append(x)
        ys.append(y)
    x = np.nan_to_num((input_transform(np.stack(xs), transform, floor) - mean) / std, nan=0.0).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(np.stack(ys).astype(np.int64))


# --- loss weighting and hard-negative mining -------------------------------------------------------


def _pixel_weights(y: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """Per-pixel loss weights: the class weight, times ``small_pond_weight`` on small ponds, 0 on ignored."""
    from scipy import ndimage

    yn = y.numpy()
    cw = np.asarray(cfg.class_weights + (0.0,), np.float32)
    w = cw[np.where(yn == 255, 3, yn)]
    for k in range(yn.shape[0]):
        lab, n = ndimage.label(yn[k] == 2, structure=np.ones((3, 3), bool))
        if n:
            small = np.bincount(lab.ravel(), minlength=n + 1) <= cfg.small_pond_px
            small[0] = False
            w[k][small[lab]] *= cfg.small_pond_weight
    return torch.from_numpy(w)


def _loss(logits: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, weights: torch.Tensor) -> torch.Tensor:
    if cfg.small_pond_weight == 1.0:  # the plain class-weighted loss (bit-identical to earlier versions)
        return F.cross_entropy(logits, y, weight=weights, ignore_index=255)
    w = _pixel_weights(y.cpu(), cfg).to(logits.device)
    per_px = F.cross_entropy(logits, y, reduction="none", ignore_index=255)
    return (per_px * w).sum() / w.sum().clamp_min(1e-6)


@torch.no_grad()
def _mine(model: UNet, negatives, mean, std, cfg: TrainConfig, transform: str = "linear",
          floor=None) -> list[np.ndarray]:
    """Flat indices of the pixels of each negative the model currently calls footprint."""
    mult = cfg.unshuffle * 2 ** (len(cfg.widths) - 1)
    was_training = model.training
    model.eval()
    out = []
    for x, _ in negatives:
        _, h, w = x.shape
        ph, pw = -h % mult, -w % mult
        xin = np.pad(x, ((0, 0), (0, ph), (0, pw)), constant_values=np.nan)[None]
        xin = np.nan_to_num((input_transform(xin, transform, floor) - mean) / std, nan=0.0).astype(np.float32)
        xin = torch.from_numpy(xin).to(next(model.parameters()).device)
        p = torch.softmax(model(xin), dim=1)[0, 1:].sum(0).cpu().numpy()[:h, :w]
        fp = (p >= cfg.mine_threshold) & np.all(np.isfinite(x), axis=0)
        out.append(np.flatnonzero(fp))
    model.train(was_training)
    log.info("mined %s hard-negative px", [int(o.size) for o in out])
    return out


def split_validation(n: int, config: TrainConfig) -> tuple[list[int], list[int]]:
    """``(train, held-out)`` sample indices: ``round(n * val_fraction)`` samples (at least 1 when the fraction is
    > 0, and never all) drawn with the config's seed."""
    k = int(round(n * config.val_fraction))
    if config.val_fraction > 0:
        k = max(1, k)
    if k == 0 or n < 2:
        return list(range(n)), []
    k = min(k, n - 1)
    held = sorted(int(i) for i in np.random.default_rng([config.seed, 1]).choice(n, size=k, replace=False))
    return [i for i in range(n) if i not in set(held)], held


@torch.no_grad()
def validation_report(model: UNet, held, mean, std, config: TrainConfig, transform: str = "linear",
                      floor=None) -> dict:
    """Pooled per-class metrics (:func:`models.evaluate.report`) of the model's argmax over held-out samples,
    their input transformed as in training (until December 2026 a log model was scored on untransformed reflectance);
    label 255 and pixels without data are skipped."""
    from models.evaluate import confusion_matrix, report

    mult = model.config.multiple
    model.eval()
    cm = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
    for x, y in held:
        _, h, w = x.shape
        xin = np.pad(x, ((0, 0), (0, -h % mult), (0, -w % mult)), constant_values=np.nan)[None]
        xin = np.nan_to_num((input_transform(xin, transform, floor) - mean) / std, nan=0.0).astype(np.float32)
        pred = model(torch.from_numpy(xin)).argmax(1)[0].numpy()[:h, :w]
        cm += confusion_matrix(y, pred, len(CLASSES), valid=np.all(np.isfinite(x), axis=0))
    rep = report(cm)
    for m in rep["classes"].values():  # undefined (a class absent from truth and prediction): null in the card's JSON
        m.update({k: None for k, v in m.items() if isinstance(v, float) and not np.isfinite(v)})
    return rep


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
        raise ConfigError("no training samples; give [[images]] or [[scenes]] with labels, or [simulator] seeds")
    for x, y in list(samples) + list(negatives):
        if x.shape[0] != len(bands) or x.shape[1:] != y.shape:
            raise ConfigError(f"sample of shape {x.shape} / labels {y.shape} does not fit bands {bands}")
    train_idx, val_idx = split_validation(len(samples), config)
    if config.val_fraction > 0 and not val_idx:
        log.warning("val_fraction %.2f: only %d sample(s), none can be held out; no validation score",
                    config.val_fraction, len(samples))
    held = [samples[i] for i in val_idx]
    samples = [samples[i] for i in train_idx]
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    dev = resolve_device(config.device)  # cuda without a GPU was refused by TrainConfig
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, config.threads))
    if init is not None:
        model, base = init
        model = UNet(model.config).to("cpu").train()
        model.load_state_dict(init[0].state_dict())
        mean_t, std_t = base.mean, base.std
        transform, floor = base.transform, tuple(config.log_floor) or base.floor
        if tuple(base.bands) != tuple(bands):
            raise ConfigError(f"fine-tuning needs inputs in the base model's band order {base.bands}, got {bands}")
    else:
        model = UNet(UNetConfig(in_channels=len(bands), n_classes=len(CLASSES), widths=config.widths,
                                unshuffle=config.unshuffle, refine=config.refine)).train()
        transform, floor = config.transform, tuple(config.log_floor)
    if floor and len(floor) != len(bands):
        raise ConfigError(f"log_floor gives {len(floor)} values for {len(bands)} bands")
    xfloor = floor or None  # what input_transform takes: None = its default floor
    if init is None:
        mean_t, std_t = band_statistics(list(samples), transform, xfloor)
    mean = np.asarray(mean_t, np.float32)[None, :, None, None]
    std = np.asarray(std_t, np.float32)[None, :, None, None]
    model = model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.steps, pct_start=0.15)
    weights = torch.tensor(config.class_weights, dtype=torch.float32, device=dev)
    hard = [hard_negative_pixels(x, bands) for x, _ in negatives]
    wavelengths = tuple(BANDS[b].wavelength_nm for b in bands) if all(b in BANDS for b in bands) else None
    mined = None
    mine_steps = {int(round(f * config.steps)) for f in config.mine_at} if negatives else set()
    losses: list[float] = []
    t0 = time.perf_counter()
    try:
        for step in range(config.steps):
            if step in mine_steps:
                new = _mine(model, negatives, mean, std, config, transform, xfloor)
                mined = new if mined is None else [np.union1d(a, b) for a, b in zip(mined, new)]
            x, y = _batch(samples, negatives, config, rng, mean, std, hard, mined, transform, wavelengths, xfloor)
            loss = _loss(model(x.to(dev)), y.to(dev), config, weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(step, losses[-1])
            if (step + 1) % config.log_every == 0 or step + 1 == config.steps or step == 0:
                spent = time.perf_counter() - t0
                log.info("step %d/%d loss %.4f (mean of last %d: %.4f) lr %.2e, %.0f s elapsed, ~%.0f s left",
                         step + 1, config.steps, losses[-1], min(len(losses), config.log_every),
                         float(np.mean(losses[-config.log_every:])), sched.get_last_lr()[0], spent,
                         spent / (step + 1) * (config.steps - step - 1))
    finally:
        torch.set_num_threads(prev_threads)
    model = model.to("cpu").eval()
    seconds = time.perf_counter() - t0
    validation = None
    if held:
        validation = {"fraction": config.val_fraction, "held_out_samples": val_idx, "n_samples": len(held),
                      "scored": "argmax of the U-Net alone (no rules), every labelled pixel of the held-out samples, "
                                "input normalised as in training (cards without this note scored log-input models "
                                "on raw reflectance: their validation figures are meaningless)",
                      **validation_report(model, held, mean, std, config, transform, xfloor)}
        log.info("validation on %d held-out sample(s): IoU %s", len(held),
                 ", ".join(f"{k} {v['iou']}" for k, v in validation["classes"].items()))
    parent = None
    if init is not None:
        parent = {"name": init[1].name, "version": init[1].version, "weights_sha256": init[1].weights_sha256}
    card = ModelCard(
        name="minewatch-unet", version=config.version, bands=tuple(bands), mean=tuple(mean_t), std=tuple(std_t),
        classes=dict(CLASSES), architecture=model.config.to_dict(),
        extra={"parameters": count_parameters(model),
               "training": {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
                            "seconds": round(seconds, 1), "final_loss": round(float(np.mean(losses[-20:])), 4),
                            "n_samples": len(samples), "n_negatives": len(negatives)},
               "validation": validation, **({"parent": parent} if parent else {}),
               **(extra_card or {})},
        transform=transform, floor=floor,
    )
    return TrainResult(model, card, losses, seconds)
