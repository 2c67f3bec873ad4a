"""``minewatch sample RUN_DIR --out SAMPLE.gpkg``: a stratified random sample of points to label (Olofsson et al. 2014).

Strata are each period's map classes plus background near footprint (see :mod:`geo.results.sampling`); rare strata
get at least 50 points (or n / 8), the rest is allocated in proportion to stratum size. Open the GeoPackage in QGIS,
set ``reference`` (0 background, 1 cleared land, 2 leaching pond) for every point, then run ``minewatch estimate``.
"""

from __future__ import annotations

from pathlib import Path

import click

from geo.errors import OutputError


@click.command("sample")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--n", "n", default=300, show_default=True, type=click.IntRange(10, 100000),
              help="Sample points per period.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="GeoPackage to write (layer 'sample'; overwritten).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1),
              help="Random seed (the same seed draws the same points).")
def command(run_dir, n, out_path, seed):
    """Draw a stratified random sample of RUN_DIR's class maps into a GeoPackage for labelling."""
    from geo.fsutil import check_writable
    from geo.results.sampling import draw_run_sample, write_sample

    check_writable(out_path, "--out")
    sample = draw_run_sample(Path(run_dir), n, seed=seed)
    try:
        path = write_sample(sample, Path(out_path))
    except OSError as exc:
        raise OutputError(f"cannot write {out_path} ({exc}); choose a writable --out path") from None
    counts = sample.groupby(["period", "stratum_name"]).size()
    for (period, name), k in counts.items():
        click.echo(f"  {period}: {k:4d} points in stratum {name}")
    click.echo(f"Wrote {len(sample)} points to {path}: fill 'reference' (0 background, 1 cleared land, 2 leaching "
               f"pond) in QGIS, then run: minewatch estimate {run_dir} --labels {path}")
