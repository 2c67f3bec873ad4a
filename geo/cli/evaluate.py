"""``minewatch evaluate``: IoU, F1, precision, recall per class and the confusion matrix (a labelled GeoTIFF or
simulator seeds), or, with ``--stac``, recall at pool points, false positives at negatives and agreement with a
reference prediction layer over scenes found through any STAC API (:mod:`models.point_eval`)."""

from __future__ import annotations

from pathlib import Path

import click

from geo.cli.options import VectorSource
from geo.errors import UsageError


@click.command("evaluate")
@click.option("--image", type=click.Path(exists=True, dir_okay=False), default=None,
              help="GeoTIFF (band descriptions B02...B12, L2A DN) to evaluate on.")
@click.option("--labels", type=VectorSource(), default=None,
              help="Label polygons/points (class property) over --image; one layer of a multi-layer file as "
                   "'labels.gpkg|layername=NAME'.")
@click.option("--offset", type=float, default=None, help="DN offset of --image (default: its 'offset' tag, else 0).")
@click.option("--point-radius-m", type=float, default=20.0, show_default=True,
              help="Radius turning point labels into discs; in point mode, a point counts as detected when a detected "
                   "pixel lies within it.")
@click.option("--sim-seeds", default=None, metavar="START:STOP",
              help="Evaluate on simulator scenes with these seeds (keep them disjoint from training seeds).")
@click.option("--sim-size", type=click.IntRange(32), default=256, show_default=True, help="Simulator scene size (px).")
@click.option("--method", type=click.Choice(["rules", "model", "fused"]), default="fused", show_default=True)
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Weights file (default: shipped).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Also write the report as JSON.")
@click.option("--stac", default=None, metavar="CATALOGUE",
              help="Point mode: earth-search, planetary-computer, a STAC API URL or a local items.json to search.")
@click.option("--datetime", "datetime_", default=None, metavar="START/END",
              help="Point mode: the period to composite, e.g. 2023-11-01/2024-04-30.")
@click.option("--pools", multiple=True, type=click.Path(), help="Point mode: leaching-pool points (CSV x/y or lon/lat, "
              "or GeoJSON/GPKG; one layer as 'file.gpkg|layername=NAME'); repeatable.")
@click.option("--negatives", multiple=True, type=click.Path(), help="Point mode: points without mining; repeatable.")
@click.option("--reference", type=click.Path(), default=None,
              help="Point mode: reference prediction polygons (e.g. Earth Genome Sentinel-2 detections).")
@click.option("--bbox", default=None, metavar="W,S,E,N", help="Point mode: area to search (degrees); default: the "
              "points' extent plus 300 m.")
@click.option("--aoi", "aoi_path", type=click.Path(), default=None, help="Point mode: area to search (AOI GeoJSON).")
@click.option("--collection", default=None, help="Point mode: STAC collection (default sentinel-2-l2a).")
@click.option("--max-cloud", type=click.FloatRange(0, 100), default=80.0, show_default=True,
              help="Point mode: skip scenes with more cloud cover (%).")
@click.option("--limit", type=click.IntRange(1), default=None, help="Point mode: keep the N least cloudy scenes.")
@click.option("--asset-host", "asset_hosts", multiple=True, metavar="HOST[:PORT]",
              help="Point mode: another host you trust to serve the catalogue's assets (as [search] asset_hosts); "
                   "repeatable.")
@click.option("--xy-cols", default=None, metavar="X,Y", help="Point mode: coordinate columns of CSV points.")
@click.option("--points-crs", default=None, help="Point mode: CRS of CSV x/y (default EPSG:4326).")
@click.option("--cache-dir", type=click.Path(file_okay=False), default="minewatch-eval-cache", show_default=True,
              help="Point mode: composite cache (a rerun fetches nothing).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the table as CSV: per class (IoU, F1, precision, recall, support) with --image or "
                   "--sim-seeds, per point set in point mode.")
