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
