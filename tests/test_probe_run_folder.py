"""A run folder that an outside tester damaged or reused: a run never deletes what is not its own, a rerun with
other settings keeps the earlier tasks until it has finished, a damaged task raster is redone on the rerun, and
`minewatch change` on a damaged folder says so in one line (before: user folders deleted, tracebacks, or zeros
reported for a season whose class map was deleted, exit 0)."""

from __future__ import annotations

import json
import shutil

import pytest

from geo.sim.demo import write_demo_dataset
from geo.sim.scene import SimConfig

SMALL = SimConfig(width=160, height=160, margin=16, start_year=2021, end_year=2023, acquisitions_per_season=2,
                  initial_sites=3, new_sites_per_season=1, abandoned_sites=0, site_gap_m=200.0)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("probe-run-archive"), config=SMALL)


@pytest.fixture(scope="module")
def done_run(ds, tmp_path_factory):
    out = tmp_path_factory.mktemp("probe-run") / "run"
    code, err = _cli(_run(ds, out, "2021", "2022"))
    assert code == 0, err
    return out


def _run(ds, out, start, end, *extra):
    return ["run", "--aoi", ds.aoi_path, "--start", start, "--end", end, "--out", out, "--stac-url", ds.items_path,
            "--sync", "--method", "rules", "--tile-px", "96", *extra]


def _cli(args):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "geo", "-q", *map(str, args)], capture_output=True, text=True,
                         timeout=300)
    assert "Traceback" not in res.stderr, res.stderr
    return res.returncode, res.stderr.strip()