def command(image, labels, offset, point_radius_m, sim_seeds, sim_size, method, weights, device, json_path, stac,
            datetime_, pools, negatives, reference, bbox, aoi_path, collection, max_cloud, limit, asset_hosts, xy_cols,
            points_crs, cache_dir, csv_path):
    """Score a detector against labels: a labelled GeoTIFF and/or simulator seeds, or point labels over STAC scenes.

    Point mode (--stac): the period is searched over the points' area, composited exactly like a `minewatch run`
    season and classified; the table gives recall at --pools points (pond, and any footprint, within
    --point-radius-m), the false-positive rate at --negatives points, and agreement with --reference polygons.
    """
    import math

    from geo.fsutil import check_distinct, check_writable

    if labels and not (math.isfinite(point_radius_m) and point_radius_m > 0):  # a disc of radius 0 burns nothing
        raise UsageError(f"--point-radius-m must be > 0 with --labels, got {point_radius_m:g}; give the radius in "
                         "metres that turns a point label into a disc (default 20)")
    if not (math.isfinite(point_radius_m) and point_radius_m >= 0):  # point mode: 0 = the pixel under the point
        raise UsageError(f"--point-radius-m must be >= 0, got {point_radius_m:g}; give a distance in metres")
    from models.labels import MAX_POINT_RADIUS_M

    for flag, files in (("--pools", pools), ("--negatives", negatives)):
        if len({Path(p).resolve() for p in files}) < len(files):
            raise UsageError(f"a file is given twice as {flag}; its points would count twice: give it once")
    both = {Path(p).resolve() for p in pools} & {Path(p).resolve() for p in negatives}
    if both:  # every point would count as found and as a false positive at once
        raise UsageError(f"{sorted(both)[0]} is given as --pools and as --negatives; a point is a pool or a "
                         "negative, not both")

    if point_radius_m > MAX_POINT_RADIUS_M:
        raise UsageError(f"--point-radius-m {point_radius_m:g} is over {MAX_POINT_RADIUS_M:g} m: a point label stands "
                         "for one pool, not a hillside; give the pool's radius in metres (default 20)")
    check_distinct({"--json": json_path, "--csv": csv_path}, _inputs(image, labels, pools, negatives, reference, stac,
                                                                     weights, aoi_path))
    for flag, path in (("--json", json_path), ("--csv", csv_path)):
        if path:
            check_writable(path, flag)  # before minutes of searching, reading and scoring
    if stac or pools or negatives or reference:
        if image or labels or sim_seeds:
            raise UsageError("--stac point labels and --image/--labels/--sim-seeds are separate modes; run them apart")
        return _points(stac, datetime_, pools, negatives, reference, bbox, aoi_path, collection, max_cloud, limit,
                       xy_cols, points_crs, cache_dir, point_radius_m, method, weights, device, csv_path, json_path,
                       asset_hosts)
    from models.evaluate import evaluate_samples, format_report

    if not ((image and labels) or sim_seeds):
        raise UsageError("give --image with --labels, --sim-seeds START:STOP, or --stac with --datetime and --pools/"
                         "--negatives")
    if bool(image) != bool(labels):
        raise UsageError("--image and --labels go together")
    if sim_seeds:  # parsed before the image is read
        try:
            start, stop = (int(v) for v in sim_seeds.split(":"))
        except ValueError:
            raise UsageError(f"--sim-seeds must look like 1000:1010, got '{sim_seeds}'") from None
        if not 0 <= start < stop:
            raise UsageError(f"--sim-seeds START:STOP needs 0 <= START < STOP (scenes START … STOP-1), got '{sim_seeds}'")
    samples = []
    if image:
        import numpy as np

        from geo.sources.geotiff import read_geotiff
        from models.labels import IGNORE, burn_labels, check_image_values

        scene = read_geotiff(Path(image), offset=offset)
        check_image_values(scene.data, Path(image), "--image")  # as train: no valid pixel, an 8-bit export
        # the same checks as training: unreadable/empty labels, bad classes, labels outside the image
        raw = burn_labels(Path(labels), scene.grid, where="--labels", area_desc=f"the image {image}",
                          fix="that they cover the image", point_radius_m=point_radius_m, use="scoring")
        samples.append((scene, np.where(raw == IGNORE, 0, raw).astype(np.uint8)))  # unlabelled = background
    if sim_seeds:
        from models.data import simulator_scene

        samples += [simulator_scene(s, sim_size) for s in range(start, stop)]
    rep = evaluate_samples(samples, method=method, weights=weights, device=device)
    click.echo(format_report(rep))
    if csv_path:
        _write_class_csv(rep, Path(csv_path))
    if json_path:
        write_strict_json(Path(json_path), rep)


