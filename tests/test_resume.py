"""Resumable runs: a run killed with SIGKILL loses nothing it wrote, leaves no half-written file, and its
rerun gives the same outputs as an uninterrupted run; a changed parameter reruns only the tasks it affects.

Runs use a small simulated archive (three dry seasons, 200×200 px AOI) and ``--tile-px 100``, so a run is
12 (period × tile) tasks. The killed run is a real ``minewatch run`` subprocess in its own session; the
whole process group gets SIGKILL as soon as the first task's ``done.json`` appears.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio

from geo.cli.main import main
from geo.sim.demo import write_demo_dataset
from geo.sim.scene import SimConfig
from tests.conftest import REPO

SMALL = SimConfig(width=200, height=200, margin=20, start_year=2021, end_year=2023, acquisitions_per_season=2,
                  initial_sites=4, new_sites_per_season=1, abandoned_sites=1, site_gap_m=200.0)
PERIODS = ("2021-22", "2022-23", "2023-24")


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("resume-archive"), config=SMALL)


def args(ds, out: Path, *extra) -> list[str]:
    return ["run", "--aoi", str(ds.aoi_path), "--start", "2021", "--end", "2023", "--out", str(out),
            "--stac-url", str(ds.items_path), "--tile-px", "100", *map(str, extra)]


def run_inproc(ds, out: Path, *extra) -> dict:
    with pytest.raises(SystemExit) as exc:
        main(["-q", *args(ds, out, "--sync", *extra)])
    assert exc.value.code == 0
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def reference(ds, tmp_path_factory):
    """An uninterrupted run (max-cloud 100)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    with pytest.raises(SystemExit) as exc:
        main(["-q", *args(ds, out, "--sync", "--max-cloud", "100")])
    assert exc.value.code == 0
    return out


def assert_same_outputs(a: Path, b: Path) -> None:
    """summary.csv, per-period footprints GeoJSON and class maps of two run folders are equal."""
    pd.testing.assert_frame_equal(pd.read_csv(a / "summary.csv"), pd.read_csv(b / "summary.csv"))
    for p in PERIODS:
        with rasterio.open(a / f"classmap_{p}.tif") as ra, rasterio.open(b / f"classmap_{p}.tif") as rb:
            assert ra.transform == rb.transform and ra.crs == rb.crs
            np.testing.assert_array_equal(ra.read(), rb.read())
        fa = json.loads((a / f"footprints_{p}.geojson").read_text())["features"]
        fb = json.loads((b / f"footprints_{p}.geojson").read_text())["features"]
        assert len(fa) == len(fb)
        ga, gb = gpd.read_file(a / f"footprints_{p}.geojson"), gpd.read_file(b / f"footprints_{p}.geojson")
        key = ["class", "area_m2"]
        ga, gb = ga.sort_values(key).reset_index(drop=True), gb.sort_values(key).reset_index(drop=True)
        np.testing.assert_allclose(ga["area_m2"], gb["area_m2"])
        assert list(ga["class"]) == list(gb["class"])
        assert all(x.equals_exact(y, 1e-9) for x, y in zip(ga.geometry, gb.geometry))
    assert json.loads((a / "coverage.json").read_text()) == json.loads((b / "coverage.json").read_text())


def assert_nothing_half_written(out: Path) -> None:
    """No temporary left, every final-named raster reads in full, every JSON parses."""
    for p in out.rglob("*"):
        if not p.is_file():
            continue
        assert ".partial-" not in p.name and not p.name.startswith(".tmp-"), f"temporary left: {p}"
        if p.suffix == ".tif":
            with rasterio.open(p) as r:
                r.read()
        elif p.suffix in (".json", ".geojson"):
            json.loads(p.read_text())