def _copy(done_run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(done_run, dst)
    return dst


def test_a_run_leaves_folders_it_did_not_make_under_tasks(ds, done_run, tmp_path):
    out = _copy(done_run, tmp_path)
    (out / "tasks" / "notes").mkdir()
    (out / "tasks" / "notes" / "todo.txt").write_text("mine")
    (out / "tasks" / "2021-22" / "mine").mkdir()
    (out / "tasks" / "2021-22" / "mine" / "a.txt").write_text("mine too")
    stale = out / "tasks" / "2021-22" / "r099c099"  # a task folder of another tiling: minewatch's own, pruned
    stale.mkdir()
    shutil.copy(next((out / "tasks" / "2021-22").glob("r*/done.json")), stale / "done.json")
    code, err = _cli(_run(ds, out, "2021", "2022"))
    assert code == 0, err
    assert (out / "tasks" / "notes" / "todo.txt").read_text() == "mine"
    assert (out / "tasks" / "2021-22" / "mine" / "a.txt").read_text() == "mine too"
    assert not stale.exists()


def test_an_empty_out_is_refused(ds, tmp_path):
    code, err = _cli(_run(ds, "", "2021", "2022"))
    assert code == 2 and "--out is empty" in err


def test_a_rerun_with_fewer_seasons_keeps_old_tasks_until_done_then_drops_their_outputs(ds, done_run, tmp_path,
                                                                                          monkeypatch):
    import geo.run.pipeline as pl
    from geo.errors import ClusterError

    out = _copy(done_run, tmp_path)
    before = sorted(p.relative_to(out) for p in (out / "tasks").rglob("done.json"))

    def stop(*a, **k):
        raise ClusterError("workers gone")

    monkeypatch.setattr(pl, "run_tasks", stop)  # the rerun with other settings stops before any task finishes
    from geo.periods import dry_seasons

    req = pl.RunRequest(ds.aoi_path, tuple(dry_seasons(2021, 2021)), out, _params(ds), executor="sync")
    with pytest.raises(ClusterError):
        pl.run(req)
    assert sorted(p.relative_to(out) for p in (out / "tasks").rglob("done.json")) == before  # nothing deleted
    monkeypatch.undo()
    code, err = _cli(_run(ds, out, "2021", "2021"))
    assert code == 0, err
    man = json.loads((out / "manifest.json").read_text())
    assert not (out / "classmap_2022-23.tif").exists() and not (out / "tasks" / "2022-23").exists()
    assert not [o for o in man["outputs"] if "2022-23" in o]


def _params(ds):
    from geo.cli.options import build_params

    return build_params(None, provider=str(ds.items_path), max_cloud=None, method="rules", tile_px=96, weights=None, collection=None)


def test_a_damaged_task_raster_is_redone_on_the_rerun(ds, done_run, tmp_path):
    out = _copy(done_run, tmp_path)
    victim = sorted((out / "tasks" / "2021-22").glob("r*/classes.tif"))[0]
    good = victim.read_bytes()
    victim.write_bytes(good[:500])
    summary = (out / "summary.csv").read_text()
    code, err = _cli(_run(ds, out, "2021", "2022"))
    assert code == 4 and "is damaged" in err and "rerun the same command" in err
    code, err = _cli(_run(ds, out, "2021", "2022"))
    assert code == 0, err
    assert (out / "summary.csv").read_text() == summary and victim.stat().st_size > 500


@pytest.mark.parametrize("damage, code, says", [
    (lambda o: (o / "classmap_2021-22.tif").write_bytes(b"garbage"), 4, "classmap_2021-22.tif"),
    (lambda o: (o / "confidence_2022-23.tif").write_bytes(b"garbage"), 4, "confidence_2022-23.tif"),
    (lambda o: (o / "classmap_2022-23.tif").unlink(), 4, "classmap_2022-23.tif is missing"),
    (lambda o: (o / "coverage.json").write_text("[1, 2]"), 4, "per-period coverage"),
    (lambda o: (o / "manifest.json").write_text("[]"), 2, "a minewatch run folder?"),
])
def test_change_on_a_damaged_run_folder_is_one_line(done_run, tmp_path, damage, code, says):
    out = _copy(done_run, tmp_path)
    damage(out)
    got, err = _cli(["change", out])
    assert got == code and says in err and len(err.splitlines()) == 1, err


def test_change_waits_for_no_run_and_warns_on_an_unfinished_one(done_run, tmp_path):
    from geo.run.runfolder import lock_run_dir

    out = _copy(done_run, tmp_path)
    lock = lock_run_dir(out)  # a run writing into the folder
    try:
        code, err = _cli(["change", out])
    finally:
        lock.close()
    assert code == 7 and "is writing into" in err
    man = json.loads((out / "manifest.json").read_text())
    man["status"] = "interrupted"
    (out / "manifest.json").write_text(json.dumps(man))
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "geo", "change", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "is 'interrupted', not complete" in res.stderr


def test_a_cog_replaced_between_a_run_and_its_resume_redoes_its_tasks(tmp_path):
    """The task key held item ids and hrefs only: a local COG rewritten in place was never read again, exit 0."""
    import numpy as np
    import rasterio

    ds = write_demo_dataset(tmp_path / "archive", config=SMALL)
    out = tmp_path / "run"
    code, err = _cli(_run(ds, out, "2021", "2021"))
    assert code == 0, err
    first = json.loads((out / "manifest.json").read_text())
    assert first["tasks"]["run"] == first["tasks"]["total"] > 0
    code, err = _cli(_run(ds, out, "2021", "2021"))  # nothing changed: every task is reused
    assert code == 0 and json.loads((out / "manifest.json").read_text())["tasks"]["run"] == 0, err
    item = next(it for it in json.loads(ds.items_path.read_text())["features"] if it["id"] in first["scenes"]["2021-22"])
    cog = next(a["href"] for k, a in item["assets"].items() if a["href"].endswith("B04.tif"))
    with rasterio.open(cog) as src:
        prof, arr = src.profile, src.read()
    with rasterio.open(cog, "w", **prof) as dst:  # the same file name, other pixels (a reprocessed scene)
        dst.write(np.clip(arr.astype(np.int64) + 500, 0, 65535).astype(arr.dtype))
    code, err = _cli(_run(ds, out, "2021", "2021"))
    again = json.loads((out / "manifest.json").read_text())
    assert code == 0 and again["tasks"]["run"] > 0, err


def test_run_refuses_an_out_folder_of_the_users_own_files(ds, tmp_path):
    """`--out ~/Documents` mixed a run's dozen outputs into the user's files; now refused (exit 2), nothing written."""
    (tmp_path / "thesis.docx").write_text("mine")
    code, err = _cli(_run(ds, tmp_path, "2021", "2021"))
    assert code == 2 and "already holds files (thesis.docx) and no minewatch run" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.docx"]


def test_run_accepts_a_folder_holding_only_the_batch_log_or_hidden_files(ds, tmp_path):
    out = tmp_path / "aoi"
    out.mkdir()
    (out / "run.log").write_text("batch log\n")  # scripts/run_all_aois.py opens it before the run starts
    (out / ".DS_Store").write_text("")
    code, err = _cli(_run(ds, out, "2021", "2021"))
    assert code == 0, err
    assert (out / "manifest.json").is_file()


@pytest.mark.parametrize("setup", ["user_manifest", "not_json_manifest", "list_manifest", "user_tasks_dir",
                                   "tasks_file", "tasks_symlink"])
def test_files_named_like_a_runs_own_do_not_make_a_run_folder(tmp_path, setup):
    """A user's own manifest.json was taken for a run's and overwritten (exit 0); `[1,2]` in it was a traceback; a
    user's tasks/ folder (or a file or symlink of that name) let the run write among their files."""
    from geo.errors import UsageError
    from geo.run.runfolder import check_run_out

    out = tmp_path / "u"
    out.mkdir()
    (out / "index.html").write_text("mine")
    if setup == "user_manifest":
        (out / "manifest.json").write_text('{"name": "my-webapp"}')
    elif setup == "not_json_manifest":
        (out / "manifest.json").write_text("not json")
    elif setup == "list_manifest":
        (out / "manifest.json").write_text("[1, 2]")
    elif setup == "user_tasks_dir":
        (out / "tasks").mkdir()
        (out / "tasks" / "todo.txt").write_text("mine")
    elif setup == "tasks_file":
        (out / "tasks").write_text("mine")
    else:
        (tmp_path / "elsewhere" / "2021-22" / "t").mkdir(parents=True)
        (tmp_path / "elsewhere" / "2021-22" / "t" / "done.json").write_text("{}")
        (out / "tasks").symlink_to(tmp_path / "elsewhere")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(UsageError, match="already holds files .* and no minewatch run"):
        check_run_out(out)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_a_non_minewatch_manifest_is_refused_in_one_line_by_the_pipeline_too(ds, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text("[1, 2]")  # the only file: not the user's "other files", still not a run
    code, err = _cli(_run(ds, out, "2021", "2021"))
    assert code in (2, 7) and err.startswith("Error: ") and len(err.splitlines()) == 1
    assert (out / "manifest.json").read_text() == "[1, 2]"


def test_the_batch_refuses_an_aoi_folder_of_user_files_without_writing_into_it(ds, tmp_path):
    import csv
    import subprocess
    import sys

    from tests.conftest import REPO

    out = tmp_path / "batch"
    (out / "aoi").mkdir(parents=True)
    (out / "aoi" / "thesis.docx").write_text("mine")
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(ds.aoi_path.read_text())
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "run_all_aois.py"), "--aoi", str(aoi), "--start",
                          "2021", "--end", "2021", "--out", str(out), "--", "--stac-url", str(ds.items_path), "--sync"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    row, = csv.DictReader(open(out / "batch_status.csv"))
    assert row["exit_code"] == "2" and "already holds files (thesis.docx)" in row["message"]
    assert sorted(p.name for p in (out / "aoi").iterdir()) == ["thesis.docx"]  # no run.log written into it


def test_a_broken_symlink_as_out_is_named_as_such(tmp_path):
    """It was `cannot create run folder … (File exists)`, exit 7."""
    from geo.errors import UsageError
    from geo.run.runfolder import check_run_out

    link = tmp_path / "out"
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(UsageError, match="broken symbolic link"):
        check_run_out(link)
