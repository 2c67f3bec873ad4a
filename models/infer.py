"""Load the U-Net with its model card and run tiled, overlap-blended inference on any raster size.

Memory is bounded by ``batch_size × tile²`` for the network plus one float32 ``(classes, y, x)``
accumulator for the output. On CPU the result is deterministic (fixed tiling and summation
order; no random ops).
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from geo.config import VIEWS  # identity, + flipped columns, + flipped rows and both
from geo.errors import WeightsError
from models.nodata import fill_nearest
from models.tiling import _ramp, axis_tiles, shuffle, unshuffle  # noqa: F401 (re-exported)
from models.unet import UNet, UNetConfig, exact_fp32, fuse_batchnorm

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "unet_v1.pt"
CARD_SCHEMA = "minewatch-model-card/1"
EXPECTED_CLASSES = {0: "background", 1: "cleared_land", 2: "leaching_pond"}  #: the classes every card must list


@dataclass(frozen=True)
class ModelCard:
    """Metadata that travels with a weights file (``<weights>.json``).

    Attributes:
        name: model name.
        version: model version string.
        bands: input band ids, in channel order.
        mean: per-band mean of the normalisation ``(x − mean) / std`` (reflectance units).
        std: per-band standard deviation of the normalisation.
        classes: class value → name.
        architecture: :class:`UNetConfig` as a dict.
        weights_sha256: SHA-256 of the weights file (checked on load).
        extra: anything else recorded (training data, metrics, ...).
        transform: ``"linear"`` (normalise reflectance) or ``"log"`` (normalise ``ln(max(x, floor))``, so that
            a brightness gain becomes an offset shared by all bands; see :func:`input_transform`).
        floor: per-band smallest reflectance before the log (empty: :data:`LOG_FLOOR` for every band; cards
            written before December 2026 have none). See :func:`input_transform`.
    """

    name: str
    version: str
    bands: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: dict[int, str]
    architecture: dict
    weights_sha256: str = ""
    extra: dict | None = None
    transform: str = "linear"
    floor: tuple[float, ...] = ()

    def floors(self) -> np.ndarray:
        """The per-band log floor as a float32 array (one value per band)."""
        return np.asarray(self.floor or (LOG_FLOOR,) * len(self.bands), np.float32)

    def to_dict(self) -> dict:
        return {
            "schema": CARD_SCHEMA, "name": self.name, "version": self.version, "bands": list(self.bands),
            "normalization": {"input": "L2A surface reflectance 0-1 ((DN + offset) / 10000)",
                              "formula": ("(ln(max(x, floor)) - mean) / std" if self.transform == "log"
                                          else "(x - mean) / std") + "; NaN -> 0 after normalising",
                              "transform": self.transform, "mean": list(self.mean), "std": list(self.std),
                              **({"floor": [float(v) for v in self.floors()]} if self.transform == "log" else {})},
            "classes": {str(k): v for k, v in self.classes.items()},
            "architecture": self.architecture, "weights_sha256": self.weights_sha256, **(self.extra or {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ModelCard":
        try:
            norm = d["normalization"]
            core = {"schema", "name", "version", "bands", "normalization", "classes", "architecture", "weights_sha256"}
            return cls(
                str(d["name"]), str(d["version"]), tuple(d["bands"]), tuple(float(v) for v in norm["mean"]),
                tuple(float(v) for v in norm["std"]), {int(k): str(v) for k, v in d["classes"].items()},
                dict(d["architecture"]), str(d.get("weights_sha256", "")),
                {k: v for k, v in d.items() if k not in core}, _transform(norm.get("transform", "linear")),
                _floor(norm.get("floor", ()), len(d["bands"])),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # AttributeError: a list for a dict
            raise WeightsError(f"model card is incomplete or malformed ({exc!r}); regenerate it with scripts/train_weights.py") from None

    def check(self, where: Path | str = "") -> None:
        """Refuse (WeightsError) a non-finite mean, a std not > 0, classes other than :data:`EXPECTED_CLASSES`."""
        card, fix = f"model card {where}".rstrip(), "regenerate it with scripts/train_weights.py"
        if not np.isfinite(self.mean).all():
            raise WeightsError(f"{card} normalization mean {list(self.mean)} is not finite in every band; {fix}")
        if not (np.isfinite(self.std) & (np.asarray(self.std) > 0)).all():
            raise WeightsError(f"{card} normalization std {list(self.std)} must be a finite number > 0 in every band "
                               f"(the input is divided by it); {fix}")
        if self.classes != EXPECTED_CLASSES:
            raise WeightsError(f"{card} classes are { {str(k): v for k, v in self.classes.items()} }, but minewatch needs "
                               f"exactly {json.dumps(EXPECTED_CLASSES)}; use weights made by minewatch train")


TRANSFORMS = ("linear", "log")
#: Smallest reflectance before the log (dark water and deep shadow are ≈ 0.002–0.01).
LOG_FLOOR = 1e-3


def _transform(name: str) -> str:
    if name not in TRANSFORMS:
        raise WeightsError(f"model card normalisation transform {name!r} is unknown; use one of {', '.join(TRANSFORMS)}")
    return name


def _floor(v, n_bands: int) -> tuple[float, ...]:
    floor = tuple(float(f) for f in v)
    if floor and (len(floor) != n_bands or not all(0 < f < 1 for f in floor)):
        raise ValueError(f"normalization floor must give one reflectance in (0, 1) per band, got {list(v)}")
    return floor


def input_transform(x: np.ndarray, transform: str, floor=None) -> np.ndarray:
    """The model-space input before ``(x - mean) / std``: reflectance (``"linear"``) or its log (``"log"``).

    ``floor``: per-band smallest reflectance before the log (bands on axis -3; ``None``: :data:`LOG_FLOOR`).
    The shipped weights use 0.001 for every band. Flooring the visible bands at 0.01 (below that, L2A blue is mostly
    atmospheric-correction error; over-corrected haze reads ≈ 0.001) was measured and not adopted: see the model card.
    """
    if transform == "log":
        f = LOG_FLOOR if floor is None else np.asarray(floor, np.float32).reshape(-1, 1, 1)
        with np.errstate(invalid="ignore"):
            return np.log(np.maximum(x, f)).astype(np.float32)
    return x


def card_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cuda"`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise WeightsError("device 'cuda' was requested but no CUDA GPU is available; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise WeightsError(f"unknown device '{device}'; use auto, cpu or cuda")
    return torch.device(device)


def save_model(model: UNet, card: ModelCard, path: Path) -> ModelCard:
    """Write ``path`` (state dict) and ``path.json`` (card with the weights' SHA-256). Returns the card."""
    from geo.fsutil import atomic_path, write_text

    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:  # an interrupted save never leaves a truncated weights file
        torch.save(state, tmp)
        digest = sha256(tmp)
    card = ModelCard(card.name, card.version, card.bands, card.mean, card.std, card.classes,
                     model.config.to_dict(), digest, card.extra, card.transform, card.floor)
    write_text(card_path(path), json.dumps(card.to_dict(), indent=2) + "\n")
    return card


def load_card(weights: Path | str | None = None) -> ModelCard:
    """Read the card next to ``weights`` (default: the shipped weights)."""
    p = card_path(Path(weights) if weights else DEFAULT_WEIGHTS)
    if not p.exists():
        raise WeightsError(f"model card {p} not found; every weights file needs its .json card (scripts/train_weights.py writes both)")
    try:
        return ModelCard.from_dict(json.loads(p.read_text()))
    except json.JSONDecodeError as exc:
        raise WeightsError(f"model card {p} is not valid JSON ({exc}); regenerate it with scripts/train_weights.py") from None


def load_model(weights: Path | str | None = None, *, device: str = "auto", fuse: bool = True) -> tuple[UNet, ModelCard]:
    """Load weights safely (``torch.load(weights_only=True)``) and check them against the card.

    ``fuse`` folds BatchNorm into the convolutions for faster inference; pass ``False`` to fine-tune.

    Raises:
        WeightsError: file or card missing, checksum mismatch, unsafe/corrupt file, or weights that do
            not fit the architecture or the card's band list.
    """
    path = Path(weights) if weights else DEFAULT_WEIGHTS
    if not path.exists():
        raise WeightsError(f"weights file {path} not found; reinstall minewatch or run scripts/train_weights.py")
    card = load_card(path)
    if card.weights_sha256 and sha256(path) != card.weights_sha256:
        raise WeightsError(f"{path} does not match the checksum in its card; the file is corrupt or from another model")
    card.check(card_path(path))
    try:
        cfg = UNetConfig.from_dict(card.architecture)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise WeightsError(f"model card {card_path(path)} architecture is malformed ({exc}); regenerate it with "
                           "scripts/train_weights.py") from None
    if cfg.n_classes != len(card.classes):
        raise WeightsError(f"model card {card_path(path)} lists {len(card.classes)} classes but its architecture has "
                           f"n_classes {cfg.n_classes}; the card is inconsistent: regenerate it")
    if cfg.in_channels != len(card.bands) or len(card.mean) != len(card.bands) or len(card.std) != len(card.bands):
        raise WeightsError(f"model card lists {len(card.bands)} bands but the network takes {cfg.in_channels} channels "
                           f"and normalises {len(card.mean)}; the card is inconsistent")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError,
            IndexError, KeyError, ValueError) as exc:  # garbage bytes reach the unpickler's internals
        raise WeightsError(f"cannot load {path} safely ({type(exc).__name__}: {_torch_reason(exc)}); "
                           "the file is corrupt or not a plain state dict") from None
    model = UNet(cfg)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise WeightsError(f"weights in {path} do not fit the architecture in the card: {str(exc)[:300]}") from None
    model.eval()
    if fuse:
        fuse_batchnorm(model)
    return model.to(resolve_device(device)), card


