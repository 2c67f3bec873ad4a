"""An output file that cannot be written is refused before any work: one line, exit 7 (OutputError), nothing computed.
Before, `evaluate --json`, `search --json/--csv`, `detect --out/--raster` and `train --out` found out only at the end
(evaluate: a Python traceback after scoring; train: after the whole training), and `evaluate --sim-seeds 5:3` scored
no scene and exited 0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from affine import Affine

from geo.bands import ANALYSIS_BANDS
from geo.cli.main import cli

REPO = Path(__file__).resolve().parents[1]


def _image(path: Path) -> Path:
    data = np.random.default_rng(0).uniform(300, 3000, (6, 32, 32)).astype("uint16")
    with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=6, dtype="uint16", crs="EPSG:32647",
                       transform=Affine(10, 0, 431000, 0, -10, 2840000)) as dst:
        dst.write(data)
        for i, b in enumerate(ANALYSIS_BANDS):
            dst.set_band_description(i + 1, b)
    return path


def _one_line(r, code: int, *needles: str) -> str:
    assert r.exit_code == code, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip() and not ln.startswith("20")]  # log lines
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


CASES = {
    "detect --out": lambda t, bad: ["detect", str(_image(t / "img.tif")), "--method", "rules", "--out", bad],
    "detect --raster": lambda t, bad: ["detect", str(_image(t / "img.tif")), "--method", "rules",
                                       "--out", str(t / "ok.gpkg"), "--raster", bad],
    "evaluate --json": lambda t, bad: ["evaluate", "--sim-seeds", "1:2", "--method", "rules", "--json", bad],
    "evaluate --csv": lambda t, bad: ["evaluate", "--stac", "earth-search", "--datetime", "2023-11/2024-04",
                                      "--pools", str(t / "none.csv"), "--csv", bad],
    "search --json": lambda t, bad: ["search", "--aoi", str(next((REPO / "aoi").glob("*.geojson"))), "--period",
                                     "2023-11/2024-04", "--provider", str(t / "items.json"), "--json", bad],
    "train --out": lambda t, bad: ["train", "--config", str(_toml(t)), "--out", bad],
    "sample --out": lambda t, bad: ["sample", str(t), "--out", bad],
}


def _toml(t: Path) -> Path:
    (t / "t.toml").write_text('[train]\nsteps = 1\ncrop = 64\n[simulator]\nseeds = [1, 2]\nsize = 64\n')
    return t / "t.toml"


@pytest.mark.parametrize("case", list(CASES))
def test_unwritable_output_is_refused_before_any_work(case, tmp_path, monkeypatch):
    import geo.cli.detect as cd
    import models.evaluate as me
    import models.train_job as mt

    monkeypatch.setattr(mt, "train", lambda *a, **k: pytest.fail("trained although the output cannot be written"))
    monkeypatch.setattr(me, "evaluate_samples", lambda *a, **k: pytest.fail("scored although --json cannot be written"))
    monkeypatch.setattr(cd, "detect_image", lambda *a, **k: pytest.fail("detected although the output cannot be written"))
    (tmp_path / "file").write_text("a file, not a folder")
    suffix = {"detect --raster": ".tif", "train --out": ".pt", "sample --out": ".gpkg"}.get(case, ".json")
    bad = str(tmp_path / "file" / f"out{suffix}")  # its folder is a file: cannot be made, even by root
    says = "cannot write output" if case == "train --out" else f"cannot write {case.split()[1]}"
    _one_line(CliRunner().invoke(cli, ["-q", *CASES[case](tmp_path, bad)]), 7, says, bad)


def test_evaluate_refuses_an_empty_seed_range():
    for seeds in ("5:3", "4:4", "-2:3"):
        _one_line(CliRunner().invoke(cli, ["evaluate", "--sim-seeds", seeds, "--method", "rules"]), 2,
                  "0 <= START < STOP")


def test_output_folders_are_made_when_missing(tmp_path):
    from geo.fsutil import check_writable

    check_writable(tmp_path / "a" / "b" / "x.json", "--json")
    assert not (tmp_path / "a").exists(), "the check creates nothing (a refused command leaves no folder behind)"
    assert not list(tmp_path.glob(".*partial*")), "the writability probe leaves nothing behind"
    r = CliRunner().invoke(cli, ["-q", "evaluate", "--sim-seeds", "1:2", "--sim-size", "64", "--method", "rules",
                                 "--json", str(tmp_path / "new" / "dir" / "rep.json")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "new" / "dir" / "rep.json").stat().st_size > 0


def test_search_writes_into_a_new_folder(tmp_path):
    """search --json/--csv into a folder that does not exist yet: made (it was an OSError after the search)."""
    from geo.sim.demo import write_demo_dataset

    ds = write_demo_dataset(tmp_path / "demo", seed=7)
    out = tmp_path / "new" / "dir"
    r = CliRunner().invoke(cli, ["-q", "search", "--aoi", str(ds.aoi_path), "--period", "2023-11/2024-04",
                                 "--provider", str(ds.items_path), "--json", str(out / "s.json"), "--csv",
                                 str(out / "s.csv")])
    assert r.exit_code == 0, r.output
    assert (out / "s.json").stat().st_size > 0 and (out / "s.csv").read_text().startswith("id,")



@pytest.mark.parametrize("argv", [
    ["run", "--aoi", str(REPO / "aoi" / "momauk.geojson"), "--start", "2023", "--end", "2023", "--sync"],
    ["run", "--aoi", str(REPO / "aoi" / "momauk.geojson"), "--start", "2023", "--end", "2023"],  # the Dask default
    ["evaluate", "--stac", "earth-search", "--datetime", "2023-11/2024-04", "--pools", "p.csv"],
])
def test_an_unwritable_cache_dir_is_refused_before_any_work(argv, tmp_path, monkeypatch):
    """--cache-dir under a file: `minewatch run` failed in its first task with 'this is a bug' (exit 1)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("a file")
    out = ["--out", str(tmp_path / "run")] if argv[0] == "run" else []
    r = CliRunner().invoke(cli, ["-q", *argv, *out, "--cache-dir", str(tmp_path / "file" / "cache")])
    _one_line(r, 7, "cannot write --cache-dir", "Not a directory")
    assert not (tmp_path / "run").exists()


def test_the_window_cache_reports_an_unwritable_folder_as_an_output_error(tmp_path):
    """On a remote worker the folder is only met by the task: an OutputError (exit 7 on every executor), not a bug."""
    from geo.errors import OutputError
    from geo.sources.cache import WindowCache

    (tmp_path / "file").write_text("a file")
    with pytest.raises(OutputError, match="cannot write the window cache .* choose a writable --cache-dir"):
        WindowCache(tmp_path / "file" / "cache").put("abcdef0123", np.zeros((2, 2), np.uint16))
