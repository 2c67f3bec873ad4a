"""``minewatch train``: retrain (or fine-tune) the U-Net from a TOML config."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("train")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Training TOML: [[images]] path/labels, [[scenes]] STAC search + labels, [simulator] seeds, "
                   "[negatives], [train], output, cache_dir.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Override the config's output weights path (.pt; the card goes next to it as .json).")
@click.option("--steps", type=click.IntRange(1), default=None, help="Override [train] steps.")
@click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Share of samples held out and scored (IoU per class, in the card). Default: [train] "
                   "val_fraction, else 0.2 when there are at least 5 samples.")
@click.option("--overwrite-shipped", is_flag=True, help="Allow the output to replace the shipped weights.")
def command(config_path, out_path, steps, val_fraction, overwrite_shipped):
    """Train the segmentation model on labelled GeoTIFFs, STAC-found scenes and/or simulator scenes.

    Labels are GeoJSON/GeoPackage polygons, or points with a radius, carrying a `class` property
    (1 / cleared_land, 2 / leaching_pond). A [[scenes]] entry (stac, datetime, bbox or aoi, max_cloud,
    labels) is searched and composited exactly like a `minewatch run` season (SCL cloud mask, median,
    10 m UTM grid) and cached under cache_dir, so a rerun fetches nothing. Writes weights plus a model
    card (recording each scene's catalogue and item ids) usable with `minewatch detect --weights`.
    """
    import dataclasses

    from tqdm import tqdm

    from models.train_job import load_job, run_job

    job = load_job(Path(config_path))
    if out_path:
        job = dataclasses.replace(job, output=Path(out_path))
    if steps:
        job = dataclasses.replace(job, train=dataclasses.replace(job.train, steps=steps))
    if val_fraction is not None:
        job = dataclasses.replace(job, train=dataclasses.replace(job.train, val_fraction=val_fraction),
                                  auto_validation=False)
    bar = tqdm(total=job.train.steps, desc="train", unit="step", file=sys.stderr, leave=False, disable=None)

    def progress(step: int, loss: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")

    try:
        res = run_job(job, progress=progress, overwrite_shipped=overwrite_shipped,
                      inputs={"--config": Path(config_path)})  # besides the job's images, labels and init weights
    finally:
        bar.close()
    click.echo(f"trained {res.card.extra.get('parameters')} parameters in {res.seconds:.0f} s "
               f"(final loss {res.card.extra['training']['final_loss']}) -> {job.output}")
    val = res.card.extra.get("validation")
    if val:
        click.echo(f"validation ({val['n_samples']} held-out sample(s)): IoU "
                   + ", ".join(f"{k} {'-' if v['iou'] is None else format(v['iou'], '.3f')}"
                               for k, v in val["classes"].items()))
    else:
        click.echo("validation: none (set [train] val_fraction or --val-fraction, with at least 2 samples)")
