"""benchmarks/bench_run_independent.py: a blind generator's series through the real `minewatch run`."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import bench_run_independent as br  # noqa: E402


def test_run_reproduces_the_in_memory_detection(tmp_path, capsys):
    """COGs + STAC items + `minewatch run` (compositing, tiles with a halo, polygons, sites) give the footprint the
    same scenes give classified in memory, within polygon clean-up, on a series that has one."""
    out = tmp_path / "r.json"
    assert br.main(["--generators", "gen_c", "--variants", "base", "--size", "192", "--seasons", "2",
                    "--series", "1", "--method", "rules", "--tile-px", "128", "--json", str(out)]) == 0
    r = json.loads(out.read_text())["gen_c:base"]
    (m0, ms0), _ = r["memory"]
    (a0, s0), _ = r["run"]
    assert m0 > 10_000 and r["truth"][0][0] > 10_000
    assert a0 == pytest.approx(m0, rel=0.05) and s0 == ms0
    # SWIR on the generator's 10 m grid: the run reads exactly the in-memory input
    assert br.main(["--generators", "gen_c", "--variants", "base", "--size", "192", "--seasons", "2", "--series", "1",
                    "--method", "rules", "--tile-px", "128", "--swir-m", "10", "--json", str(out)]) == 0
    r = json.loads(out.read_text())["gen_c:base"]
    assert r["run"][0][0] == pytest.approx(r["memory"][0][0], rel=0.02)
    assert "| gen_c:base |" in capsys.readouterr().out
    assert r["doubtful_seasons"] == [0, 2] and r["rules_disagree_seasons"] == 0  # the rules check neither


def test_table_goes_into_the_card(tmp_path):
    card = tmp_path / "CARD.md"
    card.write_text("# card\n\n## Limits\n\n- none\n")
    args = ["--generators", "gen_c", "--variants", "base", "--size", "96", "--seasons", "2", "--series", "1",
            "--method", "rules", "--write-card", str(card)]
    assert br.main(args) == 0 and br.main(args) == 0
    md = card.read_text()
    assert md.count(br.CARD_BEGIN) == 1 and md.index("| gen_c:base |") < md.index(br.CARD_END) < md.index("## Limits")


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit) as exc:
        br.main(["--seasons", "1"])
    assert exc.value.code == 2
