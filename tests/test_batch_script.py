"""scripts/run_all_aois.py: runs every AOI, continues past a failing one, collects the summaries."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from geo.sim.demo import write_demo_dataset
from geo.sim.scene import SimConfig
from tests.conftest import REPO


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    return write_demo_dataset(root, seed=3, config=SimConfig(seed=3, width=160, height=160, margin=10,
                                                             start_year=2019, end_year=2021,
                                                             acquisitions_per_season=2, initial_sites=2,
                                                             new_sites_per_season=0, abandoned_sites=0))


def test_batch_continues_past_failing_aoi(tmp_path, small_archive):
    aois = tmp_path / "aois"
    aois.mkdir()
    (aois / "a_good.geojson").write_text(small_archive.aoi_path.read_text())
    (aois / "b_broken.geojson").write_text("{ this is not json")
    out = tmp_path / "batch"
    res = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "run_all_aois.py"), "--aoi-dir", str(aois), "--start", "2019",
         "--end", "2020", "--out", str(out), "--", "--stac-url", str(small_archive.items_path), "--sync",
         "--max-cloud", "100"],
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stderr
    status = {r["aoi"]: r for r in csv.DictReader(open(out / "batch_status.csv"))}
    assert status["a_good"]["status"] == "ok"
    assert status["b_broken"]["status"] == "failed" and status["b_broken"]["exit_code"] == "2"
    assert "not valid JSON" in status["b_broken"]["message"]
    rows = list(csv.DictReader(open(out / "batch_summary.csv")))
    assert [r["period"] for r in rows] == ["2019-20", "2020-21"] and {r["aoi"] for r in rows} == {"a_good"}
    assert json.loads((out / "a_good" / "manifest.json").read_text())["status"] == "complete"


def test_ctrl_c_writes_the_tables_and_exits_130(tmp_path, small_archive):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) mid-batch: the running AOI is let stop on
    its own, the tables are written for what finished, no further AOI starts, exit 130. Before, a traceback and no
    tables."""
    import os
    import signal
    import time

    aois = tmp_path / "aois"
    aois.mkdir()
    for name in ("a", "b", "c"):
        (aois / f"{name}.geojson").write_text(small_archive.aoi_path.read_text())
    out = tmp_path / "batch"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "run_all_aois.py"), "--aoi-dir", str(aois), "--start", "2019",
         "--end", "2020", "--out", str(out), "--", "--stac-url", str(small_archive.items_path), "--sync",
         "--max-cloud", "100"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while not (out / "a" / "run.log").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Interrupted after" in err and "rerun the same command to resume" in err
    rows = list(csv.DictReader(open(out / "batch_status.csv")))
    assert rows and rows[-1]["status"] == "interrupted", rows
    assert all(r["status"] == "ok" for r in rows[:-1])
    assert len(rows) < 3 or rows[-1]["aoi"] == "c"
    started = [p.name for p in out.iterdir() if p.is_dir()]
    assert len(started) == len(rows), "no AOI starts after the interrupt"


def test_a_bad_batch_is_refused_before_any_aoi_runs(tmp_path):
    """Problems of the whole batch are one line before anything runs (they were repeated as a failure per AOI, or
    a traceback for an unwritable --out); two AOI files with the same name would have shared one run folder."""
    good = REPO / "aoi" / "momauk.geojson"
    (tmp_path / "x1").mkdir()
    (tmp_path / "x1" / "momauk.geojson").write_text(good.read_text())
    (tmp_path / "file").write_text("not a folder")
    cases = [
        (["--aoi", str(good), "--start", "2023", "--end", "2022"], 2, "end year 2022 is before start year 2023"),
        (["--aoi", str(tmp_path / "nope.geojson"), "--start", "2023", "--end", "2023"], 2, "AOI file(s) not found"),
        (["--aoi", str(good), "--aoi", str(tmp_path / "x1" / "momauk.geojson"), "--start", "2023", "--end", "2023"],
         2, "would share the run folder"),
        (["--aoi", str(good), "--start", "2023", "--end", "2023", "--out", str(tmp_path / "file" / "b")], 7,
         "cannot write the batch folder"),
    ]
    for argv, code, says in cases:
        out = ["--out", str(tmp_path / "batch")] if "--out" not in argv else []
        res = subprocess.run([sys.executable, str(REPO / "scripts" / "run_all_aois.py"), *argv, *out],
                             capture_output=True, text=True, timeout=60)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == code and len(lines) == 1 and lines[0].startswith("Error: ") and says in lines[0], \
            (argv, res.returncode, res.stderr)
        assert not (tmp_path / "batch").exists()


def test_model_checks_for_status_lines_never_stop_the_batch(tmp_path):
    """The batch status and the terminal summary name RULES DISAGREE seasons from the run's manifest
    (``model_checks_of``); a missing or broken manifest adds nothing rather than stopping them."""
    from geo.results.run_inputs import model_checks_of

    (tmp_path / "manifest.json").write_text(json.dumps({"model_checks": {"2021-22": {"rules_disagree": True}}}))
    assert model_checks_of(tmp_path) == {"2021-22": {"rules_disagree": True}}
    for bad in ("{", "[1, 2]", json.dumps({"model_checks": [1]}), "\udcff"):
        (tmp_path / "manifest.json").write_text(bad, errors="surrogateescape")
        assert model_checks_of(tmp_path) == {}
    assert model_checks_of(tmp_path / "nowhere") == {}