def describe_weights(weights: Path | str | None = None, *, device: str = "auto") -> dict:
    """Check a weights file as :func:`load_model` does (file, card, checksum, safe load, architecture) and the
    device, without keeping the model; return what a run records of it.

    Returns:
        ``{"path", "sha256", "name", "version", "parent"}`` (``parent`` is the card's record of the weights a
        fine-tuned model started from, or ``None``).

    Raises:
        WeightsError: as :func:`load_model`; also ``device="cuda"`` without a GPU.
    """
    path = Path(weights) if weights else DEFAULT_WEIGHTS
    resolve_device(device)
    _, card = load_model(path, device="cpu", fuse=False)
    return {"path": str(path), "sha256": sha256(path), "name": card.name, "version": card.version,
            "parent": (card.extra or {}).get("parent")}


#: Sentences of torch's load errors that advise turning the safe loader off: never passed on to users.
_UNSAFE_ADVICE = ("weights_only", "re-running", "trusted source", "arbitrary code", "add_safe_globals",
                  "safe_globals", "check the recommended steps", "please file an issue", "can still be loaded",
                  "two options", "trust the source", "pytorch 2.6")


def _torch_reason(exc: BaseException) -> str:
    """The cause in a torch load error, without torch's advice to re-run with ``weights_only=False``."""
    import re

    parts = re.split(r"(?<=[.:])\s+|\n+", str(exc))
    keep = [p.strip() for p in parts if p.strip() and not any(a in p.lower() for a in _UNSAFE_ADVICE)]
    return " ".join(" ".join(keep).split())[:200] or "not a plain tensor file"