def kill_after_first_task(ds, out: Path, *extra, timeout: float = 120.0) -> int:
    """Start `minewatch run` in its own session; SIGKILL its process group once a task is done.

    Returns the number of finished tasks found right after the kill.
    """
    proc = subprocess.Popen([sys.executable, "-m", "geo", "-q", *args(ds, out, *extra)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if any((out / "tasks").glob("*/*/done.json")):
                break
            time.sleep(0.01)
        assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        os.killpg(proc.pid, signal.SIGKILL)  # the run and every worker it started
    finally:
        if proc.poll() is None:
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return len(list((out / "tasks").glob("*/*/done.json")))


def test_kill_then_resume_equals_uninterrupted(ds, reference, tmp_path):
    out = tmp_path / "run"
    done = kill_after_first_task(ds, out, "--sync", "--max-cloud", "100")
    total = json.loads((reference / "manifest.json").read_text())["tasks"]["total"]
    assert 1 <= done < total, (done, total)
    # what the killed run left behind is either complete or named as a temporary
    for p in out.rglob("*"):
        if p.is_file() and ".partial-" not in p.name and not p.name.startswith(".tmp-"):
            if p.suffix == ".tif":
                with rasterio.open(p) as r:
                    r.read()
            elif p.suffix == ".json":
                json.loads(p.read_text())
    kept = {d: d.read_bytes() for d in (out / "tasks").glob("*/*/done.json")}
    man = run_inproc(ds, out, "--max-cloud", "100")
    assert man["status"] == "complete"
    assert man["tasks"] == {"total": total, "run": total - done, "skipped": done}
    assert all(d.read_bytes() == b for d, b in kept.items()), "a finished task was redone"
    assert_same_outputs(reference, out)
    assert_nothing_half_written(out)


@pytest.mark.slow
def test_kill_dask_run_then_resume(ds, reference, tmp_path):
    """The same on the default Dask LocalCluster (2 workers): the kill takes the workers down too."""
    out = tmp_path / "run"
    done = kill_after_first_task(ds, out, "--workers", "2", "--max-cloud", "100")
    assert done >= 1
    man = run_inproc(ds, out, "--max-cloud", "100")
    assert man["tasks"]["skipped"] >= done
    assert_same_outputs(reference, out)
    assert_nothing_half_written(out)


def test_leftover_temporaries_are_swept(ds, reference, tmp_path):
    """Temporaries a killed writer left (any folder of the run) are removed by the next run, finished files kept."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference, out)
    tdir = next((out / "tasks").glob("*/*"))
    stale = [tdir / ".classes.tif.partial-abc123.tif", out / ".summary.csv.partial-x1.csv",
             tdir / ".classes.tif.partial-abc123.tif.aux.xml"]
    for p in stale:
        p.write_bytes(b"half")
    man = run_inproc(ds, out, "--max-cloud", "100")
    assert man["tasks"]["run"] == 0
    assert not any(p.exists() for p in stale)
    assert_same_outputs(reference, out)


def _clouds(ds) -> dict[str, list[float]]:
    from geo.periods import dry_season

    by = {p: [] for p in PERIODS}
    for it in json.loads(ds.items_path.read_text())["features"]:
        d = it["properties"]["datetime"][:10]
        for y in (2021, 2022, 2023):
            s = dry_season(y)
            if s.start.isoformat() <= d <= s.end.isoformat():
                by[s.label].append(float(it["properties"]["eo:cloud_cover"]))
    return by


def test_changed_max_cloud_reruns_only_affected_tasks(ds, reference, tmp_path):
    import shutil

    clouds = _clouds(ds)
    # a threshold that drops a scene in some period but leaves at least one period's scenes unchanged
    options = sorted({c for cs in clouds.values() for c in cs if c > 0})
    pick = None
    for c in options:
        thr = c - 0.01
        changed = [p for p, cs in clouds.items() if any(x > thr for x in cs)]
        still = [p for p, cs in clouds.items() if any(x <= thr for x in cs)]
        if changed and len(changed) < len(PERIODS) and set(still) == set(PERIODS):
            pick = (thr, changed)
            break
    if pick is None:
        pytest.skip(f"the simulated archive has no cloud threshold that changes only some periods: {clouds}")
    thr, changed = pick
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    before = {d: d.stat().st_mtime_ns for d in (out / "tasks").glob("*/*/done.json")}
    man = run_inproc(ds, out, "--max-cloud", f"{thr:.2f}")
    per_period = {p: len(list((out / "tasks" / p).glob("*/done.json"))) for p in PERIODS}
    assert man["tasks"]["run"] == sum(per_period[p] for p in changed)
    for d, t in before.items():
        period = d.parent.parent.name
        assert (d.stat().st_mtime_ns == t) == (period not in changed), d
    fresh = run_inproc(ds, tmp_path / "fresh", "--max-cloud", f"{thr:.2f}")
    assert fresh["tasks"]["run"] == fresh["tasks"]["total"]
    assert_same_outputs(tmp_path / "fresh", out)


def test_vector_only_parameter_reruns_no_task(ds, reference, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference, out)
    cfg = tmp_path / "run.toml"
    cfg.write_text("[sites]\nlink_distance_m = 400.0\n[detect]\nmin_area_m2 = 1000.0\n")
    man = run_inproc(ds, out, "--max-cloud", "100", "--config", cfg)
    assert man["tasks"]["run"] == 0 and man["tasks"]["skipped"] == man["tasks"]["total"]
    assert man["parameters"]["sites"]["link_distance_m"] == 400.0
    ref = pd.read_csv(reference / "summary.csv")
    new = pd.read_csv(out / "summary.csv")
    assert (new["site_count"] <= ref["site_count"]).all() and (new["footprint_area_m2"] <= ref["footprint_area_m2"]).all()
    assert not new.equals(ref), "the new vector parameters did not reach the outputs"


def test_changed_tiling_drops_stale_tasks(ds, reference, tmp_path):
    """A different --tile-px replans every tile; the old tiles' folders must not leak into the merge."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference, out)
    with pytest.raises(SystemExit) as exc:
        main(["-q", *args(ds, out, "--sync", "--max-cloud", "100", "--tile-px", "150")])  # the last --tile-px wins
    assert exc.value.code == 0
    man = json.loads((out / "manifest.json").read_text())
    folders = list((out / "tasks").glob("*/*"))
    assert len(folders) == man["tasks"]["total"]
    cov = json.loads((out / "coverage.json").read_text())
    assert all(0 <= v["clear_fraction"] <= 1 for v in cov.values())
    ref_cov = json.loads((reference / "coverage.json").read_text())
    for p in PERIODS:
        assert cov[p]["clear_fraction"] == pytest.approx(ref_cov[p]["clear_fraction"], abs=0.02)


def test_tasks_composited_in_strips_equal_whole_tiles(ds, reference, tmp_path, monkeypatch, caplog):
    """A stack budget too small for a tile's scenes makes every task load and composite in strips of rows;
    the outputs equal the whole-tile run's."""
    from geo.run.tasks import strip_rows
    from geo.grid import GeoGrid

    monkeypatch.setenv("MINEWATCH_TASK_MEMORY_MB", "1")
    man = json.loads((reference / "manifest.json").read_text())
    halo = man["parameters"]["detect"]["halo_px"]
    with rasterio.open(next((reference / "tasks").glob("*/*/classes.tif"))) as src:
        h = src.height + 2 * halo
        grid = GeoGrid(src.crs, src.transform, src.width + 2 * halo, h)
    assert strip_rows(2, grid) < h  # the budget really splits these tiles
    out = tmp_path / "run"
    run_inproc(ds, out, "--max-cloud", "100")
    assert_same_outputs(reference, out)


def test_run_folder_holds_no_cache_and_opt_in_cache_serves_a_rerun(ds, reference, tmp_path):
    """By default nothing but outputs lands in the run folder; --cache-dir keeps deflated DN windows outside it,
    and a run in a fresh folder reading that cache gives the same outputs as the run that filled it."""
    from geo.sources.cache import WindowCache

    assert not (reference / "cache").exists()
    assert not [p for p in reference.rglob("*") if p.suffix in (".npy", ".win")]
    cache = tmp_path / "cache"
    first, second = tmp_path / "first", tmp_path / "second"
    run_inproc(ds, first, "--max-cloud", "100", "--cache-dir", cache)
    entries = WindowCache(cache).entries()
    assert entries and all(WindowCache.read_entry(p).dtype.kind == "u" for p in entries)
    assert not (first / "cache").exists()
    stamps = {p: p.stat().st_mtime_ns for p in entries}
    run_inproc(ds, second, "--max-cloud", "100", "--cache-dir", cache)
    assert WindowCache(cache).entries() == entries
    assert all(p.stat().st_mtime_ns >= t for p, t in stamps.items())
    assert_same_outputs(first, second)
    pd.testing.assert_frame_equal(pd.read_csv(reference / "summary.csv"), pd.read_csv(second / "summary.csv"))
