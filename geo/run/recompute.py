"""Recompute sites, change, tables and the report of an existing run folder from its class maps.

Nothing is fetched: the inputs are the ``classmap_<period>.tif`` (and ``confidence_<period>.tif``) files a run
left in the folder, the run parameters in ``manifest.json``, the per-period coverage in ``coverage.json`` and,
for the report map, the last period's task composites under ``tasks/``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
from pathlib import Path


from geo.config import RunParams, params_from_dict, params_from_toml
from geo.errors import ConfigError, RasterError, UsageError
from geo.fsutil import write_json
from geo.results.quicklook import rgb_from_tasks
from geo.stages.input_check import season_check

log = logging.getLogger(__name__)

_CLASSMAP = re.compile(r"^classmap_(.+)\.tif$")
def periods_in(run_dir: Path, manifest: dict) -> list[str]:
    """Period labels in run order: the manifest's list where present, else the class maps' labels sorted."""
    found = {m.group(1) for p in run_dir.glob("classmap_*.tif") if (m := _CLASSMAP.match(p.name))}
    listed = (manifest.get("inputs") or {}).get("periods")
    if isinstance(listed, list) and listed:
        missing = [str(p) for p in listed if p not in found]
        # a period the run mapped (it has task results) whose class map is gone: reporting it as zero would
        # invent a collapse and a recovery of every site
        lost = [p for p in missing if any((run_dir / "tasks" / p).glob("*/done.json"))]
        if lost:
            raise RasterError(f"classmap_{lost[0]}.tif is missing from {run_dir} though the run mapped "
                              f"{'that period' if len(lost) == 1 else f'{len(lost)} such periods'}; rerun the "
                              "'minewatch run' command that made this folder to rebuild it from its tasks (nothing "
                              "is fetched again)")
        if missing:
            log.warning("no class map for period(s) %s (no scenes); they are reported as 'no data', with no area "
                        "and no growth from or to them", ", ".join(missing))
        return [str(p) for p in listed]
    return sorted(found)


def coverage_of(run_dir: Path, periods: list[str]) -> dict[str, dict]:
    """Per-period coverage from ``coverage.json``, else summed from the task ``done.json`` files."""
    path = run_dir / "coverage.json"
    if path.exists():
        try:
            cov = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RasterError(f"{path} is not valid JSON ({exc}); delete it to fall back on tasks/*/done.json") from None
        if not isinstance(cov, dict) or not all(isinstance(v, dict) for v in cov.values()):
            raise RasterError(f"{path} is not an object of per-period coverage records; delete it to fall back on "
                              "tasks/*/done.json")
        return cov
    cov = {}
    for p in periods:
        done = [json.loads(d.read_text(encoding="utf-8")) for d in sorted((run_dir / "tasks" / p).glob("*/done.json"))]
        if done:
            region = sum(d.get("region_px", 0) for d in done)
            cov[p] = {"clear_fraction": sum(d.get("clear_px", 0) for d in done) / max(1, region),
                      "n_scenes": max(d.get("n_scenes", 0) for d in done),
                      **season_check([d.get("model_check") for d in done])}
    if not cov:
        log.warning("no coverage.json and no task records in %s: every period is flagged low confidence", run_dir)
    return cov


def _aoi_of(manifest: dict):
    """The run's AOI (lon/lat) from the manifest's ``aoi_path`` when that file still reads, else None."""
    from geo.aoi import read_aoi

    path = manifest.get("inputs", {}).get("aoi_path")
    if not path or not Path(path).is_file():
        return None
    try:
        return read_aoi(path).geometry
    except Exception as exc:  # noqa: BLE001 - a moved or edited AOI only loses the claims' coverage check
        log.warning("cannot read the run's AOI %s (%s); the class maps' extent stands in for it", path, exc)
        return None


def recompute(run_dir: Path, *, config_path: str | None = None) -> tuple[dict[str, Path], list[str]]:
    """Rewrite every vector, table and report output of ``run_dir`` from its class maps; returns (paths, periods).
    Holds the run folder's lock meanwhile: a run writing into the folder refuses it, and it refuses a running run.

    Raises:
        OutputError: another process holds the run folder (exit 7).
    """
    from geo.run.runfolder import lock_run_dir

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"run folder {run_dir} does not exist; pass the --out folder of a 'minewatch run' or 'demo'")
    lock = lock_run_dir(run_dir)
    try:
        return _recompute(run_dir, config_path)
    finally:
        lock.close()


def _recompute(run_dir: Path, config_path: str | None) -> tuple[dict[str, Path], list[str]]:
    from geo.results.export import read_raster
    from geo.results.outputs import write_vectors_and_report
    from geo.results.sampling import read_manifest

    man_path = run_dir / "manifest.json"
    manifest = read_manifest(run_dir)  # {} when absent; a corrupt one is one UsageError line
    if manifest.get("status") not in (None, "complete"):
        log.warning("the run in %s is '%s', not complete: its class maps may be from an earlier run or missing "
                    "seasons; rerun the 'minewatch run' command to finish it", run_dir, manifest.get("status"))
    periods = periods_in(run_dir, manifest)
    have = [p for p in periods if (run_dir / f"classmap_{p}.tif").exists()]
    if not have:
        raise UsageError(f"{run_dir} is not a minewatch run folder with results: it holds no classmap_<period>.tif; "
                         "finish the run first ('minewatch run ... --out " f"{run_dir}' resumes it)")
    if isinstance(manifest.get("parameters"), dict):
        try:
            params = params_from_dict(manifest["parameters"])
        except ConfigError as exc:
            raise ConfigError(f"manifest.json parameters: {exc}; fix it or pass --config") from None
    else:
        log.warning("no run parameters in %s; using the defaults", man_path)
        params = RunParams()
    if config_path:
        new = params_from_toml(config_path)
        params = dataclasses.replace(params, sites=new.sites, change=new.change,
                                     detect=dataclasses.replace(params.detect, min_area_m2=new.detect.min_area_m2,
                                                                min_pond_area_m2=new.detect.min_pond_area_m2))
    coverage = coverage_of(run_dir, periods)
    grid = read_raster(run_dir / f"classmap_{have[-1]}.tif")[1]
    quicklook = rgb_from_tasks(run_dir, have[-1], grid)
    rgb, qgrid = quicklook if quicklook is not None else (None, None)
    aoi_name = manifest.get("inputs", {}).get("aoi_name") or run_dir.name
    paths = write_vectors_and_report(run_dir, aoi_name, periods, params, coverage, rgb, qgrid,
                                     simulated=bool(manifest.get("simulated", False)), aoi_wgs84=_aoi_of(manifest))
    if manifest:
        manifest["parameters"] = params.to_dict()
        manifest["model_checks"] = paths["model_checks"]  # what the rewritten summary and report say
        manifest.setdefault("recomputed", []).append(
            {"command": "change", "at": dt.datetime.now(dt.timezone.utc).isoformat(),
             "config": str(config_path) if config_path else None})
        write_json(man_path, manifest)
    return paths, periods