def _inputs(image, labels, pools, negatives, reference, stac, weights, aoi_path) -> dict:
    """The command's input files by option, for :func:`geo.fsutil.check_distinct`."""
    from models.vector_source import split_layer

    def file(p):  # a vector source's file, without its |layername= part
        return None if p is None else split_layer(p)[0]

    inputs = {"--image": image, "--labels": file(labels), "--reference": file(reference), "--aoi": aoi_path,
              "--weights": weights,
              # the card beside the weights (models.infer.card_path), without importing torch for it
              "--weights' card": _card(weights),
              "--stac": stac if stac and "://" not in stac and Path(stac).is_file() else None}
    for flag, paths in (("--pools", pools), ("--negatives", negatives)):
        for i, p in enumerate(paths or ()):
            inputs[flag if i == 0 else f"{flag} #{i + 1}"] = file(p)
    return inputs


def _card(weights) -> Path | None:
    try:
        return Path(weights).with_suffix(".json") if weights else None
    except ValueError:  # a path without a name: --weights says what is wrong with it
        return None


def _strict(obj):
    """``obj`` with every non-finite float (an undefined metric) as ``None``, so JSON gets ``null``, not ``NaN``."""
    import math

    import numpy as np

    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    return obj


def write_strict_json(path: Path, obj) -> None:
    """Write ``obj`` as strict JSON (undefined metrics as ``null``), atomically."""
    import json

    from geo.fsutil import write_text

    write_text(path, json.dumps(_strict(obj), indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n")


def _write_class_csv(rep: dict, path: Path) -> None:
    """The per-class table of :func:`models.evaluate.report` as CSV (an undefined metric is an empty cell)."""
    import csv
    import io

    from geo.fsutil import write_text

    cols = ("iou", "f1", "precision", "recall", "support")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("class", *cols))
    for name, c in _strict(rep["classes"]).items():
        w.writerow((name, *("" if c[k] is None else c[k] for k in cols)))
    write_text(path, buf.getvalue())


def _pair(text: str | None, what: str, n: int, conv):
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) != n:
            raise ValueError
        return tuple(conv(p) for p in parts)
    except ValueError:
        raise UsageError(f"{what} must be {n} comma-separated values, got '{text}'") from None


def _points(stac, datetime_, pools, negatives, reference, bbox, aoi_path, collection, max_cloud, limit, xy_cols,
            points_crs, cache_dir, radius, method, weights, device, csv_path, json_path, asset_hosts=()) -> None:
    from models.point_eval import PointEvalRequest, evaluate_points, format_table, write_csv

    if not stac or not datetime_:
        raise UsageError("point labels are scored over a STAC search: give --stac (e.g. earth-search) and --datetime "
                         "START/END")
    if not pools and not negatives:
        raise UsageError("give point labels to score: --pools FILE (leaching-pool points) and/or --negatives FILE")
    from geo.fsutil import check_writable

    check_writable(cache_dir, "--cache-dir", folder=True)  # before any search
    stac = stac if "://" in stac or not Path(stac).suffix else str(Path(stac).absolute())
    req = PointEvalRequest(
        stac=stac, datetime=datetime_, pools=tuple(map(Path, pools)), negatives=tuple(map(Path, negatives)),
        reference=Path(reference) if reference else None,
        bbox=_pair(bbox, "--bbox (W,S,E,N in degrees)", 4, float), aoi=Path(aoi_path) if aoi_path else None,
        collection=collection, max_cloud=max_cloud, limit=limit, asset_hosts=tuple(asset_hosts), radius_m=radius,
        method=method, weights=weights, device=device, cache_dir=Path(cache_dir), xy_cols=_pair(xy_cols, "--xy-cols", 2, str), points_crs=points_crs)
    res = evaluate_points(req)
    click.echo(format_table(res))
    if csv_path:
        write_csv(res, Path(csv_path))
    if json_path:
        write_strict_json(Path(json_path), res)
