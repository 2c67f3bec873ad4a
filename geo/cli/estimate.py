"""``minewatch estimate RUN_DIR --labels SAMPLE.gpkg``: error-adjusted areas and accuracies with 95 % intervals.

Writes ``RUN_DIR/estimate.csv`` and rewrites the report with its "Good-practice area estimate" section, and the
claims with the map's check (:func:`geo.results.claims.map_check`).
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("estimate")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--labels", "labels", required=True, type=click.Path(dir_okay=False, exists=True),
              help="The GeoPackage from 'minewatch sample' with every 'reference' filled in.")
def command(run_dir, labels):
    """Estimate areas of RUN_DIR from a labelled stratified sample (Olofsson et al. 2014)."""
    from geo.cli.change import recompute_checked
    from geo.cli.run import print_claims
    from geo.results.sampling import estimate_run

    est = estimate_run(Path(run_dir), Path(labels))
    recompute_checked(Path(run_dir))
    for _, r in est[est["class"] == "footprint"].iterrows():
        click.echo(f"  {r['period']}: footprint {r['area_m2'] / 1e6:.3f} km² "
                   f"[{r['area_m2_low'] / 1e6:.3f}–{r['area_m2_high'] / 1e6:.3f}] (mapped {r['map_area_m2'] / 1e6:.3f}); "
                   f"user's {r['users_accuracy']:.2f}, producer's {r['producers_accuracy']:.2f}")
    click.echo(f"Wrote {Path(run_dir) / 'estimate.csv'} and the report's estimate section.")
    print_claims(Path(run_dir))  # the check can turn a claim comparable
