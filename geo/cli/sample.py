"""``minewatch sample RUN_DIR --out SAMPLE.gpkg``: a stratified random sample of points to label (Olofsson et al. 2014).

Strata are each period's map classes plus background near footprint (see :mod:`geo.results.sampling`); rare strata
get at least 50 points (or n / 8), the rest is allocated in proportion to stratum size. Open the GeoPackage in QGIS,
set ``reference`` (0 background, 1 cleared land, 2 leaching pond) for every point, then run ``minewatch estimate``.
"""

from __future__ import annotations

from pathlib import Path

import click

from geo.errors import OutputError, UsageError

#: GeoPackages a run writes into its folder (``minewatch change`` rewrites them): never a sample's place.
RUN_GPKG_OUTPUTS = frozenset({"footprints.gpkg"})


def check_out(run_dir: Path, out: Path) -> None:
    """Refuse an ``--out`` that would destroy data: an existing file that is not an earlier sample (a class map, the
    manifest, the run's footprints.gpkg, any other file), a run output's name, or a name without ``.gpkg``.

    Raises:
        UsageError: exit 2, before anything is drawn or written.
    """
    from geo.results.sampling import is_sample_file, labelled_points

    run, target = run_dir.resolve(), out.expanduser().resolve()
    in_run = run in target.parents
    example = run_dir / "sample.gpkg"
    if target.is_file() and target.stat().st_size > 0 and not is_sample_file(target):
        where = f"a file of the run folder {run_dir}" if in_run else "an existing file"
        raise UsageError(f"--out {out} is {where} and not a 'minewatch sample' GeoPackage: writing the sample there "
                         f"would destroy it; give a new path such as {example}")
    if target.is_file() and (n := labelled_points(target)):  # an analyst's labels are work no command may undo
        raise UsageError(f"--out {out} holds a sample with {n} labelled point(s); drawing a new sample there would "
                         "lose those labels: give a new path, or move that file away first")
    if in_run and target.parent == run and target.name.lower() in RUN_GPKG_OUTPUTS:
        raise UsageError(f"--out {out} is the name of the run's own output (rewritten by 'minewatch change'); "
                         f"give another path such as {example}")
    if target.suffix.lower() != ".gpkg":
        raise UsageError(f"--out {out} does not end in .gpkg: the sample is written as a GeoPackage; give a path "
                         f"such as {example}")


@click.command("sample")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--n", "n", default=300, show_default=True, type=click.IntRange(10, 100000),
              help="Sample points per period.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="GeoPackage (.gpkg) to write (layer 'sample'); an earlier unlabelled sample there is overwritten, "
                   "a labelled one or any other existing file is refused.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1),
              help="Random seed (the same seed draws the same points).")
def command(run_dir, n, out_path, seed):
    """Draw a stratified random sample of RUN_DIR's class maps into a GeoPackage for labelling."""
    from geo.fsutil import check_writable
    from geo.results.sampling import draw_run_sample, write_sample

    check_writable(out_path, "--out")
    check_out(Path(run_dir), Path(out_path))
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
    from geo.results.change import MIN_CHECK_POINTS

    on_map = sample[sample["map_class"].isin([1, 2])].groupby("period").size()
    few = [f"{p} ({int(on_map.get(p, 0))})" for p in sample["period"].unique() if on_map.get(p, 0) < MIN_CHECK_POINTS]
    if few:  # the estimate will still be made, but it will not count as a check of the map (docs/INTERVALS.md)
        click.echo(f"Note: fewer than {MIN_CHECK_POINTS} points fall on mapped footprint in {', '.join(few)}; the "
                   "estimate will not count as a check of the map there, so published claims get no verdict: draw a "
                   f"larger sample (--n {2 * n}) if the map has little footprint", err=True)
