#!/usr/bin/env python
"""The detector on scene generators written blind to minewatch's own simulator (``benchmarks/independent/``).

    python benchmarks/bench_independent.py                          # shipped weights, every generator and variant
    python benchmarks/bench_independent.py --weights a.pt b.pt      # several weights side by side
    python benchmarks/bench_independent.py --generators gen_b --scenes 8 --series 3

Each generator in ``benchmarks/independent/<name>/`` was written by another hand from a written brief only (the
landscape, the API, the variants base / pale / rough), without reading ``geo/sim``, ``models`` or
``geo/stages``; each has its own README saying where its numbers come from. They exist to measure the detector
on imagery it was not tuned to. A generator that was used to train a set of weights is marked ``(trained on)``
in the table, so its row is not read as a held-out figure.

Per generator and variant it prints, for ``rules`` and for ``model`` / ``fused`` with each weights file:

* footprint IoU (truth cleared land + ponds vs detected cleared land + ponds, pixels summed over scenes);
* pond F1 (pixel level; truth pond = at least half of the 10 m pixel is pond);
* with ``--series N``: over N multi-season landscapes, the detected footprint growth first → last season and the
  site-count growth against the truth's (sites grouped as ``minewatch run`` groups them, :func:`site_count`,
  counted the same way on truth and detection), in percentage points.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")


def generators(names: list[str] | None) -> dict[str, object]:
    base = ROOT / "benchmarks" / "independent"
    found = sorted(p.name for p in base.iterdir() if (p / "__init__.py").exists()) if base.exists() else []
    out = {}
    for n in names or found:
        out[n] = importlib.import_module(f"benchmarks.independent.{n}")
    return out


def detect(x: np.ndarray, method: str, weights: str | None) -> np.ndarray:
    """Classes of one scene; ``method`` is rules, model, fused or ``fused@N`` (the model averaged over N flipped
    views, ``FusionConfig.views``)."""
    from affine import Affine
    from rasterio.crs import CRS

    from geo.grid import GeoGrid
    from geo.stack import Composite
    from geo.stages.detect import FusionConfig, RuleThresholds, classify

    h, w = x.shape[1:]
    grid = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 431000, 0, -10, 2840000), w, h)
    comp = Composite(np.ascontiguousarray(x, np.float32), np.full((h, w), 3, np.uint16), BANDS, grid)
    method, _, views = method.partition("@")
    cfg = RuleThresholds() if method == "rules" else FusionConfig(weights=weights, device="cpu", views=int(views or 1))
    return classify(comp, method=method, config=cfg).classes


def site_count(classes: np.ndarray, res: float = 10.0) -> int:
    """Sites as ``minewatch run`` counts them: the class map polygonised (cleared land under
    ``DetectConfig.min_area_m2`` and ponds under ``min_pond_area_m2`` dropped) and grouped by :func:`geo.results.sites.group_sites` with the default ``SiteConfig`` (link distance,
    a pond and ``min_footprint_m2`` per site); the same for truth and detection."""
    from affine import Affine
    from rasterio.crs import CRS

    from geo.config import DetectConfig, SiteConfig
    from geo.grid import GeoGrid
    from geo.results.sites import group_sites
    from geo.stages.vectorize import polygonize

    if not (classes > 0).any():
        return 0
    h, w = classes.shape
    grid = GeoGrid(CRS.from_epsg(32647), Affine(res, 0, 431000, 0, -res, 2840000), w, h)
    det = DetectConfig()
    fp = polygonize(classes.astype(np.uint8), grid, min_area_m2=det.min_area_m2, min_pond_area_m2=det.min_pond_area_m2)
    return len(group_sites(fp, SiteConfig())[0])


class Tally:
    """Pixel counts (tp, fp, fn, pond tp, pond fp, pond fn) pooled over scenes, each scene's kept in ``scenes``."""

    def __init__(self) -> None:
        self.c = np.zeros(6, np.int64)
        self.scenes: list[list[int]] = []

    def add(self, y: np.ndarray, pred: np.ndarray) -> None:
        t, p = y > 0, pred > 0
        tq, pq = y == 2, pred == 2
        one = [int(v) for v in ((t & p).sum(), (~t & p).sum(), (t & ~p).sum(), (tq & pq).sum(), (~tq & pq).sum(),
                                (tq & ~pq).sum())]
        self.scenes.append(one)
        self.c += one

    def result(self) -> dict[str, float]:
        iou, f1 = _metrics(self.c)
        return {"iou": float(iou), "pond_f1": float(f1)}


