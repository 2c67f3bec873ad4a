"""Retraining users can use: `minewatch run`/`demo` take `--weights` and `[detect] weights`; bad weights fail before
any network (exit 5, one `Error:` line) on every executor; the manifest records the weights; changed weights rerun
the tasks they shape.

A tiny simulated archive (one dry season, 120×120 px AOI, tiles of 64 px: 4 tasks) and tiny U-Nets saved with the
project's own ``save_model`` keep this fast.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from geo.cli.main import main
from geo.sim.demo import write_demo_dataset
from geo.sim.scene import SimConfig
from tests.conftest import REPO

TINY = SimConfig(seed=3, width=120, height=120, margin=10, start_year=2021, end_year=2023, acquisitions_per_season=1,
                 initial_sites=2, new_sites_per_season=0, abandoned_sites=0, site_gap_m=100.0, clear_probability=1.0)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("weights-archive"), config=TINY)


def tiny_weights(path: Path, seed: int, version: str = "0.0.1-test") -> Path:
    """A valid, tiny U-Net (random weights from ``seed``) and its card at ``path``."""
    import torch

    from models.infer import ModelCard, save_model
    from models.unet import UNet, UNetConfig

    torch.manual_seed(seed)
    cfg = UNetConfig(widths=(8, 12), unshuffle=1)
    card = ModelCard("tiny", version, ("B02", "B03", "B04", "B08", "B11", "B12"), (0.1,) * 6, (0.05,) * 6,
                     {0: "background", 1: "cleared_land", 2: "leaching_pond"}, cfg.to_dict())
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(UNet(cfg).eval(), card, path)
    return path


def one_line_error(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    return lines[0]


def cli(args, capsys) -> tuple[int, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["-q", *map(str, args)])
    return exc.value.code, capsys.readouterr().err


def run_args(ds, out: Path, *extra) -> list:
    return ["run", "--aoi", ds.aoi_path, "--start", "2023", "--end", "2023", "--out", out,
            "--stac-url", ds.items_path, "--tile-px", "64", "--max-cloud", "100", *extra]


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_config_weights_relative_to_run_file_and_flag_overrides(ds, tmp_path, capsys):
    from models.infer import sha256

    a = tiny_weights(tmp_path / "cfg" / "w" / "a.pt", seed=1, version="1.0.0-a")
    b = tiny_weights(tmp_path / "elsewhere" / "b.pt", seed=2, version="1.0.0-b")
    cfg = tmp_path / "cfg" / "run.toml"
    cfg.write_text('[detect]\nmethod = "model"\nweights = "w/a.pt"\n')
    code, err = cli([*run_args(ds, tmp_path / "r1", "--sync"), "--config", cfg], capsys)
    assert code == 0, err
    m = manifest(tmp_path / "r1")
    assert m["weights"]["path"] == str(a.absolute())
    assert m["weights"]["sha256"] == sha256(a) and m["weights"]["version"] == "1.0.0-a"
    assert m["parameters"]["detect"]["weights"] == str(a.absolute())
    # the flag wins over the file
    code, err = cli([*run_args(ds, tmp_path / "r2", "--sync"), "--config", cfg, "--weights", b], capsys)
    assert code == 0, err
    m = manifest(tmp_path / "r2")
    assert (m["weights"]["path"], m["weights"]["sha256"], m["weights"]["version"]) == (str(b.absolute()), sha256(b),
                                                                                        "1.0.0-b")
    # the rules need no weights: none recorded
    code, err = cli([*run_args(ds, tmp_path / "r3", "--sync"), "--method", "rules"], capsys)
    assert code == 0, err
    assert manifest(tmp_path / "r3")["weights"] is None


def test_changed_weights_rerun_tasks_same_weights_skip(ds, tmp_path, capsys, caplog):
    w = tiny_weights(tmp_path / "w.pt", seed=1)
    out = tmp_path / "run"
    code, err = cli([*run_args(ds, out, "--sync", "--weights", w)], capsys)
    assert code == 0, err
    first = manifest(out)
    n = first["tasks"]["total"]
    assert n >= 2 and first["tasks"]["run"] == n
    code, _ = cli([*run_args(ds, out, "--sync", "--weights", w)], capsys)
    assert code == 0 and manifest(out)["tasks"] == {"total": n, "run": 0, "skipped": n}
    # same path, new content (a retrained model saved over it): every task reruns, the manifest says which weights
    tiny_weights(w, seed=2)
    with caplog.at_level(logging.WARNING, logger="geo.run.pipeline"):
        code, _ = cli([*run_args(ds, out, "--sync", "--weights", w)], capsys)
    assert "model weights differ from the last run" in caplog.text
    m = manifest(out)
    assert code == 0 and m["tasks"] == {"total": n, "run": n, "skipped": 0}
    assert m["weights"]["sha256"] != first["weights"]["sha256"]
    # a copy of the same weights under another name is no change
    shutil.copy(w, tmp_path / "copy.pt")
    shutil.copy(w.with_suffix(".json"), tmp_path / "copy.json")
    code, _ = cli([*run_args(ds, out, "--sync", "--weights", tmp_path / "copy.pt")], capsys)
    assert code == 0 and manifest(out)["tasks"]["run"] == 0


def test_run_file_views_recorded_and_a_change_reruns_the_tasks(ds, tmp_path, capsys):
    """[detect] views (test-time flips) is in the manifest; changing it redoes every model task."""
    w = tiny_weights(tmp_path / "w.pt", seed=1)
    out = tmp_path / "run"
    code, err = cli([*run_args(ds, out, "--sync", "--weights", w)], capsys)
    assert code == 0, err
    n = manifest(out)["tasks"]["total"]
    assert manifest(out)["parameters"]["detect"]["views"] == 1
    cfg = tmp_path / "run.toml"
    cfg.write_text("[detect]\nviews = 4\n")
    code, err = cli([*run_args(ds, out, "--sync", "--weights", w), "--config", cfg], capsys)
    m = manifest(out)
    assert code == 0 and m["parameters"]["detect"]["views"] == 4, err
    assert m["tasks"] == {"total": n, "run": n, "skipped": 0}
    code, _ = cli([*run_args(ds, out, "--sync", "--weights", w), "--config", cfg], capsys)
    assert code == 0 and manifest(out)["tasks"]["run"] == 0


def _bad_weights(tmp_path: Path) -> dict[str, Path]:
    good = tiny_weights(tmp_path / "good" / "w.pt", seed=1)
    corrupt = tmp_path / "corrupt" / "w.pt"
    corrupt.parent.mkdir()
    corrupt.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    card = json.loads(good.with_suffix(".json").read_text())
    import hashlib

    card["weights_sha256"] = hashlib.sha256(corrupt.read_bytes()).hexdigest()
    corrupt.with_suffix(".json").write_text(json.dumps(card))
    nocard = tmp_path / "nocard" / "w.pt"
    nocard.parent.mkdir()
    shutil.copy(good, nocard)
    return {"missing": tmp_path / "none.pt", "corrupt": corrupt, "no-card": nocard}


@pytest.mark.parametrize("executor", ["--sync", "--workers=2"])
def test_bad_weights_fail_before_any_network(ds, tmp_path, capsys, executor):
    """Exit 5 with one line, against a catalogue that is not even listening: the weights are checked first."""
    dead = "http://127.0.0.1:9/stac"  # nothing listens on the discard port: a search would exit 3
    for name, path in _bad_weights(tmp_path).items():
        out = tmp_path / f"run-{name}"
        args = ["run", "--aoi", ds.aoi_path, "--start", "2023", "--end", "2023", "--out", out, "--stac-url", dead,
                "--tile-px", "64", executor, "--weights", path]
        code, err = cli(args, capsys)
        line = one_line_error(err)
        assert code == 5, (name, line)
        assert str(path.name) in line or "card" in line, line
        assert not out.exists(), "a refused run creates no run folder"


def test_bad_weights_in_run_file_fail_with_several_dask_tasks(ds, tmp_path):
    """Through a subprocess on Dask (several tasks), the run file's bad weights: exit 5, one line, nothing run."""
    bad = _bad_weights(tmp_path)["corrupt"]
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[detect]\nweights = "{bad.relative_to(tmp_path)}"\n')
    res = subprocess.run([sys.executable, "-m", "geo", "-q", *map(str, run_args(ds, tmp_path / "run", "--workers",
                                                                                "2", "--config", cfg))],
                         capture_output=True, text=True, timeout=180, cwd=REPO)
    line = one_line_error(res.stderr)
    assert res.returncode == 5 and "cannot load" in line, line
    assert not (tmp_path / "run").exists()


def test_demo_bad_weights_fail_before_simulating(tmp_path, capsys):
    code, err = cli(["demo", "--out", tmp_path / "demo", "--weights", tmp_path / "none.pt", "--sync"], capsys)
    line = one_line_error(err)
    assert code == 5 and "not found" in line
    assert not (tmp_path / "demo" / "demo-data").exists()
