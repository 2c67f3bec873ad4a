"""Retraining users can use: progress lines and a held-out validation score in the card, a fine-tune's card records
its parent and every setting, and neither `minewatch train` nor scripts/train_weights.py replaces the shipped
weights unless told to. Tiny models and a few small simulator scenes keep it fast."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from pathlib import Path

import pytest

from geo.cli.main import main
from models.infer import DEFAULT_WEIGHTS, sha256
from tests.conftest import REPO

TRAIN = '[train]\nsteps = 4\nbatch_size = 2\ncrop = 32\nwidths = [8, 12, 16]\nthreads = 1\nlog_every = 2\n'


def cli(args, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([*map(str, args)])
    cap = capsys.readouterr()
    return exc.value.code, cap.out, cap.err


def test_progress_validation_and_fine_tune_parent(tmp_path, capsys, caplog):
    (tmp_path / "base.toml").write_text('output = "base/base.pt"\ninit = "none"\n[simulator]\nseeds = [900, 906]\n'
                                        'size = 64\n' + TRAIN)
    with caplog.at_level(logging.INFO, logger="models.train"):
        code, out, err = cli(["-q", "train", "--config", tmp_path / "base.toml"], capsys)
    assert code == 0, err
    steps = [int(m.group(1)) for r in caplog.records if (m := re.match(r"step (\d+)/4 loss [0-9.]+", r.getMessage()))]
    assert steps == [1, 2, 4], [r.getMessage() for r in caplog.records]
    base = json.loads((tmp_path / "base" / "base.json").read_text())
    val = base["validation"]  # 6 samples: 0.2 held out by default -> 1 scene scored, 5 trained on
    assert val["n_samples"] == 1 and len(val["held_out_samples"]) == 1 and base["training"]["n_samples"] == 5
    for name in ("background", "cleared_land", "leaching_pond"):
        assert set(val["classes"][name]) >= {"iou", "f1", "precision", "recall", "support"}
    assert sum(sum(r) for r in val["confusion_matrix"]["counts"]) == 64 * 64  # every pixel of the held-out scene
    assert "validation (1 held-out sample(s)): IoU background" in out
    assert "parent" not in base

    # fine-tune from it: the card names the parent and keeps every setting
    (tmp_path / "ft.toml").write_text('output = "ft/ft.pt"\ninit = "base/base.pt"\n[simulator]\nseeds = [910, 912]\n'
                                      'size = 64\n' + TRAIN.replace("steps = 4", "steps = 2").replace(
                                          "widths = [8, 12, 16]\n", "") + "version = \"1.0.0-ft\"\n")
    code, out, err = cli(["-q", "train", "--config", tmp_path / "ft.toml", "--val-fraction", "0.5"], capsys)
    assert code == 0, err
    ft = json.loads((tmp_path / "ft" / "ft.json").read_text())
    assert ft["parent"] == {"name": base["name"], "version": base["version"],
                            "weights_sha256": sha256(tmp_path / "base" / "base.pt"),
                            "path": str(tmp_path / "base" / "base.pt")}
    assert ft["version"] == "1.0.0-ft" and ft["architecture"] == base["architecture"]
    assert ft["normalization"] == base["normalization"]  # a fine-tune keeps its parent's normalisation
    cfg = ft["training"]["config"]
    assert cfg["steps"] == 2 and cfg["val_fraction"] == 0.5 and cfg["log_every"] == 2 and cfg["seed"] == 0
    data = ft["training_data"]
    assert data["simulator_seeds"] == [910, 912] and data["simulator_size"] == 64 and data["init"].endswith("base.pt")
    assert ft["validation"]["n_samples"] == 1 and ft["training"]["n_samples"] == 1


def test_train_refuses_to_overwrite_shipped_weights(tmp_path, capsys):
    before = sha256(DEFAULT_WEIGHTS)
    (tmp_path / "t.toml").write_text('init = "none"\n[simulator]\nseeds = [900, 901]\nsize = 64\n' + TRAIN)
    code, _, err = cli(["-q", "train", "--config", tmp_path / "t.toml", "--out", DEFAULT_WEIGHTS], capsys)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("Error: ") and "shipped weights" in lines[0] and "--overwrite-shipped" in lines[0]
    assert sha256(DEFAULT_WEIGHTS) == before
    # the same through the config's output, relative to the config file
    rel = Path("..") / DEFAULT_WEIGHTS.relative_to(REPO)
    cfg_dir = REPO / "scripts"
    (tmp_path / "t2.toml").write_text(f'output = "{(cfg_dir / rel).resolve()}"\ninit = "none"\n' + TRAIN)
    code, _, err = cli(["-q", "train", "--config", tmp_path / "t2.toml"], capsys)
    assert code == 2 and "shipped weights" in err
    assert sha256(DEFAULT_WEIGHTS) == before


def test_train_on_a_missing_gpu_is_one_line_before_any_data(tmp_path, capsys):
    """``device = "cuda"`` in ``[train]`` on a machine without a CUDA GPU: exit 2, one line, nothing built or written;
    ``device = "cpu"`` is accepted (the card records it)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    (tmp_path / "t.toml").write_text('init = "none"\n[simulator]\nseeds = [900, 901]\nsize = 64\n' + TRAIN
                                     + 'device = "cuda"\n')
    code, _, err = cli(["-q", "train", "--config", tmp_path / "t.toml", "--out", tmp_path / "m.pt"], capsys)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "no CUDA GPU" in lines[0] and not (tmp_path / "m.pt").exists()
    (tmp_path / "t.toml").write_text('init = "none"\n[simulator]\nseeds = [900, 901]\nsize = 64\n' + TRAIN
                                     + 'device = "cpu"\n')
    code, _, err = cli(["-q", "train", "--config", tmp_path / "t.toml", "--out", tmp_path / "m.pt"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "m.json").read_text())["training"]["config"]["device"] == "cpu"


def _script():
    spec = importlib.util.spec_from_file_location("train_weights_script", REPO / "scripts" / "train_weights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_train_weights_script_writes_elsewhere_by_default():
    mod = _script()
    out = mod.output_path(None, "1.2.0", False)
    assert out == Path("runs/weights/unet_1.2.0.pt") and out.resolve() != DEFAULT_WEIGHTS.resolve()
    assert mod.output_path(Path("/tmp/m.pt"), "1.2.0", False) == Path("/tmp/m.pt")
    assert mod.output_path(None, "1.2.0", True) == DEFAULT_WEIGHTS  # told to
    assert mod.output_path(DEFAULT_WEIGHTS, "1.2.0", False) == DEFAULT_WEIGHTS  # an explicit --out naming it
    with pytest.raises(SystemExit):
        mod.output_path(Path("/tmp/m.pt"), "1.2.0", True)
