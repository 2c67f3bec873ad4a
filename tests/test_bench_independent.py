"""The blind-generator benchmark's own counting and plumbing (the generators have their own tests)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_independent as bi  # noqa: E402


def _blob(a: np.ndarray, r: int, c: int, n: int, pond: bool) -> None:
    a[r:r + n, c:c + n] = 1
    if pond:
        a[r + n // 2, c + n // 2] = 2


def test_site_count_links_within_the_site_distance_and_needs_a_pond():
    a = np.zeros((200, 200), np.uint8)
    _blob(a, 10, 10, 8, True)
    _blob(a, 10, 23, 8, False)     # 50 m from the first: the same site
    _blob(a, 100, 100, 8, True)    # far away: a second site
    _blob(a, 170, 10, 8, False)    # no pond: not a site
    _blob(a, 170, 150, 2, True)    # 400 m² < min_footprint_m2 (1000): not a site
    assert bi.site_count(a) == 2
    assert bi.site_count(np.zeros((10, 10), np.uint8)) == 0
    # as in `minewatch run`: a one-pixel pond (100 m², DetectConfig.min_pond_area_m2) makes a site, while cleared
    # land needs DetectConfig.min_area_m2 (200 m²) per polygon
    b = np.zeros((60, 60), np.uint8)
    _blob(b, 10, 10, 8, True)
    assert bi.site_count(b) == 1


def test_tally_scores_footprint_iou_and_pond_f1():
    t = bi.Tally()
    y = np.array([[1, 1, 2, 0]], np.uint8)
    p = np.array([[1, 0, 2, 1]], np.uint8)
    t.add(y, p)
    r = t.result()
    assert r["iou"] == pytest.approx(2 / 4)        # tp 2 (1, 2), fp 1, fn 1
    assert r["pond_f1"] == pytest.approx(1.0)


def test_mean_interval_resamples_scenes_and_brackets_the_mean():
    # two rows; each scene's counts are (tp, fp, fn, pond tp, pond fp, pond fn)
    same = [[8, 1, 1, 4, 0, 0]] * 5                       # every scene alike: no spread
    (lo, hi), (flo, fhi) = bi.mean_interval([same, same])
    assert lo == pytest.approx(0.8) and hi == pytest.approx(0.8) and flo == fhi == pytest.approx(1.0)
    mixed = [[9, 0, 1, 2, 1, 1], [1, 5, 4, 0, 2, 2], [6, 2, 2, 1, 0, 1], [3, 3, 4, 2, 2, 0]]
    (lo, hi), _ = bi.mean_interval([mixed, same], n=4000)
    pooled = bi._metrics(np.sum(mixed, axis=0))[0]
    assert lo < (pooled + 0.8) / 2 < hi and hi - lo > 0.05  # scene-to-scene spread gives a real width
    assert bi.mean_interval([mixed, same]) == bi.mean_interval([mixed, same])  # seeded: reproducible


def test_bench_runs_end_to_end_on_a_blind_generator(tmp_path, capsys):
    out, card = tmp_path / "r.json", tmp_path / "CARD.md"
    card.write_text("# card\n\n## Limits\n\n- none\n")
    args = ["--generators", "gen_c", "--variants", "base", "--scenes", "1", "--size", "96",
            "--series", "1", "--seasons", "2", "--fused-views", "4", "--json", str(out), "--write-card", str(card)]
    assert bi.main(args) == 0
    md = card.read_text()
    assert md.index(bi.CARD_BEGIN) < md.index("| gen_c:base |") < md.index(bi.CARD_END) < md.index("## Limits")
    assert bi.main(args) == 0  # a second run replaces the block
    assert card.read_text().count(bi.CARD_BEGIN) == 1
    rep = json.loads(out.read_text())["gen_c:base"]
    assert "fused@4:shipped" in md
    for key in ("rules:rules", "model:shipped", "fused:shipped", "fused@4:shipped"):
        assert 0.0 <= rep[key]["iou"] <= 1.0 and 0.0 <= rep[key]["pond_f1"] <= 1.0
    assert "growth" in rep and "truth_area_pct" in rep["growth"]
    assert "| gen_c:base |" in capsys.readouterr().out


def test_jobs_give_the_same_figures_and_a_held_out_mean(tmp_path, capsys):
    base = ["--generators", "gen_c", "gen_e", "--variants", "base", "--scenes", "1", "--size", "96",
            "--trained-on", "shipped=gen_c"]
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert bi.main(base + ["--json", str(one)]) == 0
    assert bi.main(base + ["--jobs", "2", "--json", str(two)]) == 0
    assert json.loads(one.read_text()) == json.loads(two.read_text())
    rep = json.loads(one.read_text())
    printed = capsys.readouterr().out.splitlines()
    mean_row = [ln for ln in printed if ln.startswith("| mean of held-out rows")][-1]
    cells = [c.strip() for c in mean_row.strip("|").split("|")][1:]
    # rules: both rows are held out; shipped model/fused: gen_c is marked trained-on, so only gen_e counts
    assert cells[0].endswith("(2)") and cells[1].endswith("(1)") and cells[2].endswith("(1)")
    iv = [ln for ln in printed if ln.startswith("| 95 % interval of that mean")]
    assert iv and len(iv[-1].strip("|").split("|")) == len(cells) + 1
    assert len(rep["gen_e:base"]["rules:rules"]["scene_counts"]) == 1
    assert cells[2].startswith(f"{rep['gen_e:base']['fused:shipped']['iou']:.3f}")


def test_train_weights_names_a_missing_generator():
    import train_weights

    with pytest.raises(SystemExit, match="no independent generator 'nope'"):
        train_weights.independent_generator("nope")


@pytest.mark.parametrize("argv, says", [
    (["--generator", "gen_a:many"], "use NAME:N[:SIZE]"),
    (["--generator", "gen_a:3:8"], "SIZE >= 64"),
    (["--lr", "-1"], "lr and class_weights must be > 0"),  # training settings are checked before any data is built
    (["--crop", "0"], "positive multiple of 16"),
    (["--mine-at", "0.5,x"], "could not convert string to float"),
    (["--train-seed", "-3"], "seed >= 0"),
    (["--crop", "256", "--size", "192"], "larger than the smallest training scene"),
])
def test_train_weights_refuses_a_bad_generator_spec(argv, says, tmp_path, capsys):
    import train_weights

    with pytest.raises(SystemExit) as exc:
        train_weights.main(["--seeds", "0:1", "--out", str(tmp_path / "out" / "w.pt"), *argv])
    assert exc.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before anything is written


@pytest.mark.parametrize("td, says", [
    ({"independent_generators": {"gen_a": {}}}, None),
    ({"independent_generators": {"gen_b": {}}}, "predates recording"),
    ({"independent_generators": {"gen_b": {}}, "earthlib": None}, "parametric soils"),
    ({"independent_generators": {"gen_b": {}}, "earthlib": "1.1.0"}, "earthlib 1.1.0 soils"),
])
def test_card_says_which_soils_gen_b_trained_on(td, says):
    import train_weights

    note = train_weights._earthlib_note({"training_data": td})
    assert (note == "") if says is None else (says in note)


def test_train_weights_records_the_installed_earthlib():
    import train_weights

    assert train_weights._installed("no-such-distribution-xyz") is None
    assert train_weights._installed("numpy") == np.__version__
