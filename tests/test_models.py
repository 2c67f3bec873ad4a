"""U-Net, tiled inference, weights/card safety, training loop and metrics (on a tiny synthetic stand-in)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from scipy import ndimage

from geo.bands import ANALYSIS_BANDS
from geo.errors import ConfigError, WeightsError
from models.evaluate import class_metrics, confusion_matrix, format_report, report
from models.infer import axis_tiles, load_model, predict_proba, save_model, shuffle, unshuffle
from models.train import TrainConfig, train
from models.unet import FoldedUNet, UNet, UNetConfig, count_parameters, fuse_batchnorm

SPEC = {
    "forest": (0.03, 0.05, 0.03, 0.32, 0.15, 0.07),
    "bare": (0.10, 0.14, 0.22, 0.28, 0.36, 0.30),
    "pond": (0.09, 0.13, 0.08, 0.04, 0.015, 0.01),
    "field": (0.08, 0.11, 0.15, 0.22, 0.30, 0.25),
}


def toy_pair(seed: int, size: int = 96):
    """Stand-in for the simulator: forest, cleared rectangles with a pond each, a bare field (background)."""
    rng = np.random.default_rng(seed)
    lab = np.zeros((size, size), np.uint8)
    kind = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        r, c = rng.integers(0, size - 40, 2)
        h, w = rng.integers(20, 40, 2)
        lab[r:r + h, c:c + w] = 1
        kind[r:r + h, c:c + w] = 1
        pr, pc = r + rng.integers(2, h - 8), c + rng.integers(2, w - 8)
        lab[pr:pr + 6, pc:pc + 6] = 2
        kind[pr:pr + 6, pc:pc + 6] = 2
    r, c = rng.integers(0, size - 20, 2)
    sub = kind[r:r + 15, c:c + 15]
    sub[sub == 0] = 3
    x = np.zeros((6, size, size), np.float32)
    for k, name in enumerate(SPEC):
        x[:, kind == k] = np.asarray(SPEC[name], np.float32)[:, None]
    x *= rng.normal(1, 0.05, x.shape).astype(np.float32)
    return x, lab


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    samples = [toy_pair(s) for s in range(16)]
    cfg = TrainConfig(steps=150, batch_size=4, crop=64, widths=(16, 24, 32), lr=1e-2, threads=1, class_weights=(1, 2, 5))
    res = train(samples, cfg)
    path = tmp_path_factory.mktemp("w") / "toy.pt"
    res.card = save_model(res.model, res.card, path)
    return res, path


def test_unet_shapes_and_size():
    m = UNet(UNetConfig()).eval()
    with torch.inference_mode():
        out = m(torch.zeros(2, 6, 64, 96))
    assert out.shape == (2, 3, 64, 96)
    assert 100_000 <= count_parameters(m) <= 300_000


@pytest.mark.parametrize("cfg", [
    UNetConfig(),
    UNetConfig(widths=(8, 12, 16), unshuffle=2, refine=5, refine_context=3),
    UNetConfig(widths=(8, 12), unshuffle=4, refine=0),
    UNetConfig(widths=(8, 12, 16), unshuffle=1, refine=4, refine_context=2),
])
@pytest.mark.parametrize("fused_bn", [False, True])
def test_folded_unet_equals_unet(cfg, fused_bn):
    """The inference form (no full-resolution passes) computes the same logits as UNet.forward."""
    torch.manual_seed(0)
    model = UNet(cfg)
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    if fused_bn:
        fuse_batchnorm(model)
    f, h, w = cfg.unshuffle, cfg.multiple * 3, cfg.multiple * 5
    x = torch.randn(2, cfg.in_channels, h, w)
    with torch.inference_mode():
        ref = model(x).numpy()
        xu = torch.stack([unshuffle(xi, f) for xi in x])
        got = FoldedUNet(model).eval()(xu.permute(0, 3, 1, 2)).numpy()
    assert got.shape == (2, h // f, w // f, f * f * cfg.n_classes)
    np.testing.assert_allclose(np.stack([shuffle(torch.from_numpy(g), f).numpy() for g in got]), ref, atol=2e-5,
                               rtol=1e-4)


def test_unshuffle_shuffle_roundtrip_and_layout():
    x = np.arange(3 * 8 * 12, dtype=np.float32).reshape(3, 8, 12)
    u = unshuffle(torch.from_numpy(x), 4).numpy()
    assert u.shape == (2, 3, 48)
    # channel p·C + c of block (i, j) is band c at pixel (4i + p // 4, 4j + p % 4)
    assert u[1, 2, 5 * 3 + 2] == x[2, 4 + 1, 8 + 1]
    np.testing.assert_array_equal(shuffle(torch.from_numpy(u), 4).numpy(), x)


@pytest.mark.parametrize("n,tile,overlap,mult", [(160, 64, 8, 4), (484, 64, 8, 4), (2, 64, 8, 4), (65, 64, 8, 4),
                                                 (1000, 128, 8, 4), (121, 16, 8, 4)])
def test_axis_tiles_cover_with_overlap(n, tile, overlap, mult):
    t, starts = axis_tiles(n, tile, overlap, mult)
    assert t % mult == 0 and t <= max(tile, int(np.ceil(n / mult) * mult))
    assert starts[0] == 0 and starts[-1] + t >= n and starts == sorted(starts)
    for a, b in zip(starts, starts[1:]):
        assert a + t - b >= overlap - 1  # consecutive tiles overlap (rounding may cost one pixel)
    if len(starts) > 1:  # no fewer tiles would do
        k = len(starts) - 1
        assert k * tile - (k - 1) * overlap < n


def test_training_reduces_loss_and_learns(trained):
    res, _ = trained
    assert np.mean(res.losses[-10:]) < 0.5 * np.mean(res.losses[:5])
    cm = np.zeros((3, 3), np.int64)
    for s in range(100, 104):  # held-out toy seeds
        x, y = toy_pair(s)
        p = predict_proba(res.model, res.card, x, ANALYSIS_BANDS, tile=64, overlap=16)
        cm += confusion_matrix(y, p.argmax(0))
    m = class_metrics(cm)
    assert m["leaching_pond"].iou > 0.7 and m["cleared_land"].iou > 0.8, format_report(report(cm))


def test_predict_any_size_probabilities_and_determinism(trained):
    res, _ = trained
    rng = np.random.default_rng(1)
    for h, w in [(5, 7), (37, 53), (150, 97)]:
        x = rng.uniform(0, 0.4, (6, h, w)).astype(np.float32)
        p = predict_proba(res.model, res.card, x, ANALYSIS_BANDS, tile=64, overlap=16, batch_size=3)
        assert p.shape == (3, h, w) and p.dtype == np.float32
        np.testing.assert_allclose(p.sum(0), 1, atol=1e-5)
        p2 = predict_proba(res.model, res.card, x, ANALYSIS_BANDS, tile=64, overlap=16, batch_size=3)
        np.testing.assert_array_equal(p, p2)


def test_flipped_views_make_the_probabilities_flip_equivariant(trained):
    """views=4 averages the four flips of the input: flipping the input then flips the output (up to float summing
    order), which one view does not guarantee; views=1 is the plain forward pass."""
    res, _ = trained
    x, _ = toy_pair(5, size=96)
    one = predict_proba(res.model, res.card, x, ANALYSIS_BANDS, tile=64, overlap=16)
    np.testing.assert_array_equal(one, predict_proba(res.model, res.card, x, ANALYSIS_BANDS, tile=64, overlap=16,
                                                     views=1))
    four = predict_proba(res.model, res.card, x, ANALYSIS_BANDS, tile=64, overlap=16, views=4)
    np.testing.assert_allclose(four.sum(0), 1, atol=1e-5)
    for flip in ((slice(None), slice(None, None, -1)), (slice(None), slice(None), slice(None, None, -1))):
        got = predict_proba(res.model, res.card, np.ascontiguousarray(x[flip]), ANALYSIS_BANDS, tile=64, overlap=16,
                            views=4)
        np.testing.assert_allclose(got[flip], four, atol=1e-5)
        plain = predict_proba(res.model, res.card, np.ascontiguousarray(x[flip]), ANALYSIS_BANDS, tile=64, overlap=16)
        assert np.abs(plain[flip] - one).max() > 1e-4  # a single view is not equivariant: the test can tell
    with pytest.raises(ValueError, match="views"):
        predict_proba(res.model, res.card, x, ANALYSIS_BANDS, views=3)


def test_tiling_blends_without_seams(trained):
    res, _ = trained
    x, _ = toy_pair(7, size=160)
    whole = predict_proba(res.model, res.card, x, ANALYSIS_BANDS, tile=160, overlap=0)
    tiled = predict_proba(res.model, res.card, x, ANALYSIS_BANDS, tile=64, overlap=24, batch_size=2)
    assert (whole.argmax(0) == tiled.argmax(0)).mean() > 0.98
    assert np.abs(whole - tiled).mean() < 0.03


def test_nan_input_is_handled(trained):
    res, _ = trained
    x, _ = toy_pair(3)
    x[:, :10] = np.nan
    p = predict_proba(res.model, res.card, x, ANALYSIS_BANDS, tile=64, overlap=16)
    assert np.isfinite(p).all()


def test_band_mismatches_raise(trained):
    res, _ = trained
    x, _ = toy_pair(3)
    rev = tuple(reversed(ANALYSIS_BANDS))
    with pytest.raises(WeightsError, match="order"):
        predict_proba(res.model, res.card, x[::-1], rev)
    ok = predict_proba(res.model, res.card, x[::-1].copy(), rev, reorder=True, tile=64)
    np.testing.assert_allclose(ok, predict_proba(res.model, res.card, x, ANALYSIS_BANDS, tile=64), atol=1e-6)
    with pytest.raises(WeightsError, match="lacks B12"):
        predict_proba(res.model, res.card, x[:5], ANALYSIS_BANDS[:5])
    with pytest.raises(WeightsError, match="channels"):
        predict_proba(res.model, res.card, x[:5], ANALYSIS_BANDS)


def test_save_load_roundtrip_and_card(trained):
    res, path = trained
    model, card = load_model(path, device="cpu")
    assert card.bands == ANALYSIS_BANDS
    assert card.classes == {0: "background", 1: "cleared_land", 2: "leaching_pond"}
    x, _ = toy_pair(5)
    # the loaded model has BatchNorm folded into the convolutions: same output up to float rounding
    np.testing.assert_allclose(predict_proba(model, card, x, ANALYSIS_BANDS, tile=64),
                               predict_proba(res.model, res.card, x, ANALYSIS_BANDS, tile=64), atol=1e-4)


def test_card_band_count_mismatch_is_weights_error(trained, tmp_path):
    res, path = trained
    p = tmp_path / "m.pt"
    p.write_bytes(path.read_bytes())
    d = json.loads(path.with_suffix(".json").read_text())
    d["bands"] = d["bands"][:5]
    p.with_suffix(".json").write_text(json.dumps(d))
    with pytest.raises(WeightsError, match="5 bands"):
        load_model(p, device="cpu")


def test_corrupt_unsafe_and_missing_weights(trained, tmp_path):
    res, path = trained
    card = path.with_suffix(".json").read_text()
    with pytest.raises(WeightsError, match="not found"):
        load_model(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:500])
    bad.with_suffix(".json").write_text(card)
    with pytest.raises(WeightsError, match="checksum"):
        load_model(bad)
    d = json.loads(card)
    d["weights_sha256"] = ""
    bad.with_suffix(".json").write_text(json.dumps(d))
    with pytest.raises(WeightsError, match="safely"):
        load_model(bad)

    class Evil:  # an arbitrary pickled object: weights_only=True must refuse it
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, evil, pickle_module=pickle)
    evil.with_suffix(".json").write_text(json.dumps(d))
    with pytest.raises(WeightsError, match="safely"):
        load_model(evil)
    nocard = tmp_path / "nocard.pt"
    nocard.write_bytes(path.read_bytes())
    with pytest.raises(WeightsError, match="card"):
        load_model(nocard)


def test_wrong_architecture_is_weights_error(trained, tmp_path):
    res, path = trained
    p = tmp_path / "arch.pt"
    p.write_bytes(path.read_bytes())
    d = json.loads(path.with_suffix(".json").read_text())
    d["architecture"]["widths"] = [8, 16, 24]
    p.with_suffix(".json").write_text(json.dumps(d))
    with pytest.raises(WeightsError, match="architecture"):
        load_model(p, device="cpu")


def test_device_resolution():
    from models.infer import resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(WeightsError, match="cuda"):
            resolve_device("cuda")


def test_train_config_validation():
    with pytest.raises(ConfigError, match="multiple"):
        TrainConfig(crop=100)
    with pytest.raises(ConfigError, match="no training samples"):
        train([], TrainConfig(steps=1))


def test_metrics_golden():
    truth = np.array([[0, 0, 1, 1], [2, 2, 0, 255]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 0, 2]])
    cm = confusion_matrix(truth, pred)
    # rows truth: bg -> [2 bg, 1 cleared, 0 pond]; cleared -> [0,2,0]; pond -> [1,0,1]; 255 ignored
    np.testing.assert_array_equal(cm, [[2, 1, 0], [0, 2, 0], [1, 0, 1]])
    m = class_metrics(cm)
    assert m["cleared_land"].iou == pytest.approx(2 / 3)
    assert m["cleared_land"].precision == pytest.approx(2 / 3)
    assert m["cleared_land"].recall == pytest.approx(1.0)
    assert m["leaching_pond"].f1 == pytest.approx(2 / 3)
    rep = report(cm)
    assert rep["accuracy"] == pytest.approx(5 / 7, abs=1e-4)
    assert "leaching_pond" in format_report(rep)


def test_small_pond_pixels_weigh_more_in_the_loss():
    from models.train import _pixel_weights

    y = np.zeros((1, 32, 32), np.uint8)
    y[0, 2:4, 2:4] = 2  # a 4 px pond: small
    y[0, 10:20, 10:20] = 2  # a 100 px pond: not small
    y[0, 25:30, 25:30] = 1
    y[0, 0, 31] = 255  # ignored
    cfg = TrainConfig(class_weights=(1.0, 2.0, 3.0), small_pond_weight=4.0, small_pond_px=6)
    w = _pixel_weights(torch.from_numpy(y.astype(np.int64)), cfg).numpy()[0]
    assert w[2, 2] == 12.0 and w[15, 15] == 3.0 and w[27, 27] == 2.0 and w[5, 5] == 1.0 and w[0, 31] == 0.0


def test_hard_negative_mining_marks_what_the_model_calls_footprint():
    from models.train import _mine

    cfg = TrainConfig(widths=(8, 12, 16), unshuffle=4, refine=0)
    model = UNet(UNetConfig(widths=cfg.widths, unshuffle=4, refine=0))
    x = np.random.default_rng(0).uniform(0, 0.3, (6, 40, 50)).astype(np.float32)
    x[:, :5] = np.nan  # nodata is never mined
    mean, std = np.zeros((6, 1, 1), np.float32), np.ones((6, 1, 1), np.float32)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([0.0, 5.0, 0.0]).repeat_interleave(16))  # "cleared land" everywhere
    mined = _mine(model, [(x, np.zeros((40, 50), np.uint8))], mean, std, cfg)[0]
    assert mined.size == 35 * 50 and mined.min() == 5 * 50
    with torch.no_grad():
        model.head.bias.copy_(torch.tensor([5.0, 0.0, 0.0]).repeat_interleave(16))  # background everywhere
    assert _mine(model, [(x, np.zeros((40, 50), np.uint8))], mean, std, cfg)[0].size == 0
    assert model.training  # the model's mode is restored


def test_log_input_transform_trains_saves_loads_and_predicts(tmp_path):
    from models.infer import input_transform, load_card

    samples = [toy_pair(s) for s in range(4)]
    cfg = TrainConfig(steps=20, batch_size=2, crop=64, widths=(16, 24, 32), threads=1, transform="log",
                      brightness=(0.8, 1.2))
    res = train(samples, cfg)
    path = tmp_path / "log.pt"
    save_model(res.model, res.card, path)
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["normalization"]["transform"] == "log" and "ln(" in card["normalization"]["formula"]
    assert max(card["normalization"]["mean"]) < 0  # means of log reflectance
    model, c = load_model(path, device="cpu")
    assert c.transform == "log" and load_card(path).transform == "log"
    x = samples[0][0].copy()
    x[:, :3, :3] = np.nan
    p = predict_proba(model, c, x, ANALYSIS_BANDS, device="cpu")
    assert np.isfinite(p).all() and np.allclose(p.sum(0), 1, atol=1e-5)
    # a gain is an offset shared by all bands in model space
    d = input_transform(samples[0][0] * 1.2, "log") - input_transform(samples[0][0], "log")
    assert np.allclose(d, np.log(1.2), atol=1e-5)
    card["normalization"]["transform"] = "sqrt"
    path.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="transform"):
        load_card(path)
    with pytest.raises(ConfigError):
        TrainConfig(transform="sqrt")


def test_log_floor_per_band_travels_from_training_to_inference(tmp_path):
    """A per-band log floor (e.g. visible bands 0.01) is written to the card, read back, and applied by
    inference exactly as in training: reflectance below a band's floor cannot change the prediction."""
    from models.infer import input_transform, load_card

    floor = (0.01, 0.01, 0.01, 0.001, 0.001, 0.001)
    samples = [toy_pair(s) for s in range(4)]
    cfg = TrainConfig(steps=10, batch_size=2, crop=64, widths=(16, 24, 32), threads=1, transform="log", log_floor=floor)
    res = train(samples, cfg)
    path = tmp_path / "floor.pt"
    save_model(res.model, res.card, path)
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["normalization"]["floor"] == pytest.approx(list(floor))
    model, c = load_model(path, device="cpu")
    assert c.floor == pytest.approx(floor) and load_card(path).floors()[0] == pytest.approx(0.01)
    x = samples[0][0].copy()
    x[0, :20] = 0.004  # blue below its floor ...
    x2 = x.copy()
    x2[0, :20] = 0.0005  # ... and further below it: the same input to the model
    assert np.array_equal(predict_proba(model, c, x, ANALYSIS_BANDS, device="cpu"),
                          predict_proba(model, c, x2, ANALYSIS_BANDS, device="cpu"))
    x3 = x.copy()
    x3[3, :20] = 0.004  # NIR's floor is 0.001: this changes the input
    assert not np.array_equal(predict_proba(model, c, x, ANALYSIS_BANDS, device="cpu"),
                              predict_proba(model, c, x3, ANALYSIS_BANDS, device="cpu"))
    assert np.allclose(input_transform(x, "log", floor)[0, :20], np.log(0.01))
    # a card without a floor (the shipped 2.1.0 card) means 0.001 for every band; a malformed floor is refused
    del card["normalization"]["floor"]
    path.with_suffix(".json").write_text(json.dumps(card))
    assert load_card(path).floors() == pytest.approx([0.001] * 6)
    card["normalization"]["floor"] = [0.01, 0.01]
    path.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="floor"):
        load_card(path)
    with pytest.raises(ConfigError, match="log_floor"):
        TrainConfig(log_floor=(0.01, 2.0))
    with pytest.raises(ConfigError, match="6 bands"):
        train(samples, TrainConfig(steps=1, batch_size=1, crop=64, widths=(16, 24, 32), threads=1, transform="log",
                                   log_floor=(0.01, 0.01)))