def _metrics(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Footprint IoU and pond F1 of pooled counts ``c`` (..., 6), the layout of :attr:`Tally.c`."""
    tp, fp, fn, ptp, pfp, pfn = np.moveaxis(c.astype(float), -1, 0)
    return tp / np.maximum(tp + fp + fn, 1), 2 * ptp / np.maximum(2 * ptp + pfp + pfn, 1)


def mean_interval(scene_counts: list[np.ndarray], n: int = 2000, seed: int = 0) -> tuple[tuple, tuple]:
    """95 % bootstrap intervals ``((iou_low, iou_high), (f1_low, f1_high))`` of the mean over rows of the pooled
    footprint IoU and pond F1, resampling each row's scenes with replacement (``scene_counts``: one ``(scenes, 6)``
    array of :class:`Tally` counts per row). It covers scene-to-scene variation within these generators only."""
    rng = np.random.default_rng(seed)
    iou, f1 = np.zeros(n), np.zeros(n)
    for c in scene_counts:
        c = np.asarray(c)
        a, b = _metrics(c[rng.integers(0, len(c), (n, len(c)))].sum(axis=1))
        iou += a / len(scene_counts)
        f1 += b / len(scene_counts)
    return tuple(np.percentile(iou, [2.5, 97.5])), tuple(np.percentile(f1, [2.5, 97.5]))


def growth(a0: float, a1: float) -> float:
    return 100.0 * (a1 - a0) / a0 if a0 > 0 else float("nan")


def _init_worker() -> None:  # one torch thread per process: --jobs processes share the cores
    import torch

    torch.set_num_threads(1)


def score_row(gname: str, variant: str, cols: list, scenes: int, size: int, seed0: int) -> list[dict]:
    """Footprint IoU / pond F1 of every column over ``scenes`` scenes of one generator variant."""
    gen = generators([gname])[gname]
    tallies = [Tally() for _ in cols]
    for k in range(scenes):
        x, y = gen.scene(seed0 + k, variant, size)
        for t, (m, w) in zip(tallies, cols):
            t.add(y, detect(x, m, w))
    return [{**t.result(), "scene_counts": t.scenes} for t in tallies]


def growth_row(gname: str, variant: str, cols: list, series: int, seasons: int, size: int, seed0: int):
    """Summed footprint pixels and site counts, first and last season, of the truth and of every column."""
    gen = generators([gname])[gname]
    area = [[0.0, 0.0] for _ in range(len(cols) + 1)]
    sites = [[0, 0] for _ in range(len(cols) + 1)]
    for k in range(series):
        seq = gen.series(seed0 + 500 + k, variant, seasons, size)
        for j, (x, y) in zip((0, 1), (seq[0], seq[-1])):
            area[-1][j] += float((y > 0).sum())
            sites[-1][j] += site_count(y)
            for i, (m, w) in enumerate(cols):
                pred = detect(x, m, w)
                area[i][j] += float((pred > 0).sum())
                sites[i][j] += site_count(pred)
    return area, sites


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generators", nargs="*", default=None, help="names under benchmarks/independent (default all)")
    ap.add_argument("--variants", nargs="*", default=None, help="default: each generator's VARIANTS")
    ap.add_argument("--weights", nargs="*", default=[None], help="weights files ('shipped' = the shipped weights)")
    ap.add_argument("--trained-on", nargs="*", default=[],
                    help="WEIGHTS=GEN,GEN: generators a weights file (as given to --weights) was trained on (marked "
                         "in the table; default: read from the card's training_data.independent_generators)")
    ap.add_argument("--scenes", type=int, default=6, help="scenes per generator and variant")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seed0", type=int, default=900000, help="first scene seed (never used in training)")
    ap.add_argument("--series", type=int, default=0, help="multi-season landscapes per variant for growth")
    ap.add_argument("--seasons", type=int, default=4)
    ap.add_argument("--fused-views", type=int, nargs="*", default=[], choices=(2, 4),
                    help="also score fused with the model averaged over this many flipped views (FusionConfig.views)")
    ap.add_argument("--jobs", type=int, default=1, help="rows scored in this many processes (one torch thread each)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--write-card", type=Path, nargs="?", const=ROOT / "models" / "weights" / "MODEL_CARD.md",
                    default=None, help="put the tables into this model card (default: the shipped MODEL_CARD.md)")
    args = ap.parse_args(argv)
    if args.jobs < 1 or args.scenes < 1:
        ap.error("--jobs and --scenes must be >= 1")
    weights = [None if w in (None, "shipped") else w for w in args.weights]
    stems = [Path(w).stem for w in weights if w is not None]
    names = {w: ("shipped" if w is None else Path(w).stem if stems.count(Path(w).stem) == 1
                 else f"{Path(w).parent.name}/{Path(w).stem}") for w in weights}
    trained = {}
    for spec in args.trained_on:
        w, _, gens = spec.partition("=")
        trained[names.get(None if w == "shipped" else w, w)] = set(gens.split(","))
    for w in weights:  # the card says which generators these weights saw
        if w is not None and names[w] not in trained:
            card = Path(w).with_suffix(".json")
            if card.exists():
                seen = json.loads(card.read_text()).get("training_data", {}).get("independent_generators", {})
                trained[names[w]] = set(seen)
    if None in weights:
        from models.infer import DEFAULT_WEIGHTS

        seen = json.loads(DEFAULT_WEIGHTS.with_suffix(".json").read_text()).get("training_data", {})
        trained.setdefault("shipped", set(seen.get("independent_generators", {})))
    cols = [("rules", None)] + [(m, w) for w in weights
                                for m in ("model", "fused", *(f"fused@{v}" for v in args.fused_views))]
    t0 = time.perf_counter()
    report: dict = {}
    lines: list[str] = []

    def print(text: str = "", **_) -> None:  # noqa: A001  (every line also goes to the card)
        lines.append(text)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    print(f"footprint IoU / pond F1 (pixel), {args.scenes} scenes of {args.size} px per row, seeds {args.seed0}+")
    head = " | ".join(f"{m}" if w is None and m == "rules" else f"{m}:{names[w]}" for m, w in cols)
    print(f"| generator:variant | {head} |")
    print("|---|" + "---|" * len(cols))
    rows = [(g, v) for g, gen in generators(args.generators).items() for v in (args.variants or gen.VARIANTS)]
    pool = None
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(args.jobs, initializer=_init_worker)
    mapper = pool.map if pool is not None else map
    held: dict[tuple, list[dict]] = {c: [] for c in cols}
    scored = mapper(score_row, *zip(*[(g, v, cols, args.scenes, args.size, args.seed0) for g, v in rows]))
    for (gname, variant), results in zip(rows, scored):
        cells = []
        for (m, w), r in zip(cols, results):
            report.setdefault(f"{gname}:{variant}", {})[f"{m}:{names[w] if w or m != 'rules' else 'rules'}"] = r
            starred = m != "rules" and gname in trained.get(names.get(w), set())
            if not starred:
                held[(m, w)].append(r)
            cells.append(f"{r['iou']:.3f} / {r['pond_f1']:.3f}{'*' if starred else ''}")
        print(f"| {gname}:{variant} | " + " | ".join(cells) + " |", flush=True)
    print("| mean of held-out rows | " + " | ".join(
        f"{np.mean([r['iou'] for r in held[c]]):.3f} / {np.mean([r['pond_f1'] for r in held[c]]):.3f} ({len(held[c])})"
        if held[c] else "-" for c in cols) + " |")
    spread = {c: mean_interval([r["scene_counts"] for r in held[c]]) for c in cols if held[c]}
    print("| 95 % interval of that mean over scenes | " + " | ".join(
        f"{spread[c][0][0]:.3f}-{spread[c][0][1]:.3f} / {spread[c][1][0]:.3f}-{spread[c][1][1]:.3f}"
        if c in spread else "-" for c in cols) + " |")
    if any("*" in line for line in lines[3:]):
        print("* = these weights were trained on this generator (not a held-out figure); the last row averages, per "
              "column, the rows it was not trained on (their number in brackets)")
    print("the interval resamples each row's scenes (bootstrap, 2000 draws): it shows how much the mean would move with "
          "other scenes of the same generators, not how another generator or real imagery would score")
    if args.series:
        print(f"\ngrowth first -> last of {args.seasons} seasons, {args.series} landscapes per row: "
              "detected minus truth, percentage points (footprint area / site count)")
        print("| generator:variant | truth area % / sites % | " + " | ".join(
            f"{m}:{names[w]}" if m != "rules" else "rules" for m, w in cols) + " |")
        print("|---|---|" + "---|" * len(cols))
        grown = mapper(growth_row, *zip(*[(g, v, cols, args.series, args.seasons, args.size, args.seed0)
                                          for g, v in rows]))
        for (gname, variant), (area, sites) in zip(rows, grown):
            ga, gs = growth(*area[-1]), growth(*sites[-1])
            cells = [f"{growth(*area[i]) - ga:+.1f} / {growth(*sites[i]) - gs:+.1f}" for i in range(len(cols))]
            report.setdefault(f"{gname}:{variant}", {})["growth"] = {
                "truth_area_pct": ga, "truth_sites_pct": gs,
                **{f"{m}:{names[w] if m != 'rules' else 'rules'}": {"area_pp": growth(*area[i]) - ga,
                                                                    "sites_pp": growth(*sites[i]) - gs}
                   for i, (m, w) in enumerate(cols)}}
            print(f"| {gname}:{variant} | {ga:+.1f} / {gs:+.1f} | " + " | ".join(cells) + " |", flush=True)
    if pool is not None:
        pool.shutdown()
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.write_card:
        write_card(args.write_card, lines)
    return 0


CARD_BEGIN, CARD_END = "<!-- independent:begin -->", "<!-- independent:end -->"


def write_card(card: Path, lines: list[str], tag: str = "independent",
               heading: str = "## Scenes from generators written blind to minewatch",
               intro: str = "`benchmarks/bench_independent.py` (generators in `benchmarks/independent/`, each written by "
                            "another hand from a brief only, never reading `geo/sim`, `models` or `geo/stages`):") -> None:
    """Put ``heading``, ``intro`` and the table between the card's ``<!-- tag:begin/end -->`` markers (before
    ``## Limits`` the first time)."""
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    md = card.read_text()
    block = "\n".join([begin, heading, "", intro, "", *lines, end])
    if begin in md:
        md = md[:md.index(begin)] + block + md[md.index(end) + len(end):]
    else:
        md = md.replace("## Limits", block + "\n\n## Limits")
    card.write_text(md)


if __name__ == "__main__":
    raise SystemExit(main())
