"""The command line: bad input gives one 'Error:' line, a documented exit code, and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from geo.cli.main import main
from tests.conftest import REPO


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    return exc.value.code, err


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    return lines[0]


@pytest.mark.parametrize("args,needle", [
    (["run", "--aoi", "missing.geojson", "--start", "2020", "--end", "2021", "--out", "OUT"], "does not exist"),
    (["run", "--aoi", str(REPO / "aoi/momauk.geojson"), "--start", "2022", "--end", "2020", "--out", "OUT"], "before start"),
    (["run", "--aoi", str(REPO / "aoi/momauk.geojson"), "--start", "20x", "--end", "2021", "--out", "OUT"], "--start"),
    (["run", "--aoi", str(REPO / "aoi/momauk.geojson"), "--start", "2020", "--end", "2099", "--out", "OUT"], "future"),
    (["run", "--start", "2020", "--end", "2021", "--out", "OUT"], "--aoi"),
    (["run", "--aoi", str(REPO / "aoi/momauk.geojson"), "--start", "2020", "--end", "2021", "--out", "OUT",
      "--max-cloud", "150"], "--max-cloud"),
    (["nosuchcommand"], "nosuchcommand"),
])
def test_bad_cli_input_exit_2(tmp_path, capsys, args, needle):
    args = [a.replace("OUT", str(tmp_path / "run")) for a in args]
    code, err = run_cli(args, capsys)
    assert code == 2
    assert needle in _one_line_error(err)


def test_unreadable_geojson_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.geojson"
    bad.write_bytes(b"\xff\xfe\x00garbage{")
    code, err = run_cli(["run", "--aoi", str(bad), "--start", "2020", "--end", "2021", "--out", str(tmp_path / "o")], capsys)
    line = _one_line_error(err)
    assert code == 2 and ("cannot be read" in line or "not valid JSON" in line)


def test_bad_config_exit_2(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text("[search]\ncolour = 'red'\n")
    code, err = run_cli(["run", "--aoi", str(REPO / "aoi/momauk.geojson"), "--start", "2020", "--end", "2021",
                         "--out", str(tmp_path / "o"), "--config", str(cfg)], capsys)
    assert code == 2 and "unknown key" in _one_line_error(err)


def test_existing_run_of_other_aoi_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"tool": "minewatch", "inputs": {"aoi_sha256": "0" * 64,
                                                                   "aoi_path": "other.geojson"}}))
    code, err = run_cli(["run", "--aoi", str(REPO / "aoi/momauk.geojson"), "--start", "2020", "--end", "2021",
                         "--out", str(out)], capsys)
    assert code == 7 and "different AOI" in _one_line_error(err)


def test_console_script_runs_as_module():
    res = subprocess.run([sys.executable, "-m", "geo", "--version"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "minewatch" in res.stdout


@pytest.mark.parametrize("argv", [["demo", "--seed", "-5", "--sync"], ["sample", ".", "--out", "s.gpkg", "--seed", "-1"]])
def test_negative_seeds_are_usage_errors(argv, tmp_path, monkeypatch):
    """A negative seed was a numpy traceback (exit 1) after the demo had started."""
    monkeypatch.chdir(tmp_path)
    from click.testing import CliRunner

    from geo.cli.main import cli

    r = CliRunner().invoke(cli, [argv[0], "--out", str(tmp_path / "o"), *argv[1:]] if argv[0] == "demo" else argv)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "--seed" in r.output and "is not in the range" in r.output
    assert not (tmp_path / "o").exists()