def test_validation_scores_the_input_the_model_was_trained_on():
    """The card's validation IoU is computed on the transformed input. Until December 2026 a log model was scored on raw
    reflectance, so every pixel looked alike to it and the scores meant nothing."""
    from models.train import validation_report

    samples = [toy_pair(s) for s in range(6)]
    cfg = TrainConfig(steps=60, batch_size=4, crop=64, widths=(16, 24, 32), threads=1, transform="log",
                      val_fraction=0.5)
    res = train(samples, cfg)
    val = res.card.extra["validation"]
    held = [samples[i] for i in val["held_out_samples"]]
    p = [predict_proba(res.model, res.card, x, ANALYSIS_BANDS, device="cpu").argmax(0) for x, _ in held]
    acc = sum(int((q == y).sum()) for q, (_, y) in zip(p, held)) / sum(y.size for _, y in held)
    assert val["accuracy"] == pytest.approx(acc, abs=0.02)  # the card agrees with what inference predicts
    mean = np.asarray(res.card.mean, np.float32)[None, :, None, None]
    std = np.asarray(res.card.std, np.float32)[None, :, None, None]
    wrong = validation_report(res.model, held, mean, std, cfg)  # raw reflectance into a log model, as before
    assert abs(wrong["accuracy"] - acc) > 0.05


