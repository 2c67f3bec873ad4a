"""``minewatch evaluate``: IoU, F1, precision, recall per class and the confusion matrix."""

from __future__ import annotations

import json
from pathlib import Path

import click

from geo.errors import UsageError


@click.command("evaluate")
@click.option("--image", type=click.Path(exists=True, dir_okay=False), default=None,
              help="GeoTIFF (band descriptions B02...B12, L2A DN) to evaluate on.")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Label polygons/points (class property) over --image.")
@click.option("--offset", type=float, default=None, help="DN offset of --image (default: its 'offset' tag, else 0).")
@click.option("--point-radius-m", type=click.FloatRange(0), default=20.0, show_default=True,
              help="Radius turning point labels into discs.")
@click.option("--sim-seeds", default=None, metavar="START:STOP",
              help="Evaluate on simulator scenes with these seeds (keep them disjoint from training seeds).")
@click.option("--sim-size", type=click.IntRange(32), default=256, show_default=True, help="Simulator scene size (px).")
@click.option("--method", type=click.Choice(["rules", "model", "fused"]), default="fused", show_default=True)
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Weights file (default: shipped).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Also write the report as JSON.")
def command(image, labels, offset, point_radius_m, sim_seeds, sim_size, method, weights, device, json_path):
    """Score a detector against labels (a labelled GeoTIFF and/or simulator seeds)."""
    from models.evaluate import evaluate_samples, format_report

    if not ((image and labels) or sim_seeds):
        raise UsageError("give --image with --labels, or --sim-seeds START:STOP")
    if bool(image) != bool(labels):
        raise UsageError("--image and --labels go together")
    samples = []
    if image:
        import numpy as np

        from geo.sources.geotiff import read_geotiff
        from models.labels import IGNORE, burn_labels

        scene = read_geotiff(Path(image), offset=offset)
        # the same checks as training: unreadable/empty labels, bad classes, labels outside the image
        raw = burn_labels(Path(labels), scene.grid, where="--labels", area_desc=f"the image {image}",
                          fix="that they cover the image", point_radius_m=point_radius_m)
        samples.append((scene, np.where(raw == IGNORE, 0, raw).astype(np.uint8)))  # unlabelled = background
    if sim_seeds:
        try:
            start, stop = (int(v) for v in sim_seeds.split(":"))
        except ValueError:
            raise UsageError(f"--sim-seeds must look like 1000:1010, got '{sim_seeds}'") from None
        from models.data import simulator_scene

        samples += [simulator_scene(s, sim_size) for s in range(start, stop)]
    rep = evaluate_samples(samples, method=method, weights=weights, device=device)
    click.echo(format_report(rep))
    if json_path:
        Path(json_path).write_text(json.dumps(rep, indent=2) + "\n")
