"""A training job described by a TOML file: labelled GeoTIFFs (``[[images]]``), labelled STAC searches
(``[[scenes]]``), simulator seeds and real negatives, hyper-parameters and the output weights path.

:func:`load_job` reads and checks the file (every bad input is one :class:`geo.errors.MinewatchError`),
:func:`job_data` turns it into samples, :func:`run_job` trains (:func:`models.train.train`) and saves the
weights with their model card. ``minewatch train --config`` and ``notebooks/retrain.ipynb`` use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from geo.errors import ConfigError
from models.train import TrainConfig, TrainResult, train


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
        scenes: labelled STAC searches, composited like a ``minewatch run`` season
            (:class:`models.scene_config.StacScene`).
        cache_dir: where the scenes' composites are cached (default: ``scene_cache`` beside the output).
    """

    images: tuple[LabelledImage, ...]
    simulator_seeds: tuple[int, ...]
    simulator_size: int
    real_negatives: bool
    init: str | None
    output: Path
    train: TrainConfig
    scenes: tuple = ()
    cache_dir: Path | None = None
    auto_validation: bool = False


#: ``val_fraction`` of a job whose ``[train]`` does not set it, once it has at least :data:`AUTO_VAL_MIN_SAMPLES`.
AUTO_VAL_FRACTION = 0.2
AUTO_VAL_MIN_SAMPLES = 5