def test_augment_defaults_unchanged_and_wide_options_do_what_they_say():
    from models.data import augment

    x = np.random.default_rng(1).uniform(0.02, 0.4, (6, 32, 32)).astype(np.float32)
    y = np.zeros((32, 32), np.uint8)
    y[8:24, 8:24] = 1
    y[14:17, 14:17] = 2
    # defaults: the same draws and result as the plain flips/rotations + gains
    a, _ = augment(x, y, np.random.default_rng(5), brightness=(0.8, 1.2))
    r = np.random.default_rng(5)
    k = int(r.integers(0, 4))
    ref = np.rot90(x, k, axes=(1, 2))
    if r.random() < 0.5:
        ref = ref[:, :, ::-1]
    ref = ref * (r.uniform(0.95, 1.05, size=(6, 1, 1)) * r.uniform(0.8, 1.2)).astype(np.float32)
    assert np.array_equal(a, ref)
    wl = (492, 560, 665, 833, 1614, 2202)
    # haze: an additive offset that falls with wavelength (no gain, no rotation: compare against the flipped input)
    for seed in range(20):
        h, yh = augment(x, y, np.random.default_rng(seed), band_gain=0.0, haze=0.05, wavelengths=wl)
        base, _ = augment(x, y, np.random.default_rng(seed), band_gain=0.0)
        d = (h - base).reshape(6, -1)
        assert np.allclose(d, d[:, :1], atol=1e-6)  # the same offset on every pixel of a band
        assert np.all(np.diff(d[:, 0]) <= 1e-7) and d[0, 0] <= 0.05 + 1e-6
    # material gain: inside a class region every band scales by one factor per class
    g, yg = augment(x, y, np.random.default_rng(3), band_gain=0.0, material_gain=0.3)
    base, _ = augment(x, y, np.random.default_rng(3), band_gain=0.0)
    inner = np.zeros_like(yg, bool)
    inner[1:-1, 1:-1] = True
    ratio = g / base
    for cls in (0, 1):
        core = (yg == cls) & inner & ~ndimage.binary_dilation(yg != cls, iterations=4)
        spread = ratio[:, core].std(axis=1)
        assert spread.max() < 1e-4 and np.abs(ratio[:, core].mean(1) - 1).max() > 1e-3
    # noise changes pixels and keeps reflectance positive; blur smooths
    n, _ = augment(x, y, np.random.default_rng(0), band_gain=0.0, noise=0.02)
    assert n.min() > 0 and not np.array_equal(n, augment(x, y, np.random.default_rng(0), band_gain=0.0)[0])
    blurred = [augment(x, y, np.random.default_rng(s), band_gain=0.0, blur=1.5)[0].std() for s in range(8)]
    assert min(blurred) < 0.9 * x.std()
    with pytest.raises(ConfigError):
        TrainConfig(material_gain=1.5)


