"""``minewatch change RUN_DIR``: recompute sites, change, tables and the report from an existing run folder.

Site and change rules can be changed with ``--config`` (its ``[sites]``, ``[change]`` and ``[detect] min_area_m2``).
See :mod:`geo.run.recompute`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from geo.run.recompute import recompute


@click.command("change")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True), default=None,
              help="TOML run file; its [sites], [change] and [detect] min_area_m2 replace the run's values.")
def command(run_dir, config_path):
    """Recompute sites, change, tables and the report of RUN_DIR from its class maps (no refetching)."""
    from geo.cli.run import print_summary

    paths, _ = recompute(Path(run_dir), config_path=config_path)
    result = _Result(Path(run_dir), paths["summary_csv"], paths["report_html"])
    print_summary(result)


@dataclasses.dataclass(frozen=True)
class _Result:
    out_dir: Path
    summary_csv: Path
    report_html: Path