def check_bands(bands, card: ModelCard, n_channels: int, *, reorder: bool) -> list[int]:
    """Channel indices that put the input into the card's band order.

    Raises:
        WeightsError: channel count and band names disagree, a band is missing, or the order
            differs and ``reorder`` is False.
    """
    bands = tuple(bands)
    if len(bands) != n_channels:
        raise WeightsError(f"input has {n_channels} channels but {len(bands)} band names {bands}")
    missing = [b for b in card.bands if b not in bands]
    if missing:
        raise WeightsError(f"model {card.name} {card.version} needs bands {', '.join(card.bands)}; "
                           f"the input lacks {', '.join(missing)}")
    if bands[: len(card.bands)] != card.bands and not reorder:
        raise WeightsError(f"input band order {bands} differs from the model card's {card.bands}; "
                           "reorder the input or pass reorder=True")
    return [bands.index(b) for b in card.bands]


def predict_proba(
    model: UNet,
    card: ModelCard,
    data: np.ndarray,
    bands,
    *,
    tile: int = 384,
    overlap: int = 32,
    batch_size: int = 4,
    device: str = "auto",
    reorder: bool = False,
    views: int = 1,
) -> np.ndarray:
    """Class probabilities for a ``(band, y, x)`` reflectance raster of any size, averaged over ``views`` flipped
    copies of it (1: as is; 2: + columns flipped; 4: + rows flipped, + both), each flipped back.

    Averaging flipped views is test-time augmentation: the space-to-depth stem sees each pixel at another place in
    its 4x4 block and the scene's light from another side. On the blind generators' tuning seeds (leave-one-out
    models) 4 views raised mean fused footprint IoU from 0.496 to 0.531, on held-out gen_d / gen_e only from 0.583
    to 0.587 (model card, "Test-time views"); it costs 4x the model's time.
    """
    if views not in VIEWS:
        raise ValueError(f"views must be one of {VIEWS}, not {views!r}")
    data = fill_nearest(data, check_bands(bands, card, data.shape[0], reorder=reorder))
    out = None
    for k in range(views):
        rev = slice(None, None, -1)
        flip = (slice(None), rev if k & 2 else slice(None), rev if k & 1 else slice(None))
        p = _predict_proba(model, card, np.ascontiguousarray(data[flip]), bands, tile=tile, overlap=overlap,
                           batch_size=batch_size, device=device, reorder=reorder)[flip]
        out = p if out is None else out + p
    return np.ascontiguousarray(out / views if views > 1 else out, dtype=np.float32)