def test_nodata_takes_its_nearest_valid_pixel():
    from models.nodata import fill_nearest

    x = np.arange(2 * 4 * 5, dtype=np.float32).reshape(2, 4, 5)
    x[:, :, 3:] = np.nan           # a nodata margin on the right
    x[1, 0, 0] = np.nan            # missing in one band only: the whole pixel is refilled
    out = fill_nearest(x)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, :, 3], x[:, :, 2]) and np.testing.assert_array_equal(out[:, :, 4], x[:, :, 2])
    assert out[0, 0, 0] in (x[0, 1, 0], x[0, 0, 1])
    assert fill_nearest(out) is out and np.isnan(fill_nearest(np.full((1, 2, 2), np.nan))).all()
    # only the bands the model reads decide what is missing
    y = np.ones((3, 2, 2), np.float32)
    y[2] = np.nan
    assert fill_nearest(y, [0, 1]) is y


def test_a_nodata_margin_looks_like_the_edge_not_like_the_mean(monkeypatch):
    """A scene with a NaN margin (what a run's halo past the scene edge reads) is classified as without it. With the
    margin fed to the model as the mean spectrum, the fused map grew 247 px of false clearing along the edge of this
    held-out gen_e scene (`bench_run_independent.py` found it: run and in-memory areas differed)."""
    import models.infer
    from benchmarks.bench_independent import detect
    from benchmarks.independent import gen_e

    x, _ = gen_e.series(900500, "pale", 4, 512)[-1]
    padded = np.full((6, 576, 576), np.nan, np.float32)
    padded[:, 32:-32, 32:-32] = x
    alone = detect(x, "fused", None)
    assert (detect(padded, "fused", None)[32:-32, 32:-32] != alone).sum() <= 10
    monkeypatch.setattr(models.infer, "fill_nearest", lambda data, bands=None: data)  # the old behaviour
    assert (detect(padded, "fused", None)[32:-32, 32:-32] != alone).sum() > 100