def load_job(path: Path) -> TrainJob:
    """Read a training TOML file. Relative paths are relative to the file. Example::

        output = "my_model.pt"
        init = "shipped"                 # or "none", or a path to weights
        cache_dir = "scene_cache"        # optional; composites of [[scenes]] (default: beside output)
        [[images]]
        path = "scene.tif"
        labels = "labels.geojson"        # polygons, or points buffered by point_radius_m
        offset = -1000                   # optional; else the GeoTIFF's `offset` tag, else 0
        point_radius_m = 20
        unlabelled = "background"        # or "ignore"
        [[scenes]]                       # a STAC search composited like a `minewatch run` season
        stac = "earth-search"            # or "planetary-computer", a STAC API URL, a local items.json
        collection = "sentinel-2-l2a"    # optional; the provider's by default
        datetime = "2023-11-01/2024-04-30"
        bbox = [97.80, 25.60, 97.84, 25.64]   # west, south, east, north (degrees); or aoi = "area.geojson"
        max_cloud = 40                   # optional, percent (default 80); limit = N keeps the N least cloudy
        labels = "labels.geojson"        # as for [[images]]; also point_radius_m, unlabelled
        [simulator]
        seeds = [0, 8]                   # range(0, 8)
        size = 128
        [negatives]
        real = true
        [train]
        steps = 100
        crop = 64
        val_fraction = 0.2               # samples held out and scored (IoU per class) in the card's `validation`
                                         # (default: 0.2 when the job has >= 5 samples, else none)
        log_every = 50                   # a progress log line every N steps

    A ``[[scenes]]`` entry is searched, loaded on the area's 10 m UTM grid, cloud-masked (SCL) and
    median-composited by the same functions as ``minewatch run``; the composite is cached under
    ``cache_dir`` so a rerun fetches nothing (see :mod:`models.stac_scenes`).

    Raises:
        ConfigError: unreadable TOML, unknown keys or wrong types; a missing ``[[images]]`` path or labels
            file; for ``[[scenes]]`` also a missing labels file, bbox and aoi both or neither, a bad bbox or
            max_cloud.
        PeriodError: a malformed ``[[scenes]]`` datetime.
        StacError: a ``[[scenes]]`` stac value that is no provider, URL or path.
    """
    import tomllib

    from models.labels import IMAGE_FIX, LABELS_FIX, MAX_POINT_RADIUS_M, existing_file
    from models.scene_config import _number, parse_scene

    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read training config {path}: {exc}") from None
    base = path.parent

    def rel(p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else base / q

    allowed = {"output", "init", "images", "scenes", "cache_dir", "simulator", "negatives", "train"}
    unknown = set(doc) - allowed
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    images = []
    raw_images = doc.get("images", [])
    if not isinstance(raw_images, list):
        raise ConfigError(f"{path}: images must be an array of tables ([[images]])")
    image_keys = ("path", "labels", "offset", "point_radius_m", "unlabelled")
    for i, im in enumerate(raw_images):
        where = f"{path}: images[{i}]"
        if not isinstance(im, dict):
            raise ConfigError(f"{where} must be a table ([[images]]), got {im!r}")
        bad = set(im) - set(image_keys)
        if bad:
            raise ConfigError(f"{where}: unknown key(s) {sorted(bad)}; allowed: {list(image_keys)}")
        missing = [k for k in ("path", "labels") if k not in im]
        if missing:
            raise ConfigError(f"{where} needs path and labels (missing: {', '.join(missing)})")
        for k in ("path", "labels"):
            if not isinstance(im[k], str) or not im[k].strip():
                raise ConfigError(f"{where}.{k} must be a non-empty string, got {im[k]!r}")
        offset = None if im.get("offset") is None else _number(im["offset"], f"{where}.offset")
        radius = _number(im.get("point_radius_m", 20.0), f"{where}.point_radius_m")
        if radius <= 0:
            raise ConfigError(f"{where}.point_radius_m must be > 0, got {radius:g}")
        if radius > MAX_POINT_RADIUS_M:
            raise ConfigError(f"{where}.point_radius_m {radius:g} m is over {MAX_POINT_RADIUS_M:g} m: a point label "
                              "stands for one pool, not a hillside; give the pool's radius (default 20)")
        unl = {"background": 0, "ignore": 255}.get(str(im.get("unlabelled", "background")))
        if unl is None:
            raise ConfigError(f"{where}.unlabelled must be 'background' (pixels outside every label are "
                              f"background) or 'ignore' (left out of the loss), got {im.get('unlabelled')!r}")
        image = existing_file(rel(im["path"]), f"{where}.path", IMAGE_FIX)  # both files before any training
        labels = existing_file(rel(im["labels"]), f"{where}.labels", LABELS_FIX)
        images.append(LabelledImage(image, labels, offset, radius, unl))
    raw_scenes = doc.get("scenes", [])
    if not isinstance(raw_scenes, list):
        raise ConfigError(f"{path}: scenes must be an array of tables ([[scenes]])")
    scenes = tuple(parse_scene(sc, f"{path}: scenes[{i}]", rel) for i, sc in enumerate(raw_scenes))
    cache_dir = doc.get("cache_dir")
    if cache_dir is not None and (not isinstance(cache_dir, str) or not cache_dir.strip()):
        raise ConfigError(f"{path}: cache_dir must be a folder path, got {cache_dir!r}")
    for k in ("output", "init"):
        if k in doc and (not isinstance(doc[k], str) or not doc[k].strip()):
            raise ConfigError(f"{path}: {k} must be a path string, got {doc[k]!r}")
    output = rel(doc.get("output", "model.pt"))
    sim, neg, tr = (_table(doc, k, path) for k in ("simulator", "negatives", "train"))
    if set(sim) - {"seeds", "size"} or set(neg) - {"real"}:
        raise ConfigError(f"{path}: [simulator] takes seeds and size, [negatives] takes real; "
                          f"got {sorted(sim)} and {sorted(neg)}")
    seeds = sim.get("seeds", [])
    if seeds and (not isinstance(seeds, list) or len(seeds) != 2 or not all(_whole(s) for s in seeds)
                  or not 0 <= seeds[0] < seeds[1]):
        raise ConfigError(f"{path}: simulator.seeds must be [start, stop] with 0 <= start < stop, got {seeds!r}")
    size = sim.get("size", 256)
    if not _whole(size) or size < 64:
        raise ConfigError(f"{path}: simulator.size must be a whole number of pixels >= 64, got {size!r}")
    if not isinstance(neg.get("real", False), bool):
        raise ConfigError(f"{path}: negatives.real must be true or false, got {neg['real']!r}")
    cfg = _train_config(tr, f"{path}: [train]")
    init = doc.get("init", None)
    init = None if init in (None, "none", "") else (init if init == "shipped" else str(rel(init)))
    return TrainJob(tuple(images), tuple(range(*seeds)) if seeds else (), int(size),
                    bool(neg.get("real", False)), init, output, cfg, scenes,
                    rel(cache_dir) if cache_dir else output.parent / "scene_cache",
                    auto_validation="val_fraction" not in tr)


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _table(doc: dict, key: str, path: Path) -> dict:
    v = doc.get(key, {})
    if not isinstance(v, dict):
        raise ConfigError(f"{path}: {key} must be a table ([{key}]), got {v!r}")
    return dict(v)


#: ``[train]`` lists of a fixed length, of whole numbers, and those that may be empty.
_TRAIN_LENGTHS = {"brightness": 2}
_TRAIN_WHOLE = {"widths"}
_TRAIN_MAY_BE_EMPTY = {"mine_at", "log_floor"}


def _train_config(tr: dict, where: str) -> TrainConfig:
    """``TrainConfig`` from a ``[train]`` table, each value checked against the type of its default first, so a
    wrong type is one line naming the key rather than an error deep inside training."""
    defaults = TrainConfig()
    fields = set(TrainConfig.__dataclass_fields__)
    if set(tr) - fields:
        raise ConfigError(f"{where}: unknown key(s) {sorted(set(tr) - fields)}; allowed: {sorted(fields)}")
    for k, v in tr.items():
        d = getattr(defaults, k)
        if isinstance(d, tuple):
            whole = k in _TRAIN_WHOLE
            ok = (isinstance(v, list) and (v or k in _TRAIN_MAY_BE_EMPTY)
                  and all(_whole(e) if whole else _number_ok(e) for e in v) and len(v) == _TRAIN_LENGTHS.get(k, len(v)))
            if not ok:
                n = _TRAIN_LENGTHS.get(k)
                raise ConfigError(f"{where} {k} must be a list of {n or 'some'} {'whole ' if whole else ''}numbers, "
                                  f"got {v!r}")
            tr[k] = tuple(v)
        elif isinstance(d, bool) or isinstance(d, str):
            if type(v) is not type(d):
                kind = "true or false" if isinstance(d, bool) else "a string"
                raise ConfigError(f"{where} {k} must be {kind}, got {v!r}")
        elif _whole(d) and not _whole(v) or isinstance(d, float) and not _number_ok(v):
            raise ConfigError(f"{where} {k} must be {'a whole number' if _whole(d) else 'a number'}, got {v!r}")
    try:
        return TrainConfig(**tr)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _number_ok(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def job_data(job: TrainJob) -> tuple[list, list, list[dict]]:
    """Load the job's ``(samples, negatives, scene records)``; the records describe each ``[[scenes]]`` entry
    (catalogue, item ids, grid, labelled pixel counts) for the model card."""
    from models.data import real_negative_scenes, simulator_pair
    from models.labels import image_sample

    samples = []
    for i, im in enumerate(job.images):  # checked: CRS, DN, nodata, labels inside the image (models.labels)
        samples.append(image_sample(im.path, im.labels, where=f"images[{i}]", offset=im.offset,
                                    point_radius_m=im.point_radius_m, unlabelled=im.unlabelled))
    records: list[dict] = []
    if job.scenes:
        from models.stac_scenes import scene_samples

        cache = job.cache_dir if job.cache_dir is not None else job.output.parent / "scene_cache"
        for x, y, rec in scene_samples(tuple(job.scenes), cache):
            samples.append((x, y))
            records.append(rec)
    samples += [simulator_pair(s, job.simulator_size) for s in job.simulator_seeds]
    negatives = []
    if job.real_negatives:
        negatives = [(s.data, np.zeros(s.grid.shape, np.uint8)) for s in real_negative_scenes()]
    return samples, negatives, records


def job_samples(job: TrainJob) -> tuple[list, list]:
    """Load the job's ``(samples, negatives)`` lists."""
    samples, negatives, _ = job_data(job)
    return samples, negatives


def check_crop(config: TrainConfig, samples, negatives=()) -> None:
    """Refuse a ``crop`` larger than the smallest training image: its crops would be mostly padding, and a crop
    far too large (4096 px on 512 px images) fills the memory before the first step.

    Raises:
        ConfigError: naming the crop and the smallest image's size.
    """
    sizes = [x.shape[1:] for x, _ in list(samples) + list(negatives)]
    if not sizes:
        return
    h, w = min(sizes, key=min)
    if config.crop > min(h, w):
        mult = config.unshuffle * 2 ** (len(config.widths) - 1)
        fit = mult * (min(h, w) // mult)
        hint = f"set [train] crop to at most {fit}" if fit else f"give images of at least {mult} px a side"
        raise ConfigError(f"[train] crop {config.crop} px is larger than the smallest training image ({h} x {w} px); "
                          f"{hint} (a multiple of {mult}), or drop the small images")


def job_inputs(job: TrainJob) -> dict[str, Path]:
    """The job's input files by config key (images, labels, areas, a local catalogue, init weights and card)."""
    from models.infer import card_path
    from models.vector_source import split_layer

    inputs: dict[str, Path] = {}
    for i, im in enumerate(job.images):  # a labels file's path without its |layername= part
        inputs[f"images[{i}].path"], inputs[f"images[{i}].labels"] = im.path, split_layer(im.labels)[0]
    for i, sc in enumerate(job.scenes):
        inputs[f"scenes[{i}].labels"] = split_layer(sc.labels)[0]
        if sc.aoi is not None:
            inputs[f"scenes[{i}].aoi"] = sc.aoi
        if "://" not in str(sc.stac) and Path(str(sc.stac)).is_file():
            inputs[f"scenes[{i}].stac"] = Path(str(sc.stac))
    if job.init not in (None, "shipped"):
        inputs["init"], inputs["init's card"] = Path(job.init), card_path(Path(job.init))
    return inputs


def check_output(output: Path, *, overwrite_shipped: bool = False, inputs: dict | None = None) -> None:
    """Refuse to write over the shipped weights (or their card) unless ``overwrite_shipped``, over one of the
    job's ``inputs`` (:func:`job_inputs`), or on a ``.json`` path (the card, ``<output>.json``, would replace the
    weights).

    Raises:
        ConfigError: ``output`` is the shipped weights file, or ends in ``.json``.
        UsageError: ``output`` or its card is one of ``inputs``.
        OutputError: ``output`` cannot be written (checked before the data is built and the model trained).
    """
    from geo.fsutil import check_distinct, check_writable
    from models.infer import DEFAULT_WEIGHTS, card_path

    output = Path(output)
    if output.suffix.lower() == ".json":
        raise ConfigError(f"output {output} ends in .json, the suffix of the model card written next to the weights, "
                          f"so the card would overwrite them; give a weights path such as {output.with_suffix('.pt')}")
    check_distinct({"output": output, "output's card": card_path(output)}, inputs)
    if not overwrite_shipped and Path(output).resolve().with_suffix(".pt") == DEFAULT_WEIGHTS.resolve():
        raise ConfigError(f"output {output} is the shipped weights file; write the new model elsewhere "
                          "(e.g. output = \"my_model.pt\" or --out runs/weights/my_model.pt) and use it with "
                          "--weights, or pass --overwrite-shipped to replace the shipped model")
    check_writable(output, "output")


def run_job(job: TrainJob, progress: Callable[[int, float], None] | None = None, *,
            overwrite_shipped: bool = False, inputs: dict | None = None) -> TrainResult:
    """Load data, train and save the weights + card to ``job.output`` (never the shipped weights unless
    ``overwrite_shipped``), nor over one of its inputs (:func:`job_inputs`, plus ``inputs``, e.g. the config
    file, checked before any work). A fine-tune's card records its parent (name, version, SHA-256, path); every card
    records the job's settings and, with ``val_fraction``, the held-out scores."""
    import dataclasses

    from models.infer import DEFAULT_WEIGHTS, load_model, save_model

    check_output(job.output, overwrite_shipped=overwrite_shipped, inputs={**(inputs or {}), **job_inputs(job)})
    samples, negatives, scene_records = job_data(job)
    cfg = job.train
    check_crop(cfg, samples, negatives)  # before the model is built and trained
    if job.auto_validation and len(samples) >= AUTO_VAL_MIN_SAMPLES:
        cfg = dataclasses.replace(cfg, val_fraction=AUTO_VAL_FRACTION)
    init = None
    if job.init is not None:
        init = load_model(None if job.init == "shipped" else job.init, device="cpu", fuse=False)
    extra = {"training_data": {"images": [{"path": str(i.path), "labels": str(i.labels), "offset": i.offset,
                                           "point_radius_m": i.point_radius_m,
                                           "unlabelled": "ignore" if i.unlabelled == 255 else "background"}
                                          for i in job.images],
                               **({"scenes": scene_records} if job.scenes else {}),
                               "simulator_seeds": [min(job.simulator_seeds), max(job.simulator_seeds) + 1]
                               if job.simulator_seeds else [],
                               "simulator_size": job.simulator_size if job.simulator_seeds else None,
                               "real_negatives": len(negatives), "init": job.init,
                               "cache_dir": str(job.cache_dir) if job.cache_dir else None}}
    res = train(samples, cfg, negatives=negatives, init=init, extra_card=extra, progress=progress)
    if init is not None:
        res.card.extra["parent"]["path"] = str(DEFAULT_WEIGHTS if job.init == "shipped" else job.init)
    res.card = save_model(res.model, res.card, job.output)
    return res