def _predict_proba(
    model: UNet,
    card: ModelCard,
    data: np.ndarray,
    bands,
    *,
    tile: int = 384,
    overlap: int = 32,
    batch_size: int = 4,
    device: str = "auto",
    reorder: bool = False,
) -> np.ndarray:
    """Class probabilities for a ``(band, y, x)`` reflectance raster of any size (one view).

    The raster is normalised and folded space-to-depth once (:func:`unshuffle`), then cut into tiles of at
    most ``tile`` px that overlap by at least ``overlap`` px (:func:`axis_tiles` picks the fewest tiles
    and trims them to the raster, so little is computed twice or on padding). Each batch runs through
    :class:`models.unet.FoldedUNet` — the model's exact maths without full-resolution passes — and the
    tiles' logits are blended with linear ramps, so seams vanish; a softmax over the blended logits
    gives the probabilities. Rasters smaller than a tile are edge-padded.

    Returns:
        float32 ``(n_classes, y, x)``, summing to 1 over classes.
    """
    from models.unet import FoldedUNet

    idx = check_bands(bands, card, data.shape[0], reorder=reorder)
    dev = resolve_device(device)
    h, w = data.shape[1], data.shape[2]
    cfg = model.config
    f, mult = cfg.unshuffle, 2 ** cfg.depth  # tiles are cut on the 1/f grid, in multiples of ``mult``
    tile_lr = max(mult, int(np.ceil(tile / f / mult) * mult))
    overlap_lr = int(min(max(round(overlap / f), 0), tile_lr // 2))
    th, rows = axis_tiles(int(np.ceil(h / f)), tile_lr, overlap_lr, mult)
    tw, cols = axis_tiles(int(np.ceil(w / f)), tile_lr, overlap_lr, mult)
    hl, wl = rows[-1] + th, cols[-1] + tw
    with exact_fp32(dev):  # a GPU gives the CPU's classes: no TF32, in folding the weights or in inference
        model = model.to(dev, memory_format=torch.channels_last).eval()
        folded = FoldedUNet(model).to(dev, memory_format=torch.channels_last).eval()
    # pre- and post-processing in torch: multi-threaded on CPU, on the GPU when there is one
    with torch.inference_mode(), exact_fp32(dev):
        x = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).to(dev)
        if idx != list(range(data.shape[0])):
            x = x[idx]
        if (hl * f, wl * f) != (h, w):
            x = F.pad(x[None], (0, wl * f - w, 0, hl * f - h), mode="replicate")[0]
        xu = unshuffle(x, f)  # a new tensor (normalised in place below), unless nothing moved
        if xu.data_ptr() == x.data_ptr():
            xu = xu.clone()
        del x
        if card.transform == "log":  # per-band floor, repeated like the channels; NaN stays NaN (-> 0 below)
            xu.clamp_(min=torch.from_numpy(card.floors()).to(dev).repeat(f * f)).log_()
        mean = torch.tensor(card.mean, dtype=torch.float32, device=dev).repeat(f * f)
        inv_std = (1.0 / torch.tensor(card.std, dtype=torch.float32, device=dev)).repeat(f * f)
        torch.nan_to_num_(xu.sub_(mean).mul_(inv_std), nan=0.0, posinf=0.0, neginf=0.0)
        win = torch.from_numpy(np.outer(_ramp(th, overlap_lr), _ramp(tw, overlap_lr)))[..., None].to(dev)
        acc = torch.zeros((hl, wl, f * f * cfg.n_classes), device=dev)
        wsum = torch.zeros((hl, wl, 1), device=dev)
        coords = [(r, c) for r in rows for c in cols]
        for i in range(0, len(coords), max(1, batch_size)):
            chunk = coords[i:i + batch_size]
            batch = torch.stack([xu[r:r + th, c:c + tw] for r, c in chunk])
            logits = folded(batch.permute(0, 3, 1, 2)).float()  # channels-last view in, (n, th, tw, P·K) out
            for (r, c), lg in zip(chunk, logits):
                acc[r:r + th, c:c + tw].addcmul_(lg, win)
                wsum[r:r + th, c:c + tw] += win
        del xu
        acc /= wsum
        prob = shuffle(acc, f)  # (class, y, x), then a softmax over classes, in place
        del acc
        prob -= prob.max(dim=0, keepdim=True).values
        prob.exp_()
        prob /= prob.sum(dim=0, keepdim=True)
        prob = prob[:, :h, :w].cpu().numpy()
    log.debug("inference: %d tiles of %dx%d px on %s", len(coords), th * f, tw * f, dev)
    return np.ascontiguousarray(prob)