def test_exact_fp32_turns_tf32_off_on_cuda_only_and_restores_the_callers_setting():
    """On a CUDA device inference runs without TF32 (an H200 then gave the CPU's classes: benchmarks/check_cuda.py);
    the session's settings come back after the last of nested or concurrent blocks; on the CPU nothing changes."""
    import torch

    from models.unet import exact_fp32

    flags = (torch.backends.cudnn, torch.backends.cuda.matmul)
    saved = [f.allow_tf32 for f in flags]
    try:
        for f in flags:
            f.allow_tf32 = True
        with exact_fp32(torch.device("cpu")):
            assert all(f.allow_tf32 for f in flags)
        with exact_fp32(torch.device("cuda")):  # only flags are set: no GPU is needed
            assert not any(f.allow_tf32 for f in flags)
            with exact_fp32(torch.device("cuda")):
                assert not any(f.allow_tf32 for f in flags)
            assert not any(f.allow_tf32 for f in flags)  # the outer block is still running
        assert all(f.allow_tf32 for f in flags)
    finally:
        for f, v in zip(flags, saved):
            f.allow_tf32 = v


def test_training_device_is_checked_in_one_line():
    """``device`` is auto, cpu or cuda; cuda on a machine without a GPU is refused before any step."""
    import torch

    with pytest.raises(ConfigError, match="device must be auto, cpu or cuda"):
        TrainConfig(device="tpu")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    x = np.zeros((6, 64, 64), np.float32)
    y = np.zeros((64, 64), np.uint8)
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        train([(x, y)], TrainConfig(steps=1, batch_size=1, crop=64, widths=(16, 24, 32), device="cuda"))


@pytest.mark.parametrize("shape", [(1, 1), (16, 16), (3, 250), (250, 3), (33, 70)])
def test_predict_proba_on_rasters_smaller_than_the_tile_overlap(shape):
    """Rasters smaller than the tiles' overlap (a tiny image or AOI edge) crashed in the blending ramp."""
    model, card = load_model(None, device="cpu")
    rng = np.random.default_rng(0)
    x = rng.uniform(0.01, 0.3, (6, *shape)).astype(np.float32)
    p = predict_proba(model, card, x, ANALYSIS_BANDS, device="cpu")
    assert p.shape == (3, *shape) and np.allclose(p.sum(0), 1, atol=1e-5)
