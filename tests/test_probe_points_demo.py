"""Point labels, the demo folder and interruptions, as an outside tester found them: a radius of 100 km took all
memory, rows with blank coordinates and a second coordinate pair were used silently, a demo of another seed replaced
the archive under a finished run, and an interrupted `train` promised a resume it cannot do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geo.cli.main import _interrupted, main
from geo.errors import ConfigError, CrsError, UsageError
from models.point_eval import read_points


def _cli(args, capsys):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["-q", *map(str, args)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return exc.value.code, err.strip()


def _csv(tmp_path, text, name="p.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_a_point_radius_of_kilometres_is_refused_before_any_work(tmp_path, capsys):
    pools = _csv(tmp_path, "lon,lat\n98.33,25.66\n")
    code, err = _cli(["evaluate", "--stac", tmp_path / "none.json", "--datetime", "2024-11-01/2025-04-30",
                      "--pools", pools, "--point-radius-m", "100000"], capsys)
    assert code == 2 and "over 500 m" in err


def test_a_scene_table_with_a_radius_of_kilometres_is_refused(tmp_path):
    from models.scene_config import parse_scene

    (tmp_path / "l.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    table = {"stac": "earth-search", "datetime": "2024-11-01/2025-04-30", "labels": "l.geojson",
             "bbox": [98.3, 25.6, 98.32, 25.62], "point_radius_m": 1e9}
    with pytest.raises(ConfigError, match="over 500 m: a point label stands for one pool"):
        parse_scene(table, "scenes[0]", lambda p: tmp_path / p)


def test_points_with_two_coordinate_pairs_or_blank_coordinates_are_refused(tmp_path):
    both = _csv(tmp_path, "x,y,lon,lat\n98.35,25.66,98.33,25.66\n", "both.csv")  # x was lon + 0.02: 2 km off
    with pytest.raises(UsageError, match="several coordinate column pairs .*--xy-cols"):
        read_points(both, "pool")
    assert len(read_points(both, "pool", xy_cols=("lon", "lat")).points) == 1
    blank = _csv(tmp_path, "lon,lat\n98.33,25.66\n,25.66\nnan,nan\n", "blank.csv")
    with pytest.raises(UsageError, match="2 row\\(s\\) have a blank, NaN or infinite coordinate .*data row 2"):
        read_points(blank, "pool")


def test_swapped_point_coordinates_are_named_as_swapped(tmp_path):
    swapped = _csv(tmp_path, "lon,lat\n25.66,98.33\n")
    with pytest.raises(CrsError, match="look swapped"):
        read_points(swapped, "pool")


def test_repeated_points_are_scored_once_and_a_file_cannot_be_both_roles(tmp_path, capsys, caplog):
    pts = _csv(tmp_path, "lon,lat\n98.33,25.66\n98.33,25.66\n98.34,25.66\n")
    with caplog.at_level("WARNING"):
        assert len(read_points(pts, "pool").points) == 2
    assert "1 point(s) repeat an earlier point" in caplog.text
    for extra in (["--negatives", pts], ["--pools", pts]):
        code, err = _cli(["evaluate", "--stac", tmp_path / "none.json", "--datetime", "2024-11-01/2025-04-30",
                          "--pools", pts, *extra], capsys)
        assert code == 2 and ("as --pools and as --negatives" in err or "given twice as --pools" in err), err


def _fake_demo(out: Path, seed: int, aoi: Path | None = None):
    (out / "demo-data").mkdir(parents=True)
    (out / "demo-data" / "demo.json").write_text(json.dumps({"seed": seed}))
    (out / "manifest.json").write_text(json.dumps({"inputs": {"aoi_path": str(aoi or out / "demo-data" / "aoi.geojson")}}))


def test_a_demo_of_another_seed_or_a_foreign_run_is_refused_before_simulating(tmp_path, capsys):
    out = tmp_path / "demo"
    _fake_demo(out, 7)
    code, err = _cli(["demo", "--out", out, "--seed", "8", "--sync"], capsys)
    assert code == 2 and "holds the demo of seed 7" in err and "--seed 7" in err
    assert json.loads((out / "demo-data" / "demo.json").read_text()) == {"seed": 7}  # its archive untouched
    assert sorted(p.name for p in (out / "demo-data").iterdir()) == ["demo.json"]
    other = tmp_path / "mine"
    _fake_demo(other, 7, aoi=tmp_path / "my_aoi.geojson")
    code, err = _cli(["demo", "--out", other, "--sync"], capsys)
    assert code == 2 and "holds a run of another AOI" in err
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "letter.txt").write_text("mine")
    code, err = _cli(["demo", "--out", docs, "--sync"], capsys)
    assert code == 2 and "already holds files and no minewatch demo" in err
    assert [p.name for p in docs.iterdir()] == ["letter.txt"]


def test_an_interrupted_train_does_not_promise_a_resume(capsys):
    assert _interrupted(KeyboardInterrupt(), "train") == 130
    err = capsys.readouterr().err
    assert "keeps no checkpoint" in err and "resume" not in err
    _interrupted(KeyboardInterrupt(), "run")
    assert "rerun the same command to resume" in capsys.readouterr().err


def test_a_bad_unlabelled_value_is_named_with_what_the_key_takes(tmp_path):
    from models.scene_config import parse_scene

    (tmp_path / "l.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    table = {"stac": "earth-search", "datetime": "2024-11-01/2025-04-30", "labels": "l.geojson",
             "bbox": [98.3, 25.6, 98.32, 25.62], "unlabelled": 7}
    with pytest.raises(ConfigError, match="'background' .* or 'ignore' .*, got 7"):
        parse_scene(table, "scenes[0]", lambda p: tmp_path / p)
