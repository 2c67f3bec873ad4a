"""`minewatch run --stac-url http://127.0.0.1:PORT` against a real STAC API and a range-capable COG server."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from geo.cli.main import main
from geo.demo_data import write_demo_dataset
from geo.simulate import SimConfig


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("http-archive")
    cfg = SimConfig(seed=11, width=200, height=200, margin=10, start_year=2019, end_year=2021,
                    acquisitions_per_season=2, initial_sites=3, new_sites_per_season=1, abandoned_sites=0)
    return write_demo_dataset(root, seed=11, config=cfg)


def _run(args):
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code


def test_run_over_stac_api_equals_local_catalogue(tmp_path, archive):
    from servers import RangeServer, RustacServer, rustac_binary

    if rustac_binary() is None:
        pytest.skip("rustac binary missing (pip install rustac)")
    common = ["--aoi", str(archive.aoi_path), "--start", "2019", "--end", "2021", "--max-cloud", "100", "--sync"]
    assert _run(["-q", "run", *common, "--out", str(tmp_path / "local"), "--stac-url", str(archive.items_path)]) == 0
    doc = json.loads(archive.items_path.read_text())
    with RangeServer(archive.root) as rs:
        for f in doc["features"]:
            for a in f["assets"].values():
                a["href"] = rs.url + "/" + str(Path(a["href"]).resolve().relative_to(archive.root.resolve()))
        (tmp_path / "items_http.json").write_text(json.dumps(doc))
        with RustacServer([tmp_path / "items_http.json"]) as api:
            assert _run(["-q", "run", *common, "--out", str(tmp_path / "http"), "--stac-url", api.url]) == 0
    local = pd.read_csv(tmp_path / "local" / "summary.csv")
    http = pd.read_csv(tmp_path / "http" / "summary.csv")
    pd.testing.assert_frame_equal(local, http)
    assert (local["footprint_area_m2"] > 0).all()
    man = json.loads((tmp_path / "http" / "manifest.json").read_text())
    assert man["scenes"] == json.loads((tmp_path / "local" / "manifest.json").read_text())["scenes"]
    assert man["parameters"]["search"]["provider"].startswith("http://127.0.0.1:")
