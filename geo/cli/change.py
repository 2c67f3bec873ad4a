"""``minewatch change RUN_DIR``: recompute sites, change, tables and the report from an existing run folder.

Site and change rules can be changed with ``--config`` (its ``[sites]``, ``[change]`` and ``[detect] min_area_m2``).
See :mod:`geo.run.recompute`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from geo.run.recompute import recompute


def recompute_checked(run_dir: Path, *, config_path: str | None = None):
    """:func:`geo.run.recompute.recompute` (which refuses a corrupt manifest, exit 2, and names an unreadable class
    map, exit 4), with any other unreadable raster of the folder (a task composite) refused in one line too."""
    import rasterio.errors

    from geo.errors import RasterError

    try:
        return recompute(Path(run_dir), config_path=config_path)
    except rasterio.errors.RasterioError as exc:
        cause = " ".join(str(exc).split())[:300]
        raise RasterError(f"cannot read a raster of the run folder {run_dir} ({cause}); it is corrupt or not a "
                          f"GeoTIFF: rerun the same 'minewatch run ... --out {run_dir}' to rebuild the class maps "
                          "from the run's tasks") from None


@click.command("change")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True), default=None,
              help="TOML run file; its [sites], [change] and [detect] min_area_m2 replace the run's values.")
def command(run_dir, config_path):
    """Recompute sites, change, tables and the report of RUN_DIR from its class maps (no refetching)."""
    from geo.cli.run import print_summary

    paths, _ = recompute_checked(Path(run_dir), config_path=config_path)
    result = _Result(Path(run_dir), paths["summary_csv"], paths["report_html"])
    print_summary(result)


@dataclasses.dataclass(frozen=True)
class _Result:
    out_dir: Path
    summary_csv: Path
    report_html: Path
